//! Decoding from a [`Source`]: the same value or error as from a slice, however the
//! source splits the bytes and whether it says how many are left; room for a long run given
//! once or as its bytes come; a source that fails or breaks its contract.

use serde::{Deserialize, Serialize};

use super::*;
use crate::{ByteBuf, CodecError, Source, StreamError, decode, decode_from, encode};

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
pub(super) fn streams_as_it_decodes<T>(bytes: &[u8], limit: usize)
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
                (Err(CodecError::Decode(a)), Err(StreamError::Codec(CodecError::Decode(b)))) => {
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
pub(super) fn streams<T>(value: T)
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
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
