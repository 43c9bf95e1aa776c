//! [`AsyncResult`]: the result of work started with `apply_async`, `map_async` or
//! `starmap_async`, as Python's `AsyncResult`: ready once every chunk of the job has come
//! back, or as soon as one of them failed.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use serde::de::DeserializeOwned;

use super::message::Shape;
use super::outcome::{ChunkDone, ChunkFailure, Results};
use super::results::{append_decoded, decode_chunk};
use crate::error::{Error, Result};

/// The outcomes of a job's chunks, in input order; `None` for one not come back yet.
type Arrived = [Option<Result<Results, ChunkFailure>>];

/// The result of [`Pool::apply_async`](crate::Pool::apply_async) (a task's value) or
/// [`Pool::map_async`](crate::Pool::map_async) (a `Vec` of values): work running in the
/// pool, as Python's `AsyncResult`.
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = proc_patterns::Pool::new(2)?;
/// let pending = pool.apply_async(square, 12);
/// assert_eq!(pending.get()?, 144);
/// assert!(pending.ready());
/// assert_eq!(pending.get()?, 144); // as often as you like
/// assert!(pending.successful()?);
///
/// let squares = pool.map_async(square, 1..=4);
/// assert_eq!(squares.get()?, [1, 4, 9, 16]);
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub struct AsyncResult<T> {
    rx: Receiver<ChunkDone>,
    lens: Vec<usize>,
    arrived: RefCell<Vec<Option<Result<Results, ChunkFailure>>>>,
    /// Chunks not come back yet.
    missing: Cell<usize>,
    /// A chunk failed: the job's outcome is known whatever the others do.
    failed: Cell<bool>,
    /// Makes the job's value from its chunks' outcomes.
    assemble: fn(&Arrived, &[usize]) -> Result<T>,
}

impl<R: DeserializeOwned> AsyncResult<R> {
    /// The result of one task, sent as a chunk of one.
    pub(crate) fn one(rx: Receiver<ChunkDone>) -> Self {
        AsyncResult::new(rx, vec![1], assemble_one::<R>)
    }
}

impl<R: DeserializeOwned> AsyncResult<Vec<R>> {
    /// The results of a job of chunks of `lens` tasks, in input order.
    pub(crate) fn all(rx: Receiver<ChunkDone>, lens: Vec<usize>) -> Self {
        AsyncResult::new(rx, lens, assemble_all::<R>)
    }
}

impl<T> AsyncResult<T> {
    fn new(
        rx: Receiver<ChunkDone>,
        lens: Vec<usize>,
        assemble: fn(&Arrived, &[usize]) -> Result<T>,
    ) -> Self {
        AsyncResult {
            rx,
            arrived: RefCell::new((0..lens.len()).map(|_| None).collect()),
            missing: Cell::new(lens.len()),
            lens,
            failed: Cell::new(false),
            assemble,
        }
    }

    /// Whether the work has finished (successfully or not); never waits.
    pub fn ready(&self) -> bool {
        loop {
            if self.decided() {
                return true;
            }
            match self.rx.try_recv() {
                Ok(done) => self.store(done),
                Err(TryRecvError::Disconnected) => self.driver_gone(),
                Err(TryRecvError::Empty) => return false,
            }
        }
    }

    /// Waits for the work and returns its result: the function's value (for `map_async`,
    /// every value in input order), or the error of the task that failed (a panic's
    /// message, the worker's death, the pool's termination).
    pub fn get(&self) -> Result<T> {
        self.wait();
        (self.assemble)(&self.arrived.borrow(), &self.lens)
    }

    /// As [`get`](Self::get), waiting at most `timeout`: [`Error::Timeout`] if the work has
    /// not finished by then (it runs on; ask again later).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// let pending = pool.apply_async(nap, 200);
    /// assert!(matches!(pending.get_timeout(Duration::ZERO), Err(proc_patterns::Error::Timeout)));
    /// assert_eq!(pending.get_timeout(Duration::from_secs(60))?, 200);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        if !self.wait_timeout(timeout) {
            return Err(Error::Timeout);
        }
        (self.assemble)(&self.arrived.borrow(), &self.lens)
    }

    /// Waits for the work to finish without taking its result.
    pub fn wait(&self) {
        while !self.ready() {
            match self.rx.recv() {
                Ok(done) => self.store(done),
                Err(_) => self.driver_gone(),
            }
        }
    }

    /// Waits at most `timeout` for the work to finish; whether it has.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn nap(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// let pending = pool.apply_async(nap, 100);
    /// assert!(!pending.wait_timeout(Duration::ZERO));
    /// assert!(pending.wait_timeout(Duration::from_secs(60)));
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large to add is as good as none.
        let deadline = Instant::now().checked_add(timeout);
        while !self.ready() {
            let received = match deadline {
                Some(deadline) => self.rx.recv_deadline(deadline),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(done) => self.store(done),
                Err(RecvTimeoutError::Disconnected) => self.driver_gone(),
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }

    /// Whether the work finished without an error: Python's `successful()`. Before the
    /// work is [`ready`](Self::ready), [`Error::NotReady`] (Python raises `ValueError`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn check(x: i32) -> i32 {
    ///     assert!(x >= 0, "negative");
    ///     x
    /// }
    ///
    /// let pool = proc_patterns::Pool::new(1)?;
    /// let fine = pool.apply_async(check, 1);
    /// let bad = pool.apply_async(check, -1);
    /// bad.wait();
    /// fine.wait();
    /// assert!(fine.successful()?);
    /// assert!(!bad.successful()?);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn successful(&self) -> Result<bool> {
        if !self.ready() {
            return Err(Error::NotReady);
        }
        Ok((self.assemble)(&self.arrived.borrow(), &self.lens).is_ok())
    }

    fn decided(&self) -> bool {
        self.missing.get() == 0 || self.failed.get()
    }

    fn store(&self, done: ChunkDone) {
        let mut arrived = self.arrived.borrow_mut();
        let Some(slot) = arrived.get_mut(done.index) else {
            return;
        };
        if slot.is_none() {
            let failed = match &done.outcome {
                Ok(results) => results.shape != Shape::Values,
                Err(_) => true,
            };
            self.failed.set(self.failed.get() || failed);
            self.missing.set(self.missing.get() - 1);
            *slot = Some(done.outcome);
        }
    }

    /// The driver has ended: what has not come back never will.
    fn driver_gone(&self) {
        for slot in self.arrived.borrow_mut().iter_mut().filter(|s| s.is_none()) {
            *slot = Some(Err(ChunkFailure::Terminated));
        }
        self.missing.set(0);
    }
}

/// The value of a job of one task.
fn assemble_one<R: DeserializeOwned>(arrived: &Arrived, _: &[usize]) -> Result<R> {
    match arrived.first() {
        Some(Some(outcome)) => decode_chunk(outcome.as_ref(), 1)
            .pop_front()
            .unwrap_or(Err(Error::PoolTerminated)),
        _ => Err(Error::PoolTerminated),
    }
}

/// The values of a job, in input order, or the error of the first chunk (in input order)
/// that failed among those come back.
fn assemble_all<R: DeserializeOwned>(arrived: &Arrived, lens: &[usize]) -> Result<Vec<R>> {
    let mut values = Vec::with_capacity(lens.iter().sum());
    let mut complete = true;
    for (outcome, &len) in arrived.iter().zip(lens) {
        match outcome {
            Some(Ok(results)) => append_decoded(results, len, &mut values)?,
            Some(Err(failure)) => return Err(failure.to_error()),
            None => complete = false,
        }
    }
    if complete {
        Ok(values)
    } else {
        Err(Error::PoolTerminated)
    }
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("chunks", &self.lens.len())
            .field("missing", &self.missing.get())
            .field("failed", &self.failed.get())
            .finish()
    }
}
