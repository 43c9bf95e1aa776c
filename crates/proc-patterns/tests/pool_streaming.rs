//! Pool: `imap` and `imap_unordered` pull their inputs as results are taken, with a
//! bounded number of chunks out, so endless inputs work (CPython's test_imap_infinite-like
//! behaviour, which Python itself lacks: its task thread drains the input). The workers
//! are forked, spawned or served as `MULTIPROC_START_METHOD` says.

use std::sync::atomic::{AtomicUsize, Ordering};

use proc_patterns::Pool;

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn imap_over_an_endless_input_returns_the_first_thousand_results_in_order() {
    let pool = Pool::new(2).unwrap();
    let first: Vec<u64> = pool
        .imap(square, 0..)
        .take(1000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(first, (0..1000).map(square).collect::<Vec<_>>());
}

#[test]
fn imap_unordered_over_an_endless_input_returns_results_as_they_come() {
    let pool = Pool::new(2).unwrap();
    let mut first: Vec<u64> = pool
        .imap_unordered_chunked(square, 0.., 7)
        .take(500)
        .collect::<Result<_, _>>()
        .unwrap();
    first.sort_unstable();
    first.dedup();
    assert_eq!(first.len(), 500, "no result twice");
    // Every result is the square of an input taken: at most a bounded few past the 500th.
    assert!(first.iter().all(|&r| r == square(r.isqrt())));
    assert!(*first.last().unwrap() < square(500 + 100 * 7));
}

/// The number of inputs an iterator has handed out, counted in this (the pool's) process.
static PULLED: AtomicUsize = AtomicUsize::new(0);
static PULLED_UNORDERED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn imap_takes_only_a_few_chunks_per_worker_ahead_of_the_results_taken() {
    let pool = Pool::builder().processes(2).chunksize(4).build().unwrap();
    let inputs = (0..).inspect(|_| {
        PULLED.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool.imap(square, inputs);
    for x in 0..40 {
        assert_eq!(results.next().unwrap().unwrap(), square(x));
        let ahead = PULLED.load(Ordering::SeqCst) - (x as usize + 1);
        // A few chunks per worker: here 3 chunks of 4 for each of 2 workers, at most.
        assert!(
            ahead <= 3 * 2 * 4,
            "{ahead} inputs taken ahead of result {x}"
        );
    }

    let inputs = (0..).inspect(|_| {
        PULLED_UNORDERED.fetch_add(1, Ordering::SeqCst);
    });
    let results = pool.imap_unordered(square, inputs);
    assert_eq!(results.take(40).count(), 40);
    assert!(PULLED_UNORDERED.load(Ordering::SeqCst) <= 40 + 3 * 2 * 4);
}

#[test]
fn imap_starts_the_workers_before_the_first_result_is_asked_for() {
    let pool = Pool::new(1).unwrap();
    let results = pool.imap(square, [3]);
    // Nothing more can be submitted once the pool is closed: the task is already out.
    pool.close();
    assert_eq!(results.map(Result::unwrap).collect::<Vec<_>>(), [9]);
    pool.join().unwrap();
}

#[test]
fn imap_of_a_known_length_says_how_many_results_are_left() {
    let pool = Pool::new(2).unwrap();
    let mut results = pool.imap(square, 0..10);
    assert_eq!(results.size_hint(), (10, Some(10)));
    results.next().unwrap().unwrap();
    assert_eq!(results.size_hint(), (9, Some(9)));
    assert_eq!(pool.imap(square, 0..).size_hint().1, None);
}

#[test]
fn map_and_imap_agree_over_a_long_input() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..20_000).map(square).collect();
    assert_eq!(pool.map(square, 0..20_000).unwrap(), expected);
    let streamed: Vec<u64> = pool
        .imap(square, 0..20_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, expected);
    let unknown_length = (0..20_000u64).filter(|_| true);
    let streamed: Vec<u64> = pool
        .imap_chunked(square, unknown_length, 64)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, expected);
}

static PULLED_BEFORE_DROP: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_dropped_imap_takes_no_more_inputs_and_the_pool_goes_on() {
    // CPython's test_release_task_refs, in spirit: what an abandoned call had out is let
    // go, and nothing of it is left running the pool.
    let pool = Pool::builder().processes(2).chunksize(2).build().unwrap();
    let inputs = (0..).inspect(|_| {
        PULLED_BEFORE_DROP.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool.imap(square, inputs);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    drop(results);
    let pulled = PULLED_BEFORE_DROP.load(Ordering::SeqCst);
    assert_eq!(pool.map(square, 0..100).unwrap().len(), 100);
    assert_eq!(PULLED_BEFORE_DROP.load(Ordering::SeqCst), pulled);
    // Every chunk it had out still finishes (its results are dropped).
    let start = std::time::Instant::now();
    loop {
        let stats = pool.stats();
        if stats.submitted == stats.completed + stats.failed {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "unfinished: {stats:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
