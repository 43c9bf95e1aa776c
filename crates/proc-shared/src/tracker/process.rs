//! The tracker process: how it starts, what it holds, and what it does at the end.
//!
//! It is forked twice (so that it is nobody's child to reap or to join: it is adopted by
//! init or the nearest subreaper) from whatever process first creates a block, which may
//! run threads. Between the fork and its exit it therefore calls only async-signal-safe
//! functions (raw system calls, no allocation, no lock, no panic), as `fork(2)` demands.
//!
//! It holds nothing of its creator but its end of the socket (as descriptor 3) and stderr
//! (for the warnings); stdin and stdout become `/dev/null`, every other descriptor is
//! closed, and SIGINT and SIGTERM are ignored (as Python's tracker does), so that a Ctrl-C
//! meant for the program does not take the cleanup down with it. It then says it is ready,
//! and only then does the first `create` return: from there on, the tracker holds no copy
//! of a descriptor its creator closes.
//!
//! It reads records until end of file, which comes when every copy of the creators' end is
//! closed: every process of the tree has ended, by SIGKILL as well as normally. Then it
//! unlinks each name still registered and, for each one that was still there, writes a
//! warning that names it.
//!
//! A [`SharedMemoryManager`](crate::SharedMemoryManager) is a tracker of its own, which
//! also takes a shutdown record: it unlinks its blocks then and there, without a warning,
//! answers, and ends.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::record::{MAX_RECORD, REGISTER, SHUT_DOWN, UNREGISTER};
use super::table::Table;
use crate::error::{Error, Result};
use crate::name::MAX_NAME_LEN;

/// Where the tracker keeps its end of the socket.
const SOCKET_FD: RawFd = 3;

/// The tracker's one datagram to its creator: it has set itself up.
const READY: [u8; 1] = *b"!";

/// Where glibc's `shm_open` puts a block named `name`: `/dev/shm/name`.
const SHM_DIR: &[u8] = b"/dev/shm/";

const WARNING_HEAD: &[u8] = b"proc_shared resource tracker: leaked shared_memory block '";
const WARNING_TAIL: &[u8] =
    b"' unlinked: its process tree ended without unlinking it (call unlink() when done)\n";

/// Starts a tracker; the creators' end of its socket (close-on-exec: programs this process
/// executes are not part of its tree).
pub(super) fn start() -> Result<OwnedFd> {
    let (tracker_end, creators_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::io("socketpair for the resource tracker", e))?;
    let tracker_fd = tracker_end.as_raw_fd();
    let creators_fd = creators_end.as_raw_fd();
    // SAFETY: fork's contract in a process that may run threads: the child calls only
    // async-signal-safe functions until it ends. It does: `fork` again and `_exit`, and the
    // grandchild runs `serve`, which uses raw system calls only (no allocation, no lock,
    // no unwinding) and ends with `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(Error::io(
            "fork of the resource tracker",
            std::io::Error::last_os_error(),
        )),
        0 => {
            // SAFETY: as above; this intermediate child only forks and exits.
            let grandchild = unsafe { libc::fork() };
            if grandchild == 0 {
                // SAFETY: `creators_fd` is this process's copy of the creators' end: the
                // tracker must not hold it (it would never see end of file).
                unsafe { libc::close(creators_fd) };
                serve(tracker_fd);
            }
            // SAFETY: _exit is async-signal-safe and ends this intermediate process at
            // once, without running anything of the parent's.
            unsafe { libc::_exit(if grandchild > 0 { 0 } else { 1 }) }
        }
        intermediate => {
            drop(tracker_end);
            wait_for_intermediate(Pid::from_raw(intermediate))?;
            wait_until_ready(&creators_end)?;
            Ok(creators_end)
        }
    }
}

/// Reaps the intermediate child, which ends as soon as it has forked the tracker.
fn wait_for_intermediate(pid: Pid) -> Result<()> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(status) => {
                return Err(Error::io(
                    "starting the resource tracker",
                    std::io::Error::other(format!("its launcher ended with {status:?}")),
                ));
            }
            Err(Errno::EINTR) => continue,
            // SIGCHLD ignored by the program: the kernel reaped it; the tracker may well
            // run, and nothing tells us otherwise.
            Err(Errno::ECHILD) => return Ok(()),
            Err(e) => return Err(Error::io("waitpid for the resource tracker's launcher", e)),
        }
    }
}

/// Waits for the tracker's word that it holds nothing of ours any more (so that a descriptor
/// this process closes next is really closed), or its end.
fn wait_until_ready(creators_end: &OwnedFd) -> Result<()> {
    let mut word = [0u8; 1];
    loop {
        match nix::sys::socket::recv(creators_end.as_raw_fd(), &mut word, MsgFlags::empty()) {
            Ok(1) if word == READY => return Ok(()),
            Ok(_) => {
                return Err(Error::io(
                    "starting the resource tracker",
                    std::io::Error::other("it ended before it was ready"),
                ));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::io("waiting for the resource tracker to start", e)),
        }
    }
}

/// The tracker's life: set up its descriptors and signals, read records until end of file
/// (or a manager's shutdown), clean up, exit. Async-signal-safe throughout (see the
/// module's notes).
fn serve(socket: RawFd) -> ! {
    isolate(socket);
    // SAFETY: send reads the one byte of READY; the creator waits for it (MSG_NOSIGNAL: a
    // creator already gone is no reason to die).
    unsafe { libc::send(SOCKET_FD, READY.as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
    let mut table = Table::new();
    let shut_down = take_records(&mut table, 0);
    if shut_down {
        // A manager's shutdown: its blocks go as asked, without a warning. First no record
        // is taken any more (a creator's send now fails with EPIPE), then those sent before
        // are taken, so that no block ends up registered with nobody.
        // SAFETY: shutdown of our own socket; no memory is involved.
        unsafe { libc::shutdown(SOCKET_FD, libc::SHUT_RD) };
        take_records(&mut table, libc::MSG_DONTWAIT);
    }
    for name in table.names() {
        unlink(name, !shut_down);
    }
    if shut_down {
        // SAFETY: send reads the one byte; the process that shut the manager down waits for
        // it.
        unsafe {
            libc::send(
                SOCKET_FD,
                [SHUT_DOWN].as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL,
            )
        };
    }
    // SAFETY: _exit ends the tracker without running anything of its creator's program.
    unsafe { libc::_exit(0) }
}

/// Applies the records that come (with `recv` flags `flags`) until end of file, an error
/// (`EAGAIN` with `MSG_DONTWAIT`), or a shutdown record; whether it was a shutdown.
fn take_records(table: &mut Table, flags: libc::c_int) -> bool {
    // One byte more than the longest record, to notice a longer (truncated) datagram.
    let mut buf = [0u8; MAX_RECORD + 1];
    loop {
        // SAFETY: the buffer is valid for writes of its length.
        let n = unsafe { libc::recv(SOCKET_FD, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        match buf.get(..n as usize).and_then(<[u8]>::split_first) {
            Some((&REGISTER, name)) if is_file_name(name) => table.insert(name),
            Some((&UNREGISTER, name)) => table.remove(name),
            Some((&SHUT_DOWN, [])) => return true,
            _ => {}
        }
    }
}

/// Whether `name` names a file directly inside /dev/shm (the creators validated it; the
/// tracker checks again before it unlinks anything by that name).
fn is_file_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Ignores SIGINT and SIGTERM, moves the socket to descriptor 3, points stdin and stdout at
/// `/dev/null` and closes every descriptor above 3.
fn isolate(socket: RawFd) {
    // SAFETY: each call is an async-signal-safe system call on descriptors and signal
    // dispositions of this (single-threaded) process; none touches memory but the string
    // literal passed to open.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        if socket != SOCKET_FD && libc::dup2(socket, SOCKET_FD) < 0 {
            libc::_exit(1);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
        }
        let first = (SOCKET_FD + 1) as libc::c_uint;
        if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
            // Kernels before 5.9: close them one by one, up to the descriptor limit.
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as RawFd
            } else {
                1024
            };
            for fd in first as RawFd..top {
                libc::close(fd);
            }
        }
    }
}

/// Unlinks `/dev/shm/<name>`; if there was one and `warn`, says so on stderr.
fn unlink(name: &[u8], warn: bool) {
    let mut path = [0u8; SHM_DIR.len() + MAX_NAME_LEN + 1];
    let (dir, rest) = path.split_at_mut(SHM_DIR.len());
    dir.copy_from_slice(SHM_DIR);
    // The table keeps names of at most MAX_NAME_LEN bytes: the slot always exists.
    let Some(file) = rest.get_mut(..name.len()) else {
        return;
    };
    file.copy_from_slice(name);
    // `path` was zeroed: the byte after the name ends the C string.
    // SAFETY: `path` is a NUL-terminated string: the name holds no NUL (`is_file_name`).
    if unsafe { libc::unlink(path.as_ptr().cast()) } != 0 {
        return; // unlinked by someone else meanwhile: nothing leaked
    }
    if !warn {
        return;
    }
    let mut message = [0u8; WARNING_HEAD.len() + MAX_NAME_LEN + WARNING_TAIL.len()];
    let mut len = 0;
    for part in [WARNING_HEAD, name, WARNING_TAIL] {
        if let Some(space) = message.get_mut(len..len + part.len()) {
            space.copy_from_slice(part);
            len += part.len();
        }
    }
    // SAFETY: the first `len` bytes of `message` are initialised; a failed write (stderr
    // closed) loses only the warning.
    unsafe { libc::write(2, message.as_ptr().cast(), len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_unlinks_nothing_outside_dev_shm() {
        assert!(is_file_name(b"psm_0123abcd"));
        for bad in [&b""[..], b".", b"..", b"../etc/passwd", b"a/b", b"a\0b"] {
            assert!(!is_file_name(bad), "{bad:?}");
        }
        assert!(!is_file_name(&[b'x'; MAX_NAME_LEN + 1]));
    }
}
