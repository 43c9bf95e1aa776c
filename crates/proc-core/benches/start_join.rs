//! Micro-benchmarks of proc-core's hot paths: starting and joining a process, and the codec
//! that every message, argument and result goes through.
//!
//! ```text
//! cargo bench -p proc-core
//! ```
//! The side-by-side comparison with Python and the bare kernel path is `cargo xtask bench`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_core::codec::{self, ByteBuf, Layout};
use proc_core::internal::handle_wire;
use proc_core::{Process, spawn};

fn start_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("process");
    group.sample_size(30);
    group.bench_function("Process::new(no-op) start+join", |b| {
        b.iter(|| {
            let mut p = Process::new(|| {});
            p.start().expect("start");
            assert_eq!(p.join().expect("join"), 0);
        })
    });
    group.bench_function("spawn+join returning u64", |b| {
        b.iter(|| assert_eq!(spawn(|| 7u64).expect("spawn").join().expect("join"), 7))
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let small = (7u64, "sixteen bytes!!!".to_string());
    let mut buf = Vec::new();
    group.bench_function("encode_into (u64, 16-byte String)", |b| {
        b.iter(|| {
            buf.clear();
            codec::encode_into(black_box(&small), &mut buf).expect("encode");
        })
    });
    let encoded = codec::encode(&small).expect("encode");
    group.bench_function("decode (u64, 16-byte String)", |b| {
        b.iter(|| codec::decode::<(u64, String)>(black_box(&encoded), 1024).expect("decode"))
    });
    // Encoding with a place for the descriptors of handles.
    group.bench_function("travel::encode_into (u64, 16-byte String)", |b| {
        b.iter(|| {
            buf.clear();
            handle_wire::encode_into(black_box(&small), &mut buf).expect("encode")
        })
    });
    // What a queue's put does: the same, up to the inline limit of a 1 MiB ring.
    group.bench_function("travel::encode_into_at_most (u64, 16-byte String)", |b| {
        b.iter(|| {
            buf.clear();
            handle_wire::encode_into_at_most(black_box(&small), &mut buf, 256 << 10)
                .expect("encode")
        })
    });

    // A pool chunk's arguments: 25,000 u64s in the fixed layout.
    let numbers: Vec<u64> = (0..25_000).collect();
    group.throughput(Throughput::Elements(numbers.len() as u64));
    group.bench_function("Fixed encode_into Vec<u64> of 25,000", |b| {
        b.iter(|| {
            buf.clear();
            Layout::Fixed
                .encode_into(black_box(&numbers), &mut buf)
                .expect("encode");
        })
    });
    let mut fixed = Vec::new();
    Layout::Fixed
        .encode_into(&numbers, &mut fixed)
        .expect("encode");
    group.bench_function("Fixed decode Vec<u64> of 25,000", |b| {
        b.iter(|| {
            Layout::Fixed
                .decode::<Vec<u64>>(black_box(&fixed), 1 << 20)
                .expect("decode")
        })
    });

    let mib = ByteBuf::from(vec![0u8; 1 << 20]);
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("encode_into ByteBuf 1 MiB", |b| {
        b.iter(|| {
            buf.clear();
            codec::encode_into(black_box(&mib), &mut buf).expect("encode");
        })
    });
    let encoded = codec::encode(&mib).expect("encode");
    group.bench_function("decode ByteBuf 1 MiB", |b| {
        b.iter(|| codec::decode::<ByteBuf>(black_box(&encoded), 2 << 20).expect("decode"))
    });
    // The same bytes pulled from a source: straight into the buffer, grown as they come.
    group.bench_function("decode_from &[u8] ByteBuf 1 MiB", |b| {
        b.iter(|| {
            let mut source = black_box(&encoded[..]);
            codec::decode_from::<ByteBuf, _>(&mut source, 2 << 20).expect("decode")
        })
    });
    group.finish();
}

criterion_group!(benches, start_join, codec);
criterion_main!(benches);
