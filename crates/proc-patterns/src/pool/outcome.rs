//! A chunk's outcome, as the driver thread sends it back to the caller's thread: a
//! [`ChunkDone`] on the job's channel, holding the chunk's encoded [`Results`] or the
//! [`ChunkFailure`] that failed all of its tasks.

use proc_core::codec::CodecError;

use super::message::Shape;
use crate::error::{Error, Result};

/// Why a whole chunk failed; turned into one [`Error`] per task of the chunk.
#[derive(Debug, Clone)]
pub(crate) enum ChunkFailure {
    WorkerDied {
        pid: u32,
        exitcode: i32,
    },
    Terminated,
    Closed,
    Codec(CodecError),
    Invalid(&'static str),
    InitializerFailed {
        message: String,
        attempts: u32,
    },
    TimedOut(std::time::Duration),
    /// Cancelled (by its future) before a worker got it.
    Cancelled,
    Other(String),
}

impl ChunkFailure {
    pub(crate) fn to_error(&self) -> Error {
        match self {
            ChunkFailure::WorkerDied { pid, exitcode } => Error::WorkerDied {
                pid: *pid,
                exitcode: *exitcode,
            },
            ChunkFailure::Terminated => Error::PoolTerminated,
            ChunkFailure::Closed => Error::PoolClosed,
            ChunkFailure::Codec(e) => Error::Codec(e.clone()),
            ChunkFailure::Invalid(reason) => Error::InvalidArgument { reason },
            ChunkFailure::TimedOut(timeout) => Error::TimedOut { timeout: *timeout },
            ChunkFailure::Cancelled => Error::Cancelled,
            ChunkFailure::InitializerFailed { message, attempts } => Error::InitializerFailed {
                message: message.clone(),
                attempts: *attempts,
            },
            ChunkFailure::Other(message) => Error::Codec(CodecError::Decode(message.clone())),
        }
    }
}

/// A finished chunk, as the driver sends it: its position in its job, and its encoded
/// results or why it failed.
#[derive(Debug)]
pub(crate) struct ChunkDone {
    pub(crate) index: usize,
    pub(crate) outcome: Result<Results, ChunkFailure>,
}

/// The encoded results of a chunk, as a worker sent them.
#[derive(Debug)]
pub(crate) struct Results {
    pub(crate) shape: Shape,
    pub(crate) bytes: Vec<u8>,
}
