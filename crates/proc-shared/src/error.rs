//! The named-shared-memory layer's one error enum: misuse a caller can fix, blocks that are
//! not what they claim to be, and system calls that failed (with the call named).

use std::io;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a [`SharedMemory`](crate::SharedMemory) block or a
/// [`ShareableList`](crate::ShareableList).
///
/// ```
/// use proc_shared::{Error, SharedMemory};
///
/// match SharedMemory::create_named("no/slash", 16) {
///     Err(Error::InvalidName { .. }) => {}
///     other => panic!("expected an invalid-name error, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed, for example `shm_open` or `mmap`.
    #[error("{operation} failed: {source}")]
    Io {
        /// The call or step that failed, with the block's name where there is one.
        operation: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The name cannot name a block: empty, with a `/` after the optional leading one, with
    /// a NUL byte, `.` or `..`, or longer than a file name may be.
    #[error("invalid shared memory name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A block must be created with at least one byte (as Python's `ValueError`).
    #[error("a shared memory block needs a size of at least 1 byte, not 0")]
    ZeroSize,
    /// `create_named` found a block of that name already: pick another name, or `open` it.
    #[error("a shared memory block named {name:?} exists already: open it, or choose another name")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// `open` found no block of that name (never created, or unlinked already).
    #[error("no shared memory block is named {name:?} (never created, or unlinked already)")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The block opened has a size of 0 bytes: there is nothing to map.
    #[error("the shared memory block {name:?} is empty (0 bytes): there is nothing to map")]
    Empty {
        /// The name.
        name: String,
    },
    /// The name (or a received descriptor) is not a regular file, so not a block.
    #[error("{name:?} is not a regular file, so not a shared memory block")]
    NotAFile {
        /// The name.
        name: String,
    },
    /// An access reaches past the end of the block.
    #[error(
        "an access of {len} bytes at offset {offset} reaches past the end of the {size}-byte \
         shared memory block"
    )]
    OutOfBounds {
        /// Where the access starts.
        offset: usize,
        /// How many bytes it covers.
        len: usize,
        /// The size of the block.
        size: usize,
    },
    /// The block was shrunk by another process since it was mapped here: reading or writing
    /// past its new end would crash this process (SIGBUS), so the access is refused.
    #[error(
        "the shared memory block {name:?} was truncated from {mapped} to {now} bytes by \
         another process; accesses past its new end are refused"
    )]
    Shrunk {
        /// The name.
        name: String,
        /// The size mapped here.
        mapped: usize,
        /// The size of the file now.
        now: usize,
    },
    /// The block was closed with [`close`](crate::SharedMemory::close): open it again to use it.
    #[error("the shared memory block {name:?} was closed in this process")]
    Closed {
        /// The name.
        name: String,
    },
    /// A list index past the end.
    #[error("index {index} is out of range for a ShareableList of {len} items")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// A `str` or `bytes` value longer than the slot its item was given at creation (as
    /// Python's "bytes/str item exceeds available storage").
    #[error(
        "item {index} holds at most {slot} bytes; the new value needs {needed} (a \
         ShareableList's items never grow: create the list with a longer value there)"
    )]
    ItemTooLong {
        /// The item's index.
        index: usize,
        /// The bytes the item's slot holds.
        slot: usize,
        /// The bytes the value needs.
        needed: usize,
    },
    /// A `str` or `bytes` value too long for any ShareableList item (its packing format
    /// would not fit the 8 bytes Python gives it).
    #[error("a value of {len} bytes is too long for a ShareableList item (at most {max})")]
    ValueTooLong {
        /// The value's length.
        len: usize,
        /// The longest value an item can hold.
        max: usize,
    },
    /// A `str` value that holds a NUL byte at its end, which Python's layout cannot keep
    /// (trailing NUL bytes are padding there).
    #[error(
        "a ShareableList str or bytes value cannot end with a NUL byte: Python's layout strips \
         trailing NULs as padding"
    )]
    TrailingNul,
    /// The block does not hold a valid ShareableList: its header, offsets, packing formats
    /// or values are not what Python writes. Nothing was read past the block's end.
    #[error("the shared memory block {name:?} does not hold a valid ShareableList: {reason}")]
    CorruptList {
        /// The block's name.
        name: String,
        /// What was found wrong.
        reason: String,
    },
    /// The [`SharedMemoryManager`](crate::SharedMemoryManager) was shut down (its blocks
    /// are unlinked): start another to make more blocks.
    #[error("the SharedMemoryManager was shut down and its blocks unlinked: start another one")]
    ManagerShutDown,
    /// A block received from another process (as an argument or through a queue) was not
    /// what it claimed to be.
    #[error("a received shared memory block was refused: {reason}")]
    Received {
        /// What was wrong with it.
        reason: String,
    },
}

impl Error {
    /// An `Io` error for `operation`, from `source`.
    pub(crate) fn io(operation: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Io {
            operation: operation.into(),
            source: source.into(),
        }
    }
}
