//! [`Restarts`]: the driver's book of workers whose initializer failed. Python's pool starts
//! a replacement at once, forever, so an initializer that always fails forks hundreds of
//! workers a second and the pool's calls wait forever. Here consecutive failures back off
//! (exponentially, capped), and after a bounded number the pool gives up: its pending and
//! future work fails with [`Error::InitializerFailed`](crate::Error::InitializerFailed).
//! A worker whose initializer returns ends the run of failures.

use std::time::{Duration, Instant};

/// The wait before the replacement of the first worker whose initializer failed; it
/// doubles with each consecutive failure, up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(10);

/// The longest wait before a replacement.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Consecutive failures tolerated beyond one per worker (all the first workers may fail
/// together, on a cause that passes).
const EXTRA_FAILURES: u32 = 8;

/// What the driver does about a worker whose initializer failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Start a replacement once [`Restarts::due_at`] has passed.
    RestartLater,
    /// Too many in a row: fail the pool's work with this message after this many failures.
    GiveUp { message: String, attempts: u32 },
}

/// Consecutive initializer failures, the replacements waiting for their time, and whether
/// the pool has given up.
#[derive(Debug)]
pub(crate) struct Restarts {
    consecutive: u32,
    limit: u32,
    /// Replacements to start once `due_at` has passed.
    pub(crate) waiting: usize,
    due_at: Option<Instant>,
    /// Set once the pool has given up: the message and the number of failures.
    pub(crate) given_up: Option<(String, u32)>,
}

impl Restarts {
    pub(crate) fn new(processes: usize) -> Restarts {
        let processes = u32::try_from(processes).unwrap_or(u32::MAX);
        Restarts {
            consecutive: 0,
            limit: processes.saturating_add(EXTRA_FAILURES),
            waiting: 0,
            due_at: None,
            given_up: None,
        }
    }

    /// A worker's initializer returned.
    pub(crate) fn succeeded(&mut self) {
        self.consecutive = 0;
    }

    /// A worker's initializer failed with `message`.
    pub(crate) fn failed(&mut self, message: String, now: Instant) -> Verdict {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive >= self.limit {
            self.waiting = 0;
            self.due_at = None;
            self.given_up = Some((message.clone(), self.consecutive));
            return Verdict::GiveUp {
                message,
                attempts: self.consecutive,
            };
        }
        self.waiting += 1;
        let due = now + backoff(self.consecutive);
        self.due_at = Some(self.due_at.map_or(due, |at| at.max(due)));
        Verdict::RestartLater
    }

    /// When the waiting replacements are to start, if any wait.
    pub(crate) fn due_at(&self) -> Option<Instant> {
        self.due_at.filter(|_| self.waiting > 0)
    }

    /// The number of replacements to start now (and forgets them).
    pub(crate) fn take_due(&mut self, now: Instant) -> usize {
        match self.due_at() {
            Some(at) if at <= now => {
                self.due_at = None;
                std::mem::take(&mut self.waiting)
            }
            _ => 0,
        }
    }
}

/// The wait before the replacement after `consecutive` failures.
fn backoff(consecutive: u32) -> Duration {
    let doublings = consecutive.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_with_each_consecutive_failure_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(10));
        assert_eq!(backoff(2), Duration::from_millis(20));
        assert_eq!(backoff(4), Duration::from_millis(80));
        assert_eq!(backoff(8), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn the_pool_gives_up_after_a_bounded_run_of_failures_and_a_success_ends_the_run() {
        let now = Instant::now();
        let mut restarts = Restarts::new(2);
        for _ in 0..9 {
            assert_eq!(restarts.failed("boom".into(), now), Verdict::RestartLater);
        }
        restarts.succeeded();
        for _ in 0..9 {
            assert_eq!(restarts.failed("boom".into(), now), Verdict::RestartLater);
        }
        assert_eq!(
            restarts.failed("boom".into(), now),
            Verdict::GiveUp {
                message: "boom".into(),
                attempts: 10
            }
        );
        assert_eq!(
            restarts.take_due(now + BACKOFF_CAP),
            0,
            "nothing waits once given up"
        );
    }

    #[test]
    fn replacements_wait_for_their_time() {
        let now = Instant::now();
        let mut restarts = Restarts::new(1);
        restarts.failed("boom".into(), now);
        assert_eq!(restarts.take_due(now), 0);
        assert_eq!(restarts.take_due(now + Duration::from_millis(10)), 1);
        assert_eq!(restarts.due_at(), None);
    }
}
