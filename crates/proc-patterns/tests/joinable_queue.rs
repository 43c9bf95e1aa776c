//! JoinableQueue: the Queue API plus task_done / join across processes. The children are
//! targets, forked, spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::time::Duration;

use common::{NEVER, start, wait_until_asleep_in_futex};
use proc_core::Process;
use proc_patterns::{Error, JoinableQueue};
use proc_sync::{Event, Value};

/// Counts each item as processed, then marks it done, until the queue is closed.
fn count_then_mark_done(q: JoinableQueue<u32>, processed: Value<u32>) {
    for _ in q.iter() {
        *processed.lock() += 1;
        q.task_done().unwrap();
    }
}

#[test]
fn join_returns_once_consumers_in_other_processes_have_marked_every_item_done() {
    let q = JoinableQueue::<u32>::new(0).unwrap();
    let processed = Value::new(0u32).unwrap();
    let consumers: Vec<Process> = (0..2)
        .map(|_| start(count_then_mark_done, (q.clone(), processed.clone())))
        .collect();
    for i in 0..200 {
        q.put(i).unwrap();
    }
    q.join();
    // Every task_done came after its item was counted as processed.
    assert_eq!(processed.get(), 200);
    assert_eq!(q.unfinished(), 0);
    q.close();
    for c in consumers {
        assert_eq!(c.join().unwrap(), 0);
    }
}

fn join_then_say_so(q: JoinableQueue<u8>, joined: Event) {
    q.join();
    joined.set();
}

#[test]
fn join_in_a_child_waits_for_the_parents_task_done() {
    let q = JoinableQueue::<u8>::new(0).unwrap();
    q.put(1).unwrap();
    let joined = Event::new().unwrap();
    let joiner = start(join_then_say_so, (q.clone(), joined.clone()));
    // Asleep in join, not merely started.
    wait_until_asleep_in_futex(&joiner);
    q.get().unwrap();
    // The item is still unfinished, so the child cannot have got past join().
    assert!(!joined.is_set());
    q.task_done().unwrap();
    assert!(joined.wait_timeout(NEVER));
    assert_eq!(joiner.join().unwrap(), 0);
}

#[test]
fn task_done_called_more_times_than_items_were_put_is_an_error() {
    let q = JoinableQueue::<u8>::new(0).unwrap();
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooOften)));
    q.put(1).unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooOften)));
    assert_eq!(q.unfinished(), 0);
}

#[test]
fn a_put_that_fails_is_not_counted() {
    let q = JoinableQueue::<u8>::new(1).unwrap();
    q.put(1).unwrap();
    assert!(q.try_put(2).is_err()); // full
    assert!(q.put_timeout(3, Duration::ZERO).is_err()); // still full
    q.close();
    assert!(q.put(4).is_err()); // closed
    assert_eq!(q.unfinished(), 1);
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

#[test]
fn join_timeout_is_false_while_an_item_is_unfinished_and_true_once_it_is_done() {
    let q = JoinableQueue::<String>::new(0).unwrap();
    assert!(q.join_timeout(Duration::ZERO));
    q.put("work".to_string()).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(1)));
    assert_eq!(q.get().unwrap(), "work");
    assert!(!q.join_timeout(Duration::from_millis(1)));
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

#[test]
fn every_waiting_joiner_wakes_when_the_last_item_is_done() {
    let q = JoinableQueue::<u8>::new(0).unwrap();
    q.put(1).unwrap();
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || q.join())
        })
        .collect();
    q.get().unwrap();
    q.task_done().unwrap();
    for j in joiners {
        j.join().unwrap();
    }
}

fn take_one_and_keep_it(q: JoinableQueue<u32>, taken: Event) {
    let _item = q.get().unwrap();
    taken.set();
    // Killed here, before task_done.
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn a_consumer_killed_between_get_and_task_done_leaves_join_timeout_false_and_one_unfinished() {
    let q = JoinableQueue::<u32>::new(0).unwrap();
    let taken = Event::new().unwrap();
    let consumer = start(take_one_and_keep_it, (q.clone(), taken.clone()));
    q.put(7).unwrap();
    q.put(8).unwrap();
    assert!(taken.wait_timeout(NEVER));
    consumer.kill().unwrap();
    assert_eq!(consumer.join().unwrap(), -9);
    // The other item is still there for a live consumer.
    assert_eq!(q.get().unwrap(), 8);
    q.task_done().unwrap();
    assert!(!q.join_timeout(Duration::from_millis(20)));
    assert_eq!(q.unfinished(), 1);
    assert!(q.is_empty());
}

#[test]
fn the_queue_api_is_the_queues() {
    let q = JoinableQueue::<u8>::builder()
        .maxsize(2)
        .ring_bytes(4096)
        .item_limit(1024)
        .build()
        .unwrap();
    assert_eq!(q.maxsize(), 2);
    assert!(q.is_empty());
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.is_full());
    assert_eq!(q.len(), 2);
    assert!(matches!(q.try_put(3), Err(proc_ipc::PutError::Full(3))));
    assert_eq!(q.try_get().unwrap(), 1);
    assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), 2);
    assert!(matches!(q.try_get(), Err(proc_ipc::GetError::Empty)));
    q.close();
    assert!(q.is_closed());
    assert!(matches!(q.get(), Err(proc_ipc::GetError::Closed)));
    assert_eq!(q.iter().count(), 0);
    assert_eq!(q.unfinished(), 2);
}

/// Once told, puts `item`.
fn put_when_told(q: JoinableQueue<u32>, go: Event, item: u32) {
    assert!(go.wait_timeout(NEVER), "never told to put");
    q.put(item).unwrap();
}

#[test]
fn a_wait_ends_when_another_process_puts_and_counts_no_unfinished_item_as_ready() {
    use proc_core::{Waitable, wait};

    let q = JoinableQueue::<u32>::new(0).unwrap();
    let go = Event::new().unwrap();
    let child = start(put_when_told, (q.clone(), go.clone(), 9));
    assert!(
        wait(&[&q as &dyn Waitable], Some(Duration::ZERO))
            .unwrap()
            .is_empty()
    );
    go.set();
    assert_eq!(wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert_eq!(q.get().unwrap(), 9);
    // Taken but not yet done: nothing to get, so not ready.
    assert_eq!(q.unfinished(), 1);
    assert!(
        wait(&[&q as &dyn Waitable], Some(Duration::from_millis(10)))
            .unwrap()
            .is_empty()
    );
    q.task_done().unwrap();
    q.close();
    assert_eq!(wait(&[&q as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert_eq!(child.join().unwrap(), 0);
}
