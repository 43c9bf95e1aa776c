//! Encoding into memory: a new buffer ([`encode`](fn@encode)), the end of one
//! ([`encode_into`]), or the end of one only if it fits ([`encode_into_at_most`]). Encoding
//! into a [`Sink`](crate::Sink) is [`encode_to`](crate::encode_to)'s.

use serde::Serialize;

use crate::error::CodecError;
use crate::output::Capped;
use crate::serializer::Encoder;

/// Encodes `value` into a new buffer.
///
/// ```
/// let bytes = proc_wire::encode(&(7u64, "seven")).unwrap();
/// let back: (u64, String) = proc_wire::decode(&bytes, 1024).unwrap();
/// assert_eq!(back, (7, "seven".to_string()));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::new();
    encode_into(value, &mut buf)?;
    Ok(buf)
}

/// Appends the encoding of `value` to `buf`, leaving what was there before in place (also
/// when encoding fails: then nothing is appended).
///
/// ```
/// let mut buf = vec![0xAA];
/// proc_wire::encode_into(&5u32, &mut buf).unwrap();
/// assert_eq!(buf[0], 0xAA);
/// assert_eq!(proc_wire::decode::<u32>(&buf[1..], 16).unwrap(), 5);
/// ```
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_with::<T, false>(value, buf)
}

/// As [`encode_into`] if the encoding is at most `cap` bytes long; returns its length
/// either way. A longer one leaves `buf` as it was: past the cap the rest is only counted,
/// a string or byte buffer not copied. So one pass either encodes a small value or measures
/// a large one, which a caller can then stream ([`encode_to`](crate::encode_to)).
///
/// ```
/// let mut buf = Vec::new();
/// assert_eq!(proc_wire::encode_into_at_most(&"short", &mut buf, 16).unwrap(), 6);
/// let long = "x".repeat(100);
/// assert_eq!(proc_wire::encode_into_at_most(&long, &mut buf, 16).unwrap(), 101);
/// assert_eq!(proc_wire::decode::<String>(&buf, 16).unwrap(), "short");
/// ```
#[inline]
pub fn encode_into_at_most<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<usize, CodecError> {
    let start = buf.len();
    let mut capped = Capped::new(buf, cap);
    match Encoder::<false, _>::new(&mut capped).value(value) {
        Ok(()) => Ok(capped.end()),
        Err(e) => {
            buf.truncate(start);
            Err(CodecError::Encode(e.0))
        }
    }
}

/// As [`encode_into`], in the layout `FIXED` picks ([`Layout`](crate::Layout) calls it).
pub(crate) fn encode_with<T: Serialize + ?Sized, const FIXED: bool>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = buf.len();
    Encoder::<FIXED, Vec<u8>>::new(buf)
        .value(value)
        .map_err(|e| {
            buf.truncate(start);
            CodecError::Encode(e.0)
        })
}
