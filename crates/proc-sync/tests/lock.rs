//! Lock and RLock across processes and threads: mutual exclusion, try and timed forms,
//! ownership, re-entry.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start, wait_until_asleep_in_futex};
use proc_sync::{Error, Event, Lock, RLock, Value};

/// Adds one to `total`, `times` times, under `lock`.
fn increment_under_lock(lock: Lock, total: Value<u64>, times: u64) {
    for _ in 0..times {
        let _guard = lock.acquire();
        // Two separately locked steps: only `lock` makes them one update.
        let seen = total.get();
        total.set(seen + 1);
    }
}

#[test]
fn processes_incrementing_a_lock_protected_value_lose_no_update() {
    const PROCESSES: u64 = 3;
    const EACH: u64 = 5_000;
    let lock = Lock::new().unwrap();
    let total = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| start(increment_under_lock, (lock.clone(), total.clone(), EACH)))
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert_eq!(total.get(), PROCESSES * EACH);
}

fn hold_until_released(lock: Lock, held: Event, release: Event) {
    let _guard = lock.acquire();
    held.set();
    release.wait();
}

#[test]
fn a_lock_held_by_another_process_cannot_be_taken_until_it_is_released() {
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let holder = start(
        hold_until_released,
        (lock.clone(), held.clone(), release.clone()),
    );
    assert!(held.wait_timeout(EVENTUALLY));
    assert!(lock.try_acquire().is_none());
    assert!(lock.acquire_timeout(Duration::from_millis(20)).is_none());
    release.set();
    let guard = lock
        .acquire_timeout(EVENTUALLY)
        .expect("released by the holder");
    assert!(!guard.previous_owner_died());
    drop(guard);
    assert_eq!(join(&holder), 0);
}

fn say_then_acquire(lock: Lock, words: Words) {
    words.at(0).store(1, Ordering::Release);
    let guard = lock.acquire();
    assert!(!guard.previous_owner_died());
}

#[test]
fn a_process_blocked_in_acquire_gets_the_lock_when_it_is_released() {
    let lock = Lock::new().unwrap();
    let words = Words::new(1);
    let guard = lock.acquire();
    let waiter = start(say_then_acquire, (lock.clone(), words.clone()));
    words.wait_for(0, 1);
    // Asleep in acquire, not merely about to call it.
    wait_until_asleep_in_futex(&waiter);
    drop(guard);
    assert_eq!(join(&waiter), 0);
}

#[test]
fn a_lock_acquired_twice_by_one_thread_reports_the_deadlock_instead_of_hanging() {
    let lock = Lock::new().unwrap();
    let guard = lock.acquire();
    assert!(matches!(
        lock.acquire_checked(),
        Err(Error::WouldDeadlock { .. })
    ));
    assert!(lock.try_acquire().is_none());
    assert!(lock.acquire_timeout(Duration::from_millis(1)).is_none());
    drop(guard);
    assert!(lock.try_acquire().is_some());
}

fn release_is_refused(lock: Lock) {
    assert!(matches!(lock.release(), Err(Error::NotOwner { .. })));
}

#[test]
fn only_the_owning_thread_may_release_a_lock() {
    let lock = Lock::new().unwrap();
    lock.acquire().leak();
    let from_thread = std::thread::spawn({
        let lock = lock.clone();
        move || lock.release()
    })
    .join()
    .unwrap();
    assert!(matches!(from_thread, Err(Error::NotOwner { what: "Lock" })));
    let from_process = start(release_is_refused, (lock.clone(),));
    assert_eq!(join(&from_process), 0);
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(Error::NotOwner { .. })));
}

fn cannot_take(lock: RLock) {
    assert!(lock.try_acquire().is_none());
}

fn can_take(lock: RLock) {
    assert!(lock.try_acquire().is_some());
}

#[test]
fn an_rlock_is_re_entrant_for_its_owner_and_released_after_the_last_guard() {
    let lock = RLock::new().unwrap();
    let outer = lock.acquire();
    let inner = lock.try_acquire().expect("the owner re-enters");
    let innermost = lock
        .acquire_timeout(EVENTUALLY)
        .expect("the owner re-enters");
    let other = start(cannot_take, (lock.clone(),));
    assert_eq!(join(&other), 0);
    drop(innermost);
    drop(inner);
    let still_held = start(cannot_take, (lock.clone(),));
    assert_eq!(join(&still_held), 0);
    drop(outer);
    let free = start(can_take, (lock.clone(),));
    assert_eq!(join(&free), 0);
}

#[test]
fn an_rlock_refuses_release_by_a_non_owner_and_when_unheld() {
    let lock = RLock::new().unwrap();
    assert!(matches!(
        lock.release(),
        Err(Error::NotOwner { what: "RLock" })
    ));
    lock.acquire().leak();
    lock.acquire().leak();
    let from_thread = std::thread::spawn({
        let lock = lock.clone();
        move || lock.release()
    })
    .join()
    .unwrap();
    assert!(matches!(from_thread, Err(Error::NotOwner { .. })));
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(Error::NotOwner { .. })));
}

#[test]
fn a_lock_held_by_a_thread_that_ended_passes_on_with_owner_died() {
    let lock = Lock::new().unwrap();
    std::thread::spawn({
        let lock = lock.clone();
        move || lock.acquire().leak()
    })
    .join()
    .unwrap();
    assert!(lock.acquire().previous_owner_died());
    assert!(!lock.acquire().previous_owner_died());
}

fn acquire_and_leak(lock: RLock) {
    lock.acquire().leak();
}

#[test]
fn a_lock_held_by_a_process_that_exited_normally_passes_on_with_owner_died() {
    let lock = RLock::new().unwrap();
    let holder = start(acquire_and_leak, (lock.clone(),));
    assert_eq!(join(&holder), 0);
    let guard = lock
        .acquire_timeout(EVENTUALLY)
        .expect("freed by the kernel");
    assert!(guard.previous_owner_died());
}

#[test]
fn threads_of_one_process_are_excluded_too() {
    let lock = Lock::new().unwrap();
    let total = Value::new(0u32).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (lock, total) = (lock.clone(), total.clone());
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    let _guard = lock.acquire();
                    total.set(total.get() + 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(total.get(), 8_000);
}

#[test]
fn handles_are_send_and_sync_and_clone() {
    fn assert_handle<T: Send + Sync + Clone + 'static>() {}
    assert_handle::<Lock>();
    assert_handle::<RLock>();
    assert_handle::<proc_sync::Semaphore>();
    assert_handle::<proc_sync::BoundedSemaphore>();
    assert_handle::<Event>();
    assert_handle::<proc_sync::Condition<u64>>();
    assert_handle::<proc_sync::Barrier>();
    assert_handle::<Value<[u8; 16]>>();
    assert_handle::<proc_sync::Array<f64>>();
}
