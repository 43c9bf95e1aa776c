//! Semaphore and BoundedSemaphore across processes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start, wait_until_asleep_in_futex};
use proc_sync::{BoundedSemaphore, Error, Semaphore};

/// Word 0: how many are inside now; word 1: the most ever inside at once.
fn pass_through(semaphore: Semaphore, words: Words, times: u32) {
    for _ in 0..times {
        semaphore.acquire();
        let inside = words.at(0).fetch_add(1, Ordering::AcqRel) + 1;
        words.at(1).fetch_max(inside, Ordering::AcqRel);
        std::thread::yield_now();
        words.at(0).fetch_sub(1, Ordering::AcqRel);
        semaphore.release().unwrap();
    }
}

#[test]
fn a_semaphore_lets_at_most_its_value_of_processes_in_at_once() {
    const LIMIT: u32 = 2;
    let semaphore = Semaphore::new(LIMIT).unwrap();
    let words = Words::new(2);
    let children: Vec<_> = (0..4)
        .map(|_| start(pass_through, (semaphore.clone(), words.clone(), 500)))
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    let most = words.at(1).load(Ordering::Acquire);
    assert!((1..=LIMIT).contains(&most), "{most} were inside at once");
    assert_eq!(semaphore.value(), LIMIT);
}

fn acquire(semaphore: Semaphore) {
    semaphore.acquire();
}

#[test]
fn a_release_in_one_process_wakes_a_process_blocked_in_acquire() {
    let semaphore = Semaphore::new(0).unwrap();
    let waiter = start(acquire, (semaphore.clone(),));
    // Blocked in acquire, not merely started.
    wait_until_asleep_in_futex(&waiter);
    semaphore.release().unwrap();
    assert_eq!(join(&waiter), 0);
    assert_eq!(semaphore.value(), 0);
}

fn acquire_eventually(semaphore: Semaphore) {
    assert!(semaphore.acquire_timeout(EVENTUALLY));
}

#[test]
fn every_release_wakes_one_of_several_waiting_processes() {
    let semaphore = Semaphore::new(0).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| start(acquire_eventually, (semaphore.clone(),)))
        .collect();
    for waiter in &waiters {
        wait_until_asleep_in_futex(waiter);
    }
    for _ in 0..3 {
        semaphore.release().unwrap();
    }
    for waiter in &waiters {
        assert_eq!(join(waiter), 0);
    }
    assert_eq!(semaphore.value(), 0);
}

#[test]
fn try_and_timed_acquire_fail_on_a_zero_semaphore_without_changing_it() {
    let semaphore = Semaphore::new(0).unwrap();
    assert!(!semaphore.try_acquire());
    assert!(!semaphore.acquire_timeout(Duration::from_millis(10)));
    assert_eq!(semaphore.value(), 0);
    semaphore.release().unwrap();
    assert!(semaphore.acquire_timeout(Duration::ZERO));
}

fn release_once_then_refused(semaphore: BoundedSemaphore) {
    semaphore.release().unwrap();
    assert!(semaphore.release().is_err());
}

#[test]
fn a_bounded_semaphore_refuses_a_release_above_its_initial_value() {
    let semaphore = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(
        semaphore.release(),
        Err(Error::SemaphoreOverRelease { limit: 2 })
    ));
    assert_eq!(semaphore.value(), 2);
    semaphore.acquire();
    let other = start(release_once_then_refused, (semaphore.clone(),));
    assert_eq!(join(&other), 0);
    assert_eq!(semaphore.value(), 2);
}

#[test]
fn a_semaphore_refuses_to_overflow_its_counter() {
    let semaphore = Semaphore::new(u32::MAX).unwrap();
    assert!(matches!(
        semaphore.release(),
        Err(Error::SemaphoreOverRelease { limit: u32::MAX })
    ));
}
