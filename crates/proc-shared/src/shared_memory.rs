//! [`SharedMemory`]: a block of memory by name, as Python's
//! `multiprocessing.shared_memory.SharedMemory`: a POSIX shared memory object (a file in
//! `/dev/shm`) mapped into each process that creates or opens it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use bytemuck::Pod;
use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat};
use proc_core::internal::handle_wire::{FdRef, ReceivedFd, deserialize_handle, serialize_handle};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::name::Name;
use crate::tracker;

/// Which tracker a new block is registered with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tracking<'a> {
    /// This process tree's resource tracker (started if needed).
    Tree,
    /// A [`SharedMemoryManager`](crate::SharedMemoryManager)'s, by its end of the socket.
    Manager(BorrowedFd<'a>),
}

/// Bulk copies of at least this many bytes first check that no other process shrank the
/// block (an `fstat`, cheap beside the copy): a shrunk block would crash this process with
/// SIGBUS on access past its new end.
const SIZE_CHECK_FROM: usize = 64 * 1024;

/// The kind a block announces when it travels (see `proc_core`'s `handle_wire`).
const KIND: &str = "SharedMemory";

/// A named block of shared memory, as Python's `multiprocessing.shared_memory.SharedMemory`.
///
/// Any process can open a block by its [`name`](SharedMemory::name), including a Python
/// process (`SharedMemory(name=...)`): names, modes and sizes follow Python's rules. A
/// block lives until it is [`unlink`](SharedMemory::unlink)ed, however many processes have
/// it open; one created here and never unlinked is unlinked by the resource tracker when
/// the process tree that created it has ended (see the crate's guide).
///
/// Access is bounds-checked: [`read`](SharedMemory::read) and
/// [`write`](SharedMemory::write) move one plain-data value ([`Pod`]) at any offset (no
/// alignment needed), [`read_bytes`](SharedMemory::read_bytes) and
/// [`write_bytes`](SharedMemory::write_bytes) copy byte slices. Nothing orders accesses
/// between processes: guard a read-modify-write with a lock (a `proc_sync::Lock`), as in
/// Python.
///
/// ```
/// use proc_shared::SharedMemory;
///
/// let shm = SharedMemory::create(64)?;
/// shm.write(0, &42u64)?;
/// shm.write_bytes(8, b"hello")?;
///
/// // Another process (here, this one) opens it by name and sees the same bytes.
/// let other = SharedMemory::open(shm.name())?;
/// assert_eq!(other.read::<u64>(0)?, 42);
/// let mut word = [0u8; 5];
/// other.read_bytes(8, &mut word)?;
/// assert_eq!(&word, b"hello");
///
/// shm.unlink()?; // the name is gone; mappings stay valid until closed or dropped
/// # Ok::<(), proc_shared::Error>(())
/// ```
///
/// A block travels to a child: captured by a [`Process::new`](proc_core::Process::new)
/// closure, or as an argument of [`Process::target`](proc_core::Process::target) (under
/// every start method) or through a multiproc `Queue` or `Connection`, where it goes as
/// its file descriptor with its name and size, checked on arrival.
///
/// ## Another process can shrink the block
/// A block is a file: any process that may open it may also `ftruncate` it, and an access
/// past the new end then kills the accessing process with SIGBUS (Python has the same
/// hazard). The mapping's size is fixed when the block is created or opened; bulk copies of
/// 64 KiB or more check the file's size first and return [`Error::Shrunk`], but a
/// truncation that races with an access cannot be caught. Share blocks only with processes
/// you trust not to truncate them (the mode is 0600: processes of the same user).
pub struct SharedMemory {
    name: Name,
    size: usize,
    /// The mapping and the file, until [`close`](SharedMemory::close).
    open: Option<Open>,
}

struct Open {
    map: MmapRaw,
    fd: OwnedFd,
}

impl SharedMemory {
    /// Creates a block of `size` bytes (zeroed) under a fresh random name, `psm_` and 8 hex
    /// digits, as Python names the blocks it creates.
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(4096)?;
    /// assert!(shm.name().starts_with("psm_"));
    /// assert_eq!(shm.size(), 4096);
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ZeroSize`] for `size == 0`; [`Error::Io`] if the system refuses.
    pub fn create(size: usize) -> Result<SharedMemory> {
        SharedMemory::create_tracked(size, Tracking::Tree)
    }

    /// As [`create`](SharedMemory::create), registered as `tracking` says.
    pub(crate) fn create_tracked(size: usize, tracking: Tracking<'_>) -> Result<SharedMemory> {
        loop {
            match SharedMemory::create_at(Name::random()?, size, tracking) {
                // Another block took this random name: draw again, as Python does.
                Err(Error::AlreadyExists { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Creates a block of `size` bytes named `name` (a leading `/` is optional, as in
    /// Python), readable and writable by this user only (mode 0600). It fails if a block
    /// of that name exists already.
    ///
    /// ```
    /// use proc_shared::{Error, SharedMemory};
    ///
    /// let name = format!("doc_create_named_{}", std::process::id());
    /// let shm = SharedMemory::create_named(&name, 100)?;
    /// assert_eq!(shm.name(), name);
    /// assert!(matches!(SharedMemory::create_named(&name, 100), Err(Error::AlreadyExists { .. })));
    /// shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::ZeroSize`], [`Error::AlreadyExists`], or
    /// [`Error::Io`] if the system refuses.
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory> {
        SharedMemory::create_at(Name::parse(name)?, size, Tracking::Tree)
    }

    /// Opens the block named `name`, created by this or any other process (Python's
    /// included). Its size is the file's size now, as in Python.
    ///
    /// ```
    /// use proc_shared::{Error, SharedMemory};
    ///
    /// let shm = SharedMemory::create(10)?;
    /// let same = SharedMemory::open(shm.name())?;
    /// assert_eq!(same.size(), 10);
    /// shm.unlink()?;
    /// assert!(matches!(SharedMemory::open(shm.name()), Err(Error::NotFound { .. })));
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Empty`] for a block of 0
    /// bytes, [`Error::NotAFile`] for something else than a file, or [`Error::Io`].
    pub fn open(name: &str) -> Result<SharedMemory> {
        let name = Name::parse(name)?;
        let fd =
            nix::sys::mman::shm_open(name.with_slash().as_c_str(), OFlag::O_RDWR, Mode::empty())
                .map_err(|e| match e {
                    Errno::ENOENT => Error::NotFound {
                        name: name.as_str().to_string(),
                    },
                    e => Error::io(format!("shm_open of {:?}", name.as_str()), e),
                })?;
        let size = file_size(&fd, &name)?;
        SharedMemory::map(name, fd, size)
    }

    fn create_at(name: Name, size: usize, tracking: Tracking<'_>) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        let length = libc::off_t::try_from(size).map_err(|_| {
            Error::io(
                "sizing a shared memory block",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "size too large"),
            )
        })?;
        // Registered before it exists: a creator killed anywhere from here on leaves a name
        // its tracker unlinks (a name that never came to exist costs it a failed unlink).
        match tracking {
            Tracking::Tree => tracker::register(&name),
            Tracking::Manager(end) => tracker::register_with(end, &name),
        }?;
        let forget = || match tracking {
            Tracking::Tree => tracker::unregister(&name),
            Tracking::Manager(end) => tracker::unregister_with(end, &name),
        };
        let fd = match nix::sys::mman::shm_open(
            name.with_slash().as_c_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                // Not ours (another's block of that name, or none made): forget our
                // registration only, which leaves any other registration of the name.
                forget();
                return Err(match e {
                    Errno::EEXIST => Error::AlreadyExists {
                        name: name.as_str().to_string(),
                    },
                    e => Error::io(format!("shm_open of {:?}", name.as_str()), e),
                });
            }
        };
        let made = nix::unistd::ftruncate(&fd, length)
            .map_err(|e| Error::io(format!("ftruncate of {:?}", name.as_str()), e))
            .and_then(|()| SharedMemory::map(name.clone(), fd, size));
        if made.is_err() {
            // Nothing may be left behind by a create that failed.
            let _ = nix::sys::mman::shm_unlink(name.with_slash().as_c_str());
            forget();
        }
        made
    }

    fn map(name: Name, fd: OwnedFd, size: usize) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::Empty {
                name: name.as_str().to_string(),
            });
        }
        let map = MmapOptions::new()
            .len(size)
            .map_raw(fd.as_raw_fd())
            .map_err(|e| Error::io(format!("mmap of {:?}", name.as_str()), e))?;
        Ok(SharedMemory {
            name,
            size,
            open: Some(Open { map, fd }),
        })
    }

    /// The block's name, without a leading `/` (as Python's `SharedMemory.name`): what
    /// another process passes to [`open`](SharedMemory::open).
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(1)?;
    /// let again = proc_shared::SharedMemory::open(&format!("/{}", shm.name()))?;
    /// assert_eq!(again.name(), shm.name());
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The block's size in bytes, as mapped here.
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(12)?;
    /// assert_eq!(shm.size(), 12);
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Reads a `T` at byte `offset` (no alignment needed).
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(16)?;
    /// shm.write(3, &1.5f64)?;
    /// assert_eq!(shm.read::<f64>(3)?, 1.5);
    /// assert!(shm.read::<f64>(9).is_err()); // bytes 9..17 of 16
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] or [`Error::Closed`].
    pub fn read<T: Pod>(&self, offset: usize) -> Result<T> {
        let mut value = T::zeroed();
        self.read_bytes(offset, bytemuck::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// Writes `value` at byte `offset` (no alignment needed).
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(8)?;
    /// shm.write(0, &[1u16, 2, 3, 4])?;
    /// assert_eq!(shm.read::<[u16; 4]>(0)?, [1, 2, 3, 4]);
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] or [`Error::Closed`].
    pub fn write<T: Pod>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_bytes(offset, bytemuck::bytes_of(value))
    }

    /// Copies `buf.len()` bytes from byte `offset` of the block into `buf`.
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(4)?;
    /// shm.write_bytes(0, b"abcd")?;
    /// let mut two = [0u8; 2];
    /// shm.read_bytes(2, &mut two)?;
    /// assert_eq!(&two, b"cd");
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfBounds`], [`Error::Shrunk`] or [`Error::Closed`].
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let from = self.checked_ptr(offset, buf.len())?;
        // SAFETY: `checked_ptr` checked that `offset..offset + len` lies inside the live
        // mapping; `buf` is a distinct, writable buffer of that length (it is a `&mut` of
        // this process's memory, never the shared mapping's). Other processes may write the
        // bytes meanwhile: a copy of plain bytes, which any value is.
        unsafe { std::ptr::copy_nonoverlapping(from, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into the block at byte `offset`.
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(4)?;
    /// assert!(shm.write_bytes(2, b"xyz").is_err()); // one byte too many
    /// shm.write_bytes(1, b"xyz")?;
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfBounds`], [`Error::Shrunk`] or [`Error::Closed`].
    pub fn write_bytes(&self, offset: usize, buf: &[u8]) -> Result<()> {
        let to = self.checked_ptr(offset, buf.len())?;
        // SAFETY: as in `read_bytes`: the range lies inside the live, writable (shared,
        // read-write) mapping, and `buf` is this process's own memory.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), to, buf.len()) };
        Ok(())
    }

    /// The start of the mapping, for code that needs the bytes in place (a null pointer
    /// once [`close`](SharedMemory::close)d).
    ///
    /// Dereferencing it is `unsafe` and up to you: stay within [`size`](SharedMemory::size)
    /// bytes, only while `self` lives and is not closed, and remember that other processes
    /// may write the bytes at any moment (no reference to them is ever exclusive) and may
    /// shrink the block (SIGBUS, see the type's notes).
    ///
    /// ```
    /// let shm = proc_shared::SharedMemory::create(8)?;
    /// let p = shm.as_ptr();
    /// // SAFETY: 8 bytes are mapped and nobody else knows the block yet.
    /// unsafe { p.add(7).write(9) };
    /// assert_eq!(shm.read::<u8>(7)?, 9);
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.open
            .as_ref()
            .map_or(std::ptr::null_mut(), |open| open.map.as_mut_ptr())
    }

    /// Unmaps the block and closes its file in this process (as Python's `close()`); the
    /// block itself lives on for the others until it is unlinked. Accesses then return
    /// [`Error::Closed`]. Dropping a `SharedMemory` closes it too.
    ///
    /// ```
    /// let mut shm = proc_shared::SharedMemory::create(8)?;
    /// shm.close();
    /// assert!(matches!(shm.read::<u8>(0), Err(proc_shared::Error::Closed { .. })));
    /// shm.unlink()?; // still possible: unlinking goes by name
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn close(&mut self) {
        self.open = None;
    }

    /// Removes the block's name (as Python's `unlink()`), so that nobody can open it any
    /// more; the memory is freed once every process has closed it. The resource tracker
    /// forgets the block: it will not warn about it.
    ///
    /// ```
    /// use proc_shared::{Error, SharedMemory};
    ///
    /// let shm = SharedMemory::create(8)?;
    /// shm.unlink()?;
    /// shm.write(0, &1u8)?; // this mapping still works
    /// assert!(matches!(shm.unlink(), Err(Error::NotFound { .. })));
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if the name is gone already, or [`Error::Io`].
    pub fn unlink(&self) -> Result<()> {
        nix::sys::mman::shm_unlink(self.name.with_slash().as_c_str()).map_err(|e| match e {
            Errno::ENOENT => Error::NotFound {
                name: self.name().to_string(),
            },
            e => Error::io(format!("shm_unlink of {:?}", self.name()), e),
        })?;
        tracker::unregister(&self.name);
        Ok(())
    }

    /// A pointer to `offset`, once `offset..offset + len` is known to be inside the live
    /// mapping (and, for bulk copies, inside the file).
    fn checked_ptr(&self, offset: usize, len: usize) -> Result<*mut u8> {
        let open = self.open.as_ref().ok_or_else(|| Error::Closed {
            name: self.name().to_string(),
        })?;
        let out_of_bounds = Error::OutOfBounds {
            offset,
            len,
            size: self.size,
        };
        match offset.checked_add(len) {
            Some(end) if end <= self.size => {}
            _ => return Err(out_of_bounds),
        }
        if len >= SIZE_CHECK_FROM {
            let now = file_size(&open.fd, &self.name)?;
            if now < self.size {
                return Err(Error::Shrunk {
                    name: self.name().to_string(),
                    mapped: self.size,
                    now,
                });
            }
        }
        // SAFETY: offset <= size, the mapping's length: the result is inside the mapping
        // or one past its end (for an empty access).
        Ok(unsafe { open.map.as_mut_ptr().add(offset) })
    }
}

/// The size of the file behind `fd`, refusing anything but a regular file.
fn file_size(fd: &OwnedFd, name: &Name) -> Result<usize> {
    regular_file(fd, name).map(|(size, _)| size)
}

/// The size and identity (device, inode) of the regular file behind `fd`.
fn regular_file(fd: &OwnedFd, name: &Name) -> Result<(usize, (u64, u64))> {
    let stat = fstat(fd).map_err(|e| Error::io(format!("fstat of {:?}", name.as_str()), e))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Error::NotAFile {
            name: name.as_str().to_string(),
        });
    }
    // A regular file's size is never negative; 0 is refused by whoever maps it.
    let size = usize::try_from(stat.st_size).unwrap_or(0);
    Ok((size, (stat.st_dev, stat.st_ino)))
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name())
            .field("size", &self.size)
            .field("closed", &self.open.is_none())
            .finish()
    }
}

/// What travels: the block's file, its name and size, and the resource tracker this
/// process reports to (so that the receiver, if it has none, shares it).
impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let open = self.open.as_ref().ok_or_else(|| {
            serde::ser::Error::custom(format!(
                "the shared memory block {:?} was closed and cannot be sent",
                self.name()
            ))
        })?;
        tracker::with_reporting_end(|tracker| {
            serialize_handle(
                serializer,
                KIND,
                &(
                    FdRef::new(open.fd.as_fd()),
                    self.name(),
                    self.size as u64,
                    tracker.map(FdRef::new),
                ),
            )
        })
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (fd, name, size, tracker): (ReceivedFd, String, u64, Option<ReceivedFd>) =
            deserialize_handle(deserializer, KIND)?;
        received(
            fd.into_inner(),
            &name,
            size,
            tracker.map(ReceivedFd::into_inner),
        )
        .map_err(D::Error::custom)
    }
}

/// Checks a received block (a regular file of the announced size, under a valid name, and
/// the very file of that name if the name still exists, so that `unlink` cannot remove
/// another block than the one received) and maps it; shares the sender's tracker when this
/// process has none.
fn received(fd: OwnedFd, name: &str, size: u64, tracker: Option<OwnedFd>) -> Result<SharedMemory> {
    let name = Name::parse(name).map_err(|e| Error::Received {
        reason: e.to_string(),
    })?;
    let (actual, identity) = regular_file(&fd, &name)?;
    if actual as u64 != size {
        return Err(Error::Received {
            reason: format!(
                "{:?} was announced as {size} bytes but its file holds {actual}",
                name.as_str()
            ),
        });
    }
    let path = format!("/dev/shm/{}", name.as_str());
    if let Ok(named) = nix::sys::stat::stat(path.as_str())
        && (named.st_dev, named.st_ino) != identity
    {
        return Err(Error::Received {
            reason: format!(
                "the file sent as {:?} is another file than the block of that name",
                name.as_str()
            ),
        });
    }
    if let Some(tracker) = tracker {
        tracker::adopt(tracker)?;
    }
    SharedMemory::map(name, fd, actual)
}
