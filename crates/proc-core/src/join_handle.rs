//! [`spawn`], [`spawn_target`] and [`JoinHandle`]: `std::thread::spawn` across a process
//! boundary. The child hands its value to the kernel (see `outcome.rs` and
//! `value_handover.rs`: inline in a socket record, or in a sealed memory file) and exits
//! without waiting for its parent; `join` takes the value once the child has ended.

use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, JoinError, Result};
use crate::handle_wire::Descriptor;
use crate::outcome;
pub use crate::outcome::RESULT_LIMIT;
use crate::process::Process;
use crate::start::spec::Body;
use crate::start::target_call::ReturningCall;
use crate::start_method::StartMethod;
use crate::target::Target;
use crate::value_handover;

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
    let mut process = Process::new(move || outcome::deliver(theirs.as_fd(), body));
    if let Some(method) = method {
        process = process.with_start_method(method);
    }
    JoinHandle::start(process, ours)
}

/// Runs `function` with `args` (a tuple, as for [`Process::target`]; `()` for none) in a
/// new child process and returns a handle whose [`join`](JoinHandle::join) gives back what
/// the function returned. Unlike [`spawn`], this works under every start method: under
/// Spawn and ForkServer `function` must be a function item (or a closure that captures
/// nothing), and the arguments travel encoded, handles among them as their descriptors.
///
/// ```
/// use proc_core::{spawn_target, StartMethod};
///
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// let h = spawn_target(add, (40, 2))?;
/// assert_eq!(h.join().unwrap(), 42);
///
/// // A panic comes back with its message and where it happened.
/// fn refuse() -> u8 {
///     panic!("not today")
/// }
/// let h = proc_core::get_context(StartMethod::Spawn)?.spawn_target(refuse, ())?;
/// match h.join() {
///     Err(proc_core::JoinError::Panicked { message, location, .. }) => {
///         assert_eq!(message, "not today");
///         assert!(location.is_some_and(|at| at.contains(".rs:")));
///     }
///     other => panic!("expected a panic, got {other:?}"),
/// }
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn spawn_target<F, Args>(function: F, args: Args) -> Result<JoinHandle<F::Output>>
where
    F: Target<Args>,
    F::Output: Serialize + DeserializeOwned,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    spawn_target_with(None, function, args)
}

/// [`spawn_target`] with the start method `method`, or the default in force when `None`.
pub(crate) fn spawn_target_with<F, Args>(
    method: Option<StartMethod>,
    function: F,
    args: Args,
) -> Result<JoinHandle<F::Output>>
where
    F: Target<Args>,
    F::Output: Serialize + DeserializeOwned,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    let (ours, theirs) =
        value_handover::channel().map_err(|e| Error::io("socketpair for the child's value", e))?;
    let call = ReturningCall {
        function,
        args,
        socket: Descriptor::from(theirs),
    };
    let mut process = Process::with_body(Body::Target(Box::new(call)));
    if let Some(method) = method {
        process = process.with_start_method(method);
    }
    JoinHandle::start(process, ours)
}

/// An owned permission to join a child started by [`spawn`] or [`spawn_target`] and get
/// its value.
///
/// Dropping the handle detaches the child: it runs on, and is reaped later (never left a
/// zombie); its value is discarded.
#[must_use = "dropping the handle detaches the child and discards its value"]
pub struct JoinHandle<T> {
    process: Process,
    result: OwnedFd,
    /// The value (or how the child failed to give one) was returned already.
    taken: bool,
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
    pub fn join(mut self) -> Result<T, JoinError> {
        let code = self.process.join().map_err(join_error)?;
        self.take(code)
    }

    /// Waits at most `timeout` for the child: `Ok(Some(value))` once it has ended (or how
    /// it failed to give one), `Ok(None)` while it still runs. Once the value was taken,
    /// joining again is a [`JoinError::AlreadyJoined`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use proc_core::{spawn, JoinError};
    ///
    /// let mut h = spawn(|| {
    ///     std::thread::sleep(Duration::from_millis(300));
    ///     "done".to_string()
    /// })?;
    /// assert_eq!(h.join_timeout(Duration::from_millis(1)).unwrap(), None);
    /// assert_eq!(h.join_timeout(Duration::from_secs(60)).unwrap(), Some("done".to_string()));
    /// assert!(matches!(h.join_timeout(Duration::ZERO), Err(JoinError::AlreadyJoined)));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<T>, JoinError> {
        if self.taken {
            return Err(JoinError::AlreadyJoined);
        }
        match self.process.join_timeout(timeout).map_err(join_error)? {
            Some(code) => self.take(code).map(Some),
            None => Ok(None),
        }
    }

    /// The child's value, once it has ended with `code`: the child never waits for us, so
    /// what it sent, if anything, is all there.
    fn take(&mut self, code: i32) -> Result<T, JoinError> {
        if self.taken {
            return Err(JoinError::AlreadyJoined);
        }
        self.taken = true;
        outcome::receive(self.result.as_fd(), code)
    }
}

/// How waiting for the child failed, as a [`JoinError`].
fn join_error(e: Error) -> JoinError {
    match e {
        Error::Io { source, .. } => JoinError::Io(source),
        other => JoinError::Io(std::io::Error::other(other.to_string())),
    }
}

impl<T> JoinHandle<T> {
    fn start(mut process: Process, result: OwnedFd) -> Result<Self> {
        process.start()?;
        Ok(JoinHandle {
            process,
            result,
            taken: false,
            _value: PhantomData,
        })
    }

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
