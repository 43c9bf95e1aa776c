//! Pool: a worker SIGKILLed from outside while it runs a task. The workers are forked,
//! spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use common::{NEVER, PidFile};
use proc_patterns::{Error, Pool};

/// Input 3 hangs after saying which worker runs it (in the file at `announce`, see
/// [`PidFile`]); the others return at once.
fn hang_on_three((x, announce): (u32, String)) -> u32 {
    if x == 3 {
        PidFile::announce(&announce);
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    x
}

/// The inputs `range`, each with the path the hanging task announces itself at.
fn inputs(range: std::ops::Range<u32>, announce: &PidFile) -> Vec<(u32, String)> {
    range.map(|x| (x, announce.path())).collect()
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn a_worker_killed_during_a_task_fails_that_task_only_and_is_replaced() {
    let started = PidFile::new("imap");
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let before = pool.pids();
    let results = pool.imap(hang_on_three, inputs(0..8, &started));
    let victim = started.wait();
    assert!(before.contains(&victim));
    kill(victim);
    let results: Vec<_> = results.collect();
    assert_eq!(results.len(), 8, "one result per input: {results:?}");
    for (x, result) in (0..8).zip(&results) {
        match (x, result) {
            (3, Err(Error::WorkerDied { pid, exitcode })) => {
                assert_eq!((*pid, *exitcode), (victim, -9));
            }
            (3, other) => panic!("task 3 gave {other:?}"),
            (x, Ok(y)) => assert_eq!(x, *y),
            (x, Err(e)) => panic!("task {x} failed: {e}"),
        }
    }
    // Replaced: as many workers as before, the killed one not among them.
    let after = pool.pids();
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&victim));
    // And the next map works.
    assert_eq!(
        pool.map(double, 0..10).unwrap(),
        (0..10).map(double).collect::<Vec<_>>()
    );
}

#[test]
fn map_returns_an_error_instead_of_hanging_when_the_worker_holding_a_task_is_killed() {
    let started = PidFile::new("map");
    let pool = Pool::new(1).unwrap();
    let map_inputs = inputs(0..6, &started);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| kill(started.wait()));
        pool.map(hang_on_three, map_inputs)
    });
    assert!(
        matches!(result, Err(Error::WorkerDied { exitcode: -9, .. })),
        "{result:?}"
    );
    assert_eq!(pool.pids().len(), 1);
    assert_eq!(pool.map(double, 0..6).unwrap(), [0, 2, 4, 6, 8, 10]);
}

#[test]
fn apply_async_reports_the_death_of_its_worker() {
    let started = PidFile::new("apply");
    let pool = Pool::new(2).unwrap();
    let pending = pool.apply_async(hang_on_three, (3, started.path()));
    kill(started.wait());
    match pending.get_timeout(NEVER) {
        Err(Error::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, -9),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert_eq!(pool.apply(double, 21).unwrap(), 42);
}
