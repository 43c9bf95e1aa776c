//! A futex doorbell: a word to sleep on until another process changes something that both
//! watch, with no system call on either side while nobody sleeps.

use std::sync::atomic::{AtomicU32, Ordering, fence};

use crate::deadline::Deadline;
use crate::futex::{self, Wake};

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
        let seen = self.seq.load(Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let woke = if changed() {
            Wake::Recheck
        } else {
            futex::wait(&self.seq, seen, deadline)
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        woke
    }

    /// Whether anyone is counted as asleep (or was, and was killed asleep).
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }
}
