//! [`TaskFuture`]: the handle on one task of an [`Executor`](crate::Executor), both
//! blocking (`result`, `result_timeout`) and a [`std::future::Future`], and the [`Shared`]
//! state through which the pool's result path tells it (and `as_completed`) that the task
//! is done.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::pool::{AsyncResult, Claim, Hook};

/// What a task's future shares with the pool's result path.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Whether the task may still start (its `cancel` and the driver race on it).
    pub(crate) claim: Arc<Claim>,
    watch: Mutex<Watch>,
}

/// Who is to be told when the task is done.
#[derive(Debug, Default)]
struct Watch {
    /// Done: its outcome is on its channel, or it was cancelled, or it never will be.
    settled: bool,
    /// The waker of the last poll that found it not done.
    waker: Option<Waker>,
    /// The `as_completed` iterators waiting for it, and its index in each.
    watchers: Vec<(Sender<usize>, usize)>,
}

impl Shared {
    /// The task is done: every waker and watcher is told, once.
    pub(crate) fn settle(&self) {
        let (waker, watchers) = {
            let mut watch = self.watch.lock();
            if watch.settled {
                return;
            }
            watch.settled = true;
            (watch.waker.take(), std::mem::take(&mut watch.watchers))
        };
        // Told outside the lock: a waker may poll at once, on this thread.
        for (tx, index) in watchers {
            // An `as_completed` dropped early listens no more: nothing to do.
            let _ = tx.send(index);
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// `tx` gets `index` when the task is done (at once if it is).
    pub(crate) fn watch(&self, tx: Sender<usize>, index: usize) {
        let mut watch = self.watch.lock();
        if watch.settled {
            drop(watch);
            let _ = tx.send(index);
        } else {
            watch.watchers.push((tx, index));
        }
    }

    /// Keeps `waker` to wake when the task is done; whether it is done already.
    fn register(&self, waker: &Waker) -> bool {
        let mut watch = self.watch.lock();
        if !watch.settled {
            match &watch.waker {
                Some(kept) if kept.will_wake(waker) => {}
                _ => watch.waker = Some(waker.clone()),
            }
        }
        watch.settled
    }
}

/// The hook on the task's sink: the pool's result path calls it once the outcome is on the
/// task's channel. If the sink goes without an outcome (the driver ended), its drop tells
/// the waiters all the same, and the future finds the channel closed.
pub(crate) struct Notifier(pub(crate) Arc<Shared>);

impl Hook for Notifier {
    fn delivered(&self) {
        self.0.settle();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.0.settle();
    }
}

/// The result of [`Executor::submit`](crate::Executor::submit): a task that runs in the
/// executor's workers, as Python's `concurrent.futures.Future`.
///
/// Wait for it by blocking ([`result`](Self::result),
/// [`result_timeout`](Self::result_timeout)), or `.await` it: it is a
/// [`std::future::Future`] that the pool's result path wakes, so it needs no runtime, and
/// works under any (tokio, async-std, a hand-written loop). It never waits in `poll`.
///
/// ```
/// use proc_patterns::Executor;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let ex = Executor::new(2)?;
/// let future = ex.submit(square, 7)?;
/// assert_eq!(future.result()?, 49);
/// assert!(future.done());
/// assert!(!future.cancel()); // it ran: too late
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub struct TaskFuture<R> {
    result: AsyncResult<R>,
    shared: Arc<Shared>,
}

impl<R: DeserializeOwned> TaskFuture<R> {
    pub(crate) fn new(result: AsyncResult<R>, shared: Arc<Shared>) -> Self {
        TaskFuture { result, shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Waits for the task and returns its value, or its error: [`Error::TaskPanicked`],
    /// [`Error::WorkerDied`] (its worker was killed), [`Error::Cancelled`],
    /// [`Error::TimedOut`] (past the deadline of [`Executor::map`](crate::Executor::map)).
    /// As often as you like.
    pub fn result(&self) -> Result<R> {
        if self.shared.claim.is_cancelled() {
            return Err(Error::Cancelled);
        }
        self.result.get()
    }

    /// As [`result`](Self::result), waiting at most `timeout`: [`Error::Timeout`] if the
    /// task has not finished by then (it runs on: ask again later), as Python's
    /// `result(timeout)` raises `TimeoutError`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let ex = proc_patterns::Executor::new(1)?;
    /// let future = ex.submit(nap, 300)?;
    /// assert!(matches!(future.result_timeout(Duration::ZERO), Err(proc_patterns::Error::Timeout)));
    /// assert_eq!(future.result_timeout(Duration::from_secs(60))?, 300);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<R> {
        if self.shared.claim.is_cancelled() {
            return Err(Error::Cancelled);
        }
        self.result.get_timeout(timeout)
    }

    /// Whether the task is done: finished (its value or its error is there) or cancelled.
    /// Never waits.
    pub fn done(&self) -> bool {
        self.shared.claim.is_cancelled() || self.result.ready()
    }

    /// Whether a worker is running the task now (Python's `running()`).
    pub fn running(&self) -> bool {
        self.shared.claim.is_running() && !self.result.ready()
    }

    /// Whether the task was cancelled (Python's `cancelled()`).
    pub fn cancelled(&self) -> bool {
        self.shared.claim.is_cancelled()
    }

    /// Cancels the task if no worker has started it: `true` then (and on a second call),
    /// and its result is [`Error::Cancelled`]; `false` if it is running or done, as
    /// Python's `cancel()`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let ex = proc_patterns::Executor::new(1)?;
    /// let busy = ex.submit(nap, 500)?;
    /// let queued = ex.submit(nap, 0)?; // waits for the one worker
    /// assert!(queued.cancel());
    /// assert!(matches!(queued.result(), Err(proc_patterns::Error::Cancelled)));
    /// assert_eq!(busy.result()?, 500);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        if self.shared.claim.is_cancelled() {
            return true;
        }
        if self.result.ready() {
            return false;
        }
        let cancelled = self.shared.claim.cancel();
        if cancelled {
            self.shared.settle();
        }
        cancelled
    }
}

impl<R: DeserializeOwned> Future for TaskFuture<R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        let this = self.get_mut();
        if this.done() {
            return Poll::Ready(this.result());
        }
        // The waker is kept before looking again, so that an outcome delivered in between
        // is either seen here or wakes it.
        if this.shared.register(cx.waker()) && this.done() {
            return Poll::Ready(this.result());
        }
        Poll::Pending
    }
}

impl<R> std::fmt::Debug for TaskFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture")
            .field("cancelled", &self.shared.claim.is_cancelled())
            .field("result", &self.result)
            .finish()
    }
}
