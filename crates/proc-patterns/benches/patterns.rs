//! multiproc's JoinableQueue and Pool against Python's `multiprocessing.JoinableQueue` and
//! `Pool`, doing the same work item for item, in one run (`patterns.py` beside this file is
//! run at the end when `python3` is on the PATH):
//!
//! ```text
//! cargo bench -p proc-patterns --bench patterns            # full
//! cargo bench -p proc-patterns --bench patterns -- --quick # fewer items
//! ```
//!
//! Workloads:
//! - JoinableQueue pipeline: main puts N small integers, 2 consumer processes `get` and
//!   `task_done` each, main `join`s (items/s, from the first put to the end of `join`);
//! - `Pool.map` of a trivial function (`x * 2`) over 200,000 inputs with the default
//!   chunksize, on a pool of 2 workers created beforehand (tasks/s);
//! - `Pool.map` of the same function over 10,000 inputs with chunksize 1, where the cost of
//!   sending each task shows (tasks/s).
//!
//! Each workload runs three times, in both languages, and the best run counts.

use std::time::Instant;

use proc_core::Process;
use proc_patterns::{JoinableQueue, Pool};

fn double(x: u64) -> u64 {
    x * 2
}

fn joinable_pipeline(n: u64) -> f64 {
    let q: JoinableQueue<u64> = JoinableQueue::new(0).expect("queue");
    let consumers: Vec<Process> = (0..2)
        .map(|_| {
            let q = q.clone();
            let mut p = Process::new(move || {
                while q.get().is_ok() {
                    let _ = q.task_done();
                }
            });
            p.start().expect("start");
            p
        })
        .collect();
    let start = Instant::now();
    for i in 0..n {
        q.put(i).expect("put");
    }
    q.join();
    let elapsed = start.elapsed().as_secs_f64();
    q.close();
    for c in consumers {
        c.join().expect("join");
    }
    n as f64 / elapsed
}

fn pool_map(pool: &Pool, n: u64, chunksize: Option<usize>) -> f64 {
    let start = Instant::now();
    let results = match chunksize {
        Some(c) => pool.map_chunked(double, 0..n, c),
        None => pool.map(double, 0..n),
    }
    .expect("map");
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(results.len() as u64, n);
    assert_eq!(results[n as usize - 1], double(n - 1));
    n as f64 / elapsed
}

/// The best of three runs (a rate: the highest).
fn best_of_3(mut run: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| run()).fold(0.0, f64::max)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (pipeline, map_n, small_n) = if quick {
        (20_000, 20_000, 1_000)
    } else {
        (200_000, 200_000, 10_000)
    };
    // The pipeline first: its consumers are forked before the pool starts its thread.
    // Each workload runs three times and the best run counts, as in patterns.py.
    let joinable = best_of_3(|| joinable_pipeline(pipeline));
    let pool = Pool::new(2).expect("pool");
    // Warm the workers up (first touches of pages, lazy symbol binding), as patterns.py does.
    pool_map(&pool, 1_000, None);
    let ours = [
        (format!("joinable pipeline {pipeline}"), joinable, "items/s"),
        (
            format!("pool.map {map_n}"),
            pool_map(&pool, map_n, None),
            "tasks/s",
        ),
        (
            format!("pool.map {small_n}, chunksize 1"),
            pool_map(&pool, small_n, Some(1)),
            "tasks/s",
        ),
    ];
    drop(pool);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/patterns.py");
    let theirs = bench_support::twin_figures(&script, if quick { &["--quick"] } else { &[] });
    let ours: Vec<bench_support::Figure> = ours
        .into_iter()
        .map(|(workload, value, unit)| bench_support::Figure {
            workload,
            value,
            unit,
            more_is_better: true,
        })
        .collect();
    bench_support::print_table(&ours, &theirs);
}
