//! More waiters on one condition than it has slots for (128): the ones beyond wake at every
//! notification, as from a spurious wake-up, and all are served in the end. In its own test
//! binary: its 140 threads would make every fork of the other condition tests a fork of a
//! many-threaded process.

use proc_sync::Condition;

/// Takes one ticket when one is there, waiting for it (many at once: some beyond the
/// condition's slots, which wake spuriously).
fn take_one_ticket(condition: &Condition<[u32; 3]>) {
    let mut guard = condition.lock();
    guard[0] += 1;
    let mut guard = condition.wait_while(guard, |books| books[1] == 0);
    guard[1] -= 1;
    guard[2] += 1;
}

#[test]
fn more_waiters_than_slots_are_all_notified_in_the_end() {
    const THREADS: u32 = 140;
    // [waiting, tickets, taken]
    let condition = Condition::with_value([0u32; 3]).unwrap();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| take_one_ticket(&condition));
        }
        while condition.lock()[0] < THREADS {
            std::thread::yield_now();
        }
        for _ in 0..THREADS {
            let mut guard = condition.lock();
            guard[1] += 1;
            condition.notify_one();
        }
    });
    assert_eq!(*condition.lock(), [THREADS, 0, THREADS]);
}
