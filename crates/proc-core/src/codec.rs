//! The wire codec: how values cross a process boundary.
//!
//! This module is the only place in multiproc that names bincode, so that the codec can be
//! replaced by changing one file. Everything a process receives from another is untrusted:
//! decoding always runs with a size limit, and a value that does not decode, or that leaves
//! bytes over, is an error and never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A byte buffer that the codec copies as one block. A `Vec<u8>` goes through serde as a
/// sequence, byte by byte: about 300 MiB/s to decode, where a `ByteBuf` (or a field marked
/// `#[serde(with = "serde_bytes")]`) is a `memcpy`. Use it for large binary payloads.
///
/// ```
/// use proc_core::codec::{self, ByteBuf};
///
/// let payload = ByteBuf::from(vec![7u8; 1 << 20]);
/// let bytes = codec::encode(&payload).unwrap();
/// let back: ByteBuf = codec::decode(&bytes, 2 << 20).unwrap();
/// assert_eq!(back.len(), 1 << 20);
/// ```
pub use serde_bytes::ByteBuf;

/// The largest encoded value decoded by default: 64 MiB.
pub const DEFAULT_LIMIT: usize = 64 << 20;

/// A hard ceiling on what any decode may claim, whatever limit the caller passes.
const HARD_LIMIT: usize = 1 << 32;

/// What a decode may set aside before reading, per byte of input. bincode allocates a
/// `String`, a `Vec` or a byte buffer for the length its prefix announces *before* it reads
/// the elements, within a limit on such claims; that limit is what keeps ten bytes that
/// announce a 4 GiB string from allocating 4 GiB. A value can take more memory than its
/// encoding (a `u64` in one varint byte, `None` in one byte), hence a factor and a floor.
const CLAIM_PER_INPUT_BYTE: usize = 64;

/// What any decode may set aside, however small its input: enough for every ordinary value.
const CLAIM_FLOOR: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<HARD_LIMIT>()
}

/// Decodes with a claim limit fitted to the input. bincode takes the limit as a constant,
/// so the budget is rounded up to one of a few fixed steps.
fn decode_within_budget<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    fn with<T: DeserializeOwned, const LIMIT: usize>(
        bytes: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<LIMIT>())
    }
    let budget = bytes
        .len()
        .saturating_mul(CLAIM_PER_INPUT_BYTE)
        .max(CLAIM_FLOOR);
    if budget <= CLAIM_FLOOR {
        with::<T, CLAIM_FLOOR>(bytes)
    } else if budget <= 1 << 28 {
        with::<T, { 1 << 28 }>(bytes)
    } else if budget <= 1 << 30 {
        with::<T, { 1 << 30 }>(bytes)
    } else {
        with::<T, HARD_LIMIT>(bytes)
    }
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
/// The bytes are untrusted: a length prefix may announce far more than follows. Memory set
/// aside before reading is bounded by 64 bytes per input byte (at least 16 MiB), so a few
/// bytes can never make the decoder allocate gigabytes; a value that truly needs more than
/// that ratio before its elements arrive is refused with a decode error.
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
    let (value, used) = decode_within_budget(bytes).map_err(|e| match e {
        bincode::error::DecodeError::LimitExceeded => CodecError::Decode(format!(
            "the value announces containers of more than {} bytes for {} bytes of input",
            bytes
                .len()
                .saturating_mul(CLAIM_PER_INPUT_BYTE)
                .max(CLAIM_FLOOR),
            bytes.len()
        )),
        e => CodecError::Decode(e.to_string()),
    })?;
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
