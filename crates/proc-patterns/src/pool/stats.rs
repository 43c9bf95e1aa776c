//! [`PoolStats`]: counters a caller can poll, for its own progress display, and the
//! [`Counters`] behind them, kept where tasks are submitted (the feeder), settled (the
//! sink) and workers replaced (the driver).

use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`Pool`](crate::Pool) has done so far: [`Pool::stats`](crate::Pool::stats).
///
/// Every task submitted is eventually either completed or failed, so
/// `submitted - completed - failed` is the number of tasks not finished yet.
///
/// ```
/// fn check(x: u32) -> u32 {
///     assert!(x != 3, "three fails");
///     x
/// }
///
/// let pool = proc_patterns::Pool::new(2)?;
/// let results: Vec<_> = pool.imap(check, 0..5).collect();
/// assert_eq!(results.len(), 5);
/// let stats = pool.stats();
/// assert_eq!((stats.submitted, stats.completed, stats.failed), (5, 4, 1));
/// assert_eq!(stats.workers_replaced, 0);
/// # Ok::<(), proc_patterns::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Tasks handed to the pool (by every call: `map`, `imap`, `apply`, …), including
    /// those that failed at once (a closed pool).
    pub submitted: u64,
    /// Tasks whose function returned (their value may not have been taken yet).
    pub completed: u64,
    /// Tasks that failed: a panic, the death of their worker, or work the pool could not
    /// run (closed, terminated, an initializer that kept failing, an argument that did
    /// not encode).
    pub failed: u64,
    /// Workers started in place of one that ended: killed, retired after
    /// `maxtasksperchild`, or whose initializer failed.
    pub workers_replaced: u64,
}

/// The pool's counters, shared by its handle, its jobs' sinks and its driver.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    workers_replaced: AtomicU64,
}

impl Counters {
    pub(crate) fn submitted(&self, tasks: usize) {
        self.submitted.fetch_add(tasks as u64, Ordering::Relaxed);
    }

    /// `tasks` have finished, `failed` of them (at most `tasks`) with an error.
    pub(crate) fn finished(&self, tasks: usize, failed: u64) {
        let failed = failed.min(tasks as u64);
        self.completed
            .fetch_add(tasks as u64 - failed, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }

    pub(crate) fn worker_replaced(&self) {
        self.workers_replaced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            workers_replaced: self.workers_replaced.load(Ordering::Relaxed),
        }
    }
}
