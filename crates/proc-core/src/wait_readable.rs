//! [`wait_readable`]: block until a file descriptor is readable, with an optional absolute
//! deadline, surviving EINTR. Pidfds, lifelines and the connections of the ipc layer all
//! wait this way; [`wait`](crate::wait) waits on many descriptors at once through the same
//! loop ([`poll_until`]).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Blocks until `fd` is readable (or its peer hung up) or `deadline` passes, and returns
/// whether it became readable. `None` waits without limit. A signal that interrupts the
/// wait does not end it; the deadline stays the same, so the total wait never grows.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::time::{Duration, Instant};
///
/// let (read, write) = std::io::pipe()?;
/// let soon = Instant::now() + Duration::from_millis(10);
/// assert!(!proc_core::internal::wait_readable(read.as_fd(), Some(soon))?);
/// drop(write); // a hang-up counts as readable: a read would now return end of file
/// assert!(proc_core::internal::wait_readable(read.as_fd(), None)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    poll_until(&mut [PollFd::new(fd, PollFlags::POLLIN)], deadline)
}

/// `poll(2)` on `fds` until one of them has an event or `deadline` passes (never, for
/// `None`; at once, for a deadline already past), surviving EINTR with the same deadline.
/// Whether an event came; each `PollFd` then says which.
pub(crate) fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up, so that a wait of 0.4 ms does not spin with zero timeouts.
                let ms = left.as_nanos().div_ceil(1_000_000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(fds, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
