//! Barrier across processes.

mod common;

use std::time::Duration;

use common::{EVENTUALLY, join, start};
use proc_sync::{Array, Barrier, Error};

const PARTIES: usize = 3;
const ROUNDS: usize = 30;

/// Party `me` of each of `ROUNDS` rounds: records the index its wait returned.
fn take_part(barrier: Barrier, indices: Array<u32>, me: usize) {
    for round in 0..ROUNDS {
        let index = barrier.wait_timeout(EVENTUALLY).unwrap();
        indices.lock()[round * PARTIES + me] = index as u32;
    }
}

#[test]
fn each_party_of_a_round_gets_a_distinct_index() {
    let barrier = Barrier::new(PARTIES as u32).unwrap();
    let indices = Array::<u32>::new(PARTIES * ROUNDS).unwrap();
    let children: Vec<_> = (1..PARTIES)
        .map(|me| start(take_part, (barrier.clone(), indices.clone(), me)))
        .collect();
    take_part(barrier.clone(), indices.clone(), 0);
    for child in &children {
        assert_eq!(join(child), 0);
    }
    for (round, got) in indices.to_vec().chunks(PARTIES).enumerate() {
        let mut got = got.to_vec();
        got.sort();
        assert_eq!(got, [0, 1, 2], "round {round}");
    }
}

fn wait_and_find_it_broken(barrier: Barrier) {
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
}

fn wait_for_the_partner(barrier: Barrier) {
    assert!(barrier.wait_timeout(EVENTUALLY).is_ok());
}

#[test]
fn a_timed_out_wait_breaks_the_barrier_for_every_waiter() {
    let barrier = Barrier::new(3).unwrap();
    let waiter = start(wait_and_find_it_broken, (barrier.clone(),));
    // Let the child arrive, so that it is among the broken waiters.
    while barrier.n_waiting() < 1 {
        std::thread::yield_now();
    }
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(10)),
        Err(Error::BrokenBarrier)
    ));
    assert_eq!(join(&waiter), 0);
    assert!(barrier.is_broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
}

#[test]
fn abort_breaks_the_barrier_for_processes_already_waiting() {
    let barrier = Barrier::new(2).unwrap();
    let waiter = start(wait_and_find_it_broken, (barrier.clone(),));
    while barrier.n_waiting() < 1 {
        std::thread::yield_now();
    }
    barrier.abort().unwrap();
    assert_eq!(join(&waiter), 0);
}

#[test]
fn reset_mends_a_broken_barrier_and_breaks_a_round_in_progress() {
    let barrier = Barrier::new(2).unwrap();
    barrier.abort().unwrap();
    barrier.reset().unwrap();
    assert!(!barrier.is_broken());

    let waiter = start(wait_and_find_it_broken, (barrier.clone(),));
    while barrier.n_waiting() < 1 {
        std::thread::yield_now();
    }
    barrier.reset().unwrap();
    assert_eq!(join(&waiter), 0);
    assert!(!barrier.is_broken());
    assert_eq!(barrier.n_waiting(), 0);

    let partner = start(wait_for_the_partner, (barrier.clone(),));
    assert!(barrier.wait_timeout(EVENTUALLY).is_ok());
    assert_eq!(join(&partner), 0);
}

#[test]
fn a_barrier_for_zero_parties_is_refused() {
    assert!(matches!(
        Barrier::new(0),
        Err(Error::InvalidArgument { .. })
    ));
}
