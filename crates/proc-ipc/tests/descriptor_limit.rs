//! A process at its limit of open descriptors (`RLIMIT_NOFILE`) that receives an item or a
//! message holding handles: nothing acknowledged is lost, nothing is left open, and the
//! queue or connection goes on.
//!
//! Each receiver is a child process (the limit is a whole process's), started from a
//! target by the start method in force; it checks what it gets and ends with 0.

mod common;

use std::time::Duration;

use common::{NEVER, exhaust_descriptors, open_fds, start};
use proc_ipc::{Connection, Error, GetError, Queue, pipe};
use proc_sync::Event;

type Item = (u32, Event, Event);

/// The error a get at the limit must give: the item stays in the queue.
fn assert_kept(got: Result<Item, GetError>) {
    match got {
        Err(GetError::Failed(Error::DescriptorsExhausted {
            carried: 3,
            item_kept: true,
            ..
        })) => {}
        other => panic!("expected descriptor exhaustion with the item kept, got {other:?}"),
    }
}

/// Gets at the limit fail and leave the item; with room again, this process gets it whole.
fn gets_once_it_has_room(queue: Queue<Item>) {
    let mut copies = exhaust_descriptors();
    // One free slot: the item needs three (its memory file and two events), so one of them
    // is opened before the process runs out, and must be closed again.
    copies.pop();
    let before = open_fds();
    for _ in 0..3 {
        assert_kept(queue.get_timeout(NEVER));
        assert_eq!(open_fds(), before, "a descriptor of the item stayed open");
    }
    assert_kept(queue.try_get());
    copies.truncate(copies.len() - 2);
    let (n, first, second) = queue
        .get_timeout(NEVER)
        .expect("the item, once there is room");
    assert_eq!(n, 1);
    first.set();
    second.set();
}

/// Gets at the limit fail; this process gives up and leaves the item to another.
fn gives_up(queue: Queue<Item>) {
    let _copies = exhaust_descriptors();
    assert_kept(queue.get_timeout(NEVER));
}

fn item(n: u32) -> (Item, Event, Event) {
    let (first, second) = (Event::new().unwrap(), Event::new().unwrap());
    ((n, first.clone(), second.clone()), first, second)
}

#[test]
fn a_consumer_out_of_descriptors_leaves_the_item_and_gets_it_once_it_has_room() {
    let queue: Queue<Item> = Queue::new(0).unwrap();
    let (one, first, second) = item(1);
    queue.put(one).unwrap();
    let (two, ..) = item(2);
    queue.put(two).unwrap();
    let child = start(gets_once_it_has_room, (queue.clone(),));
    assert_eq!(child.join().unwrap(), 0);
    assert!(
        first.is_set() && second.is_set(),
        "the child got the same events"
    );
    // The item after it is untouched.
    assert_eq!(queue.get_timeout(NEVER).unwrap().0, 2);
    assert!(queue.is_empty());
}

#[test]
fn an_item_a_consumer_out_of_descriptors_could_not_take_goes_to_another_whole() {
    let queue: Queue<Item> = Queue::new(0).unwrap();
    let (one, first, second) = item(1);
    queue.put(one).unwrap();
    let child = start(gives_up, (queue.clone(),));
    assert_eq!(child.join().unwrap(), 0);
    let (n, a, b) = queue.get_timeout(NEVER).unwrap();
    assert_eq!(n, 1);
    a.set();
    b.set();
    assert!(first.is_set() && second.is_set(), "the same events, whole");
}

/// Receives, at the limit: the message before, the one with handles (an error, its
/// descriptors closed), then the ones after it, intact and in order.
fn receives_around_a_message_it_cannot_take(end: Connection) {
    let mut copies = exhaust_descriptors();
    copies.pop();
    let before = open_fds();
    assert_eq!(end.recv::<String>().unwrap(), "before");
    match end.recv::<(Event, Event)>() {
        Err(Error::DescriptorsExhausted {
            carried: 2,
            received: 1,
            item_kept: false,
        }) => {}
        other => panic!("expected descriptor exhaustion, got {other:?}"),
    }
    assert_eq!(
        open_fds(),
        before,
        "a descriptor of the message stayed open"
    );
    // Larger than one read of the connection's buffer, so that a receiver out of step would
    // take part of it for a header.
    let large = end.recv_bytes().unwrap();
    assert_eq!(large.len(), 300_000);
    assert!(large.iter().enumerate().all(|(i, &b)| b == i as u8));
    assert_eq!(end.recv::<String>().unwrap(), "after");
    // With room again, handles arrive.
    drop(copies);
    let (event,): (Event,) = end.recv().unwrap();
    event.set();
    end.send(&"done").unwrap();
}

#[test]
fn a_connection_out_of_descriptors_fails_that_message_only_and_stays_in_step() {
    let (ours, theirs) = pipe().unwrap();
    let child = start(receives_around_a_message_it_cannot_take, (theirs,));
    let (lost_a, lost_b) = (Event::new().unwrap(), Event::new().unwrap());
    let later = Event::new().unwrap();
    ours.send("before").unwrap();
    ours.send(&(lost_a, lost_b)).unwrap();
    let large: Vec<u8> = (0..300_000).map(|i| i as u8).collect();
    ours.send_bytes(&large).unwrap();
    ours.send("after").unwrap();
    ours.send(&(later.clone(),)).unwrap();
    assert!(ours.poll(Some(NEVER)).unwrap());
    assert_eq!(ours.recv::<String>().unwrap(), "done");
    assert_eq!(child.join().unwrap(), 0);
    assert!(later.wait_timeout(Duration::ZERO));
}
