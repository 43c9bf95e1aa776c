//! [`PoolBuilder`]: how a [`Pool`] is configured and started.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use nix::fcntl::OFlag;
use parking_lot::Mutex;
use proc_core::StartMethod;
use proc_core::internal::CodeAddress;

use super::Pool;
use super::driver::{Driver, Worker};
use super::spares::Spares;
use super::worker::{WorkerConfig, WorkerSettings};
use crate::error::{Error, Result};

/// Configures a [`Pool`]: [`Pool::builder`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct PoolBuilder {
    pub(super) processes: usize,
    pub(super) max_tasks: Option<usize>,
    pub(super) initializer: Option<fn()>,
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
        let (alive, driver_alive) = crossbeam_channel::bounded::<Infallible>(0);
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
