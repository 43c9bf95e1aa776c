//! The codec writes and reads bincode 2's encoding byte for byte, in both layouts, and
//! hands a visitor what bincode hands it.

use serde::{Deserialize, Serialize};

use super::*;
use crate::{ByteBuf, Layout, decode, encode};

#[test]
fn every_shape_of_the_serde_model_round_trips_and_reads_as_bincode_reads_it() {
    let value = everything();
    let bytes = encode(&value).unwrap();
    assert_eq!(decode::<Everything>(&bytes, bytes.len()).unwrap(), value);
    let (theirs, used): (Everything, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!((theirs, used), (everything(), bytes.len()));
    // Cut anywhere, it is an error, never a panic.
    for end in 0..bytes.len() {
        assert!(decode::<Everything>(&bytes[..end], bytes.len()).is_err());
    }
}

#[test]
fn the_fixed_layout_round_trips_every_shape_and_is_bincodes_fixed_int_encoding() {
    let value = everything();
    let mut bytes = Vec::new();
    Layout::Fixed.encode_into(&value, &mut bytes).unwrap();
    assert_eq!(
        bytes,
        bincode::serde::encode_to_vec(
            &value,
            bincode::config::standard().with_fixed_int_encoding()
        )
        .unwrap()
    );
    assert_ne!(bytes, encode(&value).unwrap());
    assert_eq!(
        Layout::Fixed
            .decode::<Everything>(&bytes, bytes.len())
            .unwrap(),
        value
    );
    for end in 0..bytes.len() {
        assert!(
            Layout::Fixed
                .decode::<Everything>(&bytes[..end], bytes.len())
                .is_err()
        );
    }
    // A length that claims far more than follows allocates nothing for it.
    let mut huge = (1u64 << 40).to_le_bytes().to_vec();
    huge.push(b'x');
    assert!(Layout::Fixed.decode::<String>(&huge, 64).is_err());
    assert!(Layout::Fixed.decode::<Vec<u64>>(&huge, 64).is_err());
}

/// Both layouts, as bincode's configurations.
fn bincode_encode<T: Serialize>(value: &T, layout: Layout) -> Vec<u8> {
    let standard = bincode::config::standard();
    match layout {
        Layout::Compact => bincode::serde::encode_to_vec(value, standard),
        Layout::Fixed => bincode::serde::encode_to_vec(value, standard.with_fixed_int_encoding()),
    }
    .unwrap()
}

/// `value` encodes to bincode's bytes in both layouts, and those bytes decode back.
pub(super) fn same_as_bincode<T>(value: T)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for layout in [Layout::Compact, Layout::Fixed] {
        let bytes = ours(&value, layout);
        assert_eq!(
            bytes,
            bincode_encode(&value, layout),
            "{value:?} {layout:?}"
        );
        assert_eq!(layout.decode::<T>(&bytes, bytes.len()).unwrap(), value);
    }
}

#[test]
fn every_shape_encodes_to_bincodes_bytes_in_both_layouts() {
    // One value: its HashMap's order is its own.
    let value = everything();
    for layout in [Layout::Compact, Layout::Fixed] {
        assert_eq!(ours(&value, layout), bincode_encode(&value, layout));
    }
}

#[test]
fn integers_at_every_width_boundary_are_bincodes_bytes() {
    for v in [0u64, 1, 250, 251, 252, 255, 256, 65_535, 65_536] {
        same_as_bincode(v);
        same_as_bincode(v as u16);
        same_as_bincode(v as u32);
        same_as_bincode(v as i16);
        same_as_bincode(-(v as i64));
        same_as_bincode(v as i64);
    }
    for v in [u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
        same_as_bincode(v);
        same_as_bincode(v as u32);
        same_as_bincode(v as i64);
        same_as_bincode(v as i32);
        same_as_bincode(u128::from(v) + 1);
        same_as_bincode(-(i128::from(v)) - 1);
    }
    for v in [i64::MIN, i64::MAX, i64::MIN + 1] {
        same_as_bincode(v);
    }
    same_as_bincode((
        i8::MIN,
        i16::MIN,
        i32::MIN,
        i128::MIN,
        u128::MAX,
        usize::MAX,
    ));
    same_as_bincode((f32::MIN_POSITIVE, f64::NEG_INFINITY, '\u{10FFFF}', 'é', '€'));
}

/// Takes strings and byte buffers only as owned values.
#[derive(Debug, PartialEq)]
struct OnlyOwned(String, Vec<u8>);

impl<'de> Deserialize<'de> for OnlyOwned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Visitor};
        struct Owned<const BYTES: bool>;
        // The misuse is the point: bincode hands `deserialize_string` an owned
        // string, and so must the codec.
        #[allow(clippy::serde_api_misuse)]
        impl<'de> Visitor<'de> for Owned<false> {
            type Value = String;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an owned string")
            }
            fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
        }
        impl<'de> Visitor<'de> for Owned<true> {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an owned byte buffer")
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        struct Text(String);
        impl<'de> Deserialize<'de> for Text {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_string(Owned::<false>).map(Text)
            }
        }
        struct Bytes(Vec<u8>);
        impl<'de> Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_byte_buf(Owned::<true>).map(Bytes)
            }
        }
        let (Text(text), Bytes(bytes)) = <(Text, Bytes)>::deserialize(d)?;
        Ok(OnlyOwned(text, bytes))
    }
}

#[test]
fn a_visitor_that_takes_only_owned_strings_and_byte_buffers_gets_them() {
    let bytes = encode(&("text", ByteBuf::from(vec![1, 2]))).unwrap();
    assert_eq!(
        decode::<OnlyOwned>(&bytes, 64).unwrap(),
        OnlyOwned("text".into(), vec![1, 2])
    );
}
