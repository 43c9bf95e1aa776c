//! Wake-ups between processes: a producer and a consumer that take turns on a nearly full
//! or nearly empty queue must never both fall asleep. Each side has its own lock, so one
//! side can make its change (and bump the word the other sleeps on) while the other is
//! between its look at the queue and its sleep; a sleeper that misses that bump waits for
//! a change that will never come, and so does the other side, once it waits for the
//! sleeper. (Found by `cargo xtask torture`: a joinable queue's `join` hung with the items
//! still in the queue and both consumers asleep.)
//!
//! The children are targets, so that they are forked, spawned or served as
//! `MULTIPROC_START_METHOD` says.

use std::time::Duration;

use proc_core::{Process, Target};
use proc_ipc::Queue;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Far more than a correct run needs; reached only when both sides sleep for good.
const HANG: Duration = Duration::from_secs(60);

/// Starts `target` with `args` as a daemon child, by the start method in force.
fn started<F, Args>(target: F, args: Args) -> Process
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args).with_daemon(true);
    p.start().expect("start");
    p
}

fn wchan(p: &Process) -> String {
    let pid = p.pid().unwrap_or(0);
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// Takes `0..items` from `q`, checking the order.
fn get_in_order(q: Queue<u64>, items: u64) {
    for i in 0..items {
        assert_eq!(q.get().unwrap(), i);
    }
}

/// Puts `0..items` on `q`.
fn put_in_order(q: Queue<u64>, items: u64) {
    for i in 0..items {
        q.put(i).unwrap();
    }
}

/// One producer and one consumer move `items` through a queue of `maxsize`, blocking.
fn lockstep(maxsize: usize, items: u64) {
    let q: Queue<u64> = Queue::new(maxsize).unwrap();
    let consumer = started(get_in_order, (q.clone(), items));
    let producer = started(put_in_order, (q.clone(), items));
    let consumed = consumer.join_timeout(HANG).unwrap();
    let produced = producer.join_timeout(HANG).unwrap();
    assert!(
        consumed == Some(0) && produced == Some(0),
        "maxsize {maxsize}: the consumer ({consumed:?}, in {}) and the producer ({produced:?}, \
         in {}) are stuck with {} items in the queue",
        wchan(&consumer),
        wchan(&producer),
        q.len()
    );
}

#[test]
fn a_producer_and_a_consumer_in_lockstep_on_a_queue_of_one_never_both_sleep() {
    lockstep(1, 100_000);
}

#[test]
fn a_producer_and_a_consumer_in_lockstep_on_a_queue_of_two_never_both_sleep() {
    lockstep(2, 100_000);
}

#[test]
fn a_producer_ahead_of_its_consumer_on_an_unbounded_queue_never_strands_an_item() {
    lockstep(0, 100_000);
}
