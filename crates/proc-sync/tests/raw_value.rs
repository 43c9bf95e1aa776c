//! RawValue and RawArray (Python's `RawValue`, `RawArray`): plain data in shared memory with
//! no lock, seen by every process that holds a handle.

mod common;

use common::{join, start};
use proc_sync::{Error, RawArray, RawValue};

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

fn set_point(point: RawValue<Point>) {
    assert_eq!(point.get(), Point { x: 1.0, y: 2.0 });
    point.set(Point { x: -3.5, y: 4.0 });
}

#[test]
fn a_raw_value_starts_as_given_and_a_child_s_set_is_seen_by_the_parent() {
    let point = RawValue::new(Point { x: 1.0, y: 2.0 }).unwrap();
    assert_eq!(join(&start(set_point, (point.clone(),))), 0);
    assert_eq!(point.get(), Point { x: -3.5, y: 4.0 });
}

fn write_my_slot(squares: RawArray<u64>, me: usize) {
    squares.set(me, (me * me) as u64).unwrap();
    assert!(matches!(
        squares.set(squares.len(), 1),
        Err(Error::IndexOutOfRange { index: 8, len: 8 })
    ));
}

#[test]
fn children_writing_distinct_elements_of_a_raw_array_are_all_seen() {
    let squares = RawArray::<u64>::new(8).unwrap();
    assert_eq!(squares.to_vec(), [0; 8]);
    let children: Vec<_> = (0..8)
        .map(|me| start(write_my_slot, (squares.clone(), me)))
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert_eq!(squares.to_vec(), [0, 1, 4, 9, 16, 25, 36, 49]);
}

#[test]
fn a_raw_array_refuses_indices_past_its_end_and_changes_nothing() {
    let a = RawArray::from_slice(&[1i32, 2, 3]).unwrap();
    assert_eq!((a.len(), a.is_empty()), (3, false));
    assert_eq!(a.get(2), Some(3));
    assert_eq!(a.get(3), None);
    assert_eq!(a.get(usize::MAX), None);
    assert!(matches!(
        a.set(3, 9),
        Err(Error::IndexOutOfRange { index: 3, len: 3 })
    ));
    assert!(a.set(usize::MAX, 9).is_err());
    assert_eq!(a.to_vec(), [1, 2, 3]);
    let empty = RawArray::<u8>::new(0).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.get(0), None);
    assert!(empty.to_vec().is_empty());
}

#[test]
fn a_zero_sized_raw_value_and_a_raw_array_too_large_to_exist() {
    let unit = RawValue::new(()).unwrap();
    unit.set(());
    unit.get();
    assert!(matches!(
        RawArray::<u64>::new(usize::MAX / 4),
        Err(Error::InvalidArgument { .. })
    ));
}

fn count_to(counter: RawValue<u32>, to: u32) {
    while counter.get() < to {
        std::thread::yield_now();
    }
}

#[test]
fn a_raw_value_set_here_is_seen_by_a_running_child() {
    let counter = RawValue::new(0u32).unwrap();
    let child = start(count_to, (counter.clone(), 3));
    for n in 1..=3 {
        counter.set(n);
    }
    assert_eq!(join(&child), 0);
}
