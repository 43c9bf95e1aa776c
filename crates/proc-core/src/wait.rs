//! [`wait`] and [`Waitable`]: Python's `multiprocessing.connection.wait`, waiting for the
//! first of several objects to be ready: connections with a message, processes that ended,
//! queues with an item.
//!
//! What has a file descriptor (a connection's socket, a process's pidfd) is `poll(2)`ed with
//! the others. A queue has none: its consumers sleep on a futex in shared memory, which
//! `poll` cannot watch. For the length of one call, each such object ([`Watch`]) gets a
//! thread of its own (a bridge) that sleeps on that futex as a consumer would, counted as a
//! sleeper so that producers wake it, and that writes a byte to a pipe the `poll` watches
//! once the object is ready. Nothing spins while nothing happens: the caller sleeps in
//! `poll`, the bridges in `futex`.
//!
//! No wake-up is lost: a bridge counts itself as a sleeper before it looks whether the
//! object is ready, and only then sleeps (see [`Watch::sleep`]), so a change made after its
//! look wakes it; the caller polls the bridges' pipe only after starting them, and what a
//! bridge writes stays in the pipe until the `poll` reads it. When the call ends, each
//! bridge still asleep is woken by [`Watch::interrupt`] and joined: no thread outlives the
//! call, so a process that forks afterwards forks with the threads it had before.

use std::io::{PipeWriter, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};

use crate::error::{Error, Result};
use crate::join_handle::JoinHandle;
use crate::process::Process;
use crate::process_info::ProcessInfo;
use crate::wait_readable::poll_until;

/// Something [`wait`] can wait for: it says how its readiness is seen ([`WaitSource`]).
///
/// multiproc implements it for `Process` (ready once the child ended), `JoinHandle<T>`
/// (likewise), `ProcessInfo` (the parent a child watches, ready once it ended), the connections and queues of the ipc layer (ready when a receive or a get
/// would not block), and for descriptors (`BorrowedFd`, `OwnedFd`, `UnixStream`,
/// `TcpStream`, `PipeReader`: ready when readable or hung up, as Python's `wait` takes an
/// integer or a socket). A type of your own implements it by handing out its descriptor:
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
///
/// use proc_core::{WaitSource, Waitable, wait};
///
/// /// A doorbell made of a pipe: rung by writing to it.
/// struct Bell(std::io::PipeReader);
///
/// impl Waitable for Bell {
///     fn wait_source(&self) -> proc_core::Result<WaitSource<'_>> {
///         Ok(WaitSource::Readable(self.0.as_fd()))
///     }
/// }
///
/// let (read, mut write) = std::io::pipe()?;
/// let bell = Bell(read);
/// assert!(wait(&[&bell], Some(Duration::ZERO))?.is_empty());
/// std::io::Write::write_all(&mut write, b"!")?;
/// assert_eq!(wait(&[&bell], None)?, [0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Waitable {
    /// How [`wait`] sees whether this object is ready; an error when it cannot be waited
    /// for (a process not started, a closed connection, the writing end of a one-way pipe).
    fn wait_source(&self) -> Result<WaitSource<'_>>;
}

/// How [`wait`] sees that an object is ready: given by [`Waitable::wait_source`].
#[non_exhaustive]
pub enum WaitSource<'a> {
    /// Ready already, whatever its descriptor says (a connection holding a message it has
    /// read from its socket but not yet handed out).
    Ready,
    /// Ready when this descriptor is readable, hung up, or in error (as `poll(2)` reports
    /// `POLLIN`, `POLLHUP`, `POLLERR`).
    Readable(BorrowedFd<'a>),
    /// Ready as the [`Watch`] says, which has no descriptor to poll: watched by a thread of
    /// its own during the wait.
    Watched(&'a dyn Watch),
}

impl std::fmt::Debug for WaitSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitSource::Ready => f.write_str("Ready"),
            WaitSource::Readable(fd) => f.debug_tuple("Readable").field(fd).finish(),
            WaitSource::Watched(_) => f.write_str("Watched(..)"),
        }
    }
}

/// An object whose readiness no descriptor shows (a queue in shared memory, whose waiters
/// sleep on a futex): [`wait`] watches it from a thread that calls [`sleep`](Self::sleep)
/// until [`is_ready`](Self::is_ready) holds, and ends that sleep with
/// [`interrupt`](Self::interrupt) when the wait is over.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::{Condvar, Mutex};
/// use std::time::Duration;
///
/// use proc_core::{WaitSource, Waitable, Watch, wait};
///
/// /// A counter of items, in one process, with a condition variable for its sleepers.
/// #[derive(Default)]
/// struct Pile {
///     items: Mutex<u32>,
///     changed: Condvar,
/// }
///
/// impl Watch for Pile {
///     fn is_ready(&self) -> bool {
///         *self.items.lock().unwrap() > 0
///     }
///     fn sleep(&self, stop: &dyn Fn() -> bool) {
///         let items = self.items.lock().unwrap();
///         // Checked under the lock that `interrupt` and the producers take: nothing lost.
///         if *items == 0 && !stop() {
///             drop(self.changed.wait(items).unwrap());
///         }
///     }
///     fn interrupt(&self) {
///         let _held = self.items.lock().unwrap();
///         self.changed.notify_all();
///     }
/// }
///
/// impl Waitable for Pile {
///     fn wait_source(&self) -> proc_core::Result<WaitSource<'_>> {
///         Ok(WaitSource::Watched(self))
///     }
/// }
///
/// let pile = Pile::default();
/// assert!(wait(&[&pile], Some(Duration::from_millis(10)))?.is_empty());
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         std::thread::sleep(Duration::from_millis(10));
///         *pile.items.lock().unwrap() += 1;
///         pile.changed.notify_all();
///     });
///     assert_eq!(wait(&[&pile], None).unwrap(), [0]);
/// });
/// # Ok::<(), proc_core::Error>(())
/// ```
pub trait Watch: Sync {
    /// Whether the object is ready now.
    fn is_ready(&self) -> bool;

    /// Sleeps until the object may have become ready, or until `stop()` holds after an
    /// [`interrupt`](Self::interrupt). Returning early is allowed (the caller looks again);
    /// sleeping past a change is not: the sleeper must be counted (or hold a lock) before
    /// it looks at `is_ready()` and `stop()` for the last time, so that a change or an
    /// interrupt made after that look wakes it.
    fn sleep(&self, stop: &dyn Fn() -> bool);

    /// Wakes every [`sleep`](Self::sleep) of this object in this process, so that each
    /// looks at its `stop` again. (Waking other sleepers too is allowed: they look again.)
    fn interrupt(&self);
}

/// Waits until at least one of `objects` is ready, or until `timeout` has passed (never,
/// for `None`), and returns the indices of the ready ones, in the order given: empty when
/// the timeout passed first. As Python's `multiprocessing.connection.wait`.
///
/// Ready means: a connection has a message to receive, or its peer is gone (a `recv` would
/// not block); a process or join handle has ended; a queue holds an item or is closed (a
/// `get` would not block, unless another consumer takes the item first); a descriptor is
/// readable or hung up. A timeout of zero looks once without waiting. Waiting costs no CPU
/// time: see the module's notes in the source for how a queue is watched.
///
/// An object that cannot be waited for (a process not yet started, a closed connection)
/// makes it an error at once.
///
/// ```
/// use std::time::Duration;
///
/// use proc_core::{Process, Waitable, wait};
///
/// let (read, mut write) = std::io::pipe()?;
/// let mut quick = Process::new(|| {});
/// let mut slow = Process::new(|| std::thread::sleep(Duration::from_secs(10)));
/// quick.start()?;
/// slow.start()?;
/// // Whatever is ready first: here, the quick process.
/// assert_eq!(wait(&[&slow as &dyn Waitable, &quick, &read], None)?, [1]);
/// std::io::Write::write_all(&mut write, b"x")?;
/// assert_eq!(wait(&[&slow as &dyn Waitable, &read], Some(Duration::from_secs(10)))?, [1]);
/// slow.kill()?;
/// slow.join()?;
/// assert_eq!(wait(&[&slow as &dyn Waitable, &quick, &read], None)?, [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    // A timeout too large to add to the clock waits as without one.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let sources = objects
        .iter()
        .map(|object| object.wait_source())
        .collect::<Result<Vec<_>>>()?;
    loop {
        let ready = ready_now(&sources)?;
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        // Something may be ready now (or an item went to another consumer first): look
        // again, and wait again if nothing is.
        sleep_until_any(&sources, deadline)?;
    }
}

/// The indices of the sources that are ready now, without waiting.
fn ready_now(sources: &[WaitSource<'_>]) -> Result<Vec<usize>> {
    let (mut fds, at) = poll_fds(sources);
    if !fds.is_empty() {
        poll_until(&mut fds, Some(Instant::now())).map_err(|e| Error::io("poll", e))?;
    }
    let mut fd_events = fds.iter().zip(at);
    let mut ready = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let is_ready = match source {
            WaitSource::Ready => true,
            WaitSource::Watched(watch) => watch.is_ready(),
            WaitSource::Readable(_) => {
                let events = fd_events
                    .next()
                    .filter(|(_, at)| *at == index)
                    .and_then(|(fd, _)| fd.revents())
                    .unwrap_or(PollFlags::empty());
                if events.contains(PollFlags::POLLNVAL) {
                    return Err(Error::io(
                        "poll",
                        std::io::Error::from_raw_os_error(libc::EBADF),
                    ));
                }
                events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            }
        };
        if is_ready {
            ready.push(index);
        }
    }
    Ok(ready)
}

/// A `PollFd` for each source with a descriptor, and the index of its source.
fn poll_fds<'a>(sources: &[WaitSource<'a>]) -> (Vec<PollFd<'a>>, Vec<usize>) {
    sources
        .iter()
        .enumerate()
        .filter_map(|(index, source)| match source {
            WaitSource::Readable(fd) => Some((PollFd::new(*fd, PollFlags::POLLIN), index)),
            WaitSource::Ready | WaitSource::Watched(_) => None,
        })
        .unzip()
}

/// Sleeps until one of the sources may be ready, or until `deadline`: a `poll` of the
/// descriptors and, when some sources are watched, of the pipe their bridges write to.
fn sleep_until_any(sources: &[WaitSource<'_>], deadline: Option<Instant>) -> Result<()> {
    let (mut fds, _) = poll_fds(sources);
    let watched: Vec<&dyn Watch> = sources
        .iter()
        .filter_map(|source| match source {
            WaitSource::Watched(watch) => Some(*watch),
            WaitSource::Ready | WaitSource::Readable(_) => None,
        })
        .collect();
    let poll_error = |e| Error::io("poll", e);
    if watched.is_empty() {
        return poll_until(&mut fds, deadline).map(drop).map_err(poll_error);
    }
    // The bridges tell, the poll hears.
    let (heard, tell) = std::io::pipe().map_err(|e| Error::io("pipe for watching queues", e))?;
    fds.push(PollFd::new(heard.as_fd(), PollFlags::POLLIN));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut bridges = Vec::with_capacity(watched.len());
        let mut started = Ok(());
        for watch in watched {
            let (stop, tell) = (&stop, &tell);
            let spawned = std::thread::Builder::new()
                .name("multiproc-wait".into())
                .spawn_scoped(scope, move || bridge(watch, stop, tell));
            match spawned {
                Ok(thread) => bridges.push((watch, thread)),
                Err(e) => {
                    started = Err(Error::io("spawning a thread to watch a queue", e));
                    break;
                }
            }
        }
        let outcome = started.and_then(|()| poll_until(&mut fds, deadline).map_err(poll_error));
        stop.store(true, Ordering::SeqCst);
        for (watch, thread) in &bridges {
            // One that has finished (it found its object ready) needs no wake-up.
            if !thread.is_finished() {
                watch.interrupt();
            }
        }
        // The scope joins the bridges: each wakes, sees `stop`, and ends.
        outcome.map(drop)
    })
}

/// A bridge: sleeps on `watch` until it is ready, then writes a byte to `tell` (whose
/// reading end the caller's `poll` watches); or ends without writing once `stop` is set.
fn bridge(watch: &dyn Watch, stop: &AtomicBool, tell: &PipeWriter) {
    let stopped = || stop.load(Ordering::SeqCst);
    while !stopped() {
        if watch.is_ready() {
            // A pipe whose reader the caller holds open, with room for a byte from each
            // bridge: this cannot fail. If it did, the caller would still look at every
            // object when its deadline passes.
            let _ = (&mut &*tell).write_all(&[1]);
            return;
        }
        watch.sleep(&stopped);
    }
}

impl Waitable for Process {
    /// Ready once the child has ended (its [`sentinel`](Process::sentinel) turns readable);
    /// an error before `start`. One whose end is known already (joined, or seen ended by
    /// `is_alive`) is ready without a look at its sentinel: a served child's sentinel is a
    /// status pipe whose news `join` has read.
    fn wait_source(&self) -> Result<WaitSource<'_>> {
        let sentinel = self.sentinel()?;
        Ok(match self.exitcode() {
            Some(_) => WaitSource::Ready,
            None => WaitSource::Readable(sentinel),
        })
    }
}

impl Waitable for ProcessInfo {
    /// Ready once that process has ended: its [`sentinel`](ProcessInfo::sentinel), which
    /// [`parent_process`](crate::parent_process) gives a child, turns readable. An error
    /// for a `ProcessInfo` without one.
    fn wait_source(&self) -> Result<WaitSource<'_>> {
        Ok(WaitSource::Readable(self.sentinel()?))
    }
}

impl<T> Waitable for JoinHandle<T> {
    /// Ready once the child has ended; `join` then returns at once.
    fn wait_source(&self) -> Result<WaitSource<'_>> {
        self.process().wait_source()
    }
}

impl Waitable for BorrowedFd<'_> {
    /// Ready when the descriptor is readable or hung up.
    fn wait_source(&self) -> Result<WaitSource<'_>> {
        Ok(WaitSource::Readable(self.as_fd()))
    }
}

/// Descriptors and the standard library's readable ends: ready when readable or hung up.
macro_rules! readable_when_its_fd_is {
    ($($owner:ty),*) => {$(
        impl Waitable for $owner {
            /// Ready when its descriptor is readable or hung up.
            fn wait_source(&self) -> Result<WaitSource<'_>> {
                Ok(WaitSource::Readable(self.as_fd()))
            }
        }
    )*};
}

readable_when_its_fd_is!(
    OwnedFd,
    std::os::unix::net::UnixStream,
    std::net::TcpStream,
    std::io::PipeReader
);
