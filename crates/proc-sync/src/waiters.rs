//! The waiter table of a [`Condition`](crate::Condition): its shared header, the slots
//! its waiters take, and how a notification finds a waiter.
//!
//! ## How a notification finds its waiter
//! The region holds the condition's mutex, a table of [`SLOTS`] waiter slots, a few counts,
//! then the value. A waiter, holding the lock, takes a free slot: it locks the slot's own
//! robust mutex (and holds it for as long as it waits), gives the slot a ticket that says
//! when it came, and marks it `WAITING`; then it releases the condition's lock and sleeps
//! (futex) on the slot's state word until that says `NOTIFIED` or its time is up. Under the
//! lock, `notify(n)` marks the `n` longest-waiting slots `NOTIFIED` and wakes each one's
//! sleeper alone. The waiter takes the lock back, frees its slot, and returns. So:
//! - `notify_one` makes at most one waiter return as notified, `notify(n)` at most `n`:
//!   only a `NOTIFIED` slot ends a wait, and a notification marks one slot.
//! - A notified waiter does not stay asleep: the word it sleeps on has changed (a futex
//!   wait that starts after that returns at once), and it was woken.
//! - A spurious futex wake-up, or a signal, changes no slot: the waiter sleeps again.
//! - A waiter whose time runs out takes the lock and frees its slot: no later notification
//!   can be spent on it. One notified as its time ran out returns as notified.
//! - A waiter killed while waiting leaves its slot taken, but the kernel releases the
//!   slot's mutex when its thread dies: a notifier (or a new waiter) that finds a taken slot
//!   whose mutex nobody holds frees it, and the notification goes to a live waiter. Only a
//!   waiter killed after it was notified, and before it took the lock back, spends one.
//!
//! More waiters at once than there are slots is allowed: those without a slot sleep on one
//! word that every notification and every freed slot moves, and return as from a spurious
//! wake-up (which `wait` allows and `wait_while` absorbs), to take a slot when they wait
//! again.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};
use crate::futex;
use crate::mutex_region::MutexHeader;
use crate::raw_mutex::{Kind, KindCheck, RawMutex};
use crate::stamp::Stamp;

/// How many waiters at once are notified one by one; more sleep on a shared word and wake
/// at every notification (see the module's docs). The table costs 48 bytes a slot.
pub(crate) const SLOTS: usize = 128;

/// A slot's states.
const FREE: u32 = 0;
pub(crate) const WAITING: u32 = 1;
pub(crate) const NOTIFIED: u32 = 2;

/// A waiter's place in the condition: its state is what the waiter sleeps on.
#[repr(C)]
pub(crate) struct Slot {
    /// Locked by the waiting thread while the slot is not `FREE`, so that the kernel
    /// releases it if the waiter dies (robust mutex): a taken slot whose mutex is free
    /// belongs to a dead waiter.
    pub(crate) mutex: RawMutex,
    /// `FREE`, `WAITING` or `NOTIFIED` (changed under the condition's lock).
    pub(crate) state: AtomicU32,
    /// When the waiter came (from `next_ticket`): the longest-waiting are notified first.
    pub(crate) ticket: AtomicU32,
}

impl Slot {
    /// Under the condition's lock: whether a live waiter holds this slot. A taken slot
    /// whose waiter died is freed on the way (its waiter was counted in `waiting`).
    fn holds_live_waiter(&self, header: &ConditionHeader) -> bool {
        if self.state.load(Ordering::Relaxed) == FREE {
            return false;
        }
        if self.mutex.is_locked() {
            return true;
        }
        self.state.store(FREE, Ordering::Relaxed);
        header.uncount_waiter();
        false
    }

    /// Under the condition's lock: tells this slot's waiter it was notified.
    fn notify(&self) {
        self.state.store(NOTIFIED, Ordering::Release);
        futex::wake(&self.state, 1);
    }
}

#[repr(C)]
pub(crate) struct ConditionHeader {
    pub(crate) mutex: RawMutex,
    /// Slots taken. Never too few (a process killed in the middle of an update leaves it
    /// too high); the next holder of the lock after such a death counts again.
    pub(crate) waiting: AtomicU32,
    /// Slots `0..used` have been taken at some time; the rest are untouched.
    pub(crate) used: AtomicU32,
    /// The next waiter's ticket.
    pub(crate) next_ticket: AtomicU32,
    /// What waiters without a slot sleep on: moved by every notification and freed slot.
    pub(crate) overflow: AtomicU32,
    /// How many sleep on `overflow` (too many after one is killed, never too few).
    pub(crate) overflow_sleepers: AtomicU32,
    pub(crate) stamp: Stamp,
    pub(crate) slots: [Slot; SLOTS],
    /// Which lock the condition is under (`condition_lock`'s `OWN_LOCK` or a shared lock's
    /// code), written once when it is made: what a received handle is checked against.
    pub(crate) lock_code: AtomicU32,
}

// SAFETY: repr(C), the mutex is the first field; the other fields are atomics, for which
// zero is valid, and the slots' mutexes, which `Condition::with_value` initialises before
// the region is shared (all-zero is a valid, if not robust, pthread mutex meanwhile).
unsafe impl MutexHeader for ConditionHeader {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

impl ConditionHeader {
    /// The slots that have ever been taken (all that `used` may claim, at most).
    fn used_slots(&self) -> &[Slot] {
        let used = (self.used.load(Ordering::Relaxed) as usize).min(SLOTS);
        &self.slots[..used]
    }

    fn uncount_waiter(&self) {
        let _ = self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Under the lock: a slot for the calling thread, `WAITING` with the next ticket and
    /// its mutex held by this thread; `None` when live waiters hold every slot.
    pub(crate) fn take_slot(&self) -> Option<&Slot> {
        let used = self.used_slots().len();
        // The slots ever used, then the first untouched one.
        for (i, slot) in self.slots.iter().enumerate().take(used + 1) {
            let state = slot.state.load(Ordering::Relaxed);
            if state != FREE && slot.mutex.is_locked() {
                continue; // a live waiter's
            }
            // Free, or a dead waiter's (already counted in `waiting`). A mutex that cannot
            // be locked at once is not used (only a hand-written one can be so).
            if !matches!(slot.mutex.try_lock("Condition"), Ok(Some(_))) {
                continue;
            }
            // Counted before it is marked, so that a death in between leaves the count too
            // high, never too low.
            if state == FREE {
                self.waiting.fetch_add(1, Ordering::Relaxed);
            }
            let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
            slot.ticket.store(ticket, Ordering::Relaxed);
            if i == used {
                self.used.store(i as u32 + 1, Ordering::Relaxed);
            }
            slot.state.store(WAITING, Ordering::Release);
            return Some(slot);
        }
        None
    }

    /// Under the lock: frees the slot this thread holds, and lets a waiter without a slot
    /// take it.
    pub(crate) fn free_slot(&self, held: SlotHeld<'_>) {
        held.0.state.store(FREE, Ordering::Relaxed);
        self.uncount_waiter();
        // Released after it is marked free: a death in between leaves a free slot whose
        // mutex the kernel released, which `take_slot` takes as any.
        drop(held);
        self.ring_overflow();
    }

    /// Under the lock: notifies the `n` longest-waiting live waiters (fewer if fewer wait),
    /// freeing the slots of dead ones on the way, and wakes the waiters without a slot.
    pub(crate) fn notify(&self, n: usize) {
        let slots = self.used_slots();
        if n >= self.waiting.load(Ordering::Relaxed) as usize {
            // Every waiter (the count is never too low): one pass, in any order. Still at
            // most `n`, whatever the count says.
            let mut left = n;
            for slot in slots {
                if left == 0 {
                    break;
                }
                if slot.state.load(Ordering::Relaxed) == WAITING && slot.holds_live_waiter(self) {
                    slot.notify();
                    left -= 1;
                }
            }
        } else {
            for _ in 0..n {
                let now = self.next_ticket.load(Ordering::Relaxed);
                let oldest = slots
                    .iter()
                    .filter(|slot| {
                        slot.state.load(Ordering::Relaxed) == WAITING
                            && slot.holds_live_waiter(self)
                    })
                    .max_by_key(|slot| now.wrapping_sub(slot.ticket.load(Ordering::Relaxed)));
                match oldest {
                    Some(slot) => slot.notify(),
                    None => break,
                }
            }
        }
        self.ring_overflow();
    }

    /// Under the lock: wakes the waiters without a slot, if any.
    fn ring_overflow(&self) {
        if self.overflow_sleepers.load(Ordering::Relaxed) > 0 {
            self.overflow.fetch_add(1, Ordering::Release);
            futex::wake_all(&self.overflow);
        }
    }

    /// Under the lock, taken from a holder that died: whatever it was changing is either
    /// done or not (every change is one word), but `waiting` may count too many. Frees the
    /// slots of dead waiters and counts the rest.
    pub(crate) fn repair(&self) {
        let live = self
            .used_slots()
            .iter()
            .filter(|slot| slot.holds_live_waiter(self))
            .count();
        self.waiting.store(live as u32, Ordering::Relaxed);
    }

    /// What a receiver checks beyond the stamp: the slots are in states a condition can
    /// be in, each with a mutex of the right kind.
    pub(crate) fn check_received(&self) -> Result<()> {
        let refuse = |reason: String| Err(Error::Received { reason });
        let used = self.used.load(Ordering::Relaxed) as usize;
        if used > SLOTS {
            return refuse(format!(
                "a condition said to have used {used} waiter slots of {SLOTS}"
            ));
        }
        let kinds = KindCheck::new();
        for (i, slot) in self.slots.iter().enumerate() {
            if let Err(reason) = kinds.check(&slot.mutex, Some(Kind::ErrorCheck)) {
                return refuse(format!("waiter slot {i}: {reason}"));
            }
            match slot.state.load(Ordering::Relaxed) {
                FREE => {}
                WAITING | NOTIFIED if i < used => {}
                state => {
                    return refuse(format!(
                        "waiter slot {i} is in state {state}, which a condition that has \
                         used {used} slots cannot be in"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// This thread's slot while it waits: released on an unwind, so that a slot is never left
/// held by a thread that is no longer waiting (it then looks like a dead waiter's, and is
/// freed by the next notifier or waiter).
pub(crate) struct SlotHeld<'a>(pub(crate) &'a Slot);

impl Drop for SlotHeld<'_> {
    fn drop(&mut self) {
        let _ = self.0.mutex.unlock("Condition");
    }
}
