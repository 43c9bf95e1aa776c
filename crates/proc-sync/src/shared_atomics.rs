//! [`SharedAtomics<H>`]: a `#[repr(C)]` block of atomics in shared memory, with no lock:
//! what a primitive needs whose every change is one atomic operation (a semaphore's count,
//! an event's flag, a joinable queue's unfinished count), so that a process killed at any
//! instruction leaves each field before or after its change, never torn.

use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::Result;
use crate::region::{Expect, Region};

/// A block of atomics that may live in shared memory.
///
/// # Safety
/// All-zero bytes must be a valid value of the type, and every field must be an atomic (or
/// otherwise change only atomically), since other processes read and write it without a
/// lock.
pub unsafe trait AtomicBlock: Sized {}

/// A block `H` of atomics in a shared region of its own: a clone, or a copy a forked child
/// inherits, refers to the same block. Zero-filled when made.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// use proc_sync::internal::{AtomicBlock, SharedAtomics};
///
/// #[repr(C)]
/// struct Counters {
///     done: AtomicU32,
/// }
///
/// // SAFETY: one atomic, for which all-zero is a valid value.
/// unsafe impl AtomicBlock for Counters {}
///
/// let counters = SharedAtomics::<Counters>::new(c"example")?;
/// let mut child = proc_core::Process::new({
///     let counters = counters.clone();
///     move || {
///         counters.get().done.fetch_add(1, Ordering::AcqRel);
///     }
/// });
/// child.start()?;
/// child.join()?;
/// assert_eq!(counters.get().done.load(Ordering::Acquire), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedAtomics<H> {
    region: Arc<Region>,
    _block: PhantomData<fn() -> H>,
}

impl<H> std::fmt::Debug for SharedAtomics<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAtomics")
            .field("block", &std::any::type_name::<H>())
            .finish_non_exhaustive()
    }
}

impl<H> Clone for SharedAtomics<H> {
    fn clone(&self) -> Self {
        SharedAtomics {
            region: Arc::clone(&self.region),
            _block: PhantomData,
        }
    }
}

impl<H: AtomicBlock> SharedAtomics<H> {
    /// A zero-filled block in a new shared region; `name` labels it in `/proc` only.
    pub fn new(name: &'static std::ffi::CStr) -> Result<Self> {
        let region = Region::new(name, size_of::<H>(), align_of::<H>(), None)?;
        Ok(SharedAtomics {
            region: Arc::new(region),
            _block: PhantomData,
        })
    }

    /// The block of another process, received as its memory file (see
    /// `proc_core::internal::handle_wire`). An error when the descriptor is not a memory
    /// file, or the file is not exactly the size of `H` (as [`new`](Self::new) makes it) or
    /// not sealed against changing size.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_fd_expecting(fd, Expect::exactly(size_of::<H>(), align_of::<H>()))
    }

    fn from_fd_expecting(fd: OwnedFd, expect: Expect) -> Result<Self> {
        Ok(SharedAtomics {
            region: Arc::new(Region::from_fd(fd, expect)?),
            _block: PhantomData,
        })
    }

    /// The memory file, for sending the block to another process (see
    /// `proc_core::internal::handle_wire::FdRef`); [`from_fd`](SharedAtomics::from_fd) maps it there.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// The block.
    pub fn get(&self) -> &H {
        // SAFETY: `Region::new` checked the size and alignment for H; the region is
        // zero-filled, a valid H (AtomicBlock's contract), changed only atomically, and it
        // lives as long as `self`.
        unsafe { &*self.region.base().cast::<H>() }
    }
}
