//! Condition across processes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start};
use proc_sync::Condition;

/// Says (under the lock) that it is about to wait, then waits until the state is open.
fn wait_until_open(condition: Condition<u32>, words: Words) {
    let guard = condition.lock();
    words.at(0).fetch_add(1, Ordering::AcqRel);
    let guard = condition.wait_while(guard, |open| *open == 0);
    assert_eq!(*guard, 1);
}

#[test]
fn notify_all_wakes_every_process_waiting_for_the_state_to_change() {
    let condition = Condition::with_value(0u32).unwrap();
    let words = Words::new(1);
    let waiters: Vec<_> = (0..3)
        .map(|_| start(wait_until_open, (condition.clone(), words.clone())))
        .collect();
    words.wait_for(0, 3);
    *condition.lock() = 1;
    condition.notify_all();
    for waiter in &waiters {
        assert_eq!(join(waiter), 0);
    }
}

/// Says (under the lock) that it is about to wait, then waits until the count reaches 5.
fn wait_for_five(condition: Condition<u32>, words: Words) {
    let guard = condition.lock();
    words.at(0).store(1, Ordering::Release);
    let guard = condition.wait_while(guard, |n| *n < 5);
    assert!(*guard >= 5, "returned at {}", *guard);
}

#[test]
fn wait_while_rechecks_the_predicate_after_every_wake_up() {
    let condition = Condition::with_value(0u32).unwrap();
    let words = Words::new(1);
    let waiter = start(wait_for_five, (condition.clone(), words.clone()));
    // The waiter said so holding the lock: once we hold it, the waiter is waiting.
    words.wait_for(0, 1);
    // Wake it for every step, including the ones that must not end its wait.
    for _ in 0..5 {
        *condition.lock() += 1;
        condition.notify_all();
    }
    assert_eq!(join(&waiter), 0);
}

/// Says (under the lock) that it is about to wait, then takes one ticket when one is
/// available.
fn take_a_ticket(condition: Condition<u32>, words: Words) {
    let guard = condition.lock();
    words.at(0).fetch_add(1, Ordering::AcqRel);
    let mut guard = condition.wait_while(guard, |tickets| *tickets == 0);
    *guard -= 1;
}

#[test]
fn notify_one_wakes_a_waiter_each_time() {
    let condition = Condition::with_value(0u32).unwrap();
    let words = Words::new(1);
    let waiters: Vec<_> = (0..2)
        .map(|_| start(take_a_ticket, (condition.clone(), words.clone())))
        .collect();
    // Both wait before the first ticket: each ticket needs its own notify_one to be taken.
    words.wait_for(0, 2);
    for _ in 0..2 {
        *condition.lock() += 1;
        condition.notify_one();
    }
    for waiter in &waiters {
        assert_eq!(join(waiter), 0);
    }
    assert_eq!(*condition.lock(), 0);
}

fn cannot_lock(condition: Condition<()>) {
    assert!(condition.try_lock().is_none());
}

#[test]
fn a_timed_wait_with_no_notification_times_out_holding_the_lock() {
    let condition = Condition::new().unwrap();
    let (guard, result) =
        condition.wait_timeout_while(condition.lock(), Duration::from_millis(10), |_| true);
    assert!(result.timed_out());
    assert!(!guard.previous_owner_died());
    // The lock is held: another process cannot take it.
    let other = start(cannot_lock, (condition.clone(),));
    assert_eq!(join(&other), 0);
    drop(guard);
}

fn set_and_notify(condition: Condition<u8>) {
    *condition.lock() = 1;
    condition.notify_all();
}

#[test]
fn a_timed_wait_that_is_notified_does_not_time_out() {
    let condition = Condition::with_value(false as u8).unwrap();
    let notifier = start(set_and_notify, (condition.clone(),));
    let (guard, result) =
        condition.wait_timeout_while(condition.lock(), EVENTUALLY, |set| *set == 0);
    assert!(!result.timed_out());
    assert_eq!(*guard, 1);
    drop(guard);
    assert_eq!(join(&notifier), 0);
}

fn lock_and_forget(condition: Condition<()>) {
    std::mem::forget(condition.lock());
}

#[test]
fn the_condition_lock_holder_dying_is_reported_to_the_next_locker() {
    let condition = Condition::new().unwrap();
    let holder = start(lock_and_forget, (condition.clone(),));
    assert_eq!(join(&holder), 0);
    let guard = condition
        .lock_timeout(EVENTUALLY)
        .expect("freed by the kernel");
    assert!(guard.previous_owner_died());
}
