//! # multiproc
//!
//! Python's `multiprocessing`, rebuilt in Rust: real processes with real isolation,
//! exit codes and lifecycle as Python has them, and no zombies or leaked descriptors.
//!
//! This crate is the facade: it re-exports the layer crates so that `use multiproc::*;`
//! (or `use multiproc::prelude::*;`) gives the whole API. Each layer is also usable alone:
//!
//! | crate | what it holds |
//! |---|---|
//! | [`proc_core`] | [`Process`], [`spawn`]/[`JoinHandle`], [`current_process`], exit codes, daemons, start methods ([`StartMethod`], [`init`]) |
//! | [`proc_sync`] | [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`], [`Barrier`], [`Value`], [`Array`]: shared memory that survives a dead holder |
//! | [`proc_ipc`] | [`Queue`], [`pipe`], [`pipe_oneway`], [`Connection`]: typed messages between processes |
//! | [`proc_patterns`] | [`JoinableQueue`], [`ProducerConsumer`], [`Pool`]/[`AsyncResult`]: the patterns multiprocessing is used for |
//!
//! ```
//! use multiproc::prelude::*;
//!
//! let h = multiproc::spawn(|| current_process().name().to_string())?;
//! assert_eq!(h.join().unwrap(), "Process-1");
//! # Ok::<(), multiproc::Error>(())
//! ```

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod context;

/// Every name of Python's `multiprocessing`, and what it is here (`docs/coming-from-python.md`).
pub mod coming_from_python {
    #![doc = include_str!("../docs/coming-from-python.md")]
}

pub use context::{Context, get_context};
pub use proc_core;
pub use proc_core::codec::ByteBuf;
pub use proc_core::{
    CodecError, JoinError, JoinHandle, Process, ProcessInfo, START_METHOD_ENV, StartMethod,
    TASK_ERROR_EXIT_CODE, Target, active_children, codec, cpu_count, current_process, exit,
    get_start_method, init, parent_process, set_start_method, spawn,
};
pub use proc_core::{
    KernelFeature, WaitSource, Waitable, Watch, get_all_start_methods, process_cpu_count,
    set_executable, spawn_target, wait,
};
pub use proc_ipc;
pub use proc_ipc::{
    Address, Client, Connection, DEFAULT_HANDSHAKE_TIMEOUT, GetError, Listener, PutError, Queue,
    QueueBuilder, SimpleQueue, pipe, pipe_oneway,
};
pub use proc_patterns;
pub use proc_patterns::{
    AsyncResult, Callbacks, Executor, ExecutorBuilder, JoinableQueue, JoinableQueueBuilder,
    MapIter, Pool, PoolBuilder, PoolStats, Producer, ProducerConsumer, ProducerConsumerReport,
    TaskFuture, UnorderedIter, as_completed,
};
pub use proc_shared;
pub use proc_shared::{Item, ShareableList, SharedMemory, SharedMemoryManager};
pub use proc_sync;
pub use proc_sync::{
    Array, Barrier, BarrierBuilder, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
    LockGuard, RLock, RawArray, RawValue, Semaphore, Value, ValueGuard,
};
pub use proc_wire;

/// Any error of multiproc: converts from the error of every layer.
///
/// ```
/// fn start_one() -> multiproc::Result<i32> {
///     let mut p = multiproc::Process::new(|| {});
///     p.start()?; // a proc_core::Error converts into multiproc::Error
///     Ok(p.join()?)
/// }
/// assert_eq!(start_one().unwrap(), 0);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the process layer.
    #[error(transparent)]
    Process(#[from] proc_core::Error),
    /// A child started by [`spawn`] did not return its value.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// An error of the synchronisation layer (locks, semaphores, barriers, shared values).
    #[error(transparent)]
    Sync(#[from] proc_sync::Error),
    /// An error of the message layer (pipes and connections).
    #[error(transparent)]
    Ipc(#[from] proc_ipc::Error),
    /// An error of named shared memory (blocks, shareable lists, their manager).
    #[error(transparent)]
    Shared(#[from] proc_shared::Error),
    /// An error of the patterns layer (joinable queues, producer/consumer runs, pools),
    /// including a pool task's panic or the death of its worker.
    #[error(transparent)]
    Patterns(#[from] proc_patterns::Error),
}

/// `?` on a queue's put: the item is dropped with the error.
impl<T> From<PutError<T>> for Error {
    fn from(error: PutError<T>) -> Self {
        Error::Ipc(error.into())
    }
}

/// `?` on a queue's get.
impl From<GetError> for Error {
    fn from(error: GetError) -> Self {
        Error::Ipc(error.into())
    }
}

/// `Result` with multiproc's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The names most programs need: `use multiproc::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RawArray, RawValue,
        Semaphore, Value,
    };
    pub use crate::{
        AsyncResult, Callbacks, Executor, JoinableQueue, Pool, Producer, ProducerConsumer,
        TaskFuture, as_completed,
    };
    pub use crate::{
        ByteBuf, Connection, GetError, PutError, Queue, SimpleQueue, Waitable, pipe, pipe_oneway,
        wait,
    };
    pub use crate::{
        Context, JoinError, JoinHandle, Process, ProcessInfo, StartMethod, active_children,
        cpu_count, current_process, get_all_start_methods, get_context, get_start_method,
        parent_process, process_cpu_count, set_start_method, spawn, spawn_target,
    };
    pub use crate::{Item, ShareableList, SharedMemory};
}

/// The README's examples, compiled and run as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
