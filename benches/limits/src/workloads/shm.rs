//! The named-shared-memory workloads, done with bare POSIX calls: `shm_open`, `fstat`,
//! `ftruncate`, `mmap`, `munmap`, `close` and `shm_unlink`, nothing else.

use std::ffi::{CStr, CString};
use std::hint::black_box;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

use super::{MIB, invalid, timed_each};

/// The size of a block of `shm_create_unlink`.
const SMALL_BLOCK: usize = 4096;

/// `shm_open` of `name`, through EINTR.
fn open(name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: a NUL-terminated name; the mode is read only with O_CREAT.
        let fd = unsafe { libc::shm_open(name.as_ptr(), flags, 0o600) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Removes the name `name`.
fn unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: a NUL-terminated name.
    if unsafe { libc::shm_unlink(name.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of the file behind `fd`, by `fstat`.
fn size_of_file(fd: &OwnedFd) -> io::Result<usize> {
    // SAFETY: a zeroed `stat` is a valid place for the answer.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `stat` is writable.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(stat.st_size).map_err(|_| invalid(format!("a size of {}", stat.st_size)))
}

/// A shared, read-write mapping of a whole file, unmapped when dropped.
struct Map {
    ptr: NonNull<u8>,
    len: usize,
}

impl Map {
    /// Maps the first `len` bytes of the file behind `fd` (at least 1).
    fn new(fd: &OwnedFd, len: usize) -> io::Result<Map> {
        // SAFETY: a fresh shared mapping of an open file, with no address hint.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Map { ptr, len })
    }

    /// Copies the whole mapping into `to`, which must be as long.
    fn read_into(&self, to: &mut [u8]) -> io::Result<()> {
        if to.len() != self.len {
            return Err(invalid(format!(
                "a block of {} bytes, not {}",
                self.len,
                to.len()
            )));
        }
        // SAFETY: `len` bytes are mapped from `ptr` while `self` lives; `to` is this
        // process's own memory, so the two do not overlap. Nobody else writes the block.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), to.as_mut_ptr(), self.len) };
        Ok(())
    }

    /// Copies `from` into the start of the mapping.
    fn write(&self, from: &[u8]) -> io::Result<()> {
        if from.len() > self.len {
            return Err(invalid(format!(
                "{} bytes for a block of {}",
                from.len(),
                self.len
            )));
        }
        // SAFETY: as in `read_into`, the other way.
        unsafe { std::ptr::copy_nonoverlapping(from.as_ptr(), self.ptr.as_ptr(), from.len()) };
        Ok(())
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A block's name, unlinked when dropped (a run that fails leaves nothing behind).
struct Named(CString);

impl Named {
    /// `/bench_limits_WHAT_PID`: one name per run and process.
    fn new(what: &str) -> io::Result<Named> {
        let name = format!("/bench_limits_{what}_{}", std::process::id());
        CString::new(name).map(Named).map_err(io::Error::other)
    }

    /// Creates the block, `len` bytes, as `shm_create_unlink` does.
    fn create(&self, len: usize) -> io::Result<(OwnedFd, Map)> {
        let fd = open(&self.0, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)?;
        let length = libc::off_t::try_from(len).map_err(io::Error::other)?;
        // SAFETY: `fd` is open for writing.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), length) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let map = Map::new(&fd, len)?;
        Ok((fd, map))
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        // Gone already after a run of `shm_create_unlink`: nothing to do then.
        let _ = unlink(&self.0);
    }
}

/// The bytes a block of `shm_attach_read_1mib` is filled with: no page is all zeros.
fn pattern() -> Vec<u8> {
    (0..MIB).map(|i| (i % 251) as u8).collect()
}

/// A 1 MiB block made and filled in set-up; per operation: `shm_open`, `fstat`, `mmap` of
/// the whole file, a `memcpy` of it into a buffer touched beforehand, `munmap`, `close`.
pub fn shm_attach_read_1mib(count: u64) -> io::Result<Duration> {
    let block = Named::new("attach")?;
    let expected = pattern();
    {
        let (_fd, map) = block.create(MIB)?;
        map.write(&expected)?;
    }
    let mut buf = vec![0u8; MIB];
    let elapsed = timed_each(count, || {
        let fd = open(&block.0, libc::O_RDWR)?;
        let map = Map::new(&fd, size_of_file(&fd)?)?;
        map.read_into(black_box(&mut buf))?;
        drop(map);
        drop(fd);
        Ok(())
    })?;
    if buf != expected {
        return Err(io::Error::other("the bytes read are not those written"));
    }
    Ok(elapsed)
}

/// Per operation: `shm_open` with `O_CREAT | O_EXCL`, `ftruncate` to 4 KiB, `mmap`, a store
/// of 8 bytes, `munmap`, `close`, `shm_unlink`; under one name, free again after each.
pub fn shm_create_unlink(count: u64) -> io::Result<Duration> {
    let block = Named::new("create")?;
    let mut i = 0u64;
    timed_each(count, || {
        let (fd, map) = block.create(SMALL_BLOCK)?;
        map.write(&i.to_ne_bytes())?;
        i += 1;
        drop(map);
        drop(fd);
        unlink(&block.0)
    })
}
