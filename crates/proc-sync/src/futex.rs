//! The futex system call on a 32-bit word in shared memory: the kernel's "sleep while this
//! word still holds the value I saw" and "wake sleepers on this word".
//!
//! The operations are deliberately *not* `FUTEX_PRIVATE_FLAG`: the word lives in a
//! `MAP_SHARED` region that several processes map at different addresses, and only the
//! shared form keys the wait queue on the underlying page rather than on one process's
//! address. Waits use `FUTEX_WAIT_BITSET`, whose timeout is an absolute `CLOCK_MONOTONIC`
//! time, so a caller loops on EINTR and spurious wake-ups with the same [`Deadline`].

use std::ptr;
use std::sync::atomic::AtomicU32;

use crate::deadline::Deadline;

/// How a [`wait`] ended. Every outcome but `TimedOut` means "look at the word again":
/// futex wake-ups can be spurious, and a signal handler may have interrupted the sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Woken (or spuriously returned), or the word no longer held `expected` (EAGAIN), or
    /// interrupted by a signal (EINTR).
    Recheck,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `word` holds `expected`, until woken or until `deadline` (forever when
/// `None`).
///
/// An unexpected error (EFAULT, EINVAL, ENOSYS: impossible for an aligned `AtomicU32` in
/// mapped memory on Linux ≥ 2.6.25) is reported as `Recheck` after yielding, so that a
/// caller's loop re-reads the word instead of trusting a wait that did not happen.
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<&Deadline>) -> Wake {
    wait_bitset(
        word,
        expected,
        deadline,
        libc::FUTEX_BITSET_MATCH_ANY as u32,
    )
}

/// [`wait`], as a sleeper that only wakes with a `bitset` sharing a bit with this one:
/// [`wake`] (every bit) or [`wake_bitset`] with a matching bitset. `bitset` must not be 0.
pub fn wait_bitset(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<&Deadline>,
    bitset: u32,
) -> Wake {
    let timeout = deadline.map_or(ptr::null(), |d| d.as_timespec() as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call (we hold a
    // reference to it); `timeout` is null or points to a live timespec; the unused uaddr2
    // argument is null, as FUTEX_WAIT_BITSET requires.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            timeout,
            ptr::null::<u32>(),
            bitset,
        )
    };
    if r == 0 {
        return Wake::Recheck;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => Wake::TimedOut,
        Some(libc::EAGAIN) | Some(libc::EINTR) => Wake::Recheck,
        _ => {
            std::thread::yield_now();
            Wake::Recheck
        }
    }
}

/// Wakes at most `count` processes or threads sleeping on `word`; returns how many woke.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE reads no other argument.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
    usize::try_from(r).unwrap_or(0)
}

/// Wakes every sleeper on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, u32::MAX)
}

/// Wakes at most `count` sleepers on `word` whose [`wait_bitset`] shares a bit with
/// `bitset` (those of [`wait`] share all); returns how many woke.
pub fn wake_bitset(word: &AtomicU32, count: u32, bitset: u32) -> usize {
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE_BITSET reads no timeout and no
    // second address (both null), and the bitset from the last argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE_BITSET,
            count,
            ptr::null::<libc::timespec>(),
            ptr::null::<u32>(),
            bitset,
        )
    };
    usize::try_from(r).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_wait_on_a_changed_word_returns_at_once() {
        let word = AtomicU32::new(1);
        assert_eq!(wait(&word, 0, None), Wake::Recheck);
    }

    #[test]
    fn a_wait_with_a_past_deadline_times_out() {
        let word = AtomicU32::new(0);
        let deadline = Deadline::after(Duration::ZERO);
        assert_eq!(wait(&word, 0, Some(&deadline)), Wake::TimedOut);
    }

    #[test]
    fn a_wake_reaches_a_sleeping_thread() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0, None);
                }
            })
        };
        word.store(1, Ordering::Release);
        wake_all(&word);
        sleeper.join().unwrap();
    }

    #[test]
    fn a_bitset_wake_reaches_only_the_sleepers_whose_bitset_it_shares() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = |bitset| {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                let deadline = Deadline::after(Duration::from_secs(60));
                wait_bitset(&word, 0, Some(&deadline), bitset)
            })
        };
        let (one, two) = (sleeper(0b01), sleeper(0b10));
        // Until both sleep: each wake below must find its sleeper in the futex.
        let mut woken = 0;
        while woken == 0 {
            std::thread::sleep(Duration::from_millis(1));
            woken = wake_bitset(&word, u32::MAX, 0b10);
        }
        assert_eq!(two.join().unwrap(), Wake::Recheck);
        assert!(
            !one.is_finished(),
            "a wake for bit 1 woke the sleeper of bit 0"
        );
        while wake(&word, u32::MAX) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(one.join().unwrap(), Wake::Recheck);
    }

    #[test]
    fn waking_nobody_wakes_nobody() {
        assert_eq!(wake(&AtomicU32::new(0), 1), 0);
    }
}
