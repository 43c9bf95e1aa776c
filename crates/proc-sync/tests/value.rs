//! Value and Array across processes.

mod common;

use std::time::Duration;

use common::{EVENTUALLY, join, start};
use proc_sync::{Array, Error, Value};

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn move_the_point(point: Value<Point>) {
    point.set(Point { x: 1.5, y: -2.0 });
}

#[test]
fn a_value_set_in_a_child_is_seen_by_the_parent() {
    let point = Value::new(Point { x: 0.0, y: 0.0 }).unwrap();
    let child = start(move_the_point, (point.clone(),));
    assert_eq!(join(&child), 0);
    assert_eq!(point.get(), Point { x: 1.5, y: -2.0 });
}

fn increment(counter: Value<u64>, times: u32) {
    for _ in 0..times {
        *counter.lock() += 1;
    }
}

#[test]
fn processes_incrementing_a_value_under_its_lock_lose_no_update() {
    let counter = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| start(increment, (counter.clone(), 5_000)))
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert_eq!(counter.get(), 15_000);
}

fn cannot_lock(value: Value<u8>) {
    assert!(value.try_lock().is_none());
    assert!(value.lock_timeout(Duration::from_millis(10)).is_none());
}

#[test]
fn a_value_lock_held_elsewhere_is_not_acquired_by_try_or_timed_lock() {
    let value = Value::new(0u8).unwrap();
    let guard = value.lock();
    let other = start(cannot_lock, (value.clone(),));
    assert_eq!(join(&other), 0);
    assert!(matches!(
        value.lock_checked(),
        Err(Error::WouldDeadlock { .. })
    ));
    drop(guard);
    assert!(value.lock_timeout(EVENTUALLY).is_some());
}

fn reverse(array: Array<u16>) {
    array.lock().reverse();
}

#[test]
fn an_array_starts_zeroed_or_as_a_copy_and_is_shared_with_children() {
    let zeros = Array::<i32>::new(5).unwrap();
    assert_eq!(zeros.len(), 5);
    assert!(!zeros.is_empty());
    assert_eq!(zeros.to_vec(), [0; 5]);

    let array = Array::from_slice(&[1u16, 2, 3]).unwrap();
    let child = start(reverse, (array.clone(),));
    assert_eq!(join(&child), 0);
    assert_eq!(array.to_vec(), [3, 2, 1]);
}

#[test]
fn an_empty_array_and_a_zero_sized_value_work() {
    let empty = Array::<u64>::new(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.lock().is_empty());
    let unit = Value::new(()).unwrap();
    unit.set(());
    assert!(!unit.lock().previous_owner_died());
}

#[test]
fn an_array_too_large_to_exist_is_refused() {
    assert!(matches!(
        Array::<u64>::new(usize::MAX / 4),
        Err(Error::InvalidArgument { .. })
    ));
}
