//! [`Region`]: the shared memory every primitive lives in.
//!
//! A region is an anonymous memory file (`memfd_create`, close-on-exec) mapped `MAP_SHARED`.
//! A forked child inherits the mapping, so both processes see the same bytes; a later
//! start method can send the file descriptor to an unrelated process. The file has no
//! name anyone could open: nothing appears under `/dev/shm`, and the memory is freed when
//! the last process holding the descriptor or a mapping is gone, even if it was killed.
//!
//! Each primitive puts a `#[repr(C)]` header at offset 0 (the mapping is page aligned) and
//! possibly data after it; [`Region::new`] checks that the layout fits before anything
//! reads it.
//!
//! ## Travelling
//! A region travels to another process as its memory file's descriptor (see
//! `proc_core::travel`): [`Region::from_fd`] maps a received one. The file is sealed
//! against shrinking and growing when it is made, and a received file must carry that seal:
//! a file another process could shrink would turn this process's next access past its new
//! end into a SIGBUS. Its size must hold the layout the receiving type expects.

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use memmap2::MmapMut;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::error::{Error, Result};
use crate::raw_mutex::RawMutex;

/// A shared memory region: the memory file and its mapping in this process.
pub(crate) struct Region {
    map: ManuallyDrop<MmapMut>,
    fd: OwnedFd,
    /// Offset of the robust mutex this region holds, if any: see `Drop`.
    robust_mutex: Option<usize>,
}

/// The smallest alignment any mapping has.
const PAGE_ALIGN: usize = 4096;

/// The seals every region's file carries, and a received one must: its size is fixed.
const REQUIRED_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW);

impl Region {
    /// A zero-filled region of `len` bytes whose start is aligned for `align`.
    /// `robust_mutex` is the offset of a [`RawMutex`] the caller will place in it.
    pub(crate) fn new(
        name: &'static std::ffi::CStr,
        len: usize,
        align: usize,
        robust_mutex: Option<usize>,
    ) -> Result<Region> {
        if align > PAGE_ALIGN {
            return Err(Error::InvalidArgument {
                reason: "shared values are limited to an alignment of 4096 bytes",
            });
        }
        // A zero-length mapping is an error (EINVAL); a zero-sized value still gets a page.
        let len = len.max(1);
        let file_len = i64::try_from(len).map_err(|_| Error::InvalidArgument {
            reason: "the shared region would be larger than a file can be",
        })?;
        // The name is only a label in /proc/<pid>/fd and /proc/<pid>/maps; it cannot be
        // opened by anyone.
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
            .map_err(|e| Error::io("memfd_create", e.into()))?;
        nix::unistd::ftruncate(&fd, file_len)
            .map_err(|e| Error::io("ftruncate of the shared memory file", e.into()))?;
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(REQUIRED_SEALS | SealFlag::F_SEAL_SEAL),
        )
        .map_err(|e| Error::io("sealing the shared memory file", e.into()))?;
        // SAFETY: the file is ours alone (just created, not yet shared) and `len` bytes
        // long, so the mapping is entirely backed; the memory is only ever accessed through
        // atomics, pthread mutexes and guards that serialise access between processes, or,
        // for `SharedBytes`, through raw pointers whose users order their accesses.
        let map = unsafe { MmapMut::map_mut(&fd) }.map_err(|e| Error::io("mmap", e))?;
        if map.len() < len || !(map.as_ptr() as usize).is_multiple_of(align) {
            return Err(Error::InvalidArgument {
                reason: "the shared region was mapped smaller or less aligned than requested",
            });
        }
        Ok(Region {
            map: ManuallyDrop::new(map),
            fd,
            robust_mutex,
        })
    }

    /// Maps a memory file received from another process, which must hold at least `len`
    /// bytes and be sealed against changing size. `align` and `robust_mutex` are as for
    /// [`Region::new`]; the mutex, if any, was initialised by the process that made it.
    pub(crate) fn from_fd(
        fd: OwnedFd,
        len: usize,
        align: usize,
        robust_mutex: Option<usize>,
    ) -> Result<Region> {
        let refuse = |reason: String| Err(Error::Received { reason });
        let seals = match fcntl(&fd, FcntlArg::F_GET_SEALS) {
            Ok(seals) => SealFlag::from_bits_truncate(seals),
            Err(e) => {
                return refuse(format!(
                    "the descriptor is not a sealable memory file ({e})"
                ));
            }
        };
        if !seals.contains(REQUIRED_SEALS) {
            return refuse(
                "the memory file is not sealed against shrinking, so it could vanish under \
                 this process"
                    .into(),
            );
        }
        let size = nix::sys::stat::fstat(&fd)
            .map_err(|e| Error::io("fstat of a received shared memory file", e.into()))?
            .st_size;
        if usize::try_from(size).map_or(true, |size| size < len.max(1)) {
            return refuse(format!(
                "the memory file holds {size} bytes where {len} are needed"
            ));
        }
        // SAFETY: the file cannot change size (sealed, checked above) and holds at least the
        // layout's `len` bytes, so the mapping is entirely backed. Its contents were made by
        // multiproc in another process of this program, and are accessed, as in every
        // region, only through atomics, robust mutexes and the guards that serialise access
        // (or `SharedBytes`' raw pointers, whose users order their accesses).
        let map = unsafe { MmapMut::map_mut(&fd) }.map_err(|e| Error::io("mmap", e))?;
        if align > PAGE_ALIGN || !(map.as_ptr() as usize).is_multiple_of(align) {
            return refuse("the received region cannot be mapped with its alignment".into());
        }
        Ok(Region {
            map: ManuallyDrop::new(map),
            fd,
            robust_mutex,
        })
    }

    /// The start of the mapping: page aligned, `len()` bytes, zero-filled when created.
    #[inline]
    pub(crate) fn base(&self) -> *mut u8 {
        self.map.as_ptr().cast_mut()
    }

    /// The length of the mapping in bytes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The memory file, for handing the region to another process (over `SCM_RIGHTS`, see
    /// `proc_core::travel`).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // A robust mutex that a thread of this process holds is linked into that thread's
        // robust list: glibc writes to it when the thread locks or unlocks other robust
        // mutexes, and the kernel writes to it when the thread exits. If the guard was
        // forgotten (`mem::forget`, `LockGuard::leak`) and the last handle is dropped, the
        // mapping must stay, or those writes would land in unmapped (or, worse, reused)
        // memory. Leaking the mapping is the safe answer; the memory file is still closed.
        if let Some(offset) = self.robust_mutex {
            // SAFETY: `Region::new`'s caller placed an initialised RawMutex at `offset`, and
            // the mapping is still live here.
            let mutex = unsafe { &*self.base().add(offset).cast::<RawMutex>() };
            if mutex.is_held_by_this_process() {
                return;
            }
        }
        // SAFETY: dropped exactly once, here; no guard of this process refers to it.
        unsafe { ManuallyDrop::drop(&mut self.map) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_region_is_zero_filled_and_page_aligned() {
        let r = Region::new(c"test", 10_000, 8, None).unwrap();
        assert!(r.len() >= 10_000);
        assert_eq!(r.base() as usize % PAGE_ALIGN, 0);
        // SAFETY: the mapping is `len()` bytes long and nothing else uses it.
        let bytes = unsafe { std::slice::from_raw_parts(r.base(), r.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn the_memory_file_has_the_region_size_and_is_close_on_exec() {
        let r = Region::new(c"test", 100, 8, None).unwrap();
        let stat = nix::sys::stat::fstat(r.fd()).unwrap();
        assert_eq!(stat.st_size, 100);
        let flags = nix::fcntl::fcntl(r.fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn a_region_maps_again_from_its_memory_file() {
        let r = Region::new(c"test", 64, 8, None).unwrap();
        // SAFETY: 64 bytes are mapped and nothing else uses them.
        unsafe { r.base().add(10).write(42) };
        let again = Region::from_fd(r.fd().try_clone_to_owned().unwrap(), 64, 8, None).unwrap();
        // SAFETY: as above, in the second mapping of the same file.
        assert_eq!(unsafe { again.base().add(10).read() }, 42);
    }

    #[test]
    fn a_received_file_too_small_or_unsealed_is_refused() {
        let r = Region::new(c"test", 64, 8, None).unwrap();
        let fd = r.fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            Region::from_fd(fd, 1 << 20, 8, None),
            Err(Error::Received { .. })
        ));
        let unsealed = memfd_create(c"test", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&unsealed, 4096).unwrap();
        assert!(matches!(
            Region::from_fd(unsealed, 64, 8, None),
            Err(Error::Received { .. })
        ));
        let (pipe, _write) = std::io::pipe().unwrap();
        assert!(matches!(
            Region::from_fd(pipe.into(), 64, 8, None),
            Err(Error::Received { .. })
        ));
    }

    #[test]
    fn an_alignment_above_a_page_is_refused() {
        assert!(matches!(
            Region::new(c"test", 100, 8192, None),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn a_zero_length_region_still_maps() {
        let r = Region::new(c"test", 0, 1, None).unwrap();
        assert!(r.len() >= 1);
    }
}
