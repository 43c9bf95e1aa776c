//! [`Claim`]: whether a task may still start. A future's `cancel` and the driver's
//! dispatch race on it, and exactly one of them wins: a task is either cancelled before
//! any worker got it, or it has started and can no longer be cancelled (as Python's
//! `Future.cancel`).

use std::sync::atomic::{AtomicU8, Ordering};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// The state of one task that can be cancelled: pending, running (handed to a worker) or
/// cancelled.
#[derive(Debug, Default)]
pub(crate) struct Claim(AtomicU8);

impl Claim {
    /// The driver is about to hand the task to a worker: `true` if it may (it was pending,
    /// or it had already started and is being handed over again), `false` if it was
    /// cancelled.
    pub(crate) fn start(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == RUNNING,
        }
    }

    /// Cancels the task if it has not started: whether it is cancelled now (a second
    /// cancel is still `true`, as Python's).
    pub(crate) fn cancel(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == CANCELLED,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire) == CANCELLED
    }

    pub(crate) fn is_running(&self) -> bool {
        self.0.load(Ordering::Acquire) == RUNNING
    }
}

#[cfg(test)]
mod tests {
    use super::Claim;

    #[test]
    fn a_pending_task_is_cancelled_and_then_cannot_start() {
        let claim = Claim::default();
        assert!(claim.cancel());
        assert!(claim.cancel());
        assert!(!claim.start());
        assert!(claim.is_cancelled());
    }

    #[test]
    fn a_started_task_cannot_be_cancelled_and_may_be_handed_over_again() {
        let claim = Claim::default();
        assert!(claim.start());
        assert!(!claim.cancel());
        assert!(claim.start());
        assert!(claim.is_running());
        assert!(!claim.is_cancelled());
    }
}
