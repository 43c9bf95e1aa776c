//! Pool: `apply_async_with` and its [`Callbacks`], Python's `callback` and
//! `error_callback`: they run in the pool's process, in the order tasks finish, before the
//! result is ready (CPython's test_map_async_callbacks and test_async_error_callback,
//! ported). The workers are forked, spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::NEVER;
use proc_patterns::{Callbacks, Error, Pool};

fn square(x: u64) -> u64 {
    x * x
}

fn refuse_seven(x: u64) -> u64 {
    assert_ne!(x, 7, "seven is refused");
    x
}

static SUCCESSES: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

/// Records the value and the process the callback runs in.
fn record_success(value: &u64) {
    SUCCESSES.lock().unwrap().push((*value, std::process::id()));
}

#[test]
fn the_success_callback_gets_the_value_in_the_pools_process_before_the_result_is_ready() {
    let pool = Pool::new(2).unwrap();
    let callbacks = Callbacks::new().on_success(record_success);
    let pending: Vec<_> = (1..=5)
        .map(|x| pool.apply_async_with(square, x, callbacks))
        .collect();
    for p in &pending {
        p.get_timeout(NEVER).unwrap();
    }
    let mut seen = SUCCESSES.lock().unwrap().clone();
    seen.sort_unstable();
    let me = std::process::id();
    assert_eq!(seen, [(1, me), (4, me), (9, me), (16, me), (25, me)]);
}

static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static WRONG_SUCCESSES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn record_error(error: &Error) {
    ERRORS.lock().unwrap().push(error.to_string());
}

fn record_wrong_success(value: &u64) {
    WRONG_SUCCESSES.lock().unwrap().push(*value);
}

#[test]
fn the_error_callback_gets_the_tasks_error_and_the_success_callback_is_not_called() {
    let pool = Pool::new(1).unwrap();
    let callbacks = Callbacks::new()
        .on_success(record_wrong_success)
        .on_error(record_error);
    let pending = pool.apply_async_with(refuse_seven, 7, callbacks);
    assert!(matches!(pending.get(), Err(Error::TaskPanicked { .. })));
    let errors = ERRORS.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("seven is refused"), "{errors:?}");
    assert!(WRONG_SUCCESSES.lock().unwrap().is_empty());
}

static ORDER: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The task that finishes second: it waits until the callback of the first one has run in
/// the pool's process (it creates the file `signal`), then returns.
fn wait_for_file(signal: String) -> String {
    let start = Instant::now();
    while !std::path::Path::new(&signal).exists() {
        assert!(start.elapsed() < NEVER, "no callback created {signal}");
        std::thread::sleep(Duration::from_millis(1));
    }
    format!("waited for {signal}")
}

fn echo(signal: String) -> String {
    signal
}

/// Records the value; a path, once recorded, is created to let the waiting task go.
fn record_in_order(value: &String) {
    ORDER.lock().unwrap().push(value.clone());
    if !value.starts_with("waited") {
        std::fs::write(value, b"go").unwrap();
    }
}

#[test]
fn callbacks_run_in_the_order_the_tasks_finish_not_the_order_they_were_submitted() {
    let signal = std::env::temp_dir().join(format!("multiproc-callback-{}", std::process::id()));
    let signal = signal.to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&signal);
    let pool = Pool::new(2).unwrap();
    let callbacks = Callbacks::new().on_success(record_in_order);
    let first = pool.apply_async_with(wait_for_file, signal.clone(), callbacks);
    let second = pool.apply_async_with(echo, signal.clone(), callbacks);
    first.get_timeout(NEVER).unwrap();
    second.get_timeout(NEVER).unwrap();
    let _ = std::fs::remove_file(&signal);
    assert_eq!(
        *ORDER.lock().unwrap(),
        [signal.clone(), format!("waited for {signal}")]
    );
}

static CLOSED_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_closed(error: &Error) {
    CLOSED_ERRORS.lock().unwrap().push(error.to_string());
}

#[test]
fn on_a_closed_pool_the_error_callback_runs_at_once_with_pool_closed() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    let pending = pool.apply_async_with(square, 2, Callbacks::new().on_error(record_closed));
    assert_eq!(CLOSED_ERRORS.lock().unwrap().len(), 1);
    assert!(matches!(pending.get(), Err(Error::PoolClosed)));
    pool.join().unwrap();
}

static MAP_VALUES: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());
static MAP_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_map_values(values: &[u64]) {
    MAP_VALUES.lock().unwrap().push(values.to_vec());
}

fn record_map_error(error: &Error) {
    MAP_ERRORS.lock().unwrap().push(error.to_string());
}

fn refuse_odd(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd numbers are refused");
    x
}

#[test]
fn map_async_with_calls_back_once_with_every_value_in_input_order_or_once_with_the_first_error() {
    let pool = Pool::builder().processes(2).chunksize(3).build().unwrap();
    let callbacks = Callbacks::new()
        .on_success(record_map_values)
        .on_error(record_map_error);
    let squares = pool.map_async_with(square, 0..10, callbacks);
    assert!(squares.wait_timeout(NEVER));
    assert_eq!(
        *MAP_VALUES.lock().unwrap(),
        [(0..10).map(square).collect::<Vec<_>>()]
    );
    assert!(MAP_ERRORS.lock().unwrap().is_empty());

    // Two tasks fail: the error callback runs once.
    let refused = pool.map_async_with(refuse_odd, 0..8, callbacks);
    assert!(refused.wait_timeout(NEVER));
    assert!(matches!(refused.get(), Err(Error::TaskPanicked { .. })));
    let errors = MAP_ERRORS.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("odd numbers are refused"));
    assert_eq!(MAP_VALUES.lock().unwrap().len(), 1, "no success callback");

    // No input: the callback gets an empty list, as Python's.
    let nothing = pool.map_async_with(square, Vec::new(), callbacks);
    assert!(nothing.get().unwrap().is_empty());
    assert_eq!(
        MAP_VALUES.lock().unwrap().last().unwrap(),
        &Vec::<u64>::new()
    );
}
