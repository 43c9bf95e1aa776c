//! The lifeline that kills a daemon child when its parent dies, however it dies.
//!
//! The parent holds the write end of a pipe and never writes to it; each daemon child holds
//! the read end in a thread that waits for it to hang up, which happens when the last copy
//! of the write end closes: when the parent process is gone, SIGKILL included. This is used
//! instead of `PR_SET_PDEATHSIG`, which fires when the parent *thread* that forked exits,
//! and would kill a daemon started from a short-lived thread while its parent lives on.
//!
//! Every child closes its inherited copy of the write end first thing, so that a sibling
//! cannot keep a dead parent's lifeline alive.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::wait_readable::wait_readable;

#[derive(Debug)]
pub(crate) struct Lifeline {
    pub(crate) read: OwnedFd,
    pub(crate) write: OwnedFd,
}

impl Lifeline {
    pub(crate) fn new() -> io::Result<Self> {
        // Close-on-exec: a program exec'd by the parent must not hold the parent alive.
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        Ok(Lifeline { read, write })
    }
}

/// In a daemon child: kills this process with SIGKILL once `read` hangs up.
pub(crate) fn watch(read: OwnedFd) {
    let spawned = std::thread::Builder::new()
        .name("multiproc-lifeline".into())
        .spawn(move || {
            // Nobody writes to the pipe, so readiness means the parent is gone; an error of
            // poll also ends the watch, on the safe side.
            let _ = wait_readable(read.as_fd(), None);
            // SAFETY: kill of our own pid with SIGKILL; no memory is involved.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        });
    if spawned.is_err() {
        // No thread to watch with: fall back to the kernel's parent-death signal, which is
        // right as long as the forking thread lives as long as the parent.
        // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number; no memory is involved.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
}
