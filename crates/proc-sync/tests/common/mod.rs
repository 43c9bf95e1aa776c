//! Helpers shared by the multiprocess tests: children from closures, shared words that are
//! not themselves locks, and a small seeded random generator for kill timings.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use memmap2::MmapMut;
use proc_core::Process;

/// A generous bound for anything that must happen "eventually": only reached on a bug.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

/// Starts a child running `body`: a daemon, so that a failing test does not leave the
/// test binary waiting at exit for a child that waits for a lock.
pub fn start(body: impl FnOnce() + Send + 'static) -> Process {
    let mut p = Process::new(body).with_daemon(true);
    p.start().expect("start a child");
    p
}

/// Joins a child, failing the test if it does not end within [`EVENTUALLY`].
pub fn join(p: &Process) -> i32 {
    p.join_timeout(EVENTUALLY)
        .expect("join")
        .unwrap_or_else(|| panic!("child {:?} did not end in time", p.pid()))
}

/// Kills a child and waits for it.
pub fn kill(p: &Process) {
    p.kill().expect("kill");
    assert_eq!(join(p), -9, "the child was expected to die of SIGKILL");
}

/// A few 32-bit words of shared memory, independent of the primitives under test (so a
/// test can watch a primitive from the side, e.g. "the child is inside the lock now").
pub struct Words {
    map: MmapMut,
    _fd: OwnedFd,
}

impl Words {
    pub fn new(count: usize) -> Words {
        let fd =
            nix::sys::memfd::memfd_create(c"test-words", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .expect("memfd_create");
        nix::unistd::ftruncate(&fd, (count * 4).max(4) as i64).expect("ftruncate");
        // SAFETY: a fresh memory file of the right size; accessed only through atomics.
        let map = unsafe { MmapMut::map_mut(&fd) }.expect("mmap");
        Words { map, _fd: fd }
    }

    pub fn at(&self, index: usize) -> &AtomicU32 {
        assert!(index * 4 + 4 <= self.map.len());
        // SAFETY: in bounds (checked), 4-aligned (page-aligned base), only used atomically.
        unsafe { &*self.map.as_ptr().add(index * 4).cast::<AtomicU32>() }
    }

    /// Spins (yielding) until word `index` is at least `value`; fails after [`EVENTUALLY`].
    pub fn wait_for(&self, index: usize, value: u32) {
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

/// splitmix64: a small, seeded generator for random kill moments. The seed comes from
/// `PROC_SYNC_SEED` if set, else from the clock; it is printed if the test fails.
pub struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("PROC_SYNC_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    ^ u64::from(std::process::id())
            });
        Rng { state: seed, seed }
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Spins for a random number of iterations below `n`: a random moment, not a sleep.
    pub fn spin(&mut self, n: u64) {
        for _ in 0..self.below(n) {
            std::hint::spin_loop();
        }
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "random kill moments came from seed {0}; rerun with PROC_SYNC_SEED={0}",
                self.seed
            );
        }
    }
}
