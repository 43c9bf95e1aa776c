//! Pool: `apply_timeout`, a task that never returns cannot hang the caller: past its time
//! its worker is killed and replaced, and that task alone fails with `TimedOut`. The
//! workers are forked, spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::time::{Duration, Instant};

use common::{NEVER, PidFile};
use proc_patterns::{Error, Pool};

fn hang_announced(announce: String) -> u32 {
    PidFile::announce(&announce);
    std::thread::sleep(Duration::from_secs(3600));
    0
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn a_task_past_its_time_fails_with_timed_out_and_its_worker_is_replaced() {
    let started = PidFile::new("timeout");
    let pool = Pool::new(2).unwrap();
    let before = pool.pids();
    let start = Instant::now();
    let result = pool.apply_timeout(hang_announced, started.path(), Duration::from_millis(300));
    match result {
        Err(Error::TimedOut { timeout }) => assert_eq!(timeout, Duration::from_millis(300)),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(start.elapsed() < NEVER);
    let victim = started.wait();
    assert!(before.contains(&victim));
    let after = pool.pids();
    assert_eq!(after.len(), 2, "replaced: {after:?}");
    assert!(!after.contains(&victim));
    assert_eq!(pool.stats().workers_replaced, 1);
    assert_eq!(pool.map(square, 0..5).unwrap(), [0, 1, 4, 9, 16]);
}

#[test]
fn a_task_that_finishes_in_time_returns_its_value() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.apply_timeout(square, 7, NEVER).unwrap(), 49);
    assert_eq!(pool.apply_timeout(nap, 10, NEVER).unwrap(), 10);
    assert_eq!(pool.stats().workers_replaced, 0);
}

#[test]
fn only_the_late_task_fails_the_others_run_on() {
    let started = PidFile::new("timeout-others");
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let other = pool.apply_async(nap, 500);
    let late = pool.apply_timeout(hang_announced, started.path(), Duration::from_millis(200));
    assert!(matches!(late, Err(Error::TimedOut { .. })), "{late:?}");
    assert_eq!(other.get_timeout(NEVER).unwrap(), 500);
}

#[test]
fn a_task_whose_time_is_up_before_a_worker_is_free_fails_without_running() {
    let pool = Pool::new(1).unwrap();
    let busy = pool.apply_async(nap, 1000);
    let never_ran = PidFile::new("timeout-never");
    let late = pool.apply_timeout(hang_announced, never_ran.path(), Duration::from_millis(100));
    assert!(matches!(late, Err(Error::TimedOut { .. })), "{late:?}");
    assert_eq!(
        busy.get_timeout(NEVER).unwrap(),
        1000,
        "the running task was not killed"
    );
    assert_eq!(pool.stats().workers_replaced, 0);
    assert!(
        !std::path::Path::new(&never_ran.path()).exists(),
        "the late task never started"
    );
}
