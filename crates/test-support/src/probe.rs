//! A probe: a closure run in a forked child, with a time limit, for what a test must do in
//! a process of its own (lower a limit, exhaust descriptors, die) without multiproc's own
//! machinery, which may be what is under test.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It returned (exit code 0), panicked (101) or called `exit(code)`.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// It ran past its time limit and was killed.
    TimedOut,
}

/// Runs `body` in a forked child and waits at most `limit` for it to end: `Exited(0)` when
/// it returned, `Exited(101)` when it panicked, `TimedOut` (the child SIGKILLed and reaped)
/// when it ran too long. The child never returns into the test's code.
///
/// Forking from the multi-threaded test harness is safe here only because the child runs
/// `body` and exits: `body` must not wait for locks other threads may hold.
///
/// ```
/// use std::time::Duration;
/// use multiproc_test_support::probe::{Ended, probe};
///
/// assert_eq!(probe(Duration::from_secs(10), || {}), Ended::Exited(0));
/// assert_eq!(probe(Duration::from_millis(50), || loop { std::thread::park() }), Ended::TimedOut);
/// ```
pub fn probe(limit: Duration, body: impl FnOnce()) -> Ended {
    // SAFETY: the child runs only `body` and then `_exit`s, never returning into code that
    // could use state another thread of the parent held at the fork.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
                Ok(()) => 0,
                Err(_) => 101,
            };
            // SAFETY: ends the child at once, without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => wait_at_most(child, limit),
    }
}

fn wait_at_most(child: Pid, limit: Duration) -> Ended {
    let deadline = Instant::now() + limit;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
            WaitStatus::Exited(_, code) => return Ended::Exited(code),
            WaitStatus::Signaled(_, signal, _) => return Ended::Signaled(signal as i32),
            _ if Instant::now() >= deadline => {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Ended::TimedOut;
            }
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
