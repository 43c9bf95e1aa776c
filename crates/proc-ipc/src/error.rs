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
    /// An item put into a queue holds more handles (locks, queues, connections, …) than one
    /// message can carry the descriptors of.
    #[error(
        "the item holds {count} file descriptors (its handles); a queue carries at most {limit} \
         with one item"
    )]
    TooManyHandles {
        /// The descriptors the item holds.
        count: usize,
        /// The most one item can carry.
        limit: usize,
    },
    /// This process is at its limit of open file descriptors (`RLIMIT_NOFILE`) and could
    /// not take the descriptors that came with a message: the handles it holds (a `Lock`, a
    /// `Queue`, a `Connection`, …). From a queue, the item stays in the queue, whole: a
    /// later `get` receives it, in this process once it has closed some descriptors, or in
    /// another. From a connection, that message is lost (the kernel closed its descriptors)
    /// and the connection goes on with the next one.
    #[error(
        "this process is out of file descriptors: a message came with {carried} and it could \
         open {received}; {}",
        if *item_kept {
            "the item stays in the queue for a later get (close descriptors, or raise \
             RLIMIT_NOFILE)"
        } else {
            "that message is lost and the connection goes on with the next"
        }
    )]
    DescriptorsExhausted {
        /// The descriptors the message carried (or announced).
        carried: usize,
        /// How many of them this process could open before it ran out (they were closed).
        received: usize,
        /// Whether the item is still in the queue (always false for a connection).
        item_kept: bool,
    },
    /// A message came with other descriptors than its header announced: more, fewer, or
    /// attached to bytes other than its header's. They were closed and the message refused;
    /// the connection goes on with the next one. Only a peer that does not speak multiproc's
    /// protocol sends this.
    #[error(
        "a message announced {announced} file descriptors and {arrived} came with it; they \
         were closed and the message refused"
    )]
    DescriptorMismatch {
        /// What the message's header announced.
        announced: usize,
        /// What came with the message's bytes.
        arrived: usize,
    },
    /// `send` on the reading end of a one-way pair, or `recv` on its writing end.
    #[error("cannot {operation}: this end of a one-way connection is {direction}-only")]
    WrongDirection {
        /// The attempted operation.
        operation: &'static str,
        /// What this end can do: `"read"` or `"write"`.
        direction: &'static str,
    },
    /// A queue's shared memory does not hold what the queue wrote there: a process wrote
    /// into it without the queue's lock. The unreadable part has been dropped, so that the
    /// queue is usable again.
    #[error("the queue's shared memory is corrupt ({detail}); what could not be read was dropped")]
    CorruptQueue {
        /// What was wrong.
        detail: String,
    },
    /// A setting that cannot work, such as a ring too small to hold a frame.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why.
        reason: &'static str,
    },
    /// The shared memory or the lock under a queue failed.
    #[error(transparent)]
    Sync(#[from] proc_sync::Error),
    /// A queue was full (from a [`PutError`] converted with `?`; the item was dropped).
    #[error("the queue is full")]
    QueueFull,
    /// A queue was empty (from a [`GetError`] converted with `?`).
    #[error("the queue is empty")]
    QueueEmpty,
    /// A queue was closed (from a [`PutError`] or [`GetError`] converted with `?`).
    #[error("the queue is closed")]
    QueueClosed,
    /// The connection or listener was closed with `close`: it can no longer be used.
    #[error("this {what} is closed: it was closed with close() and can no longer be used")]
    Closed {
        /// `"connection"` or `"listener"`.
        what: &'static str,
    },
    /// [`Connection::recv_bytes_into_slice`](crate::Connection::recv_bytes_into_slice): the
    /// message did not fit in the buffer from the given offset on (Python's
    /// `BufferTooShort`). The whole message is here; the connection goes on with the next.
    #[error(
        "the buffer is too short for the message of {} bytes that arrived; the error holds \
         the whole message",
        message.len()
    )]
    BufferTooShort {
        /// The message that arrived, whole.
        message: Vec<u8>,
    },
    /// A range of a buffer (an offset and a size) that does not lie within it.
    #[error("the range of {size} bytes from offset {offset} is outside the buffer of {len} bytes")]
    OutOfRange {
        /// The range's first byte.
        offset: usize,
        /// The range's length.
        size: usize,
        /// The buffer's length.
        len: usize,
    },
    /// The handshake of a [`Listener`](crate::Listener) or [`Client`](crate::Client) failed:
    /// the peer does not hold the same key, or does not speak the protocol (Python's
    /// `AuthenticationError`). The connection is dropped; no payload was read from it.
    #[error("authentication failed: {reason}")]
    AuthenticationError {
        /// What went wrong.
        reason: String,
    },
    /// A wait with a time limit ran out, such as a handshake whose peer stalls.
    #[error("{operation} timed out after {after:?}")]
    TimedOut {
        /// What was waited for.
        operation: &'static str,
        /// The time limit.
        after: std::time::Duration,
    },
    /// A value holding handles (a `Lock`, a `Queue`, a `Connection`, …) sent over a
    /// connection that speaks Python's protocol (from a [`Listener`](crate::Listener) or a
    /// [`Client`](crate::Client)), which carries no file descriptors. Nothing was sent.
    #[error(
        "the value holds {count} handles (file descriptors), which this connection cannot \
         carry: it speaks Python's protocol (Listener / Client); send handles through a pipe \
         or a queue"
    )]
    HandlesNotCarried {
        /// The descriptors the value holds.
        count: usize,
    },
    /// The peer wrote bytes that are not a frame of the connection's protocol (a negative
    /// length). The stream cannot be read in step any more, so the connection was closed.
    #[error("the peer broke the framing protocol ({detail}); the connection was closed")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// A value could not be pickled, or the bytes that arrived are not a pickle of the
    /// expected type (feature `python`). The connection stays usable.
    #[cfg(feature = "python")]
    #[cfg_attr(docsrs, doc(cfg(feature = "python")))]
    #[error("pickle: {0}")]
    Pickle(#[from] serde_pickle::Error),
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

    /// Whether the error concerns one item only (it could not be encoded, decoded, stored
    /// or read back), so that the queue or connection goes on working for the next one.
    pub fn is_about_one_item(&self) -> bool {
        matches!(
            self,
            Error::TooLarge { .. }
                | Error::TooManyHandles { .. }
                | Error::DescriptorsExhausted { .. }
                | Error::DescriptorMismatch { .. }
                | Error::Codec(_)
                | Error::CorruptQueue { .. }
                | Error::Io { .. }
                | Error::BufferTooShort { .. }
                | Error::OutOfRange { .. }
                | Error::HandlesNotCarried { .. }
        ) || self.is_pickle()
    }

    #[cfg(feature = "python")]
    fn is_pickle(&self) -> bool {
        matches!(self, Error::Pickle(_))
    }

    #[cfg(not(feature = "python"))]
    fn is_pickle(&self) -> bool {
        false
    }

    pub(crate) fn io(operation: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Io {
            operation,
            source: source.into(),
        }
    }
}

/// Why [`Queue::put`](crate::Queue::put) (or its timeout and try forms) did not put the
/// item; every variant hands the item back ([`into_inner`](Self::into_inner)).
///
/// ```
/// let q = proc_ipc::Queue::<u8>::new(1)?;
/// q.put(1)?;
/// match q.try_put(2) {
///     Err(proc_ipc::PutError::Full(item)) => assert_eq!(item, 2),
///     other => panic!("expected Full, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full and did not make room in time.
    #[error("the queue is full")]
    Full(T),
    /// The queue was closed: it takes no more items.
    #[error("the queue is closed")]
    Closed(T),
    /// The item could not be put: too large, not encodable, or a system call failed.
    #[error("the item could not be put: {error}")]
    Failed {
        /// The item.
        item: T,
        /// Why.
        #[source]
        error: Error,
    },
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Closed(item) | PutError::Failed { item, .. } => item,
        }
    }
}

impl<T> std::fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::Failed { error, .. } => f
                .debug_struct("Failed")
                .field("error", error)
                .finish_non_exhaustive(),
        }
    }
}

/// Why [`Queue::get`](crate::Queue::get) (or its timeout and try forms) returned no item.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The queue stayed empty until the timeout (never from the blocking `get`).
    #[error("the queue is empty")]
    Empty,
    /// The queue is closed and drained: no item will come any more.
    #[error("the queue is closed and drained")]
    Closed,
    /// An item was taken but could not be read back (see
    /// [`Error::is_about_one_item`]), or the queue's lock failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<proc_sync::Error> for GetError {
    fn from(error: proc_sync::Error) -> Self {
        GetError::Failed(error.into())
    }
}

/// `?` on a put in a function that returns this crate's `Result`: the item is dropped.
impl<T> From<PutError<T>> for Error {
    fn from(error: PutError<T>) -> Self {
        match error {
            PutError::Full(_) => Error::QueueFull,
            PutError::Closed(_) => Error::QueueClosed,
            PutError::Failed { error, .. } => error,
        }
    }
}

/// `?` on a get in a function that returns this crate's `Result`.
impl From<GetError> for Error {
    fn from(error: GetError) -> Self {
        match error {
            GetError::Empty => Error::QueueEmpty,
            GetError::Closed => Error::QueueClosed,
            GetError::Failed(error) => error,
        }
    }
}
