//! [`Pool`]'s handle: what the pool's process holds of a pool (its calls are in the
//! module's other files).

use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::driver::Command;
use super::spares::Spares;
use super::stats::Counters;

/// A pool of worker processes, as Python's `multiprocessing.Pool`.
///
/// Task functions are plain `fn(A) -> R` (a function item or a closure that captures
/// nothing), with `A` and `R` any serde types: workers run this executable (forked,
/// spawned or served, by the [start method](crate::PoolBuilder::start_method) in force), so a
/// function is named by its offset in it. Work is sent in chunks (see
/// [`PoolBuilder::chunksize`](crate::PoolBuilder::chunksize)) so that small tasks are not dominated by the cost of
/// sending them.
///
/// ```
/// use proc_patterns::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=5)?, [1, 4, 9, 16, 25]);
/// assert_eq!(pool.apply(square, 9)?, 81);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), proc_patterns::Error>(())
/// ```
///
/// ## Failures
/// A task that panics yields [`Error::TaskPanicked`](crate::Error::TaskPanicked) with the panic's message, for that
/// task only: the others and the pool go on. A worker that dies while it holds a chunk
/// (killed from outside, for example) yields [`Error::WorkerDied`](crate::Error::WorkerDied) for that chunk's tasks,
/// and a fresh worker takes its place. A dropped pool terminates its workers and reaps
/// them: no zombies, no file descriptors left behind.
///
/// ## Threads
/// Under the Fork start method, the pool forks its first workers before it starts its one
/// thread (the driver), so creating a pool in a single-threaded program forks from a single
/// thread. Workers that replace dead ones, or those ended by `maxtasksperchild`, are forked
/// from the driver thread: proc-core then prints its one warning about forking a
/// multi-threaded process. Under Spawn and ForkServer nothing is forked from this process,
/// so there is nothing to warn about.
///
/// ## Memory
/// Where the allocator is glibc's, a worker keeps up to 64 MiB of the memory its tasks and
/// chunks freed instead of handing it back to the kernel at once, so that the next chunk's
/// buffers are not page-faulted in again (`mallopt`, in the worker only; the pool's own
/// process is left alone).
pub struct Pool {
    pub(super) commands: Sender<Command>,
    /// The write end of the driver's wake-up pipe.
    pub(super) wake: OwnedFd,
    pub(super) driver: Mutex<Option<JoinHandle<()>>>,
    pub(super) pids: Arc<Mutex<Vec<u32>>>,
    pub(super) processes: usize,
    pub(super) chunksize: Option<usize>,
    pub(super) closed: AtomicBool,
    /// Numbers the chunks, so that a worker's reply is matched to the chunk it holds.
    pub(super) next_id: AtomicU64,
    /// Message buffers the driver has sent, for the next chunks.
    pub(super) spares: Arc<Spares>,
    /// Disconnected once the driver has ended (its sender is dropped with it).
    pub(super) driver_alive: Receiver<Infallible>,
    /// What [`stats`](Pool::stats) reports.
    pub(super) counters: Arc<Counters>,
}
