//! # proc-patterns: joinable queues, producer/consumer and process pools
//!
//! The patterns layer of [multiproc](https://docs.rs/multiproc): what people use Python's
//! `multiprocessing` for, built on [`proc_ipc`]'s queues and connections and
//! [`proc_sync`]'s shared memory.
//!
//! - [`JoinableQueue`]: a queue whose consumers mark items done, so that `join` waits until
//!   everything put so far has been processed, in every process.

#![warn(missing_docs)]

mod error;
mod joinable;

pub use error::{Error, Result};
pub use joinable::{JoinableQueue, JoinableQueueBuilder};
mod pool;

pub use pool::{AsyncResult, MapIter, Pool, PoolBuilder, UnorderedIter};
