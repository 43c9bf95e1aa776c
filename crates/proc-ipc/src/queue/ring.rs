//! One side's lock, held (`Held`), and the bookkeeping of the ring under it: taking the
//! lock and repairing the side after a holder that died, the room left for a producer,
//! publishing frames past `tail` and moving `head` past the frames taken, letting go of the
//! lock to wait for the other side; and emptying a ring whose positions are corrupt.

use std::sync::atomic::Ordering;

use proc_sync::internal::{RawMutex, futex};

use super::handle::Queue;
use super::wait::{Wait, await_change};
use crate::error::Error;
use crate::frame::{self, FrameError, FrameKind, HEADER, Ring};

/// Positions stay below this, far from the end of u64: 2^62 bytes would take centuries to
/// pass through a queue.
const POSITION_LIMIT: u64 = 1 << 62;

/// What the ring and the item count allow a producer now.
pub(super) struct Room {
    /// Whether an item more is within `maxsize`.
    pub(super) slot: bool,
    /// Free bytes in the ring.
    pub(super) free: u64,
}

/// Which side of the queue a lock or a waiter is on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Producer,
    Consumer,
}

/// One side's lock, held; released on drop.
pub(super) struct Held<'q, T> {
    pub(super) queue: &'q Queue<T>,
    pub(super) side: Side,
}

impl<'q, T> Held<'q, T> {
    /// Takes `side`'s lock, waiting as `wait` allows; `Ok(None)` when the deadline passed.
    /// After a holder died, repairs that side's state.
    pub(super) fn acquire(
        queue: &'q Queue<T>,
        side: Side,
        wait: Wait,
    ) -> Result<Option<Self>, Error> {
        let lock = Self::lock_of(queue, side);
        let acquired = match wait {
            Wait::Forever => lock.lock("Queue").map(Some)?,
            // A try still waits for the lock itself, which is held only for a copy, unless
            // its holder is in the middle of a streamed item, which may take long.
            Wait::No => match lock.try_lock("Queue")? {
                Some(died) => Some(died),
                None if Self::streaming(queue, side) => None,
                None => Some(lock.lock("Queue")?),
            },
            Wait::Until(deadline) => lock.lock_until(&deadline, "Queue")?,
        };
        Ok(Self::taken(queue, side, acquired))
    }

    /// Takes `side`'s lock only if it is free now.
    pub(super) fn try_acquire(queue: &'q Queue<T>, side: Side) -> Result<Option<Self>, Error> {
        let acquired = Self::lock_of(queue, side).try_lock("Queue")?;
        Ok(Self::taken(queue, side, acquired))
    }

    fn taken(queue: &'q Queue<T>, side: Side, acquired: Option<bool>) -> Option<Self> {
        let owner_died = acquired?;
        let held = Held { queue, side };
        if owner_died {
            held.heal();
        }
        Some(held)
    }

    /// Whether a holder of `side`'s lock is in the middle of a streamed item.
    fn streaming(queue: &Queue<T>, side: Side) -> bool {
        let open = match side {
            Side::Producer => &queue.put_hot().open_item,
            Side::Consumer => &queue.get_hot().open_item,
        };
        open.load(Ordering::Relaxed) != 0
    }

    fn lock_of(queue: &Queue<T>, side: Side) -> &RawMutex {
        match side {
            Side::Producer => &queue.put_side().lock.0,
            Side::Consumer => &queue.get_side().lock.0,
        }
    }

    /// Repairs this side after its previous holder died holding the lock: finishes the
    /// count of an operation that had moved its position (see "Consistency when a process
    /// dies"), and, on the producers' side, ends a streamed item left half written.
    fn heal(&self) {
        let queue = self.queue;
        match self.side {
            Side::Producer => {
                let hot = queue.put_hot();
                if hot.tail.load(Ordering::Relaxed) == hot.intent_tail.load(Ordering::Relaxed) {
                    hot.puts
                        .store(hot.intent_puts.load(Ordering::Relaxed), Ordering::Release);
                }
                if hot.open_item.load(Ordering::Relaxed) != 0 {
                    // Every chunk kept room for this frame free. (Should the positions be
                    // corrupt, the consumer takes the next item's first frame as the end.)
                    let head = queue.get_hot().head.load(Ordering::Acquire);
                    let tail = hot.tail.load(Ordering::Relaxed);
                    let capacity = queue.shared.ring.len() as u64;
                    if queue.positions_hold() && capacity - (tail - head) >= HEADER as u64 {
                        self.publish(FrameKind::Abort, &[], false);
                    }
                    hot.open_item.store(0, Ordering::Release);
                }
            }
            Side::Consumer => {
                let hot = queue.get_hot();
                if hot.head.load(Ordering::Relaxed) == hot.intent_head.load(Ordering::Relaxed) {
                    hot.gets
                        .store(hot.intent_gets.load(Ordering::Relaxed), Ordering::Release);
                }
                // The dead consumer's item is gone with it; the next consumer skips the rest.
                hot.open_item.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Runs `f` with the consumers' lock taken too (this must be the producers' lock).
    fn with_consumers_locked(&self, f: impl FnOnce()) -> Result<(), Error> {
        debug_assert!(self.side == Side::Producer);
        let lock = &self.queue.get_side().lock.0;
        // Whether its owner died does not matter: the caller resets that side anyway.
        lock.lock("Queue")?;
        f();
        lock.unlock("Queue")?;
        Ok(())
    }

    /// How much room there is for `needed` bytes (and an item slot, if `for_item`), from
    /// the producers' view of the consumers' side, which is read again only when that view
    /// says there is not. Producers' lock held.
    pub(super) fn room(&self, needed: u64, for_item: bool) -> Result<Room, Error> {
        let queue = self.queue;
        let hot = queue.put_hot();
        let capacity = queue.shared.ring.len() as u64;
        let room = |head: u64, gets: u64| {
            let tail = hot.tail.load(Ordering::Relaxed);
            let items = hot.puts.load(Ordering::Relaxed).saturating_sub(gets);
            Room {
                slot: queue.shared.maxsize == 0 || items < queue.shared.maxsize,
                free: if tail >= head {
                    capacity - (tail - head).min(capacity)
                } else {
                    0
                },
            }
        };
        let seen = room(
            hot.head_seen.load(Ordering::Relaxed),
            hot.gets_seen.load(Ordering::Relaxed),
        );
        if seen.free >= needed && (seen.slot || !for_item) {
            return Ok(seen);
        }
        for _ in 0..2 {
            // Look at the consumers' side again. Acquire: the bytes before `head` have been
            // copied out before a consumer moved it, so they may be written now.
            let gets = queue.get_hot();
            let (taken, head) = (
                gets.gets.load(Ordering::Acquire),
                gets.head.load(Ordering::Acquire),
            );
            hot.head_seen.store(head, Ordering::Relaxed);
            hot.gets_seen.store(taken, Ordering::Relaxed);
            if queue.positions_hold() {
                return Ok(room(head, taken));
            }
            // A consumer would report the corruption; a producer repairs and goes on.
            self.with_consumers_locked(|| queue.reset())?;
        }
        Err(Error::CorruptQueue {
            detail: "the ring's positions stay inconsistent after a reset".to_string(),
        })
    }

    /// Writes a frame past `tail`, then publishes it (producers' lock): the intent, then
    /// `tail`, then the count, each a store that a process killed between two of them
    /// leaves repairable (see "Consistency when a process dies"); then rings the bell that
    /// consumers sleep on, as `advance` does on the other side.
    pub(super) fn publish(&self, kind: FrameKind, parts: &[&[u8]], ends_item: bool) {
        debug_assert!(self.side == Side::Producer);
        let hot = self.queue.put_hot();
        let tail = hot.tail.load(Ordering::Relaxed);
        // SAFETY: the bytes past `tail` (up to `head` plus the ring's length, which the
        // caller checked leaves room for this frame) are written only by the holder of the
        // producers' lock, which this thread is, and read by consumers only once `tail` has
        // moved past them.
        let new_tail = unsafe { frame::encode(self.queue.ring(), tail, kind, parts) };
        self.publish_written(new_tail, ends_item);
    }

    /// Publishes the frame written from `tail` up to `new_tail` (producers' lock): see
    /// `publish`.
    pub(super) fn publish_written(&self, new_tail: u64, ends_item: bool) {
        let hot = self.queue.put_hot();
        let puts = hot.puts.load(Ordering::Relaxed) + u64::from(ends_item);
        hot.intent_tail.store(new_tail, Ordering::Relaxed);
        hot.intent_puts.store(puts, Ordering::Release);
        // SeqCst: it pairs with the consumers' doorbell (see `Doorbell::ring`).
        hot.tail.store(new_tail, Ordering::SeqCst);
        hot.puts.store(puts, Ordering::Release);
        self.queue.put_side().wait.0.bell.ring();
    }

    /// The frame at `head` (consumers' lock), and the `tail` it was read against.
    pub(super) fn next_frame(&self) -> (Result<Option<frame::Frame>, FrameError>, u64) {
        debug_assert!(self.side == Side::Consumer);
        let queue = self.queue;
        let hot = queue.get_hot();
        let head = hot.head.load(Ordering::Relaxed);
        let mut tail = hot.tail_seen.load(Ordering::Relaxed);
        if tail <= head {
            // Every frame seen so far is taken: look at the producers' side again.
            // Acquire: a frame's bytes were written before a producer moved `tail`.
            tail = queue.put_hot().tail.load(Ordering::Acquire);
            hot.tail_seen.store(tail, Ordering::Relaxed);
        }
        let decoded = if tail < POSITION_LIMIT {
            // SAFETY: this thread holds the consumers' lock, so nobody else reads from
            // `head`, and producers do not write before `tail`. (decode checks that the
            // positions can be those of this ring.)
            unsafe { frame::decode(queue.ring(), head, tail) }
        } else {
            Err(FrameError::Positions {
                head,
                tail,
                capacity: queue.shared.ring.len(),
            })
        };
        (decoded, tail)
    }

    /// Moves `head` past the frame just taken, then counts the item if the frame ended one
    /// (consumers' lock), as `publish` does on the other side; rings the producers' bell.
    pub(super) fn advance(&self, new_head: u64, ends_item: bool) {
        debug_assert!(self.side == Side::Consumer);
        let hot = self.queue.get_hot();
        let gets = hot.gets.load(Ordering::Relaxed) + u64::from(ends_item);
        hot.intent_head.store(new_head, Ordering::Relaxed);
        hot.intent_gets.store(gets, Ordering::Release);
        // SeqCst, both: they pair with the producers' doorbell (see `Doorbell::ring`). A
        // producer waits for either to change (see `wait_for_change`), so neither store may
        // pass the doorbell's look at its sleepers.
        hot.head.store(new_head, Ordering::SeqCst);
        hot.gets.store(gets, Ordering::SeqCst);
        let wait = &self.queue.get_side().wait.0;
        wait.bell.ring();
        wait.answer(new_head, gets);
    }

    /// Releases the lock, waits until the other side changes the queue (or `wait` runs
    /// out, or the queue is closed), and takes the lock again. `Ok(None)`: no wait allowed.
    /// Once the deadline has passed, `wait` becomes `Wait::No`: the caller looks once
    /// more, then gives up.
    pub(super) fn wait_for_change(self, wait: &mut Wait) -> Result<Option<Self>, Error> {
        if matches!(wait, Wait::No) {
            return Ok(None);
        }
        let (queue, side) = (self.queue, self.side);
        // A producer waits for `head` to move past its last view of it, a consumer for
        // `tail`; both for `close`. The views are read while the lock is still held.
        //
        // A producer also waits for `gets` to move past its view: a consumer moves `head`,
        // then `gets`, and a producer that read `gets` before both moves and `head` after
        // them sees a queue full by its item count (an old `gets`) with `head` already where
        // it stays once the queue is empty. Waiting for `head` alone, it would sleep forever.
        //
        // A producer first watches the mark it leaves for a batch of room (`ask_for_room`).
        let (watched, seen, bell, gets_seen, room_mark) = match side {
            Side::Producer => (
                &queue.get_hot().head,
                queue.put_hot().head_seen.load(Ordering::Relaxed),
                &queue.get_side().wait.0.bell,
                Some(queue.put_hot().gets_seen.load(Ordering::Relaxed)),
                queue.ask_for_room(),
            ),
            Side::Consumer => (
                &queue.put_hot().tail,
                queue.get_hot().tail_seen.load(Ordering::Relaxed),
                &queue.put_side().wait.0.bell,
                None,
                None,
            ),
        };
        let gets = &queue.get_hot().gets;
        drop(self);
        let closed = &queue.put_side().wait.0.closed;
        if let Some(mark) = room_mark {
            mark.watch(closed);
        }
        let woke = await_change(
            watched,
            seen,
            bell,
            || {
                closed.load(Ordering::SeqCst) != 0
                    || gets_seen.is_some_and(|seen| gets.load(Ordering::SeqCst) != seen)
            },
            wait.deadline(),
        );
        if woke == futex::Wake::TimedOut {
            *wait = Wait::No;
        }
        Held::acquire(queue, side, *wait)
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        // Cannot fail: this thread took the lock in `acquire` and releases it once.
        let _ = Self::lock_of(self.queue, self.side).unlock("Queue");
    }
}

impl<T> Queue<T> {
    /// The ring's bytes: read only by the holder of the consumers' lock between `head`
    /// and `tail`, written only by the holder of the producers' lock past `tail`.
    pub(super) fn ring(&self) -> Ring {
        let data = self.shared.ring.data();
        // SAFETY: the region is mapped for as long as the queue (and so the returned Ring,
        // used only within the queue's methods) lives.
        unsafe { Ring::new(data.as_ptr().cast::<u8>(), data.len()) }
    }

    /// Whether `head` and `tail` can be the positions of this ring: only a process writing
    /// the headers without the locks makes them impossible.
    fn positions_hold(&self) -> bool {
        let head = self.get_hot().head.load(Ordering::Acquire);
        let tail = self.put_hot().tail.load(Ordering::Acquire);
        tail >= head && tail - head <= self.shared.ring.len() as u64 && tail < POSITION_LIMIT
    }

    /// Empties a ring whose state is corrupt (see `positions_hold`), so that it is usable
    /// again: what was in it cannot be read back anyway. Both locks held.
    fn reset(&self) {
        let (puts, gets) = (self.put_hot(), self.get_hot());
        let taken = gets.gets.load(Ordering::Relaxed);
        gets.intent_head.store(0, Ordering::Relaxed);
        gets.intent_gets.store(taken, Ordering::Relaxed);
        gets.head.store(0, Ordering::Release);
        gets.tail_seen.store(0, Ordering::Relaxed);
        gets.open_item.store(0, Ordering::Relaxed);
        puts.intent_tail.store(0, Ordering::Relaxed);
        puts.intent_puts.store(taken, Ordering::Relaxed);
        puts.tail.store(0, Ordering::Release);
        puts.puts.store(taken, Ordering::Release);
        puts.head_seen.store(0, Ordering::Relaxed);
        puts.gets_seen.store(taken, Ordering::Relaxed);
        puts.open_item.store(0, Ordering::Relaxed);
        let wait = &self.get_side().wait.0;
        // Marks of waiting producers against the old positions.
        wait.slots_wanted.store(0, Ordering::Relaxed);
        wait.bytes_wanted.store(0, Ordering::Relaxed);
        wait.bell.ring_always();
    }

    /// `reset`, from a consumer that holds no lock: takes both, in order. A producer in the
    /// middle of a streamed item is asked to give it up first, so that it lets go of its lock.
    pub(super) fn reset_from_outside(&self) -> Result<(), Error> {
        let wait = &self.get_side().wait.0;
        wait.reset_requested.store(1, Ordering::SeqCst);
        wait.bell.ring_always();
        let held = Held::acquire(self, Side::Producer, Wait::Forever);
        let reset = match held {
            Ok(Some(held)) => held.with_consumers_locked(|| self.reset()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        wait.reset_requested.store(0, Ordering::SeqCst);
        reset
    }
}
