//! Building blocks for layers above this one (the queues of proc-ipc are made of them): a
//! robust process-shared mutex, a shared region whose header starts with one, a lock-free
//! block of shared atomics, futex waits and absolute deadlines. Most programs want the safe types at the crate root instead.
//!
//! Hidden from the docs (`#[doc(hidden)]`): plumbing that multiproc's other layers share,
//! not part of the user's API.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! use proc_sync::internal::{futex, Deadline, MutexHeader, MutexKind, MutexRegion, RawMutex};
//!
//! #[repr(C)]
//! struct Header {
//!     mutex: RawMutex,
//!     changes: AtomicU32,
//! }
//!
//! // SAFETY: repr(C), the mutex first, and all-zero is a valid `changes`.
//! unsafe impl MutexHeader for Header {
//!     fn mutex(&self) -> &RawMutex {
//!         &self.mutex
//!     }
//! }
//!
//! // A header and 16 bytes after it, in shared memory a forked child sees too.
//! let region = MutexRegion::<Header, u8>::new(c"example", MutexKind::ErrorCheck, 16)?;
//! let owner_died = region.mutex().lock("example")?;
//! assert!(!owner_died);
//! region.header().changes.fetch_add(1, Ordering::Release);
//! region.mutex().unlock("example")?;
//! futex::wake_all(&region.header().changes);
//!
//! // Nobody changes the word again: the wait ends at its deadline.
//! let soon = Deadline::after(std::time::Duration::from_millis(1));
//! let seen = region.header().changes.load(Ordering::Acquire);
//! while futex::wait(&region.header().changes, seen, Some(&soon)) != futex::Wake::TimedOut {}
//! # Ok::<(), proc_sync::Error>(())
//! ```

pub use crate::deadline::{Deadline, monotonic_nanos};
pub use crate::doorbell::Doorbell;
pub use crate::mutex_region::{MutexHeader, MutexRegion};
pub use crate::raw_mutex::{Kind as MutexKind, RawMutex};
pub use crate::shared_atomics::{AtomicBlock, SharedAtomics};
pub use crate::shared_bytes::SharedBytes;

/// Futex waits and wakes on a 32-bit word in shared memory.
pub mod futex {
    pub use crate::futex::{Wake, wait, wait_bitset, wake, wake_all, wake_bitset};
}
