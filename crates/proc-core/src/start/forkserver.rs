//! The ForkServer start method: a single-threaded server process forks the children.
//!
//! The first child started by this method spawns the server: a new run of this executable
//! that is taken over before `main` ([`super::takeover`]) and runs [`serve`], nothing else,
//! on one thread. Since it never starts threads, forking it is always safe, and cheaper than
//! a new exec per child. Each process that uses the method has its own server; a forked
//! child closes its copy of its parent's connection.
//!
//! For each child the requester sends the child's end of its task socket and its own stdout
//! and stderr; the server forks, and the new process reads its task from that socket as a
//! spawned process does ([`super::task::run`]). The child is the server's, not the
//! requester's, so the server reaps it and reports how it ended:
//!
//! ```text
//! requester -> server   frame "fork"; SCM_RIGHTS: task socket, stdout, stderr
//! server -> requester   frame Reply::Forked { pid }; SCM_RIGHTS: a pidfd of the child (opened
//!                       before the child could be reaped, so it can never name another
//!                       process), the read end of the child's status pipe
//!                       or Reply::Failed(reason)
//! server -> status pipe the child's exit code (i32, little-endian, Python's convention) once
//!                       the server has reaped it
//! ```
//!
//! The server ignores SIGINT (a Ctrl-C in the terminal is for the program, not for it; its
//! children get the default action back) and ends when its requester's connection closes,
//! which happens when the requester ends, however it ends.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use serde::{Deserialize, Serialize};

use crate::child::Ending;
use crate::codec;
use crate::error::{Error, Result};
use crate::fd_passing;
use crate::pidfd::Pidfd;

use super::finish::redirect_stdin_to_null;
use super::spawn;
use super::task::{self, Launched};

/// The environment variable that tells a spawned process to become a fork server, and on
/// which descriptor its requester talks to it.
pub(crate) const SERVER_FD_ENV: &str = "MULTIPROC_FORKSERVER_FD";

/// The argument that marks the fork server in `ps`.
const SERVER_ARG: &str = "--multiproc-forkserver";

/// The one request there is.
const REQUEST: &[u8] = b"fork";

/// The largest request or reply: both are a few bytes.
const MESSAGE_LIMIT: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Forked { pid: u32 },
    Failed(String),
}

/// This process's connection to its fork server.
#[derive(Debug)]
pub(crate) struct Client {
    control: OwnedFd,
    server: std::process::Child,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

/// The connection to this process's fork server, if it has one. Held across a fork by the
/// Fork start method, so that the child's copy is never half-way through a request.
pub(crate) fn lock_client() -> MutexGuard<'static, Option<Client>> {
    CLIENT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Asks the fork server (started on first use) for a child that reads its task from a new
/// task socket; returns our end of it and the child. A server that fails, when asked or
/// before it answers, is replaced and asked again once, with a new task socket: one that
/// died after it took the request may have forked a child with the old socket, and our end
/// of that is dropped, so such a child finds its task socket closed and ends at once; two
/// children never read one task.
pub(crate) fn launch() -> Result<(OwnedFd, Launched)> {
    let mut client = lock_client();
    let mut retried = false;
    loop {
        let (ours, theirs) = task::task_socket()?;
        let current = match client.as_mut() {
            Some(current) => current,
            None => client.insert(Client::start()?),
        };
        let failure = match current.ask(theirs.as_fd()) {
            Err(e) => Error::io("asking the fork server for a child", e),
            Ok(()) => match current.answer() {
                Ok(Ok(launched)) => return Ok((ours, launched)),
                Ok(Err(reason)) => {
                    return Err(Error::io(
                        "the fork server's fork",
                        io::Error::other(reason),
                    ));
                }
                Err(e) => Error::io("waiting for the fork server's answer", e),
            },
        };
        if let Some(broken) = client.take() {
            broken.retire();
        }
        if retried {
            return Err(failure);
        }
        retried = true;
    }
}

impl Client {
    fn start() -> Result<Client> {
        let (control, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::io("socketpair for the fork server", e.into()))?;
        let server = spawn::run_self(SERVER_FD_ENV, theirs.as_fd(), SERVER_ARG)?;
        Ok(Client { control, server })
    }

    /// Sends a fork request for a child that reads its task from `task`.
    fn ask(&mut self, task: BorrowedFd<'_>) -> io::Result<()> {
        let stdout = io::stdout();
        let stderr = io::stderr();
        fd_passing::send_frame(
            self.control.as_fd(),
            REQUEST,
            &[task, stdout.as_fd(), stderr.as_fd()],
            MESSAGE_LIMIT,
        )
    }

    /// The server's answer to the request just sent: the new child, or why there is none.
    fn answer(&mut self) -> io::Result<std::result::Result<Launched, String>> {
        let Some((bytes, fds)) = fd_passing::recv_frame(self.control.as_fd(), MESSAGE_LIMIT)?
        else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the fork server closed its connection",
            ));
        };
        let reply = codec::decode::<Reply>(&bytes, MESSAGE_LIMIT)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        match reply {
            Reply::Failed(reason) => Ok(Err(reason)),
            Reply::Forked { pid } => {
                let count = fds.len();
                let [pidfd, status]: [OwnedFd; 2] = fds.try_into().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the fork server's reply carried {count} descriptors, not 2"),
                    )
                })?;
                Ok(Ok(Launched {
                    pid,
                    pidfd: Pidfd::from_owned(pidfd),
                    ending: Ending::Served(status),
                }))
            }
        }
    }

    /// Ends a server that stopped answering, and reaps it.
    fn retire(mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A child of the server, until it is reaped.
struct Served {
    pidfd: Pidfd,
    /// The write end of the status pipe; the requester holds the read end.
    status: OwnedFd,
}

/// The fork server: forks a child for each request on `control`, reaps the children and
/// reports their ends, until `control` closes. Never returns.
pub(crate) fn serve(control: OwnedFd) -> ! {
    // SAFETY: setting dispositions to SIG_IGN involves no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    // SIGINT is also blocked, so that a child inherits it blocked: one sent to the child
    // before it restored the default action then waits, pending, instead of being
    // discarded as ignored (an interrupt() right after start() would be lost).
    set_sigint_blocked(true);
    redirect_stdin_to_null();
    let mut children: Vec<Served> = Vec::new();
    loop {
        let ready = {
            let mut fds = Vec::with_capacity(1 + children.len());
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
            fds.extend(
                children
                    .iter()
                    .map(|c| PollFd::new(c.pidfd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("multiproc: the fork server cannot wait for requests: {e}");
                    break;
                }
            }
            fds.iter()
                .map(|fd| fd.any().unwrap_or(true))
                .collect::<Vec<bool>>()
        };

        // Report the children that ended.
        let mut index = 0;
        children.retain(|child| {
            index += 1;
            if !ready[index] {
                return true;
            }
            match child.pidfd.try_reap() {
                Ok(Some(code)) => {
                    // The requester may be gone; then nobody is listening.
                    let _ = nix::unistd::write(&child.status, &code.to_le_bytes());
                    false
                }
                Ok(None) => true,
                // Not ours to wait for any more (nothing else reaps here): forget it.
                Err(_) => false,
            }
        });

        if !ready[0] {
            continue;
        }
        let (bytes, fds) = match fd_passing::recv_frame(control.as_fd(), MESSAGE_LIMIT) {
            Ok(Some(request)) => request,
            // The requester is gone.
            Ok(None) | Err(_) => break,
        };
        let request = if bytes != REQUEST {
            Err("the request is not one the fork server knows".to_string())
        } else {
            <[OwnedFd; 3]>::try_from(fds).map_err(|fds| {
                format!(
                    "a fork request carries 3 descriptors (task, stdout, stderr), not {}",
                    fds.len()
                )
            })
        };
        let (reply, fds) = match request {
            Err(reason) => (Reply::Failed(reason), Vec::new()),
            // SAFETY: the fork server runs one thread (it was started by exec and runs only
            // this loop), so the child may go on to run any code.
            Ok([task, stdout, stderr]) => match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    drop(control);
                    drop(children);
                    // SAFETY: restoring the default action of SIGINT involves no handler.
                    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
                    // A SIGINT that came meanwhile is delivered now, with that action.
                    set_sigint_blocked(false);
                    let _ = nix::unistd::dup2_stdout(&stdout);
                    let _ = nix::unistd::dup2_stderr(&stderr);
                    drop(stdout);
                    drop(stderr);
                    task::run(task)
                }
                Ok(ForkResult::Parent { child }) => match track(child) {
                    Ok((served, fds)) => {
                        children.push(served);
                        (
                            Reply::Forked {
                                pid: child.as_raw() as u32,
                            },
                            fds,
                        )
                    }
                    Err(e) => {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = nix::sys::wait::waitpid(child, None);
                        (
                            Reply::Failed(format!("the fork server lost its child: {e}")),
                            Vec::new(),
                        )
                    }
                },
                Err(e) => (Reply::Failed(format!("fork failed: {e}")), Vec::new()),
            },
        };
        let sent = codec::encode(&reply)
            .map_err(io::Error::other)
            .and_then(|bytes| {
                let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
                fd_passing::send_frame(control.as_fd(), &bytes, &fds, MESSAGE_LIMIT)
            });
        if sent.is_err() {
            break;
        }
    }
    // SAFETY: ends the server at once; it has nothing to flush or run at exit.
    unsafe { libc::_exit(0) }
}

/// Blocks or unblocks SIGINT for the calling thread (the server's only one).
fn set_sigint_blocked(blocked: bool) {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let how = if blocked {
        SigmaskHow::SIG_BLOCK
    } else {
        SigmaskHow::SIG_UNBLOCK
    };
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    // It cannot fail with a valid `how` and set; were it to, SIGINT stays as it was.
    let _ = pthread_sigmask(how, Some(&set), None);
}

/// Opens what the server keeps of a new child (a pidfd, the status pipe's write end) and
/// what the requester gets (a pidfd, the status pipe's read end).
fn track(child: Pid) -> io::Result<(Served, Vec<OwnedFd>)> {
    // The child is ours and not yet reaped, so its pid cannot have been reused.
    let pidfd = Pidfd::open(child.as_raw())?;
    let theirs = pidfd.try_clone()?;
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    Ok((
        Served {
            pidfd,
            status: write,
        },
        vec![theirs, read],
    ))
}
