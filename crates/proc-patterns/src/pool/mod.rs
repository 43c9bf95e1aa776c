//! [`Pool`]: a fixed number of worker processes that run `fn(A) -> R` tasks, as Python's
//! `multiprocessing.Pool`.
//!
//! The layout, one concern per file, each using only those listed below it:
//! - this file: the calls a user makes (`map`, `starmap`, `apply`, their `_async` forms,
//!   `apply_timeout`, `close`, …);
//! - `imap`: the calls that stream, `imap` and `imap_unordered`;
//! - `builder`: [`PoolBuilder`], which configures a pool and starts it;
//! - `in_order`: how `map` takes its results while it still submits;
//! - `async_result`: [`AsyncResult`], the result of `apply_async` and `map_async`;
//! - `results`: how results are decoded in the caller's thread, and [`MapIter`] and
//!   [`UnorderedIter`], which pull their inputs as their results are taken;
//! - `callbacks`: [`Callbacks`], run on the driver thread as tasks finish;
//! - `claim`: whether a task that can be cancelled (an executor's) may still start;
//! - `submit`: how inputs become chunks handed to the driver, for every call;
//! - `handle`: [`Pool`] itself, what the pool's process holds of it;
//! - `driver`: the thread of the pool's process that hands chunks to workers, collects
//!   results and replaces workers that die, and enforces `apply_timeout`'s limits;
//! - `restarts`: the back-off and the giving up on workers whose initializer fails;
//! - `worker_process`: the driver's handle on one worker and the chunk it holds;
//! - `sink`: where a chunk's outcome goes, with the hook (callbacks) and the counters;
//! - `stats`: [`PoolStats`] and the counters behind it;
//! - `worker`: the loop a worker process runs;
//! - `initializer`: a pool's initializer, as it travels and as a worker runs it;
//! - `outcome`: a finished chunk's encoded results, or why it failed, on their way from
//!   the driver to the caller's thread;
//! - `spares`: the message buffers kept for the next chunks;
//! - `mailbox`: the shared memory a chunk and its results cross in, announced over the
//!   worker's connection;
//! - `call`: how a worker calls a `fn(A) -> R` it knows only by address;
//! - `message`: what travels to and from a worker, and how a message's header is sealed
//!   onto it and read back.
//!
//! ## Why a connection per worker, not a shared task queue
//! The driver sends each chunk to one idle worker over that worker's own connection, so it
//! always knows which chunk each worker holds. With a shared queue, a worker killed between
//! taking a chunk and announcing it would take the chunk with it, and `map` would wait
//! forever. A connection's socket and the worker's pidfd can also be waited on together
//! with one `poll(2)`, where a futex-based queue cannot. Chunks are large, so one system
//! call per chunk costs nothing that matters; their bytes do not go through the socket,
//! which would copy them twice, but through the worker's mailboxes (see `mailbox`).

mod async_result;
mod builder;
mod call;
mod callbacks;
mod claim;
mod driver;
mod handle;
mod imap;
mod in_order;
mod initializer;
mod mailbox;
mod message;
mod outcome;
mod restarts;
mod results;
mod sink;
mod spares;
mod stats;
mod submit;
mod worker;
mod worker_process;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use async_result::AsyncResult;
pub use builder::PoolBuilder;
pub use callbacks::Callbacks;
pub(crate) use claim::Claim;
pub use handle::Pool;
pub use results::{MapIter, UnorderedIter};
pub(crate) use sink::Hook;
pub use stats::PoolStats;

use crate::error::{Error, Result};
use call::TaskFn;
use callbacks::JobCallbacks;
use driver::Command;
use in_order::InOrder;
use outcome::ChunkDone;
use sink::Sink;
use submit::{Chunking, Feed, Feeder};

impl Pool {
    /// A pool of `processes` workers (at least 1).
    ///
    /// ```
    /// let pool = proc_patterns::Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// assert!(proc_patterns::Pool::new(0).is_err());
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder: processes, maxtasksperchild, initializer, chunksize, start method.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: proc_core::cpu_count(),
            max_tasks: None,
            initializer: None,
            chunksize: None,
            start_method: None,
        }
    }

    /// The number of workers the pool keeps.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The pids of the current workers (they change as workers are replaced).
    ///
    /// ```
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let pids = pool.pids();
    /// assert_eq!(pids.len(), 2);
    /// assert!(!pids.contains(&std::process::id()));
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.pids.lock().clone()
    }

    /// The pool's counters so far: tasks submitted, completed and failed, and workers
    /// replaced, for a caller's own progress display (see [`PoolStats`]).
    pub fn stats(&self) -> PoolStats {
        self.counters.snapshot()
    }

    /// Calls `f` on every input in the workers and returns the results in input order, or
    /// the error of a task that failed (a panic, a worker that died) as soon as one is
    /// known; the other tasks run on, and their results are dropped.
    ///
    /// ```
    /// fn shout(s: String) -> String {
    ///     s.to_uppercase()
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let words = ["a", "b", "c"].map(String::from);
    /// assert_eq!(pool.map(shout, words)?, ["A", "B", "C"]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.run_in_order(f, inputs, self.chunksize)
    }

    /// As [`map`](Self::map), with `chunksize` inputs sent to a worker at a time.
    pub fn map_chunked<A, R, I>(&self, f: fn(A) -> R, inputs: I, chunksize: usize) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.run_in_order(f, inputs, Some(chunksize))
    }

    /// As [`map`](Self::map) for a function of two arguments, each input a pair that is
    /// spread into them: Python's `starmap`.
    ///
    /// ```
    /// fn power(base: u64, exponent: u32) -> u64 {
    ///     base.pow(exponent)
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// assert_eq!(pool.starmap(power, [(2, 10), (3, 2), (10, 0)])?, [1024, 9, 1]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn starmap<A, B, R, I>(&self, f: fn(A, B) -> R, inputs: I) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = (A, B)>,
    {
        self.run_in_order(f, inputs, self.chunksize)
    }

    /// As [`map`](Self::map), without waiting: the [`AsyncResult`] gives every result, in
    /// input order, once all are done, or the error of the first task that failed as soon
    /// as it is known.
    ///
    /// ```
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let doubles = pool.map_async(double, 0..5);
    /// // ... the caller goes on while the workers run ...
    /// assert_eq!(doubles.get()?, [0, 2, 4, 6, 8]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn map_async<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (rx, lens) = self.run_async(f, inputs, None);
        AsyncResult::all(rx, lens)
    }

    /// As [`map_async`](Self::map_async), with [`Callbacks`]: `on_success` gets every
    /// value, in input order, once all are done; `on_error` gets the first error, once
    /// (Python's `map_async(f, it, callback=…, error_callback=…)`). They run on the
    /// pool's driver thread, before the [`AsyncResult`] is ready; they must not block.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use proc_patterns::{Callbacks, Pool};
    ///
    /// static COUNT: AtomicUsize = AtomicUsize::new(0);
    ///
    /// fn count(values: &[u32]) {
    ///     COUNT.store(values.len(), Ordering::SeqCst);
    /// }
    ///
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = Pool::new(2)?;
    /// let all = pool.map_async_with(double, 0..10, Callbacks::new().on_success(count));
    /// all.wait();
    /// assert_eq!(COUNT.load(Ordering::SeqCst), 10);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn map_async_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        callbacks: Callbacks<[R]>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let hook = Arc::new(JobCallbacks::new(callbacks));
        let (rx, lens) = self.run_async(f, inputs, Some(Arc::clone(&hook) as Arc<dyn Hook>));
        hook.complete(lens.len());
        AsyncResult::all(rx, lens)
    }

    /// As [`starmap`](Self::starmap), without waiting, as [`map_async`](Self::map_async).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 {
    ///     a + b
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let sums = pool.starmap_async(add, [(1, 2), (3, 4)]);
    /// assert_eq!(sums.get()?, [3, 7]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn starmap_async<A, B, R, I>(&self, f: fn(A, B) -> R, inputs: I) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = (A, B)>,
    {
        let (rx, lens) = self.run_async(f, inputs, None);
        AsyncResult::all(rx, lens)
    }

    /// Calls `f(arg)` in a worker and waits for the result.
    ///
    /// ```
    /// fn add((a, b): (i64, i64)) -> i64 {
    ///     a + b
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// assert_eq!(pool.apply(add, (2, 3))?, 5);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(f, arg).get()
    }

    /// Starts `f(arg)` in a worker; the [`AsyncResult`] gives its result later (or the
    /// error that kept it from running: [`Error::PoolClosed`] after `close`).
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_hooked(f, arg, None)
    }

    /// As [`apply_async`](Self::apply_async), with [`Callbacks`] that run in this process
    /// when the task finishes: Python's `apply_async(f, args, callback=…,
    /// error_callback=…)`. They run on the pool's driver thread, in the order tasks finish,
    /// before the [`AsyncResult`] is ready; they must not block (see [`Callbacks`]).
    ///
    /// ```
    /// use proc_patterns::{Callbacks, Pool};
    ///
    /// fn check(x: i32) -> i32 {
    ///     assert!(x > 0, "not positive");
    ///     x
    /// }
    ///
    /// fn log_error(e: &proc_patterns::Error) {
    ///     eprintln!("task failed: {e}");
    /// }
    ///
    /// let pool = Pool::new(1)?;
    /// let pending = pool.apply_async_with(check, -1, Callbacks::new().on_error(log_error));
    /// assert!(pending.get().is_err()); // and "task failed: …" was printed first
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn apply_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callbacks: Callbacks<R>,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.apply_hooked(f, arg, Some(Arc::new(callbacks)))
    }

    /// As [`apply`](Self::apply), giving the task `timeout` from when it is submitted:
    /// past it, the worker running it is killed and replaced, and this task (only) fails
    /// with [`Error::TimedOut`]. Python's pool has no such call; a task that never returns
    /// cannot hang the caller here.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn slow(seconds: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_secs(seconds));
    ///     seconds
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// let late = pool.apply_timeout(slow, 3600, Duration::from_millis(100));
    /// assert!(matches!(late, Err(proc_patterns::Error::TimedOut { .. })));
    /// assert_eq!(pool.apply_timeout(slow, 0, Duration::from_secs(60))?, 0);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn apply_timeout<A, R>(&self, f: fn(A) -> R, arg: A, timeout: Duration) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (sink, rx) = self.sink(None);
        let mut feeder = Feeder::new(self, f, [arg].into_iter(), Some(1), Chunking::Whole, sink)
            .with_timeout(timeout);
        while feeder.feed().is_some() {}
        drop(feeder);
        AsyncResult::one(rx).get()
    }

    /// One task of an [`Executor`](crate::Executor): submitted as `apply_async`'s, with
    /// the `hook` that tells its future, the `claim` its `cancel` races the driver on, and
    /// for `map` a deadline (`timeout` from `start`) past which it fails with `TimedOut`.
    pub(crate) fn submit_task<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        hook: Arc<dyn Hook>,
        claim: Arc<Claim>,
        deadline: Option<(Instant, Duration)>,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.submit_one(f, arg, Some(hook), Some(claim), deadline)
    }

    fn apply_hooked<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        hook: Option<Arc<dyn Hook>>,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.submit_one(f, arg, hook, None, None)
    }

    /// One task, as a chunk of one: `apply_async` and the executor's tasks.
    fn submit_one<A, R>(
        &self,
        f: fn(A) -> R,
        arg: A,
        hook: Option<Arc<dyn Hook>>,
        claim: Option<Arc<Claim>>,
        deadline: Option<(Instant, Duration)>,
    ) -> AsyncResult<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (sink, rx) = self.sink(hook);
        let mut feeder = Feeder::new(self, f, [arg].into_iter(), Some(1), Chunking::Whole, sink);
        if let Some(claim) = claim {
            feeder = feeder.with_claim(claim);
        }
        if let Some((start, timeout)) = deadline {
            feeder = feeder.with_deadline(start, timeout);
        }
        while feeder.feed().is_some() {}
        AsyncResult::one(rx)
    }

    /// The pending tasks whose claim was cancelled fail now, without waiting for a free
    /// worker to come to them.
    pub(crate) fn drop_cancelled(&self) {
        self.command(Command::DropCancelled);
    }

    /// Takes no more work; the workers end once what was submitted is done. Then
    /// [`join`](Self::join) waits for them.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.command(Command::Close);
        }
    }

    /// Ends the workers now (SIGTERM, then SIGKILL after a second); every unfinished task
    /// fails with [`Error::PoolTerminated`]. Waits until the workers are reaped.
    ///
    /// ```
    /// fn sleepy(_: ()) {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// let pending = pool.apply_async(sleepy, ());
    /// pool.terminate();
    /// assert!(matches!(pending.get(), Err(proc_patterns::Error::PoolTerminated)));
    /// assert!(pool.pids().is_empty());
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.command(Command::Terminate);
        self.join_driver();
    }

    /// Waits for the workers to end, after [`close`](Self::close) (once all submitted work
    /// is done) or [`terminate`](Self::terminate); [`Error::JoinBeforeClose`] otherwise.
    pub fn join(&self) -> Result<()> {
        if !self.closed.load(Ordering::SeqCst) {
            return Err(Error::JoinBeforeClose);
        }
        self.join_driver();
        Ok(())
    }

    fn join_driver(&self) {
        if let Some(driver) = self.driver.lock().take() {
            // The driver does not panic; if it did, its workers were still reaped by
            // proc-core at exit, and there is nothing more to do here.
            let _ = driver.join();
        }
    }

    fn command(&self, command: Command) {
        // The driver is gone only after terminate or a finished close: nothing to tell.
        if self.commands.send(command).is_ok() {
            // A full pipe already holds a wake-up.
            let _ = nix::unistd::write(&self.wake, &[1]);
        }
    }

    /// A new job's sink, with its hook, and the channel its outcomes come on.
    fn sink(&self, hook: Option<Arc<dyn Hook>>) -> (Sink, Receiver<ChunkDone>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Sink::new(tx, hook, Arc::clone(&self.counters)), rx)
    }

    /// `map` and `starmap`: every chunk submitted, a few out at a time, the results taken
    /// in input order.
    fn run_in_order<F, I>(
        &self,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Vec<F::Output>>
    where
        F: TaskFn,
        I: IntoIterator<Item = F::Args>,
    {
        let (sink, rx) = self.sink(None);
        let feeder = Feeder::new(
            self,
            f,
            inputs.into_iter(),
            chunksize,
            Chunking::Whole,
            sink,
        );
        InOrder::run(rx, self, feeder)
    }

    /// `map_async` and `starmap_async`: every chunk submitted at once; the job's channel
    /// and its chunks' lengths.
    fn run_async<F, I>(
        &self,
        f: F,
        inputs: I,
        hook: Option<Arc<dyn Hook>>,
    ) -> (Receiver<ChunkDone>, Vec<usize>)
    where
        F: TaskFn,
        I: IntoIterator<Item = F::Args>,
    {
        let (sink, rx) = self.sink(hook);
        let mut feeder = Feeder::new(
            self,
            f,
            inputs.into_iter(),
            self.chunksize,
            Chunking::Whole,
            sink,
        );
        let mut lens = Vec::new();
        while let Some((len, _)) = feeder.feed() {
            lens.push(len);
        }
        (rx, lens)
    }
}

impl Drop for Pool {
    /// Terminates the workers and reaps them, as Python's `with Pool() as p:` does on exit.
    fn drop(&mut self) {
        if self.driver.lock().is_some() {
            self.terminate();
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("pids", &self.pids())
            .field("closed", &self.closed.load(Ordering::SeqCst))
            .finish()
    }
}
