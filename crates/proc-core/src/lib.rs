//! # proc-core: processes for multiproc
//!
//! The process layer of [multiproc](https://docs.rs/multiproc): Python's
//! `multiprocessing.Process` for Rust, with the lifecycle exactly right.
//!
//! - [`Process`]: start a child running a closure ([`Process::new`]) or a function with
//!   arguments ([`Process::target`]); name it, make it a daemon, join it (with or without a
//!   timeout), read its exit code, terminate or kill it, or poll its [`sentinel`](Process::sentinel).
//! - [`spawn`] → [`JoinHandle<T>`]: `std::thread::spawn` across processes; `join` returns the
//!   child's value (any serde type) or a [`JoinError`] saying how it ended instead.
//! - [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`], [`exit`].
//!
//! ```
//! use proc_core::{current_process, spawn, Process};
//!
//! // A child that computes a value and hands it back.
//! let h = spawn(|| format!("{} says hi", current_process().name()))?;
//! assert_eq!(h.join().unwrap(), "Process-1 says hi");
//!
//! // A child whose memory is its own: the parent's copy is untouched.
//! let mut n = 100;
//! let mut p = Process::new(move || {
//!     n = 0;
//!     assert_eq!(n, 0);
//! });
//! p.start()?;
//! assert_eq!(p.join()?, 0);
//! assert_eq!(n, 100);
//! # Ok::<(), proc_core::Error>(())
//! ```
//!
//! ## Guarantees
//! - Exit codes as Python: 0 when the body returns; 1 when it panics (the message goes to
//!   the child's stderr); `n` for [`exit(n)`](exit); `-signum` when a signal ended it.
//! - Output: stdio is flushed before the fork (nothing prints twice) and when the child
//!   ends (nothing is lost, even without a trailing newline).
//! - No zombies, no leaked file descriptors: every child is reaped, by `join`,
//!   `is_alive`, `exitcode`, [`active_children`], the next `start`, or at exit; a child whose
//!   handle was dropped is reaped in the same ways.
//! - Signals go through a pidfd, so a recycled pid is never hit.
//! - At normal exit, daemon children are terminated and the others joined. A daemon child
//!   dies with its parent even when the parent is SIGKILLed (see the `lifeline` module's
//!   notes in the source), and may not start children of its own.
//!
//! ## Threads and fork
//! Processes are started with `fork(2)`. Forking a process that runs several threads is
//! risky: only the forking thread exists in the child, so a lock another thread held at
//! that moment stays locked there. multiproc holds its own locks (and stdout's and
//! stderr's) across the fork so that they are usable in the child, and prints one warning
//! per process when it forks with more than one thread running. Start child processes
//! before creating threads.

#![warn(missing_docs)]

mod child;
mod code;
pub mod codec;
mod error;
mod exit;
mod handle;
mod info;
mod lifeline;
mod method;
mod pidfd;
mod poll;
mod process;
mod start;
mod state;
mod target;
pub mod travel;

pub use code::CodeAddress;
pub use codec::CodecError;
pub use error::{Error, JoinError, Result};
pub use exit::exit;
pub use handle::{JoinHandle, RESULT_LIMIT, panic_message, spawn};
pub use info::{ProcessInfo, active_children, cpu_count, current_process, parent_process};
pub use method::{START_METHOD_ENV, StartMethod, get_start_method, init, set_start_method};
pub use poll::wait_readable;
pub use process::Process;
pub use start::task::TASK_ERROR_EXIT_CODE;
pub use target::Target;
