//! [`set_executable`]: which file the Spawn and ForkServer start methods run, as Python's
//! `multiprocessing.set_executable`. By default `/proc/self/exe`, the very file this process
//! runs.
//!
//! A spawned child names its functions by their offset in the program's code
//! (`code_address`), so the file must be this program, byte for byte: a copy or a link of
//! it, somewhere else or under another name. That is checked once, when it is set, on a
//! descriptor that is then kept: the children run that descriptor's file
//! (`/proc/self/fd/N`), so renaming, replacing or deleting the path afterwards changes
//! nothing; only writing into the file itself could, and that is the caller's to avoid.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};

/// The file of this process, as the kernel knows it.
const THIS_EXECUTABLE: &str = "/proc/self/exe";

/// The executable chosen by `set_executable`: its path as given, and the file, kept open.
#[derive(Debug)]
struct Chosen {
    path: PathBuf,
    file: OwnedFd,
}

static CHOSEN: Mutex<Option<Chosen>> = Mutex::new(None);

fn chosen() -> MutexGuard<'static, Option<Chosen>> {
    CHOSEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the executable that children started by Spawn, and fork servers started from now
/// on, run; by default the file this process runs (`/proc/self/exe`). Python's
/// `set_executable`.
///
/// `path` must be an executable regular file with the same contents as this program (a
/// copy or a hard link of it): a spawned child finds the function it runs by its place in
/// the program's code. Anything else is an [`Error::BadExecutable`] that says what is
/// wrong, and the executable in force stays as it was. The file is kept open, so moving or
/// deleting `path` later does not affect the children.
///
/// ```
/// use proc_core::{set_executable, Error};
///
/// assert!(matches!(set_executable("/no/such/file"), Err(Error::BadExecutable { .. })));
/// assert!(matches!(set_executable("/dev/null"), Err(Error::BadExecutable { .. })));
///
/// // This program itself, by another name, is accepted.
/// set_executable(std::env::current_exe()?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_executable(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bad = |reason: String| Error::BadExecutable {
        path: path.to_path_buf(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => bad("it does not exist".into()),
        _ => bad(format!("it cannot be looked at: {e}")),
    })?;
    if !metadata.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    if metadata.permissions().mode() & 0o111 == 0
        || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err()
    {
        return Err(bad("it is not executable (no execute permission)".into()));
    }
    let mut file = File::open(path).map_err(|e| bad(format!("it cannot be opened: {e}")))?;
    let mut this = File::open(THIS_EXECUTABLE).map_err(|e| {
        bad(format!(
            "this program's own file cannot be read to compare: {e}"
        ))
    })?;
    let same = same_contents(&mut file, &mut this).map_err(|e| {
        bad(format!(
            "it cannot be read to compare with this program: {e}"
        ))
    })?;
    if !same {
        return Err(bad(
            "it is not this program: spawned children must run a copy or a link of the \
             executable this process runs, since their functions are named by their place in \
             its code"
                .into(),
        ));
    }
    *chosen() = Some(Chosen {
        path: path.to_path_buf(),
        file: file.into(),
    });
    Ok(())
}

/// Whether two files hold the same bytes.
fn same_contents(a: &mut File, b: &mut File) -> io::Result<bool> {
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let mut left = vec![0u8; 1 << 16];
    let mut right = vec![0u8; 1 << 16];
    loop {
        let n = a.read(&mut left)?;
        if n == 0 {
            // Same length, and every byte so far equal: the other is at its end too.
            return Ok(true);
        }
        b.read_exact(&mut right[..n])?;
        if left[..n] != right[..n] {
            return Ok(false);
        }
    }
}

/// What a start method runs to make a new run of this program.
#[derive(Debug)]
pub(crate) struct Program {
    /// The path to give `exec`.
    pub(crate) exec_path: PathBuf,
    /// The path to name in errors: the one the user gave, or `/proc/self/exe`.
    pub(crate) shown: PathBuf,
    /// A descriptor of the chosen file, open until the exec is done.
    _file: Option<OwnedFd>,
}

/// The program to run now: the file given to [`set_executable`] (through a descriptor of
/// it, close-on-exec, which the exec path names), or this process's own file.
pub(crate) fn program() -> Result<Program> {
    let chosen = chosen();
    let Some(Chosen { path, file }) = chosen.as_ref() else {
        return Ok(Program {
            exec_path: PathBuf::from(THIS_EXECUTABLE),
            shown: PathBuf::from(THIS_EXECUTABLE),
            _file: None,
        });
    };
    // A copy of our own: another thread may set another executable meanwhile.
    let file = file
        .try_clone()
        .map_err(|e| Error::io("duplicating the descriptor of the executable", e))?;
    Ok(Program {
        exec_path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
        shown: path.clone(),
        _file: Some(file),
    })
}
