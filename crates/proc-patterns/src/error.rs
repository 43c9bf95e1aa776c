//! The patterns layer's one error enum: misuse a caller can fix, failures of the layers
//! below, and how a task of a [`Pool`](crate::Pool) failed.

/// `Result` with the patterns layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a joinable queue, a producer/consumer run or a pool.
///
/// ```
/// use proc_patterns::{Error, JoinableQueue};
///
/// let q = JoinableQueue::<u8>::new(0)?;
/// assert!(matches!(q.task_done(), Err(Error::TaskDoneTooOften)));
/// # Ok::<(), proc_patterns::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`task_done`](crate::JoinableQueue::task_done) was called more times than items were
    /// put (Python's `ValueError: task_done() called too many times`).
    #[error("task_done() called more times than items were put in the queue")]
    TaskDoneTooOften,
    /// A task of a pool panicked; `message` is the panic's message. The pool goes on.
    #[error("the task panicked: {message}")]
    TaskPanicked {
        /// The panic message (the payload when it was a string).
        message: String,
    },
    /// The worker process that held the task ended before returning its result (killed
    /// from outside, or it called `exit`); `exitcode` is Python's: `-9` for SIGKILL. The
    /// pool replaced the worker.
    #[error(
        "the worker process (pid {pid}) running the task ended with exit code {exitcode} before returning its result"
    )]
    WorkerDied {
        /// The worker's pid.
        pid: u32,
        /// How it ended: the exit code, or `-signum`.
        exitcode: i32,
    },
    /// The pool was terminated (or dropped) before the task finished.
    #[error("the pool was terminated before the task finished")]
    PoolTerminated,
    /// Work was submitted to a pool after [`close`](crate::Pool::close) or
    /// [`terminate`](crate::Pool::terminate).
    #[error("the pool is closed: it takes no more work")]
    PoolClosed,
    /// [`Pool::join`](crate::Pool::join) was called before `close` or `terminate`.
    #[error("join() needs close() or terminate() first, or it would wait forever")]
    JoinBeforeClose,
    /// [`AsyncResult::get_timeout`](crate::AsyncResult::get_timeout) ran out of time.
    #[error("the result is not ready yet")]
    Timeout,
    /// The pool's initializer failed in this many workers in a row (`message`: the last
    /// one's panic message), so the pool gave up: its pending and later work fails with
    /// this error. Python's pool would start replacement workers forever instead.
    #[error(
        "the pool's initializer failed in {attempts} workers in a row, so the pool runs no more work: {message}"
    )]
    InitializerFailed {
        /// The panic message of the last failure (or how its worker ended).
        message: String,
        /// The number of failures in a row.
        attempts: u32,
    },
    /// The task of [`Pool::apply_timeout`](crate::Pool::apply_timeout) did not finish in
    /// `timeout`: its worker was killed and replaced (or it never started).
    #[error("the task did not finish within {timeout:?}: its worker was killed and replaced")]
    TimedOut {
        /// The time the task was given.
        timeout: std::time::Duration,
    },
    /// The task was cancelled before a worker got it: by
    /// [`TaskFuture::cancel`](crate::TaskFuture::cancel), or by
    /// [`Executor::shutdown`](crate::Executor::shutdown) with `cancel_futures` (Python's
    /// `CancelledError`).
    #[error("the task was cancelled before it started")]
    Cancelled,
    /// Work was submitted to an [`Executor`](crate::Executor) after its
    /// [`shutdown`](crate::Executor::shutdown) (Python's `RuntimeError: cannot schedule new
    /// futures after shutdown`).
    #[error("the executor is shut down: it takes no more work")]
    ExecutorShutdown,
    /// [`AsyncResult::successful`](crate::AsyncResult::successful) was asked before the
    /// work was ready (Python raises `ValueError`).
    #[error(
        "the result is not ready yet: wait for it (ready(), wait()) before asking whether it was successful"
    )]
    NotReady,
    /// An argument that can never work, such as a pool of zero processes.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What was wrong.
        reason: &'static str,
    },
    /// A task's argument or result could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] proc_core::CodecError),
    /// An error of the process layer (starting a worker, a producer or a consumer).
    #[error(transparent)]
    Process(#[from] proc_core::Error),
    /// An error of the synchronisation layer (the shared memory of a joinable queue).
    #[error(transparent)]
    Sync(#[from] proc_sync::Error),
    /// An error of the message layer (a queue or a connection to a worker).
    #[error(transparent)]
    Ipc(#[from] proc_ipc::Error),
    /// A system call failed.
    #[error("{operation} failed: {source}")]
    Io {
        /// The call or step that failed.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(operation: &'static str, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            operation,
            source: source.into(),
        }
    }
}

/// `?` on a put of the queue layer: the item is dropped with the error.
impl<T> From<proc_ipc::PutError<T>> for Error {
    fn from(error: proc_ipc::PutError<T>) -> Self {
        Error::Ipc(error.into())
    }
}

/// `?` on a get of the queue layer.
impl From<proc_ipc::GetError> for Error {
    fn from(error: proc_ipc::GetError) -> Self {
        Error::Ipc(error.into())
    }
}
