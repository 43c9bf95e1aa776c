//! A process file descriptor (`pidfd_open(2)`): the one handle on a child that cannot be
//! confused with another process after its pid is recycled. Signals, waits and reaping all
//! go through it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// How a reaped child ended, in Python's convention: the exit code, or `-signum`.
pub(crate) type ExitCode = i32;

#[derive(Debug)]
pub(crate) struct Pidfd {
    fd: OwnedFd,
}

impl Pidfd {
    /// Opens a pidfd for `pid`, which must be an unreaped child of this process.
    pub(crate) fn open(pid: libc::pid_t) -> io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // passed. The fd is close-on-exec by definition of the call.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(fd)
            .map_err(|_| io::Error::other("pidfd_open returned an fd out of range"))?;
        // SAFETY: the kernel just returned this fd to us and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Pidfd { fd })
    }

    /// A pidfd of this very process: what a child is given to watch its parent by.
    pub(crate) fn of_this_process() -> io::Result<OwnedFd> {
        let pid = libc::pid_t::try_from(std::process::id())
            .map_err(|_| io::Error::other("this process's pid is out of range"))?;
        Ok(Pidfd::open(pid)?.fd)
    }

    /// A pidfd received from elsewhere (the fork server, which opened it while the child
    /// could not yet have been reaped).
    pub(crate) fn from_owned(fd: OwnedFd) -> Self {
        Pidfd { fd }
    }

    /// Another descriptor for the same process.
    pub(crate) fn try_clone(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// Sends `signal`. A process that has exited (zombie or reaped) is not an error: the
    /// signal has nothing left to act on.
    pub(crate) fn send_signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: the pidfd is owned by self and valid; siginfo may be null; flags are 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                return Ok(());
            }
            return Err(err);
        }
        Ok(())
    }

    /// Reaps the child if it has ended, without blocking. `Ok(None)`: still running.
    pub(crate) fn try_reap(&self) -> io::Result<Option<ExitCode>> {
        loop {
            // SAFETY: zeroed is a valid siginfo_t (plain data); waitid fills it or leaves
            // si_pid at 0 when WNOHANG finds no change.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: P_PIDFD with our own valid pidfd, a valid out-pointer.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    self.fd.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG,
                )
            };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            // SAFETY: waitid succeeded, so the SIGCHLD fields of the union are the valid ones.
            let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
            if pid == 0 {
                return Ok(None);
            }
            return Ok(Some(match info.si_code {
                libc::CLD_EXITED => status,
                _ => -status,
            }));
        }
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `fd` is a pidfd (of any process, running or not): a signal 0 through it is
/// refused with `EBADF` by anything else.
pub(crate) fn is_pidfd(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: signal 0 sends nothing; the fd is borrowed and valid; siginfo may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}
