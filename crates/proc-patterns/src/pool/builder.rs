//! [`PoolBuilder`]: how a [`Pool`] is configured and started.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use nix::fcntl::OFlag;
use parking_lot::Mutex;
use proc_core::StartMethod;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::driver::{Driver, Shared, Worker};
use super::handle::Pool;
use super::initializer::InitializerSpec;
use super::spares::Spares;
use super::stats::Counters;
use super::worker::{WorkerConfig, WorkerSettings};
use crate::error::{Error, Result};

/// Configures a [`Pool`]: [`Pool::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PoolBuilder {
    pub(super) processes: usize,
    pub(super) max_tasks: Option<usize>,
    pub(super) initializer: Option<InitializerSpec>,
    pub(super) chunksize: Option<usize>,
    pub(super) start_method: Option<StartMethod>,
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

    /// A function each worker calls once when it starts, before its first task.
    ///
    /// A worker whose initializer panics ends, and a replacement is started after a wait
    /// that doubles with each failure in a row (from 10 ms, up to a second). After the
    /// number of workers plus 8 failures in a row, the pool gives up: its pending and later
    /// calls fail with [`Error::InitializerFailed`], with the panic's message. An
    /// initializer that fails now and then (a file or a server not there yet) costs only
    /// the waits: one that returns ends the run of failures.
    pub fn initializer(mut self, initializer: fn()) -> Self {
        self.initializer = Some(InitializerSpec::plain(initializer));
        self
    }

    /// As [`initializer`](Self::initializer), for a function of one argument: each worker
    /// calls `initializer(args.clone())`, Python's `initializer` with `initargs`. The
    /// argument travels encoded (any serde type; a tuple for several), under every start
    /// method; one that does not encode makes [`build`](Self::build) fail.
    ///
    /// ```
    /// use std::sync::OnceLock;
    ///
    /// static GREETING: OnceLock<String> = OnceLock::new();
    ///
    /// fn set_greeting((word, times): (String, usize)) {
    ///     GREETING.set(word.repeat(times)).unwrap();
    /// }
    ///
    /// fn greet(name: String) -> String {
    ///     format!("{} {name}", GREETING.get().unwrap())
    /// }
    ///
    /// let pool = proc_patterns::Pool::builder()
    ///     .processes(2)
    ///     .initializer_with(set_greeting, ("hi".to_string(), 2))
    ///     .build()?;
    /// assert_eq!(pool.apply(greet, "小王".to_string())?, "hihi 小王");
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn initializer_with<A>(mut self, initializer: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned,
    {
        self.initializer = Some(InitializerSpec::with(initializer, &args));
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
            .as_ref()
            .map(InitializerSpec::named)
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
            .map(|i| Worker::start(format!("PoolWorker-{i}"), &config))
            .collect::<Result<Vec<_>>>()?;
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| Error::io("pipe2 for the pool's driver", e))?;
        let (commands, receiver) = crossbeam_channel::unbounded();
        let pids = Arc::new(Mutex::new(Vec::new()));
        let spares = Arc::new(Spares::default());
        let counters = Arc::new(Counters::default());
        let (alive, driver_alive) = crossbeam_channel::bounded::<Infallible>(0);
        let driver = Driver::new(
            receiver,
            wake_read,
            workers,
            config,
            Shared {
                pids: Arc::clone(&pids),
                spares: Arc::clone(&spares),
                counters: Arc::clone(&counters),
            },
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
            counters,
        })
    }
}
