//! Micro-benchmarks of proc-ipc's hot paths, in one process: a queue's put and get (the
//! ring for small items, the hand-over for large ones) and a pipe's send and receive.
//!
//! ```text
//! cargo bench -p proc-ipc
//! ```
//! The side-by-side comparison with Python and the bare kernel path, across processes, is
//! `cargo xtask bench`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_core::codec::ByteBuf;
use proc_ipc::{Queue, pipe};

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    let numbers: Queue<u64> = Queue::new(1024).expect("queue");
    group.bench_function("put+get u64", |b| {
        b.iter(|| {
            numbers.put(black_box(7)).expect("put");
            numbers.get().expect("get")
        })
    });
    let pairs: Queue<(u64, String)> = Queue::new(1024).expect("queue");
    group.bench_function("put+get (u64, 16-byte String)", |b| {
        b.iter(|| {
            pairs.put((7, "sixteen bytes!!!".to_string())).expect("put");
            pairs.get().expect("get")
        })
    });
    group.bench_function("try_get on an empty queue", |b| {
        b.iter(|| black_box(&numbers).try_get().is_err())
    });
    let buffers: Queue<ByteBuf> = Queue::new(16).expect("queue");
    // 64 KiB travels through the ring; 1 MiB, over a quarter of it, is handed over.
    for (name, bytes) in [
        ("put+get ByteBuf 64 KiB", 64 << 10),
        ("put+get ByteBuf 1 MiB", 1 << 20),
    ] {
        let buf = ByteBuf::from(vec![0u8; bytes]);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                buffers.put(buf.clone()).expect("put");
                buffers.get().expect("get")
            })
        });
    }
    group.finish();
}

fn connection(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipe");
    let (here, there) = pipe().expect("pipe");
    group.bench_function("send+recv u64", |b| {
        b.iter(|| {
            here.send(&black_box(7u64)).expect("send");
            there.recv::<u64>().expect("recv")
        })
    });
    // 1 MiB to a thread, which says how much came.
    let (here, there) = pipe().expect("pipe");
    let echo = std::thread::spawn(move || {
        while let Ok(buf) = there.recv::<ByteBuf>() {
            if there.send(&(buf.len() as u64)).is_err() {
                break;
            }
        }
    });
    let buf = ByteBuf::from(vec![1u8; 1 << 20]);
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("send+recv ByteBuf 1 MiB, to a thread", |b| {
        b.iter(|| {
            here.send(&buf).expect("send");
            here.recv::<u64>().expect("recv")
        })
    });
    drop(here);
    echo.join().expect("echo thread");
    group.finish();
}

criterion_group!(benches, queue, connection);
criterion_main!(benches);
