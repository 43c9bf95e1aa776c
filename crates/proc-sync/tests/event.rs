//! Event across processes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Words, join, start, wait_until_asleep_in_futex};
use proc_sync::Event;

fn count_then_wait(event: Event, words: Words) {
    words.at(0).fetch_add(1, Ordering::AcqRel);
    event.wait();
}

#[test]
fn setting_an_event_wakes_every_waiting_process() {
    let event = Event::new().unwrap();
    let words = Words::new(1);
    let waiters: Vec<_> = (0..3)
        .map(|_| start(count_then_wait, (event.clone(), words.clone())))
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

fn say_then_wait_for_the_set(event: Event, words: Words) {
    words.at(0).store(1, Ordering::Release);
    assert!(event.wait_timeout(EVENTUALLY));
}

#[test]
fn a_waiter_woken_by_set_returns_true_even_if_the_event_was_cleared_again() {
    let event = Event::new().unwrap();
    let words = Words::new(1);
    for _ in 0..50 {
        let waiter = start(say_then_wait_for_the_set, (event.clone(), words.clone()));
        words.wait_for(0, 1);
        // The waiter has read the event and gone to sleep.
        wait_until_asleep_in_futex(&waiter);
        event.set();
        event.clear();
        assert_eq!(join(&waiter), 0);
        words.at(0).store(0, Ordering::Release);
    }
}

fn set(event: Event) {
    event.set();
}

#[test]
fn a_set_in_a_child_is_seen_by_the_parent() {
    let event = Event::new().unwrap();
    let child = start(set, (event.clone(),));
    assert!(event.wait_timeout(EVENTUALLY));
    assert_eq!(join(&child), 0);
}
