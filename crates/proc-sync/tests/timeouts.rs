//! Timeouts at both ends, for every timed call of the layer: a zero timeout is one try
//! (it succeeds when the primitive is free, and times out at once when it is not, leaving
//! it unchanged), and the longest timeout (`Duration::MAX`) waits as long as it takes,
//! without overflowing the deadline. A negative timeout cannot be written: `Duration` is
//! unsigned (the README's compile-fail example shows it).

mod common;

use std::time::Duration;

use common::{join, start};
use proc_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Value,
};

/// How long a child holds something before it lets go, so that the parent's wait with the
/// longest timeout is a real wait.
const HOLD: Duration = Duration::from_millis(50);

/// A lock, a re-entrant lock and three locked values: what the lock tests hold.
type Locks<T> = (Lock, RLock, Value<T>, Array<T>, Condition<T>);

/// Fresh locks: the value holding `value`, an array of `len` zeroes, the condition's value
/// `condition`.
fn new_locks<T: proc_sync::Pod>(value: T, len: usize, condition: T) -> Locks<T> {
    (
        Lock::new().unwrap(),
        RLock::new().unwrap(),
        Value::new(value).unwrap(),
        Array::new(len).unwrap(),
        Condition::with_value(condition).unwrap(),
    )
}

/// A child: holds every lock until `release` is set.
fn hold_all_until_released(
    (lock, rlock, value, array, condition): Locks<u8>,
    holding: Event,
    release: Event,
) {
    let _guards = (
        lock.acquire(),
        rlock.acquire(),
        value.lock(),
        array.lock(),
        condition.lock(),
    );
    holding.set();
    release.wait();
}

/// A child: holds every lock for a moment, writes, lets go.
fn hold_all_then_write((lock, rlock, value, array, condition): Locks<u64>, holding: Event) {
    let _lock = lock.acquire();
    let _rlock = rlock.acquire();
    let mut value = value.lock();
    let mut array = array.lock();
    let mut condition = condition.lock();
    holding.set();
    std::thread::sleep(HOLD);
    *value = 1;
    array[0] = 2;
    *condition = 3;
}

/// A child: gives a permit, an event, a condition's change and a barrier's party, one after
/// the other with pauses.
fn give_one_by_one(semaphore: Semaphore, event: Event, condition: Condition<u8>, barrier: Barrier) {
    std::thread::sleep(HOLD);
    semaphore.release().unwrap();
    std::thread::sleep(HOLD);
    event.set();
    std::thread::sleep(HOLD);
    *condition.lock() = 1;
    condition.notify_all();
    barrier.wait().unwrap();
}

#[test]
fn zero_timeouts_take_a_free_lock_and_give_up_at_once_on_a_held_one() {
    let locks = new_locks(5u8, 3, 1);
    let (lock, rlock, value, array, condition) = &locks;
    {
        assert!(lock.acquire_timeout(Duration::ZERO).is_some());
        assert!(rlock.acquire_timeout(Duration::ZERO).is_some());
        assert_eq!(*value.lock_timeout(Duration::ZERO).unwrap(), 5);
        assert_eq!(array.lock_timeout(Duration::ZERO).unwrap().len(), 3);
        assert_eq!(*condition.lock_timeout(Duration::ZERO).unwrap(), 1);
    }
    // Held by a child: a zero timeout gives up, and the holder is not disturbed.
    let holding = Event::new().unwrap();
    let release = Event::new().unwrap();
    let child = start(
        hold_all_until_released,
        (locks.clone(), holding.clone(), release.clone()),
    );
    assert!(holding.wait_timeout(common::EVENTUALLY));
    assert!(lock.acquire_timeout(Duration::ZERO).is_none());
    assert!(rlock.acquire_timeout(Duration::ZERO).is_none());
    assert!(value.lock_timeout(Duration::ZERO).is_none());
    assert!(array.lock_timeout(Duration::ZERO).is_none());
    assert!(condition.lock_timeout(Duration::ZERO).is_none());
    release.set();
    assert_eq!(join(&child), 0);
    assert!(lock.acquire_timeout(Duration::ZERO).is_some());
}

#[test]
fn zero_timeouts_on_semaphores_events_conditions_and_barriers_try_once() {
    let semaphore = Semaphore::new(1).unwrap();
    assert!(semaphore.acquire_timeout(Duration::ZERO));
    assert!(!semaphore.acquire_timeout(Duration::ZERO));
    assert_eq!(semaphore.value(), 0);
    let bounded = BoundedSemaphore::new(1).unwrap();
    assert!(bounded.acquire_timeout(Duration::ZERO));
    assert!(!bounded.acquire_timeout(Duration::ZERO));

    let event = Event::new().unwrap();
    assert!(!event.wait_timeout(Duration::ZERO));
    event.set();
    assert!(event.wait_timeout(Duration::ZERO));

    let condition = Condition::with_value(0u8).unwrap();
    let guard = condition.lock();
    let (guard, result) = condition.wait_timeout(guard, Duration::ZERO);
    assert!(result.timed_out());
    assert_eq!(*guard, 0, "the lock is held again after the timeout");
    drop(guard);

    // One party of two waits zero: it times out, which breaks the barrier (as Python's),
    // and a reset mends it.
    let barrier = Barrier::new(2).unwrap();
    assert!(barrier.wait_timeout(Duration::ZERO).is_err());
    assert!(barrier.is_broken());
    barrier.reset().unwrap();
    assert!(!barrier.is_broken());
    // For a single party a zero timeout is enough: nobody needs to come.
    assert_eq!(
        Barrier::new(1)
            .unwrap()
            .wait_timeout(Duration::ZERO)
            .unwrap(),
        0
    );
}

#[test]
fn the_longest_timeouts_wait_for_a_lock_another_process_releases() {
    let locks = new_locks(0u64, 1, 0);
    let (lock, rlock, value, array, condition) = &locks;
    let holding = Event::new().unwrap();
    let child = start(hold_all_then_write, (locks.clone(), holding.clone()));
    assert!(holding.wait_timeout(common::EVENTUALLY));
    assert!(lock.acquire_timeout(Duration::MAX).is_some());
    assert!(rlock.acquire_timeout(Duration::MAX).is_some());
    assert_eq!(*value.lock_timeout(Duration::MAX).unwrap(), 1);
    assert_eq!(array.lock_timeout(Duration::MAX).unwrap()[0], 2);
    assert_eq!(*condition.lock_timeout(Duration::MAX).unwrap(), 3);
    assert_eq!(join(&child), 0);
}

#[test]
fn the_longest_timeouts_wait_for_what_another_process_gives() {
    let semaphore = Semaphore::new(0).unwrap();
    let event = Event::new().unwrap();
    let condition = Condition::with_value(0u8).unwrap();
    let barrier = Barrier::new(2).unwrap();
    let child = start(
        give_one_by_one,
        (
            semaphore.clone(),
            event.clone(),
            condition.clone(),
            barrier.clone(),
        ),
    );
    assert!(semaphore.acquire_timeout(Duration::MAX));
    assert!(event.wait_timeout(Duration::MAX));
    let guard = condition
        .wait_timeout_while(condition.lock(), Duration::MAX, |ready| *ready == 0)
        .0;
    assert_eq!(*guard, 1);
    drop(guard);
    assert!(barrier.wait_timeout(Duration::MAX).is_ok());
    assert_eq!(join(&child), 0);
}
