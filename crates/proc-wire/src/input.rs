//! Where the deserializer reads from: the [`Input`] trait, and a slice, which lends its
//! bytes for as long as it lives. (The other input, which reads from a
//! [`Source`](crate::Source), is [`Streaming`](crate::source::Streaming), beside the trait
//! it serves.)
//!
//! Bounded allocation starts here: a string's or byte buffer's length is checked against
//! what is left of the input before anything is set aside for it.

use crate::error::{Result, WireError};

/// What an [`Input`] gives for a string's or byte buffer's bytes: a slice of the input
/// itself, which a visitor may keep, or a copy that lasts until the next read.
pub(crate) enum Run<'de, 'a> {
    /// Part of the input, for as long as the input lives.
    Borrowed(&'de [u8]),
    /// A copy, held by the input.
    Copied(&'a [u8]),
}

/// Where a [`Decoder`](crate::deserializer::Decoder) reads from: a slice (`&[u8]`), or a
/// [`Source`](crate::Source) through a small stage
/// ([`Streaming`](crate::source::Streaming)). An error leaves unread what it could not read.
pub(crate) trait Input<'de> {
    /// The next byte.
    fn byte(&mut self) -> Result<u8>;
    /// The next `N` bytes.
    fn array<const N: usize>(&mut self) -> Result<[u8; N]>;
    /// At most how many more bytes can be read.
    fn left(&self) -> usize;
    /// The next `len` bytes, borrowed if the input can lend them, else copied.
    fn run(&mut self, len: usize) -> Result<Run<'de, '_>>;
    /// The next `len` bytes, in a vector of their own.
    fn owned(&mut self, len: usize) -> Result<Vec<u8>>;
    /// How many bytes a value whose next `len` bytes are to be read may set aside for them
    /// before they arrive (`len` is at most [`left`](Self::left)).
    fn room_for(&self, len: usize) -> usize;
    /// The longest run to ask [`run`](Self::run) for when the bytes are copied on anyway:
    /// one that the input lends or stages without a copy of its own.
    fn piece(&self) -> usize;
}

/// The input ended before the value did.
#[inline]
pub(crate) fn short() -> WireError {
    WireError("the input ends in the middle of a value".into())
}

/// A length prefix announced more than the input may hold.
#[cold]
pub(crate) fn too_long(len: usize, left: usize) -> WireError {
    WireError(format!(
        "a length of {len} bytes is more than the {left} bytes left"
    ))
}

/// A slice is read by taking bytes off its front.
impl<'de> Input<'de> for &'de [u8] {
    #[inline]
    fn byte(&mut self) -> Result<u8> {
        match self.split_first() {
            Some((&byte, rest)) => {
                *self = rest;
                Ok(byte)
            }
            None => Err(short()),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.split_first_chunk::<N>() {
            Some((bytes, rest)) => {
                *self = rest;
                Ok(*bytes)
            }
            None => Err(short()),
        }
    }

    #[inline]
    fn left(&self) -> usize {
        self.len()
    }

    #[inline]
    fn run(&mut self, len: usize) -> Result<Run<'de, '_>> {
        if len > self.len() {
            return Err(too_long(len, self.len()));
        }
        let (bytes, rest) = self.split_at(len);
        *self = rest;
        Ok(Run::Borrowed(bytes))
    }

    #[inline]
    fn owned(&mut self, len: usize) -> Result<Vec<u8>> {
        match self.run(len)? {
            Run::Borrowed(bytes) | Run::Copied(bytes) => Ok(bytes.to_vec()),
        }
    }

    /// The bytes are all here: room for all of them.
    #[inline]
    fn room_for(&self, len: usize) -> usize {
        len
    }

    /// A slice lends any run.
    #[inline]
    fn piece(&self) -> usize {
        usize::MAX
    }
}
