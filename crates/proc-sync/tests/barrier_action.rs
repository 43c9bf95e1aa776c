//! `Barrier::builder(parties).action(f).timeout(d)`, as Python's `Barrier(parties, action,
//! timeout)`: the action runs in exactly one party each round, before any is released, in
//! whichever process arrives last (forked, spawned or served); an action that panics
//! breaks the barrier for every party; `wait()` uses the default timeout.
//!
//! An action is a `fn()`: what it changes is reached through a static that every party
//! sets from its arguments before it waits (each test has its own).

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{EVENTUALLY, join, start};
use proc_sync::{Barrier, Error, RawValue, Value};

const PARTIES: usize = 3;
const ROUNDS: u32 = 10;

static ROUNDS_RUN: OnceLock<Value<u32>> = OnceLock::new();

fn count_a_round() {
    if let Some(rounds) = ROUNDS_RUN.get() {
        *rounds.lock() += 1;
    }
}

/// Each round, after the barrier released it: the action has run exactly once per round.
fn take_part_and_check_the_action(barrier: Barrier, rounds_run: Value<u32>) {
    let _ = ROUNDS_RUN.set(rounds_run.clone());
    for round in 0..ROUNDS {
        barrier.wait_timeout(EVENTUALLY).unwrap();
        // Run before this party was released, and the next round's not yet: nobody runs
        // it before this party arrives at it.
        assert_eq!(rounds_run.get(), round + 1, "after round {round}");
    }
}

#[test]
fn the_action_runs_once_per_round_before_any_party_is_released() {
    let rounds_run = Value::new(0u32).unwrap();
    let barrier = Barrier::builder(PARTIES as u32)
        .action(count_a_round)
        .build()
        .unwrap();
    let children: Vec<_> = (1..PARTIES)
        .map(|_| {
            start(
                take_part_and_check_the_action,
                (barrier.clone(), rounds_run.clone()),
            )
        })
        .collect();
    take_part_and_check_the_action(barrier.clone(), rounds_run.clone());
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert_eq!(rounds_run.get(), ROUNDS);
}

static RUNNER: OnceLock<RawValue<u32>> = OnceLock::new();

fn record_the_runner() {
    if let Some(runner) = RUNNER.get() {
        runner.set(std::process::id());
    }
}

/// Arrives last (after the parent sleeps in `wait`), so that this process runs the action.
fn arrive_last(barrier: Barrier, runner: RawValue<u32>) {
    let _ = RUNNER.set(runner);
    while barrier.n_waiting() < 1 {
        std::thread::yield_now();
    }
    assert_eq!(barrier.wait_timeout(EVENTUALLY).unwrap(), 1);
}

#[test]
fn the_action_runs_in_the_child_that_arrives_last_whatever_its_start_method() {
    let runner = RawValue::new(0u32).unwrap();
    let _ = RUNNER.set(runner.clone());
    let barrier = Barrier::builder(2)
        .action(record_the_runner)
        .build()
        .unwrap();
    let child = start(arrive_last, (barrier.clone(), runner.clone()));
    assert_eq!(barrier.wait_timeout(EVENTUALLY).unwrap(), 0);
    assert_eq!(join(&child), 0);
    assert_eq!(Some(runner.get()), child.pid());
}

fn explode() {
    panic!("the barrier's action failed (on purpose, in a test)");
}

fn wait_and_find_it_broken(barrier: Barrier) {
    assert!(matches!(
        barrier.wait_timeout(EVENTUALLY),
        Err(Error::BrokenBarrier)
    ));
}

#[test]
fn an_action_that_panics_breaks_the_barrier_for_every_party_until_reset() {
    let barrier = Barrier::builder(PARTIES as u32)
        .action(explode)
        .build()
        .unwrap();
    let children: Vec<_> = (1..PARTIES)
        .map(|_| start(wait_and_find_it_broken, (barrier.clone(),)))
        .collect();
    wait_and_find_it_broken(barrier.clone());
    for child in &children {
        assert_eq!(join(child), 0);
    }
    assert!(barrier.is_broken());
    barrier.reset().unwrap();
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);
}

fn wait_with_the_default_timeout(barrier: Barrier) {
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
}

#[test]
fn wait_without_a_timeout_uses_the_default_and_breaks_the_barrier_when_it_runs_out() {
    let barrier = Barrier::builder(2)
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    // The parent never waits: the child's round cannot complete.
    let child = start(wait_with_the_default_timeout, (barrier.clone(),));
    assert_eq!(join(&child), 0);
    assert!(barrier.is_broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
    barrier.reset().unwrap();
    assert_eq!(barrier.timeout(), Some(Duration::from_millis(50)));
}

fn wait_for_the_partner(barrier: Barrier) {
    assert!(barrier.wait().is_ok());
}

#[test]
fn a_round_that_completes_within_the_default_timeout_does_not_break() {
    let barrier = Barrier::builder(2).timeout(EVENTUALLY).build().unwrap();
    let child = start(wait_for_the_partner, (barrier.clone(),));
    assert!(barrier.wait().is_ok());
    assert_eq!(join(&child), 0);
    assert!(!barrier.is_broken());
}

#[test]
fn a_builder_keeps_the_parties_and_refuses_none() {
    let barrier = Barrier::builder(4).build().unwrap();
    assert_eq!((barrier.parties(), barrier.n_waiting()), (4, 0));
    assert_eq!(barrier.timeout(), None);
    assert!(matches!(
        Barrier::builder(0).action(count_a_round).build(),
        Err(Error::InvalidArgument { .. })
    ));
}

fn die() {
    proc_core::exit(3);
}

/// Arrives last, so that the action, which ends this process, runs here.
fn arrive_last_and_die_in_the_action(barrier: Barrier) {
    while barrier.n_waiting() < 1 {
        std::thread::yield_now();
    }
    let _ = barrier.wait_timeout(EVENTUALLY);
    unreachable!("the action ended the process");
}

#[test]
fn a_party_that_dies_in_the_action_breaks_the_barrier_for_the_others() {
    let barrier = Barrier::builder(2).action(die).build().unwrap();
    let child = start(arrive_last_and_die_in_the_action, (barrier.clone(),));
    assert!(matches!(
        barrier.wait_timeout(EVENTUALLY),
        Err(Error::BrokenBarrier)
    ));
    assert_eq!(join(&child), 3);
    assert!(barrier.is_broken());
    barrier.reset().unwrap();
    assert!(!barrier.is_broken());
}
