//! The driver's handle on one worker process: the process, the parent's end of its
//! connection, its mailboxes, and the chunk it holds ([`Ticket`]).

use std::time::{Duration, Instant};

use proc_core::Process;
use proc_core::codec::CodecError;
use proc_ipc::Connection;

use super::mailbox::Mailbox;
use super::message::{FromWorker, MESSAGE_LIMIT, Shape, ToWorker, open};
use super::outcome::{ChunkFailure, Results};
use super::sink::Sink;
use super::worker::{self, Mailboxes, WorkerConfig};
use crate::error::Result;

/// The time a chunk was given (`apply_timeout`) and when it is up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeLimit {
    pub(crate) at: Instant,
    pub(crate) timeout: Duration,
}

/// A chunk a worker holds: where its result goes.
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) index: usize,
    pub(super) len: usize,
    pub(super) sink: Sink,
    /// When the chunk's time is up (`apply_timeout`), and the time it was given.
    pub(super) limit: Option<TimeLimit>,
}

impl Ticket {
    pub(super) fn finish(self, outcome: Result<Results, ChunkFailure>) {
        self.sink.finish(self.index, self.len, outcome);
    }
}

/// One worker process, the parent's end of its connection, and its mailboxes.
pub(crate) struct Worker {
    pub(super) process: Process,
    pub(super) conn: Connection,
    pub(super) mailboxes: Mailboxes,
    pub(super) held: Option<Ticket>,
    pub(super) done: usize,
    /// Reached `maxtasksperchild`: it ends by itself and gets no more work.
    pub(super) retiring: bool,
    /// The connection failed or hung up: the pidfd will say the rest.
    pub(super) broken: bool,
    /// Its initializer has returned (or it has none): it takes chunks.
    pub(super) initialized: bool,
    /// Its initializer failed, with this message; it ends.
    pub(super) initializer_failed: Option<String>,
    /// It was killed because the chunk it held ran out of time.
    pub(super) timed_out: bool,
}

/// A worker's message, read from its connection.
pub(super) enum Reply {
    /// The results of chunk `id`: their shape and the length of their body, the beginning
    /// of the buffer they were received into; or why the chunk failed.
    Results {
        id: u64,
        outcome: Result<Shape, String>,
        body: usize,
    },
    Ready,
    InitializerFailed(String),
}

impl Worker {
    /// Forks a worker named `name`.
    pub(crate) fn start(name: String, config: &WorkerConfig) -> Result<Worker> {
        let (conn, child_end) = proc_ipc::pipe()?;
        let conn = conn.with_limit(MESSAGE_LIMIT);
        let child_end = child_end.with_limit(MESSAGE_LIMIT);
        let mailboxes = Mailboxes {
            inbox: Mailbox::new()?,
            outbox: Mailbox::new()?,
        };
        let mut process = Process::target(
            worker::run,
            (child_end, mailboxes.clone(), config.settings.clone()),
        )
        .with_name(name)
        .with_daemon(true)
        .with_start_method(config.start_method);
        process.start()?;
        Ok(Worker {
            process,
            conn,
            mailboxes,
            held: None,
            done: 0,
            retiring: false,
            broken: false,
            initialized: config.settings.initializer.is_none(),
            initializer_failed: None,
            timed_out: false,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.process.pid().unwrap_or_default()
    }

    /// Hands the worker, which is idle, a sealed chunk: through its inbox and a notice of
    /// the chunk's length (sealed into `notice`) when it fits there, otherwise through the
    /// connection.
    pub(super) fn send_chunk(
        &self,
        message: &[u8],
        notice: &mut Vec<u8>,
    ) -> Result<(), proc_ipc::Error> {
        // SAFETY: the worker holds no chunk, so it does not read its inbox until the notice
        // has come (see the mailbox module).
        unsafe {
            self.mailboxes
                .inbox
                .post(&self.conn, message, |len| ToWorker::InInbox { len }, notice)
        }
    }

    /// Receives the worker's next message into `message`. A reply left in the outbox is
    /// copied out of it first.
    pub(super) fn receive_reply(&self, message: &mut Vec<u8>) -> Result<Reply, proc_ipc::Error> {
        self.conn.recv_bytes_into(message)?;
        let (mut header, mut body) = open::<FromWorker>(message)?;
        if let FromWorker::InOutbox { len } = header {
            // SAFETY: the worker wrote its outbox before its notice, and writes it again only
            // once it holds another chunk, which this thread has not handed it yet.
            if !unsafe { self.mailboxes.outbox.copy_out(len, message) } {
                return Err(CodecError::Decode(format!(
                    "a reply of {len} bytes is announced in an outbox of {} bytes",
                    self.mailboxes.outbox.capacity()
                ))
                .into());
            }
            (header, body) = open::<FromWorker>(message)?;
        }
        match header {
            FromWorker::Results { id, outcome } => Ok(Reply::Results { id, outcome, body }),
            FromWorker::Ready => Ok(Reply::Ready),
            FromWorker::InitializerFailed { message } => Ok(Reply::InitializerFailed(message)),
            FromWorker::InOutbox { .. } => Err(CodecError::Decode(
                "a reply in the outbox announces another one".to_string(),
            )
            .into()),
        }
    }
}
