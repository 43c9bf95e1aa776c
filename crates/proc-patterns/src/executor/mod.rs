//! [`Executor`]: a pool of worker processes in the style of Python's
//! `concurrent.futures.ProcessPoolExecutor`, whose tasks are [`TaskFuture`]s.
//!
//! It is a [`Pool`] underneath: the same workers, the same dispatch and result path (a
//! task is a chunk of one, as `apply_async`'s). What it adds is small: each task's sink
//! carries a hook that wakes its future ([`future`]) and a claim that lets it be cancelled
//! before it starts, and [`as_completed`] listens to many futures at once.
//!
//! - `future`: [`TaskFuture`] and what it shares with the pool's result path;
//! - `as_completed`: [`as_completed`].

mod as_completed;
mod future;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proc_core::StartMethod;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use as_completed::as_completed;
pub use future::TaskFuture;

use crate::error::{Error, Result};
use crate::pool::{Pool, PoolBuilder};
use future::{Notifier, Shared};

/// A pool of worker processes whose tasks are futures, as Python's
/// `concurrent.futures.ProcessPoolExecutor`.
///
/// Task functions are plain `fn(A) -> R`, as for a [`Pool`] (a tuple for several
/// arguments). A task whose worker dies (killed from outside) fails with
/// [`Error::WorkerDied`] and the worker is replaced; the executor goes on (Python's
/// executor would be broken for good).
///
/// Dropping the executor is Python's leaving a `with` block:
/// [`shutdown(true, false)`](Self::shutdown), which waits for every submitted task (so a
/// task that never returns holds the drop up, as in Python: give such tasks a deadline with
/// [`map`](Self::map)'s timeout, or use [`Pool::apply_timeout`](crate::Pool::apply_timeout)).
///
/// ```
/// use proc_patterns::Executor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let ex = Executor::new(2)?;
/// let future = ex.submit(square, 12)?;
/// let squares: Vec<u64> = ex.map(square, 1..=4, None).collect::<Result<_, _>>()?;
/// assert_eq!(future.result()?, 144);
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub struct Executor {
    pool: Pool,
    shut_down: AtomicBool,
    /// The tasks submitted, for `shutdown(_, cancel_futures = true)`; those done or
    /// dropped are let go as more come.
    submitted: Mutex<Vec<Weak<Shared>>>,
}

/// Configures an [`Executor`]: [`Executor::builder`]. The options are the [`Pool`]'s (see
/// [`PoolBuilder`]).
#[derive(Debug, Clone)]
#[must_use]
pub struct ExecutorBuilder {
    pool: PoolBuilder,
}

impl ExecutorBuilder {
    /// The number of worker processes (default: [`cpu_count`](proc_core::cpu_count)),
    /// Python's `max_workers`.
    pub fn processes(self, processes: usize) -> Self {
        ExecutorBuilder {
            pool: self.pool.processes(processes),
        }
    }

    /// How the workers are started (default: the start method in force when the executor
    /// is built): Python's `mp_context`. See [`PoolBuilder::start_method`].
    pub fn start_method(self, method: StartMethod) -> Self {
        ExecutorBuilder {
            pool: self.pool.start_method(method),
        }
    }

    /// A function each worker calls once when it starts: Python's `initializer`. See
    /// [`PoolBuilder::initializer`].
    pub fn initializer(self, initializer: fn()) -> Self {
        ExecutorBuilder {
            pool: self.pool.initializer(initializer),
        }
    }

    /// As [`initializer`](Self::initializer), with an argument: Python's `initializer`
    /// with `initargs`. See [`PoolBuilder::initializer_with`].
    pub fn initializer_with<A>(self, initializer: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned,
    {
        ExecutorBuilder {
            pool: self.pool.initializer_with(initializer, args),
        }
    }

    /// A worker ends after this many tasks and a fresh one takes its place: Python's
    /// `max_tasks_per_child`.
    pub fn max_tasks_per_child(self, tasks: usize) -> Self {
        ExecutorBuilder {
            pool: self.pool.maxtasksperchild(tasks),
        }
    }

    /// Starts the workers.
    ///
    /// ```
    /// use proc_core::StartMethod;
    ///
    /// fn pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// let ex = proc_patterns::Executor::builder()
    ///     .processes(2)
    ///     .start_method(StartMethod::Spawn)
    ///     .build()?;
    /// assert_ne!(ex.submit(pid, ())?.result()?, std::process::id());
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn build(self) -> Result<Executor> {
        Ok(Executor {
            pool: self.pool.build()?,
            shut_down: AtomicBool::new(false),
            submitted: Mutex::new(Vec::new()),
        })
    }
}

impl Executor {
    /// An executor of `processes` workers (at least 1).
    ///
    /// ```
    /// assert!(proc_patterns::Executor::new(0).is_err());
    /// ```
    pub fn new(processes: usize) -> Result<Executor> {
        Executor::builder().processes(processes).build()
    }

    /// A builder: processes, start method, initializer, tasks per worker.
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder {
            pool: Pool::builder(),
        }
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.pool.processes()
    }

    /// The pids of the current workers (they change as workers are replaced).
    pub fn pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    /// Starts `f(arg)` in a worker; the [`TaskFuture`] gives its result.
    /// [`Error::ExecutorShutdown`] after [`shutdown`](Self::shutdown).
    pub fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<TaskFuture<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.submit_until(f, arg, None)
    }

    /// Calls `f` on every input in the workers (all submitted at once, as Python's
    /// `Executor.map`) and yields the results in input order. With a `timeout`, every
    /// task must be done within it from this call: past it, a task still running has its
    /// worker killed and replaced, and the tasks not done give [`Error::TimedOut`] (Python
    /// raises `TimeoutError` from its iterator). Results come as they are taken: those
    /// done in time are given even if taken later.
    ///
    /// ```
    /// use std::time::Duration;
    /// use proc_patterns::{Error, Executor};
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let ex = Executor::new(2)?;
    /// let results: Vec<_> = ex.map(nap, [0, 60_000], Some(Duration::from_millis(500))).collect();
    /// assert_eq!(results[0].as_ref().ok(), Some(&0));
    /// assert!(matches!(results[1], Err(Error::TimedOut { .. })));
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn map<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        timeout: Option<Duration>,
    ) -> impl Iterator<Item = Result<R>> + use<A, R, I>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let deadline = timeout.map(|timeout| (Instant::now(), timeout));
        let futures: Vec<Result<TaskFuture<R>>> = inputs
            .into_iter()
            .map(|arg| self.submit_until(f, arg, deadline))
            .collect();
        futures.into_iter().map(|future| future?.result())
    }

    /// No more work: [`submit`](Self::submit) and [`map`](Self::map) fail with
    /// [`Error::ExecutorShutdown`] from now on. With `cancel_futures`, the tasks no worker
    /// has started are cancelled ([`Error::Cancelled`]). With `wait`, returns once every
    /// other task is done and the workers have ended; without, at once, the workers ending
    /// by themselves when they are done. Python's `shutdown(wait, cancel_futures=…)`; a
    /// second call does no harm.
    ///
    /// ```
    /// use std::time::Duration;
    /// use proc_patterns::{Error, Executor};
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let ex = Executor::new(1)?;
    /// let running = ex.submit(nap, 300)?;
    /// while !running.running() {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// let queued = ex.submit(nap, 0)?;
    /// ex.shutdown(true, true);
    /// assert_eq!(running.result()?, 300);
    /// assert!(matches!(queued.result(), Err(Error::Cancelled)));
    /// assert!(matches!(ex.submit(nap, 0), Err(Error::ExecutorShutdown)));
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<Arc<Shared>> = {
            // Under the lock, so that no submit slips in between the flag and the cancel.
            let mut submitted = self.submitted.lock();
            self.shut_down.store(true, Ordering::SeqCst);
            if cancel_futures {
                submitted
                    .drain(..)
                    .filter_map(|weak| weak.upgrade())
                    .filter(|shared| shared.claim.cancel())
                    .collect()
            } else {
                Vec::new()
            }
        };
        // Told outside the lock: a waker may submit (and fail) at once.
        for shared in &cancelled {
            shared.settle();
        }
        if !cancelled.is_empty() {
            // A thread may be waiting on one of their results: the driver fails them now.
            self.pool.drop_cancelled();
        }
        self.pool.close();
        if wait {
            // Cannot fail: the pool is closed.
            let _ = self.pool.join();
        }
    }

    fn submit_until<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<TaskFuture<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let shared = Arc::new(Shared::default());
        // Held until the task is handed over, so that a shutdown in another thread either
        // comes first (and this fails with ExecutorShutdown) or sees the task to cancel.
        let mut submitted = self.submitted.lock();
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(Error::ExecutorShutdown);
        }
        // Those done or dropped are let go, now and then: the list stays about as long as
        // the tasks in flight and the futures kept.
        if submitted.len() >= 64 && submitted.len().is_power_of_two() {
            submitted.retain(|weak| weak.strong_count() > 0);
        }
        submitted.push(Arc::downgrade(&shared));
        let hook = Arc::new(Notifier(Arc::clone(&shared)));
        let result = self
            .pool
            .submit_task(f, arg, hook, Arc::clone(&shared.claim), deadline);
        drop(submitted);
        Ok(TaskFuture::new(result, shared))
    }
}

impl Drop for Executor {
    /// Waits for every submitted task, then for the workers to end, as Python's leaving
    /// `with ProcessPoolExecutor() as ex:`.
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("pool", &self.pool)
            .field("shut_down", &self.shut_down.load(Ordering::SeqCst))
            .finish()
    }
}
