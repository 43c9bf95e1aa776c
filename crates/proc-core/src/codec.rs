//! The wire codec: how values cross a process boundary.
//!
//! This module is the only place in multiproc that names bincode, so that the codec can be
//! replaced by changing one file. Everything a process receives from another is untrusted:
//! decoding always runs with a size limit, and a value that does not decode, or that leaves
//! bytes over, is an error and never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest encoded value decoded by default: 64 MiB.
pub const DEFAULT_LIMIT: usize = 64 << 20;

/// A hard ceiling on what any decode may claim, whatever limit the caller passes; it bounds
/// the allocations a malicious length prefix can cause.
const HARD_LIMIT: usize = 1 << 32;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<HARD_LIMIT>()
}

/// A value that could not be encoded or decoded.
///
/// ```
/// use proc_core::codec::{self, CodecError};
///
/// let bytes = codec::encode(&"twelve bytes").unwrap();
/// let err = codec::decode::<String>(&bytes, 4).unwrap_err();
/// assert!(matches!(err, CodecError::TooLarge { len: 13, limit: 4 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded (for example a map with non-string keys that the
    /// serializer refuses, or a serializer error raised by a `Serialize` impl).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The bytes are not an encoding of the expected type.
    #[error("decoding failed: {0}")]
    Decode(String),
    /// The encoded value is larger than the limit.
    #[error("encoded value of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes held a complete value followed by bytes that belong to nothing.
    #[error("{extra} bytes left over after the decoded value")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
}

/// Encodes `value` into a new buffer.
///
/// ```
/// let bytes = proc_core::codec::encode(&(7u64, "seven")).unwrap();
/// let back: (u64, String) = proc_core::codec::decode(&bytes, 1024).unwrap();
/// assert_eq!(back, (7, "seven".to_string()));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Appends the encoding of `value` to `buf`, leaving what was there before in place.
///
/// ```
/// let mut buf = vec![0xAA];
/// proc_core::codec::encode_into(&5u32, &mut buf).unwrap();
/// assert_eq!(buf[0], 0xAA);
/// assert_eq!(proc_core::codec::decode::<u32>(&buf[1..], 16).unwrap(), 5);
/// ```
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, buf, config())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a `T` from exactly `bytes`, refusing input longer than `limit`.
///
/// ```
/// use proc_core::codec::{decode, CodecError};
///
/// // A string whose length prefix claims far more bytes than there are.
/// let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0x7F, b'x'], 1024).unwrap_err();
/// assert!(matches!(err, CodecError::Decode(_)));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

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
