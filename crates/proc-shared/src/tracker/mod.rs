//! The resource tracker, as Python's `multiprocessing.resource_tracker`: blocks created and
//! never unlinked are unlinked when the process tree that created them has ended, with a
//! warning on stderr that names each.
//!
//! - [`process`]: the tracker process itself: started at the first `create` of a process
//!   tree, it reads records from a socket and, at end of file (every process that could
//!   write to it is gone, however it ended), unlinks what is still registered.
//! - [`table`]: the tracker's set of names, in memory it maps itself.
//! - This file: the creators' side. One end of the socket per process tree, inherited by
//!   forked children and carried by every [`SharedMemory`](crate::SharedMemory) that
//!   travels (a spawned child without a tracker adopts its sender's).
//!
//! The lock over this process's ends is held across every `fork` of the process (by
//! `pthread_atfork` handlers), so that a child forked while another thread held it finds it
//! free: a forked child creates blocks too.
//!
//! A record is one datagram of a `SOCK_SEQPACKET` socket: `R` or `U` (register,
//! unregister) and the block's name without its `/`. Datagrams arrive whole, and sending
//! never raises SIGPIPE (`MSG_NOSIGNAL`) if the tracker is gone.

mod process;
mod record;
mod table;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, send};
use nix::sys::stat::{SFlag, fstat};

use crate::error::{Error, Result};
use crate::name::Name;

use record::{MAX_RECORD, REGISTER, SHUT_DOWN, UNREGISTER};

/// This process's ends of tracker sockets.
struct Ends {
    /// The tracker this process registers its blocks with: started here, inherited through
    /// fork, or adopted from a received block.
    own: Option<OwnedFd>,
    /// Trackers of other trees whose blocks this process received: held open so that those
    /// blocks outlive their creators' trees while this process lives.
    others: Vec<OwnedFd>,
}

static ENDS: Mutex<Ends> = Mutex::new(Ends {
    own: None,
    others: Vec::new(),
});

fn ends() -> MutexGuard<'static, Ends> {
    hold_across_forks();
    lock_ends()
}

fn lock_ends() -> MutexGuard<'static, Ends> {
    // The data is a pair of descriptor lists, valid whatever a panicking holder did.
    ENDS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

thread_local! {
    /// The lock, taken by the thread that forks, from just before the fork until just after
    /// (in the parent, and in the child, whose only thread it is).
    static HELD_FOR_FORK: RefCell<Option<MutexGuard<'static, Ends>>> = const { RefCell::new(None) };
    /// Set while this thread forks the tracker itself, with the lock held already.
    static FORKING_TRACKER: Cell<bool> = const { Cell::new(false) };
}

/// Installs the fork handlers, once per process (a flag rather than a `Once`, which a child
/// forked while another thread ran it would wait on forever).
fn hold_across_forks() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.swap(true, Ordering::AcqRel) {
        // SAFETY: the handlers are `extern "C"` functions that live for the whole program;
        // they only take and release the lock of this module.
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
    }
}

extern "C" fn before_fork() {
    if FORKING_TRACKER.get() {
        return;
    }
    let guard = lock_ends();
    HELD_FOR_FORK.with(|held| *held.borrow_mut() = Some(guard));
}

extern "C" fn after_fork() {
    HELD_FOR_FORK.with(|held| drop(held.borrow_mut().take()));
}

/// Runs `f` (which forks the tracker) while this thread, which holds the lock, is known to.
fn forking_tracker<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FORKING_TRACKER.set(false);
        }
    }
    FORKING_TRACKER.set(true);
    let _reset = Reset;
    f()
}

/// Registers a block this process has just created, starting the tracker if this process
/// tree has none (or its tracker is gone).
pub(crate) fn register(name: &Name) -> Result<()> {
    let mut ends = ends();
    if let Some(own) = &ends.own {
        match send_record(own.as_fd(), REGISTER, name) {
            Ok(()) => return Ok(()),
            // The tracker is gone (killed from outside): start another below.
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED) => {}
            Err(e) => {
                return Err(Error::io(
                    "registering a block with the resource tracker",
                    e,
                ));
            }
        }
    }
    let own = forking_tracker(process::start)?;
    send_record(own.as_fd(), REGISTER, name)
        .map_err(|e| Error::io("registering a block with the resource tracker", e))?;
    ends.own = Some(own);
    Ok(())
}

/// Starts a tracker of its own for a [`SharedMemoryManager`](crate::SharedMemoryManager):
/// the manager's end of its socket.
pub(crate) fn start_for_manager() -> Result<OwnedFd> {
    // The lock is not held: this fork is like any other, and the handlers take the lock.
    process::start()
}

/// Registers a block created through a manager with the manager's tracker.
pub(crate) fn register_with(end: BorrowedFd<'_>, name: &Name) -> Result<()> {
    send_record(end, REGISTER, name).map_err(|e| match e {
        Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED => Error::ManagerShutDown,
        e => Error::io("registering a block with its manager", e),
    })
}

/// Forgets one registration of `name` with the manager's tracker at `end` (a create that
/// failed); a manager that is gone has nothing to forget.
pub(crate) fn unregister_with(end: BorrowedFd<'_>, name: &Name) {
    let _ = send_record(end, UNREGISTER, name);
}

/// Asks a manager's tracker to unlink its blocks now and end; waits until it has.
pub(crate) fn shut_down(end: OwnedFd) -> Result<()> {
    let record = [SHUT_DOWN];
    loop {
        match send(end.as_raw_fd(), &record, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            // Shut down by another holder, or killed: there is nothing left to do.
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED) => return Ok(()),
            Err(e) => return Err(Error::io("shutting the SharedMemoryManager down", e)),
        }
    }
    let mut answer = [0u8; 1];
    loop {
        // Its answer, or end of file if another holder's shutdown ended it first.
        match nix::sys::socket::recv(end.as_raw_fd(), &mut answer, MsgFlags::empty()) {
            Ok(_) | Err(Errno::ECONNRESET) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(Error::io(
                    "waiting for the SharedMemoryManager to shut down",
                    e,
                ));
            }
        }
    }
}

/// Tells this process's tracker that a block was unlinked. A tracker that never knew the
/// name ignores it; without a tracker there is nothing to tell.
pub(crate) fn unregister(name: &Name) {
    if let Some(own) = &ends().own {
        // A tracker that is gone has nothing to forget.
        let _ = send_record(own.as_fd(), UNREGISTER, name);
    }
}

/// Runs `f` with (a copy of) this process's end of its tracker's socket, if it has one, for
/// a block that travels to carry it. The lock is not held while `f` runs.
pub(crate) fn with_reporting_end<R>(f: impl FnOnce(Option<BorrowedFd<'_>>) -> R) -> R {
    // Without a copy (at the descriptor limit) the block travels without its tracker: the
    // receiver then starts its own if it creates blocks.
    let copy = ends().own.as_ref().and_then(|own| own.try_clone().ok());
    f(copy.as_ref().map(AsFd::as_fd))
}

/// Takes the end of a tracker socket that came with a received block: it becomes this
/// process's tracker if it has none; a tracker of another tree is held open.
pub(crate) fn adopt(end: OwnedFd) -> Result<()> {
    let identity = socket_identity(&end)?;
    let mut ends = ends();
    let known = ends
        .own
        .iter()
        .chain(ends.others.iter())
        .any(|held| socket_identity(held).is_ok_and(|id| id == identity));
    if known {
        return Ok(());
    }
    if ends.own.is_none() {
        ends.own = Some(end);
    } else {
        ends.others.push(end);
    }
    Ok(())
}

/// The device and inode of a socket: the same for every copy of one end.
pub(crate) fn socket_identity(end: &OwnedFd) -> Result<(u64, u64)> {
    let stat =
        fstat(end).map_err(|e| Error::io("fstat of a received resource tracker socket", e))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(Error::Received {
            reason: "the resource tracker descriptor sent with the block is not a socket"
                .to_string(),
        });
    }
    Ok((stat.st_dev, stat.st_ino))
}

fn send_record(end: BorrowedFd<'_>, kind: u8, name: &Name) -> nix::Result<()> {
    let mut record = [0u8; MAX_RECORD];
    let bytes = name.as_str().as_bytes();
    let len = 1 + bytes.len();
    record[0] = kind;
    record[1..len].copy_from_slice(bytes);
    loop {
        match send(end.as_raw_fd(), &record[..len], MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
