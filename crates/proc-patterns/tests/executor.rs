//! Executor, as Python's `concurrent.futures.ProcessPoolExecutor` (the behaviour of
//! CPython's `test_concurrent_futures`): submit and result, result with a timeout, cancel
//! before start, map with a timeout, shutdown with and without cancelling, a worker killed
//! mid-task. The workers are forked, spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::time::{Duration, Instant};

use common::{NEVER, PidFile};
use proc_patterns::{Error, Executor};

fn square(x: u64) -> u64 {
    x * x
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn check(x: i64) -> i64 {
    assert!(x >= 0, "negative input {x}");
    x
}

/// Says which worker runs it, then waits until the test opens `gate` (writes the file).
fn announce_then_wait((announce, gate): (String, String)) -> u32 {
    PidFile::announce(&announce);
    // Bounded, so that a failing test ends instead of waiting in the executor's drop.
    let start = Instant::now();
    while std::fs::metadata(&gate).is_err() && start.elapsed() < NEVER {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::process::id()
}

/// Leaves a mark that it ran.
fn touch(path: String) -> bool {
    std::fs::write(path, "ran").is_ok()
}

fn open(gate: &PidFile) {
    std::fs::write(gate.path(), "open").unwrap();
}

/// Waits until the future's task is on a worker.
fn wait_running<R: serde::de::DeserializeOwned>(future: &proc_patterns::TaskFuture<R>) {
    let start = Instant::now();
    while !future.running() {
        assert!(start.elapsed() < NEVER, "the task never started");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

#[test]
fn submit_gives_a_future_whose_result_is_the_tasks_value_as_often_as_asked() {
    let ex = Executor::new(2).unwrap();
    let futures: Vec<_> = (0..10).map(|x| ex.submit(square, x).unwrap()).collect();
    for (x, future) in (0..10u64).zip(&futures) {
        assert_eq!(future.result().unwrap(), x * x);
        assert_eq!(future.result().unwrap(), x * x);
        assert!(future.done());
        assert!(!future.running());
        assert!(!future.cancelled());
    }
}

#[test]
fn a_task_that_panics_fails_its_own_future_only() {
    let ex = Executor::new(1).unwrap();
    let bad = ex.submit(check, -3).unwrap();
    let good = ex.submit(check, 3).unwrap();
    match bad.result() {
        Err(Error::TaskPanicked { message }) => assert!(message.contains("negative input -3")),
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    assert_eq!(good.result().unwrap(), 3);
}

#[test]
fn result_timeout_gives_timeout_while_the_task_runs_on_to_its_value() {
    let started = PidFile::new("exec-result-timeout");
    let gate = PidFile::new("exec-result-timeout-gate");
    let ex = Executor::new(1).unwrap();
    let future = ex
        .submit(announce_then_wait, (started.path(), gate.path()))
        .unwrap();
    let worker = started.wait();
    assert!(matches!(
        future.result_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(!future.done());
    assert!(future.running());
    open(&gate);
    assert_eq!(future.result_timeout(NEVER).unwrap(), worker);
}

#[test]
fn cancel_before_start_is_true_and_the_task_never_runs() {
    let started = PidFile::new("exec-cancel");
    let gate = PidFile::new("exec-cancel-gate");
    let mark = PidFile::new("exec-cancel-mark");
    let ex = Executor::new(1).unwrap();
    let busy = ex
        .submit(announce_then_wait, (started.path(), gate.path()))
        .unwrap();
    started.wait();
    let queued = ex.submit(touch, mark.path()).unwrap();
    assert!(!queued.running());
    assert!(queued.cancel());
    assert!(
        queued.cancel(),
        "a second cancel is still true, as Python's"
    );
    assert!(queued.cancelled());
    assert!(queued.done());
    assert!(matches!(queued.result(), Err(Error::Cancelled)));
    assert!(matches!(
        queued.result_timeout(NEVER),
        Err(Error::Cancelled)
    ));
    open(&gate);
    busy.result().unwrap();
    // Every other task done and the workers gone: had it run, its mark would be there.
    ex.shutdown(true, false);
    assert!(
        std::fs::metadata(mark.path()).is_err(),
        "the cancelled task ran"
    );
}

#[test]
fn cancel_of_a_running_or_finished_task_is_false_and_changes_nothing() {
    let started = PidFile::new("exec-cancel-running");
    let gate = PidFile::new("exec-cancel-running-gate");
    let ex = Executor::new(1).unwrap();
    let running = ex
        .submit(announce_then_wait, (started.path(), gate.path()))
        .unwrap();
    let worker = started.wait();
    wait_running(&running);
    assert!(!running.cancel());
    assert!(!running.cancelled());
    open(&gate);
    assert_eq!(running.result().unwrap(), worker);
    let finished = ex.submit(square, 4).unwrap();
    assert_eq!(finished.result().unwrap(), 16);
    assert!(!finished.cancel());
    assert_eq!(finished.result().unwrap(), 16);
}

#[test]
fn map_gives_every_result_in_input_order() {
    let ex = Executor::new(3).unwrap();
    let results: Vec<u64> = ex
        .map(square, 0..50, None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, (0..50).map(|x| x * x).collect::<Vec<_>>());
    let naps: Vec<u64> = ex
        .map(nap, [30, 0, 10], Some(NEVER))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(naps, [30, 0, 10]);
}

#[test]
fn map_past_its_timeout_gives_timed_out_for_the_tasks_not_done_and_the_executor_goes_on() {
    let ex = Executor::new(2).unwrap();
    let start = Instant::now();
    let results: Vec<_> = ex
        .map(
            nap,
            [0, 3_600_000, 0, 3_600_000],
            Some(Duration::from_millis(300)),
        )
        .collect();
    assert!(start.elapsed() < NEVER);
    assert_eq!(results[0].as_ref().ok(), Some(&0));
    assert!(
        matches!(results[1], Err(Error::TimedOut { .. })),
        "{results:?}"
    );
    // The third ran or was still waiting behind the hung ones: either way, no hang.
    assert!(
        matches!(results[2], Ok(0) | Err(Error::TimedOut { .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[3], Err(Error::TimedOut { .. })),
        "{results:?}"
    );
    // The hung workers were killed and replaced.
    assert_eq!(ex.submit(square, 5).unwrap().result().unwrap(), 25);
    assert_eq!(ex.pids().len(), 2);
}

#[test]
fn shutdown_with_cancel_futures_cancels_the_queued_tasks_and_lets_the_running_one_finish() {
    let started = PidFile::new("exec-shutdown");
    let gate = PidFile::new("exec-shutdown-gate");
    let marks: Vec<PidFile> = (0..3).map(|_| PidFile::new("exec-shutdown-mark")).collect();
    let ex = Executor::new(1).unwrap();
    let running = ex
        .submit(announce_then_wait, (started.path(), gate.path()))
        .unwrap();
    let worker = started.wait();
    wait_running(&running);
    let queued: Vec<_> = marks
        .iter()
        .map(|mark| ex.submit(touch, mark.path()).unwrap())
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| ex.shutdown(true, true));
        for future in &queued {
            assert!(matches!(future.result(), Err(Error::Cancelled)));
        }
        open(&gate);
    });
    assert_eq!(running.result().unwrap(), worker);
    assert!(ex.pids().is_empty(), "shutdown(wait) waits for the workers");
    for mark in &marks {
        assert!(
            std::fs::metadata(mark.path()).is_err(),
            "a cancelled task ran"
        );
    }
}

#[test]
fn shutdown_without_cancelling_runs_every_submitted_task() {
    let marks: Vec<PidFile> = (0..4).map(|_| PidFile::new("exec-drain-mark")).collect();
    let ex = Executor::new(1).unwrap();
    let futures: Vec<_> = marks
        .iter()
        .map(|mark| ex.submit(touch, mark.path()).unwrap())
        .collect();
    ex.shutdown(false, false);
    for future in &futures {
        assert!(future.result().unwrap());
    }
    ex.shutdown(true, false);
    for mark in &marks {
        assert!(std::fs::metadata(mark.path()).is_ok());
    }
}

#[test]
fn submit_and_map_after_shutdown_fail_with_executor_shutdown() {
    let ex = Executor::new(1).unwrap();
    ex.shutdown(true, false);
    assert!(matches!(ex.submit(square, 1), Err(Error::ExecutorShutdown)));
    let results: Vec<_> = ex.map(square, 0..3, None).collect();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::ExecutorShutdown)))
    );
}

#[test]
fn dropping_the_executor_waits_for_the_tasks_submitted_as_pythons_with_block() {
    let mark = PidFile::new("exec-drop-mark");
    let future = {
        let ex = Executor::new(1).unwrap();
        ex.submit(nap, 100).unwrap();
        ex.submit(touch, mark.path()).unwrap()
    };
    assert!(future.done());
    assert!(future.result().unwrap());
    assert!(std::fs::metadata(mark.path()).is_ok());
}

#[test]
fn a_worker_killed_mid_task_fails_that_future_and_the_executor_goes_on() {
    let started = PidFile::new("exec-killed");
    let gate = PidFile::new("exec-killed-gate");
    let ex = Executor::new(2).unwrap();
    let doomed = ex
        .submit(announce_then_wait, (started.path(), gate.path()))
        .unwrap();
    kill(started.wait());
    match doomed.result() {
        Err(Error::WorkerDied { exitcode, .. }) => assert_eq!(exitcode, -9),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    let results: Vec<u64> = ex
        .map(square, 0..6, None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(results, [0, 1, 4, 9, 16, 25]);
}

#[test]
fn the_builder_takes_the_pools_options() {
    fn remember(tag: String) {
        // SAFETY: set in the worker before any task runs, by its only thread.
        unsafe { std::env::set_var("EXECUTOR_TEST_TAG", tag) };
    }
    fn tag(_: ()) -> String {
        std::env::var("EXECUTOR_TEST_TAG").unwrap_or_default()
    }
    let ex = Executor::builder()
        .processes(2)
        .initializer_with(remember, "from the initializer".to_string())
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    assert_eq!(ex.processes(), 2);
    for _ in 0..3 {
        assert_eq!(
            ex.submit(tag, ()).unwrap().result().unwrap(),
            "from the initializer"
        );
    }
    assert!(matches!(
        Executor::new(0),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn a_shutdown_racing_submits_from_other_threads_leaves_each_task_done_cancelled_or_refused() {
    let ex = Executor::new(2).unwrap();
    let outcomes: Vec<Result<u64, Error>> = std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    (0..200)
                        .map(|x| ex.submit(square, x).and_then(|future| future.result()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        ex.shutdown(true, true);
        submitters
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    assert_eq!(outcomes.len(), 600);
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Ok(_) | Err(Error::Cancelled | Error::ExecutorShutdown)
            ),
            "{outcome:?}"
        );
    }
}
