//! `Value::with_lock`, `Array::with_lock` and `get_lock` (Python's `lock=` argument and
//! `get_lock()`): values made with one lock share it, across processes, so that holding
//! it, through any of them or the lock itself, excludes every one.

mod common;

use std::time::Duration;

use common::{EVENTUALLY, join, start};
use proc_sync::{Array, Error, Event, Lock, Value};

fn cannot_lock_any(lock: Lock, x: Value<u64>, samples: Array<u16>) {
    assert!(lock.try_acquire().is_none());
    assert!(x.try_lock().is_none());
    assert!(samples.lock_timeout(Duration::from_millis(10)).is_none());
    assert!(lock.locked());
}

fn can_lock_each(lock: Lock, x: Value<u64>, samples: Array<u16>) {
    drop(lock.try_acquire().expect("free"));
    drop(x.try_lock().expect("free"));
    drop(samples.try_lock().expect("free"));
}

#[test]
fn a_value_and_an_array_made_with_one_lock_are_excluded_by_holding_either() {
    let lock = Lock::new().unwrap();
    let x = Value::with_lock(0u64, &lock).unwrap();
    let samples = Array::with_lock(&[0u16; 3], &lock).unwrap();
    let args = || (lock.clone(), x.clone(), samples.clone());

    let guard = x.lock();
    assert_eq!(join(&start(cannot_lock_any, args())), 0);
    assert!(matches!(
        samples.lock_checked(),
        Err(Error::WouldDeadlock { what: "Array" })
    ));
    drop(guard);

    let guard = samples.lock();
    assert_eq!(join(&start(cannot_lock_any, args())), 0);
    drop(guard);

    let guard = lock.acquire();
    assert_eq!(join(&start(cannot_lock_any, args())), 0);
    drop(guard);

    assert_eq!(join(&start(can_lock_each, args())), 0);
}

fn hold_through_get_lock(x: Value<u64>, held: Event, release: Event) {
    let _guard = x.get_lock().acquire();
    held.set();
    release.wait();
}

#[test]
fn get_lock_of_a_received_value_is_the_lock_it_was_made_with() {
    let lock = Lock::new().unwrap();
    let x = Value::with_lock(7u64, &lock).unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let holder = start(
        hold_through_get_lock,
        (x.clone(), held.clone(), release.clone()),
    );
    assert!(held.wait_timeout(EVENTUALLY));
    assert!(lock.locked());
    assert!(x.try_lock().is_none());
    release.set();
    assert_eq!(join(&holder), 0);
    assert!(!lock.locked());
    assert_eq!(x.get(), 7);
}

#[test]
fn a_value_made_without_a_lock_has_its_own_that_get_lock_gives() {
    let x = Value::new(1i32).unwrap();
    let y = Value::new(2i32).unwrap();
    let held = x.get_lock().acquire();
    assert!(x.get_lock().locked());
    assert!(x.try_lock().is_none());
    assert!(
        !y.get_lock().locked(),
        "each value made by new has a lock of its own"
    );
    assert_eq!(y.get(), 2);
    drop(held);
    assert_eq!(x.get(), 1);
    let a = Array::from_slice(&[1u8]).unwrap();
    let held = a.get_lock().acquire();
    assert!(a.try_lock().is_none());
    drop(held);
    assert_eq!(a.to_vec(), [1]);
}

fn add_under_shared_lock(x: Value<u64>, y: Value<u64>, times: u64) {
    for _ in 0..times {
        // One lock for both: a whole update of x, then of y, each a read-modify-write.
        *x.lock() += 1;
        *y.lock() += 2;
    }
}

#[test]
fn processes_updating_values_that_share_a_lock_lose_no_update() {
    let lock = Lock::new().unwrap();
    let x = Value::with_lock(0u64, &lock).unwrap();
    let y = Value::with_lock(0u64, &lock).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| start(add_under_shared_lock, (x.clone(), y.clone(), 2_000)))
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert_eq!((x.get(), y.get()), (6_000, 12_000));
}
