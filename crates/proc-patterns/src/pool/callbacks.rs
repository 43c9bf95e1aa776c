//! [`Callbacks`]: what runs in the pool's process when a task of `apply_async_with`
//! finishes, as Python's `callback` and `error_callback`.

use serde::de::DeserializeOwned;

use super::outcome::{ChunkFailure, Results};
use super::results::decode_chunk;
use super::sink::Hook;
use crate::error::Error;

/// The callbacks of [`Pool::apply_async_with`](crate::Pool::apply_async_with): `on_success`
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
pub struct Callbacks<R> {
    on_success: Option<fn(&R)>,
    on_error: Option<fn(&Error)>,
}

impl<R> Callbacks<R> {
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
    fn chunk_done(&self, len: usize, outcome: Result<&Results, &ChunkFailure>) {
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

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks::new()
    }
}

impl<R> Clone for Callbacks<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Callbacks<R> {}

impl<R> std::fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_success", &self.on_success.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}
