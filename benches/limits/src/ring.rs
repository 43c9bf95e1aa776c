//! A single-producer single-consumer ring of fixed-size slots in shared memory, with futex
//! wake-ups: the least a queue between two processes has to do.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::{SharedZeroed, futex_wake, wait_until};

/// Slots in a ring: the queues' maxsize.
pub const SLOTS: u32 = 1024;

/// A cache line of its own, so that the two sides do not write to one line.
#[repr(C, align(64))]
struct Line<T>(T);

/// The ring: `SLOTS` slots of `W` words each. The producer writes `tail`, the consumer
/// `head`; each side counts itself in its `*_sleeping` word while asleep on the other's.
#[repr(C)]
pub struct Ring<const W: usize> {
    tail: Line<(AtomicU32, AtomicU32)>,
    head: Line<(AtomicU32, AtomicU32)>,
    slots: [[AtomicU64; W]; SLOTS as usize],
}

// SAFETY: made only of atomics (all-zero is an empty ring), used only through them.
unsafe impl<const W: usize> SharedZeroed for Ring<W> {}

impl<const W: usize> Ring<W> {
    /// The producer's end; one process only may use it.
    pub fn producer(&self) -> Producer<'_, W> {
        Producer {
            ring: self,
            tail: self.tail.0.0.load(Ordering::Acquire),
            head_seen: self.head.0.0.load(Ordering::Acquire),
        }
    }

    /// The consumer's end; one process only may use it.
    pub fn consumer(&self) -> Consumer<'_, W> {
        Consumer {
            ring: self,
            head: self.head.0.0.load(Ordering::Acquire),
            tail_seen: self.tail.0.0.load(Ordering::Acquire),
        }
    }
}

/// The producer's end of a [`Ring`].
pub struct Producer<'a, const W: usize> {
    ring: &'a Ring<W>,
    tail: u32,
    head_seen: u32,
}

impl<const W: usize> Producer<'_, W> {
    /// Copies `item` into the next slot, waiting while the ring is full.
    pub fn push(&mut self, item: [u64; W]) {
        let (head, producer_sleeping) = (&self.ring.head.0.0, &self.ring.tail.0.1);
        if self.tail.wrapping_sub(self.head_seen) == SLOTS {
            let tail = self.tail;
            self.head_seen = wait_until(head, producer_sleeping, |h| tail.wrapping_sub(h) < SLOTS);
        }
        let slot = &self.ring.slots[(self.tail % SLOTS) as usize];
        for (word, value) in slot.iter().zip(item) {
            word.store(value, Ordering::Relaxed);
        }
        self.tail = self.tail.wrapping_add(1);
        let (tail, consumer_sleeping) = (&self.ring.tail.0.0, &self.ring.head.0.1);
        tail.store(self.tail, Ordering::SeqCst);
        if consumer_sleeping.load(Ordering::SeqCst) != 0 {
            futex_wake(tail, 1);
        }
    }
}

/// The consumer's end of a [`Ring`].
pub struct Consumer<'a, const W: usize> {
    ring: &'a Ring<W>,
    head: u32,
    tail_seen: u32,
}

impl<const W: usize> Consumer<'_, W> {
    /// Copies the oldest item out of the ring, waiting while it is empty.
    pub fn pop(&mut self) -> [u64; W] {
        let (tail, consumer_sleeping) = (&self.ring.tail.0.0, &self.ring.head.0.1);
        if self.head == self.tail_seen {
            let head = self.head;
            self.tail_seen = wait_until(tail, consumer_sleeping, |t| t != head);
        }
        let slot = &self.ring.slots[(self.head % SLOTS) as usize];
        let item = std::array::from_fn(|i| slot[i].load(Ordering::Relaxed));
        self.head = self.head.wrapping_add(1);
        let (head, producer_sleeping) = (&self.ring.head.0.0, &self.ring.tail.0.1);
        head.store(self.head, Ordering::SeqCst);
        if producer_sleeping.load(Ordering::SeqCst) != 0 {
            futex_wake(head, 1);
        }
        item
    }
}
