//! Semaphore and BoundedSemaphore across processes.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start};
use proc_sync::{BoundedSemaphore, Error, Semaphore};

#[test]
fn a_semaphore_lets_at_most_its_value_of_processes_in_at_once() {
    const LIMIT: u32 = 2;
    let semaphore = Semaphore::new(LIMIT).unwrap();
    // Word 0: how many are inside now; word 1: the most ever inside at once.
    let words = Arc::new(Words::new(2));
    let children: Vec<_> = (0..4)
        .map(|_| {
            let (semaphore, words) = (semaphore.clone(), Arc::clone(&words));
            start(move || {
                for _ in 0..500 {
                    semaphore.acquire();
                    let inside = words.at(0).fetch_add(1, Ordering::AcqRel) + 1;
                    words.at(1).fetch_max(inside, Ordering::AcqRel);
                    std::thread::yield_now();
                    words.at(0).fetch_sub(1, Ordering::AcqRel);
                    semaphore.release().unwrap();
                }
            })
        })
        .collect();
    for child in &children {
        assert_eq!(join(child), 0);
    }
    let most = words.at(1).load(Ordering::Acquire);
    assert!((1..=LIMIT).contains(&most), "{most} were inside at once");
    assert_eq!(semaphore.value(), LIMIT);
}

#[test]
fn a_release_in_one_process_wakes_a_process_blocked_in_acquire() {
    let semaphore = Semaphore::new(0).unwrap();
    let waiter = start({
        let semaphore = semaphore.clone();
        move || semaphore.acquire()
    });
    semaphore.release().unwrap();
    assert_eq!(join(&waiter), 0);
    assert_eq!(semaphore.value(), 0);
}

#[test]
fn every_release_wakes_one_of_several_waiting_processes() {
    let semaphore = Semaphore::new(0).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let semaphore = semaphore.clone();
            start(move || assert!(semaphore.acquire_timeout(EVENTUALLY)))
        })
        .collect();
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

#[test]
fn a_bounded_semaphore_refuses_a_release_above_its_initial_value() {
    let semaphore = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(
        semaphore.release(),
        Err(Error::SemaphoreOverRelease { limit: 2 })
    ));
    assert_eq!(semaphore.value(), 2);
    semaphore.acquire();
    let other = start({
        let semaphore = semaphore.clone();
        move || {
            semaphore.release().unwrap();
            assert!(semaphore.release().is_err());
        }
    });
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
