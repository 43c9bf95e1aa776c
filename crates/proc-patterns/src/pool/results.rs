//! How results come back to the caller: how a chunk's encoded results are decoded, and
//! [`MapIter`] (in order) and [`UnorderedIter`] (as they finish), which pull their inputs
//! as their results are taken. The pool's driver thread sends each finished chunk, still
//! encoded, on a channel of its job; the results are decoded in the caller's thread.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use crossbeam_channel::Receiver;
use proc_core::codec::CodecError;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};

use super::message::{BODY, MESSAGE_LIMIT, Shape};
use super::outcome::{ChunkDone, ChunkFailure, Results};
use super::spares::Spares;
use super::submit::Feed;
use crate::error::{Error, Result};

/// The tasks of one chunk, decoded: `len` results.
pub(super) fn decode_chunk<R: DeserializeOwned>(
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
        Shape::Mixed { .. } => decode::<Vec<Result<R, String>>>(&results.bytes)?
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

/// Appends the values of a chunk of `len` tasks to `values`, or returns the error of the
/// first task that failed (then `values` is left as it was).
pub(super) fn append_decoded<R: DeserializeOwned>(
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
        Shape::Mixed { .. } => {
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

/// Waits for the next outcome of a job whose channel this side may keep open (its feeder
/// holds a sender): `None` once the pool's driver has ended and nothing more is there.
fn receive(rx: &Receiver<ChunkDone>, driver_alive: &Receiver<Infallible>) -> Option<ChunkDone> {
    crossbeam_channel::select! {
        recv(rx) -> done => done.ok(),
        // The driver has ended; whatever it sent before is in the channel already.
        recv(driver_alive) -> _ => rx.try_recv().ok(),
    }
}

/// What the iterators share: the feeder of a job's inputs, and how many chunks it may
/// have out.
pub(super) struct Intake<'p> {
    /// `None` once the inputs are exhausted.
    feeder: Option<Box<dyn Feed + 'p>>,
    /// The most chunks out at once.
    window: usize,
    /// The number of inputs, when known, and the results yielded so far.
    known: Option<usize>,
    yielded: usize,
    /// Disconnected when the pool's driver ends.
    driver_alive: Receiver<Infallible>,
}

impl<'p> Intake<'p> {
    pub(super) fn new(
        feeder: Box<dyn Feed + 'p>,
        window: usize,
        driver_alive: Receiver<Infallible>,
    ) -> Self {
        Intake {
            known: feeder.known_len(),
            feeder: Some(feeder),
            window: window.max(1),
            yielded: 0,
            driver_alive,
        }
    }

    /// Hands over the next chunk if fewer than the window are `out`: its length.
    fn top_up(&mut self, out: usize) -> Option<usize> {
        if out >= self.window {
            return None;
        }
        let fed = self.feeder.as_mut()?.feed();
        if fed.is_none() {
            // Its sink goes with it, so the job's channel closes once the driver is done.
            self.feeder = None;
        }
        fed.map(|(len, _)| len)
    }

    fn size_hint(&self, buffered: usize) -> (usize, Option<usize>) {
        match self.known {
            Some(known) => {
                let left = known.saturating_sub(self.yielded).max(buffered);
                (left, Some(left))
            }
            None => (buffered, None),
        }
    }
}

/// The results of [`Pool::imap`](crate::Pool::imap), in the order of the inputs, each as
/// soon as it and those before it have finished. The inputs are taken as results are: a few
/// chunks per worker are out at a time, so an endless input works.
pub struct MapIter<'p, R> {
    rx: Receiver<ChunkDone>,
    intake: Intake<'p>,
    /// The lengths of the chunks out, from the next one to yield.
    lens: VecDeque<usize>,
    /// The index of the chunk at the front of `lens`.
    next_chunk: usize,
    arrived: BTreeMap<usize, Result<Results, ChunkFailure>>,
    current: VecDeque<Result<R>>,
}

impl<'p, R> MapIter<'p, R> {
    pub(super) fn new(rx: Receiver<ChunkDone>, intake: Intake<'p>) -> Self {
        let mut iter = MapIter {
            rx,
            intake,
            lens: VecDeque::new(),
            next_chunk: 0,
            arrived: BTreeMap::new(),
            current: VecDeque::new(),
        };
        // The workers start on the first chunks before the first result is asked for.
        iter.top_up();
        iter
    }

    fn top_up(&mut self) {
        while let Some(len) = self.intake.top_up(self.lens.len()) {
            self.lens.push_back(len);
        }
    }
}

impl<R: DeserializeOwned> Iterator for MapIter<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.pop_front() {
                self.intake.yielded += 1;
                return Some(result);
            }
            self.top_up();
            let len = *self.lens.front()?;
            if let Some(outcome) = self.arrived.remove(&self.next_chunk) {
                self.current = decode_chunk(outcome.as_ref(), len);
                self.lens.pop_front();
                self.next_chunk += 1;
                continue;
            }
            match receive(&self.rx, &self.intake.driver_alive) {
                Some(done) => {
                    if done.index >= self.next_chunk {
                        self.arrived.insert(done.index, done.outcome);
                    }
                }
                // The driver is gone: what has not arrived never will.
                None => {
                    self.arrived
                        .insert(self.next_chunk, Err(ChunkFailure::Terminated));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.intake.size_hint(self.current.len())
    }
}

impl<R> std::fmt::Debug for MapIter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapIter")
            .field("chunks_out", &self.lens.len())
            .field("next_chunk", &self.next_chunk)
            .field("inputs_left", &self.intake.feeder.is_some())
            .finish()
    }
}

/// The results of [`Pool::imap_unordered`](crate::Pool::imap_unordered), in the order they
/// finish. The inputs are taken as results are, as for [`MapIter`].
pub struct UnorderedIter<'p, R> {
    rx: Receiver<ChunkDone>,
    intake: Intake<'p>,
    /// The chunks out: index and length.
    out: BTreeMap<usize, usize>,
    /// The index the next chunk handed over gets.
    fed: usize,
    current: VecDeque<Result<R>>,
}

impl<'p, R> UnorderedIter<'p, R> {
    pub(super) fn new(rx: Receiver<ChunkDone>, intake: Intake<'p>) -> Self {
        let mut iter = UnorderedIter {
            rx,
            intake,
            out: BTreeMap::new(),
            fed: 0,
            current: VecDeque::new(),
        };
        // The workers start on the first chunks before the first result is asked for.
        iter.top_up();
        iter
    }

    fn top_up(&mut self) {
        while let Some(len) = self.intake.top_up(self.out.len()) {
            self.out.insert(self.fed, len);
            self.fed += 1;
        }
    }
}

impl<R: DeserializeOwned> Iterator for UnorderedIter<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(result) = self.current.pop_front() {
                self.intake.yielded += 1;
                return Some(result);
            }
            self.top_up();
            let (&first_out, _) = self.out.first_key_value()?;
            let done = receive(&self.rx, &self.intake.driver_alive).unwrap_or(ChunkDone {
                // The driver is gone: what has not arrived never will.
                index: first_out,
                outcome: Err(ChunkFailure::Terminated),
            });
            if let Some(len) = self.out.remove(&done.index) {
                self.current = decode_chunk(done.outcome.as_ref(), len);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.intake.size_hint(self.current.len())
    }
}

impl<R> std::fmt::Debug for UnorderedIter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnorderedIter")
            .field("chunks_out", &self.out.len())
            .field("inputs_left", &self.intake.feeder.is_some())
            .finish()
    }
}
