//! Helpers shared by the multiprocess tests: children that run a target under the start
//! method in force, shared words that are not themselves locks (and travel to a child as
//! its argument), and a small seeded random generator for kill timings.
//!
//! The children are targets, `fn`s started with `Process::target(f, args)` and no explicit
//! start method, so that one test binary runs them forked, spawned or served as
//! `MULTIPROC_START_METHOD` says.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use memmap2::MmapMut;
use proc_core::internal::handle_wire::{FdRef, ReceivedFd};
use proc_core::{Process, Target};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A generous bound for anything that must happen "eventually": only reached on a bug.
pub(crate) const EVENTUALLY: Duration = Duration::from_secs(60);

/// Starts a child that calls `target` with `args`, by the start method in force: a daemon,
/// so that a failing test does not leave the test binary waiting at exit for a child that
/// waits for a lock.
pub(crate) fn start<F, Args>(target: F, args: Args) -> Process
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args).with_daemon(true);
    p.start().expect("start a child");
    p
}

/// Joins a child, failing the test if it does not end within [`EVENTUALLY`].
pub(crate) fn join(p: &Process) -> i32 {
    p.join_timeout(EVENTUALLY)
        .expect("join")
        .unwrap_or_else(|| panic!("child {:?} did not end in time", p.pid()))
}

/// Kills a child and waits for it.
pub(crate) fn kill(p: &Process) {
    p.kill().expect("kill");
    assert_eq!(join(p), -9, "the child was expected to die of SIGKILL");
}

/// Polls the kernel's record of where the child sleeps until it is a futex wait: the child
/// has gone to sleep in a blocking call (acquire, wait, …), not merely been started.
pub(crate) fn wait_until_asleep_in_futex(p: &Process) {
    let pid = p.pid().expect("a started child");
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .unwrap_or_default()
        .contains("futex")
    {
        assert!(start.elapsed() < EVENTUALLY, "child {pid} never slept");
        std::thread::yield_now();
    }
}

/// A few 32-bit words of shared memory, independent of the primitives under test (so a
/// test can watch a primitive from the side, e.g. "the child is inside the lock now").
/// Clones share the words; passed as an argument of `Process::target`, the child maps the
/// same memory file, whatever the start method.
#[derive(Clone)]
pub(crate) struct Words(Arc<Mapped>);

struct Mapped {
    map: MmapMut,
    fd: OwnedFd,
    count: usize,
}

impl Words {
    pub(crate) fn new(count: usize) -> Words {
        let fd =
            nix::sys::memfd::memfd_create(c"test-words", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .expect("memfd_create");
        nix::unistd::ftruncate(&fd, (count * 4).max(4) as i64).expect("ftruncate");
        Words::map(fd, count).expect("mmap")
    }

    fn map(fd: OwnedFd, count: usize) -> std::io::Result<Words> {
        // SAFETY: a memory file at least `count` words long (made so by `new`, or received
        // from the process that made it); accessed only through atomics.
        let map = unsafe { MmapMut::map_mut(&fd) }?;
        if map.len() < count * 4 {
            return Err(std::io::Error::other(
                "the memory file is shorter than its words",
            ));
        }
        Ok(Words(Arc::new(Mapped { map, fd, count })))
    }

    pub(crate) fn at(&self, index: usize) -> &AtomicU32 {
        assert!(index < self.0.count.max(1));
        // SAFETY: in bounds (checked, and the map is at least count * 4 bytes), 4-aligned
        // (page-aligned base), only used atomically.
        unsafe { &*self.0.map.as_ptr().add(index * 4).cast::<AtomicU32>() }
    }

    /// Spins (yielding) until word `index` is at least `value`; fails after [`EVENTUALLY`].
    pub(crate) fn wait_for(&self, index: usize, value: u32) {
        let start = std::time::Instant::now();
        while self.at(index).load(Ordering::Acquire) < value {
            assert!(
                start.elapsed() < EVENTUALLY,
                "word {index} never reached {value}"
            );
            std::thread::yield_now();
        }
    }
}

/// Words travel as their memory file, as the handles of proc-sync do.
impl Serialize for Words {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (FdRef::new(self.0.fd.as_fd()), self.0.count as u64).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (fd, count): (ReceivedFd, u64) = Deserialize::deserialize(deserializer)?;
        Words::map(fd.into_inner(), count as usize).map_err(D::Error::custom)
    }
}

pub(crate) use multiproc_test_support::rng::Rng;

/// The generator of random kill moments: seeded from `PROC_SYNC_SEED` if set, else from
/// the clock; the seed is printed if the test fails.
pub(crate) fn rng() -> Rng {
    Rng::from_env("PROC_SYNC_SEED")
}
