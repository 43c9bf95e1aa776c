//! Closing a socket through `&self`: what `Connection::close` and `Listener::close` share.
//!
//! An object that hands out its descriptor ([`AsFd`](std::os::fd::AsFd)) cannot simply
//! close it while it lives: the number could be reused by an unrelated file. Instead the
//! descriptor is made to refer to `/dev/null` (`dup3` replaces it in one step): the socket
//! is released (the peer sees end of file once no other process holds a copy), and the
//! number stays valid, and inert, until the object is dropped.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Releases the socket behind `fd`, leaving `fd` open on `/dev/null`.
pub(crate) fn release(fd: BorrowedFd<'_>) -> io::Result<()> {
    let null = File::open("/dev/null")?;
    loop {
        // SAFETY: both descriptors are open for the call (`null` here, `fd` borrowed); dup3
        // closes what `fd` referred to and makes it refer to `/dev/null`, so the number
        // stays valid for its owner, which closes it when dropped.
        let done = unsafe { libc::dup3(null.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) };
        if done >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
