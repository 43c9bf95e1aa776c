//! `Lock::locked` and `RLock::locked` (Python 3.14): true while anyone, in this process or
//! another, holds the lock; false once it is released or its holder died.

mod common;

use common::{EVENTUALLY, join, start};
use proc_sync::{Event, Lock, RLock};

fn hold_lock_until_released(lock: Lock, held: Event, release: Event) {
    let _guard = lock.acquire();
    held.set();
    release.wait();
}

fn hold_rlock_twice_until_released(lock: RLock, held: Event, release: Event) {
    let _outer = lock.acquire();
    let _inner = lock.acquire();
    held.set();
    release.wait();
}

fn sees_lock_locked(lock: Lock, expected: bool) {
    assert_eq!(lock.locked(), expected);
}

fn sees_rlock_locked(lock: RLock, expected: bool) {
    assert_eq!(lock.locked(), expected);
}

fn leak_lock(lock: Lock) {
    lock.acquire().leak();
}

fn leak_rlock(lock: RLock) {
    lock.acquire().leak();
    lock.acquire().leak();
}

#[test]
fn a_lock_is_locked_exactly_while_this_thread_holds_it() {
    let lock = Lock::new().unwrap();
    assert!(!lock.locked());
    let guard = lock.acquire();
    assert!(lock.locked());
    drop(guard);
    assert!(!lock.locked());
    lock.acquire().leak();
    assert!(lock.locked());
    lock.release().unwrap();
    assert!(!lock.locked());
}

#[test]
fn a_lock_held_here_is_seen_locked_by_a_child_and_free_once_released() {
    let lock = Lock::new().unwrap();
    let guard = lock.acquire();
    assert_eq!(join(&start(sees_lock_locked, (lock.clone(), true))), 0);
    drop(guard);
    assert_eq!(join(&start(sees_lock_locked, (lock.clone(), false))), 0);
}

#[test]
fn a_lock_held_by_another_process_is_locked_here_until_it_releases_it() {
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let holder = start(
        hold_lock_until_released,
        (lock.clone(), held.clone(), release.clone()),
    );
    assert!(held.wait_timeout(EVENTUALLY));
    assert!(lock.locked());
    release.set();
    assert_eq!(join(&holder), 0);
    assert!(!lock.locked());
}

#[test]
fn an_rlock_stays_locked_until_its_last_re_entry_is_released() {
    let lock = RLock::new().unwrap();
    assert!(!lock.locked());
    let outer = lock.acquire();
    let inner = lock.acquire();
    assert!(lock.locked());
    drop(inner);
    assert!(lock.locked(), "one re-entry is still held");
    assert_eq!(join(&start(sees_rlock_locked, (lock.clone(), true))), 0);
    drop(outer);
    assert!(!lock.locked());
    assert_eq!(join(&start(sees_rlock_locked, (lock.clone(), false))), 0);
}

#[test]
fn an_rlock_held_by_another_process_is_locked_here_until_it_releases_it() {
    let lock = RLock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let holder = start(
        hold_rlock_twice_until_released,
        (lock.clone(), held.clone(), release.clone()),
    );
    assert!(held.wait_timeout(EVENTUALLY));
    assert!(lock.locked());
    release.set();
    assert_eq!(join(&holder), 0);
    assert!(!lock.locked());
}

#[test]
fn a_lock_whose_holder_process_ended_holding_it_is_not_locked() {
    let lock = Lock::new().unwrap();
    assert_eq!(join(&start(leak_lock, (lock.clone(),))), 0);
    assert!(!lock.locked());
    let guard = lock
        .acquire_timeout(EVENTUALLY)
        .expect("freed by the kernel");
    assert!(guard.previous_owner_died());
    assert!(lock.locked());
}

#[test]
fn an_rlock_whose_holder_process_ended_holding_it_twice_is_not_locked() {
    let lock = RLock::new().unwrap();
    assert_eq!(join(&start(leak_rlock, (lock.clone(),))), 0);
    assert!(!lock.locked());
    let guard = lock
        .acquire_timeout(EVENTUALLY)
        .expect("freed by the kernel");
    assert!(guard.previous_owner_died());
    drop(guard);
    assert!(
        !lock.locked(),
        "the dead holder's re-entries are not inherited"
    );
}
