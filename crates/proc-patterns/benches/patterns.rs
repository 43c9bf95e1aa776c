//! Micro-benchmarks of proc-patterns' hot paths: a joinable queue's put, get and
//! task_done in one process, and a pool's round trip for one task and for a small map.
//!
//! ```text
//! cargo bench -p proc-patterns
//! ```
//! The side-by-side comparison with Python and the bare kernel path is `cargo xtask bench`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_patterns::{JoinableQueue, Pool};

fn double(x: u64) -> u64 {
    x * 2
}

fn joinable(c: &mut Criterion) {
    let mut group = c.benchmark_group("joinable queue");
    let q: JoinableQueue<u64> = JoinableQueue::new(0).expect("queue");
    group.bench_function("put+get+task_done u64", |b| {
        b.iter(|| {
            q.put(black_box(7)).expect("put");
            q.get().expect("get");
            q.task_done().expect("task_done");
        })
    });
    group.finish();
}

fn pool(c: &mut Criterion) {
    // One pool for both: its threads start with it, and forking after that is what a
    // second pool would do.
    let pool = Pool::new(2).expect("pool");
    let mut group = c.benchmark_group("pool");
    group.bench_function("apply (one task there and back)", |b| {
        b.iter(|| pool.apply(double, black_box(21)).expect("apply"))
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("map over 1,000 inputs", |b| {
        b.iter(|| pool.map(double, 0..1_000u64).expect("map"))
    });
    group.finish();
}

criterion_group!(benches, joinable, pool);
criterion_main!(benches);
