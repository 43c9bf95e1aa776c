//! [`SharedBytes`]: a region of plain bytes in shared memory, with no lock of its own.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::Result;
use crate::region::{Expect, Region};

/// `len` zero-filled bytes in shared memory: an anonymous memory file mapped `MAP_SHARED`,
/// sealed against changing size, that travels as its descriptor (see
/// `proc_core::internal::handle_wire`) and is mapped again by [`from_fd`](SharedBytes::from_fd) on the
/// other side. Its pages are taken only as they are first written.
///
/// It has no lock: the processes that share it order their accesses by other means (a
/// message that says the bytes are ready, for instance), which is why its accessors are
/// raw pointers. Clones share the same mapping.
///
/// ```
/// use proc_sync::internal::SharedBytes;
///
/// let bytes = SharedBytes::new(c"example", 4096)?;
/// assert_eq!(bytes.len(), 4096);
/// // SAFETY: nobody else has the region yet; the write is within its length.
/// unsafe { bytes.as_ptr().write(7) };
/// let again = SharedBytes::from_fd(bytes.fd().try_clone_to_owned().unwrap(), 4096)?;
/// // SAFETY: nobody writes the byte while it is read.
/// assert_eq!(unsafe { again.as_ptr().read() }, 7);
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedBytes {
    region: Arc<Region>,
    len: usize,
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SharedBytes {
    /// A new region of `len` zero bytes; `name` labels its memory file in `/proc`.
    pub fn new(name: &'static std::ffi::CStr, len: usize) -> Result<SharedBytes> {
        Ok(SharedBytes {
            region: Arc::new(Region::new(name, len, 1, None)?),
            len,
        })
    }

    /// The region of another process, received as its memory file, which must hold
    /// exactly `len` bytes (as [`new`](Self::new) makes it) and be sealed against changing
    /// size.
    pub fn from_fd(fd: OwnedFd, len: usize) -> Result<SharedBytes> {
        Ok(SharedBytes {
            region: Arc::new(Region::from_fd(fd, Expect::exactly(len, 1))?),
            len,
        })
    }

    /// The memory file, for sending the region to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// The first byte; `len()` bytes follow, valid as long as `self` (or a clone) lives.
    /// Reading or writing them is the caller's to order with the other processes.
    pub fn as_ptr(&self) -> *mut u8 {
        self.region.base()
    }

    /// How many bytes the region holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
