//! The lock a [`Condition`](crate::Condition) waits under: its own (the mutex at the start
//! of its region), or a [`Lock`] or [`RLock`] it shares with other conditions and with
//! whoever else holds that lock, as Python's `Condition(lock)`.
//!
//! A wait releases that lock completely and takes it back as it was: for an `RLock` held
//! several times over by the waiting thread, every level (Python's `_release_save` and
//! `_acquire_restore`), so that another process can take it meanwhile.

use serde::{Deserialize, Serialize};

use crate::lock::{Lock, RLock};
use crate::raw_mutex::RawMutex;
use crate::region::Region;

/// A lock a condition shares; it travels with the condition's handle as the handle of a
/// `Lock` or an `RLock`, each checked on receipt as any.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum SharedLock {
    Lock(Lock),
    RLock(RLock),
}

/// What a condition's memory records about its lock (written once when it is made): its
/// own, or a shared `Lock` or `RLock`.
pub(crate) const OWN_LOCK: u32 = 0;
const SHARED_LOCK: u32 = 1;
const SHARED_RLOCK: u32 = 2;

impl SharedLock {
    /// The number a condition's memory records for this lock.
    pub(crate) fn code(&self) -> u32 {
        match self {
            SharedLock::Lock(_) => SHARED_LOCK,
            SharedLock::RLock(_) => SHARED_RLOCK,
        }
    }

    /// What a recorded number says, for messages about a received condition.
    pub(crate) fn describe(code: u32) -> String {
        match code {
            OWN_LOCK => "its own lock".into(),
            SHARED_LOCK => "a shared Lock".into(),
            SHARED_RLOCK => "a shared RLock".into(),
            other => format!("lock number {other}, which does not exist"),
        }
    }

    pub(crate) fn raw(&self) -> &RawMutex {
        match self {
            SharedLock::Lock(lock) => lock.raw(),
            SharedLock::RLock(lock) => lock.raw(),
        }
    }

    pub(crate) fn region(&self) -> &Region {
        match self {
            SharedLock::Lock(lock) => lock.region(),
            SharedLock::RLock(lock) => lock.region(),
        }
    }

    fn is_reentrant(&self) -> bool {
        matches!(self, SharedLock::RLock(_))
    }
}

/// The lock a condition is under, as a wait uses it.
#[derive(Clone, Copy)]
pub(crate) struct UnderLock<'a> {
    pub(crate) mutex: &'a RawMutex,
    /// The region that holds `mutex`: what tells two mappings of one lock for the same.
    pub(crate) region: &'a Region,
    pub(crate) reentrant: bool,
}

impl<'a> UnderLock<'a> {
    /// A condition's own lock, at the start of its region.
    pub(crate) fn own(mutex: &'a RawMutex, region: &'a Region) -> Self {
        UnderLock {
            mutex,
            region,
            reentrant: false,
        }
    }

    pub(crate) fn shared(lock: &'a SharedLock) -> Self {
        UnderLock {
            mutex: lock.raw(),
            region: lock.region(),
            reentrant: lock.is_reentrant(),
        }
    }

    /// Whether `other` is this same lock (the same mapping, or another mapping of the same
    /// memory file: a condition and its lock may have been received separately).
    pub(crate) fn is(&self, other: &UnderLock<'_>) -> bool {
        std::ptr::eq(self.mutex, other.mutex) || self.region.same_file(other.region)
    }

    /// After the guard of one level was dropped: releases the levels of an `RLock` this
    /// thread still holds (through outer guards), and says how many, for
    /// [`restore`](Self::restore).
    pub(crate) fn release_rest(&self) -> u32 {
        let mut levels = 0;
        if self.reentrant {
            while self.mutex.is_held_by_this_thread() && self.mutex.unlock("RLock").is_ok() {
                levels += 1;
            }
        }
        levels
    }

    /// After the lock was taken back once: takes it `levels` more times (re-entries of
    /// this thread, which cannot wait), so that the outer guards hold it again.
    pub(crate) fn restore(&self, levels: u32) {
        for _ in 0..levels {
            // Re-entering an RLock this thread holds: it had this many levels before the
            // wait, so the counter has room for them.
            let _ = self.mutex.lock("RLock");
        }
    }
}
