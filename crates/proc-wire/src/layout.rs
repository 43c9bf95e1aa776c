//! [`Layout`]: how integers are laid out, Compact (bincode's variable-length integers, the
//! default) or Fixed (bincode's fixed-width integers).

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::decode::decode_with;
use crate::encode::encode_with;
use crate::error::CodecError;

/// How integers (and the lengths of strings, sequences and maps, and the tags of enums) are
/// laid out in an encoding.
///
/// [`Compact`](Layout::Compact), the layout of [`encode`](fn@crate::encode) and
/// [`decode`](fn@crate::decode) and so of every multiproc queue and connection, writes an
/// integer in as few bytes as its value needs (a `u64` below 251 in one byte, below 65,536
/// in three). [`Fixed`](Layout::Fixed) writes it at its full width (a `u64` in eight
/// bytes): more bytes for small values, no branch on each value's size. A `Vec<u64>` of
/// 200,000 elements encodes about 4× and decodes about 3× faster fixed. A multiproc pool's
/// chunks use it: their bulk is the tasks' numbers, encoded once and decoded once on each
/// side. Floats, `char`s, strings' bytes and `bool`s are the same in
/// both. A value must be decoded in the layout it was encoded in.
///
/// ```
/// use proc_wire::Layout;
///
/// let mut compact = Vec::new();
/// Layout::Compact.encode_into(&vec![1u64, 2, 3], &mut compact)?;
/// let mut fixed = Vec::new();
/// Layout::Fixed.encode_into(&vec![1u64, 2, 3], &mut fixed)?;
/// assert_eq!((compact.len(), fixed.len()), (4, 32));
/// assert_eq!(Layout::Fixed.decode::<Vec<u64>>(&fixed, 64)?, [1, 2, 3]);
/// # Ok::<(), proc_wire::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// Integers in as few bytes as their values need (as bincode's variable-length integers).
    #[default]
    Compact,
    /// Integers at their full width, little-endian.
    Fixed,
}

impl Layout {
    /// As [`encode_into`](fn@crate::encode_into), in this layout.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        buf: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        match self {
            Layout::Compact => encode_with::<T, false>(value, buf),
            Layout::Fixed => encode_with::<T, true>(value, buf),
        }
    }

    /// As [`decode`](fn@crate::decode), in this layout.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8], limit: usize) -> Result<T, CodecError> {
        self.decode_seed(std::marker::PhantomData::<T>, bytes, limit)
    }

    /// As [`decode_seed`](fn@crate::decode_seed), in this layout.
    pub fn decode_seed<'de, S: DeserializeSeed<'de>>(
        self,
        seed: S,
        bytes: &'de [u8],
        limit: usize,
    ) -> Result<S::Value, CodecError> {
        match self {
            Layout::Compact => decode_with::<S, false>(seed, bytes, limit),
            Layout::Fixed => decode_with::<S, true>(seed, bytes, limit),
        }
    }
}
