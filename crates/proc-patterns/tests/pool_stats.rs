//! Pool: `stats()`, the counters a caller polls for its own progress display: tasks
//! submitted, completed and failed, and workers replaced. The workers are forked, spawned
//! or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::time::Instant;

use common::{NEVER, PidFile};
use proc_patterns::{Error, Pool, PoolStats};

fn square(x: u64) -> u64 {
    x * x
}

fn fail_on_odd(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd");
    x
}

/// Waits until `done` says the pool's counters are where they should be.
fn wait_for(pool: &Pool, done: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let start = Instant::now();
    loop {
        let stats = pool.stats();
        if done(&stats) {
            return stats;
        }
        assert!(start.elapsed() < NEVER, "the counters stopped at {stats:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_fresh_pool_has_done_nothing() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.stats(), PoolStats::default());
}

#[test]
fn every_task_submitted_is_counted_once_completed_or_failed() {
    let pool = Pool::builder().processes(2).chunksize(3).build().unwrap();
    assert_eq!(pool.map(square, 0..100).unwrap().len(), 100);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.failed),
        (100, 100, 0)
    );

    // Half of them panic, in chunks that mix both.
    let results: Vec<_> = pool.imap(fail_on_odd, 0..10).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 5);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.failed),
        (110, 105, 5)
    );

    assert_eq!(pool.apply(square, 4).unwrap(), 16);
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (111, 106));
    assert_eq!(stats.workers_replaced, 0);
}

#[test]
fn work_refused_by_a_closed_pool_counts_as_submitted_and_failed() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    assert!(matches!(pool.map(square, 0..7), Err(Error::PoolClosed)));
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed, stats.failed), (7, 0, 7));
    pool.join().unwrap();
}

#[test]
fn workers_retired_by_maxtasksperchild_count_as_replaced() {
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .chunksize(1)
        .build()
        .unwrap();
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    // Each of the four tasks ended its worker; the last replacements may come just after
    // the results.
    let stats = wait_for(&pool, |s| s.workers_replaced >= 4);
    assert_eq!(stats.workers_replaced, 4);
}

fn hang_announced(announce: String) -> u64 {
    PidFile::announce(&announce);
    std::thread::sleep(std::time::Duration::from_secs(3600));
    0
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal; no memory is involved.
    let killed = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0);
}

#[test]
fn a_worker_killed_from_outside_counts_as_replaced_and_its_task_as_failed() {
    let started = PidFile::new("stats");
    let pool = Pool::new(2).unwrap();
    let pending = pool.apply_async(hang_announced, started.path());
    let victim = started.wait();
    kill(victim);
    assert!(matches!(
        pending.get_timeout(NEVER),
        Err(Error::WorkerDied { .. })
    ));
    let stats = wait_for(&pool, |s| s.workers_replaced >= 1);
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.failed,
            stats.workers_replaced
        ),
        (1, 0, 1, 1)
    );
}
