//! Fault tests: processes are SIGKILLed at random moments while they hold, take or wait
//! for a primitive, about 200 times per primitive. After each kill the survivors must get
//! on within a generous bound (nothing deadlocks), and where the killed process provably
//! held a lock, the next acquirer must be told (`previous_owner_died`).
//!
//! The victims are targets (`fn`s given the primitive and the watch memory), so they are
//! forked, spawned or served as `MULTIPROC_START_METHOD` says. Each test takes a few
//! seconds even under Spawn, so every method gets the full count of kills.
//!
//! "Inside" words in separate shared memory record, under the lock, whether the holder is
//! between the start and the end of its critical section: a later acquirer that finds the
//! word set knows the holder died inside, and must have been told so.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{EVENTUALLY, Rng, Words, join, kill, start};
use proc_sync::{Array, Barrier, Condition, Event, Lock, RLock, Semaphore, Value};
use serde::{Deserialize, Serialize};

const KILLS: usize = 200;

/// Words of the watch memory.
const INSIDE: usize = 0;
const ROUNDS: usize = 1;

/// Kills `victim` when it has entered its critical section a random number of times
/// (1..=8; exactly once for a victim that stays inside), after a random spin: a random
/// moment in its loop, never a sleep.
fn kill_at_random_moment(rng: &mut Rng, words: &Words, victim: &proc_core::Process, stays: bool) {
    let rounds = if stays { 1 } else { 1 + rng.below(8) as u32 };
    words.wait_for(ROUNDS, rounds);
    rng.spin(20_000);
    kill(victim);
}

/// After a kill: whoever takes the lock next must get it, and if the word says the victim
/// was inside, must have been told that the owner died.
fn check_takeover(previous_owner_died: bool, words: &Words) {
    let inside = words.at(INSIDE).load(Ordering::Acquire) == 1;
    if inside {
        assert!(
            previous_owner_died,
            "the victim died inside the critical section but the next acquirer was not told"
        );
    }
    words.at(INSIDE).store(0, Ordering::Release);
    words.at(ROUNDS).store(0, Ordering::Release);
}

/// The victim's marks of its critical section, in the watch memory: call `enter` right
/// after acquiring and `leave` right before releasing. Travels to the victim with the
/// primitive.
#[derive(Serialize, Deserialize)]
struct Marks(Words);

impl Marks {
    fn enter(&self) {
        self.0.at(INSIDE).store(1, Ordering::Release);
        self.0.at(ROUNDS).fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        self.0.at(INSIDE).store(0, Ordering::Release);
    }
}

/// Waits to be killed, where it stands.
fn stay() -> ! {
    loop {
        std::thread::park();
    }
}

/// `KILLS` rounds of: start a victim process with `victim(stays, marks)`, which loops
/// through a critical section (and, when `stays`, stays inside it after entering); kill it
/// at a random moment; then `take_over(kill_number)` must acquire the primitive, do its own
/// checks, release it, and say whether it was told that the previous owner died. That
/// must be so whenever the victim died inside.
fn kill_holders(
    victim: impl Fn(bool, Marks) -> proc_core::Process,
    mut take_over: impl FnMut(usize) -> bool,
) {
    let mut rng = common::rng();
    let words = Words::new(2);
    for kill_number in 0..KILLS {
        let stays = kill_number % 2 == 0;
        let process = victim(stays, Marks(words.clone()));
        kill_at_random_moment(&mut rng, &words, &process, stays);
        let previous_owner_died = take_over(kill_number);
        if stays {
            assert!(
                previous_owner_died,
                "kill {kill_number}: the holder died holding it"
            );
        }
        check_takeover(previous_owner_died, &words);
    }
}

fn loop_holding_the_lock(lock: Lock, marks: Marks, stays: bool) {
    loop {
        let guard = lock.acquire();
        marks.enter();
        if stays {
            stay();
        }
        marks.leave();
        drop(guard);
    }
}

#[test]
fn a_lock_held_by_a_sigkilled_process_passes_to_the_next_acquirer_with_owner_died() {
    let lock = Lock::new().unwrap();
    kill_holders(
        |stays, marks| start(loop_holding_the_lock, (lock.clone(), marks, stays)),
        |_| {
            lock.acquire_timeout(EVENTUALLY)
                .expect("the lock must pass on after its holder was killed")
                .previous_owner_died()
        },
    );
}

fn loop_holding_the_rlock_twice(lock: RLock, marks: Marks, stays: bool) {
    loop {
        let outer = lock.acquire();
        let inner = lock.acquire();
        marks.enter();
        if stays {
            stay();
        }
        marks.leave();
        drop(inner);
        drop(outer);
    }
}

fn acquire_eventually(lock: RLock) {
    assert!(lock.acquire_timeout(EVENTUALLY).is_some());
}

#[test]
fn an_rlock_held_re_entrantly_by_a_sigkilled_process_passes_on_with_owner_died() {
    let lock = RLock::new().unwrap();
    kill_holders(
        |stays, marks| start(loop_holding_the_rlock_twice, (lock.clone(), marks, stays)),
        |_| {
            let guard = lock
                .acquire_timeout(EVENTUALLY)
                .expect("the RLock must pass on after its holder was killed");
            let died = guard.previous_owner_died();
            // The taken-over RLock is held once: one release frees it for others.
            drop(guard);
            let other = start(acquire_eventually, (lock.clone(),));
            assert_eq!(join(&other), 0);
            died
        },
    );
}

/// Keeps the two halves of `value` equal, one half at a time.
fn loop_updating_both_halves(value: Value<[u64; 2]>, marks: Marks, stays: bool) {
    loop {
        let mut guard = value.lock();
        marks.enter();
        guard[0] += 1;
        if stays {
            stay();
        }
        guard[1] += 1;
        marks.leave();
        drop(guard);
    }
}

#[test]
fn a_value_whose_writer_is_sigkilled_mid_update_is_handed_over_with_owner_died() {
    // Two halves a writer keeps equal; a writer killed between them leaves them unequal.
    let value = Value::new([0u64; 2]).unwrap();
    kill_holders(
        |stays, marks| start(loop_updating_both_halves, (value.clone(), marks, stays)),
        |_| {
            let mut guard = value
                .lock_timeout(EVENTUALLY)
                .expect("the value's lock must pass on after its holder was killed");
            if guard[0] != guard[1] {
                assert!(
                    guard.previous_owner_died(),
                    "torn update without owner-died"
                );
                guard[1] = guard[0]; // repair, as a user would
            }
            guard.previous_owner_died()
        },
    );
}

/// Keeps every element of `array` equal, one element at a time.
fn loop_updating_every_element(array: Array<u32>, marks: Marks, stays: bool) {
    loop {
        let mut guard = array.lock();
        marks.enter();
        for (i, x) in guard.iter_mut().enumerate() {
            *x += 1;
            if stays && i == 7 {
                stay();
            }
        }
        marks.leave();
        drop(guard);
    }
}

#[test]
fn an_array_whose_writer_is_sigkilled_mid_update_is_handed_over_with_owner_died() {
    let array = Array::<u32>::new(16).unwrap();
    kill_holders(
        |stays, marks| start(loop_updating_every_element, (array.clone(), marks, stays)),
        |_| {
            let mut guard = array
                .lock_timeout(EVENTUALLY)
                .expect("the array's lock must pass on after its holder was killed");
            if guard.iter().any(|&x| x != guard[0]) {
                assert!(
                    guard.previous_owner_died(),
                    "torn update without owner-died"
                );
                let first = guard[0];
                guard.fill(first);
            }
            guard.previous_owner_died()
        },
    );
}

fn loop_counting_and_waiting(condition: Condition<u32>, marks: Marks, stays: bool) {
    let mut guard = condition.lock();
    loop {
        marks.enter();
        *guard += 1;
        if stays {
            stay();
        }
        marks.leave();
        condition.notify_all();
        // Killed here, it dies waiting (not holding), or re-acquiring.
        guard = condition.wait_timeout(guard, Duration::from_micros(50)).0;
    }
}

fn wait_for_the_next_count(condition: Condition<u32>) {
    let guard = condition.lock();
    let target = *guard + 1;
    drop(condition.wait_while(guard, |n| *n < target));
}

#[test]
fn a_condition_whose_lock_holder_is_sigkilled_passes_its_lock_on_with_owner_died() {
    let condition = Condition::with_value(0u32).unwrap();
    kill_holders(
        |stays, marks| start(loop_counting_and_waiting, (condition.clone(), marks, stays)),
        |_| {
            let guard = condition
                .lock_timeout(EVENTUALLY)
                .expect("the condition's lock must pass on after its holder was killed");
            let died = guard.previous_owner_died();
            drop(guard);
            // Waiting and notifying still work for the survivors.
            let waiter = start(wait_for_the_next_count, (condition.clone(),));
            // Notify until the waiter is gone (it may not have started waiting yet).
            while waiter
                .join_timeout(Duration::from_millis(1))
                .unwrap()
                .is_none()
            {
                *condition.lock() += 1;
                condition.notify_all();
            }
            assert_eq!(join(&waiter), 0);
            died
        },
    );
}

fn say_then_acquire_and_stay(semaphore: Semaphore, words: Words) {
    words.at(ROUNDS).store(1, Ordering::Release);
    semaphore.acquire();
    stay();
}

fn acquire_then_say(semaphore: Semaphore, got_it: Event) {
    semaphore.acquire();
    got_it.set();
}

#[test]
fn a_semaphore_waiter_sigkilled_at_any_moment_never_strands_the_other_waiter() {
    let mut rng = common::rng();
    for kill_number in 0..KILLS {
        let semaphore = Semaphore::new(0).unwrap();
        let got_it = Event::new().unwrap();
        let words = Words::new(2);
        let victim = start(
            say_then_acquire_and_stay,
            (semaphore.clone(), words.clone()),
        );
        let survivor = start(acquire_then_say, (semaphore.clone(), got_it.clone()));
        words.wait_for(ROUNDS, 1);
        rng.spin(20_000);
        // Release one unit around the kill: the victim may be asleep, woken, or already
        // holding the unit when it dies.
        let release_first = kill_number % 2 == 0;
        if release_first {
            semaphore.release().unwrap();
        }
        kill(&victim);
        if !release_first {
            semaphore.release().unwrap();
        }
        // The unit is either still there (the survivor must get it on its own: no wake-up
        // may have been lost with the victim) or taken by one of them.
        if semaphore.value() == 0 && !got_it.is_set() {
            // Taken by the victim, or by the survivor that has not yet said so.
            if !got_it.wait_timeout(Duration::from_millis(1)) {
                semaphore.release().unwrap();
            }
        }
        assert!(
            got_it.wait_timeout(EVENTUALLY),
            "kill {kill_number}: the surviving waiter was stranded"
        );
        assert_eq!(join(&survivor), 0);
    }
}

const BARRIER_ROUNDS: u32 = 20_000;

/// A few rounds through the barrier's lock, then arrive: the kill lands before, inside, or
/// after the arrival.
fn pass_through_the_barrier_lock_then_arrive(barrier: Barrier, words: Words) {
    for _ in 0..BARRIER_ROUNDS {
        let _ = barrier.n_waiting();
        words.at(ROUNDS).fetch_add(1, Ordering::AcqRel);
    }
    let _ = barrier.wait();
    stay();
}

fn wait_for_the_partner(barrier: Barrier) {
    assert!(barrier.wait_timeout(EVENTUALLY).is_ok());
}

#[test]
fn a_barrier_party_sigkilled_at_any_moment_leaves_the_barrier_usable() {
    let mut rng = common::rng();
    let barrier = Barrier::new(2).unwrap();
    let words = Words::new(2);
    let (mut counted, mut broken, mut not_arrived) = (0, 0, 0);
    for _ in 0..KILLS {
        words.at(ROUNDS).store(0, Ordering::Release);
        let victim = start(
            pass_through_the_barrier_lock_then_arrive,
            (barrier.clone(), words.clone()),
        );
        // A third of the kills come after the last round (around the arrival), the rest
        // at a random round (outside or inside the barrier's lock).
        let round = match rng.below(3) {
            0 => BARRIER_ROUNDS,
            _ => 1 + rng.below(u64::from(BARRIER_ROUNDS)) as u32,
        };
        words.wait_for(ROUNDS, round);
        rng.spin(20_000);
        kill(&victim);
        if barrier.is_broken() {
            // Killed while holding the barrier's lock: the round is broken, reset mends it.
            broken += 1;
            barrier.reset().unwrap();
        } else if barrier.n_waiting() == 1 {
            // Killed after arriving: its arrival counts, so we complete the round.
            counted += 1;
            assert_eq!(barrier.wait_timeout(EVENTUALLY).unwrap(), 1);
            continue;
        } else {
            not_arrived += 1;
        }
        // Either way the barrier works for a fresh pair of parties.
        let partner = start(wait_for_the_partner, (barrier.clone(),));
        assert!(barrier.wait_timeout(EVENTUALLY).is_ok());
        assert_eq!(join(&partner), 0);
    }
    eprintln!("victim counted {counted}, broke it {broken}, not yet arrived {not_arrived}");
}
