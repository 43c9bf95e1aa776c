//! The codec multiproc uses on every byte between processes: serde values in bincode 2's
//! encoding, byte for byte, decoded from untrusted input with bounded allocation, from a
//! slice or as a stream.
//!
//! Everything a process receives from another is untrusted: decoding always runs with a
//! size limit, and a value that does not decode, or that leaves bytes over, is an error and
//! never a panic. Ten bytes that announce a 4 GiB string are an error, not a 4 GiB
//! allocation; bytes nested ten million levels deep are an error, not a stack overflow.
//!
//! ```
//! use proc_wire::{ByteBuf, CodecError, DEFAULT_LIMIT};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Task {
//!     id: u64,
//!     name: String,
//!     payload: ByteBuf,
//! }
//!
//! let task = Task { id: 7, name: "resize".into(), payload: ByteBuf::from(vec![0u8; 1024]) };
//! let bytes = proc_wire::encode(&task)?;
//! // Bytes from another process: decoded with a limit, into exactly one value.
//! let back: Task = proc_wire::decode(&bytes, DEFAULT_LIMIT)?;
//! assert_eq!(back, task);
//!
//! // bincode 2's standard encoding: `7u8` is one byte, a string its length and its bytes.
//! assert_eq!(proc_wire::encode(&(7u8, "hi"))?, [7, 2, b'h', b'i']);
//!
//! // A length prefix that announces 4 GiB with one byte behind it sets nothing aside.
//! let err = proc_wire::decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0xFF, b'x'], 1024);
//! assert!(matches!(err, Err(CodecError::Decode(_))));
//! # Ok::<(), CodecError>(())
//! ```
//!
//! ## What it offers
//! - [`encode`](fn@encode), [`encode_into`] and [`decode`](fn@decode), [`decode_seed`]: a
//!   value to bytes in memory and back. [`encode_into_at_most`] encodes a value only if it
//!   fits, and otherwise measures it, in one pass.
//! - [`encode_to`] a [`Sink`] and [`decode_from`] a [`Source`]: the same bytes piece by
//!   piece, so that a value on its way to or from another process's memory is copied once.
//! - [`Layout`]: integers compact (the default) or at their full width.
//! - [`ByteBuf`], for large binary payloads; [`CodecError`] and [`StreamError`].
//!
//! ## What a decode may allocate
//! A decoder that reads a `String` by allocating the length its prefix announces and then
//! filling it lets ten bytes that announce 4 GiB allocate 4 GiB. This one checks a string's
//! or byte buffer's length against what is left of the input first. From a slice
//! ([`decode`](fn@decode)) it then copies the bytes from there. From a [`Source`]
//! ([`decode_from`]), which may only know an upper bound of what is left, it gives the
//! string its room at once within that bound, and, from a source that knows no bound, as
//! its bytes arrive, at most twice what has arrived (and at least 64 KiB). A sequence or
//! map tells its visitor at most as many elements as there are bytes left. What a decode sets
//! aside before its elements arrive is then bounded by the input's length (and serde's own
//! cap of 1 MiB on preallocation), whatever the bytes announce.
//!
//! ## The encoding
//! The bytes are bincode 2's standard encoding (little-endian; integers variable-length in
//! [`Compact`](Layout::Compact), at their full width in [`Fixed`](Layout::Fixed)), so that
//! the layout is a known one; the tests check it byte for byte against bincode 2.0.1, which
//! is only a dev-dependency.
//! - `bool`: one byte, 0 or 1. `u8`/`i8`: one byte. Floats: their bits, little-endian.
//!   `char`: its UTF-8 bytes.
//! - Other integers: Fixed writes them at their width, little-endian (`usize` as `u64`).
//!   Compact writes an unsigned value below 251 as one byte, and a larger one as a marker
//!   byte (251: `u16`, 252: `u32`, 253: `u64`, 254: `u128`) followed by the value at that
//!   width; a signed value is zig-zagged first (0, -1, 1, -2, … become 0, 1, 2, 3, …).
//! - Lengths (of strings, byte buffers, sequences and maps) are `u64`s; enum variants are
//!   their index as a `u32`; `Option` is a byte (0: none, 1: some) and then the value.
//! - Structs, tuples and unit values are their fields in order, with nothing around them.
//!
//! ## Why its own code, not bincode's
//! - Speed where values are small: between a value and the buffer there is only code that
//!   inlines away (the input and output traits are generic parameters, each method a few
//!   instructions for a slice or a `Vec`), and no limit to account for on every primitive.
//!   A `(u64, String)`, as a queue carries it, encodes in half the time it took through
//!   bincode and the guard layer, and decodes in four fifths; a long `Vec<u64>` in the
//!   fixed layout, a pool chunk's arguments, costs what it did (`cargo bench -p proc-core
//!   --bench start_join -- codec`).
//! - Safety by construction: a string's or byte buffer's length is checked against what is
//!   left of the input before anything is set aside for it (and from a source that does
//!   not know how much is left, room is given as its bytes arrive, at most twice what
//!   came), and a sequence or map tells its visitor at most as many elements as there are
//!   bytes left. What a decode sets aside before its elements arrive is so bounded by the
//!   input's length, whatever the bytes announce.
//! - No dependency on bincode, which RUSTSEC-2025-0141 marks unmaintained.
//!
//! ## Module map
//! Top to bottom; each module imports only from those below it (and every one from
//! `error`):
//! - `layout`: [`Layout`], Compact or Fixed → `encode`, `decode`
//! - `stream`: [`encode_to`], [`decode_from`] → `serializer`, `deserializer`, `sink`,
//!   `source`
//! - `encode`: [`encode`](fn@encode), [`encode_into`], [`encode_into_at_most`] →
//!   `serializer`, `output`
//! - `decode`: [`decode`](fn@decode), [`decode_seed`] → `deserializer`
//! - `serializer`: the encoding half, serde's `Serializer` → `output`, `varint`, `bulk`
//! - `deserializer`: the decoding half, serde's `Deserializer`, nesting bounded → `input`,
//!   `varint`, `limits`, `bulk`
//! - `bulk`: runs of plain numbers (`Vec<u8>`, `Vec<f64>`, …) recognised by type, copied in
//!   one go to the same bytes
//! - `sink`: [`Sink`], and the serializer's output into one → `output`, `limits`
//! - `source`: [`Source`], and the deserializer's input from one → `input`, `limits`
//! - `output`: where the serializer writes: a buffer, a capped buffer
//! - `input`: where the deserializer reads: a slice; lengths checked against what is left
//! - `varint`: Compact's markers and zig-zag
//! - `limits`: every bound: [`DEFAULT_LIMIT`], nesting depth, stage sizes
//! - `bytes`: [`ByteBuf`]
//! - `error`: [`CodecError`], [`StreamError`], and the errors raised inside serde
//!
//! The unit tests sit in `tests/`, by concern (bincode compatibility, untrusted bytes,
//! sinks, sources), over values of every shape in serde's data model.

mod bulk;
mod bytes;
mod decode;
mod deserializer;
mod encode;
mod error;
mod input;
mod layout;
mod limits;
mod output;
mod serializer;
mod sink;
mod source;
mod stream;
mod varint;

#[cfg(test)]
mod tests;

pub use bytes::ByteBuf;
pub use decode::{decode, decode_seed};
pub use encode::{encode, encode_into, encode_into_at_most};
pub use error::{CodecError, StreamError};
pub use layout::Layout;
pub use limits::DEFAULT_LIMIT;
pub use sink::Sink;
pub use source::Source;
pub use stream::{decode_from, encode_to};
