//! The synchronisation layer's one error enum: misuse a caller can fix, and system calls
//! that failed (with the call named).

use std::io;

/// `Result` with the synchronisation layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a lock, semaphore, barrier or shared value.
///
/// Misuse gets its own variant whose message says what to change; failures of the
/// operating system keep the `io::Error` and name the call that failed.
///
/// ```
/// use proc_sync::{BoundedSemaphore, Error};
///
/// let s = BoundedSemaphore::new(1)?;
/// match s.release() {
///     Err(Error::SemaphoreOverRelease { limit: 1 }) => {}
///     other => panic!("expected an over-release error, got {other:?}"),
/// }
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed, for example `memfd_create` or `mmap` while creating the shared
    /// memory of a new lock.
    #[error("{operation} failed: {source}")]
    Io {
        /// The call or step that failed.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `release()` was called by a thread that does not hold the lock. A robust lock has an
    /// owner (one thread of one process), and only the owner may release it; to hand a
    /// permit from one process to another, use a [`Semaphore`](crate::Semaphore).
    #[error(
        "this thread does not hold the {what}: only the thread that acquired it may release it"
    )]
    NotOwner {
        /// The kind of lock ("Lock", "RLock").
        what: &'static str,
    },
    /// The calling thread already holds this (non-re-entrant) lock: waiting for it would
    /// wait forever. Use an [`RLock`](crate::RLock) for re-entrant locking.
    #[error("this thread already holds the {what}: acquiring it again would deadlock")]
    WouldDeadlock {
        /// The kind of lock.
        what: &'static str,
    },
    /// An [`RLock`](crate::RLock) was acquired more times in a row than its counter holds.
    #[error("the RLock was acquired too many times by its owner (its re-entry counter is full)")]
    TooManyReentries,
    /// The lock was left inconsistent by a holder that died and was then released without
    /// being marked consistent. This crate always marks it consistent before handing out a
    /// guard, so only code outside this crate writing into the shared memory can cause it.
    #[error(
        "the {what} is not recoverable: its state was released inconsistent, which only \
         code outside proc-sync writing into its shared memory can cause"
    )]
    NotRecoverable {
        /// The kind of lock.
        what: &'static str,
    },
    /// A [`BoundedSemaphore`](crate::BoundedSemaphore) was released above its initial value,
    /// or a [`Semaphore`](crate::Semaphore) above the largest value its counter holds.
    #[error("semaphore released too many times: its value would exceed {limit}")]
    SemaphoreOverRelease {
        /// The largest value the semaphore may have.
        limit: u32,
    },
    /// The [`Barrier`](crate::Barrier) is broken: a party timed out, called
    /// [`abort`](crate::Barrier::abort), or died while updating it. Every waiter gets this
    /// error until [`reset`](crate::Barrier::reset) is called.
    #[error(
        "the barrier is broken (a party timed out, aborted it, or died while updating it); call reset() to use it again"
    )]
    BrokenBarrier,
    /// A handle received from another process (as an argument of a spawned process, or
    /// through a queue or connection) does not describe a usable shared object.
    #[error("a shared object received from another process cannot be used: {reason}")]
    Received {
        /// What was wrong with it.
        reason: String,
    },
    /// An element index past the end of a [`RawArray`](crate::RawArray).
    #[error("index {index} is out of range for an array of {len} elements")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// An argument that can never work, such as a barrier for zero parties or an array
    /// too large to map.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What was wrong.
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn io(operation: &'static str, source: io::Error) -> Self {
        Error::Io { operation, source }
    }

    pub(crate) fn errno(operation: &'static str, errno: i32) -> Self {
        Error::Io {
            operation,
            source: io::Error::from_raw_os_error(errno),
        }
    }
}
