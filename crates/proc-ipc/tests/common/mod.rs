//! Helpers shared by the multiprocess tests of proc-ipc: children started from targets, a
//! check that a child is asleep in a blocking call, and raw writes past a connection's
//! framing.
//!
//! The children are targets, `fn`s given the queues, connections and plain data they use
//! as arguments and started with `Process::target(f, args)` and no explicit start method,
//! so that one test binary runs them forked, spawned or served as `MULTIPROC_START_METHOD`
//! says.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use proc_core::{Process, Target};
use proc_ipc::Connection;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Long enough never to be reached by a correct run; only a broken one waits this long.
pub const NEVER: Duration = Duration::from_secs(60);

/// Starts a child that calls `target` with `args`, by the start method in force.
pub fn start<F, Args>(target: F, args: Args) -> Process
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args);
    p.start().expect("start a child");
    p
}

/// Waits until the child sleeps in the futex system call (a blocked put or get), as
/// `/proc/<pid>/syscall` shows it: the test then knows it wakes a sleeper. (A spawned or
/// served child takes a millisecond or more to reach its target: without this wait, the
/// test would mostly change the queue before the child even looked at it.)
pub fn wait_until_asleep_on_a_futex(p: &Process) {
    let path = format!("/proc/{}/syscall", p.pid().expect("a started child"));
    let futex = libc::SYS_futex.to_string();
    let start = Instant::now();
    loop {
        let now = std::fs::read_to_string(&path).unwrap_or_default();
        if now.split_whitespace().next() == Some(futex.as_str()) {
            return;
        }
        assert!(p.is_alive(), "the child ended instead of blocking");
        assert!(start.elapsed() < NEVER, "the child never blocked");
        std::thread::yield_now();
    }
}

/// Writes raw bytes on a connection's socket, bypassing its framing.
pub fn write_raw(conn: &Connection, bytes: &[u8]) {
    let mut left = bytes;
    while !left.is_empty() {
        let n = nix::unistd::write(conn.as_fd(), left).expect("raw write");
        left = &left[n..];
    }
}

/// The descriptors open in this process now.
pub fn open_fds() -> usize {
    // The directory's own descriptor is counted while it is read; it is the same in every
    // count, so counts compare.
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Brings this process to its limit of open descriptors: lowers the soft `RLIMIT_NOFILE`
/// to a little above the highest descriptor open now, then opens copies of stdin until no
/// more can be opened. Dropping `free` of the returned copies leaves room for that many.
/// Only for a child process of a test: the limit is the whole process's.
pub fn exhaust_descriptors() -> Vec<std::os::fd::OwnedFd> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(2);
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, highest + 8, hard).expect("setrlimit");
    let mut copies = Vec::new();
    loop {
        match std::io::stdin().as_fd().try_clone_to_owned() {
            Ok(copy) => copies.push(copy),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return copies,
            Err(e) => panic!("duplicating stdin: {e}"),
        }
        assert!(
            copies.len() as u64 <= highest + 8,
            "the limit does not hold"
        );
    }
}
