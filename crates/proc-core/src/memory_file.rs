//! Memory files (`memfd`), made here and received from other processes: the one place that
//! makes them sealable, seals them, and looks at a received one before anything trusts it.
//!
//! A received descriptor may be anything its sender chose: a pipe, a socket, a file on disk,
//! a memory file that can still shrink under a mapping (a SIGBUS at the next access past
//! its new end) or change while it is read. [`inspect`] says what it is, reading its seals
//! before its size, so that a size it reports under a seal against resizing can no longer
//! change. Each user then asks what it needs of it: the seals, the size.
//!
//! ```
//! use std::io::Write;
//! use proc_core::internal::memory_file::{self, FIXED_CONTENTS};
//!
//! let mut file = memory_file::create(c"example")?;
//! file.write_all(b"hello")?;
//! memory_file::seal(&file, FIXED_CONTENTS)?;
//! let seen = memory_file::inspect(&file)?;
//! assert_eq!(seen.size, 5);
//! assert!(seen.seals.contains(FIXED_CONTENTS));
//!
//! let (pipe, _) = std::io::pipe()?;
//! assert_eq!(
//!     memory_file::inspect(&pipe).unwrap_err().to_string(),
//!     "the descriptor is a pipe, not a memory file"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// The seals that fix a file's size: a mapping of it is backed to its end for good.
pub const FIXED_SIZE: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW);

/// The seals that fix a file's size and its bytes: a message that can be mapped and read
/// while its sender lives on.
pub const FIXED_CONTENTS: SealFlag = FIXED_SIZE.union(SealFlag::F_SEAL_WRITE);

/// A new, empty memory file that can be sealed, close-on-exec. `name` is only a label in
/// `/proc/<pid>/fd` and `/proc/<pid>/maps`: nobody can open it by name.
/// A kernel without them gives an `Unsupported` error that names what it lacks.
pub fn create(name: &CStr) -> io::Result<File> {
    crate::kernel::require(crate::kernel::KernelFeature::SealedMemoryFiles).map_err(|feature| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            crate::Error::KernelFeatureMissing { feature }.to_string(),
        )
    })?;
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    Ok(File::from(fd))
}

/// Adds `seals` to `file`, and the seal against any further seal (nobody can take them
/// back or add a write seal over a live writable mapping later).
pub fn seal(file: &impl AsFd, seals: SealFlag) -> io::Result<()> {
    fcntl(file, FcntlArg::F_ADD_SEALS(seals | SealFlag::F_SEAL_SEAL))?;
    Ok(())
}

/// What a received descriptor turned out to be: a memory file with these seals and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspected {
    /// Its seals, read first.
    pub seals: SealFlag,
    /// Its size, read after its seals.
    pub size: u64,
}

/// Why a received descriptor is not a memory file at all.
#[derive(Debug, thiserror::Error)]
pub enum NotAMemoryFile {
    /// It is no regular file: a pipe, a socket, a device, a directory.
    #[error("the descriptor is {0}, not a memory file")]
    Kind(&'static str),
    /// A regular file that cannot carry seals: a file on disk, say.
    #[error("the descriptor is a file but not a sealable memory file ({0})")]
    NotSealable(nix::errno::Errno),
    /// It could not be looked at.
    #[error("the descriptor could not be looked at: fstat failed ({0})")]
    Unreadable(nix::errno::Errno),
}

/// Looks at a received descriptor: whether it is a memory file, and its seals and size.
pub fn inspect(fd: &impl AsFd) -> Result<Inspected, NotAMemoryFile> {
    let kind = nix::sys::stat::fstat(fd.as_fd()).map_err(NotAMemoryFile::Unreadable)?;
    if kind.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(NotAMemoryFile::Kind(file_type(kind.st_mode)));
    }
    // Seals first: under a seal against resizing, the size read next is the size for good.
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(NotAMemoryFile::NotSealable)?;
    let stat = nix::sys::stat::fstat(fd.as_fd()).map_err(NotAMemoryFile::Unreadable)?;
    Ok(Inspected {
        seals: SealFlag::from_bits_truncate(seals),
        // A regular file's size is never negative.
        size: u64::try_from(stat.st_size).unwrap_or(0),
    })
}

/// What a file of mode `mode` is, for an error message.
fn file_type(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a pipe",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        _ => "a file of an unknown type",
    }
}
