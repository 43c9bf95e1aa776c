//! A compare-and-swap lock in shared memory that sleeps on a futex when contended (the
//! three-state mutex of Drepper's "Futexes Are Tricky"): the least an interprocess lock
//! has to do.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::{SPINS, futex_wait, futex_wake};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and someone may be asleep waiting for it.
const CONTENDED: u32 = 2;

/// Acquires the lock whose word is `state`.
pub fn lock(state: &AtomicU32) {
    if state
        .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        lock_contended(state);
    }
}

#[cold]
fn lock_contended(state: &AtomicU32) {
    // The holder usually lets go within a short critical section: watch before sleeping.
    for _ in 0..SPINS {
        std::hint::spin_loop();
        if state.load(Ordering::Relaxed) == UNLOCKED
            && state
                .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
    }
    while state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
        futex_wait(state, CONTENDED);
    }
}

/// Releases the lock whose word is `state`, waking one sleeper if there may be one.
pub fn unlock(state: &AtomicU32) {
    if state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
        futex_wake(state, 1);
    }
}
