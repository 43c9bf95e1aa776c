//! The encoder and decoder behind [`Layout`](super::Layout): serde's data model written
//! straight into a `Vec<u8>` (or, for [`encode_to`](super::encode_to), a few KiB at a time
//! into a sink, with long runs passed on from the value) and read straight out of a slice
//! (or, for [`decode_from`](super::decode_from), out of a source: the small parts through a
//! stage of a few KiB, long strings and byte buffers straight into the vectors they become).
//!
//! The bytes are bincode 2's standard encoding (little-endian; integers variable-length in
//! [`Compact`](super::Layout::Compact), at their full width in
//! [`Fixed`](super::Layout::Fixed)), so that the layout is a known one, and the tests check
//! it byte for byte against bincode. Owning the code, rather than wrapping bincode's, gives
//! three things:
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
//!   came), and a sequence or map tells its
//!   visitor at most as many elements as there are bytes left. What a decode sets aside
//!   before its elements arrive is so bounded by the input's length, whatever the bytes
//!   announce.
//! - No dependency on bincode, which RUSTSEC-2025-0141 marks unmaintained.
//!
//! ## The encoding
//! - `bool`: one byte, 0 or 1. `u8`/`i8`: one byte. Floats: their bits, little-endian.
//!   `char`: its UTF-8 bytes.
//! - Other integers: Fixed writes them at their width, little-endian (`usize` as `u64`).
//!   Compact writes an unsigned value below 251 as one byte, and a larger one as a marker
//!   byte (251: `u16`, 252: `u32`, 253: `u64`, 254: `u128`) followed by the value at that
//!   width; a signed value is zig-zagged first (0, -1, 1, -2, … become 0, 1, 2, 3, …).
//! - Lengths (of strings, byte buffers, sequences and maps) are `u64`s; enum variants are
//!   their index as a `u32`; `Option` is a byte (0: none, 1: some) and then the value.
//! - Structs, tuples and unit values are their fields in order, with nothing around them.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde::ser::{self, Serialize};

/// Why a value did not encode or decode: the message goes into a
/// [`CodecError`](super::CodecError).
#[derive(Debug)]
pub(super) struct WireError(pub(super) String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl ser::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

impl de::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

type Result<T, E = WireError> = std::result::Result<T, E>;

/// Compact's markers: the byte before a value that did not fit in one byte.
const U16_MARKER: u8 = 251;
const U32_MARKER: u8 = 252;
const U64_MARKER: u8 = 253;
const U128_MARKER: u8 = 254;

#[inline]
fn zigzag(v: i128) -> u128 {
    if v < 0 {
        !(v as u128) * 2 + 1
    } else {
        (v as u128) * 2
    }
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    if v < 0 {
        !(v as u64) * 2 + 1
    } else {
        (v as u64) * 2
    }
}

#[inline]
fn unzigzag(n: u128) -> i128 {
    if n.is_multiple_of(2) {
        (n / 2) as i128
    } else {
        !(n / 2) as i128
    }
}

#[inline]
fn unzigzag64(n: u64) -> i64 {
    if n.is_multiple_of(2) {
        (n / 2) as i64
    } else {
        !(n / 2) as i64
    }
}

/// Where an [`Encoder`] writes: a buffer ([`Vec<u8>`]), a buffer with a cap
/// ([`Capped`]), or a small buffer that passes what it holds on to a sink ([`Streamed`]).
pub(super) trait Out {
    /// The buffer that the small parts of a value (numbers, markers, lengths) go into.
    fn staged(&mut self) -> &mut Vec<u8>;
    /// A run of a value's bytes (a string's or a byte buffer's), of any length.
    fn run(&mut self, bytes: &[u8]) -> Result<()>;
    /// Called after each part of a compound value: where staged bytes may be passed on.
    fn checkpoint(&mut self) -> Result<()>;
}

impl Out for Vec<u8> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        self
    }

    #[inline]
    fn run(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A buffer that keeps an encoding only while it is at most `cap` bytes long. Past that,
/// the rest is counted and not kept: a run is not copied, and the small parts staged since
/// the last checkpoint are dropped at the next one. So one pass gives either the encoding
/// or the length of one too long to keep.
pub(super) struct Capped<'v> {
    buf: &'v mut Vec<u8>,
    /// Where the encoding starts in `buf`.
    start: usize,
    /// The end of `buf` that the encoding may reach.
    cap: usize,
    /// Bytes of the encoding counted and not kept: past the cap once not 0.
    dropped: usize,
}

impl<'v> Capped<'v> {
    pub(super) fn new(buf: &'v mut Vec<u8>, cap: usize) -> Self {
        let start = buf.len();
        Capped {
            buf,
            start,
            cap: start.saturating_add(cap),
            dropped: 0,
        }
    }

    /// Ends the encoding: its length, kept (`buf` holds it) if at most the cap, else
    /// dropped (`buf` holds what it held before).
    pub(super) fn end(mut self) -> usize {
        self.drop_if_over();
        self.dropped + (self.buf.len() - self.start)
    }

    /// Drops what is kept of the encoding once it is past the cap.
    fn drop_if_over(&mut self) {
        if self.dropped > 0 || self.buf.len() > self.cap {
            self.drop_kept();
        }
    }

    /// Counts what is kept of the encoding as dropped, and drops it.
    fn drop_kept(&mut self) {
        self.dropped += self.buf.len() - self.start;
        self.buf.truncate(self.start);
    }
}

impl Out for Capped<'_> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    #[inline]
    fn run(&mut self, bytes: &[u8]) -> Result<()> {
        if self.dropped == 0 && self.buf.len() + bytes.len() <= self.cap {
            self.buf.extend_from_slice(bytes);
        } else {
            self.drop_kept();
            self.dropped += bytes.len();
        }
        Ok(())
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<()> {
        self.drop_if_over();
        Ok(())
    }
}

/// Staged bytes are passed on to the sink once there are this many: few enough that the
/// buffer stays in the core's first-level cache.
const STAGE_BYTES: usize = 8 << 10;

/// A run at least this long goes to the sink from the value itself, not through the stage.
const PASS_THROUGH: usize = 2 << 10;

/// Passes an encoding on to a [`Sink`](super::Sink) in pieces: small parts through a
/// buffer of a few KiB, long runs straight from the value, so that a large byte buffer is
/// copied once, by the sink. `stopped` holds the sink's error once it refused a piece.
pub(super) struct Streamed<'s, S: super::Sink + ?Sized> {
    stage: Vec<u8>,
    sink: &'s mut S,
    pub(super) stopped: Option<S::Error>,
}

impl<'s, S: super::Sink + ?Sized> Streamed<'s, S> {
    pub(super) fn new(sink: &'s mut S) -> Self {
        Streamed {
            stage: Vec::with_capacity(STAGE_BYTES + 64),
            sink,
            stopped: None,
        }
    }

    fn pass(&mut self, bytes: &[u8]) -> Result<()> {
        let passed = self.sink.write(bytes);
        self.stopped_on(passed)
    }

    /// What the sink's answer means to the encoder: go on, or stop (keeping the reason).
    fn stopped_on(&mut self, passed: Result<(), S::Error>) -> Result<()> {
        passed.map_err(|e| {
            self.stopped = Some(e);
            WireError("the sink took no more bytes".into())
        })
    }

    /// Passes the staged bytes on.
    pub(super) fn flush(&mut self) -> Result<()> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let passed = self.sink.write(&self.stage);
        self.stage.clear();
        self.stopped_on(passed)
    }
}

impl<S: super::Sink + ?Sized> Out for Streamed<'_, S> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        &mut self.stage
    }

    fn run(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() >= PASS_THROUGH {
            self.flush()?;
            return self.pass(bytes);
        }
        // So that a run never takes the stage past its room.
        if self.stage.len() + bytes.len() > STAGE_BYTES {
            self.flush()?;
        }
        self.stage.extend_from_slice(bytes);
        self.checkpoint()
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<()> {
        if self.stage.len() >= STAGE_BYTES {
            return self.flush();
        }
        Ok(())
    }
}

/// Writes values into an [`Out`]; `FIXED` picks the layout of integers.
pub(super) struct Encoder<'a, const FIXED: bool, O: Out + ?Sized = Vec<u8>> {
    out: &'a mut O,
}

impl<'a, const FIXED: bool, O: Out + ?Sized> Encoder<'a, FIXED, O> {
    pub(super) fn new(out: &'a mut O) -> Self {
        Encoder { out }
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.out.staged().push(byte);
    }

    #[inline]
    fn extend(&mut self, bytes: &[u8]) {
        self.out.staged().extend_from_slice(bytes);
    }

    /// Compact's variable-length form of an unsigned value.
    #[inline]
    fn varint(&mut self, v: u64) {
        if v < u64::from(U16_MARKER) {
            self.push(v as u8);
        } else {
            self.wide_varint(v);
        }
    }

    /// `varint` of a value that takes a marker byte.
    #[inline(never)]
    fn wide_varint(&mut self, v: u64) {
        if let Ok(v) = u16::try_from(v) {
            self.push(U16_MARKER);
            self.extend(&v.to_le_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.push(U32_MARKER);
            self.extend(&v.to_le_bytes());
        } else {
            self.push(U64_MARKER);
            self.extend(&v.to_le_bytes());
        }
    }

    /// As `varint`, for 128-bit values.
    fn varint128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) => self.varint(v),
            Err(_) => {
                self.push(U128_MARKER);
                self.extend(&v.to_le_bytes());
            }
        }
    }

    /// An integer: its little-endian bytes in Fixed; in Compact, `compact` (its value, or
    /// its zig-zagged value if it is signed) in variable length.
    #[inline]
    fn int<const N: usize>(&mut self, le: [u8; N], compact: impl FnOnce() -> u64) {
        if FIXED {
            self.extend(&le);
        } else {
            self.varint(compact());
        }
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.int(v.to_le_bytes(), || v.into());
    }

    #[inline]
    fn u64(&mut self, v: u64) {
        self.int(v.to_le_bytes(), || v);
    }

    #[inline]
    fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }
}

impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::Serializer for &'b mut Encoder<'a, FIXED, O> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.push(u8::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.push(v as u8);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v.into()));
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v.into()));
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v));
        Ok(())
    }

    #[inline]
    fn serialize_i128(self, v: i128) -> Result<()> {
        if FIXED {
            self.extend(&v.to_le_bytes());
        } else {
            self.varint128(zigzag(v));
        }
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.int(v.to_le_bytes(), || v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.u32(v);
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.u64(v);
        Ok(())
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<()> {
        if FIXED {
            self.extend(&v.to_le_bytes());
        } else {
            self.varint128(v);
        }
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.extend(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.extend(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        self.extend(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.len(v.len());
        self.out.run(v)
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.push(1);
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.u32(index);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.u32(index);
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        let len = len.ok_or_else(|| WireError("a sequence must know its length".into()))?;
        self.len(len);
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.u32(index);
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        let len = len.ok_or_else(|| WireError("a map must know its length".into()))?;
        self.len(len);
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.u32(index);
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The parts of a sequence, tuple, map or struct are their values in order.
macro_rules! compound {
    ($($trait:ident $method:ident $(($key:ident))?;)*) => {$(
        impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::$trait for &'b mut Encoder<'a, FIXED, O> {
            type Ok = ();
            type Error = WireError;

            #[inline]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($key: &'static str,)?
                value: &T,
            ) -> Result<()> {
                $(let _ = $key;)?
                value.serialize(&mut **self)?;
                self.out.checkpoint()
            }

            #[inline]
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq serialize_element;
    SerializeTuple serialize_element;
    SerializeTupleStruct serialize_field;
    SerializeTupleVariant serialize_field;
    SerializeStruct serialize_field(key);
    SerializeStructVariant serialize_field(key);
}

impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::SerializeMap
    for &'b mut Encoder<'a, FIXED, O>
{
    type Ok = ();
    type Error = WireError;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)?;
        self.out.checkpoint()
    }

    #[inline]
    fn end(self) -> Result<()> {
        Ok(())
    }
}

/// What an [`Input`] gives for a string's or byte buffer's bytes: a slice of the input
/// itself, which a visitor may keep, or a copy that lasts until the next read.
pub(super) enum Run<'de, 'a> {
    /// Part of the input, for as long as the input lives.
    Borrowed(&'de [u8]),
    /// A copy, held by the input.
    Copied(&'a [u8]),
}

/// Where a [`Decoder`] reads from: a slice (`&[u8]`), or a [`Source`](super::Source)
/// through a small stage ([`Streaming`]). An error leaves unread what it could not read.
pub(super) trait Input<'de> {
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
}

#[cold]
fn not_utf8(e: std::str::Utf8Error) -> WireError {
    WireError(format!("a string is not UTF-8: {e}"))
}

#[inline]
fn short() -> WireError {
    WireError("the input ends in the middle of a value".into())
}

#[cold]
fn too_long(len: usize, left: usize) -> WireError {
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
}

/// A string or byte buffer read from a [`Streaming`] input is given room for at most this
/// many bytes before any arrive, and then room for at most twice what has arrived: a
/// length prefix that announces more than comes costs at most this, or twice what came.
const GROW_FLOOR: usize = 64 << 10;

/// Why a [`Streaming`] input stopped for good: once set, it reads nothing more, and the
/// decode fails with this whatever the value made of the error it was given.
pub(super) enum Fault<E> {
    /// The source failed, with this error.
    Source(E),
    /// The source gave more than the limit: `len` bytes so far.
    TooLarge { len: usize },
    /// The source did not keep the [`Source::read`](super::Source::read) contract.
    Broken(String),
}

/// Takes bytes from a [`Source`](super::Source), counting them against a limit.
struct Reader<'s, S: super::Source + ?Sized> {
    source: &'s mut S,
    /// How many bytes the source has given.
    read: usize,
    limit: usize,
    fault: Option<Fault<S::Error>>,
}

impl<S: super::Source + ?Sized> Reader<'_, S> {
    /// Appends at most `at_most` (at least 1) bytes to `dest` and returns how many; 0 at
    /// the end of the encoding. It asks the source for no more than one byte past the
    /// limit: that byte is the proof that the input is over it.
    fn pull(&mut self, dest: &mut Vec<u8>, at_most: usize) -> Result<usize> {
        if self.fault.is_some() {
            return Err(Self::stopped());
        }
        let at_most = at_most.min(self.limit.saturating_sub(self.read).saturating_add(1));
        let before = dest.len();
        let fault = match self.source.read(dest, at_most) {
            Err(e) => Fault::Source(e),
            Ok(n) if n > at_most => Fault::Broken(format!(
                "the source gave {n} bytes where at most {at_most} were asked for"
            )),
            Ok(n) if before.checked_add(n) != Some(dest.len()) => Fault::Broken(format!(
                "the source said it gave {n} bytes, but the buffer went from {before} to {} bytes",
                dest.len()
            )),
            Ok(n) => {
                self.read = self.read.saturating_add(n);
                if self.read <= self.limit {
                    return Ok(n);
                }
                Fault::TooLarge { len: self.read }
            }
        };
        // Keep what the input holds as it was; nothing is read after a fault.
        dest.truncate(before);
        let err = Self::stopped();
        self.fault = Some(fault);
        Err(err)
    }

    /// The error the decoder unwinds with: `decode_from` reports the fault kept here
    /// instead, whatever the value made of this one.
    #[cold]
    fn stopped() -> WireError {
        WireError("the source stopped".into())
    }
}

/// Reads from a [`Source`](super::Source): the small parts of a value (numbers, markers,
/// lengths) through a stage of a few KiB, a long string or byte buffer straight into the
/// vector that becomes its value, so that it is copied once, by the source.
pub(super) struct Streaming<'s, S: super::Source + ?Sized> {
    reader: Reader<'s, S>,
    /// Bytes read from the source; those before `at` are used.
    stage: Vec<u8>,
    at: usize,
    /// Where a run longer than the stage is copied, for a visitor that only borrows it.
    scratch: Vec<u8>,
}

impl<'s, S: super::Source + ?Sized> Streaming<'s, S> {
    /// Reads from `source`, at most `limit` bytes.
    pub(super) fn new(source: &'s mut S, limit: usize) -> Self {
        Streaming {
            reader: Reader {
                source,
                read: 0,
                limit,
                fault: None,
            },
            stage: Vec::with_capacity(STAGE_BYTES),
            at: 0,
            scratch: Vec::new(),
        }
    }

    /// The bytes staged and not yet used.
    #[inline]
    fn unread(&self) -> &[u8] {
        self.stage.get(self.at..).unwrap_or_default()
    }

    /// Reads until at least `need` (at most [`STAGE_BYTES`]) bytes are staged and unused.
    #[inline(never)]
    fn fill(&mut self, need: usize) -> Result<()> {
        self.stage.drain(..self.at.min(self.stage.len()));
        self.at = 0;
        while self.stage.len() < need {
            let room = STAGE_BYTES.saturating_sub(self.stage.len());
            if self.reader.pull(&mut self.stage, room)? == 0 {
                return Err(short());
            }
        }
        Ok(())
    }

    /// An error unless the source may have `len` bytes left, counting those staged. (Not
    /// the limit: a run past it fails as too large when the limit is crossed, as
    /// [`decode`](super::decode) fails for input past it.)
    #[inline]
    fn check_len(&self, len: usize) -> Result<()> {
        let left = self
            .unread()
            .len()
            .saturating_add(self.reader.source.left_at_most());
        if len > left {
            return Err(too_long(len, left));
        }
        Ok(())
    }

    /// Appends the next `len` bytes to the empty `dest`: the staged ones, then the rest
    /// straight from the source. `dest` gets its room at once from a source that knows
    /// how much it has left (`check_len` held `len` to that), else as the bytes arrive (see
    /// [`GROW_FLOOR`]): growing a heap block copies it, half the run again over the
    /// doublings.
    fn take_into(&mut self, dest: &mut Vec<u8>, len: usize) -> Result<()> {
        let mut room = len.min(Input::left(self));
        if self.reader.source.left_at_most() == usize::MAX {
            room = room.min(GROW_FLOOR);
        }
        dest.reserve_exact(room);
        let staged = len.min(self.unread().len());
        dest.extend_from_slice(self.unread().get(..staged).unwrap_or_default());
        self.at += staged;
        while dest.len() < len {
            if dest.len() == dest.capacity() {
                let room = len.min(dest.len().saturating_mul(2).max(GROW_FLOOR));
                dest.reserve_exact(room - dest.len());
            }
            let at_most = (dest.capacity() - dest.len()).min(len - dest.len());
            if self.reader.pull(dest, at_most)? == 0 {
                return Err(short());
            }
        }
        Ok(())
    }

    /// After the value: how many bytes are left over. The staged ones if there are any,
    /// else 1 if the source gives one more byte when asked for it, else 0. No more is read:
    /// the count is at least one byte when there are any, not all of them.
    pub(super) fn extra(&mut self) -> Result<usize> {
        if self.unread().is_empty() {
            self.stage.clear();
            self.at = 0;
            self.reader.pull(&mut self.stage, 1)?;
        }
        Ok(self.unread().len())
    }

    /// Why the input stopped for good, if it did.
    pub(super) fn into_fault(self) -> Option<Fault<S::Error>> {
        self.reader.fault
    }
}

impl<'de, S: super::Source + ?Sized> Input<'de> for Streaming<'_, S> {
    #[inline]
    fn byte(&mut self) -> Result<u8> {
        if let Some(&byte) = self.stage.get(self.at) {
            self.at += 1;
            return Ok(byte);
        }
        self.fill(1)?;
        let byte = *self.unread().first().ok_or_else(short)?;
        self.at += 1;
        Ok(byte)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.unread().len() < N {
            self.fill(N)?;
        }
        let bytes = *self.unread().first_chunk::<N>().ok_or_else(short)?;
        self.at += N;
        Ok(bytes)
    }

    /// The bytes staged, and what the source may have left, up to the limit: no more can
    /// be read.
    #[inline]
    fn left(&self) -> usize {
        let reader = &self.reader;
        let more = reader
            .source
            .left_at_most()
            .min(reader.limit.saturating_sub(reader.read));
        self.unread().len().saturating_add(more)
    }

    fn run(&mut self, len: usize) -> Result<Run<'de, '_>> {
        if len > self.unread().len() {
            self.check_len(len)?;
            if len > STAGE_BYTES {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let taken = self.take_into(&mut scratch, len);
                self.scratch = scratch;
                taken?;
                return Ok(Run::Copied(&self.scratch));
            }
            self.fill(len)?;
        }
        let start = self.at;
        self.at += len;
        let bytes = self.stage.get(start..self.at).ok_or_else(short)?;
        Ok(Run::Copied(bytes))
    }

    fn owned(&mut self, len: usize) -> Result<Vec<u8>> {
        self.check_len(len)?;
        let mut dest = Vec::new();
        self.take_into(&mut dest, len)?;
        Ok(dest)
    }
}

/// Reads values from untrusted bytes, from an [`Input`]; `FIXED` picks the layout of
/// integers.
pub(super) struct Decoder<'de, I: Input<'de>, const FIXED: bool> {
    input: I,
    /// How many sequences, maps, structs, tuples, options, newtypes and enums the value
    /// being read is inside of, at this point.
    depth: u32,
    _de: std::marker::PhantomData<&'de [u8]>,
}

/// How deep a value may be nested. Each level is a call on the stack, and bytes from
/// another process can nest as deep as they are long (one byte a level, for an enum that
/// holds itself): without a bound, a few megabytes would overflow the stack, which aborts
/// the process. serde_json bounds it at 128 as well.
const MAX_DEPTH: u32 = 128;

impl<'de, I: Input<'de>, const FIXED: bool> Decoder<'de, I, FIXED> {
    pub(super) fn new(input: I) -> Self {
        Decoder {
            input,
            depth: 0,
            _de: std::marker::PhantomData,
        }
    }

    /// The input, with what is left of it.
    pub(super) fn into_input(self) -> I {
        self.input
    }

    /// Runs `f` one level deeper in the value; an error past [`MAX_DEPTH`].
    #[inline]
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(WireError(format!(
                "the value is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// At most how many bytes are left unread (exactly, for a slice).
    pub(super) fn left(&self) -> usize {
        self.input.left()
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.input.array()
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        self.input.byte()
    }

    /// Compact's variable-length form of an unsigned value of at most 64 bits, at most
    /// `widest` wide (the marker of the type being read).
    #[inline]
    fn varint(&mut self, widest: u8) -> Result<u64> {
        let first = self.byte()?;
        if first < U16_MARKER {
            return Ok(first.into());
        }
        self.wide_varint(first, widest)
    }

    /// The part of `varint` after a marker byte.
    #[inline(never)]
    fn wide_varint(&mut self, marker: u8, widest: u8) -> Result<u64> {
        match marker {
            U16_MARKER => Ok(u16::from_le_bytes(self.array()?).into()),
            U32_MARKER if widest >= U32_MARKER => Ok(u32::from_le_bytes(self.array()?).into()),
            U64_MARKER if widest >= U64_MARKER => Ok(u64::from_le_bytes(self.array()?)),
            _ => Err(Self::not_an_integer(marker)),
        }
    }

    /// As `varint`, for 128-bit values.
    fn varint128(&mut self) -> Result<u128> {
        let first = self.byte()?;
        if first == U128_MARKER {
            return Ok(u128::from_le_bytes(self.array()?));
        }
        if first < U16_MARKER {
            return Ok(first.into());
        }
        self.wide_varint(first, U64_MARKER).map(u128::from)
    }

    #[cold]
    fn not_an_integer(marker: u8) -> WireError {
        WireError(format!(
            "byte {marker} does not begin an integer of this width"
        ))
    }

    #[inline]
    fn u16(&mut self) -> Result<u16> {
        if FIXED {
            return Ok(u16::from_le_bytes(self.array()?));
        }
        Ok(self.varint(U16_MARKER)? as u16)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        if FIXED {
            return Ok(u32::from_le_bytes(self.array()?));
        }
        Ok(self.varint(U32_MARKER)? as u32)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64> {
        if FIXED {
            return Ok(u64::from_le_bytes(self.array()?));
        }
        self.varint(U64_MARKER)
    }

    #[inline]
    fn u128(&mut self) -> Result<u128> {
        if FIXED {
            return Ok(u128::from_le_bytes(self.array()?));
        }
        self.varint128()
    }

    #[inline]
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A signed value of at most 64 bits that Compact writes zig-zagged, at most `widest`
    /// wide.
    #[inline]
    fn signed(&mut self, widest: u8) -> Result<i64> {
        self.varint(widest).map(unzigzag64)
    }

    #[inline]
    fn len(&mut self) -> Result<usize> {
        let len = self.u64()?;
        usize::try_from(len).map_err(|_| WireError(format!("a length of {len} is too large")))
    }

    /// A string's or byte buffer's bytes: borrowed from a slice, copied from a stream.
    #[inline]
    fn bytes(&mut self) -> Result<Run<'de, '_>> {
        let len = self.len()?;
        self.input.run(len)
    }

    /// A string's or byte buffer's bytes, in a vector of their own.
    #[inline]
    fn owned(&mut self) -> Result<Vec<u8>> {
        let len = self.len()?;
        self.input.owned(len)
    }

    /// `len` elements (or map entries) in a row, reporting no more than there are bytes
    /// left to their visitor.
    #[inline]
    fn elements(&mut self, len: usize) -> Elements<'_, 'de, I, FIXED> {
        Elements {
            de: self,
            left: len,
        }
    }
}

macro_rules! signed {
    ($($method:ident $visit:ident $ty:ty, $marker:expr;)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            if FIXED {
                return visitor.$visit(<$ty>::from_le_bytes(self.array()?));
            }
            // At most as wide as the type's unsigned twin, so the value fits the type.
            visitor.$visit(self.signed($marker)? as $ty)
        }
    )*};
}

/// Values read by one of the decoder's own methods.
macro_rules! unsigned {
    ($($method:ident $visit:ident $read:ident;)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.$read()?)
        }
    )*};
}

impl<'de, I: Input<'de>, const FIXED: bool> de::Deserializer<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding does not say what type a value is: deserialize_any cannot be used".into(),
        ))
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(WireError(format!("byte {other} is not a bool"))),
        }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.byte()? as i8)
    }

    signed! {
        deserialize_i16 visit_i16 i16, U16_MARKER;
        deserialize_i32 visit_i32 i32, U32_MARKER;
        deserialize_i64 visit_i64 i64, U64_MARKER;
    }

    unsigned! {
        deserialize_u8 visit_u8 byte;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_u128 visit_u128 u128;
        deserialize_f32 visit_f32 f32;
        deserialize_f64 visit_f64 f64;
    }

    #[inline]
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if FIXED {
            return visitor.visit_i128(i128::from_le_bytes(self.array()?));
        }
        visitor.visit_i128(unzigzag(self.varint128()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let first = self.byte()?;
        let bad = || WireError(format!("byte {first} does not begin a char"));
        // The first byte says how many follow; a char cut short is not a char.
        let mut utf8 = [first, 0, 0, 0];
        let width = match first {
            0x00..=0x7F => 1,
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(bad()),
        };
        for byte in &mut utf8[1..width] {
            *byte = self.byte().map_err(|_| bad())?;
        }
        let c = std::str::from_utf8(&utf8[..width])
            .ok()
            .and_then(|s| s.chars().next())
            .ok_or_else(bad)?;
        visitor.visit_char(c)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes()? {
            Run::Borrowed(bytes) => {
                visitor.visit_borrowed_str(std::str::from_utf8(bytes).map_err(not_utf8)?)
            }
            Run::Copied(bytes) => visitor.visit_str(std::str::from_utf8(bytes).map_err(not_utf8)?),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let text = String::from_utf8(self.owned()?).map_err(|e| not_utf8(e.utf8_error()))?;
        visitor.visit_string(text)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes()? {
            Run::Borrowed(bytes) => visitor.visit_borrowed_bytes(bytes),
            Run::Copied(bytes) => visitor.visit_bytes(bytes),
        }
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_byte_buf(self.owned()?)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => self.nested(|de| visitor.visit_some(de)),
            other => Err(WireError(format!("byte {other} is not an Option's tag"))),
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_newtype_struct(de))
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_map(de.elements(len)))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(fields.len())))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_enum(de))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding holds no field or variant names: deserialize_identifier cannot be used"
                .into(),
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding does not say how long a value is: deserialize_ignored_any cannot be used"
                .into(),
        ))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple or struct, or the entries of a map.
struct Elements<'a, 'de, I: Input<'de>, const FIXED: bool> {
    de: &'a mut Decoder<'de, I, FIXED>,
    left: usize,
}

impl<'de, I: Input<'de>, const FIXED: bool> Elements<'_, 'de, I, FIXED> {
    /// The next element (or key), `None` once all are read.
    #[inline]
    fn next<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    /// No more than there are bytes left: a visitor that sets room aside by this (serde's
    /// `Vec` does, up to 1 MiB) cannot be made to set aside more than the input could fill.
    #[inline]
    fn hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.left()))
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> SeqAccess<'de> for Elements<'_, 'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> MapAccess<'de> for Elements<'_, 'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    #[inline]
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        seed.deserialize(&mut *self.de)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> EnumAccess<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;
    type Variant = Self;

    #[inline]
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        let index = self.u32()?;
        let value = seed.deserialize(IntoDeserializer::<WireError>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> VariantAccess<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        seed.deserialize(self)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(self.elements(len))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(self.elements(fields.len()))
    }
}
