//! How results come back to the caller: [`AsyncResult`] for one task, [`MapIter`] (in
//! order) and [`UnorderedIter`] (as they finish) for many. The pool's driver thread sends
//! each finished chunk, still encoded, on a channel of its job; these types decode it in
//! the caller's thread.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use proc_core::codec::CodecError;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};

use super::message::{BODY, MESSAGE_LIMIT, Shape};
use super::outcome::{ChunkDone, ChunkFailure, Results};
use super::spares::Spares;
use crate::error::{Error, Result};

/// The tasks of one chunk, decoded: `len` results.
fn decode_chunk<R: DeserializeOwned>(
    outcome: Result<&Results, &ChunkFailure>,
    len: usize,
) -> VecDeque<Result<R>> {
    let decoded = match outcome {
        Ok(results) => decode_results::<R>(results, len),
        Err(failure) => Err(failure.clone()),
    };
    match decoded {
        Ok(results) => results.into(),
        Err(failure) => (0..len).map(|_| Err(failure.to_error())).collect(),
    }
}

/// Decodes the `len` results of a chunk, one `Result` per task.
fn decode_results<R: DeserializeOwned>(
    results: &Results,
    len: usize,
) -> Result<Vec<Result<R>>, ChunkFailure> {
    let decoded: Vec<Result<R>> = match results.shape {
        Shape::Values => decode::<Vec<R>>(&results.bytes)?
            .into_iter()
            .map(Ok)
            .collect(),
        Shape::Mixed => decode::<Vec<Result<R, String>>>(&results.bytes)?
            .into_iter()
            .map(|r| r.map_err(|message| Error::TaskPanicked { message }))
            .collect(),
    };
    check_count(decoded.len(), len)?;
    Ok(decoded)
}

/// Appends the values of one chunk of `len` tasks to `values`, or returns the error of the
/// first task that failed. A chunk whose tasks all returned is decoded straight into
/// `values`, with no vector of its own on the way; on an error, `values` is left as it was.
/// The message's buffer goes back to `spares`, for the next message to be received into.
pub(crate) fn append_values<R: DeserializeOwned>(
    outcome: Result<Results, ChunkFailure>,
    len: usize,
    values: &mut Vec<R>,
    spares: &Spares,
) -> Result<()> {
    let results = outcome.map_err(|failure| failure.to_error())?;
    let appended = append_decoded(&results, len, values);
    spares.give(results.bytes);
    appended
}

fn append_decoded<R: DeserializeOwned>(
    results: &Results,
    len: usize,
    values: &mut Vec<R>,
) -> Result<()> {
    match results.shape {
        Shape::Values => {
            let before = values.len();
            let appended = BODY.decode_seed(
                AppendValues {
                    values: &mut *values,
                    len,
                },
                &results.bytes,
                MESSAGE_LIMIT,
            );
            if appended.is_err() {
                values.truncate(before);
            }
            appended.map_err(|e| ChunkFailure::Codec(e).to_error())
        }
        Shape::Mixed => {
            // All or nothing: the first error, or every value.
            let decoded: Vec<R> = decode_results(results, len)
                .map_err(|failure| failure.to_error())?
                .into_iter()
                .collect::<Result<_>>()?;
            values.extend(decoded);
            Ok(())
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ChunkFailure> {
    BODY.decode(bytes, MESSAGE_LIMIT)
        .map_err(ChunkFailure::Codec)
}

fn check_count(got: usize, len: usize) -> Result<(), ChunkFailure> {
    if got == len {
        Ok(())
    } else {
        Err(ChunkFailure::Codec(CodecError::Decode(format!(
            "a worker returned {got} results for a chunk of {len} tasks"
        ))))
    }
}

/// Decodes an encoded `Vec<R>` of exactly `len` elements onto the end of `values`.
struct AppendValues<'a, R> {
    values: &'a mut Vec<R>,
    len: usize,
}

impl<'de, R: DeserializeOwned> DeserializeSeed<'de> for AppendValues<'_, R> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R: DeserializeOwned> Visitor<'de> for AppendValues<'_, R> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a sequence of {} results", self.len)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        // The worker's count is not trusted: it must be `len`, and no more than `len`
        // elements are taken whatever it says.
        if let Some(announced) = seq.size_hint().filter(|&n| n != self.len) {
            return Err(S::Error::invalid_length(announced, &self));
        }
        self.values.reserve(self.len);
        for got in 0..self.len {
            match seq.next_element::<R>()? {
                Some(value) => self.values.push(value),
                None => return Err(S::Error::invalid_length(got, &self)),
            }
        }
        Ok(())
    }
}

/// The result of [`Pool::apply_async`](crate::Pool::apply_async): a task running in the
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
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub struct AsyncResult<R> {
    rx: Receiver<ChunkDone>,
    outcome: RefCell<Option<Result<Results, ChunkFailure>>>,
    _result: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> AsyncResult<R> {
    pub(crate) fn new(rx: Receiver<ChunkDone>) -> Self {
        AsyncResult {
            rx,
            outcome: RefCell::new(None),
            _result: PhantomData,
        }
    }

    /// Whether the task has finished (successfully or not); never waits.
    pub fn ready(&self) -> bool {
        if self.outcome.borrow().is_some() {
            return true;
        }
        match self.rx.try_recv() {
            Ok(done) => self.store(done.outcome),
            Err(TryRecvError::Disconnected) => self.store(Err(ChunkFailure::Terminated)),
            Err(TryRecvError::Empty) => return false,
        }
        true
    }

    /// Waits for the task and returns its result: the function's value, or the task's
    /// error (a panic's message, the worker's death, the pool's termination).
    pub fn get(&self) -> Result<R> {
        if !self.ready() {
            let outcome = match self.rx.recv() {
                Ok(done) => done.outcome,
                Err(_) => Err(ChunkFailure::Terminated),
            };
            self.store(outcome);
        }
        self.decode()
    }

    /// As [`get`](Self::get), waiting at most `timeout`: [`Error::Timeout`] if the task has
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
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        if !self.ready() {
            let outcome = match self.rx.recv_timeout(timeout) {
                Ok(done) => done.outcome,
                Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout),
                Err(RecvTimeoutError::Disconnected) => Err(ChunkFailure::Terminated),
            };
            self.store(outcome);
        }
        self.decode()
    }

    /// Waits for the task to finish without taking its result.
    pub fn wait(&self) {
        let _ = self.get_timeout(Duration::MAX);
    }

    fn store(&self, outcome: Result<Results, ChunkFailure>) {
        *self.outcome.borrow_mut() = Some(outcome);
    }

    fn decode(&self) -> Result<R> {
        let outcome = self.outcome.borrow();
        let outcome = match outcome.as_ref() {
            Some(outcome) => outcome.as_ref(),
            None => Err(&ChunkFailure::Terminated),
        };
        decode_chunk(outcome, 1)
            .pop_front()
            .unwrap_or(Err(Error::PoolTerminated))
    }
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("finished", &self.outcome.borrow().is_some())
            .finish()
    }
}

/// The results of [`Pool::imap`](crate::Pool::imap), in the order of the inputs, each as
/// soon as it and those before it have finished.
pub struct MapIter<R> {
    rx: Receiver<ChunkDone>,
    lens: Vec<usize>,
    next_chunk: usize,
    arrived: BTreeMap<usize, Result<Results, ChunkFailure>>,
    current: VecDeque<Result<R>>,
}

impl<R> MapIter<R> {
    pub(crate) fn new(rx: Receiver<ChunkDone>, lens: Vec<usize>) -> Self {
        MapIter {
            rx,
            lens,
            next_chunk: 0,
            arrived: BTreeMap::new(),
            current: VecDeque::new(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for MapIter<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.pop_front() {
                return Some(result);
            }
            let len = *self.lens.get(self.next_chunk)?;
            if let Some(outcome) = self.arrived.remove(&self.next_chunk) {
                self.current = decode_chunk(outcome.as_ref(), len);
                self.next_chunk += 1;
                continue;
            }
            match self.rx.recv() {
                Ok(done) => {
                    self.arrived.insert(done.index, done.outcome);
                }
                // The driver is gone: what has not arrived never will.
                Err(_) => {
                    self.arrived
                        .insert(self.next_chunk, Err(ChunkFailure::Terminated));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.current.len()
            + self.lens[self.next_chunk.min(self.lens.len())..]
                .iter()
                .sum::<usize>();
        (left, Some(left))
    }
}

impl<R: DeserializeOwned> ExactSizeIterator for MapIter<R> {}

impl<R> std::fmt::Debug for MapIter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapIter")
            .field("chunks", &self.lens.len())
            .field("next_chunk", &self.next_chunk)
            .finish()
    }
}

/// The results of [`Pool::imap_unordered`](crate::Pool::imap_unordered), in the order they
/// finish.
pub struct UnorderedIter<R> {
    rx: Receiver<ChunkDone>,
    lens: Vec<usize>,
    /// Chunks not yet arrived.
    missing: std::collections::BTreeSet<usize>,
    current: VecDeque<Result<R>>,
}

impl<R> UnorderedIter<R> {
    pub(crate) fn new(rx: Receiver<ChunkDone>, lens: Vec<usize>) -> Self {
        UnorderedIter {
            rx,
            missing: (0..lens.len()).collect(),
            lens,
            current: VecDeque::new(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for UnorderedIter<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.pop_front() {
                return Some(result);
            }
            let first_missing = *self.missing.first()?;
            let done = self.rx.recv().unwrap_or(ChunkDone {
                // The driver is gone: what has not arrived never will.
                index: first_missing,
                outcome: Err(ChunkFailure::Terminated),
            });
            if self.missing.remove(&done.index) {
                self.current = decode_chunk(done.outcome.as_ref(), self.lens[done.index]);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.current.len() + self.missing.iter().map(|&i| self.lens[i]).sum::<usize>();
        (left, Some(left))
    }
}

impl<R: DeserializeOwned> ExactSizeIterator for UnorderedIter<R> {}

impl<R> std::fmt::Debug for UnorderedIter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnorderedIter")
            .field("chunks", &self.lens.len())
            .field("missing", &self.missing.len())
            .finish()
    }
}
