//! The patterns layer's rows of the README's bad-input table: a joinable queue of
//! `maxsize` 1 and 0, zero and maximal timeouts of `put`, `join` and an `AsyncResult`, and a
//! pool task whose argument or result cannot be encoded.

mod common;

use std::time::{Duration, Instant};

use common::{NEVER, PidFile};
use proc_core::Process;
use proc_ipc::PutError;
use proc_patterns::{Error, JoinableQueue, Pool};
use serde::ser::Error as _;
use serde::{Deserialize, Serialize, Serializer};

#[test]
fn a_joinable_queue_of_one_refuses_a_second_item_and_does_not_count_it() {
    let q = JoinableQueue::<u8>::new(1).unwrap();
    q.put(1).unwrap();
    assert!(matches!(q.try_put(2), Err(PutError::Full(2))));
    assert!(matches!(
        q.put_timeout(3, Duration::ZERO),
        Err(PutError::Full(3))
    ));
    assert_eq!(q.unfinished(), 1, "the refused puts were not counted");
    assert!(!q.join_timeout(Duration::ZERO));
    assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), 1);
    assert!(!q.join_timeout(Duration::ZERO), "taken, not done yet");
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooOften)));
}

#[test]
fn a_joinable_queue_of_maxsize_zero_takes_items_until_its_ring_is_full() {
    let q = JoinableQueue::<u64>::builder()
        .ring_bytes(4096)
        .build()
        .unwrap();
    assert_eq!(q.maxsize(), 0);
    let mut n = 0u64;
    while q.try_put(n).is_ok() {
        n += 1;
    }
    assert!(n > 100, "only {n} items fit");
    assert_eq!(q.unfinished() as u64, n);
    for i in 0..n {
        assert_eq!(q.get().unwrap(), i);
        q.task_done().unwrap();
    }
    assert!(q.join_timeout(Duration::ZERO));
}

/// Takes items until the queue is closed, marking each done a little after taking it.
fn slowly_mark_each_done(q: JoinableQueue<u32>) {
    for _ in q.iter() {
        std::thread::sleep(Duration::from_millis(5));
        q.task_done().unwrap();
    }
}

#[test]
fn join_with_the_longest_timeout_waits_for_a_consumer_in_another_process() {
    let q = JoinableQueue::<u32>::new(2).unwrap();
    let mut consumer = Process::target(slowly_mark_each_done, (q.clone(),));
    consumer.start().unwrap();
    for i in 0..10 {
        q.put_timeout(i, Duration::MAX).unwrap();
    }
    assert!(q.join_timeout(Duration::MAX));
    assert_eq!(q.unfinished(), 0);
    q.close();
    assert_eq!(consumer.join().unwrap(), 0);
}

/// Doubles `x` once the file at `gate` exists (the test creates it when it is ready for the
/// task to finish); panics if it never does.
fn gated_double((x, gate): (u64, String)) -> u64 {
    let start = Instant::now();
    while !std::path::Path::new(&gate).exists() {
        assert!(start.elapsed() < NEVER, "the gate {gate:?} never opened");
        std::thread::sleep(Duration::from_millis(1));
    }
    x * 2
}

#[test]
fn an_async_result_with_a_zero_timeout_is_not_ready_and_with_the_longest_one_is() {
    let gate = PidFile::new("async-result-gate");
    let pool = Pool::new(1).unwrap();
    let pending = pool.apply_async(gated_double, (21, gate.path()));
    // The task cannot finish before the gate opens below.
    assert!(matches!(
        pending.get_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert!(!pending.ready());
    // Opens the gate: creates the file (whole, by renaming it into place).
    PidFile::announce(&gate.path());
    assert_eq!(pending.get_timeout(Duration::MAX).unwrap(), 42);
    assert!(pending.ready());
    // Ready now: a zero timeout gives the value.
    assert_eq!(pending.get_timeout(Duration::ZERO).unwrap(), 42);
}

/// A value that serde cannot encode when it holds 3 (as a type with a failing `Serialize`
/// would, or one the codec refuses).
#[derive(Debug, Deserialize)]
struct Fussy(u32);

impl Serialize for Fussy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(S::Error::custom("three does not travel"));
        }
        serializer.serialize_newtype_struct("Fussy", &self.0)
    }
}

fn unwrap_fussy(x: Fussy) -> u32 {
    x.0 * 10
}

fn make_fussy(x: u32) -> Fussy {
    Fussy(x)
}

#[test]
fn an_argument_that_cannot_be_encoded_fails_its_own_task_and_the_others_run() {
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = pool
        .imap_chunked(unwrap_fussy, (0..6).map(Fussy), 1)
        .collect();
    assert_eq!(results.len(), 6, "one result per input: {results:?}");
    for (x, result) in (0..6).zip(&results) {
        match (x, result) {
            (3, Err(Error::Codec(e))) => assert!(e.to_string().contains("three"), "{e}"),
            (3, other) => panic!("task 3 gave {other:?}"),
            (x, Ok(y)) => assert_eq!(*y, x * 10),
            (x, Err(e)) => panic!("task {x} failed: {e}"),
        }
    }
    assert_eq!(pool.map(unwrap_fussy, [Fussy(1)]).unwrap(), [10]);
}

#[test]
fn a_result_that_cannot_be_encoded_fails_its_chunk_and_the_pool_goes_on() {
    let pool = Pool::new(2).unwrap();
    let results: Vec<_> = pool.imap_chunked(make_fussy, 0..6, 1).collect();
    assert_eq!(results.len(), 6, "one result per input: {results:?}");
    for (x, result) in (0..6u32).zip(&results) {
        match (x, result) {
            (3, Err(Error::Codec(e))) => assert!(e.to_string().contains("three"), "{e}"),
            (3, other) => panic!("task 3 gave {other:?}"),
            (x, Ok(y)) => assert_eq!(y.0, x),
            (x, Err(e)) => panic!("task {x} failed: {e}"),
        }
    }
    assert_eq!(pool.map(make_fussy, [4]).unwrap()[0].0, 4);
}
