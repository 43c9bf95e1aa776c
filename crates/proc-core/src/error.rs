//! Errors of the process layer: one enum for misuse and system failures, one for `join`
//! of a [`JoinHandle`](crate::JoinHandle); and [`panic_message`], how a panic is reported.

use std::io;

use crate::codec::CodecError;
use crate::kernel::KernelFeature;
use crate::start_method::StartMethod;

/// `Result` with the process layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a process operation.
///
/// Misuse (starting twice, joining before start, changing a started process, a daemon that
/// starts children) gets its own variant that names the process, so the message says what
/// to change; failures of the operating system keep the `io::Error` and name the call.
///
/// ```
/// use proc_core::{Error, Process};
///
/// let p = Process::new(|| {});
/// match p.join() {
///     Err(Error::NotStarted { name, .. }) => assert_eq!(name, p.name()),
///     other => panic!("expected NotStarted, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The running kernel lacks a feature multiproc needs (see the README's Platform
    /// section): found before anything was made.
    #[error(
        "this kernel lacks {feature}, which multiproc needs for {}: Linux {} or later has \
         it (or a sandbox refuses the calls)",
        feature.needed_for(),
        feature.since()
    )]
    KernelFeatureMissing {
        /// The feature.
        feature: KernelFeature,
    },
    /// `start()` was called on a process that had already been started.
    #[error("process {name:?} was already started: a Process can be started only once")]
    AlreadyStarted {
        /// The process's name.
        name: String,
    },
    /// An operation that needs a running or finished process was called before `start()`.
    #[error("process {name:?} has not been started: call start() before {operation}")]
    NotStarted {
        /// The process's name.
        name: String,
        /// The operation that was attempted.
        operation: &'static str,
    },
    /// A setting was changed after `start()`, when it can no longer take effect.
    #[error("cannot {operation} of process {name:?}: it was already started")]
    ChangeAfterStart {
        /// The process's name.
        name: String,
        /// The change that was attempted.
        operation: &'static str,
    },
    /// A daemon process tried to start a child. Daemons are killed with their parent, so
    /// their children would be orphaned; Python refuses this too.
    #[error("daemon process {name:?} may not start child processes")]
    DaemonCannotStartChildren {
        /// The daemon's name.
        name: String,
    },
    /// A closure was given to a process that does not start by `fork`: only a copy of this
    /// process (the Fork start method) can run a closure. Spawned and served children run a
    /// function and its arguments, made with `Process::target`.
    #[error(
        "process {name:?} runs a closure, which only the fork start method can run; under \
         {method} use Process::target(function, (arguments,)) instead"
    )]
    ClosureNeedsFork {
        /// The process's name.
        name: String,
        /// The start method in force.
        method: StartMethod,
    },
    /// The target of a process is not a plain function: a closure that captures values, or
    /// a function pointer, cannot be named in another run of the executable.
    #[error(
        "the target of process {name:?} ({function}) cannot travel to a process started by \
         {method}: pass a function by name (`Process::target(task, args)` with `fn task`) or \
         a closure that captures nothing, and pass values as its arguments"
    )]
    TargetCannotTravel {
        /// The process's name.
        name: String,
        /// The start method in force.
        method: StartMethod,
        /// The target's type.
        function: &'static str,
    },
    /// A spawned or served child could not run its task (its arguments did not decode, its
    /// task message was malformed), or ended without taking it (a program whose `main` does
    /// not start with `multiproc::init()` and that multiproc could not take over before
    /// `main`). The child ended with [`TASK_ERROR_EXIT_CODE`](crate::TASK_ERROR_EXIT_CODE) or
    /// the code it returned.
    #[error("process {name:?} could not run its task: {reason}")]
    TaskFailed {
        /// The process's name.
        name: String,
        /// What the child said, or what the parent saw.
        reason: String,
    },
    /// An operation was called on a process after [`close()`](crate::Process::close): its
    /// pidfd and pipes are gone, so it can no longer be waited for, signalled or started.
    #[error(
        "process {name:?} is closed: {operation} cannot be used after close() (its pid, name \
         and exit code still answer)"
    )]
    Closed {
        /// The process's name.
        name: String,
        /// The operation that was attempted.
        operation: &'static str,
    },
    /// [`close()`](crate::Process::close) was called while the child still runs, as
    /// Python's `ValueError`: join it (or terminate and join it) first.
    #[error(
        "cannot close process {name:?} while it is still running: call join() (or terminate() \
         then join()) first"
    )]
    StillRunning {
        /// The process's name.
        name: String,
    },
    /// The executable given to [`set_executable`](crate::set_executable) cannot serve: it
    /// does not exist, is not an executable file, or is not this program.
    #[error("cannot use {path:?} as the executable of spawned children: {reason}")]
    BadExecutable {
        /// The path that was given.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The executable of a Spawn or ForkServer child could not be run (no permission any
    /// more, too many processes, no memory, …). Nothing of the child was left behind.
    #[error("could not run {path:?} for a new child process: {source}")]
    Exec {
        /// The executable that was run.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// [`ProcessInfo::sentinel`](crate::ProcessInfo::sentinel) of a snapshot that has none:
    /// only the [`parent_process()`](crate::parent_process) of a child carries one.
    #[error(
        "process {name:?} has no sentinel here: only parent_process() in a child started by \
         multiproc carries one"
    )]
    NoSentinel {
        /// The process's name.
        name: String,
    },
    /// A start method's name was not one of `fork`, `spawn`, `forkserver`.
    #[error("unknown start method {given:?}: the start methods are fork, spawn and forkserver")]
    UnknownStartMethod {
        /// What was given.
        given: String,
    },
    /// This program's own executable code could not be found in its address space, so
    /// functions cannot be named for another process.
    #[error("the executable's code segments were not found in this process")]
    NoImage,
    /// A function to be named for another process is not in the main executable (it is in a
    /// shared library, or is not code at all).
    #[error(
        "the function at {address:#x} is not in this program's executable, so another run of it \
         cannot call it (functions of shared libraries cannot be targets)"
    )]
    NotInExecutable {
        /// The function's address in this process.
        address: usize,
    },
    /// A code offset received from another process does not land in this executable's code.
    #[error("code offset {offset:#x} received from another process is not in this executable")]
    BadCodeAddress {
        /// The offset received.
        offset: u64,
    },
    /// A system call failed.
    #[error("{operation} failed: {source}")]
    Io {
        /// The call or step that failed.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An object given to [`wait`](crate::wait) cannot be waited for: a closed connection,
    /// the writing end of a one-way pipe. (A process not yet started is
    /// [`NotStarted`](Error::NotStarted).)
    ///
    /// ```
    /// let err = proc_core::Error::NotWaitable {
    ///     object: "a connection",
    ///     source: "it was closed".into(),
    /// };
    /// assert_eq!(err.to_string(), "cannot wait for a connection: it was closed");
    /// ```
    #[error("cannot wait for {object}: {source}")]
    NotWaitable {
        /// What kind of object it is.
        object: &'static str,
        /// Why it cannot be waited for, as its own layer reports it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn io(operation: &'static str, source: io::Error) -> Self {
        Error::Io { operation, source }
    }
}

/// Why [`JoinHandle::join`](crate::JoinHandle::join) did not return the child's value.
///
/// ```
/// use proc_core::{spawn, JoinError};
///
/// let h = spawn(|| -> u8 { panic!("no value today") }).unwrap();
/// match h.join() {
///     Err(JoinError::Panicked { message, location, .. }) => {
///         assert_eq!(message, "no value today");
///         assert!(location.is_some(), "and where it happened: file:line:col");
///     }
///     other => panic!("expected a panic, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The child's closure or function panicked; `message` is the panic's message. Match
    /// it with `..`: more fields may come.
    #[error("the child process panicked: {message}{}", location.as_ref().map(|at| format!(" (at {at})")).unwrap_or_default())]
    Panicked {
        /// The panic message (the payload when it was a string).
        message: String,
        /// Where the panic happened, `file:line:col`, when the child knew it.
        location: Option<String>,
    },
    /// The child ended with this exit code before returning a value (for example through
    /// [`exit`](crate::exit)).
    #[error("the child process exited with code {0} before returning a value")]
    Exited(i32),
    /// The child was ended by this signal (for example 9 for SIGKILL).
    #[error("the child process was ended by signal {0}")]
    Signaled(i32),
    /// The child's value reached the parent but could not be decoded, or could not be
    /// encoded in the child.
    #[error("the child's value could not be transferred: {0}")]
    Codec(#[from] CodecError),
    /// What the child sent back is not a value as multiproc hands values over: a record of
    /// the wrong length or kind, a length over [`RESULT_LIMIT`](crate::RESULT_LIMIT),
    /// descriptors where none belong, or a memory file that is not sealed or not of the
    /// announced size. Nothing it sent was kept (its descriptors were closed). Only a child
    /// that wrote to the channel itself gets here.
    ///
    /// ```
    /// use proc_core::JoinError;
    ///
    /// let err = JoinError::Malformed { reason: "its record is of kind 0x00".into() };
    /// assert!(err.to_string().contains("malformed"));
    /// ```
    #[error("the child's value arrived malformed: {reason}")]
    Malformed {
        /// What was wrong with it.
        reason: String,
    },
    /// [`JoinHandle::join_timeout`](crate::JoinHandle::join_timeout) already returned the
    /// child's value (or how it failed to give one): there is nothing more to take.
    #[error("the child's value was already taken by an earlier join_timeout()")]
    AlreadyJoined,
    /// Waiting for the child or reading its value failed.
    #[error("waiting for the child process failed: {0}")]
    Io(#[from] io::Error),
}

/// The message of a panic payload (what `panic!` was given, when it was a string), as
/// [`JoinError::Panicked`] reports it; the other layers report their children's and tasks'
/// panics the same way.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("gave up after {} tries", 3)).unwrap_err();
/// assert_eq!(proc_core::internal::panic_message(&*payload), "gave up after 3 tries");
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
