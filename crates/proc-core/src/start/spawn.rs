//! The Spawn start method: the child is a new run of this very executable.
//!
//! The parent runs `/proc/self/exe` (the file this process was started from, even if it
//! has since been replaced on disk), or the copy of it given to
//! [`set_executable`](crate::set_executable), with `MULTIPROC_TASK_FD` naming the child's end of a
//! private socket, which is the only descriptor it inherits besides stdio (stdin is
//! `/dev/null`). Before `main` runs, the child is taken over ([`super::takeover`]): it reads
//! its task from that socket and runs it ([`super::task::run`]). Nothing of the parent's
//! memory, threads or locks comes along, so this is safe from a multi-threaded parent.
//!
//! The exec goes through `std::process::Command`, which forks (or vforks) and execs with
//! only async-signal-safe calls in between; the one thing added in between here is clearing
//! close-on-exec on the task socket, an `fcntl`.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::child::Ending;
use crate::error::{Error, Result};
use crate::executable;
use crate::pidfd::Pidfd;

use super::task::{self, Launched};

/// The environment variable that tells a spawned process which descriptor its task
/// arrives on.
pub(crate) const TASK_FD_ENV: &str = "MULTIPROC_TASK_FD";

/// An argument that marks a spawned process in `ps`. Should multiproc ever fail to take the
/// process over, the program sees an argument it does not know rather than running its
/// `main` as if it were the parent.
const SPAWNED_ARG: &str = "--multiproc-spawned";

/// Starts a new run of this executable that reads its task from `task`.
pub(crate) fn launch() -> Result<(OwnedFd, Launched)> {
    let (ours, theirs) = task::task_socket()?;
    let mut child = run_self(TASK_FD_ENV, theirs.as_fd(), SPAWNED_ARG)?;
    drop(theirs);
    let pid = child.id();
    let pidfd = match Pidfd::open(pid as libc::pid_t) {
        Ok(pidfd) => pidfd,
        Err(e) => {
            // Without a pidfd the child cannot be managed safely: end it now.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::io("pidfd_open of the spawned child", e));
        }
    };
    // std's handle neither waits for nor kills the child when dropped; the pidfd manages it
    // from here on.
    drop(child);
    let launched = Launched {
        pid,
        pidfd,
        ending: Ending::Own,
    };
    Ok((ours, launched))
}

/// Runs this program again (`/proc/self/exe`, or the file given to
/// [`set_executable`](crate::set_executable)) with `marker` as its only argument, stdin on
/// `/dev/null`, and `env` naming `fd`, which the new process inherits (and nothing else of
/// ours: every descriptor multiproc and std open is close-on-exec). When it cannot be run,
/// nothing is left of the attempt (std reaps the process that failed to exec).
pub(crate) fn run_self(env: &str, fd: BorrowedFd<'_>, marker: &str) -> Result<std::process::Child> {
    let raw = fd.as_raw_fd();
    let program = executable::program()?;
    let mut command = Command::new(&program.exec_path);
    command
        .arg0(program_name())
        .arg(marker)
        .env(env, raw.to_string())
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes one `fcntl` call on a descriptor that
    // the child inherited, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map_err(|source| Error::Exec {
        path: program.shown.clone(),
        source,
    })
}

/// This program's `argv[0]`, so that a spawned child shows under the same name.
fn program_name() -> OsString {
    std::env::args_os()
        .next()
        .unwrap_or_else(|| OsString::from("multiproc-child"))
}
