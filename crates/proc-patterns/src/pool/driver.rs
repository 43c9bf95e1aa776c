//! The pool's driver: one thread of the pool's process that owns the workers. It hands each
//! idle worker the next chunk over that worker's connection, routes results back to the
//! jobs they belong to, and watches every worker's pidfd.
//!
//! Each worker holds at most one chunk, and the driver knows which: a worker that dies
//! (killed from outside, or ending after `maxtasksperchild` chunks) is seen at once on its
//! pidfd, its result is taken if it sent one before dying, otherwise its chunk fails with
//! [`WorkerDied`](crate::Error::WorkerDied), and a fresh worker takes its place. One
//! `poll(2)` over all connections, all pidfds and a wake-up pipe is the whole wait: no
//! timeouts, no polling loop.
//!
//! The first workers are forked by `Pool::new` before this thread exists. Replacements are
//! forked from this thread, so the process has at least two threads then and proc-core
//! prints its warning about forking a multi-threaded process (once): a worker only runs
//! the pool's loop and the task functions, so it needs no lock another thread might hold,
//! unless a task function takes one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;

use super::claim::Claim;
use super::message::{ToWorker, seal};
use super::outcome::{ChunkFailure, Results};
use super::restarts::{Restarts, Verdict};
use super::sink::Sink;
use super::spares::Spares;
use super::stats::Counters;
use super::worker::WorkerConfig;
use super::worker_process::{Reply, Ticket};
pub(crate) use super::worker_process::{TimeLimit, Worker};

/// How long terminated workers get to end on SIGTERM before they are killed.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// What the pool's handle asks of the driver.
pub(crate) enum Command {
    Submit(PendingChunk),
    /// Fail the pending chunks whose claim was cancelled now, not when a worker is free
    /// (an executor's `shutdown` with `cancel_futures`: their futures may be waited on).
    DropCancelled,
    Close,
    Terminate,
}

/// A chunk waiting for a worker: its message, sealed with its [`ToWorker::Chunk`] header
/// by the pool's handle, sent as it is.
pub(crate) struct PendingChunk {
    pub(crate) index: usize,
    /// The number of tasks in the chunk.
    pub(crate) len: usize,
    pub(crate) id: u64,
    pub(crate) message: Vec<u8>,
    pub(crate) sink: Sink,
    /// When its time is up, for `apply_timeout`.
    pub(crate) limit: Option<TimeLimit>,
    /// For a task that can be cancelled (an executor's): whether it still may start.
    pub(crate) claim: Option<Arc<Claim>>,
}

impl PendingChunk {
    /// The chunk will not run: each of its tasks fails with `failure`.
    pub(crate) fn fail(self, failure: ChunkFailure) {
        self.sink.finish(self.index, self.len, Err(failure));
    }
}

/// The driver's state; it lives in the driver thread.
pub(crate) struct Driver {
    pub(crate) commands: Receiver<Command>,
    pub(crate) wake: OwnedFd,
    pub(crate) workers: Vec<Worker>,
    pub(crate) config: WorkerConfig,
    /// The pids of the current workers, for `Pool::pids`.
    pub(crate) pids: Arc<Mutex<Vec<u32>>>,
    spares: Arc<Spares>,
    counters: Arc<Counters>,
    /// Dropped with the driver, which tells a `map` waiting on its job's channel that no
    /// more results will come.
    _alive: Sender<Infallible>,
    pub(crate) started: usize,
    pending: VecDeque<PendingChunk>,
    /// Where the notices of chunks handed over through an inbox are sealed.
    notice: Vec<u8>,
    closing: bool,
    /// Workers whose initializer failed, and their replacements.
    restarts: Restarts,
}

/// What the driver shares with the pool's handle.
pub(crate) struct Shared {
    pub(crate) pids: Arc<Mutex<Vec<u32>>>,
    pub(crate) spares: Arc<Spares>,
    pub(crate) counters: Arc<Counters>,
}

impl Driver {
    pub(crate) fn new(
        commands: Receiver<Command>,
        wake: OwnedFd,
        workers: Vec<Worker>,
        config: WorkerConfig,
        shared: Shared,
        alive: Sender<Infallible>,
    ) -> Driver {
        let Shared {
            pids,
            spares,
            counters,
        } = shared;
        let started = workers.len();
        let driver = Driver {
            commands,
            wake,
            workers,
            config,
            pids,
            spares,
            counters,
            _alive: alive,
            started,
            pending: VecDeque::new(),
            notice: Vec::new(),
            closing: false,
            restarts: Restarts::new(started),
        };
        driver.publish_pids();
        driver
    }

    /// The driver thread's body: returns once the pool is closed and drained, or
    /// terminated.
    pub(crate) fn run(mut self) {
        loop {
            if !self.take_commands() {
                self.terminate();
                return;
            }
            self.start_due_replacements();
            self.enforce_time_limits();
            self.dispatch();
            if self.closing
                && self.pending.is_empty()
                && self.workers.iter().all(|w| w.held.is_none())
            {
                self.stop();
                return;
            }
            self.wait_and_handle();
        }
    }

    /// Takes every command waiting; `false` when the pool is to be terminated.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Submit(chunk)) => {
                    if let Some(failure) = self.given_up() {
                        chunk.fail(failure);
                    } else if self.closing {
                        chunk.fail(ChunkFailure::Closed);
                    } else {
                        self.pending.push_back(chunk);
                    }
                }
                Ok(Command::DropCancelled) => {
                    let (cancelled, waiting) = std::mem::take(&mut self.pending)
                        .into_iter()
                        .partition::<VecDeque<_>, _>(|chunk| {
                        chunk
                            .claim
                            .as_ref()
                            .is_some_and(|claim| claim.is_cancelled())
                    });
                    self.pending = waiting;
                    for chunk in cancelled {
                        chunk.fail(ChunkFailure::Cancelled);
                    }
                }
                Ok(Command::Close) => self.closing = true,
                Ok(Command::Terminate) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Hands the next chunks to the idle workers.
    fn dispatch(&mut self) {
        for worker in &mut self.workers {
            if worker.held.is_some() || worker.retiring || worker.broken || !worker.initialized {
                continue;
            }
            let Some(chunk) = next_to_start(&mut self.pending) else {
                return;
            };
            // The worker is idle, so it is reading: the send completes.
            match worker.send_chunk(&chunk.message, &mut self.notice) {
                Ok(()) => {
                    worker.held = Some(Ticket {
                        id: chunk.id,
                        index: chunk.index,
                        len: chunk.len,
                        sink: chunk.sink,
                        limit: chunk.limit,
                    });
                    self.spares.give(chunk.message);
                }
                Err(e) if e.is_about_one_item() => {
                    chunk.fail(ChunkFailure::Other(format!(
                        "the chunk could not be sent to a worker: {e}"
                    )));
                }
                Err(_) => {
                    // The worker is gone; the chunk never reached it, so another may run it.
                    worker.broken = true;
                    self.pending.push_front(chunk);
                }
            }
        }
    }

    /// Waits for a result, a worker's end, or a command, and handles what happened.
    fn wait_and_handle(&mut self) {
        let (conn_ready, ended) = {
            let mut fds = Vec::with_capacity(1 + 2 * self.workers.len());
            fds.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
            for worker in &self.workers {
                let conn_flags = if worker.broken {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                };
                fds.push(PollFd::new(worker.conn.as_fd(), conn_flags));
                match worker.process.sentinel() {
                    Ok(sentinel) => fds.push(PollFd::new(sentinel, PollFlags::POLLIN)),
                    // Cannot happen for a started process; polling the connection twice
                    // keeps the indices right.
                    Err(_) => fds.push(PollFd::new(worker.conn.as_fd(), PollFlags::empty())),
                }
            }
            // Replacements waiting out a back-off are started when it ends.
            let next = [self.restarts.due_at(), self.next_time_limit()];
            let timeout = match next.into_iter().flatten().min() {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    // Rounded up, so as not to wake just before the time.
                    let ms = wait.as_millis().saturating_add(1);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                // EINTR, or a failure poll reports again on the next turn.
                Err(_) => return,
            }
            let ready = |fd: &PollFd<'_>| {
                fd.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            };
            // Skipped, not sliced: with no worker left (all waiting to be replaced), there
            // is only the wake-up pipe.
            let conn_ready: Vec<bool> = fds.iter().skip(1).step_by(2).map(ready).collect();
            let ended: Vec<bool> = fds.iter().skip(2).step_by(2).map(ready).collect();
            if ready(&fds[0]) {
                drain(&self.wake);
            }
            (conn_ready, ended)
        };
        for (i, ready) in conn_ready.into_iter().enumerate() {
            if ready && !self.workers[i].broken {
                self.receive(i);
            }
        }
        // From the last, so that removing one does not move those still to look at.
        for i in (0..ended.len()).rev() {
            if ended[i] {
                self.worker_ended(i);
            }
        }
    }

    /// Receives a result from worker `i`.
    fn receive(&mut self, i: usize) {
        let max_tasks = self.config.settings.max_tasks;
        let worker = &mut self.workers[i];
        let spares = &self.spares;
        // Into a buffer used before (a sent chunk's, or a decoded result's): its pages are
        // there already.
        let mut message = spares.take();
        match worker.receive_reply(&mut message) {
            Ok(Reply::Ready) => {
                worker.initialized = true;
                self.restarts.succeeded();
            }
            Ok(Reply::InitializerFailed(why)) => {
                // It ends; the pidfd says when, and `worker_ended` decides what follows.
                worker.initializer_failed = Some(why);
                worker.broken = true;
            }
            Ok(Reply::Results { id, outcome, body }) => {
                // None: a stale reply, for a chunk this worker no longer holds.
                if let Some(ticket) = worker.held.take_if(|t| t.id == id) {
                    message.truncate(body);
                    let outcome = match outcome {
                        Ok(shape) => Ok(Results {
                            shape,
                            bytes: fitted(&mut message),
                        }),
                        Err(why) => Err(ChunkFailure::Other(why)),
                    };
                    ticket.finish(outcome);
                    worker.done += 1;
                    if max_tasks.is_some_and(|max| worker.done as u64 >= max) {
                        worker.retiring = true;
                    }
                }
            }
            Err(e) if e.is_eof() => worker.broken = true,
            Err(e) => {
                // A worker that sends what the pool cannot read is of no more use.
                if let Some(ticket) = worker.held.take() {
                    ticket.finish(Err(ChunkFailure::Other(format!(
                        "a worker's reply could not be read: {e}"
                    ))));
                }
                worker.broken = true;
                let _ = worker.process.kill();
            }
        }
        // The buffer goes back, on every path, unless the results took it.
        spares.give(message);
    }

    /// Worker `i` has ended: take its last result if it sent one, fail the chunk it held
    /// otherwise, reap it, and start another in its place if work may still come.
    fn worker_ended(&mut self, i: usize) {
        let worker = &self.workers[i];
        if !worker.broken && (worker.held.is_some() || !worker.initialized) {
            // A result (or the initializer's report) sent just before the end is in the
            // socket: take it first.
            if matches!(self.workers[i].conn.poll(Some(Duration::ZERO)), Ok(true)) {
                self.receive(i);
            }
        }
        let worker = self.workers.remove(i);
        let exitcode = match worker.process.join_timeout(Duration::ZERO) {
            Ok(Some(code)) => code,
            _ => worker.process.join().unwrap_or(-1),
        };
        // Unmapped before the replacement is forked, which would inherit the mapping and
        // keep the dead worker's mailbox pages alive as long as it lives. (Under Fork, the
        // workers started after this one inherited its mappings too, and keep those pages
        // until they end: not mended here; see the mailbox module.)
        drop(worker.mailboxes);
        if !worker.initialized {
            // Its initializer failed (or it died before it returned): the replacement waits
            // out a back-off, or the pool gives up.
            let message = worker.initializer_failed.clone().unwrap_or_else(|| {
                format!(
                    "the worker ended with exit code {exitcode} before its initializer returned"
                )
            });
            if let Verdict::GiveUp { .. } = self.restarts.failed(message, Instant::now())
                && let Some(failure) = self.given_up()
            {
                while let Some(chunk) = self.pending.pop_front() {
                    chunk.fail(failure.clone());
                }
            }
        } else if self.needed() {
            // The replacement first, so that whoever learns of the death from the failed
            // chunk already sees the pool at full strength.
            self.start_replacement();
        }
        self.publish_pids();
        if let Some(ticket) = worker.held {
            if worker.timed_out {
                let timeout = ticket.limit.map(|limit| limit.timeout).unwrap_or_default();
                ticket.finish(Err(ChunkFailure::TimedOut(timeout)));
                return;
            }
            ticket.finish(Err(ChunkFailure::WorkerDied {
                pid: worker.process.pid().unwrap_or_default(),
                exitcode,
            }));
        }
    }

    /// Kills the workers whose chunk's time is up (the chunk fails with `TimedOut` when
    /// they are seen to end, and they are replaced), and fails the waiting chunks whose
    /// time is up before they could start.
    fn enforce_time_limits(&mut self) {
        let now = Instant::now();
        let up = |limit: &Option<TimeLimit>| limit.is_some_and(|l| l.at <= now);
        for worker in &mut self.workers {
            if !worker.timed_out && worker.held.as_ref().is_some_and(|t| up(&t.limit)) {
                worker.timed_out = true;
                let _ = worker.process.kill();
            }
        }
        if self.pending.iter().any(|chunk| up(&chunk.limit)) {
            let (late, waiting) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition::<VecDeque<_>, _>(|chunk| up(&chunk.limit));
            self.pending = waiting;
            for chunk in late {
                let timeout = chunk.limit.map(|l| l.timeout).unwrap_or_default();
                chunk.fail(ChunkFailure::TimedOut(timeout));
            }
        }
    }

    /// The earliest time a chunk's time is up, among those not yet dealt with.
    fn next_time_limit(&self) -> Option<Instant> {
        let held = self
            .workers
            .iter()
            .filter(|w| !w.timed_out)
            .filter_map(|w| w.held.as_ref()?.limit);
        let pending = self.pending.iter().filter_map(|chunk| chunk.limit);
        held.chain(pending).map(|limit| limit.at).min()
    }

    /// Whether work may still come for a replacement worker.
    fn needed(&self) -> bool {
        (!self.closing || !self.pending.is_empty()) && self.restarts.given_up.is_none()
    }

    /// Starts a worker in place of one that ended.
    fn start_replacement(&mut self) {
        self.started += 1;
        match Worker::start(format!("PoolWorker-{}", self.started), &self.config) {
            Ok(fresh) => {
                self.workers.push(fresh);
                self.counters.worker_replaced();
            }
            Err(e) if self.workers.is_empty() => {
                // No worker left and none can be started: the work cannot be done.
                let reason = format!("no pool worker could be started: {e}");
                while let Some(chunk) = self.pending.pop_front() {
                    chunk.fail(ChunkFailure::Other(reason.clone()));
                }
            }
            Err(_) => {}
        }
    }

    /// Starts the replacements whose back-off has ended.
    fn start_due_replacements(&mut self) {
        let due = self.restarts.take_due(Instant::now());
        if due > 0 && self.needed() {
            for _ in 0..due {
                self.start_replacement();
            }
            self.publish_pids();
        }
    }

    /// How work fails once the pool has given up on its initializer.
    fn given_up(&self) -> Option<ChunkFailure> {
        let (message, attempts) = self.restarts.given_up.as_ref()?;
        Some(ChunkFailure::InitializerFailed {
            message: message.clone(),
            attempts: *attempts,
        })
    }

    /// After `close`, with all work done: each worker is told to stop and is joined.
    fn stop(&mut self) {
        let mut stop = Vec::new();
        if seal(&mut stop, &ToWorker::Stop).is_ok() {
            for worker in &self.workers {
                let _ = worker.conn.send_bytes(&stop);
            }
        }
        for worker in self.workers.drain(..) {
            let _ = worker.process.join();
        }
        self.publish_pids();
    }

    /// `terminate`: workers end now (SIGTERM, then SIGKILL), all unfinished work fails.
    fn terminate(&mut self) {
        for worker in &self.workers {
            let _ = worker.process.terminate();
        }
        for worker in self.workers.drain(..) {
            if !matches!(worker.process.join_timeout(TERMINATE_GRACE), Ok(Some(_))) {
                let _ = worker.process.kill();
                let _ = worker.process.join();
            }
            if let Some(ticket) = worker.held {
                ticket.finish(Err(ChunkFailure::Terminated));
            }
        }
        while let Some(chunk) = self.pending.pop_front() {
            chunk.fail(ChunkFailure::Terminated);
        }
        // Work submitted while the pool was being terminated fails too.
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Submit(chunk) = command {
                chunk.fail(ChunkFailure::Terminated);
            }
        }
        self.publish_pids();
    }

    fn publish_pids(&self) {
        *self.pids.lock() = self.workers.iter().map(Worker::pid).collect();
    }
}

/// The results in `message`, in a buffer of their size. They go to whoever holds the
/// job's results, as long as it likes (an `AsyncResult` nobody reads yet), and only `map`
/// gives buffers back: a small result received into a large recycled buffer would keep all
/// of it. Such a result is copied out, leaving the buffer in `message` to be given back;
/// one that fills most of its buffer takes it, leaving `message` empty.
fn fitted(message: &mut Vec<u8>) -> Vec<u8> {
    if message.capacity() / 2 <= message.len() {
        std::mem::take(message)
    } else {
        message.clone()
    }
}

/// The next pending chunk that may start, its claim taken; the chunks cancelled before it
/// fail with `Cancelled` on the way (their futures already say so).
fn next_to_start(pending: &mut VecDeque<PendingChunk>) -> Option<PendingChunk> {
    while let Some(chunk) = pending.pop_front() {
        if chunk.claim.as_ref().is_none_or(|claim| claim.start()) {
            return Some(chunk);
        }
        chunk.fail(ChunkFailure::Cancelled);
    }
    None
}

/// Empties the wake-up pipe (non-blocking).
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_result_does_not_keep_a_large_buffer_and_a_large_one_is_not_copied() {
        let mut big = Vec::with_capacity(4 << 20);
        big.extend_from_slice(&[7; 8]);
        let small = fitted(&mut big);
        assert_eq!(small, [7; 8]);
        assert!(small.capacity() < 1024, "{}", small.capacity());
        assert!(
            big.capacity() >= 4 << 20,
            "the large buffer is left to go back"
        );

        let mut full = Vec::with_capacity(1 << 20);
        full.resize(900 << 10, 1);
        let pointer = full.as_ptr();
        let kept = fitted(&mut full);
        assert_eq!(
            kept.as_ptr(),
            pointer,
            "a result that fills its buffer keeps it"
        );
        assert_eq!(full.capacity(), 0, "nothing is left to go back");
    }
}
