//! A futex doorbell: a word to sleep on until another process changes something that both
//! watch, with no system call on either side while nobody sleeps.

use std::sync::atomic::{AtomicU32, Ordering, fence};

use crate::deadline::Deadline;
use crate::futex::{self, Wake};

/// The futex bitset of ordinary sleepers.
const SLEEPER: u32 = 1;

/// The futex bitset of watchers, which [`Doorbell::wake_watchers`] wakes alone.
const WATCHER: u32 = 2;

/// A sequence word and a count of its sleepers, in shared memory: the waking side rings it
/// after each change of a word the sleeping side watches; the sleeping side sleeps on it
/// only while that word has not changed.
///
/// The protocol that makes a lost wake-up impossible: the sleeper reads the sequence word,
/// counts itself in, looks at the watched word once more, and sleeps only if it still has
/// not changed and only while the sequence word still holds what it read. The ringer stores
/// the watched word (SeqCst), then reads the count of sleepers; only when it is not zero
/// does it bump the sequence word and call `FUTEX_WAKE`. All four accesses are SeqCst, so
/// they fall in one order: either the ringer's read of the count comes after the count went
/// up (it bumps the word the sleeper read, so the futex wait returns at once or is woken),
/// or the sleeper's last look comes after the change (it does not sleep). When nobody
/// sleeps, a ring costs one read of a line nobody writes. A process killed while asleep
/// leaves the count one too high, which costs a spare `FUTEX_WAKE` per ring, never a missed
/// one.
///
/// All-zero is a valid doorbell (nobody asleep), so it may live in a zeroed shared region,
/// such as the header of a [`MutexRegion`](crate::mutex_region::MutexRegion) or a
/// [`SharedAtomics`](crate::shared_atomics::SharedAtomics) block.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// use proc_sync::internal::{Deadline, Doorbell, futex};
///
/// let bell = Doorbell::default();
/// let watched = AtomicU32::new(0);
/// // Nobody changes `watched`: the sleep ends at its deadline.
/// let soon = Deadline::after(Duration::from_millis(1));
/// while bell.sleep(|| watched.load(Ordering::SeqCst) != 0, Some(&soon)) != futex::Wake::TimedOut {}
/// // A change made before the last look is seen without sleeping.
/// watched.store(1, Ordering::SeqCst);
/// bell.ring();
/// assert_eq!(bell.sleep(|| watched.load(Ordering::SeqCst) != 0, None), futex::Wake::Recheck);
/// ```
///
/// ## Watchers
/// A watcher ([`sleep_watching`](Self::sleep_watching)) is a sleeper like the others (rung
/// by [`ring`](Self::ring), counted) that can also be woken alone, by
/// [`wake_watchers`](Self::wake_watchers), without waking the others: it sleeps with a futex
/// bitset of its own, and the others with one that excludes it. `proc_core::wait` watches a
/// queue this way, and ends its watch without waking the queue's consumers.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Doorbell {
    seq: AtomicU32,
    sleepers: AtomicU32,
}

impl Doorbell {
    /// After a change of the watched word, stored SeqCst: wakes the sleepers, if there
    /// are any. (On x86 the SeqCst store is an `xchg`, which is cheaper than a separate
    /// fence.)
    #[inline]
    pub fn ring(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.ring_always();
        }
    }

    /// Wakes every sleeper, whether the count says there are any or not (to make sleepers
    /// look again at something that is not their watched word).
    #[cold]
    pub fn ring_always(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.seq);
    }

    /// Sleeps until rung or until `deadline`, unless `changed` already holds once this
    /// sleeper is counted. `Recheck` means: look again (it may be spurious).
    pub fn sleep(&self, changed: impl Fn() -> bool, deadline: Option<&Deadline>) -> Wake {
        self.sleep_as(SLEEPER, changed, deadline)
    }

    /// [`sleep`](Self::sleep), as a watcher: [`wake_watchers`](Self::wake_watchers) wakes
    /// it too, and wakes no other sleeper.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// use proc_sync::internal::Doorbell;
    ///
    /// let bell = Doorbell::default();
    /// let stop = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     let watcher = s.spawn(|| {
    ///         while !stop.load(Ordering::SeqCst) {
    ///             bell.sleep_watching(|| stop.load(Ordering::SeqCst), None);
    ///         }
    ///     });
    ///     stop.store(true, Ordering::SeqCst);
    ///     bell.wake_watchers();
    ///     watcher.join().unwrap();
    /// });
    /// ```
    pub fn sleep_watching(&self, changed: impl Fn() -> bool, deadline: Option<&Deadline>) -> Wake {
        self.sleep_as(WATCHER, changed, deadline)
    }

    /// Wakes the watchers so that they look again (at what made them stop, stored SeqCst
    /// before this call), and no other sleeper. The sequence word moves, as for a ring, so
    /// that a watcher between its last look and its sleep does not sleep; an ordinary
    /// sleeper at that same point looks once more.
    #[cold]
    pub fn wake_watchers(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_bitset(&self.seq, u32::MAX, WATCHER);
    }

    fn sleep_as(
        &self,
        bitset: u32,
        changed: impl Fn() -> bool,
        deadline: Option<&Deadline>,
    ) -> Wake {
        let seen = self.seq.load(Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let woke = if changed() {
            Wake::Recheck
        } else {
            futex::wait_bitset(&self.seq, seen, deadline, bitset)
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        woke
    }

    /// Whether anyone is counted as asleep (or was, and was killed asleep).
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }
}
