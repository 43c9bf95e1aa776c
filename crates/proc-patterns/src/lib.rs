//! # proc-patterns: joinable queues, producer/consumer and process pools
//!
//! The patterns layer of [multiproc](https://docs.rs/multiproc): what people use Python's
//! `multiprocessing` for, built on [`proc_ipc`]'s queues and connections and
//! [`proc_sync`]'s shared memory.
//!
//! | type | Python | what it is for |
//! |---|---|---|
//! | [`JoinableQueue`] | `JoinableQueue` | a queue whose consumers mark items done, so that `join` waits until all are processed |
//! | [`ProducerConsumer`] | the tutorials' producer/consumer loop | producers and consumers as processes, `task_done` done for you, a report of what failed |
//! | [`Pool`] | `Pool` | `map`, `starmap`, `imap`, `imap_unordered`, `apply` and their `_async` forms over worker processes |
//! | [`Executor`] | `concurrent.futures.ProcessPoolExecutor` | `submit` giving a [`TaskFuture`] (blocking, or `.await`ed with no runtime), `map` with a timeout, [`as_completed`], `shutdown` |
//!
//! ```
//! use proc_patterns::{JoinableQueue, Pool};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 1..=4)?, [1, 4, 9, 16]);
//!
//! let q = JoinableQueue::<u64>::new(0)?;
//! let mut consumer = proc_core::Process::new({
//!     let q = q.clone();
//!     move || {
//!         for x in q.iter() {
//!             println!("{x} squared is {}", square(x));
//!             q.task_done().unwrap();
//!         }
//!     }
//! });
//! consumer.start()?;
//! for x in 1..=3 {
//!     q.put(x)?;
//! }
//! q.join(); // every item put so far has been marked done
//! q.close(); // the consumer's loop ends
//! consumer.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## When a process dies
//! - [`JoinableQueue`]: a consumer killed between `get` and `task_done` leaves its item
//!   unfinished for good: `join_timeout` returns `false` and `unfinished()` counts it.
//! - [`ProducerConsumer`]: a producer or consumer that dies is reported with its exit code;
//!   the others finish.
//! - [`Pool`]: a task that panics is an error for that task only; a worker that dies makes
//!   its chunk's tasks fail with [`Error::WorkerDied`], and is replaced.
//!
//! ## Modules
//! Top to bottom, each using only those below it:
//! - `producer_consumer`: [`ProducerConsumer`], its [`Producer`] handle and its report;
//! - `joinable_queue`: [`JoinableQueue`], a proc-ipc queue with a shared count of
//!   unfinished items;
//! - `executor`: [`Executor`], its [`TaskFuture`]s and [`as_completed`], on top of the
//!   pool's workers and dispatch;
//! - `pool`: [`Pool`] and its results (its own files are listed in its module's docs);
//! - `error`: [`Error`], the one error of this crate.

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod error;
mod executor;
mod joinable_queue;
mod pool;
mod producer_consumer;

pub use error::{Error, Result};
pub use executor::{Executor, ExecutorBuilder, TaskFuture, as_completed};
pub use joinable_queue::{JoinableQueue, JoinableQueueBuilder};
pub use pool::{AsyncResult, Callbacks, MapIter, Pool, PoolBuilder, PoolStats, UnorderedIter};
pub use producer_consumer::{
    BoxError, FailureKind, ProcessFailure, Producer, ProducerConsumer, ProducerConsumerReport, Role,
};
