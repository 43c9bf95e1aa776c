//! Runs of plain numbers (`Vec<u8>`, `Vec<f64>`, …), which the codec copies in one go (see
//! `bulk.rs`), encode to exactly the bytes of the element-by-element path, bincode's, in
//! both layouts, wherever they sit in a value; and decode back, from a slice or a source,
//! with the same checks on what the bytes announce.

use serde::{Deserialize, Serialize, Serializer};

use super::bincode_compat::same_as_bincode;
use super::source::{streams, streams_as_it_decodes};
use crate::{CodecError, Layout, decode, encode};

/// Serializes a slice element by element whatever its type: the path that `bulk` skips.
struct OneByOne<'a, E>(&'a [E]);

impl<E: Serialize> Serialize for OneByOne<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// Every way a run of `E` can be handed to the encoder gives the bytes of `OneByOne` and
/// of bincode, in both layouts, and decodes back from a slice and from a source.
fn runs_of<E>(elements: Vec<E>)
where
    E: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
{
    for layout in [Layout::Compact, Layout::Fixed] {
        let mut slow = Vec::new();
        layout.encode_into(&OneByOne(&elements), &mut slow).unwrap();
        for fast in [
            encoded(&elements, layout),
            encoded(elements.as_slice(), layout),
            encoded(&elements.clone().into_boxed_slice(), layout),
        ] {
            assert_eq!(fast, slow, "{layout:?}");
        }
        assert_eq!(
            layout.decode::<Vec<E>>(&slow, slow.len()).unwrap(),
            elements
        );
    }
    same_as_bincode(elements.clone());
    streams(elements.clone());
    // Inside other values: a field, an element, an option, a map value, a tuple.
    same_as_bincode(Holder {
        before: 7,
        run: elements.clone(),
        maybe: Some(elements.clone()),
        nested: vec![elements.clone(), Vec::new()],
        keyed: [(1u8, elements.clone())].into(),
        after: "end".into(),
    });
    streams(Holder {
        before: 7,
        run: elements.clone(),
        maybe: None,
        nested: vec![Vec::new(), elements.clone()],
        keyed: [(2u8, elements.clone())].into(),
        after: String::new(),
    });
    same_as_bincode((elements.clone(), 1u16, elements));
}

fn encoded<T: Serialize + ?Sized>(value: &T, layout: Layout) -> Vec<u8> {
    let mut bytes = Vec::new();
    layout.encode_into(value, &mut bytes).unwrap();
    bytes
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Holder<E> {
    before: u32,
    run: Vec<E>,
    maybe: Option<Vec<E>>,
    nested: Vec<Vec<E>>,
    keyed: std::collections::BTreeMap<u8, Vec<E>>,
    after: String,
}

#[test]
fn runs_of_bytes_and_floats_are_the_element_by_element_bytes_in_both_layouts() {
    runs_of::<u8>((0..=255).cycle().take(70_000).collect());
    runs_of::<i8>(vec![-128, -1, 0, 1, 127]);
    runs_of::<f32>(vec![
        0.0,
        -0.0,
        1.5,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::INFINITY,
    ]);
    runs_of::<f64>((0..10_000).map(|i| f64::from(i) * -0.37).collect());
    runs_of::<u8>(Vec::new());
}

#[test]
fn runs_of_wider_integers_are_the_element_by_element_bytes_in_both_layouts() {
    // Copied in the Fixed layout only; Compact writes them variable-length, which the
    // same comparison covers.
    runs_of::<u16>(vec![0, 250, 251, u16::MAX]);
    runs_of::<u32>((0..3000).map(|i| i * 1_000_003).collect());
    runs_of::<u64>(vec![0, 1 << 40, u64::MAX]);
    runs_of::<u128>(vec![0, u128::MAX]);
    runs_of::<i16>(vec![i16::MIN, -1, 0, i16::MAX]);
    runs_of::<i32>(vec![i32::MIN, -250, 250, i32::MAX]);
    runs_of::<i64>((-500..500).map(|i| i * (1 << 40)).collect());
    runs_of::<i128>(vec![i128::MIN, 0, i128::MAX]);
}

#[test]
fn a_float_comes_back_with_its_exact_bits() {
    let odd = [
        f64::from_bits(0x7FF8_0000_0000_0001),
        f64::from_bits(0xFFF0_0000_0000_0001),
        -0.0,
    ];
    let bytes = encode(&odd.to_vec()).unwrap();
    let back: Vec<f64> = decode(&bytes, bytes.len()).unwrap();
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&odd));
}

#[test]
fn a_run_that_announces_more_than_follows_is_refused_without_room_for_it() {
    for layout in [Layout::Compact, Layout::Fixed] {
        // 2^40 elements of 8 bytes, with 16 bytes behind the length.
        let mut lying = encoded(&(1u64 << 40), layout);
        lying.extend_from_slice(&[0; 16]);
        let err = layout.decode::<Vec<f64>>(&lying, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err:?}");
        // A count whose byte length overflows usize.
        let mut overflow = encoded(&(u64::MAX / 2), layout);
        overflow.extend_from_slice(&[0; 16]);
        assert!(layout.decode::<Vec<u64>>(&overflow, 1 << 20).is_err());
        assert!(layout.decode::<Vec<u8>>(&lying, 1 << 20).is_err());
    }
    let mut lying = encode(&(1u64 << 40)).unwrap();
    lying.extend_from_slice(&[0; 16]);
    streams_as_it_decodes::<Vec<f64>>(&lying, 1 << 20);
    streams_as_it_decodes::<Vec<u8>>(&lying, 1 << 20);
}

#[test]
fn a_run_cut_anywhere_is_an_error_never_a_panic() {
    let value = Holder {
        before: 1,
        run: vec![1.0f64; 100],
        maybe: Some(vec![2.0; 3]),
        nested: vec![vec![3.0]],
        keyed: [(9, vec![4.0])].into(),
        after: "x".into(),
    };
    for layout in [Layout::Compact, Layout::Fixed] {
        let bytes = encoded(&value, layout);
        for end in 0..bytes.len() {
            assert!(
                layout
                    .decode::<Holder<f64>>(&bytes[..end], bytes.len())
                    .is_err()
            );
        }
        assert_eq!(
            layout.decode::<Holder<f64>>(&bytes, bytes.len()).unwrap(),
            value
        );
    }
}
