//! `Condition::with_lock` and `Condition::with_rlock`, as Python's `Condition(lock)`:
//! several conditions over one lock, across processes; a wait releases the lock (an RLock
//! completely) and takes it back as it was.

mod common;

use std::time::Duration;

use common::{EVENTUALLY, join, start};
use proc_sync::{Condition, Lock, RLock, RawArray, RawValue};

const CAPACITY: u32 = 2;
const ITEMS: u32 = 200;

/// A bounded buffer guarded by one lock, with a condition for each way it can block. Its
/// state is raw shared memory that only holders of `lock` touch.
type Buffer = (
    Lock,
    Condition,
    Condition,
    RawArray<u32>,
    RawValue<[u32; 2]>,
);

fn buffer() -> Buffer {
    let lock = Lock::new().unwrap();
    (
        lock.clone(),
        Condition::with_lock(&lock).unwrap(),
        Condition::with_lock(&lock).unwrap(),
        RawArray::new(CAPACITY as usize).unwrap(),
        RawValue::new([0, 0]).unwrap(), // [next to take, count]
    )
}

fn produce(buffer: Buffer) {
    let (lock, not_empty, not_full, slots, state) = buffer;
    for item in 0..ITEMS {
        let guard = not_full.lock();
        assert!(lock.locked());
        let guard = not_full.wait_while(guard, |_| state.get()[1] == CAPACITY);
        let [first, count] = state.get();
        slots
            .set(((first + count) % CAPACITY) as usize, item)
            .unwrap();
        state.set([first, count + 1]);
        not_empty.notify_one();
        drop(guard);
    }
}

#[test]
fn two_conditions_over_one_lock_carry_items_from_a_producer_process_in_order() {
    let buffer = buffer();
    let producer = start(produce, (buffer.clone(),));
    let (lock, not_empty, not_full, slots, state) = buffer;
    for expected in 0..ITEMS {
        // A guard of `not_full` (the same lock) serves to wait on `not_empty`.
        let guard = not_full.lock();
        let (guard, result) =
            not_empty.wait_timeout_while(guard, EVENTUALLY, |_| state.get()[1] == 0);
        assert!(!result.timed_out(), "item {expected} never came");
        let [first, count] = state.get();
        assert_eq!(slots.get(first as usize), Some(expected));
        state.set([(first + 1) % CAPACITY, count - 1]);
        not_full.notify_one();
        drop(guard);
    }
    assert_eq!(join(&producer), 0);
    assert!(!lock.locked());
}

fn take_the_rlock_and_notify(c: Condition, rlock: RLock, done: RawValue<u32>) {
    // Only possible once the parent's wait released every level it held.
    let guard = c
        .lock_timeout(EVENTUALLY)
        .expect("the waiter released the RLock");
    assert!(rlock.locked());
    done.set(1);
    c.notify_all();
    drop(guard);
}

fn cannot_take(rlock: RLock) {
    assert!(rlock.try_acquire().is_none());
}

#[test]
fn a_wait_releases_an_rlock_held_twice_completely_and_takes_both_levels_back() {
    let rlock = RLock::new().unwrap();
    let c = Condition::with_rlock(&rlock).unwrap();
    let done = RawValue::new(0u32).unwrap();
    let outer = rlock.acquire();
    let guard = c.lock();
    let child = start(
        take_the_rlock_and_notify,
        (c.clone(), rlock.clone(), done.clone()),
    );
    let (guard, result) = c.wait_timeout_while(guard, EVENTUALLY, |_| done.get() == 0);
    assert!(!result.timed_out());
    assert_eq!(join(&child), 0);
    drop(guard);
    // `outer` still holds its level: nobody else can take the lock.
    assert!(rlock.locked());
    assert_eq!(join(&start(cannot_take, (rlock.clone(),))), 0);
    drop(outer);
    assert!(!rlock.locked());
}

/// One wait, which only a notification of `c` ends (no more than 128 waiters: no
/// spurious wake-up): by then the flag is set.
fn wait_once_for_the_flag(c: Condition, flag: RawValue<u32>) {
    let guard = c.lock();
    let (_guard, result) = c.wait_timeout(guard, EVENTUALLY);
    assert!(!result.timed_out());
    assert_eq!(
        flag.get(),
        1,
        "woken by a notification of another condition"
    );
}

#[test]
fn a_notification_on_one_condition_does_not_wake_the_waiters_of_another_over_the_same_lock() {
    let lock = Lock::new().unwrap();
    let (first, second) = (
        Condition::with_lock(&lock).unwrap(),
        Condition::with_lock(&lock).unwrap(),
    );
    let flag = RawValue::new(0u32).unwrap();
    let waiter = start(wait_once_for_the_flag, (second.clone(), flag.clone()));
    // Once the child sleeps on `second` (holding no lock), notify `first`, and give a
    // wrongly woken child time to see the flag unset before it is set.
    common::wait_until_asleep_in_futex(&waiter);
    first.notify_all();
    std::thread::sleep(Duration::from_millis(20));
    {
        let _guard = lock.acquire();
        flag.set(1);
        // Notified while the shared lock is held through the lock itself.
        second.notify_all();
    }
    assert_eq!(join(&waiter), 0);
}

#[test]
fn waiting_with_the_guard_of_another_lock_panics_and_releases_that_lock() {
    let own = Condition::new().unwrap();
    let lock = Lock::new().unwrap();
    let over_lock = Condition::with_lock(&lock).unwrap();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(over_lock.wait(own.lock()));
    }));
    assert!(refused.is_err());
    assert!(
        own.try_lock().is_some(),
        "the guard was dropped as it unwound"
    );
    assert!(!lock.locked());
}

#[test]
fn conditions_over_one_lock_made_in_different_ways_share_it_in_this_process() {
    let lock = Lock::new().unwrap();
    let c = Condition::with_lock(&lock).unwrap();
    // The same lock received as a handle (another mapping of its memory) still serves.
    let parcel = proc_core::internal::handle_wire::encode(&c).unwrap();
    let received: Condition =
        proc_core::internal::handle_wire::decode(&parcel.bytes, 1 << 16, parcel.fds).unwrap();
    let guard = received.lock();
    assert!(lock.locked());
    assert!(c.try_lock().is_none());
    let (guard, result) = c.wait_timeout(guard, Duration::from_millis(1));
    assert!(result.timed_out());
    drop(guard);
    assert!(!lock.locked());
}
