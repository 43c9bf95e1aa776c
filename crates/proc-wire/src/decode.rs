//! Decoding from memory: a value from exactly the bytes of a slice
//! ([`decode`](fn@decode)), or built by a seed ([`decode_seed`]), never from more than a
//! limit. Decoding from a [`Source`](crate::Source) is
//! [`decode_from`](crate::decode_from)'s.

use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::deserializer::Decoder;
use crate::error::CodecError;

/// Decodes a `T` from exactly `bytes`, refusing input longer than `limit`.
///
/// The bytes are untrusted: a length prefix may announce far more than follows. Nothing is
/// set aside for announced lengths beyond what the input could hold (see the
/// [crate docs](crate#what-a-decode-may-allocate)), so a few bytes can never make the
/// decoder allocate gigabytes.
///
/// ```
/// use proc_wire::{decode, CodecError};
///
/// // A string whose length prefix claims far more bytes than there are.
/// let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0x7F, b'x'], 1024).unwrap_err();
/// assert!(matches!(err, CodecError::Decode(_)));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_seed(std::marker::PhantomData::<T>, bytes, limit)
}

/// As [`decode`](fn@decode), with a [`DeserializeSeed`]: the value is built by `seed`,
/// which may carry state (for example a vector to append the decoded elements to, instead
/// of a new one).
///
/// ```
/// use serde::de::{Deserializer, DeserializeSeed, SeqAccess, Visitor};
///
/// /// Appends the elements of an encoded `Vec<u32>` to a vector.
/// struct AppendTo<'a>(&'a mut Vec<u32>);
///
/// impl<'de> DeserializeSeed<'de> for AppendTo<'_> {
///     type Value = ();
///     fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
///         d.deserialize_seq(self)
///     }
/// }
///
/// impl<'de> Visitor<'de> for AppendTo<'_> {
///     type Value = ();
///     fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("a sequence of u32")
///     }
///     fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
///         while let Some(x) = seq.next_element()? {
///             self.0.push(x);
///         }
///         Ok(())
///     }
/// }
///
/// let mut all = vec![1];
/// let bytes = proc_wire::encode(&vec![2u32, 3])?;
/// proc_wire::decode_seed(AppendTo(&mut all), &bytes, 64)?;
/// assert_eq!(all, [1, 2, 3]);
/// # Ok::<(), proc_wire::CodecError>(())
/// ```
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
    limit: usize,
) -> Result<S::Value, CodecError> {
    decode_with::<S, false>(seed, bytes, limit)
}

/// As [`decode_seed`], in the layout `FIXED` picks ([`Layout`](crate::Layout) calls it).
pub(crate) fn decode_with<'de, S: DeserializeSeed<'de>, const FIXED: bool>(
    seed: S,
    bytes: &'de [u8],
    limit: usize,
) -> Result<S::Value, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let mut decoder = Decoder::<_, FIXED>::new(bytes);
    let value = decoder.seed(seed).map_err(|e| CodecError::Decode(e.0))?;
    match decoder.left() {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;

    #[test]
    fn round_trips_nested_values() {
        let value = (vec![1u8, 2, 3], Some("x".to_string()), -5i64);
        let bytes = encode(&value).unwrap();
        assert_eq!(
            decode::<(Vec<u8>, Option<String>, i64)>(&bytes, 1 << 10).unwrap(),
            value
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&1u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes, 64),
            Err(CodecError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn truncated_input_is_a_decode_error() {
        let bytes = encode(&"hello".to_string()).unwrap();
        assert!(matches!(
            decode::<String>(&bytes[..3], 64),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn huge_declared_vec_length_does_not_allocate_it() {
        // varint tag 0xFD: a u64 follows; claim 2^40 elements with 1 byte of data.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.push(1);
        assert!(decode::<Vec<u64>>(&bytes, 1 << 10).is_err());
    }
}
