//! What goes wrong: [`CodecError`] for a value that does not encode or decode,
//! [`StreamError`] when a sink or source stops a streamed one, and the crate's own
//! [`WireError`], which the serializer and deserializer raise inside serde and which ends
//! up as the message of a [`CodecError`].

use std::fmt;

/// A value that could not be encoded or decoded.
///
/// ```
/// use proc_wire::CodecError;
///
/// let bytes = proc_wire::encode(&"twelve bytes").unwrap();
/// let err = proc_wire::decode::<String>(&bytes, 4).unwrap_err();
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

/// Why [`encode_to`](crate::encode_to) or [`decode_from`](crate::decode_from) stopped.
///
/// ```
/// use proc_wire::{Sink, StreamError};
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
/// let err = proc_wire::encode_to(&vec![7u8; 100_000], &mut Small { room: 1000 }).unwrap_err();
/// assert_eq!(err, StreamError::Stopped("no room"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError<E> {
    /// The value did not encode or decode: what [`encode`](fn@crate::encode) or
    /// [`decode`](fn@crate::decode) would have said (with the differences
    /// [`decode_from`](crate::decode_from) lists), or the source broke its contract.
    #[error(transparent)]
    Codec(CodecError),
    /// The sink ([`encode_to`](crate::encode_to)) or the source
    /// ([`decode_from`](crate::decode_from)) stopped, with this error.
    #[error("the stream stopped")]
    Stopped(E),
}

/// Why a value did not encode or decode: the message goes into a [`CodecError`].
#[derive(Debug)]
pub(crate) struct WireError(pub(crate) String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

impl serde::ser::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

impl serde::de::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

/// The result of the serializer's and deserializer's steps.
pub(crate) type Result<T, E = WireError> = std::result::Result<T, E>;
