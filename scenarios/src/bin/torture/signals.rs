//! Signals to children, always through a pidfd so that a recycled pid is never hit, and
//! the handlers of workers that stop gracefully on SIGTERM or SIGINT.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use multiproc::Process;

fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Ended already (a zombie, or reaped): nothing to signal.
        Some(libc::ESRCH) => Ok(false),
        _ => Err(err),
    }
}

/// Sends `signal` to the child behind `process`; `Ok(false)` when it had already ended.
pub fn send(process: &Process, signal: libc::c_int) -> io::Result<bool> {
    let pidfd = process.sentinel().map_err(io::Error::other)?;
    pidfd_send_signal(pidfd, signal)
}

/// SIGKILLs `pid` if it is a running child of this process (a pool worker, known only by
/// its pid), and waits at most `wait` for it to have ended. The pidfd is opened first, then
/// the parent is checked, so the signal (and the wait) concern that very process even if
/// the pid were recycled meanwhile. `Ok(false)` when the pid is no running child of ours
/// (any more: it may have ended, or been reaped and recycled).
pub fn kill_child(pid: u32, wait: Duration) -> io::Result<bool> {
    // SAFETY: pidfd_open with a pid and no flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Ok(false);
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    if !crate::procfs::is_running_child(pid) {
        return Ok(false);
    }
    if !pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL)? {
        return Ok(false);
    }
    // A pidfd turns readable once its process has exited.
    multiproc::proc_core::internal::wait_readable(pidfd.as_fd(), Instant::now().checked_add(wait))?;
    Ok(true)
}

/// Set by the handler of a graceful worker.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// In a worker: how it takes SIGTERM and SIGINT. A graceful one finishes what it is doing
/// and ends with 0 (a handler sets a flag it looks at); no `SA_RESTART`, so a wait the
/// signal interrupts returns EINTR, which the library must ride out. Another one dies of
/// them: the default action, set explicitly, since a disposition to ignore them is
/// inherited (a shell starts background jobs with SIGINT ignored).
pub fn take_term_and_int(graceful: bool) {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic
        // (async-signal-safe); the mask is emptied before use.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = if graceful {
                request_stop as extern "C" fn(libc::c_int) as usize
            } else {
                libc::SIG_DFL
            };
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether a graceful worker was asked to stop.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// The conventional name of a signal, for reports.
pub fn name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGCONT => "SIGCONT",
        _ => "signal",
    }
}
