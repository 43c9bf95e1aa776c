//! `proc_core::wait` over connections and queues (with processes), as CPython's `TestWait`
//! specifies `multiprocessing.connection.wait`, and the queue's side of it: a queue is
//! ready when a get would not block (an item, or closed), a put from another process ends a
//! wait at once, and no wake-up is ever missed. The children are targets, started by the
//! method in force (`MULTIPROC_START_METHOD`).

mod common;

use std::time::{Duration, Instant};

use common::{NEVER, start};
use proc_core::{Error as CoreError, Waitable, wait};
use proc_ipc::{Connection, Queue, SimpleQueue, pipe, pipe_oneway};
use proc_sync::Event;

/// Waits for `go`, then puts `item`.
fn put_when_told(q: Queue<u32>, go: Event, item: u32) {
    assert!(go.wait_timeout(NEVER), "never told to put");
    q.put(item).unwrap();
}

/// Waits for `go`, then closes `q`.
fn close_when_told(q: Queue<u32>, go: Event) {
    assert!(go.wait_timeout(NEVER), "never told to close");
    q.close();
}

/// Waits for `go`, then puts `len` bytes, more than the ring holds.
fn put_large_when_told(q: Queue<Vec<u8>>, go: Event, len: usize) {
    assert!(go.wait_timeout(NEVER), "never told to put");
    q.put(vec![3; len]).unwrap();
}

fn send_after(end: Connection, ms: u64, value: u32) {
    std::thread::sleep(Duration::from_millis(ms));
    end.send(&value).unwrap();
}

fn put_after(q: Queue<u32>, ms: u64, value: u32) {
    std::thread::sleep(Duration::from_millis(ms));
    q.put(value).unwrap();
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Puts `0..count`, now and then pausing a few microseconds, so that the items arrive at
/// every point of the consumer's wait: before its bridge is up, while it comes up, while it
/// sleeps.
fn put_with_jitter(q: Queue<u32>, count: u32) {
    let mut state = 0x9e37_79b9_u32;
    for i in 0..count {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let spin = state % 64;
        let until = Instant::now() + Duration::from_micros(u64::from(spin));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        q.put(i).unwrap();
    }
}

/// Puts 7, then says so.
fn put_then_signal(q: SimpleQueue<u32>, done: Event) {
    q.put(7).unwrap();
    done.set();
}

#[test]
fn a_put_from_another_process_during_a_wait_ends_it_with_that_index() {
    let q: Queue<u32> = Queue::new(0).unwrap();
    let (idle_end, _peer) = pipe().unwrap();
    let go = Event::new().unwrap();
    let child = start(put_when_told, (q.clone(), go.clone(), 5));
    let waiter = std::thread::spawn({
        let (q, go) = (q.clone(), go.clone());
        move || {
            // Told to put only once this wait has looked at the queue and found it empty:
            // from the other thread, after this one has started, so most often mid-wait.
            go.set();
            wait(&[&idle_end as &dyn Waitable, &q], Some(NEVER)).unwrap()
        }
    });
    assert_eq!(waiter.join().unwrap(), [1]);
    assert_eq!(q.get().unwrap(), 5);
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn an_item_larger_than_the_ring_put_during_a_wait_ends_it_and_comes_out_whole() {
    // The waiting bridge counts as a consumer: the producer streams the item through the
    // ring, which holds only part of it, so the wait must end at its first chunk (a get
    // then takes the rest), or both would wait for each other.
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(64 << 10).build().unwrap();
    let go = Event::new().unwrap();
    let len = 1 << 20;
    let child = start(put_large_when_told, (q.clone(), go.clone(), len));
    let waiter = std::thread::spawn({
        let (q, go) = (q.clone(), go.clone());
        move || {
            go.set();
            wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap()
        }
    });
    assert_eq!(waiter.join().unwrap(), [0]);
    assert_eq!(q.get().unwrap(), vec![3; len]);
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn a_closed_queue_is_ready_and_a_close_elsewhere_ends_a_wait() {
    let q: Queue<u32> = Queue::new(0).unwrap();
    let go = Event::new().unwrap();
    let child = start(close_when_told, (q.clone(), go.clone()));
    assert!(
        wait(&[&q as &dyn Waitable], Some(Duration::ZERO))
            .unwrap()
            .is_empty()
    );
    go.set();
    assert_eq!(wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert!(q.is_closed());
    // And it stays ready: a get returns at once, with Closed.
    assert_eq!(wait(&[&q as &dyn Waitable], None).unwrap(), [0]);
    assert!(matches!(q.get(), Err(proc_ipc::GetError::Closed)));
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn a_wait_over_a_connection_a_process_and_a_queue_sees_each_become_ready() {
    let (ours, theirs) = pipe().unwrap();
    let q: Queue<u32> = Queue::new(0).unwrap();
    let sender = start(send_after, (theirs, 30, 1));
    let sleeper = start(sleep_ms, (60,));
    let putter = start(put_after, (q.clone(), 90, 3));
    let objects: [&dyn Waitable; 3] = [&ours, &sleeper, &q];
    let mut seen = [false; 3];
    let started = Instant::now();
    while seen != [true; 3] {
        assert!(started.elapsed() < NEVER, "only {seen:?} became ready");
        let ready = wait(&objects, Some(NEVER)).unwrap();
        assert!(!ready.is_empty());
        assert!(
            ready.windows(2).all(|w| w[0] < w[1]),
            "not in order: {ready:?}"
        );
        for index in ready {
            match index {
                // Taken, so that it is not ready again.
                0 if !seen[0] => assert_eq!(ours.recv::<u32>().unwrap(), 1),
                // End of file once the sender has ended: ready for good, as Python's.
                0 => assert!(ours.recv::<u32>().unwrap_err().is_eof()),
                2 => assert_eq!(q.get().unwrap(), 3),
                _ => {}
            }
            seen[index] = true;
        }
    }
    for p in [sender, sleeper, putter] {
        assert_eq!(p.join().unwrap(), 0);
    }
}

#[test]
fn a_racing_producer_never_leaves_a_wait_asleep() {
    // Every item ends one wait: an item that comes while the bridge starts, or just after
    // its last look, must still wake it (else the wait lasts until NEVER and the test fails).
    let q: Queue<u32> = Queue::new(0).unwrap();
    let count = 3_000;
    let producer = start(put_with_jitter, (q.clone(), count));
    for i in 0..count {
        let ready = wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap();
        assert_eq!(
            ready,
            [0],
            "item {i}: the wait timed out with the item in the queue"
        );
        assert_eq!(q.get().unwrap(), i);
    }
    assert_eq!(producer.join().unwrap(), 0);
}

#[test]
fn a_connection_holding_a_message_it_has_read_is_ready() {
    let (a, b) = pipe().unwrap();
    a.send(&1u32).unwrap();
    a.send(&2u32).unwrap();
    // Both messages were in the socket: the first recv read them both into b's buffer.
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    assert_eq!(
        wait(&[&b as &dyn Waitable], Some(Duration::ZERO)).unwrap(),
        [0]
    );
    assert_eq!(b.recv::<u32>().unwrap(), 2);
    assert!(
        wait(&[&b as &dyn Waitable], Some(Duration::ZERO))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_connection_whose_peer_is_gone_is_ready() {
    let (a, b) = pipe().unwrap();
    drop(b);
    assert_eq!(wait(&[&a as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert!(a.recv::<u32>().unwrap_err().is_eof());
}

#[test]
fn the_writing_end_of_a_one_way_pipe_cannot_be_waited_for() {
    let (reader, writer) = pipe_oneway().unwrap();
    match wait(&[&reader as &dyn Waitable, &writer], Some(Duration::ZERO)) {
        Err(e @ CoreError::NotWaitable { .. }) => {
            assert!(e.to_string().contains("write-only"), "{e}");
        }
        other => panic!("expected NotWaitable, got {other:?}"),
    }
}

#[test]
fn a_wait_over_a_queue_and_a_connection_with_a_timeout_returns_nothing_after_it() {
    // test_wait_timeout, with a queue among the objects.
    let q: Queue<u32> = Queue::new(0).unwrap();
    let (a, _b) = pipe().unwrap();
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert!(
        wait(&[&a as &dyn Waitable, &q], Some(timeout))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= timeout);
    q.put(1).unwrap();
    assert_eq!(
        wait(&[&a as &dyn Waitable, &q], Some(timeout)).unwrap(),
        [1]
    );
}

#[test]
fn a_simple_queue_is_ready_once_a_child_has_put() {
    let q: SimpleQueue<u32> = SimpleQueue::new().unwrap();
    let done = Event::new().unwrap();
    let child = start(put_then_signal, (q.clone(), done.clone()));
    assert_eq!(wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert!(done.wait_timeout(NEVER));
    assert_eq!(q.get().unwrap(), 7);
    assert_eq!(child.join().unwrap(), 0);
}

#[test]
fn a_queue_listed_twice_is_reported_twice() {
    let q: Queue<u32> = Queue::new(0).unwrap();
    let writer = std::thread::spawn({
        let q = q.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            q.put(1).unwrap();
        }
    });
    assert_eq!(
        wait(&[&q as &dyn Waitable, &q], Some(NEVER)).unwrap(),
        [0, 1]
    );
    writer.join().unwrap();
}

#[test]
fn a_closed_connection_cannot_be_waited_for_and_its_peer_sees_the_end() {
    let (closed, peer) = pipe().unwrap();
    closed.close();
    let err = wait(&[&closed as &dyn Waitable], Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, CoreError::NotWaitable { .. }), "{err:?}");
    // The peer's end is ready: a recv would not block (it gives end of file).
    assert_eq!(
        wait(&[&peer as &dyn Waitable], Some(Duration::ZERO)).unwrap(),
        [0]
    );
}
