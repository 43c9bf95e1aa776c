//! [`Callbacks`]: what runs in the pool's process when a task of `apply_async_with`
//! finishes, or the whole job of `map_async_with`, as Python's `callback` and
//! `error_callback`.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::outcome::{ChunkFailure, Results};
use super::results::{append_decoded, decode_chunk};
use super::sink::Hook;
use crate::error::Error;

/// The callbacks of [`Pool::apply_async_with`](crate::Pool::apply_async_with) and
/// [`Pool::map_async_with`](crate::Pool::map_async_with) (a `Callbacks<[R]>`, whose
/// `on_success` gets every value as a slice, in input order, once all are done, and whose `on_error` gets the first error
/// only, as Python's `map_async`): `on_success`
/// gets the task's value, `on_error` its error (a panic, the worker's death, the pool's
/// termination or closing), as Python's `callback` and `error_callback`.
///
/// ## Where they run
/// In the pool's own process, on the pool's driver thread (Python runs them on its
/// result-handler thread), one at a time in the order the tasks finish, and before the
/// task's [`AsyncResult`](crate::AsyncResult) is ready. A callback holds up the driver:
/// keep it short and never block in it (no waiting on another result of the same pool: it
/// would wait forever). A callback that panics is reported on stderr and the pool goes on.
/// When the task cannot even be submitted (a closed pool), `on_error` runs at once, in the
/// caller's thread.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use proc_patterns::{Callbacks, Pool};
///
/// static TOTAL: AtomicU64 = AtomicU64::new(0);
///
/// fn add_to_total(x: &u64) {
///     TOTAL.fetch_add(*x, Ordering::SeqCst);
/// }
///
/// fn report(e: &proc_patterns::Error) {
///     eprintln!("a task failed: {e}");
/// }
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// let callbacks = Callbacks::new().on_success(add_to_total).on_error(report);
/// let pending: Vec<_> = (1..=3).map(|x| pool.apply_async_with(square, x, callbacks)).collect();
/// for p in &pending {
///     p.wait();
/// }
/// assert_eq!(TOTAL.load(Ordering::SeqCst), 1 + 4 + 9);
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub struct Callbacks<R: ?Sized> {
    on_success: Option<fn(&R)>,
    on_error: Option<fn(&Error)>,
}

impl<R: ?Sized> Callbacks<R> {
    /// No callbacks yet.
    pub fn new() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
        }
    }

    /// Runs `callback` with the task's value when it returns (Python's `callback`).
    pub fn on_success(mut self, callback: fn(&R)) -> Self {
        self.on_success = Some(callback);
        self
    }

    /// Runs `callback` with the task's error when it fails (Python's `error_callback`).
    pub fn on_error(mut self, callback: fn(&Error)) -> Self {
        self.on_error = Some(callback);
        self
    }
}

impl<R: DeserializeOwned> Hook for Callbacks<R> {
    fn chunk_done(&self, _: usize, len: usize, outcome: Result<&Results, &ChunkFailure>) {
        if self.on_success.is_none() && self.on_error.is_none() {
            return;
        }
        for result in decode_chunk::<R>(outcome, len) {
            match (result, self.on_success, self.on_error) {
                (Ok(value), Some(on_success), _) => on_success(&value),
                (Err(error), _, Some(on_error)) => on_error(&error),
                _ => {}
            }
        }
    }
}

impl<R: ?Sized> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks::new()
    }
}

impl<R: ?Sized> Clone for Callbacks<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: ?Sized> Copy for Callbacks<R> {}

impl<R: ?Sized> std::fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_success", &self.on_success.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

/// The hook of `map_async_with`: each chunk's values are decoded as it comes back (so the
/// job's values are decoded twice: here and by `get`); `on_success` runs once with all of
/// them, in input order, or `on_error` once with the first error.
pub(crate) struct JobCallbacks<R> {
    callbacks: Callbacks<[R]>,
    state: Mutex<JobState<R>>,
}

struct JobState<R> {
    /// The values of the chunks come back, by index.
    chunks: BTreeMap<usize, Vec<R>>,
    /// The number of chunks, once they have all been handed over.
    total: Option<usize>,
    /// A callback has run (or none will): nothing more to do.
    settled: bool,
}

impl<R> JobCallbacks<R> {
    pub(crate) fn new(callbacks: Callbacks<[R]>) -> Self {
        JobCallbacks {
            callbacks,
            state: Mutex::new(JobState {
                chunks: BTreeMap::new(),
                total: None,
                settled: false,
            }),
        }
    }

    /// Every chunk has been handed over: there are `total`.
    pub(crate) fn complete(&self, total: usize) {
        let mut state = self.state.lock();
        state.total = Some(total);
        self.settle_if_done(state);
    }

    /// Runs `on_success` if every chunk is back; the lock is let go first, so that a
    /// callback cannot deadlock on it.
    fn settle_if_done(&self, mut state: parking_lot::MutexGuard<'_, JobState<R>>) {
        if state.settled || state.total != Some(state.chunks.len()) {
            return;
        }
        state.settled = true;
        let values: Vec<R> = std::mem::take(&mut state.chunks)
            .into_values()
            .flatten()
            .collect();
        drop(state);
        if let Some(on_success) = self.callbacks.on_success {
            on_success(&values);
        }
    }
}

impl<R: DeserializeOwned + Send> Hook for JobCallbacks<R> {
    fn chunk_done(&self, index: usize, len: usize, outcome: Result<&Results, &ChunkFailure>) {
        let mut state = self.state.lock();
        if state.settled {
            return;
        }
        let mut values = Vec::new();
        let decoded = match outcome {
            Ok(results) => append_decoded(results, len, &mut values),
            Err(failure) => Err(failure.to_error()),
        };
        match decoded {
            Ok(()) => {
                if self.callbacks.on_success.is_none() {
                    // Nobody will see them: only the count matters.
                    values = Vec::new();
                }
                state.chunks.insert(index, values);
                self.settle_if_done(state);
            }
            Err(error) => {
                state.settled = true;
                drop(state);
                if let Some(on_error) = self.callbacks.on_error {
                    on_error(&error);
                }
            }
        }
    }
}
