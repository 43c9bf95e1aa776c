//! [`Pool`]: a fixed number of worker processes that run `fn(A) -> R` tasks, as Python's
//! `multiprocessing.Pool`.
//!
//! The layout, one concern per file, each using only those listed below it:
//! - this file: the pool's handle and the calls a user makes (`map`, `imap`, `apply`, …);
//! - `driver`: the thread of the pool's process that hands chunks to workers, collects
//!   results and replaces workers that die;
//! - `results`: [`AsyncResult`], [`MapIter`] and [`UnorderedIter`], which decode results in
//!   the caller's thread;
//! - `worker`: the loop a worker process runs;
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

mod call;
mod driver;
mod mailbox;
mod message;
mod outcome;
mod results;
mod spares;
mod worker;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use nix::fcntl::OFlag;
use parking_lot::Mutex;
use proc_core::StartMethod;
use proc_core::internal::CodeAddress;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use results::{AsyncResult, MapIter, UnorderedIter};

use crate::error::{Error, Result};
use driver::{Command, Driver, PendingChunk, Worker};
use message::{BODY, ToWorker, seal};
use outcome::{ChunkDone, ChunkFailure};
use spares::Spares;
use worker::{WorkerConfig, WorkerSettings};

/// A pool of worker processes, as Python's `multiprocessing.Pool`.
///
/// Task functions are plain `fn(A) -> R` (a function item or a closure that captures
/// nothing), with `A` and `R` any serde types: workers run this executable (forked,
/// spawned or served, by the [start method](PoolBuilder::start_method) in force), so a
/// function is named by its offset in it. Work is sent in chunks (see
/// [`PoolBuilder::chunksize`]) so that small tasks are not dominated by the cost of
/// sending them.
///
/// ```
/// use proc_patterns::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=5)?, [1, 4, 9, 16, 25]);
/// assert_eq!(pool.apply(square, 9)?, 81);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), proc_patterns::Error>(())
/// ```
///
/// ## Failures
/// A task that panics yields [`Error::TaskPanicked`] with the panic's message, for that
/// task only: the others and the pool go on. A worker that dies while it holds a chunk
/// (killed from outside, for example) yields [`Error::WorkerDied`] for that chunk's tasks,
/// and a fresh worker takes its place. A dropped pool terminates its workers and reaps
/// them: no zombies, no file descriptors left behind.
///
/// ## Threads
/// Under the Fork start method, the pool forks its first workers before it starts its one
/// thread (the driver), so creating a pool in a single-threaded program forks from a single
/// thread. Workers that replace dead ones, or those ended by `maxtasksperchild`, are forked
/// from the driver thread: proc-core then prints its one warning about forking a
/// multi-threaded process. Under Spawn and ForkServer nothing is forked from this process,
/// so there is nothing to warn about.
///
/// ## Memory
/// Where the allocator is glibc's, a worker keeps up to 64 MiB of the memory its tasks and
/// chunks freed instead of handing it back to the kernel at once, so that the next chunk's
/// buffers are not page-faulted in again (`mallopt`, in the worker only; the pool's own
/// process is left alone).
pub struct Pool {
    commands: Sender<Command>,
    /// The write end of the driver's wake-up pipe.
    wake: OwnedFd,
    driver: Mutex<Option<JoinHandle<()>>>,
    pids: Arc<Mutex<Vec<u32>>>,
    processes: usize,
    chunksize: Option<usize>,
    closed: AtomicBool,
    /// Numbers the chunks, so that a worker's reply is matched to the chunk it holds.
    next_id: AtomicU64,
    /// Message buffers the driver has sent, for the next chunks.
    spares: Arc<Spares>,
    /// Disconnected once the driver has ended (its sender is dropped with it).
    driver_alive: Receiver<Infallible>,
}

/// Configures a [`Pool`]: [`Pool::builder`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct PoolBuilder {
    processes: usize,
    max_tasks: Option<usize>,
    initializer: Option<fn()>,
    chunksize: Option<usize>,
    start_method: Option<StartMethod>,
}

impl PoolBuilder {
    /// The number of worker processes (default: [`cpu_count`](proc_core::cpu_count)).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = processes;
        self
    }

    /// A worker ends after this many tasks and a fresh one takes its place (default: never).
    /// As in Python, a chunk of `map` counts as one task.
    pub fn maxtasksperchild(mut self, tasks: usize) -> Self {
        self.max_tasks = Some(tasks);
        self
    }

    /// A function each worker calls once when it starts.
    pub fn initializer(mut self, initializer: fn()) -> Self {
        self.initializer = Some(initializer);
        self
    }

    /// The number of inputs sent to a worker at a time by `map`, `imap` and
    /// `imap_unordered`. Default, as Python's `map`: the inputs divided by four times the
    /// number of workers, rounded up.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = Some(chunksize);
        self
    }

    /// How the workers are started (default: the start method in force when the pool is
    /// built, see [`proc_core::set_start_method`]). Under Spawn and ForkServer the task
    /// functions and the initializer must be functions of this executable (not of a
    /// shared library).
    ///
    /// ```
    /// use proc_core::StartMethod;
    ///
    /// fn cube(x: i64) -> i64 {
    ///     x * x * x
    /// }
    ///
    /// let pool = proc_patterns::Pool::builder()
    ///     .processes(2)
    ///     .start_method(StartMethod::Spawn)
    ///     .build()?;
    /// assert_eq!(pool.map(cube, [1, 2, 3])?, [1, 8, 27]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts the workers and the pool's driver thread.
    ///
    /// ```
    /// fn hello() {
    ///     // runs once in each worker as it starts
    /// }
    /// fn pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// let pool = proc_patterns::Pool::builder()
    ///     .processes(2)
    ///     .maxtasksperchild(1)
    ///     .initializer(hello)
    ///     .chunksize(1)
    ///     .build()?;
    /// let pids = pool.map(pid, vec![(); 4])?;
    /// // Each worker ran one task and was replaced: four different processes.
    /// assert_eq!(pids.iter().collect::<std::collections::HashSet<_>>().len(), 4);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool> {
        if self.processes == 0 {
            return Err(Error::InvalidArgument {
                reason: "a pool needs at least one process",
            });
        }
        if self.max_tasks == Some(0) || self.chunksize == Some(0) {
            return Err(Error::InvalidArgument {
                reason: "maxtasksperchild and chunksize must be at least 1",
            });
        }
        let initializer = self
            .initializer
            .map(|f| CodeAddress::of(f as usize))
            .transpose()?;
        let config = WorkerConfig {
            start_method: self
                .start_method
                .unwrap_or_else(proc_core::get_start_method),
            settings: WorkerSettings {
                initializer,
                max_tasks: self.max_tasks.map(|n| n as u64),
            },
        };
        // The workers are forked first, while this may still be the only thread.
        let workers = (1..=self.processes)
            .map(|i| Worker::start(format!("PoolWorker-{i}"), config))
            .collect::<Result<Vec<_>>>()?;
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| Error::io("pipe2 for the pool's driver", e))?;
        let (commands, receiver) = crossbeam_channel::unbounded();
        let pids = Arc::new(Mutex::new(Vec::new()));
        let spares = Arc::new(Spares::default());
        let (alive, driver_alive) = crossbeam_channel::bounded(0);
        let driver = Driver::new(
            receiver,
            wake_read,
            workers,
            config,
            Arc::clone(&pids),
            Arc::clone(&spares),
            alive,
        );
        let driver = std::thread::Builder::new()
            .name("multiproc-pool".into())
            .spawn(move || driver.run())
            .map_err(|e| Error::io("starting the pool's driver thread", e))?;
        Ok(Pool {
            commands,
            wake: wake_write,
            driver: Mutex::new(Some(driver)),
            pids,
            processes: self.processes,
            chunksize: self.chunksize,
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            spares,
            driver_alive,
        })
    }
}

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
        self.map_with(f, inputs, self.chunksize)
    }

    /// As [`map`](Self::map), with `chunksize` inputs sent to a worker at a time.
    pub fn map_chunked<A, R, I>(&self, f: fn(A) -> R, inputs: I, chunksize: usize) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.map_with(f, inputs, Some(chunksize))
    }

    fn map_with<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (sink, rx) = crossbeam_channel::unbounded();
        let mut in_order = InOrder::new(rx, self);
        self.submit(f, inputs, chunksize, sink, &mut in_order);
        in_order.finish()
    }

    /// Submits every chunk at once; the results' channel and the chunks' lengths.
    fn submit_all<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
    ) -> (Receiver<ChunkDone>, Vec<usize>)
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (sink, rx) = crossbeam_channel::unbounded();
        let mut lengths = Lengths::default();
        self.submit(f, inputs, chunksize, sink, &mut lengths);
        (rx, lengths.0)
    }

    /// Calls `f` on every input; the results come in input order, each as soon as it and
    /// those before it are done. Each is a `Result`: a failed task does not end the others,
    /// and work that could not be submitted (a closed pool) yields an error per task.
    ///
    /// ```
    /// fn check(x: i32) -> i32 {
    ///     assert!(x != 2, "two is out");
    ///     x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let results: Vec<_> = pool.imap(check, [1, 2, 3]).collect();
    /// assert_eq!(results[0].as_ref().unwrap(), &1);
    /// assert!(results[1].as_ref().unwrap_err().to_string().contains("two is out"));
    /// assert_eq!(results[2].as_ref().unwrap(), &3);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn imap<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> MapIter<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (rx, lens) = self.submit_all(f, inputs, self.chunksize);
        MapIter::new(rx, lens)
    }

    /// As [`imap`](Self::imap), with `chunksize` inputs sent to a worker at a time.
    pub fn imap_chunked<A, R, I>(&self, f: fn(A) -> R, inputs: I, chunksize: usize) -> MapIter<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (rx, lens) = self.submit_all(f, inputs, Some(chunksize));
        MapIter::new(rx, lens)
    }

    /// Calls `f` on every input; the results come as tasks finish, in any order.
    ///
    /// ```
    /// fn cube(x: u32) -> u32 {
    ///     x * x * x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(2)?;
    /// let mut cubes: Vec<u32> = pool.imap_unordered(cube, 1..=4).collect::<Result<_, _>>()?;
    /// cubes.sort();
    /// assert_eq!(cubes, [1, 8, 27, 64]);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn imap_unordered<A, R, I>(&self, f: fn(A) -> R, inputs: I) -> UnorderedIter<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (rx, lens) = self.submit_all(f, inputs, self.chunksize);
        UnorderedIter::new(rx, lens)
    }

    /// As [`imap_unordered`](Self::imap_unordered), with `chunksize` inputs sent to a
    /// worker at a time (1: a result for each input as soon as it is done).
    pub fn imap_unordered_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: usize,
    ) -> UnorderedIter<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let (rx, lens) = self.submit_all(f, inputs, Some(chunksize));
        UnorderedIter::new(rx, lens)
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
        let (rx, _) = self.submit_all(f, [arg], Some(1));
        AsyncResult::new(rx)
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

    /// Encodes the inputs in chunks and hands each to the driver as soon as it is encoded,
    /// so that the workers start on the first chunks while the rest are being encoded. The
    /// chunks' results come on `sink`'s channel; `intake` learns of each chunk before it
    /// goes (and may wait for results first). What cannot be submitted (a closed pool,
    /// arguments that do not encode, a chunksize of 0) fails its tasks through the same
    /// channel, so that each task reports its own error.
    fn submit<A, R, I>(
        &self,
        f: fn(A) -> R,
        inputs: I,
        chunksize: Option<usize>,
        sink: Sender<ChunkDone>,
        intake: &mut impl Intake,
    ) where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let inputs = inputs.into_iter();
        let mut fail_all = |failure: ChunkFailure, inputs: I::IntoIter| {
            intake.chunk(inputs.count(), 0);
            let _ = sink.send(ChunkDone {
                index: 0,
                outcome: Err(failure),
            });
        };
        if chunksize == Some(0) {
            let reason = "chunksize must be at least 1";
            return fail_all(ChunkFailure::Invalid(reason), inputs);
        }
        if self.closed.load(Ordering::SeqCst) {
            return fail_all(ChunkFailure::Closed, inputs);
        }
        let call: call::Call = call::call_chunk::<A, R>;
        let named = CodeAddress::of(call as usize)
            .and_then(|call| CodeAddress::of(f as usize).map(|func| (call, func)));
        let (call, func) = match named {
            Ok(named) => named,
            Err(e) => return fail_all(ChunkFailure::Other(e.to_string()), inputs),
        };
        // The number of inputs, when the iterator knows it: the default chunksize needs it,
        // and the intake may set room aside for the results.
        let known = match inputs.size_hint() {
            (len, Some(upper)) if len == upper => Some(len),
            _ => None,
        };
        match (chunksize, known) {
            (Some(chunksize), _) => {
                if let Some(len) = known {
                    intake.expect(len);
                }
                self.send_chunks(inputs, chunksize, call, func, &sink, intake);
            }
            (None, Some(len)) => {
                intake.expect(len);
                let chunksize = default_chunksize(len, self.processes);
                self.send_chunks(inputs, chunksize, call, func, &sink, intake);
            }
            (None, None) => {
                let inputs: Vec<A> = inputs.collect();
                intake.expect(inputs.len());
                let chunksize = default_chunksize(inputs.len(), self.processes);
                self.send_chunks(inputs.into_iter(), chunksize, call, func, &sink, intake);
            }
        }
    }

    /// Takes `chunksize` inputs at a time, encodes them straight into the message that
    /// will go to a worker, and hands the message to the driver. Only one chunk of inputs
    /// is held at a time.
    fn send_chunks<A: Serialize>(
        &self,
        mut inputs: impl Iterator<Item = A>,
        chunksize: usize,
        call: CodeAddress,
        func: CodeAddress,
        sink: &Sender<ChunkDone>,
        intake: &mut impl Intake,
    ) {
        let mut chunk: Vec<A> = Vec::new();
        // A guess at the next message's size (the last one's, and some): one allocation
        // per message, not a dozen as it grows.
        let mut expected = 0;
        for index in 0.. {
            chunk.extend(inputs.by_ref().take(chunksize));
            if chunk.is_empty() {
                return;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut message = self.spares.take();
            message.reserve(expected);
            let sealed = BODY
                .encode_into(&chunk[..], &mut message)
                .and_then(|()| seal(&mut message, &ToWorker::Chunk { id, call, func }));
            intake.chunk(chunk.len(), message.len());
            chunk.clear();
            match sealed {
                Ok(()) => {
                    expected = message.len() + message.len() / 8;
                    self.hand_over(PendingChunk {
                        index,
                        id,
                        message,
                        sink: sink.clone(),
                    });
                }
                Err(e) => {
                    let _ = sink.send(ChunkDone {
                        index,
                        outcome: Err(ChunkFailure::Codec(e)),
                    });
                }
            }
        }
    }
}

impl Pool {
    /// Gives a chunk to the driver; if it has ended (terminated), fails it.
    fn hand_over(&self, chunk: PendingChunk) {
        match self.commands.send(Command::Submit(chunk)) {
            Ok(()) => {
                // A full pipe already holds a wake-up.
                let _ = nix::unistd::write(&self.wake, &[1]);
            }
            Err(crossbeam_channel::SendError(command)) => {
                if let Command::Submit(chunk) = command {
                    let _ = chunk.sink.send(ChunkDone {
                        index: chunk.index,
                        outcome: Err(ChunkFailure::Closed),
                    });
                }
            }
        }
    }
}

/// What learns of a job's chunks as they are submitted.
trait Intake {
    /// The job has `len` inputs (when the iterator knows).
    fn expect(&mut self, _len: usize) {}

    /// The next chunk, of `len` tasks and a message of `bytes`, is about to be handed over.
    fn chunk(&mut self, len: usize, bytes: usize);
}

/// The intake of `imap`, `imap_unordered` and `apply_async`: every chunk goes at once (their
/// results are read later, by an iterator or an [`AsyncResult`]); it notes the lengths.
#[derive(Default)]
struct Lengths(Vec<usize>);

impl Intake for Lengths {
    fn chunk(&mut self, len: usize, _: usize) {
        self.0.push(len);
    }
}

/// The intake of `map`: a few chunks out at a time, the results of the first decoded while
/// the next wait, each chunk's values straight onto the end of one vector as its turn
/// comes.
///
/// A new chunk waits while more than `window` chunks (enough that every worker has one to
/// run and one waiting) and at least [`BYTES_OUT`] of messages are out: then the messages
/// of one map are a handful of buffers used again and again (the pool keeps the sent ones
/// for the next chunks), not a fresh buffer for every chunk to be page-faulted in, while
/// small chunks (a chunksize of 1) still go without a round trip each. A chunk that arrives
/// before its turn is decoded at once all the same (the caller's thread would otherwise
/// wait with work at hand) and moved in at its turn.
struct InOrder<R> {
    rx: Receiver<ChunkDone>,
    lens: Vec<usize>,
    /// The message bytes of each chunk, and the sum of those out.
    sizes: Vec<usize>,
    bytes_out: usize,
    values: Vec<R>,
    early: BTreeMap<usize, Vec<R>>,
    /// The next chunk to append to `values`.
    next: usize,
    window: usize,
    /// The error of the first task known to have failed: the job's outcome.
    failed: Option<Error>,
    /// Where the results' buffers go once decoded, for the driver to receive into again.
    spares: Arc<Spares>,
    /// Disconnected when the pool's driver ends.
    driver_alive: Receiver<Infallible>,
}

impl<R: DeserializeOwned> InOrder<R> {
    fn new(rx: Receiver<ChunkDone>, pool: &Pool) -> Self {
        InOrder {
            rx,
            lens: Vec::new(),
            sizes: Vec::new(),
            bytes_out: 0,
            values: Vec::new(),
            early: BTreeMap::new(),
            next: 0,
            window: 2 * pool.processes.max(1),
            failed: None,
            spares: Arc::clone(&pool.spares),
            driver_alive: pool.driver_alive.clone(),
        }
    }

    /// Chunks handed over whose results have not been taken yet.
    fn out(&self) -> usize {
        self.lens.len() - self.next - self.early.len()
    }

    /// Takes one result (waiting for it) and stores its values. The job's own channel stays
    /// open while chunks are being submitted (this side holds a sender for them), so it
    /// cannot say by itself that the driver has ended: `driver_alive` does.
    fn take_one(&mut self) {
        let done = crossbeam_channel::select! {
            recv(self.rx) -> done => done.ok(),
            // The driver has ended; whatever it sent before is in the channel already.
            recv(self.driver_alive) -> _ => self.rx.try_recv().ok(),
        };
        match done {
            Some(done) => self.store(done),
            None => self.failed = Some(Error::PoolTerminated),
        }
    }

    fn store(&mut self, done: ChunkDone) {
        let Some(&len) = self.lens.get(done.index) else {
            return;
        };
        let taken = done.index == self.next
            || (done.index > self.next && !self.early.contains_key(&done.index));
        if !taken {
            return;
        }
        self.bytes_out -= self.sizes[done.index];
        let appended = if done.index == self.next {
            results::append_values(done.outcome, len, &mut self.values, &self.spares).map(|()| {
                self.next += 1;
                while let Some(chunk) = self.early.remove(&self.next) {
                    self.values.extend(chunk);
                    self.next += 1;
                }
            })
        } else {
            let mut chunk = Vec::with_capacity(len);
            results::append_values(done.outcome, len, &mut chunk, &self.spares)
                .map(|()| drop(self.early.insert(done.index, chunk)))
        };
        if let Err(e) = appended {
            self.failed = Some(e);
        }
    }

    /// Every result, once the last chunk has been handed over.
    fn finish(mut self) -> Result<Vec<R>> {
        while self.failed.is_none() && self.next < self.lens.len() {
            // `sink` is gone: the channel closes once the driver has dropped every chunk.
            match self.rx.recv() {
                Ok(done) => self.store(done),
                Err(_) => self.failed = Some(Error::PoolTerminated),
            }
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.values),
        }
    }
}

impl<R: DeserializeOwned> Intake for InOrder<R> {
    fn expect(&mut self, len: usize) {
        // A hint from the caller's iterator, which may be wrong: room that cannot be had
        // is not an error.
        let _ = self.values.try_reserve_exact(len);
    }

    fn chunk(&mut self, len: usize, bytes: usize) {
        self.lens.push(len);
        self.sizes.push(bytes);
        self.bytes_out += bytes;
        // Once a task has failed, the rest go without waiting: the job's outcome is known,
        // and the other tasks run on all the same.
        while self.failed.is_none() && self.out() > self.window && self.bytes_out >= BYTES_OUT {
            self.take_one();
        }
    }
}

/// The message bytes a `map` may have out before it waits for results, once it has more
/// chunks out than its window.
const BYTES_OUT: usize = 512 << 10;

/// Python's default for `map`: the inputs divided by four times the workers, rounded up, so
/// that each worker gets about four chunks (a balance between the cost of sending a chunk and
/// a worker left idle at the end).
fn default_chunksize(inputs: usize, processes: usize) -> usize {
    inputs.div_ceil(4 * processes.max(1)).max(1)
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

#[cfg(test)]
mod tests {
    use super::default_chunksize;

    #[test]
    fn the_default_chunksize_is_pythons_inputs_over_four_times_the_workers_rounded_up() {
        assert_eq!(default_chunksize(200_000, 2), 25_000);
        assert_eq!(default_chunksize(10, 2), 2);
        assert_eq!(default_chunksize(9, 2), 2);
        assert_eq!(default_chunksize(1, 8), 1);
        assert_eq!(default_chunksize(0, 2), 1);
    }
}
