//! Signals to children, always through a pidfd so that a recycled pid is never hit, and
//! the handlers of workers that stop gracefully on SIGTERM or SIGINT.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Sends `signal` to `pid` if it is a child of this process (a pool worker, known only by
/// its pid): the pidfd is opened first, then the parent is checked, so the signal reaches
/// that very process even if the pid were recycled meanwhile. `Ok(false)` when the pid is
/// no child of ours (any more).
pub fn send_to_child(pid: u32, signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: pidfd_open with a pid and no flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Ok(false);
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    if crate::procfs::parent_of(pid) != Some(std::process::id()) {
        return Ok(false);
    }
    pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), signal)
}

/// Set by the handler of a graceful worker.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// In a worker: SIGTERM and SIGINT ask it to finish what it is doing and end with 0,
/// instead of ending it at once. No `SA_RESTART`: a wait they interrupt returns EINTR,
/// which the library must ride out.
pub fn stop_gracefully_on_term_and_int() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic
        // (async-signal-safe); the mask is emptied before use.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = request_stop as extern "C" fn(libc::c_int) as usize;
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
