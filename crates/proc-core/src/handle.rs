//! [`spawn`] and [`JoinHandle`]: `std::thread::spawn` across a process boundary. The child
//! returns its value through a pipe, as one length-prefixed codec frame.

use std::fs::File;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::error::{Error, JoinError, Result};
use crate::process::Process;

/// The largest value a child may return: 1 GiB. The frame's length prefix comes from
/// another process, so it is checked before anything is allocated for it.
pub const RESULT_LIMIT: usize = 1 << 30;

/// Bytes of the frame header: the payload length, little-endian.
const HEADER: usize = 8;

/// What the child sends back.
#[derive(Serialize, Deserialize)]
enum Outcome<T> {
    Returned(T),
    Panicked(String),
    Unencodable(String),
}

/// Runs `body` in a new child process and returns a handle whose [`join`](JoinHandle::join)
/// gives back the closure's value, as `std::thread::spawn` does for a thread. The value
/// crosses the process boundary through the codec, so `T` is any
/// `Serialize + DeserializeOwned` type.
///
/// ```
/// let h = proc_core::spawn(|| (1..=10u64).product::<u64>())?;
/// assert_eq!(h.join().unwrap(), 3_628_800);
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn spawn<F, T>(body: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Serialize + DeserializeOwned,
{
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe2", e.into()))?;
    let mut process = Process::new(move || {
        let caught = catch_unwind(AssertUnwindSafe(body));
        let (outcome, panic) = match caught {
            Ok(value) => (Outcome::Returned(value), None),
            Err(payload) => (
                Outcome::Panicked(panic_message(payload.as_ref())),
                Some(payload),
            ),
        };
        let payload = codec::encode(&outcome)
            .or_else(|e| codec::encode(&Outcome::<T>::Unencodable(e.to_string())))
            .unwrap_or_default();
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        frame.extend_from_slice(&payload);
        // The parent may have dropped its handle; then nobody wants the value.
        let _ = File::from(write).write_all(&frame);
        if let Some(payload) = panic {
            // Ends the child with exit code 1, as any panic; the hook already printed it.
            resume_unwind(payload);
        }
    });
    process.start()?;
    Ok(JoinHandle {
        process,
        result: read,
        _value: PhantomData,
    })
}

/// The message of a panic payload (what `panic!` was given, when it was a string), as
/// [`JoinError::Panicked`] reports it; the other layers report their children's and tasks'
/// panics the same way.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("gave up after {} tries", 3)).unwrap_err();
/// assert_eq!(proc_core::panic_message(&*payload), "gave up after 3 tries");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// An owned permission to join a child started by [`spawn`] and get its value.
///
/// Dropping the handle detaches the child: it runs on, and is reaped later (never left a
/// zombie); its value is discarded.
#[must_use = "dropping the handle detaches the child and discards its value"]
pub struct JoinHandle<T> {
    process: Process,
    result: OwnedFd,
    _value: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JoinHandle<T> {
    /// Waits for the child and returns its value, or how it failed to produce one.
    ///
    /// ```
    /// use proc_core::{exit, spawn, JoinError};
    ///
    /// let h = spawn(|| -> String { exit(7) })?;
    /// assert!(matches!(h.join(), Err(JoinError::Exited(7))));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        let frame = read_frame(self.result, &self.process)?;
        let code = self.process.join().map_err(|e| match e {
            Error::Io { source, .. } => JoinError::Io(source),
            other => JoinError::Io(io::Error::other(other.to_string())),
        })?;
        match frame {
            Some(bytes) => match codec::decode::<Outcome<T>>(&bytes, RESULT_LIMIT)? {
                Outcome::Returned(value) => Ok(value),
                Outcome::Panicked(message) => Err(JoinError::Panicked { message }),
                Outcome::Unencodable(message) => Err(JoinError::Codec(CodecError::Encode(message))),
            },
            None if code < 0 => Err(JoinError::Signaled(-code)),
            None => Err(JoinError::Exited(code)),
        }
    }
}

impl<T> JoinHandle<T> {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid().unwrap_or_default()
    }

    /// Whether the child is still running.
    pub fn is_alive(&self) -> bool {
        self.process.is_alive()
    }

    /// Sends SIGTERM; `join` then reports `Signaled(15)`.
    ///
    /// ```
    /// let h = proc_core::spawn(|| std::thread::sleep(std::time::Duration::from_secs(10)))?;
    /// h.terminate()?;
    /// assert!(matches!(h.join(), Err(proc_core::JoinError::Signaled(15))));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.process.terminate()
    }

    /// Sends SIGKILL; `join` then reports `Signaled(9)`.
    pub fn kill(&self) -> Result<()> {
        self.process.kill()
    }

    /// The underlying process (name, exit code, sentinel, …).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("process", &self.process)
            .finish()
    }
}

/// Reads the child's frame. The write end may also be held by a sibling forked at the same
/// moment by another thread, so the end of the child is seen on its pidfd, not as EOF.
/// `Ok(None)`: the child ended without sending a whole frame.
fn read_frame(pipe: OwnedFd, process: &Process) -> io::Result<Option<Vec<u8>>> {
    fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let sentinel = process
        .sentinel()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut pipe = File::from(pipe);
    let mut buf = Vec::new();
    let mut child_ended = false;
    loop {
        let eof = drain(&mut pipe, &mut buf)?;
        if buf.len() >= HEADER {
            let mut len = [0u8; HEADER];
            len.copy_from_slice(&buf[..HEADER]);
            let len = u64::from_le_bytes(len);
            let len = usize::try_from(len).ok().filter(|&l| l <= RESULT_LIMIT).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("child announced a value of {len} bytes, over the limit of {RESULT_LIMIT}"))
            })?;
            if buf.len() >= HEADER + len {
                buf.truncate(HEADER + len);
                buf.drain(..HEADER);
                return Ok(Some(buf));
            }
            buf.reserve((HEADER + len).saturating_sub(buf.len()));
        }
        // Everything an ended child wrote is already in the pipe: one last drain was done.
        if eof || child_ended {
            return Ok(None);
        }
        let mut fds = [
            PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
            PollFd::new(sentinel, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => child_ended = fds[1].any().unwrap_or(false),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads what the pipe holds now; returns whether it reached end of file.
fn drain(pipe: &mut File, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
