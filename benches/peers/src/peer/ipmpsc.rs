//! ipmpsc: a ring in shared memory (a file mapped by every process), messages in bincode 1,
//! a process-shared mutex and condition variable to wait on. Its rings live in `/dev/shm`
//! (memory, as multiproc's do), made in set-up and inherited by the forked children (the
//! file is removed at once: the mapping stays). A ring has no end of stream: the producer
//! ends it with `None`, as Python's bench ends a queue with `None`, so each item is sent as
//! `Some(item)` (one byte more).

use std::time::Duration;

use ipmpsc::{Receiver, Sender, SharedRingBuffer};
use serde::de::DeserializeOwned;
use serde_bytes::{ByteBuf, Bytes};

use crate::shape::{self, MIB, Transfer, Workload};
use crate::sys::{Fallible, fork, unique_name};

pub const WORKLOADS: &[(&str, Workload)] = &[
    ("queue_small_1to1", queue_small_1to1),
    ("queue_1mib_1to1", queue_1mib_1to1),
    ("queue_1mib_vec_u8", queue_1mib_vec_u8),
    ("pingpong_queues", pingpong_queues),
];

/// A ring of `bytes` bytes, in memory, that only this process and its children reach.
fn ring(bytes: u32) -> Fallible<SharedRingBuffer> {
    let path = format!("/dev/shm/{}", unique_name("ipmpsc"));
    let ring = SharedRingBuffer::create(&path, bytes);
    // Inherited mappings outlive the file; remove it whether or not the ring was made.
    let _ = std::fs::remove_file(&path);
    Ok(ring?)
}

/// How many bytes `slots` items of `item_bytes` (encoded) take in a ring: each has a
/// 4-byte size before it, and 8 bytes stay free at the end.
fn ring_bytes(slots: u32, item_bytes: u32) -> u32 {
    slots * (item_bytes + 4) + 8
}

/// A 1→1 transfer over a ring of `bytes` bytes (the queue's maxsize items): the children
/// inherit their ends.
fn transfer<T: DeserializeOwned>(
    count: u64,
    bytes: u32,
    put: impl Fn(&Sender, u64) -> Fallible<()>,
    check: impl Fn(u64, &T) -> Fallible<()>,
) -> Fallible<Duration> {
    let transfer = Transfer::new()?;
    let ring = ring(bytes)?;
    let consumer = fork("consumer", || {
        let rx = Receiver::new(ring.clone());
        transfer.consume(|| Ok(rx.recv::<Option<T>>()?), &check)
    })?;
    let producer = fork("producer", || {
        let tx = Sender::new(ring.clone());
        transfer.produce(count, |i| put(&tx, i))?;
        Ok(tx.send(&None::<()>)?)
    })?;
    transfer.run(count, producer, consumer)
}

fn queue_small_1to1(count: u64) -> Fallible<Duration> {
    // (u64, String) in bincode 1: 8 bytes, an 8-byte length and 16 bytes; 1 for `Some`.
    transfer(
        count,
        ring_bytes(1024, 33),
        |tx, i| Ok(tx.send(&Some(shape::small(i)))?),
        shape::check_small,
    )
}

/// `send` borrows the item: the vector is encoded from where it is.
fn queue_1mib_vec_u8(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    transfer(
        count,
        ring_bytes(16, MIB as u32 + 9),
        |tx, _| Ok(tx.send(&Some(&item))?),
        |_, got: &Vec<u8>| shape::check_mib(got),
    )
}

/// Raw bytes: the buffer as serde bytes (one copy in), a `ByteBuf` out.
fn queue_1mib_1to1(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    transfer(
        count,
        ring_bytes(16, MIB as u32 + 9),
        |tx, _| Ok(tx.send(&Some(Bytes::new(&item)))?),
        |_, got: &ByteBuf| shape::check_mib(got),
    )
}

/// Two rings, one each way, as two queues of maxsize 1 (a round trip has one item in
/// flight).
fn pingpong_queues(count: u64) -> Fallible<Duration> {
    let (there, back) = (ring(ring_bytes(1, 8))?, ring(ring_bytes(1, 8))?);
    let echo = fork("echo", || {
        let (rx, tx) = (Receiver::new(there.clone()), Sender::new(back.clone()));
        for _ in 0..count {
            tx.send(&rx.recv::<u64>()?)?;
        }
        Ok(())
    })?;
    let (tx, rx) = (Sender::new(there), Receiver::new(back));
    shape::pingpong(count, echo, |i| {
        tx.send(&i)?;
        Ok(rx.recv::<u64>()?)
    })
}
