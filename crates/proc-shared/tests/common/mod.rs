//! Helpers shared by the multiprocess tests: children that run a target under the start
//! method in force (`MULTIPROC_START_METHOD`), and looking at `/dev/shm` from outside.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proc_core::{Process, Target};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A generous bound for anything that must happen "eventually": only reached on a bug.
pub(crate) const EVENTUALLY: Duration = Duration::from_secs(60);

/// Starts a child that calls `target` with `args`, by the start method in force: a daemon,
/// so that a failing test does not leave the test binary waiting for it at exit.
pub(crate) fn start<F, Args>(target: F, args: Args) -> Process
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args).with_daemon(true);
    p.start().expect("start a child");
    p
}

/// Joins a child, failing the test if it does not end within [`EVENTUALLY`].
pub(crate) fn join(p: &Process) -> i32 {
    p.join_timeout(EVENTUALLY)
        .expect("join")
        .unwrap_or_else(|| panic!("child {:?} did not end in time", p.pid()))
}

/// Runs `target(args)` in a child and returns its exit code.
pub(crate) fn run<F, Args>(target: F, args: Args) -> i32
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    join(&start(target, args))
}

/// The file of the block named `name`.
pub(crate) fn shm_path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.trim_start_matches('/'))
}

/// Whether a block named `name` exists.
pub(crate) fn shm_exists(name: &str) -> bool {
    shm_path(name).exists()
}

/// Waits until the block named `name` is gone; false if it is still there after
/// [`EVENTUALLY`].
pub(crate) fn eventually_gone(name: &str) -> bool {
    let start = Instant::now();
    while shm_exists(name) {
        if start.elapsed() > EVENTUALLY {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A name no other test (or run) uses.
pub(crate) fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "proc_shared_test_{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
