//! The worker's side of the pool: a forked child that receives chunks on its connection,
//! runs them, and sends the results back, until told to stop, until its connection fails,
//! or after `maxtasksperchild` chunks.

use proc_core::codec::ByteBuf;
use proc_ipc::Connection;

use super::task::{Call, FromWorker, ToWorker, in_task};

/// What a worker needs to know when it starts.
#[derive(Clone, Copy)]
pub(crate) struct WorkerConfig {
    pub(crate) initializer: Option<fn()>,
    /// Chunks to run before ending (the pool starts a fresh worker in its place).
    pub(crate) max_tasks: Option<usize>,
}

/// The body of a worker process. Returns when the worker should end.
pub(crate) fn run(conn: Connection, config: WorkerConfig) {
    quiet_panics_in_tasks();
    if let Some(initializer) = config.initializer {
        initializer();
    }
    let mut done = 0usize;
    loop {
        // End of file or garbage from the pool: nothing sensible is left to do but end.
        let Ok(message) = conn.recv::<ToWorker>() else {
            return;
        };
        let (id, call, func, inputs) = match message {
            ToWorker::Stop => return,
            ToWorker::Chunk {
                id,
                call,
                func,
                inputs,
            } => (id, call, func, inputs),
        };
        // SAFETY: `call` is the address of a `call_chunk::<A, R>` (type `Call`), written by
        // the pool into this connection, which only the pool and this worker hold; this
        // process is a fork of the pool's, so the address names the same function here.
        let call = unsafe { std::mem::transmute::<usize, Call>(call) };
        let outcome = call(func, &inputs).map(ByteBuf::from);
        drop(inputs);
        let reply = FromWorker { id, outcome };
        if let Err(e) = conn.send(&reply) {
            // Results that cannot travel (too large, or not encodable) fail their chunk; a
            // connection that is gone ends the worker.
            if !e.is_about_one_item() {
                return;
            }
            let failed = FromWorker {
                id,
                outcome: Err(format!("the chunk's results could not be sent: {e}")),
            };
            if conn.send(&failed).is_err() {
                return;
            }
        }
        done += 1;
        if config.max_tasks.is_some_and(|max| done >= max) {
            return;
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
