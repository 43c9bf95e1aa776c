//! [`Deadline`]: an absolute point on `CLOCK_MONOTONIC`, made once from a `Duration` where
//! a timed call enters the crate. Every wait below it (futex, `pthread_mutex_clocklock`)
//! takes the same absolute deadline, so a wait that is interrupted (EINTR) or woken
//! spuriously simply waits again without stretching the caller's timeout.

use std::time::Duration;

/// An absolute time on `CLOCK_MONOTONIC` (the clock futex bitset waits and
/// `pthread_mutex_clocklock` measure against; it never jumps with the wall clock).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: libc::timespec,
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Deadline {
    /// `timeout` from now. A timeout too large to represent saturates to the far future.
    pub fn after(timeout: Duration) -> Deadline {
        let now = now();
        let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        let mut tv_sec = now.tv_sec.saturating_add(secs);
        let mut tv_nsec = now.tv_nsec + i64::from(timeout.subsec_nanos());
        if tv_nsec >= NANOS_PER_SEC {
            tv_nsec -= NANOS_PER_SEC;
            tv_sec = tv_sec.saturating_add(1);
        }
        Deadline {
            at: libc::timespec { tv_sec, tv_nsec },
        }
    }

    /// The deadline as the `timespec` the kernel and glibc take.
    pub fn as_timespec(&self) -> &libc::timespec {
        &self.at
    }

    /// The earlier of two deadlines.
    pub(crate) fn earliest(&self, other: &Deadline) -> Deadline {
        let key = |d: &Deadline| (d.at.tv_sec, d.at.tv_nsec);
        if key(self) <= key(other) {
            *self
        } else {
            *other
        }
    }

    /// Whether the deadline is now or in the past.
    pub fn has_passed(&self) -> bool {
        let now = now();
        (now.tv_sec, now.tv_nsec) >= (self.at.tv_sec, self.at.tv_nsec)
    }
}

/// Now on `CLOCK_MONOTONIC`, the clock of [`Deadline`], in nanoseconds: a moment that fits in
/// an atomic, and that every process of the machine reads alike. Never 0.
///
/// ```
/// let earlier = proc_sync::internal::monotonic_nanos();
/// assert!(proc_sync::internal::monotonic_nanos() >= earlier);
/// ```
pub fn monotonic_nanos() -> u64 {
    let now = now();
    let (secs, nanos) = (now.tv_sec.max(0) as u64, now.tv_nsec.max(0) as u64);
    secs.saturating_mul(NANOS_PER_SEC as u64)
        .saturating_add(nanos)
        .max(1)
}

fn now() -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail (and on failure `now` stays zero: an early deadline, never UB).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now
}

/// How to wait for a mutex.
#[derive(Clone, Copy)]
pub(crate) enum How {
    Block,
    Try,
    Until(Deadline),
}

impl How {
    pub(crate) fn timeout(timeout: Duration) -> How {
        How::Until(Deadline::after(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_timeout_has_passed_at_once() {
        assert!(Deadline::after(Duration::ZERO).has_passed());
    }

    #[test]
    fn a_long_timeout_has_not_passed() {
        assert!(!Deadline::after(Duration::from_secs(3600)).has_passed());
    }

    #[test]
    fn a_huge_timeout_saturates_instead_of_overflowing() {
        let d = Deadline::after(Duration::MAX);
        assert!(!d.has_passed());
        assert!(d.as_timespec().tv_nsec < NANOS_PER_SEC);
    }

    #[test]
    fn the_earliest_of_two_deadlines_is_the_sooner() {
        let soon = Deadline::after(Duration::from_millis(1));
        let late = Deadline::after(Duration::from_secs(60));
        for (a, b) in [(&soon, &late), (&late, &soon)] {
            let earliest = a.earliest(b);
            assert_eq!(earliest.as_timespec().tv_sec, soon.as_timespec().tv_sec);
            assert_eq!(earliest.as_timespec().tv_nsec, soon.as_timespec().tv_nsec);
        }
    }

    #[test]
    fn nanoseconds_carry_into_seconds() {
        let d = Deadline::after(Duration::from_nanos(999_999_999));
        assert!((0..NANOS_PER_SEC).contains(&d.as_timespec().tv_nsec));
    }
}
