//! Errors of the message layer.

use std::io;

use proc_core::CodecError;

/// `Result` with the message layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong sending or receiving a message.
///
/// Every error leaves the connection usable unless it says the peer is gone
/// ([`Error::is_eof`]): a message over the limit is refused before a byte of it is sent, and
/// one that arrives over the receiver's limit is skipped; a value that does not decode is
/// an error for that message only.
///
/// ```
/// let (a, b) = proc_ipc::pipe()?;
/// drop(b);
/// let err = a.recv::<u32>().unwrap_err();
/// assert!(err.is_eof());
/// # Ok::<(), proc_ipc::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The other end is closed: its process ended or dropped it. Nothing more will arrive.
    #[error("end of file: the other end of the connection is closed")]
    Eof,
    /// The other end closed in the middle of a message (its process was killed while
    /// sending, for example); the part that arrived is discarded.
    #[error("end of file in the middle of a message: {received} of {expected} bytes arrived")]
    EofInMessage {
        /// Bytes of the message (its header included) that arrived.
        received: usize,
        /// Bytes the message should have had.
        expected: usize,
    },
    /// A message larger than the limit: refused by `send` before anything was written, or
    /// skipped by `recv` without being stored. Either way the connection stays usable.
    #[error("a message of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The message's length in bytes (encoded, header excluded).
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The message could not be encoded, or its bytes are not a value of the expected type.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// `send` on the reading end of a one-way pair, or `recv` on its writing end.
    #[error("cannot {operation}: this end of a one-way connection is {direction}-only")]
    WrongDirection {
        /// The attempted operation.
        operation: &'static str,
        /// What this end can do: `"read"` or `"write"`.
        direction: &'static str,
    },
    /// A system call failed.
    #[error("{operation} failed: {source}")]
    Io {
        /// The call or step that failed.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether the error means the peer is gone, so that nothing more will arrive or be
    /// accepted (Python's `EOFError` and `BrokenPipeError`).
    pub fn is_eof(&self) -> bool {
        matches!(self, Error::Eof | Error::EofInMessage { .. })
    }

    pub(crate) fn io(operation: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Io {
            operation,
            source: source.into(),
        }
    }
}
