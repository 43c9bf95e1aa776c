//! Bytes that are no value, bytes changed at random, values nested too deep and lengths
//! that announce more than follows: errors, never a panic, a stack overflow or an
//! allocation the input cannot fill.

use serde::Deserialize;

use super::*;
use crate::{CodecError, Layout, decode};

#[test]
fn bytes_that_are_no_value_are_errors_not_panics() {
    let bad: [(&[u8], &str); 6] = [
        (&[2], "bool"),
        (&[3], "option"),
        (&[0xFF], "char"),
        (&[0xE2, 0x82], "char"),
        (&[0xFF], "u64"),
        (&[0xFD, 0, 0, 0, 0, 1, 0, 0, 0], "u32"),
    ];
    for (bytes, what) in bad {
        let result = match what {
            "bool" => decode::<bool>(bytes, 64).map(drop),
            "option" => decode::<Option<u8>>(bytes, 64).map(drop),
            "char" => decode::<char>(bytes, 64).map(drop),
            "u64" => decode::<u64>(bytes, 64).map(drop),
            _ => decode::<u32>(bytes, 64).map(drop),
        };
        assert!(
            matches!(result, Err(CodecError::Decode(_))),
            "{what} {bytes:?}"
        );
    }
    // A string that is not UTF-8, and an enum variant that does not exist.
    assert!(decode::<String>(&[2, 0xC3, 0x28], 64).is_err());
    assert!(decode::<Shape>(&[9], 64).is_err());
}

#[test]
fn any_bytes_at_all_decode_or_fail_without_a_panic() {
    // splitmix64: the same inputs on every run.
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for layout in [Layout::Compact, Layout::Fixed] {
        let valid = ours(&everything(), layout);
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            // A few bytes changed, and maybe the end cut off.
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() % bytes.len() as u64) as usize);
            }
            let _ = layout.decode::<Everything>(&bytes, bytes.len());
            let noise: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = layout.decode::<Everything>(&noise, 64);
            let _ = layout.decode::<Vec<Option<(String, char)>>>(&noise, 64);
        }
    }
}

#[test]
fn a_value_nested_deeper_than_the_bound_is_an_error_not_a_stack_overflow() {
    // Shape::Wrapped (variant 1) around Shape::Nothing (variant 0), `levels` deep.
    let nested = |levels: usize| {
        let mut bytes = vec![1u8; levels];
        bytes.push(0);
        bytes
    };
    // Inside the Vec of one level, the enum's own levels: 100 of them decode.
    let fine = nested(100);
    let mut shape = decode::<Shape>(&fine, fine.len()).unwrap();
    for _ in 0..100 {
        shape = match shape {
            Shape::Wrapped(inner) => *inner,
            other => panic!("expected Wrapped, got {other:?}"),
        };
    }
    assert_eq!(shape, Shape::Nothing);
    // Ten million levels in ten megabytes would overflow any thread's stack.
    let deep = nested(10_000_000);
    let err = decode::<Shape>(&deep, deep.len()).unwrap_err();
    assert!(err.to_string().contains("nested more than 128"), "{err}");
    assert!(
        Layout::Fixed
            .decode::<Vec<Vec<Vec<u8>>>>(&[0; 8], 8)
            .is_ok()
    );
}

/// Reports (as its error) the length its sequence announces, which a naive
/// collection would preallocate.
#[derive(Debug)]
struct Announced;

impl<'de> Deserialize<'de> for Announced {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Peek;
        impl<'de> serde::de::Visitor<'de> for Peek {
            type Value = Announced;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Announced, A::Error> {
                Err(serde::de::Error::custom(format!(
                    "announced {:?}",
                    seq.size_hint()
                )))
            }
        }
        d.deserialize_seq(Peek)
    }
}

#[test]
fn the_length_a_sequence_reports_is_never_more_than_the_input_is_long() {
    // Tag 0xFD: a u64 length follows, 2^40 elements announced in 10 bytes.
    let mut bytes = vec![0xFD];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    bytes.push(1);
    let err = decode::<Announced>(&bytes, 64).unwrap_err();
    assert!(err.to_string().contains("announced Some(1)"), "{err}");
}
