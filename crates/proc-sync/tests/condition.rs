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

// The books of the tests below, kept in the condition's value (so, under its lock).
/// Waiters that have said they are about to wait and have not returned yet.
const WAITING: usize = 0;
/// Notifications the test made, each for one waiter that was waiting and not yet notified.
const NOTIFIED: usize = 1;
/// Waits that returned.
const RETURNED: usize = 2;
/// Returns beyond the notifications made: each is a waiter woken for nothing, or a second
/// waiter woken by one notification.
const EXTRA: usize = 3;
/// Set to end the waiters.
const STOP: usize = 4;

type Books = Condition<[u32; 5]>;

/// Waits, over and over, with a plain `wait` (no predicate: each return must be for a
/// notification), keeping the books.
fn wait_and_count(condition: Books) {
    let mut guard = condition.lock();
    while guard[STOP] == 0 {
        guard[WAITING] += 1;
        guard = condition.wait(guard);
        guard[WAITING] -= 1;
        guard[RETURNED] += 1;
        if guard[RETURNED] > guard[NOTIFIED] {
            guard[EXTRA] += 1;
        }
        // Lets the others in before waiting again.
        drop(guard);
        guard = condition.lock();
    }
}

/// Waiters that are waiting and not yet notified.
fn not_yet_notified(books: &[u32; 5]) -> u32 {
    books[WAITING] - (books[NOTIFIED] - books[RETURNED]).min(books[WAITING])
}

/// Waits until the books say `done`, failing after a while.
fn until(condition: &Books, what: &str, done: impl Fn(&[u32; 5]) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let guard = condition.lock();
        if done(&guard) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never {what}: books {:?}",
            *guard
        );
        drop(guard);
        std::thread::yield_now();
    }
}

/// Ends the waiters of `wait_and_count` and joins them.
fn stop(condition: &Books, waiters: &[proc_core::Process]) {
    let mut guard = condition.lock();
    guard[STOP] = 1;
    guard[NOTIFIED] += not_yet_notified(&guard);
    condition.notify_all();
    drop(guard);
    for waiter in waiters {
        assert_eq!(join(waiter), 0);
    }
}

/// Six waiting processes, and 20,000 notifications of one or two of them, made under the
/// lock or just after it, the moment a waiter is back: waiters are at every step of a wait
/// when the notifications come (about to sleep, asleep, waking, back). Never does a wait
/// return without its notification, and every notified waiter returns. (Before waiters had
/// slots, a notification woke a waiter that was asleep and let one that had not yet gone to
/// sleep return as well: each of six runs saw that within its 20,000 notifications.)
#[test]
fn notify_one_and_notify_n_wake_at_most_that_many_and_every_one_notified_returns() {
    const NOTIFICATIONS: u32 = 20_000;
    let condition: Books = Condition::with_value([0; 5]).unwrap();
    let waiters: Vec<_> = (0..6)
        .map(|_| start(wait_and_count, (condition.clone(),)))
        .collect();
    let mut round = 0u32;
    let start_time = std::time::Instant::now();
    loop {
        let mut guard = condition.lock();
        assert_eq!(
            guard[EXTRA], 0,
            "a wait returned without a notification: {:?}",
            *guard
        );
        if guard[NOTIFIED] >= NOTIFICATIONS {
            break;
        }
        let ready = not_yet_notified(&guard);
        if ready == 0 {
            assert!(
                start_time.elapsed() < Duration::from_secs(20),
                "the waiters stopped coming back: {:?}",
                *guard
            );
            drop(guard);
            std::thread::yield_now();
            continue;
        }
        let n = 1 + round % 2;
        guard[NOTIFIED] += n.min(ready);
        // Notifying after the lock is released is only exact when there are `n` to
        // notify: a waiter that comes in between would be one more to choose from.
        if round.is_multiple_of(3) && ready >= n {
            drop(guard);
            condition.notify(n as usize);
        } else {
            condition.notify(n as usize);
            drop(guard);
        }
        round += 1;
    }
    until(&condition, "did every notified waiter return", |books| {
        books[RETURNED] == books[NOTIFIED]
    });
    let books = *condition.lock();
    assert_eq!(books[EXTRA], 0, "{books:?}");
    stop(&condition, &waiters);
    let books = *condition.lock();
    assert_eq!(
        (books[RETURNED], books[EXTRA]),
        (books[NOTIFIED], 0),
        "{books:?}"
    );
}

/// Waits for one notification, once, keeping the books.
fn wait_once_and_count(condition: Books) {
    let mut guard = condition.lock();
    guard[WAITING] += 1;
    guard = condition.wait(guard);
    guard[WAITING] -= 1;
    guard[RETURNED] += 1;
}

/// Waits with a short timeout, over and over, until killed.
fn wait_briefly_forever(condition: Books) {
    let mut guard = condition.lock();
    loop {
        guard = condition.wait_timeout(guard, Duration::from_micros(200)).0;
    }
}

/// Asserts that `RETURNED` stays at `returned` for a while: a second waiter does not come
/// back on the same notification. (A correct condition never fails this; a wrong one may
/// come back later than this looks, and pass.)
fn stays_at(condition: &Books, returned: u32) {
    std::thread::sleep(Duration::from_millis(30));
    let books = *condition.lock();
    assert_eq!(books[RETURNED], returned, "{books:?}");
}

/// Waiters killed at random moments (asleep, waking, holding the lock, between) leave
/// their places behind: later notifications still go to live waiters, one each.
#[test]
fn waiters_killed_at_random_moments_neither_swallow_notifications_nor_double_them() {
    let mut rng = common::rng();
    let condition: Books = Condition::with_value([0; 5]).unwrap();
    for round in 0..8 {
        let victims: Vec<_> = (0..3)
            .map(|_| start(wait_briefly_forever, (condition.clone(),)))
            .collect();
        for victim in &victims {
            common::wait_until_asleep_in_futex(victim);
            rng.spin(200_000);
            common::kill(victim);
        }
        let waiters: Vec<_> = (0..2)
            .map(|_| start(wait_once_and_count, (condition.clone(),)))
            .collect();
        let returned = 2 * round;
        until(&condition, "did both waiters come", |books| {
            books[WAITING] == 2
        });
        for n in 1..=2 {
            let mut guard = condition.lock();
            guard[NOTIFIED] += 1;
            condition.notify_one();
            drop(guard);
            until(&condition, "did a notified waiter return", |books| {
                books[RETURNED] == returned + n
            });
            stays_at(&condition, returned + n);
        }
        for waiter in &waiters {
            assert_eq!(join(waiter), 0);
        }
    }
}

/// Waits with a timeout that runs out, once, keeping the books; then stays alive (so that
/// nothing it left in the condition is freed by its death) until told to stop.
fn time_out_once(condition: Books) {
    let mut guard = condition.lock();
    guard[WAITING] += 1;
    let (mut guard, result) = condition.wait_timeout(guard, Duration::from_millis(20));
    assert!(result.timed_out());
    guard[WAITING] -= 1;
    guard[RETURNED] += 1;
    while guard[STOP] == 0 {
        drop(guard);
        std::thread::yield_now();
        guard = condition.lock();
    }
}

/// The impatient waiter comes first and times out, and lives on; the patient one comes after
/// it. Were the timed-out wait still counted as waiting, the one notification would go to
/// it, the longest waiting, and the patient waiter would never return.
#[test]
fn a_timed_wait_that_runs_out_spends_no_notification() {
    let condition: Books = Condition::with_value([0; 5]).unwrap();
    let impatient = start(time_out_once, (condition.clone(),));
    until(&condition, "did the impatient one come", |books| {
        books[WAITING] + books[RETURNED] == 1
    });
    let waiter = start(wait_once_and_count, (condition.clone(),));
    until(
        &condition,
        "did the impatient one time out and the waiter come",
        |books| books[RETURNED] == 1 && books[WAITING] == 1,
    );
    // One notification, for the one still waiting (the impatient one lives on).
    let mut guard = condition.lock();
    guard[NOTIFIED] += 1;
    condition.notify_one();
    drop(guard);
    until(&condition, "did the waiter return", |books| {
        books[RETURNED] == 2
    });
    assert_eq!(join(&waiter), 0);
    condition.lock()[STOP] = 1;
    assert_eq!(join(&impatient), 0);
}
