//! [`Sink`]: where a chunk's outcome goes, whichever thread learns it (the driver for a
//! chunk a worker ran, the caller's thread for one that could not be submitted). Every
//! outcome passes here, so what must happen on each (a job's callbacks) happens in one
//! place.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crossbeam_channel::Sender;
use proc_core::internal::panic_message;

use super::message::Shape;
use super::outcome::{ChunkDone, ChunkFailure, Results};
use super::stats::Counters;

/// What runs on each outcome of a job's chunks, before the outcome goes to the job's
/// channel (so a result is ready only once its callbacks have run).
pub(crate) trait Hook: Send + Sync {
    /// Chunk `index` of the job, of `len` tasks, has finished with `outcome`.
    fn chunk_done(&self, _index: usize, _len: usize, _outcome: Result<&Results, &ChunkFailure>) {}

    /// The outcome is now on the job's channel: whoever waits for it without blocking on
    /// the channel (a future's waker) can be told.
    fn delivered(&self) {}
}

/// The sending end of a job's results, with the job's hook.
#[derive(Clone)]
pub(crate) struct Sink {
    tx: Sender<ChunkDone>,
    hook: Option<Arc<dyn Hook>>,
    counters: Arc<Counters>,
}

impl Sink {
    pub(crate) fn new(
        tx: Sender<ChunkDone>,
        hook: Option<Arc<dyn Hook>>,
        counters: Arc<Counters>,
    ) -> Sink {
        Sink { tx, hook, counters }
    }

    /// Chunk `index`, of `len` tasks, has finished with `outcome`: the hook runs, then the
    /// outcome goes to whoever reads the job's results.
    pub(crate) fn finish(&self, index: usize, len: usize, outcome: Result<Results, ChunkFailure>) {
        let failed = match &outcome {
            Ok(results) => match results.shape {
                Shape::Values => 0,
                Shape::Mixed { failed } => failed,
            },
            Err(_) => len as u64,
        };
        self.counters.finished(len, failed);
        self.run_hook(|hook| hook.chunk_done(index, len, outcome.as_ref()));
        // The caller may have stopped listening (a dropped iterator): nothing to do then.
        let _ = self.tx.send(ChunkDone { index, outcome });
        self.run_hook(|hook| hook.delivered());
    }

    /// Runs `call` on the hook, if there is one. A callback (or a waker) that panics must
    /// not take the driver thread (and every other job) down with it: its panic is
    /// reported, and the job goes on.
    fn run_hook(&self, call: impl FnOnce(&dyn Hook)) {
        if let Some(hook) = &self.hook
            && let Err(payload) = catch_unwind(AssertUnwindSafe(|| call(&**hook)))
        {
            eprintln!(
                "multiproc: a pool callback panicked: {}",
                panic_message(&*payload)
            );
        }
    }
}
