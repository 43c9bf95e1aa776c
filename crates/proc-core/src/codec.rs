//! The wire codec: how values cross a process boundary.
//!
//! Everything a process receives from another is untrusted: decoding always runs with a
//! size limit, and a value that does not decode, or that leaves bytes over, is an error and
//! never a panic.
//!
//! The encoding is bincode 2's (the `wire` module says it byte by byte), written and read by
//! this crate's own code: the tests check it against bincode, which is only a
//! dev-dependency.
//!
//! ## What a decode may allocate
//! A decoder that reads a `String` by allocating the length its prefix announces and then
//! filling it lets ten bytes that announce 4 GiB allocate 4 GiB. This one checks a string's
//! or byte buffer's length against what is left of the input first. From a slice
//! ([`decode`]) it then copies the bytes from there. From a [`Source`] ([`decode_from`]),
//! which may only know an upper bound of what is left, it gives the string its room at
//! once within that bound, and, from a source that knows no bound, as its bytes arrive, at
//! most twice what has arrived (and at least 64 KiB). A sequence or map
//! tells its visitor at most as many elements as there are bytes left. What a decode sets
//! aside before its elements arrive is then bounded by the input's length (and serde's own
//! cap of 1 MiB on preallocation), whatever the bytes announce.

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

mod wire;

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

/// How integers (and the lengths of strings, sequences and maps, and the tags of enums) are
/// laid out in an encoding.
///
/// [`Compact`](Layout::Compact), the layout of [`encode`] and [`decode`] and so of every
/// queue and connection, writes an integer in as few bytes as its value needs (a `u64`
/// below 251 in one byte, below 65,536 in three). [`Fixed`](Layout::Fixed) writes it at its
/// full width (a `u64` in eight bytes): more bytes for small values, no branch on each
/// value's size. A `Vec<u64>` of 200,000 elements encodes about 4× and decodes about 3×
/// faster fixed. A pool's chunks use it: their bulk is the tasks' numbers, encoded once and
/// decoded once on each side. Floats, `char`s, strings' bytes and `bool`s are the same in
/// both. A value must be decoded in the layout it was encoded in.
///
/// ```
/// use proc_core::codec::Layout;
///
/// let mut compact = Vec::new();
/// Layout::Compact.encode_into(&vec![1u64, 2, 3], &mut compact)?;
/// let mut fixed = Vec::new();
/// Layout::Fixed.encode_into(&vec![1u64, 2, 3], &mut fixed)?;
/// assert_eq!((compact.len(), fixed.len()), (4, 32));
/// assert_eq!(Layout::Fixed.decode::<Vec<u64>>(&fixed, 64)?, [1, 2, 3]);
/// # Ok::<(), proc_core::codec::CodecError>(())
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
    /// As [`encode_into`](fn@encode_into), in this layout.
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

    /// As [`decode`](fn@decode), in this layout.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8], limit: usize) -> Result<T, CodecError> {
        self.decode_seed(std::marker::PhantomData::<T>, bytes, limit)
    }

    /// As [`decode_seed`](fn@decode_seed), in this layout.
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
    let mut buf = Vec::new();
    encode_into(value, &mut buf)?;
    Ok(buf)
}

/// Appends the encoding of `value` to `buf`, leaving what was there before in place (also
/// when encoding fails: then nothing is appended).
///
/// ```
/// let mut buf = vec![0xAA];
/// proc_core::codec::encode_into(&5u32, &mut buf).unwrap();
/// assert_eq!(buf[0], 0xAA);
/// assert_eq!(proc_core::codec::decode::<u32>(&buf[1..], 16).unwrap(), 5);
/// ```
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_with::<T, false>(value, buf)
}

/// As [`encode_into`] if the encoding is at most `cap` bytes long; returns its length
/// either way. A longer one leaves `buf` as it was: past the cap the rest is only counted,
/// a string or byte buffer not copied. So one pass either encodes a small value or measures
/// a large one, which a caller can then stream ([`encode_to`]).
///
/// ```
/// let mut buf = Vec::new();
/// assert_eq!(proc_core::codec::encode_into_at_most(&"short", &mut buf, 16).unwrap(), 6);
/// let long = "x".repeat(100);
/// assert_eq!(proc_core::codec::encode_into_at_most(&long, &mut buf, 16).unwrap(), 101);
/// assert_eq!(proc_core::codec::decode::<String>(&buf, 16).unwrap(), "short");
/// ```
#[inline]
pub fn encode_into_at_most<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<usize, CodecError> {
    let start = buf.len();
    let mut capped = wire::Capped::new(buf, cap);
    match value.serialize(&mut wire::Encoder::<false, _>::new(&mut capped)) {
        Ok(()) => Ok(capped.end()),
        Err(e) => {
            buf.truncate(start);
            Err(CodecError::Encode(e.0))
        }
    }
}

/// Takes an encoding piece by piece, in order, as [`encode_to`] produces it: small parts
/// gathered a few KiB at a time, a long string or byte buffer straight from the value.
/// The pieces joined are exactly what [`encode`] returns.
///
/// A sink that writes somewhere else (another process's memory, a file) makes a value
/// cost one copy, where encoding into a buffer and copying the buffer costs two.
pub trait Sink {
    /// Why the sink took no more bytes.
    type Error;

    /// Takes the next piece of the encoding. An error ends the encoding: [`encode_to`]
    /// returns it as [`StreamError::Stopped`].
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// Why [`encode_to`] or [`decode_from`] stopped.
///
/// ```
/// use proc_core::codec::{self, Sink, StreamError};
///
/// /// Takes at most `room` bytes.
/// struct Small { room: usize }
/// impl Sink for Small {
///     type Error = &'static str;
///     fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
///         self.room = self.room.checked_sub(bytes.len()).ok_or("no room")?;
///         Ok(())
///     }
/// }
///
/// let err = codec::encode_to(&vec![7u8; 100_000], &mut Small { room: 1000 }).unwrap_err();
/// assert_eq!(err, StreamError::Stopped("no room"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError<E> {
    /// The value did not encode or decode: what [`encode`] or [`decode`] would have said
    /// (with the differences [`decode_from`] lists), or the source broke its contract.
    #[error(transparent)]
    Codec(CodecError),
    /// The sink ([`encode_to`]) or the source ([`decode_from`]) stopped, with this error.
    #[error("the stream stopped")]
    Stopped(E),
}

/// Encodes `value` into `sink`, piece by piece (see [`Sink`]). The pieces are those of
/// [`encode`], in the same layout. When it fails, the sink may have taken part of the
/// encoding already.
///
/// ```
/// use proc_core::codec::{self, Sink};
///
/// /// Collects the pieces, to show how a large value arrives.
/// struct Pieces(Vec<Vec<u8>>);
/// impl Sink for Pieces {
///     type Error = std::convert::Infallible;
///     fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
///         self.0.push(bytes.to_vec());
///         Ok(())
///     }
/// }
///
/// let value = (1u8, codec::ByteBuf::from(vec![9u8; 100_000]));
/// let mut pieces = Pieces(Vec::new());
/// codec::encode_to(&value, &mut pieces).unwrap();
/// // The tag and the length prefix, then the byte buffer, straight from `value`.
/// assert_eq!(pieces.0.len(), 2);
/// assert_eq!(pieces.0.concat(), codec::encode(&value).unwrap());
/// ```
pub fn encode_to<T: Serialize + ?Sized, S: Sink + ?Sized>(
    value: &T,
    sink: &mut S,
) -> Result<(), StreamError<S::Error>> {
    let mut streamed = wire::Streamed::new(sink);
    let encoded = value
        .serialize(&mut wire::Encoder::<false, _>::new(&mut streamed))
        .and_then(|()| streamed.flush());
    match (encoded, streamed.stopped.take()) {
        (_, Some(e)) => Err(StreamError::Stopped(e)),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(StreamError::Codec(CodecError::Encode(e.0))),
    }
}

fn encode_with<T: Serialize + ?Sized, const FIXED: bool>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = buf.len();
    value
        .serialize(&mut wire::Encoder::<FIXED, Vec<u8>>::new(buf))
        .map_err(|e| {
            buf.truncate(start);
            CodecError::Encode(e.0)
        })
}

/// Decodes a `T` from exactly `bytes`, refusing input longer than `limit`.
///
/// The bytes are untrusted: a length prefix may announce far more than follows. Nothing is
/// set aside for announced lengths beyond what the input could hold (see the
/// [module docs](self)), so a few bytes can never make the decoder allocate gigabytes.
///
/// ```
/// use proc_core::codec::{decode, CodecError};
///
/// // A string whose length prefix claims far more bytes than there are.
/// let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0x7F, b'x'], 1024).unwrap_err();
/// assert!(matches!(err, CodecError::Decode(_)));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_seed(std::marker::PhantomData::<T>, bytes, limit)
}

/// As [`decode`], with a [`DeserializeSeed`]: the value is built by `seed`, which may carry
/// state (for example a vector to append the decoded elements to, instead of a new one).
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
/// let bytes = proc_core::codec::encode(&vec![2u32, 3])?;
/// proc_core::codec::decode_seed(AppendTo(&mut all), &bytes, 64)?;
/// assert_eq!(all, [1, 2, 3]);
/// # Ok::<(), proc_core::codec::CodecError>(())
/// ```
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
    limit: usize,
) -> Result<S::Value, CodecError> {
    decode_with::<S, false>(seed, bytes, limit)
}

fn decode_with<'de, S: DeserializeSeed<'de>, const FIXED: bool>(
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
    let mut decoder = wire::Decoder::<_, FIXED>::new(bytes);
    let value = seed
        .deserialize(&mut decoder)
        .map_err(|e| CodecError::Decode(e.0))?;
    match decoder.left() {
        0 => Ok(value),
        extra => Err(CodecError::TrailingBytes { extra }),
    }
}

/// Gives an encoding piece by piece, in order, as [`decode_from`] asks for it: the other
/// side of [`Sink`]. The decoder asks for a few KiB at a time for the small parts of a
/// value, and for a long string or byte buffer appends straight into the vector that the
/// value ends up owning, so that its bytes are copied once, by the source.
///
/// A source that reads from somewhere else (another process's memory, a file) makes a
/// value cost one copy, where copying the bytes into a buffer and decoding it costs two.
///
/// ```
/// use proc_core::codec::{self, ByteBuf, Source};
///
/// /// Gives an encoding that arrived in chunks, without joining them first.
/// struct Chunks(std::collections::VecDeque<Vec<u8>>);
///
/// impl Source for Chunks {
///     type Error = std::convert::Infallible;
///     fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
///         let Some(chunk) = self.0.front_mut() else { return Ok(0) };
///         let n = at_most.min(chunk.len());
///         buf.extend(chunk.drain(..n));
///         if chunk.is_empty() {
///             self.0.pop_front();
///         }
///         Ok(n)
///     }
///     fn left_at_most(&self) -> usize {
///         self.0.iter().map(Vec::len).sum()
///     }
/// }
///
/// let value = (7u32, ByteBuf::from(vec![1u8; 100_000]));
/// let bytes = codec::encode(&value).unwrap();
/// let mut chunks = Chunks(bytes.chunks(4096).map(<[u8]>::to_vec).collect());
/// let back: (u32, ByteBuf) = codec::decode_from(&mut chunks, 1 << 20).unwrap();
/// assert_eq!(back, value);
/// ```
pub trait Source {
    /// Why the source gave no more bytes.
    type Error;

    /// Appends the next bytes of the encoding to `buf`: at least one and at most
    /// `at_most` (which is at least 1), and returns how many; `Ok(0)` only at the end of
    /// the encoding. An error ends the decoding: [`decode_from`] returns it as
    /// [`StreamError::Stopped`]. A source that returns more than `at_most`, or a count that
    /// is not what it appended, makes the decoding fail ([`CodecError::Decode`]).
    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error>;

    /// At most how many bytes are left; `usize::MAX` when unknown. A length the bytes
    /// announce past this is an error at once. Within it, a long string or byte buffer is
    /// given all its room before its bytes arrive (one allocation, not one for each
    /// doubling): a source that is told how long its encoding is by someone it does not
    /// trust should say no more than it is willing to have set aside.
    fn left_at_most(&self) -> usize;
}

/// A slice, consumed as it is read: after [`decode_from`] it holds the bytes not read.
impl Source for &[u8] {
    type Error = std::convert::Infallible;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
        let (now, rest) = self.split_at(at_most.min(self.len()));
        buf.extend_from_slice(now);
        *self = rest;
        Ok(now.len())
    }

    fn left_at_most(&self) -> usize {
        self.len()
    }
}

/// Decodes a `T` from the bytes of `source`, reading no more than `limit` of them. The
/// same bytes decode to the same value as with [`decode`], or fail the same way, however
/// the source splits them; a long string or byte buffer is read straight into the vector
/// that holds it (see [`Source`]).
///
/// Where it differs from [`decode`], which sees all the bytes at once:
/// - Over the limit: [`CodecError::TooLarge`] once the source has given more than `limit`
///   bytes (it is asked for at most one more), with `len` the bytes read so far. Bytes that
///   are never read do not count, so a value followed by bytes over the limit may fail as
///   trailing bytes instead.
/// - After the value, the decoder asks the source for one more byte if none are left over
///   from its reads; if there are any, [`CodecError::TrailingBytes`] counts only those read
///   (at least 1): the source is not drained to count them all.
/// - Memory: a string or byte buffer whose length prefix announces more than
///   [`Source::left_at_most`] (and what was read ahead) is an error at once. Otherwise it
///   is given its room at once when the source knows how much is left (at most that, and
///   at most what the limit still allows), and else as its bytes arrive, at most twice
///   what has arrived (and at least 64 KiB), so that announcing more than comes costs no
///   more than that.
///
/// When it fails, the source may have given part of the encoding, or all of it and one
/// byte more.
///
/// ```
/// use proc_core::codec::{self, CodecError, StreamError};
///
/// let bytes = codec::encode(&("seven", 7u64)).unwrap();
/// let mut source = &bytes[..];
/// let back: (String, u64) = codec::decode_from(&mut source, 1024).unwrap();
/// assert_eq!(back, ("seven".to_string(), 7));
///
/// // Cut short, it is an error as it is for `decode`.
/// let err = codec::decode_from::<(String, u64), _>(&mut &bytes[..4], 1024).unwrap_err();
/// assert!(matches!(err, StreamError::Codec(CodecError::Decode(_))));
/// ```
pub fn decode_from<T: DeserializeOwned, S: Source + ?Sized>(
    source: &mut S,
    limit: usize,
) -> Result<T, StreamError<S::Error>> {
    let mut decoder = wire::Decoder::<_, false>::new(wire::Streaming::new(source, limit));
    let decoded = T::deserialize(&mut decoder);
    let mut input = decoder.into_input();
    let decoded = decoded.and_then(|value| Ok((value, input.extra()?)));
    // A fault of the source's ends the decode whatever the value made of its error.
    match (decoded, input.into_fault()) {
        (_, Some(wire::Fault::Source(e))) => Err(StreamError::Stopped(e)),
        (_, Some(wire::Fault::TooLarge { len })) => {
            Err(StreamError::Codec(CodecError::TooLarge { len, limit }))
        }
        (_, Some(wire::Fault::Broken(why))) => Err(StreamError::Codec(CodecError::Decode(why))),
        (Ok((value, 0)), None) => Ok(value),
        (Ok((_, extra)), None) => Err(StreamError::Codec(CodecError::TrailingBytes { extra })),
        (Err(e), None) => Err(StreamError::Codec(CodecError::Decode(e.0))),
    }
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

    mod shapes {
        use std::collections::{BTreeMap, HashMap};

        use serde::{Deserialize, Serialize};

        use super::super::*;

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Unit;

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Newtype(String);

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Pair(i8, u128);

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        enum Shape {
            Nothing,
            Wrapped(Box<Shape>),
            Point(f32, f64),
            Named { label: String, bytes: ByteBuf },
        }

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Everything {
            flag: bool,
            small: (i16, i32, i64, i128, u8, u16, u32, u64),
            letter: char,
            text: String,
            bytes: ByteBuf,
            maybe: Option<Option<Newtype>>,
            unit: (),
            unit_struct: Unit,
            pair: Pair,
            shapes: Vec<Shape>,
            ordered: BTreeMap<String, Vec<u16>>,
            hashed: HashMap<u8, Option<String>>,
            array: [u64; 3],
        }

        fn everything() -> Everything {
            Everything {
                flag: true,
                small: (
                    -300,
                    -70_000,
                    i64::MIN,
                    i128::MAX,
                    255,
                    300,
                    70_000,
                    u64::MAX,
                ),
                letter: '小',
                text: "王".repeat(100),
                bytes: ByteBuf::from(vec![0xFF; 300]),
                maybe: Some(Some(Newtype("inner".into()))),
                unit: (),
                unit_struct: Unit,
                pair: Pair(-1, u128::MAX - 1),
                shapes: vec![
                    Shape::Nothing,
                    Shape::Wrapped(Box::new(Shape::Point(1.5, -2.25))),
                    Shape::Named {
                        label: String::new(),
                        bytes: ByteBuf::new(),
                    },
                ],
                ordered: [("a".to_string(), vec![1, 2]), ("b".into(), vec![])].into(),
                hashed: [(1, None), (2, Some("two".into()))].into(),
                array: [1, 1 << 20, 1 << 40],
            }
        }

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

        /// Collects what a [`Sink`] is given, piece by piece; refuses the piece after
        /// `refuse_after` pieces, if set.
        #[derive(Default)]
        struct Pieces {
            got: Vec<Vec<u8>>,
            refuse_after: Option<usize>,
        }

        impl Sink for Pieces {
            type Error = &'static str;

            fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
                if self.refuse_after == Some(self.got.len()) {
                    return Err("full");
                }
                self.got.push(bytes.to_vec());
                Ok(())
            }
        }

        /// `everything()`, with long runs (passed on from the value) and many small parts
        /// (gathered a few KiB at a time).
        fn everything_large() -> Everything {
            let mut value = everything();
            value.bytes = ByteBuf::from(vec![0xAB; 100_000]);
            value.text = "王".repeat(5_000);
            value.shapes = (0..3_000)
                .map(|i| Shape::Point(i as f32, -f64::from(i)))
                .collect();
            value
        }

        #[test]
        fn a_streamed_encoding_is_the_encoding_in_pieces_with_long_runs_passed_on_whole() {
            for value in [everything(), everything_large()] {
                let whole = encode(&value).unwrap();
                let mut pieces = Pieces::default();
                encode_to(&value, &mut pieces).unwrap();
                assert_eq!(pieces.got.concat(), whole);
            }
            let mut pieces = Pieces::default();
            encode_to(&everything_large(), &mut pieces).unwrap();
            // The byte buffer and the text come as pieces of their own; no other piece is
            // more than the stage and one part over it.
            assert!(pieces.got.iter().any(|piece| piece == &vec![0xAB; 100_000]));
            assert!(
                pieces
                    .got
                    .iter()
                    .any(|piece| piece == "王".repeat(5_000).as_bytes())
            );
            let staged = pieces
                .got
                .iter()
                .filter(|piece| piece.len() < 15_000)
                .count();
            assert!(staged > 3, "{staged} staged pieces");
            assert!(
                pieces
                    .got
                    .iter()
                    .all(|piece| piece.len() < 10 << 10 || piece.len() >= 15_000)
            );
        }

        #[test]
        fn a_sink_that_refuses_or_a_value_that_fails_ends_a_streamed_encoding() {
            let mut pieces = Pieces {
                refuse_after: Some(2),
                ..Pieces::default()
            };
            let err = encode_to(&everything_large(), &mut pieces).unwrap_err();
            assert_eq!(err, StreamError::Stopped("full"));
            assert_eq!(pieces.got.len(), 2);
            // A map whose length is unknown does not encode, sink or no sink.
            struct Unsized;
            impl Serialize for Unsized {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    use serde::ser::SerializeMap;
                    s.serialize_map(None)?.end()
                }
            }
            assert!(matches!(
                encode_to(&Unsized, &mut Pieces::default()),
                Err(StreamError::Codec(CodecError::Encode(_)))
            ));
        }

        #[test]
        fn an_encoding_with_a_cap_fits_up_to_the_cap_and_is_only_measured_past_it() {
            for value in [everything(), everything_large()] {
                let whole = encode(&value).unwrap();
                for cap in [0, 1, 100, whole.len() - 1, whole.len(), whole.len() + 1] {
                    let mut buf = vec![1, 2, 3];
                    let len = encode_into_at_most(&value, &mut buf, cap).unwrap();
                    assert_eq!(len, whole.len(), "cap {cap}");
                    if cap >= whole.len() {
                        assert_eq!(buf[3..], whole[..]);
                    } else {
                        assert_eq!(buf, [1, 2, 3]);
                    }
                }
            }
        }

        /// Both layouts, as bincode's configurations.
        fn bincode_encode<T: Serialize>(value: &T, layout: Layout) -> Vec<u8> {
            let standard = bincode::config::standard();
            match layout {
                Layout::Compact => bincode::serde::encode_to_vec(value, standard),
                Layout::Fixed => {
                    bincode::serde::encode_to_vec(value, standard.with_fixed_int_encoding())
                }
            }
            .unwrap()
        }

        fn ours<T: Serialize>(value: &T, layout: Layout) -> Vec<u8> {
            let mut bytes = Vec::new();
            layout.encode_into(value, &mut bytes).unwrap();
            bytes
        }

        /// `value` encodes to bincode's bytes in both layouts, and those bytes decode back.
        fn same_as_bincode<T>(value: T)
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

        /// Gives `bytes` at most `piece` at a time, and fails once `fail_after` bytes are
        /// given, if set. `known`: whether it says how many bytes are left.
        struct Trickle<'a> {
            bytes: &'a [u8],
            piece: usize,
            known: bool,
            fail_after: Option<usize>,
            given: usize,
            failures: usize,
            reads: Vec<Read>,
        }

        /// One call of [`Trickle::read`].
        struct Read {
            at_most: usize,
            /// The buffer's length before, and its capacity and address after.
            before: usize,
            capacity: usize,
            address: *const u8,
            gave: usize,
        }

        impl<'a> Trickle<'a> {
            fn new(bytes: &'a [u8], piece: usize, known: bool) -> Self {
                Trickle {
                    bytes,
                    piece,
                    known,
                    fail_after: None,
                    given: 0,
                    failures: 0,
                    reads: Vec::new(),
                }
            }
        }

        impl Source for Trickle<'_> {
            type Error = &'static str;

            fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
                assert!(at_most >= 1);
                if self.fail_after.is_some_and(|after| self.given >= after) {
                    self.failures += 1;
                    return Err("broken pipe");
                }
                let before = buf.len();
                let Ok(n) = Source::read(&mut self.bytes, buf, at_most.min(self.piece));
                self.given += n;
                self.reads.push(Read {
                    at_most,
                    before,
                    capacity: buf.capacity(),
                    address: buf.as_ptr(),
                    gave: n,
                });
                Ok(n)
            }

            fn left_at_most(&self) -> usize {
                if self.known {
                    self.bytes.len()
                } else {
                    usize::MAX
                }
            }
        }

        /// How many bytes at a time the sources of the tests give.
        const PIECES: [usize; 4] = [1, 7, 4096, usize::MAX];

        /// `bytes` decode from a source, however it splits them and whether or not it says
        /// how many are left, as they decode from a slice: the same value, or the same kind
        /// of error (the same message, when the source says what is left).
        fn streams_as_it_decodes<T>(bytes: &[u8], limit: usize)
        where
            T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            let whole = decode::<T>(bytes, limit);
            for piece in PIECES {
                for known in [true, false] {
                    let mut source = Trickle::new(bytes, piece, known);
                    let streamed = decode_from::<T, _>(&mut source, limit);
                    let context = format!("piece {piece}, known {known}, {} bytes", bytes.len());
                    match (&whole, streamed) {
                        (Ok(value), Ok(streamed)) => assert_eq!(&streamed, value, "{context}"),
                        (
                            Err(CodecError::Decode(a)),
                            Err(StreamError::Codec(CodecError::Decode(b))),
                        ) => {
                            if known {
                                assert_eq!(a, &b, "{context}");
                            }
                        }
                        (Err(a), Err(StreamError::Codec(b))) => assert_eq!(
                            std::mem::discriminant(a),
                            std::mem::discriminant(&b),
                            "{context}: {a:?} {b:?}"
                        ),
                        (a, b) => panic!("{context}: {a:?} but streamed {b:?}"),
                    }
                }
            }
        }

        /// `value` encodes, and decodes from a source as from a slice.
        fn streams<T>(value: T)
        where
            T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        {
            let bytes = encode(&value).unwrap();
            assert_eq!(decode::<T>(&bytes, bytes.len()).unwrap(), value);
            streams_as_it_decodes::<T>(&bytes, bytes.len());
        }

        /// Takes strings and byte buffers only as borrowed values (`deserialize_str` and
        /// `deserialize_bytes`): a source gives it copies.
        #[derive(Debug, PartialEq, Serialize)]
        struct Borrowing(String, #[serde(with = "serde_bytes")] Vec<u8>);

        impl<'de> Deserialize<'de> for Borrowing {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::{Error, Visitor};
                struct Text(String);
                impl<'de> Deserialize<'de> for Text {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct V;
                        impl<'de> Visitor<'de> for V {
                            type Value = Text;
                            fn expecting(
                                &self,
                                f: &mut std::fmt::Formatter<'_>,
                            ) -> std::fmt::Result {
                                f.write_str("a string")
                            }
                            fn visit_str<E: Error>(self, v: &str) -> Result<Text, E> {
                                Ok(Text(v.to_owned()))
                            }
                        }
                        d.deserialize_str(V)
                    }
                }
                struct Bytes(Vec<u8>);
                impl<'de> Deserialize<'de> for Bytes {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct V;
                        impl<'de> Visitor<'de> for V {
                            type Value = Bytes;
                            fn expecting(
                                &self,
                                f: &mut std::fmt::Formatter<'_>,
                            ) -> std::fmt::Result {
                                f.write_str("bytes")
                            }
                            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Bytes, E> {
                                Ok(Bytes(v.to_owned()))
                            }
                        }
                        d.deserialize_bytes(V)
                    }
                }
                let (Text(text), Bytes(bytes)) = <(Text, Bytes)>::deserialize(d)?;
                Ok(Borrowing(text, bytes))
            }
        }

        #[test]
        fn a_source_in_pieces_of_any_size_gives_what_the_slice_gives() {
            let boundaries = [
                0u64,
                1,
                250,
                251,
                252,
                255,
                256,
                65_535,
                65_536,
                u64::from(u32::MAX),
                u64::from(u32::MAX) + 1,
                u64::MAX,
            ];
            for v in boundaries {
                streams((v, v as u16, v as u32, v as i16, v as i32, v as i64));
                streams((-(v as i64), u128::from(v) + 1, -(i128::from(v)) - 1));
            }
            streams((i8::MIN, i16::MIN, i32::MIN, i64::MIN, i128::MIN, u128::MAX));
            streams((f32::MIN_POSITIVE, f64::NEG_INFINITY, -0.0f64, 1.5f32));
            streams(('a', 'é', '€', '𝄞', '\u{10FFFF}'));
            for len in [0, 1, 100, 8191, 8192, 8193, 70_000] {
                streams("a".repeat(len));
                streams(ByteBuf::from(vec![0xA5; len]));
                streams(Borrowing("b".repeat(len), vec![3; len]));
            }
            streams("王".repeat(30_000));
            for len in [(1 << 20) + 3, 200_000] {
                streams(ByteBuf::from((0..len).map(|i| i as u8).collect::<Vec<_>>()));
            }
            streams((0..5_000u64).map(|i| i * i * i).collect::<Vec<_>>());
            streams(vec![
                Some(Shape::Nothing),
                None,
                Some(Shape::Point(1.0, 2.0)),
            ]);
            streams((7u8, "x".to_string(), ByteBuf::from(vec![1; 9000]), '小'));
            streams(everything());
            streams(everything_large());
        }

        #[test]
        fn a_cut_encoding_from_a_source_is_a_decode_error_as_from_a_slice() {
            let short = (('𝄞', "text".to_string()), ByteBuf::from(vec![9; 20_000]));
            let bytes = encode(&short).unwrap();
            // The start and the end; the middle is the byte buffer's.
            for end in (0..200).chain(bytes.len() - 200..bytes.len()) {
                streams_as_it_decodes::<((char, String), ByteBuf)>(&bytes[..end], bytes.len());
            }
            let bytes = encode(&everything()).unwrap();
            for end in 0..bytes.len() {
                streams_as_it_decodes::<Everything>(&bytes[..end], bytes.len());
                assert!(matches!(
                    decode_from::<Everything, _>(&mut &bytes[..end], bytes.len()),
                    Err(StreamError::Codec(CodecError::Decode(_)))
                ));
            }
        }

        #[test]
        fn bytes_after_the_value_are_trailing_bytes_and_the_source_is_not_drained() {
            let mut bytes = encode(&("value", 5u32)).unwrap();
            bytes.extend_from_slice(&[0; 100_000]);
            for piece in PIECES {
                let mut source = Trickle::new(&bytes, piece, true);
                let err = decode_from::<(String, u32), _>(&mut source, usize::MAX).unwrap_err();
                let StreamError::Codec(CodecError::TrailingBytes { extra }) = err else {
                    panic!("{err:?}");
                };
                // What was read and not used: at least one byte, at most the stage.
                assert!((1..=8192).contains(&extra), "{extra}");
                assert!(source.bytes.len() >= 100_000 - 8192, "piece {piece}");
            }
            // A slice source as `decode` sees it; what it holds after is what was not read.
            bytes.truncate(8);
            let mut rest = &bytes[..];
            assert_eq!(
                decode_from::<(String, u32), _>(&mut rest, 64),
                Err(StreamError::Codec(CodecError::TrailingBytes { extra: 1 }))
            );
            assert!(rest.is_empty());
        }

        #[test]
        fn a_source_that_gives_more_than_the_limit_is_too_large_at_one_byte_past_it() {
            let value = (1u8, ByteBuf::from(vec![7; 100_000]));
            let bytes = encode(&value).unwrap();
            for piece in PIECES {
                for limit in [0, 1, 1000, 10_000, bytes.len() - 1] {
                    let mut source = Trickle::new(&bytes, piece, true);
                    assert_eq!(
                        decode_from::<(u8, ByteBuf), _>(&mut source, limit),
                        Err(StreamError::Codec(CodecError::TooLarge {
                            len: limit + 1,
                            limit
                        })),
                        "piece {piece}"
                    );
                    assert_eq!(source.given, limit + 1);
                }
                let mut source = Trickle::new(&bytes, piece, true);
                let back = decode_from::<(u8, ByteBuf), _>(&mut source, bytes.len());
                assert_eq!(back.unwrap(), value);
            }
            streams_as_it_decodes::<(u8, ByteBuf)>(&bytes, 1000);
        }

        #[test]
        fn a_length_of_2_to_the_40_with_10_bytes_behind_it_fails_without_room_for_it() {
            // Tag 0xFD: a u64 length follows; then 10 bytes of the 2^40 announced.
            let mut bytes = vec![0xFD];
            bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
            bytes.extend_from_slice(&[b'a'; 10]);
            assert!(decode_from::<Borrowing, _>(&mut &bytes[..], usize::MAX).is_err());
            for piece in PIECES {
                // A source that knows what is left: refused before anything is read.
                let mut source = Trickle::new(&bytes, piece, true);
                let err = decode_from::<String, _>(&mut source, usize::MAX).unwrap_err();
                assert!(
                    err.to_string()
                        .contains("a length of 1099511627776 bytes is more than the 10 bytes left"),
                    "{err}"
                );
                // One that does not: read as they come, into room for what came.
                for known in [true, false] {
                    let mut source = Trickle::new(&bytes, piece, known);
                    assert!(matches!(
                        decode_from::<ByteBuf, _>(&mut source, usize::MAX),
                        Err(StreamError::Codec(CodecError::Decode(_)))
                    ));
                    assert!(source.reads.iter().all(|read| read.capacity <= 64 << 10));
                    let mut source = Trickle::new(&bytes, piece, known);
                    assert!(decode_from::<Vec<u64>, _>(&mut source, 1 << 20).is_err());
                }
            }
        }

        #[test]
        fn a_long_byte_buffer_is_read_straight_into_its_vector_given_room_once_or_as_bytes_come() {
            let value = ByteBuf::from(vec![0x5A; (1 << 20) + 3]);
            let bytes = encode(&value).unwrap();
            for piece in PIECES {
                let mut source = Trickle::new(&bytes, piece, true);
                let back: ByteBuf = decode_from(&mut source, bytes.len()).unwrap();
                assert_eq!(back, value);
                // The stage takes the first read, and at most its 8 KiB in all; the last
                // bytes went into the vector the value owns.
                let stage = source.reads[0].address;
                let staged: usize = source
                    .reads
                    .iter()
                    .filter(|read| read.address == stage)
                    .map(|read| read.gave)
                    .sum();
                assert!(staged <= 8 << 10, "piece {piece}: {staged}");
                let last = source.reads.iter().rev().find(|read| read.gave > 0);
                assert_eq!(last.unwrap().address, back.as_ptr(), "piece {piece}");
                // Asked for no more than it has room for.
                for read in &source.reads {
                    assert!(read.at_most <= read.capacity - read.before);
                }
                // A source that knows how much is left: the value's room is given once.
                let value_reads = || source.reads.iter().filter(|read| read.address != stage);
                let first = value_reads().next().unwrap();
                assert_eq!(first.capacity, value.len(), "piece {piece}");
                assert!(value_reads().all(|read| read.address == first.address));
            }
            for piece in PIECES {
                // One that does not: the room at most twice what has arrived, or 64 KiB.
                let mut source = Trickle::new(&bytes, piece, false);
                let back: ByteBuf = decode_from(&mut source, bytes.len()).unwrap();
                assert_eq!(back, value);
                for read in &source.reads {
                    assert!(read.at_most <= read.capacity - read.before);
                    let (before, capacity) = (read.before, read.capacity);
                    assert!(
                        capacity <= (2 * before).max(64 << 10),
                        "{before} {capacity}"
                    );
                }
            }
        }

        #[test]
        fn bytes_changed_at_random_decode_from_a_source_as_from_a_slice() {
            // splitmix64, as above, from another seed.
            let mut state = 0x50_u64;
            let mut next = move || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            };
            let valid = encode(&everything()).unwrap();
            for _ in 0..3_000 {
                let mut bytes = valid.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = next() as u8;
                }
                if next() % 4 == 0 {
                    bytes.truncate((next() % bytes.len() as u64) as usize);
                }
                streams_as_it_decodes::<Everything>(&bytes, bytes.len());
                let noise: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
                streams_as_it_decodes::<Vec<Option<(String, char)>>>(&noise, 64);
            }
        }

        #[test]
        fn a_source_that_fails_ends_the_decode_with_its_error() {
            let bytes = encode(&everything_large()).unwrap();
            for piece in PIECES {
                for after in [0, 1, 100, bytes.len() / 2, bytes.len() - 1] {
                    let mut source = Trickle::new(&bytes, piece, true);
                    source.fail_after = Some(after);
                    assert_eq!(
                        decode_from::<Everything, _>(&mut source, bytes.len()),
                        Err(StreamError::Stopped("broken pipe")),
                        "piece {piece}, after {after}"
                    );
                }
            }
            // Also when the value makes nothing of the error it was given.
            struct Swallows;
            impl<'de> Deserialize<'de> for Swallows {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    struct V;
                    impl<'de> serde::de::Visitor<'de> for V {
                        type Value = Swallows;
                        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                            f.write_str("anything")
                        }
                        fn visit_seq<A: serde::de::SeqAccess<'de>>(
                            self,
                            mut seq: A,
                        ) -> Result<Swallows, A::Error> {
                            let _ = seq.next_element::<String>();
                            let _ = seq.next_element::<String>();
                            Ok(Swallows)
                        }
                    }
                    d.deserialize_tuple(2, V)
                }
            }
            let bytes = encode(&("a".repeat(100), "b")).unwrap();
            let mut source = Trickle::new(&bytes, 7, true);
            source.fail_after = Some(50);
            assert!(matches!(
                decode_from::<Swallows, _>(&mut source, 1024),
                Err(StreamError::Stopped("broken pipe"))
            ));
            assert_eq!(source.failures, 1, "asked again after it failed");
        }

        /// Breaks [`Source::read`]'s contract in the way `how` names.
        struct Liar<'a> {
            bytes: &'a [u8],
            how: &'static str,
        }

        impl Source for Liar<'_> {
            type Error = std::convert::Infallible;

            fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
                let n = at_most.min(self.bytes.len());
                Ok(match self.how {
                    // Everything it has, whatever was asked.
                    "more" => {
                        buf.extend_from_slice(self.bytes);
                        std::mem::take(&mut self.bytes).len()
                    }
                    // Says two more than it appended.
                    "says more" => {
                        buf.extend_from_slice(&self.bytes[..n]);
                        self.bytes = &self.bytes[n..];
                        n + 2
                    }
                    // Appends, then says nothing came.
                    "says none" => {
                        buf.extend_from_slice(&self.bytes[..n]);
                        self.bytes = &self.bytes[n..];
                        0
                    }
                    // Throws away what the buffer held.
                    _ => {
                        buf.clear();
                        buf.extend_from_slice(&self.bytes[..n]);
                        self.bytes = &self.bytes[n..];
                        n
                    }
                })
            }

            fn left_at_most(&self) -> usize {
                self.bytes.len()
            }
        }

        /// Whether `err` is the decode error for a source that broke its contract (and not
        /// one the bytes themselves would give).
        fn broke(err: StreamError<std::convert::Infallible>) -> bool {
            matches!(&err, StreamError::Codec(CodecError::Decode(why)) if why.starts_with("the source"))
        }

        #[test]
        fn a_source_that_breaks_the_contract_is_a_decode_error_not_a_panic() {
            // Each decodes with a source that keeps the contract: the errors below are the
            // liar's.
            let everything = encode(&everything_large()).unwrap();
            // Larger than a stage, so that each is read in more than one piece.
            let borrowing = encode(&Borrowing("b".repeat(20_000), vec![3; 20_000])).unwrap();
            assert!(decode_from::<Everything, _>(&mut &everything[..], usize::MAX).is_ok());
            assert!(decode_from::<Borrowing, _>(&mut &borrowing[..], usize::MAX).is_ok());
            for how in ["more", "says more", "says none", "clears"] {
                let mut source = Liar {
                    bytes: &everything,
                    how,
                };
                let err = decode_from::<Everything, _>(&mut source, usize::MAX).unwrap_err();
                assert!(broke(err), "{how}: Everything");
                let mut source = Liar {
                    bytes: &borrowing,
                    how,
                };
                let err = decode_from::<Borrowing, _>(&mut source, usize::MAX).unwrap_err();
                assert!(broke(err), "{how}: Borrowing");
            }
        }
    }
}
