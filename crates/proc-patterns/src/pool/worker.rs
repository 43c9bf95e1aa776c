//! The worker's side of the pool: a child (started by the pool's start method) that
//! receives chunks on its connection, runs them, and sends the results back, until told to
//! stop, until its connection fails, or after `maxtasksperchild` chunks.

use proc_core::StartMethod;
use proc_ipc::Connection;
use serde::{Deserialize, Serialize};

use super::call::{Call, in_task};
use super::initializer::Initializer;
use super::mailbox::Mailbox;
use super::message::{FromWorker, KEEP_BUFFER, ToWorker, open, seal};

/// How the pool starts its workers.
#[derive(Clone)]
pub(crate) struct WorkerConfig {
    pub(crate) start_method: StartMethod,
    pub(crate) settings: WorkerSettings,
}

/// What a worker needs to know when it starts: it travels as the worker's argument.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct WorkerSettings {
    /// The initializer, run once before the first chunk.
    pub(crate) initializer: Option<Initializer>,
    /// Chunks to run before ending (the pool starts a fresh worker in its place).
    pub(crate) max_tasks: Option<u64>,
}

/// The two mailboxes of a worker (see the mailbox module), as its argument.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Mailboxes {
    pub(crate) inbox: Mailbox,
    pub(crate) outbox: Mailbox,
}

/// The body of a worker process, the target the pool starts. Returns when the worker
/// should end.
pub(crate) fn run(conn: Connection, mailboxes: Mailboxes, settings: WorkerSettings) {
    quiet_panics_in_tasks();
    keep_freed_memory();
    if let Some(initializer) = &settings.initializer {
        // The pool hands this worker no chunk until it has said how its initializer went.
        let (report, failed) = match initializer.run() {
            Ok(()) => (FromWorker::Ready, false),
            Err(message) => (
                FromWorker::InitializerFailed {
                    message: shortened(message),
                },
                true,
            ),
        };
        let mut sealed = Vec::new();
        if seal(&mut sealed, &report).is_err() || conn.send_bytes(&sealed).is_err() || failed {
            return;
        }
    }
    let Mailboxes { inbox, outbox } = mailboxes;
    let mut done = 0usize;
    // The buffers are kept from chunk to chunk: a chunk's notice (or the chunk itself, when
    // too large for the inbox) is received into the one, its results are encoded straight
    // into the other, and their pages are already there for the next chunk.
    let mut message = Vec::new();
    let mut reply = Vec::new();
    let mut notice = Vec::new();
    loop {
        // End of file or garbage from the pool: nothing sensible is left to do but end.
        if conn.recv_bytes_into(&mut message).is_err() {
            return;
        }
        let Ok((mut header, mut body)) = open::<ToWorker>(&message) else {
            return;
        };
        let mut chunk = &message[..];
        if let ToWorker::InInbox { len } = header {
            // SAFETY: the pool wrote the inbox before its notice and does not write it again
            // until this worker has replied (see the mailbox module).
            let Some(letter) = (unsafe { inbox.contents(len) }) else {
                return;
            };
            let Ok(opened) = open::<ToWorker>(letter) else {
                return;
            };
            (header, body, chunk) = (opened.0, opened.1, letter);
        }
        let (id, call, func) = match header {
            ToWorker::Stop | ToWorker::InInbox { .. } => return,
            ToWorker::Chunk { id, call, func } => (id, call, func),
        };
        reply.clear();
        let outcome = match (call.resolve(), func.resolve()) {
            (Ok(call), Ok(func)) => {
                // SAFETY: `call` names a `call_chunk::<A, R>` (type `Call`) of the pool's
                // executable, which this process runs, written by the pool into this
                // connection, which only the pool and this worker hold; `resolve` checked
                // that it lands in this executable's code.
                let call = unsafe { std::mem::transmute::<usize, Call>(call) };
                call(func, &chunk[..body], &mut reply)
            }
            (Err(e), _) | (_, Err(e)) => Err(format!("the chunk's function was not found: {e}")),
        };
        if outcome.is_err() {
            reply.clear();
        }
        let sent = seal(&mut reply, &FromWorker::Results { id, outcome })
            .map_err(proc_ipc::Error::from)
            .and_then(|()| {
                // SAFETY: this worker holds a chunk (it is replying to it), and the pool
                // reads the outbox only once the notice has come (see the mailbox module).
                unsafe {
                    outbox.post(
                        &conn,
                        &reply,
                        |len| FromWorker::InOutbox { len },
                        &mut notice,
                    )
                }
            });
        if let Err(e) = sent {
            // Results that cannot travel (too large) fail their chunk; a connection that is
            // gone ends the worker.
            if !e.is_about_one_item() {
                return;
            }
            reply.clear();
            let failed = FromWorker::Results {
                id,
                outcome: Err(format!("the chunk's results could not be sent: {e}")),
            };
            if seal(&mut reply, &failed).is_err() || conn.send_bytes(&reply).is_err() {
                return;
            }
        }
        for buffer in [&mut message, &mut reply] {
            if buffer.capacity() > KEEP_BUFFER {
                *buffer = Vec::new();
            }
        }
        done += 1;
        if settings.max_tasks.is_some_and(|max| done as u64 >= max) {
            return;
        }
    }
}

/// A message cut to at most 64 KiB (at a character boundary), to fit in a header.
fn shortened(mut message: String) -> String {
    const LIMIT: usize = 64 << 10;
    if message.len() > LIMIT {
        let mut end = LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" …");
    }
    message
}

/// Lets glibc's allocator keep the memory a chunk freed for the next chunk.
///
/// A chunk's buffers (the message, the decoded arguments, the results) are a few hundred
/// KiB each, freed at the end of the chunk and needed again for the next one. By default
/// glibc maps allocations of 128 KiB and more with `mmap` and unmaps them when freed, and
/// hands the top of its heap back to the kernel once more than 128 KiB of it is free (both
/// thresholds move up with what the process frees, but not far enough here): every chunk
/// then page-faults its buffers in again, zeroed by the kernel. A worker is the pool's own
/// process, so it keeps up to 64 MiB of freed heap and serves allocations below 32 MiB from
/// the heap. Allocators other than glibc's (musl's, or a `#[global_allocator]`) are left
/// alone.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets two tuning parameters of glibc's allocator; it is
        // called before this worker allocates anything for a task.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}

/// A panic inside a task is that task's error, sent back to the pool with its message:
/// printing it on the worker's stderr as well would only be noise. Other panics print as
/// usual.
fn quiet_panics_in_tasks() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !in_task() {
            default(info);
        }
    }));
}
