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
//! `proc_core::internal::handle_wire`): [`Region::from_fd`] maps a received one. The file is sealed
//! against shrinking and growing when it is made, and a received file must carry that seal:
//! a file another process could shrink would turn this process's next access past its new
//! end into a SIGBUS. Its size must hold the layout the receiving type expects (the
//! primitives of this crate: exactly that layout). A robust mutex in a received region is
//! checked before anything locks it: its kind, and that its lock word names no thread of
//! this process that could not have locked it, no thread that does not exist, and no
//! thread of a process that does not map the file (where that process's maps can be read).

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use memmap2::MmapMut;
use proc_core::internal::memory_file::{self, FIXED_SIZE};

use crate::error::{Error, Result};
use crate::raw_mutex::{Holder, Kind, RawMutex};

/// A shared memory region: the memory file and its mapping in this process.
pub(crate) struct Region {
    map: ManuallyDrop<MmapMut>,
    fd: OwnedFd,
    /// Offset of the robust mutex this region holds, if any: see `Drop`.
    robust_mutex: Option<usize>,
}

/// The smallest alignment any mapping has.
const PAGE_ALIGN: usize = 4096;

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
        // Every region's file is sealed against changing size, and a received one must be.
        let fd =
            OwnedFd::from(memory_file::create(name).map_err(|e| Error::io("memfd_create", e))?);
        nix::unistd::ftruncate(&fd, file_len)
            .map_err(|e| Error::io("ftruncate of the shared memory file", e.into()))?;
        memory_file::seal(&fd, FIXED_SIZE)
            .map_err(|e| Error::io("sealing the shared memory file", e))?;
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

    /// Maps a memory file received from another process, after checking everything about
    /// it that can be checked without trusting its sender: that it is a memory file, sealed
    /// against changing size, of the size `expect` says, mappable for reading and writing;
    /// and, if it holds a robust mutex, that the mutex is one this crate initialised and
    /// that its lock word names as its holder no thread of this process (unless this
    /// process maps the file already), no thread that does not exist, and no thread of a
    /// process that does not map the file. Every refusal is an [`Error::Received`] that
    /// says what was wrong.
    pub(crate) fn from_fd(fd: OwnedFd, expect: Expect) -> Result<Region> {
        let refuse = |reason: String| Err(Error::Received { reason });
        let seen = match memory_file::inspect(&fd) {
            Ok(seen) => seen,
            Err(e) => return refuse(e.to_string()),
        };
        if !seen.seals.contains(FIXED_SIZE) {
            return refuse(
                "the memory file is not sealed against shrinking and growing, so it could \
                 vanish under this process"
                    .into(),
            );
        }
        // Exactly what `Region::new` makes: a file of any other size is another layout's.
        let len = expect.len.max(1);
        let size = seen.size;
        if usize::try_from(size) != Ok(len) {
            return refuse(format!(
                "the memory file holds {size} bytes where exactly {len} are needed"
            ));
        }
        // SAFETY: the file cannot change size (sealed, checked above) and holds at least the
        // layout's `len` bytes, so the mapping is entirely backed. Its contents were made by
        // another process; they are only read here as atomics and plain words (any bytes
        // are valid), and used, as in every region, only through atomics, robust mutexes
        // and the guards that serialise access (or `SharedBytes`' raw pointers, whose users
        // order their accesses).
        let map = match unsafe { MmapMut::map_mut(&fd) } {
            Ok(map) => map,
            Err(e) => {
                return refuse(format!(
                    "the memory file cannot be mapped for reading and writing ({e})"
                ));
            }
        };
        if expect.align > PAGE_ALIGN || !(map.as_ptr() as usize).is_multiple_of(expect.align) {
            return refuse("the received region cannot be mapped with its alignment".into());
        }
        if let Some(mutex) = expect.robust_mutex {
            // Checked before the region exists: a refused mapping is simply unmapped (a
            // region's drop could keep it, see `Drop`).
            check_received_mutex(&map, &fd, mutex)?;
        }
        Ok(Region {
            map: ManuallyDrop::new(map),
            fd,
            robust_mutex: expect.robust_mutex.map(|mutex| mutex.offset),
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

    /// Whether `other` maps the same memory file (the same object, received or cloned by
    /// another route). Only asked when the two mappings differ.
    pub(crate) fn same_file(&self, other: &Region) -> bool {
        if std::ptr::eq(self.base(), other.base()) {
            return true;
        }
        match (
            nix::sys::stat::fstat(&self.fd),
            nix::sys::stat::fstat(&other.fd),
        ) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    }

    /// The memory file, for handing the region to another process (over `SCM_RIGHTS`, see
    /// `proc_core::internal::handle_wire`).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What a received memory file must be: see [`Region::from_fd`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// Its size in bytes (what [`Region::new`] was given): exactly that.
    pub(crate) len: usize,
    /// The alignment the layout needs.
    pub(crate) align: usize,
    /// The robust mutex the region holds, if any.
    pub(crate) robust_mutex: Option<ExpectMutex>,
}

/// A robust mutex a received region holds: where, and of which kind if the receiver knows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpectMutex {
    pub(crate) offset: usize,
    pub(crate) kind: Option<Kind>,
}

impl Expect {
    /// A file of exactly `len` bytes aligned for `align`, with no mutex.
    pub(crate) fn exactly(len: usize, align: usize) -> Expect {
        Expect {
            len,
            align,
            robust_mutex: None,
        }
    }

    /// With a robust mutex at `offset`, of `kind` if known.
    pub(crate) fn with_mutex(self, offset: usize, kind: Option<Kind>) -> Expect {
        Expect {
            robust_mutex: Some(ExpectMutex { offset, kind }),
            ..self
        }
    }
}

/// The checks of a received region's robust mutex: see [`Region::from_fd`].
fn check_received_mutex(map: &MmapMut, fd: &OwnedFd, expect: ExpectMutex) -> Result<()> {
    let refuse = |reason: String| Err(Error::Received { reason });
    if expect.offset + size_of::<RawMutex>() > map.len() {
        return refuse("the memory file is too small for its mutex".into());
    }
    // SAFETY: in bounds (checked above) and aligned (the offset is one a layout gave for a
    // RawMutex, in a page-aligned mapping); any bytes are a valid RawMutex, which is only
    // read here (its kind word and lock word, atomically).
    let mutex = unsafe { &*map.as_ptr().add(expect.offset).cast::<RawMutex>() };
    mutex.check_kind(expect.kind).or_else(refuse)?;
    match mutex.holder() {
        Holder::Nobody => Ok(()),
        // glibc trusts a mutex whose lock word names the calling thread: an unlock would
        // then follow the mutex's list pointers, which its sender wrote. A mutex a thread of
        // this process really holds was locked through a mapping this process still has.
        Holder::ThisProcess if maps("/proc/self/maps", fd, map.as_ptr()) == Some(true) => Ok(()),
        Holder::ThisProcess => refuse(
            "its mutex says a thread of this process holds it, which no thread of this \
             process can have done through a memory file it does not map"
                .into(),
        ),
        Holder::Gone(tid) => refuse(format!(
            "its mutex says thread {tid} holds it, and there is no such thread (the kernel \
             releases the mutexes of a thread that ends)"
        )),
        // A holder locked the mutex through its own mapping of the file, and keeps that
        // mapping while it holds it. Another process's mappings are not always ours to
        // read: then the holder is taken at its word, and the mutex as held.
        Holder::Other(tid) => {
            let path = format!("/proc/{tid}/maps");
            if maps(&path, fd, std::ptr::null()) == Some(false) && mutex.owner() == tid {
                return refuse(format!(
                    "its mutex says thread {tid} holds it, and that thread's process does \
                     not map the memory file (so it cannot be holding it)"
                ));
            }
            Ok(())
        }
    }
}

/// Whether the process whose maps `maps_path` lists maps the file `fd` refers to, at an
/// address other than `except`; `None` when that cannot be read. Only read on the rare
/// paths where it matters (a received mutex said to be held).
fn maps(maps_path: &str, fd: &OwnedFd, except: *const u8) -> Option<bool> {
    let stat = nix::sys::stat::fstat(fd).ok()?;
    let (major, minor) = (libc::major(stat.st_dev), libc::minor(stat.st_dev));
    let maps = std::fs::read_to_string(maps_path).ok()?;
    Some(maps.lines().any(|line| {
        // "start-end perms offset major:minor inode path"
        let mut fields = line.split_whitespace();
        let (Some(range), Some(_), Some(_), Some(device), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return false;
        };
        let start = range
            .split('-')
            .next()
            .and_then(|start| usize::from_str_radix(start, 16).ok());
        let device = device.split_once(':').and_then(|(major, minor)| {
            Some((
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            ))
        });
        start != Some(except as usize)
            && device == Some((major, minor))
            && inode.parse::<u64>().ok() == Some(stat.st_ino)
    }))
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
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};

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
        let flags = fcntl(r.fd(), FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn a_region_maps_again_from_its_memory_file() {
        let r = Region::new(c"test", 64, 8, None).unwrap();
        // SAFETY: 64 bytes are mapped and nothing else uses them.
        unsafe { r.base().add(10).write(42) };
        let again =
            Region::from_fd(r.fd().try_clone_to_owned().unwrap(), Expect::exactly(64, 8)).unwrap();
        // SAFETY: as above, in the second mapping of the same file.
        assert_eq!(unsafe { again.base().add(10).read() }, 42);
    }

    #[test]
    fn a_received_file_too_small_or_unsealed_is_refused() {
        let r = Region::new(c"test", 64, 8, None).unwrap();
        let fd = r.fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            Region::from_fd(fd, Expect::exactly(1 << 20, 8)),
            Err(Error::Received { .. })
        ));
        let unsealed = memfd_create(c"test", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&unsealed, 4096).unwrap();
        assert!(matches!(
            Region::from_fd(unsealed, Expect::exactly(4096, 8)),
            Err(Error::Received { .. })
        ));
        let (pipe, _write) = std::io::pipe().unwrap();
        let err = Region::from_fd(pipe.into(), Expect::exactly(64, 8))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("a pipe, not a memory file"),
            "{err}"
        );
    }

    #[test]
    fn a_received_file_larger_than_its_layout_is_refused() {
        let r = Region::new(c"test", 128, 8, None).unwrap();
        let fd = || r.fd().try_clone_to_owned().unwrap();
        let err = Region::from_fd(fd(), Expect::exactly(64, 8)).err().unwrap();
        assert!(err.to_string().contains("exactly 64"), "{err}");
        assert!(Region::from_fd(fd(), Expect::exactly(128, 8)).is_ok());
    }

    /// A region holding one robust mutex of `kind` at offset 0.
    fn with_mutex(kind: Kind) -> Region {
        let r = Region::new(c"test", size_of::<RawMutex>(), 8, Some(0)).unwrap();
        // SAFETY: fresh, aligned, zeroed memory that nothing else uses.
        unsafe { RawMutex::init(r.base().cast(), kind) }.unwrap();
        r
    }

    fn receive(r: &Region, kind: Option<Kind>) -> Result<Region> {
        let expect = Expect::exactly(size_of::<RawMutex>(), 8).with_mutex(0, kind);
        Region::from_fd(r.fd().try_clone_to_owned().unwrap(), expect)
    }

    #[test]
    fn a_received_mutex_of_another_kind_is_refused() {
        let lock = with_mutex(Kind::ErrorCheck);
        let rlock = with_mutex(Kind::Recursive);
        assert!(receive(&lock, Some(Kind::ErrorCheck)).is_ok());
        assert!(receive(&rlock, Some(Kind::Recursive)).is_ok());
        assert!(receive(&lock, None).is_ok());
        let err = receive(&lock, Some(Kind::Recursive)).err().unwrap();
        assert!(err.to_string().contains("not re-entrant"), "{err}");
        assert!(receive(&rlock, Some(Kind::ErrorCheck)).is_err());
    }

    #[test]
    fn a_received_mutex_that_was_never_initialised_is_refused() {
        // All zeros is a valid pthread mutex, but a normal one: not robust, not shared.
        let r = Region::new(c"test", size_of::<RawMutex>(), 8, Some(0)).unwrap();
        let err = receive(&r, None).err().unwrap();
        assert!(err.to_string().contains("kind word is 0x0"), "{err}");
    }

    #[test]
    fn a_mutex_held_by_this_process_is_received_only_through_a_file_it_maps_already() {
        let r = with_mutex(Kind::ErrorCheck);
        // SAFETY: the region holds an initialised mutex at offset 0 and outlives it.
        let mutex = unsafe { &*r.base().cast::<RawMutex>() };
        mutex.lock("test").unwrap();
        // Legitimately held here, through the mapping `r`: accepted.
        assert!(receive(&r, Some(Kind::ErrorCheck)).is_ok());
        mutex.unlock("test").unwrap();
        // The same words, written by hand into a file this process has never mapped: the
        // lock word names this thread, but nothing of this process locked it.
        let forged =
            memfd_create(c"test", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).unwrap();
        mutex.lock("test").unwrap();
        // SAFETY: the mutex's bytes are readable for its size; copied while we hold it.
        let bytes = unsafe { std::slice::from_raw_parts(r.base(), size_of::<RawMutex>()) };
        nix::unistd::write(&forged, bytes).unwrap();
        mutex.unlock("test").unwrap();
        fcntl(&forged, FcntlArg::F_ADD_SEALS(FIXED_SIZE)).unwrap();
        let expect = Expect::exactly(size_of::<RawMutex>(), 8).with_mutex(0, None);
        let err = Region::from_fd(forged, expect).err().unwrap();
        assert!(
            err.to_string()
                .contains("a thread of this process holds it"),
            "{err}"
        );
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
