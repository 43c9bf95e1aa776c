//! Queues and connections travel: passed as arguments of `Process::target` under every
//! start method, or sent through a connection to a process that is already running, they
//! are the same queue and the same end in the receiver.

use std::time::Duration;

use proc_core::{Process, StartMethod};
use proc_ipc::{Connection, Queue, pipe, pipe_oneway};
use proc_sync::Lock;

fn started<F, Args>(method: StartMethod, target: F, args: Args) -> Process
where
    F: proc_core::Target<Args>,
    Args: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args).with_start_method(method);
    p.start().expect("start");
    p
}

fn produce(queue: Queue<(u32, String)>, from: u32, count: u32) {
    for i in from..from + count {
        queue.put((i, format!("item {i}"))).unwrap();
    }
}

#[test]
fn a_queue_passed_to_a_child_is_the_same_queue() {
    for method in StartMethod::ALL {
        let queue: Queue<(u32, String)> = Queue::new(4).unwrap();
        let children = [
            started(method, produce, (queue.clone(), 0, 50)),
            started(method, produce, (queue.clone(), 1000, 50)),
        ];
        let mut got: Vec<u32> = (0..100)
            .map(|_| queue.get_timeout(Duration::from_secs(20)).unwrap().0)
            .collect();
        for p in children {
            assert_eq!(p.join().unwrap(), 0, "{method}");
        }
        got.sort_unstable();
        let want: Vec<u32> = (0..50).chain(1000..1050).collect();
        assert_eq!(got, want, "{method}");
        assert!(queue.is_empty());
    }
}

fn echo_doubled(end: Connection) {
    while let Ok(Some(n)) = end.recv::<Option<u64>>() {
        end.send(&(n * 2)).unwrap();
    }
}

#[test]
fn a_connection_passed_to_a_child_is_the_same_end() {
    for method in StartMethod::ALL {
        let (ours, theirs) = pipe().unwrap();
        let child = started(method, echo_doubled, (theirs,));
        for n in [1u64, 20, 300] {
            ours.send(&Some(n)).unwrap();
            assert_eq!(ours.recv::<u64>().unwrap(), 2 * n, "{method}");
        }
        ours.send(&None::<u64>).unwrap();
        assert_eq!(child.join().unwrap(), 0, "{method}");
    }
}

/// A running child that waits for a queue, a lock and a new connection end to arrive
/// through `inbox`, then uses all three.
fn serve_what_arrives(inbox: Connection) {
    let (queue, lock, reply): (Queue<String>, Lock, Connection) = inbox.recv().unwrap();
    let guard = lock.acquire();
    queue.put("through the queue".to_string()).unwrap();
    reply.send("through the new end").unwrap();
    // Holds the lock until the parent has seen both messages.
    let _: () = reply.recv().unwrap();
    drop(guard);
}

#[test]
fn handles_sent_through_a_connection_reach_a_running_process() {
    for method in StartMethod::ALL {
        let (inbox_writer_end, inbox) = pipe().unwrap();
        let child = started(method, serve_what_arrives, (inbox,));

        let queue: Queue<String> = Queue::new(0).unwrap();
        let lock = Lock::new().unwrap();
        let (reply, theirs) = pipe().unwrap();
        inbox_writer_end
            .send(&(queue.clone(), lock.clone(), theirs))
            .unwrap();

        assert_eq!(
            reply.recv::<String>().unwrap(),
            "through the new end",
            "{method}"
        );
        assert_eq!(
            queue.get_timeout(Duration::from_secs(20)).unwrap(),
            "through the queue"
        );
        assert!(
            lock.try_acquire().is_none(),
            "the child holds the same lock"
        );
        reply.send(&()).unwrap();
        assert_eq!(child.join().unwrap(), 0, "{method}");
        assert!(lock.acquire_timeout(Duration::from_secs(20)).is_some());
    }
}

#[test]
fn a_one_way_end_keeps_its_direction_when_it_travels() {
    let (reader, writer) = pipe_oneway().unwrap();
    let (a, b) = pipe().unwrap();
    a.send(&reader).unwrap();
    let reader: Connection = b.recv().unwrap();
    assert!(reader.is_readable() && !reader.is_writable());
    writer.send(&5u8).unwrap();
    assert_eq!(reader.recv::<u8>().unwrap(), 5);
}

#[test]
fn an_end_with_unread_bytes_refuses_to_travel() {
    let (a, b) = pipe().unwrap();
    let (c, d) = pipe().unwrap();
    // Two messages in one read: the second stays buffered in `d`.
    c.send(&1u8).unwrap();
    c.send(&2u8).unwrap();
    assert_eq!(d.recv::<u8>().unwrap(), 1);
    let err = a.send(&d).unwrap_err();
    assert!(err.to_string().contains("receive them"), "{err}");
    assert_eq!(d.recv::<u8>().unwrap(), 2, "nothing was lost");
    drop(b);
}

#[test]
fn a_message_that_announces_descriptors_it_lacks_is_refused_and_the_next_one_reads() {
    use std::os::fd::AsFd;
    let (a, b) = pipe().unwrap();
    // Header: 1 byte of payload, 3 descriptors announced, none attached.
    let mut frame = (1u64 | (3u64 << 48)).to_le_bytes().to_vec();
    frame.push(7);
    assert_eq!(nix::unistd::write(a.as_fd(), &frame).unwrap(), frame.len());
    let err = b.recv::<u8>().unwrap_err();
    assert!(err.to_string().contains("3 file descriptors"), "{err}");
    a.send(&9u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 9);
}

/// A running child that takes a lock, a value-bearing queue and a connection end out of a
/// queue, then uses them.
fn take_handles_from_a_queue(inbox: Queue<(String, Lock, Queue<u32>, Connection)>) {
    let (label, lock, numbers, reply) = inbox.get().unwrap();
    let _guard = lock.acquire();
    for n in 0..3 {
        numbers.put(n).unwrap();
    }
    reply.send(&label).unwrap();
    // Holds the lock until the parent has checked it.
    let _: () = reply.recv().unwrap();
}

#[test]
fn handles_put_into_a_queue_reach_the_process_that_gets_them() {
    for method in StartMethod::ALL {
        let inbox: Queue<(String, Lock, Queue<u32>, Connection)> = Queue::new(2).unwrap();
        let child = started(method, take_handles_from_a_queue, (inbox.clone(),));
        let lock = Lock::new().unwrap();
        let numbers: Queue<u32> = Queue::new(0).unwrap();
        let (reply, theirs) = pipe().unwrap();
        inbox
            .put((
                "a small item with handles".to_string(),
                lock.clone(),
                numbers.clone(),
                theirs,
            ))
            .unwrap();
        assert_eq!(reply.recv::<String>().unwrap(), "a small item with handles");
        let got: Vec<u32> = (0..3)
            .map(|_| numbers.get_timeout(Duration::from_secs(20)).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2], "{method}");
        assert!(
            lock.try_acquire().is_none(),
            "{method}: the child holds the same lock"
        );
        reply.send(&()).unwrap();
        assert_eq!(child.join().unwrap(), 0, "{method}");
    }
}

#[test]
fn an_item_with_more_handles_than_a_message_carries_is_refused_and_handed_back() {
    let q: Queue<Vec<Lock>> = Queue::new(0).unwrap();
    let locks: Vec<Lock> = (0..300).map(|_| Lock::new().unwrap()).collect();
    match q.put(locks) {
        Err(proc_ipc::PutError::Failed { item, error }) => {
            assert_eq!(item.len(), 300);
            assert!(
                error.to_string().contains("300 file descriptors"),
                "{error}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The queue goes on.
    q.put(vec![Lock::new().unwrap()]).unwrap();
    let back = q.get().unwrap();
    assert_eq!(back.len(), 1);
    drop(back[0].acquire());
}

#[test]
fn items_with_and_without_handles_keep_their_order() {
    let q: Queue<(u32, Option<Lock>)> = Queue::new(0).unwrap();
    for i in 0..20 {
        let lock = (i % 3 == 0).then(|| Lock::new().unwrap());
        q.put((i, lock)).unwrap();
    }
    for i in 0..20 {
        let (n, lock) = q.get().unwrap();
        assert_eq!(n, i);
        assert_eq!(lock.is_some(), i % 3 == 0);
    }
}

/// A message far larger than the socket's buffer is read straight into its payload, in
/// large reads that stop at its last byte: the handle sent right after it, whose descriptor
/// rides on the next message's first byte, still arrives, and works.
#[test]
fn a_handle_sent_right_after_a_large_message_arrives_with_its_descriptor() {
    let (a, b) = pipe().unwrap();
    let (c, d) = pipe().unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sender = std::thread::spawn({
        let big = big.clone();
        move || {
            for _ in 0..3 {
                a.send_bytes(&big).unwrap();
                a.send(&d).unwrap();
            }
        }
    });
    for round in 0..3u8 {
        assert_eq!(b.recv_bytes().unwrap(), big, "round {round}");
        let end: Connection = b.recv().unwrap();
        end.send(&round).unwrap();
        assert_eq!(c.recv::<u8>().unwrap(), round);
    }
    sender.join().unwrap();
}
