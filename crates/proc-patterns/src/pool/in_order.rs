//! How `map` and `starmap` take their results while they still submit: [`InOrder`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;

use super::handle::Pool;
use super::outcome::ChunkDone;
use super::results;
use super::spares::Spares;
use super::submit::Feed;
use crate::error::{Error, Result};

/// The message bytes a `map` may have out before it waits for results, once it has more
/// chunks out than its window.
const BYTES_OUT: usize = 512 << 10;

/// The results of a `map`: a few chunks out at a time, the results of the first decoded
/// while the next wait, each chunk's values straight onto the end of one vector as its turn
/// comes.
///
/// A new chunk waits while more than `window` chunks (enough that every worker has one to
/// run and one waiting) and at least [`BYTES_OUT`] of messages are out: then the messages
/// of one map are a handful of buffers used again and again (the pool keeps the sent ones
/// for the next chunks), not a fresh buffer for every chunk to be page-faulted in, while
/// small chunks (a chunksize of 1) still go without a round trip each. A chunk that arrives
/// before its turn is decoded at once all the same (the caller's thread would otherwise
/// wait with work at hand) and moved in at its turn.
pub(super) struct InOrder<R> {
    rx: Receiver<ChunkDone>,
    lens: Vec<usize>,
    /// The message bytes of each chunk, and the sum of those out.
    sizes: Vec<usize>,
    bytes_out: usize,
    values: Vec<R>,
    early: BTreeMap<usize, Vec<R>>,
    /// The next chunk to append to `values`.
    next: usize,
    window: usize,
    /// The error of the first task known to have failed: the job's outcome.
    failed: Option<Error>,
    /// Where the results' buffers go once decoded, for the driver to receive into again.
    spares: Arc<Spares>,
    /// Disconnected when the pool's driver ends.
    driver_alive: Receiver<Infallible>,
}

impl<R: DeserializeOwned> InOrder<R> {
    /// Feeds every chunk of `feeder`, taking results as it goes, and returns them all.
    pub(super) fn run(
        rx: Receiver<ChunkDone>,
        pool: &Pool,
        mut feeder: impl Feed,
    ) -> Result<Vec<R>> {
        let mut in_order = InOrder {
            rx,
            lens: Vec::new(),
            sizes: Vec::new(),
            bytes_out: 0,
            values: Vec::new(),
            early: BTreeMap::new(),
            next: 0,
            window: 2 * pool.processes.max(1),
            failed: None,
            spares: Arc::clone(&pool.spares),
            driver_alive: pool.driver_alive.clone(),
        };
        if let Some(len) = feeder.known_len() {
            // A hint from the caller's iterator, which may be wrong: room that cannot be
            // had is not an error.
            let _ = in_order.values.try_reserve_exact(len);
        }
        while let Some((len, bytes)) = feeder.feed() {
            in_order.chunk(len, bytes);
        }
        // The feeder's sink goes with it: the channel closes once the driver has dropped
        // every chunk.
        drop(feeder);
        in_order.finish()
    }

    /// Chunks handed over whose results have not been taken yet.
    fn out(&self) -> usize {
        self.lens.len() - self.next - self.early.len()
    }

    /// A chunk of `len` tasks and a message of `bytes` was handed over: waits for results
    /// while too many are out.
    fn chunk(&mut self, len: usize, bytes: usize) {
        self.lens.push(len);
        self.sizes.push(bytes);
        self.bytes_out += bytes;
        // Once a task has failed, the rest go without waiting: the job's outcome is known,
        // and the other tasks run on all the same.
        while self.failed.is_none() && self.out() > self.window && self.bytes_out >= BYTES_OUT {
            self.take_one();
        }
    }

    /// Takes one result (waiting for it) and stores its values. The job's own channel stays
    /// open while chunks are being submitted (this side holds a sender for them), so it
    /// cannot say by itself that the driver has ended: `driver_alive` does.
    fn take_one(&mut self) {
        let done = crossbeam_channel::select! {
            recv(self.rx) -> done => done.ok(),
            // The driver has ended; whatever it sent before is in the channel already.
            recv(self.driver_alive) -> _ => self.rx.try_recv().ok(),
        };
        match done {
            Some(done) => self.store(done),
            None => self.failed = Some(Error::PoolTerminated),
        }
    }

    fn store(&mut self, done: ChunkDone) {
        let Some(&len) = self.lens.get(done.index) else {
            return;
        };
        let taken = done.index == self.next
            || (done.index > self.next && !self.early.contains_key(&done.index));
        if !taken {
            return;
        }
        self.bytes_out -= self.sizes[done.index];
        let appended = if done.index == self.next {
            results::append_values(done.outcome, len, &mut self.values, &self.spares).map(|()| {
                self.next += 1;
                while let Some(chunk) = self.early.remove(&self.next) {
                    self.values.extend(chunk);
                    self.next += 1;
                }
            })
        } else {
            let mut chunk = Vec::with_capacity(len);
            results::append_values(done.outcome, len, &mut chunk, &self.spares)
                .map(|()| drop(self.early.insert(done.index, chunk)))
        };
        if let Err(e) = appended {
            self.failed = Some(e);
        }
    }

    /// Every result, once the last chunk has been handed over.
    fn finish(mut self) -> Result<Vec<R>> {
        while self.failed.is_none() && self.next < self.lens.len() {
            match self.rx.recv() {
                Ok(done) => self.store(done),
                Err(_) => self.failed = Some(Error::PoolTerminated),
            }
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.values),
        }
    }
}
