//! Pool: Python's `starmap`, `starmap_async`, `map_async`, and `AsyncResult`'s
//! `successful` and `wait_timeout` (ported from CPython's `_TestPool`). The workers are
//! forked, spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::time::Duration;

use common::NEVER;
use proc_patterns::{Error, Pool};

fn mul(x: i64, y: i64) -> i64 {
    x * y
}

fn square(x: i64) -> i64 {
    x * x
}

fn divide(x: i64, y: i64) -> i64 {
    assert!(y != 0, "division of {x} by zero");
    x / y
}

fn never_zero(x: i64) -> i64 {
    assert!(x != 0, "zero");
    x
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn sleep_forever(_: ()) {
    std::thread::sleep(Duration::from_secs(3600));
}

/// CPython's test_starmap: `zip(range(10), range(9, -1, -1))`, then 100 pairs in chunks of 6.
fn pairs(n: i64) -> Vec<(i64, i64)> {
    (0..n).zip((0..n).rev()).collect()
}

#[test]
fn starmap_spreads_each_pair_into_the_arguments_and_keeps_the_order() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<i64> = pairs(10).into_iter().map(|(x, y)| x * y).collect();
    assert_eq!(pool.starmap(mul, pairs(10)).unwrap(), expected);

    let chunked = Pool::builder().processes(2).chunksize(6).build().unwrap();
    let expected: Vec<i64> = pairs(100).into_iter().map(|(x, y)| x * y).collect();
    assert_eq!(chunked.starmap(mul, pairs(100)).unwrap(), expected);
    assert!(pool.starmap(mul, Vec::new()).unwrap().is_empty());
}

#[test]
fn starmap_reports_a_panicking_task_with_its_message() {
    let pool = Pool::new(2).unwrap();
    match pool.starmap(divide, [(4, 2), (1, 0), (9, 3)]) {
        Err(Error::TaskPanicked { message, .. }) => {
            assert!(message.contains("division of 1 by zero"), "{message}");
        }
        other => panic!("expected the panic of (1, 0), got {other:?}"),
    }
    assert_eq!(
        pool.starmap(divide, [(4, 2)]).unwrap(),
        [2],
        "the pool goes on"
    );
}

#[test]
fn starmap_async_and_map_async_give_every_result_in_input_order() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<i64> = pairs(100).into_iter().map(|(x, y)| x * y).collect();
    let products = pool.starmap_async(mul, pairs(100));
    let squares = pool.map_async(square, 0..10);
    assert_eq!(products.get_timeout(NEVER).unwrap(), expected);
    assert_eq!(
        squares.get_timeout(NEVER).unwrap(),
        (0..10).map(square).collect::<Vec<_>>()
    );
    assert!(products.ready() && squares.ready());
    assert!(squares.successful().unwrap());
    // As often as you like.
    assert_eq!(squares.get().unwrap().len(), 10);
    assert!(pool.map_async(square, Vec::new()).get().unwrap().is_empty());
}

#[test]
fn map_async_of_a_failing_task_is_its_error_and_not_successful() {
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let results = pool.starmap_async(divide, [(1, 1), (2, 0), (3, 1)]);
    assert!(results.wait_timeout(NEVER));
    assert!(!results.successful().unwrap());
    match results.get() {
        Err(Error::TaskPanicked { message, .. }) => assert!(message.contains("by zero")),
        other => panic!("expected the panic, got {other:?}"),
    }
}

#[test]
fn map_async_is_ready_as_soon_as_a_task_failed_as_in_python() {
    fn fail_or_hang(x: u32) -> u32 {
        if x == 0 {
            panic!("the first task fails at once");
        }
        std::thread::sleep(Duration::from_secs(3600));
        x
    }
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let results = pool.map_async(fail_or_hang, [0, 1]);
    assert!(
        results.wait_timeout(NEVER),
        "the hanging task is not waited for"
    );
    assert!(!results.successful().unwrap());
    assert!(matches!(results.get(), Err(Error::TaskPanicked { .. })));
    pool.terminate();
}

#[test]
fn successful_before_the_result_is_ready_is_an_error_and_after_it_says_how_it_went() {
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(nap, 300);
    assert!(matches!(pending.successful(), Err(Error::NotReady)));
    pending.wait();
    assert!(pending.successful().unwrap());

    let failed = pool.apply_async(never_zero, 0);
    failed.wait();
    assert!(!failed.successful().unwrap());
}

#[test]
fn wait_timeout_says_whether_the_result_came_in_time_and_the_task_goes_on() {
    let pool = Pool::new(1).unwrap();
    let hanging = pool.apply_async(sleep_forever, ());
    assert!(!hanging.wait_timeout(Duration::from_millis(50)));
    assert!(!hanging.ready());
    assert!(matches!(
        hanging.get_timeout(Duration::from_millis(10)),
        Err(Error::Timeout)
    ));
    pool.terminate();
    assert!(
        hanging.wait_timeout(NEVER),
        "terminated: ready with its error"
    );
    assert!(matches!(hanging.get(), Err(Error::PoolTerminated)));
    assert!(!hanging.successful().unwrap());
}

#[test]
fn async_calls_on_a_closed_pool_fail_each_with_pool_closed() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    assert!(matches!(
        pool.map_async(square, [1, 2]).get(),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(
        pool.starmap(mul, [(1, 2)]),
        Err(Error::PoolClosed)
    ));
    // Even with nothing to do, as Python's "Pool not running".
    assert!(matches!(
        pool.map(square, Vec::new()),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(
        pool.map_async(square, Vec::new()).get(),
        Err(Error::PoolClosed)
    ));
    assert_eq!(pool.imap(square, Vec::new()).count(), 0);
    pool.join().unwrap();
}
