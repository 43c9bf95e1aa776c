//! Pool: how inputs become chunks, and how the chunks' results come back in input order,
//! whatever the inputs' iterator says about its length and whatever order chunks finish in.

use std::sync::Arc;
use std::time::Duration;

use proc_core::codec::ByteBuf;
use proc_patterns::{Error, Pool};

fn square(x: u64) -> u64 {
    x * x
}

/// The first input is slow, so the first chunk finishes after those sent behind it.
fn slow_first(x: u64) -> u64 {
    if x == 0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    x * x
}

/// An iterator whose size hint claims an exact length it does not have.
struct Lying {
    next: u64,
    end: u64,
    claimed: usize,
}

impl Iterator for Lying {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed, Some(self.claimed))
    }
}

#[test]
fn map_takes_inputs_whose_number_is_not_known_in_advance() {
    let pool = Pool::new(2).unwrap();
    let inputs = (0..1000u64).filter(|x| x % 7 == 0);
    let expected: Vec<u64> = inputs.clone().map(square).collect();
    assert_eq!(pool.map(square, inputs.clone()).unwrap(), expected);
    assert_eq!(
        pool.imap(square, inputs)
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        expected
    );
}

#[test]
fn a_size_hint_that_lies_changes_the_chunks_but_not_the_results() {
    let pool = Pool::new(2).unwrap();
    let expected: Vec<u64> = (0..500).map(square).collect();
    for claimed in [0, 1, 10, 100_000] {
        let inputs = Lying {
            next: 0,
            end: 500,
            claimed,
        };
        assert_eq!(pool.map(square, inputs).unwrap(), expected, "{claimed}");
    }
}

#[test]
fn map_keeps_input_order_when_later_chunks_finish_first() {
    let pool = Pool::builder().processes(2).chunksize(10).build().unwrap();
    let expected: Vec<u64> = (0..200).map(square).collect();
    assert_eq!(pool.map(slow_first, 0..200).unwrap(), expected);
    assert_eq!(
        pool.imap(slow_first, 0..200)
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        expected
    );
}

#[test]
fn large_chunks_of_large_values_travel_whole() {
    fn label(x: u64) -> String {
        format!("{x:>64}")
    }
    let pool = Pool::new(2).unwrap();
    // About 1.3 MB of results per chunk of the default size, 6.5 MB in all.
    let got = pool.map(label, 0..100_000).unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().enumerate().all(|(i, s)| *s == label(i as u64)));
}

#[test]
fn a_chunk_larger_than_a_workers_mailbox_goes_through_its_connection() {
    fn plus_one(x: u64) -> u64 {
        x + 1
    }
    // A worker's mailboxes hold 16 MiB: one chunk of 2.2 million u64s is 17.6 MB of
    // arguments and as much of results. The chunk after it, and the map after that, fit
    // again.
    let pool = Pool::new(1).unwrap();
    let count = 2_200_001u64;
    let got = pool.map_chunked(plus_one, 0..count, 2_200_000).unwrap();
    assert_eq!(got.len() as u64, count);
    assert!(got.iter().zip(1..).all(|(&got, want)| got == want));
    assert_eq!(
        pool.map(plus_one, 0..1000).unwrap(),
        (1..1001).collect::<Vec<_>>()
    );
}

#[test]
fn results_larger_than_the_outbox_come_back_through_the_connection() {
    fn mebibyte_of(x: u8) -> ByteBuf {
        ByteBuf::from(vec![x; 1 << 20])
    }
    // Twenty inputs in one chunk fit in the worker's inbox; their 20 MiB of results do not
    // fit in its 16 MiB outbox.
    let pool = Pool::new(1).unwrap();
    let got = pool.map_chunked(mebibyte_of, 0..20u8, 20).unwrap();
    assert_eq!(got.len(), 20);
    for (x, buf) in (0..20u8).zip(&got) {
        assert!(
            buf.len() == 1 << 20 && buf.iter().all(|&b| b == x),
            "result {x}"
        );
    }
}

#[test]
fn a_map_terminated_while_it_still_submits_returns_an_error_instead_of_hanging() {
    fn nap(x: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(20));
        x
    }
    let pool = Arc::new(Pool::builder().processes(2).chunksize(1).build().unwrap());
    let terminator = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            pool.terminate();
        })
    };
    // 200 chunks of one 20 ms task: the map is still submitting (a few chunks out at a
    // time) when the pool is terminated.
    let result = pool.map(nap, 0..200);
    terminator.join().unwrap();
    assert!(
        matches!(result, Err(Error::PoolTerminated | Error::PoolClosed)),
        "{result:?}"
    );
}
