//! How a job's inputs become chunks handed to the driver: the [`Feeder`], which every call
//! of the pool uses (`map`, `starmap`, `imap`, `apply`, their `_async` forms), whether it
//! feeds every chunk at once or one at a time as results are taken.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proc_core::internal::CodeAddress;

use super::call::{self, TaskFn};
use super::claim::Claim;
use super::driver::{Command, PendingChunk, TimeLimit};
use super::handle::Pool;
use super::message::{BODY, ToWorker, seal};
use super::outcome::ChunkFailure;
use super::sink::Sink;

/// The chunk size a streaming call (`imap`, `imap_unordered`) uses at most by default, so
/// that what it has in flight stays small however long its input is.
const STREAM_CHUNK_LIMIT: usize = 1024;

/// A time limit beyond any run.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How a job's inputs are chunked by default.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunking {
    /// `map` and the calls that return every result at once: Python's `map` default (the
    /// inputs divided by four times the workers). An input of unknown length is collected
    /// first, to count it.
    Whole,
    /// `imap` and `imap_unordered`, which pull their input as results are taken: as
    /// `Whole` for an input of known length, but at most [`STREAM_CHUNK_LIMIT`]; one input
    /// at a time (Python's `imap` default) for an input of unknown, maybe endless, length.
    Streaming,
}

/// Takes a job's inputs a chunk at a time, encodes each straight into the message that
/// will go to a worker, and hands it to the driver; the chunk's outcome comes on the job's
/// [`Sink`]. Work that cannot be submitted (a closed pool, a chunksize of 0, a function
/// outside the executable) fails chunk by chunk through the same sink, so that each task
/// reports its own error.
pub(super) struct Feeder<'p, F: TaskFn, I> {
    pool: &'p Pool,
    inputs: Inputs<I, F::Args>,
    chunksize: usize,
    /// The call and the function, or why no chunk of the job can run.
    named: Result<(CodeAddress, CodeAddress), ChunkFailure>,
    sink: Sink,
    /// The next chunk's index in its job.
    index: usize,
    /// A guess at the next message's size (the last one's, and some): one allocation per
    /// message, not a dozen as it grows.
    expected: usize,
    chunk: Vec<F::Args>,
    /// The number of inputs, when known.
    known: Option<usize>,
    /// The time each chunk is given from when it is handed over (`apply_timeout`).
    timeout: Option<Duration>,
    /// When every chunk's time is up, whenever it is handed over (an executor's `map`).
    deadline: Option<Instant>,
    /// Whether the job's (one) task may still start, for a job that can be cancelled.
    claim: Option<Arc<Claim>>,
}

/// The inputs as given, or collected first (to count them).
enum Inputs<I, A> {
    Given(I),
    Collected(std::vec::IntoIter<A>),
}

impl<I: Iterator<Item = A>, A> Iterator for Inputs<I, A> {
    type Item = A;

    fn next(&mut self) -> Option<A> {
        match self {
            Inputs::Given(inputs) => inputs.next(),
            Inputs::Collected(inputs) => inputs.next(),
        }
    }
}

impl<'p, F: TaskFn, I: Iterator<Item = F::Args>> Feeder<'p, F, I> {
    pub(super) fn new(
        pool: &'p Pool,
        f: F,
        inputs: I,
        chunksize: Option<usize>,
        chunking: Chunking,
        sink: Sink,
    ) -> Self {
        let call: call::Call = call::call_chunk::<F>;
        let named = if chunksize == Some(0) {
            Err(ChunkFailure::Invalid("chunksize must be at least 1"))
        } else if pool.closed.load(Ordering::SeqCst) {
            Err(ChunkFailure::Closed)
        } else {
            CodeAddress::of(call as usize)
                .and_then(|call| CodeAddress::of(f.address()).map(|func| (call, func)))
                .map_err(|e| ChunkFailure::Other(e.to_string()))
        };
        // The number of inputs, when the iterator knows it: the default chunksize needs it,
        // and `map` sets room aside for the results.
        let mut known = match inputs.size_hint() {
            (len, Some(upper)) if len == upper => Some(len),
            _ => None,
        };
        let default = |len| default_chunksize(len, pool.processes);
        let (inputs, chunksize) = match (chunksize, known, chunking) {
            // Chunks that fail need not be small: a size that keeps them few.
            (Some(0), _, _) => (Inputs::Given(inputs), STREAM_CHUNK_LIMIT),
            (Some(chunksize), _, _) => (Inputs::Given(inputs), chunksize),
            (None, Some(len), Chunking::Whole) => (Inputs::Given(inputs), default(len)),
            (None, Some(len), Chunking::Streaming) => {
                (Inputs::Given(inputs), default(len).min(STREAM_CHUNK_LIMIT))
            }
            (None, None, Chunking::Streaming) => (Inputs::Given(inputs), 1),
            (None, None, Chunking::Whole) => {
                let inputs: Vec<F::Args> = inputs.collect();
                known = Some(inputs.len());
                let chunksize = default(inputs.len());
                (Inputs::Collected(inputs.into_iter()), chunksize)
            }
        };
        Feeder {
            pool,
            inputs,
            chunksize,
            named,
            sink,
            index: 0,
            expected: 0,
            chunk: Vec::new(),
            known,
            timeout: None,
            deadline: None,
            claim: None,
        }
    }

    /// Each chunk must finish within `timeout` of being handed over, or its worker is
    /// killed and its tasks fail with `TimedOut`.
    pub(super) fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// As [`with_timeout`](Self::with_timeout), with one deadline for every chunk,
    /// `timeout` after `start` (`None`: too far to add).
    pub(super) fn with_deadline(mut self, start: Instant, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.deadline = Some(start.checked_add(timeout).unwrap_or(start + CENTURY));
        self
    }

    /// The job's chunks start only if `claim` lets them (it has not been cancelled).
    pub(super) fn with_claim(mut self, claim: Arc<Claim>) -> Self {
        self.claim = Some(claim);
        self
    }
}

/// A [`Feeder`] with its types erased, for the iterators that hold one.
pub(super) trait Feed {
    /// Hands the next chunk to the driver: its number of tasks and its message's bytes, or
    /// `None` once the inputs are exhausted.
    fn feed(&mut self) -> Option<(usize, usize)>;

    /// The number of inputs, when the iterator said (or they were counted).
    fn known_len(&self) -> Option<usize>;
}

impl<F: TaskFn, I: Iterator<Item = F::Args>> Feed for Feeder<'_, F, I> {
    fn feed(&mut self) -> Option<(usize, usize)> {
        let index = self.index;
        let (call, func) = match &self.named {
            Ok(named) => *named,
            Err(failure) => {
                let len = self.inputs.by_ref().take(self.chunksize).count();
                if len == 0 && index > 0 {
                    return None;
                }
                // A job of no input still learns why it could not run (as Python's `map`
                // on a closed pool raises): one empty chunk carries the failure.
                self.pool.counters.submitted(len);
                self.index += 1;
                self.sink.finish(index, len, Err(failure.clone()));
                return Some((len, 0));
            }
        };
        self.chunk.extend(self.inputs.by_ref().take(self.chunksize));
        let len = self.chunk.len();
        if len == 0 {
            return None;
        }
        self.pool.counters.submitted(len);
        self.index += 1;
        let pool = self.pool;
        let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = pool.spares.take();
        message.reserve(self.expected);
        let sealed = BODY
            .encode_into(&self.chunk[..], &mut message)
            .and_then(|()| seal(&mut message, &ToWorker::Chunk { id, call, func }));
        self.chunk.clear();
        let bytes = message.len();
        match sealed {
            Ok(()) => {
                self.expected = bytes + bytes / 8;
                pool.hand_over(PendingChunk {
                    index,
                    len,
                    id,
                    message,
                    sink: self.sink.clone(),
                    limit: self.timeout.map(|timeout| TimeLimit {
                        at: self.deadline.unwrap_or_else(|| {
                            // Too far to add: as good as no limit, a century on.
                            Instant::now()
                                .checked_add(timeout)
                                .unwrap_or_else(|| Instant::now() + CENTURY)
                        }),
                        timeout,
                    }),
                    claim: self.claim.clone(),
                });
            }
            Err(e) => self.sink.finish(index, len, Err(ChunkFailure::Codec(e))),
        }
        Some((len, bytes))
    }

    fn known_len(&self) -> Option<usize> {
        self.known
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
                    chunk.fail(ChunkFailure::Closed);
                }
            }
        }
    }
}

/// Python's default for `map`: the inputs divided by four times the workers, rounded up, so
/// that each worker gets about four chunks (a balance between the cost of sending a chunk and
/// a worker left idle at the end).
fn default_chunksize(inputs: usize, processes: usize) -> usize {
    inputs.div_ceil(4 * processes.max(1)).max(1)
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
