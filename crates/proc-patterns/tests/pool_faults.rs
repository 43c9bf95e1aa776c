//! Pool: a worker SIGKILLed from outside while it runs a task.

use std::sync::OnceLock;
use std::time::Duration;

use proc_patterns::{Error, Pool};
use proc_sync::{Event, Value};

/// Long enough never to be reached by a correct run.
const NEVER: Duration = Duration::from_secs(60);

/// Set by the task that hangs, with its worker's pid; made before the pool, so that the
/// workers share it.
struct Started {
    event: Event,
    pid: Value<u32>,
}

fn started(cell: &OnceLock<Started>) -> &Started {
    cell.get_or_init(|| Started {
        event: Event::new().unwrap(),
        pid: Value::new(0).unwrap(),
    })
}

/// Input 3 hangs after saying which worker runs it; the others return at once.
fn hang_on_three(x: u32, cell: &OnceLock<Started>) -> u32 {
    if x == 3 {
        let started = started(cell);
        started.pid.set(std::process::id());
        started.event.set();
        std::thread::sleep(Duration::from_secs(3600));
    }
    x
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

fn double(x: u32) -> u32 {
    x * 2
}

static IMAP: OnceLock<Started> = OnceLock::new();

fn hang_imap(x: u32) -> u32 {
    hang_on_three(x, &IMAP)
}

#[test]
fn a_worker_killed_during_a_task_fails_that_task_only_and_is_replaced() {
    let started = started(&IMAP);
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let before = pool.pids();
    let results = pool.imap(hang_imap, 0..8);
    assert!(started.event.wait_timeout(NEVER));
    let victim = started.pid.get();
    assert!(before.contains(&victim));
    kill(victim);
    let results: Vec<_> = results.collect();
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

static MAP: OnceLock<Started> = OnceLock::new();

fn hang_map(x: u32) -> u32 {
    hang_on_three(x, &MAP)
}

#[test]
fn map_returns_an_error_instead_of_hanging_when_the_worker_holding_a_task_is_killed() {
    let started = started(&MAP);
    let pool = Pool::new(1).unwrap();
    let killer = std::thread::spawn(move || {
        assert!(started.event.wait_timeout(NEVER));
        kill(started.pid.get());
    });
    let result = pool.map(hang_map, 0..6);
    killer.join().unwrap();
    assert!(
        matches!(result, Err(Error::WorkerDied { exitcode: -9, .. })),
        "{result:?}"
    );
    assert_eq!(pool.pids().len(), 1);
    assert_eq!(pool.map(double, 0..6).unwrap(), [0, 2, 4, 6, 8, 10]);
}

static APPLY: OnceLock<Started> = OnceLock::new();

fn hang_apply(x: u32) -> u32 {
    hang_on_three(x, &APPLY)
}

#[test]
fn apply_async_reports_the_death_of_its_worker() {
    let started = started(&APPLY);
    let pool = Pool::new(2).unwrap();
    let pending = pool.apply_async(hang_apply, 3);
    assert!(started.event.wait_timeout(NEVER));
    kill(started.pid.get());
    match pending.get_timeout(NEVER) {
        Err(Error::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, -9),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert_eq!(pool.apply(double, 21).unwrap(), 42);
}
