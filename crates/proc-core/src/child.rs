//! What a parent knows about one child it started: its pidfd and, once reaped, how it
//! ended. Shared between the user's handle and the registry of this process's children, so
//! that a dropped handle's child is still reaped later instead of left as a zombie.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::info::ProcessInfo;
use crate::pidfd::{ExitCode, Pidfd};

#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pidfd: Pidfd,
    /// `Some` once reaped. Held while signalling, so a signal never races the reap.
    exit: Mutex<Option<ExitCode>>,
}

impl Child {
    pub(crate) fn new(pid: u32, name: String, daemon: bool, pidfd: Pidfd) -> Self {
        Child {
            pid,
            name,
            daemon,
            pidfd,
            exit: Mutex::new(None),
        }
    }

    /// The exit code if the child has ended, reaping it on the way. Never blocks.
    pub(crate) fn poll(&self) -> io::Result<Option<ExitCode>> {
        let mut exit = self.lock_exit();
        if exit.is_none() {
            *exit = self.pidfd.try_reap()?;
        }
        Ok(*exit)
    }

    /// Waits until the child ends or `deadline` passes; `Ok(None)` on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<Option<ExitCode>> {
        loop {
            if let Some(code) = self.poll()? {
                return Ok(Some(code));
            }
            // The pidfd turns readable when the child exits; the lock is not held while
            // blocking, so other threads may poll or signal meanwhile.
            if !self.pidfd.wait_ended(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Sends `signal` unless the child was already reaped (then there is nothing to hit).
    pub(crate) fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        let exit = self.lock_exit();
        if exit.is_some() {
            return Ok(());
        }
        self.pidfd.send_signal(signal)
    }

    fn lock_exit(&self) -> MutexGuard<'_, Option<ExitCode>> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        ProcessInfo::new(self.name.clone(), self.pid, std::process::id(), self.daemon)
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}
