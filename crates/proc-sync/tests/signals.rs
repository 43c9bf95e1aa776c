//! Waits survive signals: a signal handler interrupting a futex wait (EINTR, no
//! SA_RESTART) must not end the wait early; the waiter goes back to sleep with the same
//! deadline.

use std::os::unix::thread::JoinHandleExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proc_sync::{Barrier, Condition, Event, Semaphore};

extern "C" fn ignore(_: libc::c_int) {}

/// Installs a handler for SIGUSR1 without SA_RESTART, so that blocking calls see EINTR.
fn interrupting_handler() {
    // SAFETY: the handler is an extern "C" fn that does nothing (async-signal-safe); the
    // sigaction struct is fully initialised (zeroed, then the fields we set).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as *const () as usize;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Runs `wait` on a thread, pelts the thread with SIGUSR1 until `done` says it returned
/// (it must not before `release` runs), then runs `release` and joins the thread.
fn interrupted_many_times(wait: impl FnOnce() + Send + 'static, release: impl FnOnce()) {
    interrupting_handler();
    let returned = Arc::new(AtomicBool::new(false));
    let waiter = std::thread::spawn({
        let returned = Arc::clone(&returned);
        move || {
            wait();
            returned.store(true, Ordering::Release);
        }
    });
    let thread = waiter.as_pthread_t();
    for _ in 0..200 {
        // SAFETY: the thread is alive (joined only below); SIGUSR1 has a handler.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_micros(200));
        assert!(
            !returned.load(Ordering::Acquire),
            "the wait ended before it was released"
        );
    }
    release();
    waiter.join().unwrap();
    assert!(returned.load(Ordering::Acquire));
}

#[test]
fn an_event_wait_interrupted_by_signals_keeps_waiting() {
    let event = Event::new().unwrap();
    let waiter = event.clone();
    interrupted_many_times(move || waiter.wait(), || event.set());
}

#[test]
fn a_timed_event_wait_interrupted_by_signals_keeps_its_deadline() {
    let event = Event::new().unwrap();
    let waiter = event.clone();
    interrupted_many_times(
        move || assert!(waiter.wait_timeout(Duration::from_secs(3600))),
        || event.set(),
    );
}

#[test]
fn a_semaphore_acquire_interrupted_by_signals_keeps_waiting() {
    let semaphore = Semaphore::new(0).unwrap();
    let waiter = semaphore.clone();
    interrupted_many_times(
        move || assert!(waiter.acquire_timeout(Duration::from_secs(3600))),
        || semaphore.release().unwrap(),
    );
}

#[test]
fn a_condition_wait_while_interrupted_by_signals_keeps_waiting() {
    let condition = Condition::with_value(0u8).unwrap();
    let waiter = condition.clone();
    interrupted_many_times(
        move || drop(waiter.wait_while(waiter.lock(), |go| *go == 0)),
        || {
            *condition.lock() = 1;
            condition.notify_all();
        },
    );
}

#[test]
fn a_barrier_wait_interrupted_by_signals_keeps_waiting() {
    let barrier = Barrier::new(2).unwrap();
    let waiter = barrier.clone();
    interrupted_many_times(
        move || assert!(waiter.wait_timeout(Duration::from_secs(3600)).is_ok()),
        || assert!(barrier.wait().is_ok()),
    );
}

/// A plain `wait`, with no predicate to loop on: a signal (EINTR) is not a notification, so
/// the wait goes on until the notification comes.
#[test]
fn a_condition_wait_interrupted_by_signals_returns_only_when_notified() {
    // The value says whether the waiter is waiting (so that the notification is not made
    // before there is anyone to notify).
    let condition = Condition::with_value(0u8).unwrap();
    let waiter = condition.clone();
    interrupted_many_times(
        move || {
            let mut guard = waiter.lock();
            *guard = 1;
            drop(waiter.wait(guard));
        },
        || loop {
            let guard = condition.lock();
            if *guard == 1 {
                condition.notify_one();
                return;
            }
            drop(guard);
            std::thread::yield_now();
        },
    );
}
