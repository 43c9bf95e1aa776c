//! Streaming: encoding into a [`Sink`] ([`encode_to`]) and decoding from a [`Source`]
//! ([`decode_from`]) piece by piece, so that a value on its way to or from somewhere else
//! (another process's memory, a file) is copied once, not twice. The same bytes as
//! [`encode`](fn@crate::encode) and [`decode`](fn@crate::decode), however they are split.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deserializer::Decoder;
use crate::error::{CodecError, StreamError};
use crate::serializer::Encoder;
use crate::sink::{Sink, Streamed};
use crate::source::{Fault, Source, Streaming};

/// Encodes `value` into `sink`, piece by piece (see [`Sink`]). The pieces are those of
/// [`encode`](fn@crate::encode), in the same layout. When it fails, the sink may have taken
/// part of the encoding already.
///
/// ```
/// use proc_wire::{ByteBuf, Sink};
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
/// let value = (1u8, ByteBuf::from(vec![9u8; 100_000]));
/// let mut pieces = Pieces(Vec::new());
/// proc_wire::encode_to(&value, &mut pieces).unwrap();
/// // The tag and the length prefix, then the byte buffer, straight from `value`.
/// assert_eq!(pieces.0.len(), 2);
/// assert_eq!(pieces.0.concat(), proc_wire::encode(&value).unwrap());
/// ```
pub fn encode_to<T: Serialize + ?Sized, S: Sink + ?Sized>(
    value: &T,
    sink: &mut S,
) -> Result<(), StreamError<S::Error>> {
    let mut streamed = Streamed::new(sink);
    let encoded = Encoder::<false, _>::new(&mut streamed)
        .value(value)
        .and_then(|()| streamed.flush());
    match (encoded, streamed.stopped.take()) {
        (_, Some(e)) => Err(StreamError::Stopped(e)),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(StreamError::Codec(CodecError::Encode(e.0))),
    }
}

/// Decodes a `T` from the bytes of `source`, reading no more than `limit` of them. The
/// same bytes decode to the same value as with [`decode`](fn@crate::decode), or fail the same
/// way, however the source splits them; a long string or byte buffer is read straight into
/// the vector that holds it (see [`Source`]).
///
/// Where it differs from [`decode`](fn@crate::decode), which sees all the bytes at once:
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
/// use proc_wire::{CodecError, StreamError};
///
/// let bytes = proc_wire::encode(&("seven", 7u64)).unwrap();
/// let mut source = &bytes[..];
/// let back: (String, u64) = proc_wire::decode_from(&mut source, 1024).unwrap();
/// assert_eq!(back, ("seven".to_string(), 7));
///
/// // Cut short, it is an error as it is for `decode`.
/// let err = proc_wire::decode_from::<(String, u64), _>(&mut &bytes[..4], 1024).unwrap_err();
/// assert!(matches!(err, StreamError::Codec(CodecError::Decode(_))));
/// ```
pub fn decode_from<T: DeserializeOwned, S: Source + ?Sized>(
    source: &mut S,
    limit: usize,
) -> Result<T, StreamError<S::Error>> {
    let mut decoder = Decoder::<_, false>::new(Streaming::new(source, limit));
    let decoded = decoder.seed(std::marker::PhantomData::<T>);
    let mut input = decoder.into_input();
    let decoded = decoded.and_then(|value| Ok((value, input.extra()?)));
    // A fault of the source's ends the decode whatever the value made of its error.
    match (decoded, input.into_fault()) {
        (_, Some(Fault::Source(e))) => Err(StreamError::Stopped(e)),
        (_, Some(Fault::TooLarge { len })) => {
            Err(StreamError::Codec(CodecError::TooLarge { len, limit }))
        }
        (_, Some(Fault::Broken(why))) => Err(StreamError::Codec(CodecError::Decode(why))),
        (Ok((value, 0)), None) => Ok(value),
        (Ok((_, extra)), None) => Err(StreamError::Codec(CodecError::TrailingBytes { extra })),
        (Err(e), None) => Err(StreamError::Codec(CodecError::Decode(e.0))),
    }
}
