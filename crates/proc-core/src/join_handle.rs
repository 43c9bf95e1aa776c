//! [`spawn`] and [`JoinHandle`]: `std::thread::spawn` across a process boundary. The child
//! hands its value to the kernel (see `value_handover.rs`: inline in a socket record, or in a
//! sealed memory file) and exits without waiting for its parent; `join`
//! takes the value once the child has ended.

use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::error::{Error, JoinError, Result, panic_message};
use crate::process::Process;
use crate::start_method::StartMethod;
use crate::value_handover;

/// The largest value a child may return: 1 GiB. A child whose value encodes longer ends
/// with [`JoinError::Codec`]; the parent checks the length another process announces before
/// it allocates or maps anything for it.
pub const RESULT_LIMIT: usize = 1 << 30;

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
/// `Serialize + DeserializeOwned` type, up to [`RESULT_LIMIT`] encoded.
///
/// The child does not wait for `join`: it hands its value over and exits, so `is_alive()`
/// turns false when the closure is done, whatever the size of the value. A panic in the
/// closure, or in the value's `Serialize` impl, makes `join` a [`JoinError::Panicked`].
///
/// ```
/// let h = proc_core::spawn(|| (1..=10u64).product::<u64>())?;
/// assert_eq!(h.join().unwrap(), 3_628_800);
///
/// // A large value does not keep the child waiting for its parent.
/// let h = proc_core::spawn(|| vec![7u8; 1 << 20])?;
/// while h.is_alive() {
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// }
/// assert_eq!(h.join().unwrap().len(), 1 << 20);
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn spawn<F, T>(body: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Serialize + DeserializeOwned,
{
    spawn_with(None, body)
}

/// [`spawn`] with the start method `method`, or the default in force when `None`.
pub(crate) fn spawn_with<F, T>(method: Option<StartMethod>, body: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Serialize + DeserializeOwned,
{
    let (ours, theirs) =
        value_handover::channel().map_err(|e| Error::io("socketpair for the child's value", e))?;
    let mut process = Process::new(move || {
        let caught = catch_unwind(AssertUnwindSafe(body));
        let (outcome, mut panic) = match caught {
            Ok(value) => (Outcome::Returned(value), None),
            Err(payload) => (
                Outcome::Panicked(panic_message(payload.as_ref())),
                Some(payload),
            ),
        };
        let socket = theirs.as_fd();
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| send(socket, &outcome))) {
            // The value's Serialize panicked (the hook printed it): for the parent, a panic
            // of the child like one in the body, with its message. Nothing was sent yet.
            send(
                socket,
                &Outcome::<T>::Panicked(panic_message(payload.as_ref())),
            );
            panic = panic.or(Some(payload));
        }
        // Dropped here, not while unwinding below, where a panicking Drop would abort.
        drop(outcome);
        if let Some(payload) = panic {
            // Ends the child with exit code 1, as any panic; the hook already printed it.
            resume_unwind(payload);
        }
    });
    if let Some(method) = method {
        process = process.with_start_method(method);
    }
    process.start()?;
    Ok(JoinHandle {
        process,
        result: ours,
        _value: PhantomData,
    })
}

/// Hands `outcome` over to the parent; one that cannot be (it does not encode, is over the
/// limit, or no memory file could be made for it) is replaced by the reason. When even that
/// cannot be sent, the parent is gone or its socket is broken: nobody wants the value.
fn send<T: Serialize>(socket: BorrowedFd<'_>, outcome: &Outcome<T>) {
    if let Err(e) = value_handover::hand_over(socket, outcome, RESULT_LIMIT) {
        let reason = Outcome::<T>::Unencodable(e.to_string());
        let _ = value_handover::hand_over(socket, &reason, RESULT_LIMIT);
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
        // The child never waits for us: its value, if it sent one, is complete once it has
        // ended.
        let code = self.process.join().map_err(|e| match e {
            Error::Io { source, .. } => JoinError::Io(source),
            other => JoinError::Io(std::io::Error::other(other.to_string())),
        })?;
        let value = value_handover::take(self.result.as_fd(), RESULT_LIMIT)?;
        match value {
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
