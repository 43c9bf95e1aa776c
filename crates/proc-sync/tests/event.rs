//! Event across processes.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start};
use proc_sync::Event;

#[test]
fn setting_an_event_wakes_every_waiting_process() {
    let event = Event::new().unwrap();
    let words = Arc::new(Words::new(1));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (event, words) = (event.clone(), Arc::clone(&words));
            start(move || {
                words.at(0).fetch_add(1, Ordering::AcqRel);
                event.wait();
            })
        })
        .collect();
    words.wait_for(0, 3);
    event.set();
    for waiter in &waiters {
        assert_eq!(join(waiter), 0);
    }
}

#[test]
fn a_wait_on_a_clear_event_times_out_and_on_a_set_one_returns_at_once() {
    let event = Event::new().unwrap();
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    event.set();
    assert!(event.is_set());
    assert!(event.wait_timeout(Duration::ZERO));
    event.wait();
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(1)));
}

/// Polls the kernel's record of where `pid` sleeps until it is a futex wait: the waiter
/// has read the event and gone to sleep.
fn wait_until_asleep_in_futex(pid: u32) {
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .unwrap_or_default()
        .contains("futex")
    {
        assert!(start.elapsed() < EVENTUALLY, "the waiter never slept");
        std::thread::yield_now();
    }
}

#[test]
fn a_waiter_woken_by_set_returns_true_even_if_the_event_was_cleared_again() {
    let event = Event::new().unwrap();
    let words = Arc::new(Words::new(1));
    for _ in 0..50 {
        let waiter = start({
            let (event, words) = (event.clone(), Arc::clone(&words));
            move || {
                words.at(0).store(1, Ordering::Release);
                assert!(event.wait_timeout(EVENTUALLY));
            }
        });
        words.wait_for(0, 1);
        wait_until_asleep_in_futex(waiter.pid().unwrap());
        event.set();
        event.clear();
        assert_eq!(join(&waiter), 0);
        words.at(0).store(0, Ordering::Release);
    }
}

#[test]
fn a_set_in_a_child_is_seen_by_the_parent() {
    let event = Event::new().unwrap();
    let child = start({
        let event = event.clone();
        move || event.set()
    });
    assert!(event.wait_timeout(EVENTUALLY));
    assert_eq!(join(&child), 0);
}
