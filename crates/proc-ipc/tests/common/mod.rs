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
pub(crate) const NEVER: Duration = Duration::from_secs(60);

/// Starts a child that calls `target` with `args`, by the start method in force.
pub(crate) fn start<F, Args>(target: F, args: Args) -> Process
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
pub(crate) fn wait_until_asleep_on_a_futex(p: &Process) {
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
pub(crate) fn write_raw(conn: &Connection, bytes: &[u8]) {
    let mut left = bytes;
    while !left.is_empty() {
        let n = nix::unistd::write(conn.as_fd(), left).expect("raw write");
        left = &left[n..];
    }
}

#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use multiproc_test_support::fds::{exhaust_descriptors, open_fds};
