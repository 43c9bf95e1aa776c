//! procspawn: `spawn` runs a function in a new process, its own way: it starts this
//! executable again (fork and exec), which `procspawn::init()` at the top of `main` turns
//! into the function's runner, and sends it the function and its arguments over
//! ipc-channel; `join` receives the result and waits for the process. That is the job of
//! multiproc's `spawn` start method (a new program image per process), not of fork.

use std::time::{Duration, Instant};

use crate::shape::Workload;
use crate::sys::Fallible;

pub const WORKLOADS: &[(&str, Workload)] = &[("spawn_join:spawn", spawn_join)];

/// A no-op function spawned and joined, once untimed, then `count` times.
fn spawn_join(count: u64) -> Fallible<Duration> {
    // SAFETY: without its `safe-shared-libraries` feature (which looks the function up among
    // the loaded libraries at each spawn), procspawn asks its user to vouch that the
    // functions spawned live in the executable itself, not in a shared library that the
    // child might load elsewhere: the closure below is this program's own code.
    unsafe { procspawn::assert_spawn_is_safe() };
    let one = || -> Fallible<()> {
        procspawn::spawn((), |()| ())
            .join()
            .map_err(|e| format!("a no-op process failed: {e}").into())
    };
    one()?;
    let start = Instant::now();
    for _ in 0..count {
        one()?;
    }
    Ok(start.elapsed())
}
