//! Producers and consumers SIGKILLed at random moments while they move items through one
//! queue. Afterwards every item whose `put` returned `Ok` has been delivered exactly once,
//! or was taken by a consumer that died before it could pass the item on (at most one per
//! killed consumer); nothing is delivered twice; each consumer sees each producer's items
//! in order; and nothing deadlocks. Some items are larger than the ring, so that kills land
//! in the middle of streamed items (on either side) or of hand-overs as memory files.
//!
//! The producers and consumers are targets given the queue (and the acknowledgement table,
//! or the connection they pass items on through) as arguments, so that they are forked,
//! spawned or served as `MULTIPROC_START_METHOD` says. Every method gets the full count of
//! kills (each test takes a few seconds under Spawn). A spawned child takes longer to reach
//! its target, so more kills land before it runs (measured: a few per cent under Fork and
//! ForkServer, about one in eight under Spawn). Those kill a child that has not touched the
//! queue yet (spawned or served, perhaps with the queue's descriptors still in flight to
//! it), which must harm nothing either; the others land in queue operations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proc_core::Process;
use proc_core::codec::ByteBuf;
use proc_ipc::{Connection, LargeItems, Queue, pipe_oneway};
use proc_sync::Array;

/// What moves through the queue: (producer incarnation, sequence number, padding). Some
/// items are larger than a quarter of the ring, or than the whole ring: see `padding`.
type Item = (u32, u64, ByteBuf);

/// What the consumers passed on, per consumer incarnation, in the order they got it.
type Received = Arc<Mutex<Vec<Vec<(u32, u64)>>>>;

const PRODUCERS: usize = 2;
const CONSUMERS: usize = 2;
/// The most producer incarnations, dead or alive: the size of the acknowledgement table.
const MAX_INCARNATIONS: usize = 1024;
/// Items one producer incarnation puts before it ends by itself.
const QUOTA: u64 = 3_000;
const RING_BYTES: usize = 16 << 10;

/// The padding of item `seq`: every 37th item is 2.5 rings long (streamed in many chunks,
/// so that a kill often lands in the middle of one), every 11th a third of a ring (larger
/// than a quarter: streamed, or handed over), the others empty.
fn padding(seq: u64) -> usize {
    if seq.is_multiple_of(37) {
        RING_BYTES * 5 / 2
    } else if seq.is_multiple_of(11) {
        RING_BYTES / 3
    } else {
        0
    }
}
/// How long the end of the run may take before the test calls it a deadlock.
const WATCHDOG: Duration = Duration::from_secs(120);

/// A small deterministic generator (xorshift64*), so that a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var("MULTIPROC_FAULT_SEED") {
        Ok(seed) => seed.parse().expect("MULTIPROC_FAULT_SEED is a number"),
        Err(_) => {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        }
    }
}

struct Run {
    queue: Queue<Item>,
    /// `acked[id]`: how many items producer incarnation `id` saw `put` return `Ok` for.
    acked: Array<u64>,
    next_incarnation: u32,
    received: Received,
    readers: Vec<std::thread::JoinHandle<()>>,
    killed_consumers: usize,
    killed_producers: usize,
}

/// Producer incarnation `id`: puts its quota of items, noting in `acked[id]` how many puts
/// returned Ok.
fn produce(queue: Queue<Item>, acked: Array<u64>, id: u32) {
    for seq in 0..QUOTA {
        let pad = ByteBuf::from(vec![id as u8; padding(seq)]);
        queue.put((id, seq, pad)).expect("put");
        acked.lock()[id as usize] = seq + 1;
    }
}

/// A consumer incarnation: takes items until the queue is closed and drained, checks each,
/// and passes on which it got through `writer`.
fn consume(queue: Queue<Item>, writer: Connection) {
    while let Ok((id, seq, pad)) = queue.get() {
        assert_eq!(pad.len(), padding(seq), "item ({id}, {seq}) is damaged");
        assert!(
            pad.iter().all(|&b| b == id as u8),
            "item ({id}, {seq}) is damaged"
        );
        writer.send(&(id, seq)).expect("pass the item on");
    }
}

impl Run {
    fn start_producer(&mut self) -> Process {
        let id = self.next_incarnation;
        self.next_incarnation += 1;
        assert!((id as usize) < MAX_INCARNATIONS, "too many incarnations");
        let mut p = Process::target(produce, (self.queue.clone(), self.acked.clone(), id));
        p.start().expect("start producer");
        p
    }

    fn start_consumer(&mut self) -> Process {
        let (reader, writer) = pipe_oneway().expect("pipe");
        let mut p = Process::target(consume, (self.queue.clone(), writer));
        p.start().expect("start consumer");
        self.readers
            .push(collect(reader, Arc::clone(&self.received)));
        p
    }
}

/// Reads what one consumer incarnation passes on until it ends (or dies mid-message).
fn collect(reader: Connection, received: Received) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut mine = Vec::new();
        while let Ok(item) = reader.recv::<(u32, u64)>() {
            mine.push(item);
        }
        received.lock().unwrap().push(mine);
    })
}

/// Joins `p`, failing the test if it does not end within the watchdog's time.
fn join_or_deadlock(p: &Process, what: &str, seed: u64) -> i32 {
    match p.join_timeout(WATCHDOG).expect("join") {
        Some(code) => code,
        None => {
            let _ = p.kill();
            panic!("{what} did not end within {WATCHDOG:?}: deadlock (seed {seed})");
        }
    }
}

fn run_with_kills(kills: usize, large_items: LargeItems) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut run = Run {
        queue: Queue::builder()
            .maxsize(64)
            .ring_bytes(RING_BYTES)
            .large_items(large_items)
            .build()
            .expect("queue"),
        acked: Array::new(MAX_INCARNATIONS).expect("ack table"),
        next_incarnation: 0,
        received: Arc::default(),
        readers: Vec::new(),
        killed_consumers: 0,
        killed_producers: 0,
    };
    let mut producers: Vec<Process> = (0..PRODUCERS).map(|_| run.start_producer()).collect();
    let mut consumers: Vec<Process> = (0..CONSUMERS).map(|_| run.start_consumer()).collect();

    for _ in 0..kills {
        // When to strike is random; nothing waits on this sleep for correctness.
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        let slot = rng.below((PRODUCERS + CONSUMERS) as u64) as usize;
        if slot < PRODUCERS {
            let p = &producers[slot];
            p.kill().expect("kill");
            if join_or_deadlock(p, "a killed producer", seed) == -9 {
                run.killed_producers += 1;
            }
            producers[slot] = run.start_producer();
        } else {
            let c = &consumers[slot - PRODUCERS];
            c.kill().expect("kill");
            if join_or_deadlock(c, "a killed consumer", seed) == -9 {
                run.killed_consumers += 1;
            }
            consumers[slot - PRODUCERS] = run.start_consumer();
        }
    }

    for p in &producers {
        assert_eq!(join_or_deadlock(p, "a producer", seed), 0, "seed {seed}");
    }
    run.queue.close();
    for c in &consumers {
        assert_eq!(join_or_deadlock(c, "a consumer", seed), 0, "seed {seed}");
    }
    for reader in run.readers.drain(..) {
        reader.join().expect("reader thread");
    }

    let acked = run.acked.to_vec();
    let received = run.received.lock().unwrap();
    let mut count: HashMap<(u32, u64), usize> = HashMap::new();
    for per_consumer in received.iter() {
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        for &(id, seq) in per_consumer {
            *count.entry((id, seq)).or_default() += 1;
            if let Some(last) = last_seq.insert(id, seq) {
                assert!(
                    last < seq,
                    "out of order for producer {id}: {last} then {seq} (seed {seed})"
                );
            }
            assert!(
                seq <= acked[id as usize],
                "item ({id}, {seq}) was delivered but its producer never put it (seed {seed})"
            );
        }
    }
    let duplicates: Vec<_> = count.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "delivered twice: {duplicates:?} (seed {seed})"
    );
    let mut lost = Vec::new();
    for (id, &n) in acked.iter().enumerate().take(run.next_incarnation as usize) {
        for seq in 0..n {
            if !count.contains_key(&(id as u32, seq)) {
                lost.push((id, seq));
            }
        }
    }
    let acknowledged: u64 = acked.iter().sum();
    println!(
        "seed {seed}: {} producer and {} consumer incarnations, {} producers and {} consumers \
         killed, {acknowledged} items acknowledged, {} delivered, {} taken by killed consumers",
        run.next_incarnation,
        consumers.len() + run.killed_consumers,
        run.killed_producers,
        run.killed_consumers,
        count.len(),
        lost.len(),
    );
    assert!(
        lost.len() <= run.killed_consumers,
        "{} acknowledged items lost, but only {} consumers were killed: {lost:?} (seed {seed})",
        lost.len(),
        run.killed_consumers
    );
    // The queue is still usable, and empty.
    let q = &run.queue;
    assert!(q.is_empty());
}

#[test]
fn killing_producers_and_consumers_at_random_loses_no_acknowledged_item_and_duplicates_none() {
    run_with_kills(200, LargeItems::Streamed);
}

#[test]
fn the_same_holds_when_large_items_are_handed_over_as_memory_files() {
    run_with_kills(200, LargeItems::HandedOver);
}
