//! `SimpleQueue`, as CPython's `_TestSimpleQueue` specifies it (`empty()` seen from a child,
//! `close` twice), with multiproc's global `close` and its travel to children: as an
//! argument, through a queue, through a connection. The children are targets, started by
//! the method in force (`MULTIPROC_START_METHOD`).

mod common;

use common::{NEVER, start, wait_until_asleep_on_a_futex};
use proc_ipc::{Connection, GetError, PutError, Queue, SimpleQueue, pipe};
use proc_sync::Event;

/// `_test_empty`: once told, puts what `is_empty` says, twice.
fn put_emptiness(q: SimpleQueue<bool>, child_can_start: Event, parent_can_continue: Event) {
    assert!(child_can_start.wait_timeout(NEVER));
    q.put(q.is_empty()).unwrap();
    q.put(q.is_empty()).unwrap();
    parent_can_continue.set();
}

/// Takes numbers until the queue is closed and drained, and answers with their sum.
fn sum_until_closed(q: SimpleQueue<u64>, answer: SimpleQueue<u64>) {
    let mut sum = 0;
    loop {
        match q.get() {
            Ok(n) => sum += n,
            Err(GetError::Closed) => break,
            Err(e) => panic!("get: {e}"),
        }
    }
    answer.put(sum).unwrap();
}

/// Closes the queue it was given.
fn close_it(q: SimpleQueue<u64>) {
    q.close();
}

/// Receives a queue through `through`, and puts `n` on it.
fn put_on_received_queue(through: Queue<SimpleQueue<u64>>, n: u64) {
    through.get().unwrap().put(n).unwrap();
}

/// Receives a queue from `end`, takes one number from it and puts it back doubled.
fn double_on_received_queue(end: Connection) {
    let q: SimpleQueue<u64> = end.recv().unwrap();
    let n = q.get().unwrap();
    q.put(n * 2).unwrap();
}

#[test]
fn is_empty_is_true_until_a_child_puts_and_true_again_once_drained() {
    // _TestSimpleQueue.test_empty.
    let q: SimpleQueue<bool> = SimpleQueue::new().unwrap();
    let child_can_start = Event::new().unwrap();
    let parent_can_continue = Event::new().unwrap();
    let child = start(
        put_emptiness,
        (
            q.clone(),
            child_can_start.clone(),
            parent_can_continue.clone(),
        ),
    );
    assert!(q.is_empty());
    child_can_start.set();
    assert!(parent_can_continue.wait_timeout(NEVER));
    assert!(!q.is_empty());
    assert!(q.get().unwrap());
    assert!(!q.get().unwrap());
    assert!(q.is_empty());
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn closing_twice_is_harmless() {
    // _TestSimpleQueue.test_close.
    let q: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    q.close();
    q.close();
    assert!(q.is_closed());
}

#[test]
fn a_close_in_a_child_refuses_puts_here_and_lets_gets_drain_first() {
    let q: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(start(close_it, (q.clone(),)).join().unwrap(), 0);
    assert!(matches!(q.put(3), Err(PutError::Closed(3))));
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert!(matches!(q.get(), Err(GetError::Closed)));
}

#[test]
fn a_consumer_blocked_in_get_takes_every_item_and_stops_at_close() {
    let q: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    let answer: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    let child = start(sum_until_closed, (q.clone(), answer.clone()));
    wait_until_asleep_on_a_futex(&child);
    for n in 1..=100 {
        q.put(n).unwrap();
    }
    q.close();
    assert_eq!(answer.get().unwrap(), 5050);
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn a_simple_queue_sent_through_a_queue_is_the_same_queue() {
    let q: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    let through: Queue<SimpleQueue<u64>> = Queue::new(0).unwrap();
    let child = start(put_on_received_queue, (through.clone(), 42));
    through.put(q.clone()).unwrap();
    assert_eq!(q.get().unwrap(), 42);
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn a_simple_queue_sent_through_a_connection_is_the_same_queue() {
    let q: SimpleQueue<u64> = SimpleQueue::new().unwrap();
    let (ours, theirs) = pipe().unwrap();
    let child = start(double_on_received_queue, (theirs,));
    ours.send(&q).unwrap();
    q.put(21).unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(q.get().unwrap(), 42);
}

#[test]
fn items_of_one_producer_come_out_in_order_and_large_ones_whole() {
    let q: SimpleQueue<Vec<u8>> = SimpleQueue::new().unwrap();
    let large = vec![9u8; 3 << 20]; // larger than the ring: handed over or streamed
    q.put(vec![1]).unwrap();
    q.put(large.clone()).unwrap();
    q.put(vec![2]).unwrap();
    assert_eq!(q.get().unwrap(), [1]);
    assert_eq!(q.get().unwrap(), large);
    assert_eq!(q.get().unwrap(), [2]);
    assert!(q.is_empty());
}
