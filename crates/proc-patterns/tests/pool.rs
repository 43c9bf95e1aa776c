//! Pool: map, imap, imap_unordered, apply, apply_async, chunks, maxtasksperchild,
//! initializer, close/join/terminate, and failures of tasks.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proc_patterns::{Error, Pool};

/// Long enough never to be reached by a correct run.
const NEVER: Duration = Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

fn fails_on_three(x: u32) -> u32 {
    if x == 3 {
        panic!("three is not allowed (got {x})");
    }
    x
}

fn sleep_forever(_: ()) {
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn map_returns_the_results_in_the_order_of_the_inputs() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..1000).map(square).collect();
    assert_eq!(pool.map(square, 0..1000).unwrap(), expected);
}

#[test]
fn map_over_no_inputs_is_empty() {
    let pool = Pool::new(1).unwrap();
    assert!(pool.map(square, Vec::new()).unwrap().is_empty());
    assert_eq!(pool.imap(square, Vec::new()).count(), 0);
}

#[test]
fn tasks_take_and_return_any_serde_types() {
    fn describe((name, scores): (String, Vec<f64>)) -> Option<String> {
        let best = scores.iter().cloned().fold(f64::MIN, f64::max);
        (!scores.is_empty()).then(|| format!("{name}: {best}"))
    }
    let pool = Pool::new(2).unwrap();
    let inputs = vec![
        ("小王".to_string(), vec![1.5, 3.0]),
        ("小周".to_string(), vec![]),
    ];
    assert_eq!(
        pool.map(describe, inputs).unwrap(),
        [Some("小王: 3".to_string()), None]
    );
}

#[test]
fn imap_streams_results_in_input_order_for_every_chunksize() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..100).map(square).collect();
    for chunksize in [1, 7, 100, 1000] {
        let got: Vec<u64> = pool
            .imap_chunked(square, 0..100, chunksize)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, expected, "chunksize {chunksize}");
        assert_eq!(
            pool.map_chunked(square, 0..100, chunksize).unwrap(),
            expected
        );
    }
}

#[test]
fn imap_unordered_yields_every_result_once() {
    let pool = Pool::new(2).unwrap();
    let mut got: Vec<u64> = pool
        .imap_unordered_chunked(square, 0..500, 3)
        .collect::<Result<_, _>>()
        .unwrap();
    got.sort_unstable();
    let expected: Vec<u64> = (0..500).map(square).collect();
    assert_eq!(got, expected);
    let iter = pool.imap_unordered(square, 0..10);
    assert_eq!(iter.size_hint(), (10, Some(10)));
}

#[test]
fn apply_and_apply_async_run_one_task_in_a_worker() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let worker = pool.apply(pid, 0).unwrap();
    assert_ne!(worker, std::process::id());
    assert!(pool.pids().contains(&worker));

    let pending: Vec<_> = (0..10).map(|x| pool.apply_async(square, x)).collect();
    for (x, result) in (0..10).zip(&pending) {
        assert_eq!(result.get().unwrap(), x * x);
        assert!(result.ready());
        assert_eq!(result.get_timeout(Duration::ZERO).unwrap(), x * x);
    }
}

#[test]
fn get_timeout_on_an_unfinished_task_is_a_timeout_and_the_task_goes_on() {
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(sleep_forever, ());
    assert!(!pending.ready());
    assert!(matches!(
        pending.get_timeout(Duration::from_millis(10)),
        Err(Error::Timeout)
    ));
    assert!(!pending.ready());
    pool.terminate();
    assert!(matches!(pending.get(), Err(Error::PoolTerminated)));
}

#[test]
fn a_panicking_task_is_an_error_with_its_message_and_the_others_and_the_pool_go_on() {
    let pool = Pool::builder().processes(2).chunksize(4).build().unwrap();
    let results: Vec<_> = pool.imap(fails_on_three, 0..8).collect();
    assert_eq!(results.len(), 8, "one result per input: {results:?}");
    for (x, result) in (0..8).zip(&results) {
        match (x, result) {
            (3, Err(Error::TaskPanicked { message })) => {
                assert_eq!(message, "three is not allowed (got 3)")
            }
            (3, other) => panic!("task 3 gave {other:?}"),
            (x, Ok(y)) => assert_eq!(x, *y),
            (x, Err(e)) => panic!("task {x} failed: {e}"),
        }
    }
    assert!(matches!(
        pool.map(fails_on_three, 0..5),
        Err(Error::TaskPanicked { .. })
    ));
    assert!(matches!(
        pool.apply(fails_on_three, 3),
        Err(Error::TaskPanicked { .. })
    ));
    // The pool goes on, with the same workers: a panic does not end a worker.
    let pids = pool.pids();
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    assert_eq!(pool.pids(), pids);
}

#[test]
fn maxtasksperchild_replaces_a_worker_after_that_many_tasks() {
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(2)
        .chunksize(1)
        .build()
        .unwrap();
    let pids = pool.map(pid, 0..12).unwrap();
    let mut per_worker = std::collections::HashMap::new();
    for p in &pids {
        *per_worker.entry(*p).or_insert(0) += 1;
    }
    // No worker ran more than two tasks, so at least six different workers ran them.
    assert!(per_worker.values().all(|&n| n <= 2), "{per_worker:?}");
    assert!(per_worker.len() >= 6);
    assert_eq!(pool.pids().len(), 2);
    assert_eq!(pool.map(square, 0..3).unwrap(), [0, 1, 4]);
}

static INITIALIZED: AtomicU32 = AtomicU32::new(0);

fn initialize() {
    INITIALIZED.store(std::process::id(), Ordering::SeqCst);
}

fn initialized_by(_: u32) -> (u32, u32) {
    (INITIALIZED.load(Ordering::SeqCst), std::process::id())
}

#[test]
fn the_initializer_runs_once_in_each_worker_before_its_tasks() {
    let pool = Pool::builder()
        .processes(2)
        .initializer(initialize)
        .chunksize(1)
        .build()
        .unwrap();
    for (initialized, worker) in pool.map(initialized_by, 0..20).unwrap() {
        assert_eq!(initialized, worker);
    }
    assert_eq!(INITIALIZED.load(Ordering::SeqCst), 0, "not in this process");
}

#[test]
fn close_lets_submitted_work_finish_and_join_waits_for_the_workers() {
    let pool = Pool::new(2).unwrap();
    assert!(matches!(pool.join(), Err(Error::JoinBeforeClose)));
    let pending = pool.apply_async(square, 5);
    let streaming = pool.imap(square, 0..50);
    let workers = pool.pids();
    pool.close();
    assert!(matches!(pool.map(square, 0..3), Err(Error::PoolClosed)));
    assert!(matches!(
        pool.apply_async(square, 1).get(),
        Err(Error::PoolClosed)
    ));
    assert!(
        pool.imap(square, 0..3)
            .all(|r| matches!(r, Err(Error::PoolClosed)))
    );
    pool.join().unwrap();
    assert_eq!(pending.get().unwrap(), 25);
    assert_eq!(streaming.count(), 50);
    assert!(pool.pids().is_empty());
    for pid in workers {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn terminate_ends_the_workers_and_fails_unfinished_tasks() {
    let pool = Pool::new(2).unwrap();
    let running: Vec<_> = (0..3)
        .map(|_| pool.apply_async(sleep_forever, ()))
        .collect();
    let workers = pool.pids();
    pool.terminate();
    for result in running {
        assert!(matches!(
            result.get_timeout(NEVER),
            Err(Error::PoolTerminated)
        ));
    }
    for pid in workers {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    assert!(matches!(pool.apply(square, 1), Err(Error::PoolClosed)));
    pool.join().unwrap();
}

#[test]
fn a_dropped_pool_ends_and_reaps_its_workers() {
    let pool = Pool::new(2).unwrap();
    let _running = pool.apply_async(sleep_forever, ());
    let workers = pool.pids();
    assert_eq!(workers.len(), 2);
    drop(pool);
    for pid in workers {
        // Reaped, not a zombie: the pid's /proc entry is gone.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn a_pool_needs_at_least_one_process_and_chunks_of_at_least_one() {
    assert!(matches!(Pool::new(0), Err(Error::InvalidArgument { .. })));
    assert!(Pool::builder().chunksize(0).build().is_err());
    assert!(Pool::builder().maxtasksperchild(0).build().is_err());
    let pool = Pool::new(1).unwrap();
    assert!(matches!(
        pool.map_chunked(square, 0..3, 0),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn workers_are_distinct_processes() {
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let pids: HashSet<u32> = pool.pids().into_iter().collect();
    assert_eq!(pids.len(), 2);
    for worker in pool.map(pid, 0..20).unwrap() {
        assert!(pids.contains(&worker));
    }
}
