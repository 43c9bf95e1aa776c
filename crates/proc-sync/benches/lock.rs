//! Micro-benchmarks of proc-sync's hot paths, in one process: taking and releasing its
//! locks and semaphores, and looking at an event.
//!
//! ```text
//! cargo bench -p proc-sync
//! ```
//! The side-by-side comparison with Python and the bare kernel path, contended locks
//! included, is `cargo xtask bench`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proc_sync::{Event, Lock, RLock, Semaphore, Value};

fn locks(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock");
    let lock = Lock::new().expect("Lock::new");
    group.bench_function("Lock acquire+release", |b| {
        b.iter(|| drop(black_box(&lock).acquire()))
    });
    group.bench_function("Lock try_acquire+release", |b| {
        b.iter(|| drop(black_box(&lock).try_acquire().expect("free")))
    });
    let rlock = RLock::new().expect("RLock::new");
    let outer = rlock.acquire();
    group.bench_function("RLock re-entrant acquire+release", |b| {
        b.iter(|| drop(black_box(&rlock).acquire()))
    });
    drop(outer);
    let value = Value::new(0u64).expect("Value::new");
    group.bench_function("Value<u64> lock + increment", |b| {
        b.iter(|| *black_box(&value).lock() += 1)
    });
    group.finish();
}

fn signals(c: &mut Criterion) {
    let mut group = c.benchmark_group("signal");
    let semaphore = Semaphore::new(1).expect("Semaphore::new");
    group.bench_function("Semaphore acquire+release", |b| {
        b.iter(|| {
            black_box(&semaphore).acquire();
            semaphore.release().expect("release");
        })
    });
    let event = Event::new().expect("Event::new");
    event.set();
    group.bench_function("Event is_set", |b| b.iter(|| black_box(&event).is_set()));
    group.finish();
}

criterion_group!(benches, locks, signals);
criterion_main!(benches);
