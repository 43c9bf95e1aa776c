//! What a parent knows about one child it started: its pidfd and, once reaped, how it
//! ended. Shared between the user's handle and the registry of this process's children, so
//! that a dropped handle's child is still reaped later instead of left as a zombie.
//!
//! A forked or spawned child is this process's own: it is reaped through its pidfd. A child
//! of the fork server is the server's: the server reaps it and writes its exit code into a
//! status pipe whose read end this process holds, and the pidfd (opened by the server while
//! the child could not yet have been reaped) serves only to signal it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};

use crate::pidfd::{ExitCode, Pidfd};
use crate::process_info::ProcessInfo;
use crate::wait_readable::wait_readable;

/// How the end of a child is learned.
#[derive(Debug)]
pub(crate) enum Ending {
    /// Our own child: `waitid` on its pidfd.
    Own,
    /// A child of the fork server: its exit code arrives as 4 bytes (little-endian `i32`,
    /// Python's convention) on this pipe.
    Served(OwnedFd),
}

/// What a spawned or served child said about its task (see `start::task`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskReport {
    /// The child decoded its task and ran it (or a forked child, which has no task).
    Ran,
    /// The child could not run its task, and said why.
    Rejected(String),
    /// The child ended normally without ever taking its task.
    NotTaken,
}

#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pidfd: Pidfd,
    ending: Ending,
    /// The parent's end of the socket a spawned or served child took its task from; read
    /// once the child has ended, then closed, keeping what it said.
    task: Mutex<TaskChannel>,
    /// `Some` once reaped. Held while signalling, so a signal never races the reap.
    exit: Mutex<Option<ExitCode>>,
}

impl Child {
    pub(crate) fn new(
        pid: u32,
        name: String,
        daemon: bool,
        pidfd: Pidfd,
        ending: Ending,
        task: Option<OwnedFd>,
    ) -> Self {
        Child {
            pid,
            name,
            daemon,
            pidfd,
            ending,
            task: Mutex::new(match task {
                Some(socket) => TaskChannel::Open(socket),
                None => TaskChannel::Answered(TaskReport::Ran),
            }),
            exit: Mutex::new(None),
        }
    }

    /// The exit code if the child has ended, reaping it on the way. Never blocks.
    pub(crate) fn poll(&self) -> io::Result<Option<ExitCode>> {
        let mut exit = lock(&self.exit);
        if exit.is_none() {
            *exit = match &self.ending {
                Ending::Own => self.pidfd.try_reap()?,
                Ending::Served(status) => read_status(status.as_fd())?,
            };
        }
        Ok(*exit)
    }

    /// Waits until the child ends or `deadline` passes; `Ok(None)` on timeout.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<Option<ExitCode>> {
        loop {
            if let Some(code) = self.poll()? {
                return Ok(Some(code));
            }
            // The lock is not held while blocking, so other threads may poll or signal
            // meanwhile.
            if !wait_readable(self.as_fd(), deadline)? {
                return Ok(None);
            }
        }
    }

    /// Sends `signal` unless the child was already reaped (then there is nothing to hit).
    pub(crate) fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        let exit = lock(&self.exit);
        if exit.is_some() {
            return Ok(());
        }
        self.pidfd.send_signal(signal)
    }

    /// What the child said about its task: read from its task socket once it has ended
    /// (everything it wrote is in the socket by then), after which the socket is closed.
    /// A forked child has no task socket and always [`TaskReport::Ran`].
    pub(crate) fn task_report(&self) -> TaskReport {
        let mut task = lock(&self.task);
        if let TaskChannel::Open(socket) = &*task {
            let report = read_report(socket.as_fd());
            *task = TaskChannel::Answered(report);
        }
        match &*task {
            TaskChannel::Answered(report) => report.clone(),
            TaskChannel::Open(_) => TaskReport::NotTaken,
        }
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        ProcessInfo::new(self.name.clone(), self.pid, std::process::id(), self.daemon)
    }
}

/// The task socket of a child, until what the child said on it has been read.
#[derive(Debug)]
enum TaskChannel {
    Open(OwnedFd),
    Answered(TaskReport),
}

/// Reads what an ended child wrote on its task socket: everything it wrote is there.
fn read_report(socket: BorrowedFd<'_>) -> TaskReport {
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match recv(socket.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => break,
            Ok(n) => {
                said.extend_from_slice(&buf[..n]);
                // A reason is a line of text; more than this is not worth keeping.
                if said.len() > 64 << 10 {
                    break;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    match said.split_first() {
        Some((b'+', _)) => TaskReport::Ran,
        Some((b'-', reason)) => TaskReport::Rejected(String::from_utf8_lossy(reason).into()),
        Some(_) => TaskReport::Rejected(format!(
            "the child answered its task with {} bytes that mean nothing",
            said.len()
        )),
        None => TaskReport::NotTaken,
    }
}

/// The fd that turns readable when the child has ended: the pidfd of our own child, the
/// status pipe of a served one (written once the server has reaped it).
impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.ending {
            Ending::Own => self.pidfd.as_fd(),
            Ending::Served(status) => status.as_fd(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a served child's exit code if the server has written it. The server writes the 4
/// bytes with one `write` into an empty pipe, so they arrive together. End of file without
/// them means the server died before reporting: an error, since the code is lost.
fn read_status(status: BorrowedFd<'_>) -> io::Result<Option<ExitCode>> {
    if !wait_readable(status, Some(Instant::now()))? {
        return Ok(None);
    }
    let mut code = [0u8; 4];
    loop {
        return match nix::unistd::read(status, &mut code) {
            Ok(4) => Ok(Some(i32::from_le_bytes(code))),
            Ok(0) => Err(io::Error::other(
                "the fork server ended before it reported how the child ended",
            )),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the fork server reported a child's end in {n} bytes instead of 4"),
            )),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
}
