//! Executor's futures as `std::future::Future`s, driven by a hand-written executor loop (no
//! runtime): the pool's result path wakes them, nothing polls in a loop; and
//! `as_completed`, which yields futures in the order they finish. The workers are forked,
//! spawned or served as `MULTIPROC_START_METHOD` says.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use common::{NEVER, PidFile};
use proc_patterns::{Error, Executor, as_completed};

fn square(x: u64) -> u64 {
    x * x
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Waits until the test opens `gate` (writes the file), then returns `tag`.
fn wait_for_gate((gate, tag): (String, u64)) -> u64 {
    // Bounded, so that a failing test ends instead of waiting in the executor's drop.
    let start = std::time::Instant::now();
    while std::fs::metadata(&gate).is_err() && start.elapsed() < NEVER {
        std::thread::sleep(Duration::from_millis(1));
    }
    tag
}

fn open(gate: &PidFile) {
    std::fs::write(gate.path(), "open").unwrap();
}

/// A waker that unparks the thread of the loop and counts its wakes.
struct Unpark {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// The smallest executor loop: polls `future` once per wake, parks in between. Returns its
/// output and the number of polls it took.
fn block_on<F: Future>(future: F) -> (F::Output, usize) {
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    let start = std::time::Instant::now();
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        // Parked until woken (a spurious return only costs one more poll).
        std::thread::park_timeout(NEVER);
        assert!(start.elapsed() < NEVER, "never woken");
    }
}

#[test]
fn a_future_polled_by_a_hand_written_loop_is_woken_by_the_result_not_polled_in_a_loop() {
    let ex = Executor::new(1).unwrap();
    let future = ex.submit(nap, 200).unwrap();
    let (value, polls) = block_on(future);
    assert_eq!(value.unwrap(), 200);
    // One poll that found it pending, one after the wake (a spurious unpark may add one).
    assert!(polls <= 4, "polled {polls} times for one result");
}

#[test]
fn an_async_block_awaits_several_futures_and_their_errors() {
    fn check(x: i64) -> i64 {
        assert!(x >= 0, "negative");
        x
    }
    let ex = Executor::new(2).unwrap();
    let (sum, _) = block_on(async {
        let mut sum = 0;
        for x in 1..=5 {
            sum += ex.submit(square, x).unwrap().await.unwrap();
        }
        let failed = ex.submit(check, -1).unwrap().await;
        assert!(matches!(failed, Err(Error::TaskPanicked { .. })));
        sum
    });
    assert_eq!(sum, 1 + 4 + 9 + 16 + 25);
}

#[test]
fn a_future_already_done_is_ready_at_the_first_poll() {
    let ex = Executor::new(1).unwrap();
    let future = ex.submit(square, 9).unwrap();
    future.result().unwrap();
    let (value, polls) = block_on(future);
    assert_eq!(value.unwrap(), 81);
    assert_eq!(polls, 1);
}

#[test]
fn a_cancelled_future_is_ready_with_cancelled() {
    let gate = PidFile::new("exec-fut-cancel-gate");
    let ex = Executor::new(1).unwrap();
    let busy = ex.submit(wait_for_gate, (gate.path(), 1)).unwrap();
    let queued = ex.submit(square, 2).unwrap();
    assert!(queued.cancel());
    let (value, _) = block_on(queued);
    assert!(matches!(value, Err(Error::Cancelled)));
    open(&gate);
    assert_eq!(busy.result().unwrap(), 1);
}

#[test]
fn as_completed_yields_the_futures_in_the_order_they_finish() {
    let gates: Vec<PidFile> = (0..3).map(|_| PidFile::new("exec-as-completed")).collect();
    let ex = Executor::new(3).unwrap();
    let futures: Vec<_> = gates
        .iter()
        .zip(0..)
        .map(|(gate, tag)| ex.submit(wait_for_gate, (gate.path(), tag)).unwrap())
        .collect();
    let mut completed = as_completed(futures);
    assert_eq!(completed.size_hint(), (3, Some(3)));
    for tag in [2, 0, 1] {
        open(&gates[tag as usize]);
        let next = completed.next().unwrap();
        assert!(next.done());
        assert_eq!(next.result().unwrap(), tag);
    }
    assert!(completed.next().is_none());
}

#[test]
fn as_completed_yields_the_futures_already_done_or_cancelled_first() {
    let gate = PidFile::new("exec-as-completed-done");
    let ex = Executor::new(1).unwrap();
    let done = ex.submit(square, 3).unwrap();
    done.result().unwrap();
    let waiting = ex.submit(wait_for_gate, (gate.path(), 7)).unwrap();
    let cancelled = ex.submit(square, 4).unwrap();
    assert!(cancelled.cancel());
    let mut completed = as_completed([waiting, done, cancelled]);
    assert_eq!(completed.next().unwrap().result().unwrap(), 9);
    assert!(completed.next().unwrap().cancelled());
    open(&gate);
    assert_eq!(completed.next().unwrap().result().unwrap(), 7);
    assert!(completed.next().is_none());
}

#[test]
fn a_future_can_be_awaited_on_another_thread_than_the_one_that_submitted_it() {
    let ex = Executor::new(1).unwrap();
    let future = ex.submit(nap, 50).unwrap();
    let waited = std::thread::spawn(move || block_on(future).0);
    assert_eq!(waited.join().unwrap().unwrap(), 50);
}
