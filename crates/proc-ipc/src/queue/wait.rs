//! Waiting without lost wake-ups (see the queue's docs): how long a put or get may wait
//! (`Wait`), watching a word for a few microseconds before sleeping on the other side's
//! doorbell (`await_change`), the marks of producers that ask the consumers for a batch of
//! room (`RoomMark`, answered by `GetWait::answer`), and the waits of a streamed item's two
//! ends for each other.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

use proc_sync::internal::{Deadline, Doorbell, futex};

use super::handle::Queue;
use super::layout::GetWait;

/// How many times a waiter looks at the watched word before it sleeps (each look is
/// followed by a `pause`): some microseconds, more than the other side takes to answer
/// when it runs on another core, and less than a futex sleep and wake-up cost on a virtual
/// machine whose idle core has to be woken.
const SPINS: u32 = 200;

/// How often a watching waiter offers its core to another runnable process (`sched_yield`,
/// which returns at once when there is none): when processes outnumber cores, the one it
/// waits for may be among them.
const YIELD_EVERY: u32 = 16;

/// How long a producer with a large item that does not fit in the ring's free room waits
/// for a consumer to appear before it hands the item over as a memory file instead.
pub(super) const CONSUMER_GRACE: Duration = Duration::from_millis(1);

/// How often a consumer whose deadline has passed in the middle of a streamed item looks
/// whether the item's producer is still alive.
pub(super) const PRODUCER_CHECK: Duration = Duration::from_millis(10);

/// How long a put or get may wait.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    No,
    Until(Deadline),
    Forever,
}

impl Wait {
    pub(super) fn deadline(&self) -> Option<&Deadline> {
        match self {
            Wait::Until(deadline) => Some(deadline),
            Wait::No | Wait::Forever => None,
        }
    }

    /// Whether no more waiting is allowed.
    pub(super) fn is_over(&self) -> bool {
        match self {
            Wait::No => true,
            Wait::Until(deadline) => deadline.has_passed(),
            Wait::Forever => false,
        }
    }
}

impl GetWait {
    /// Clears the marks that `head` and `gets` have now reached (consumers' lock, after
    /// moving them). SeqCst loads: they pair with a producer's setting of a mark (see
    /// `RoomMark::set`).
    #[inline]
    pub(super) fn answer(&self, head: u64, gets: u64) {
        for (mark, now) in [(&self.slots_wanted, gets), (&self.bytes_wanted, head)] {
            let wanted = mark.load(Ordering::SeqCst);
            if wanted != 0 && now >= wanted {
                answer_mark(mark, wanted);
            }
        }
    }
}

/// Clears `mark` if it still holds `wanted` (it may have been given up, or set again).
#[cold]
fn answer_mark(mark: &AtomicU64, wanted: u64) {
    // Release: the producer that sees it cleared then reads the positions that reached it.
    let _ = mark.compare_exchange(wanted, 0, Ordering::Release, Ordering::Relaxed);
}

/// A producer waiting for room asks for a batch of this part of the queue's item slots (or
/// of its ring's bytes) to be freed before it looks again: see `Queue::ask_for_room`.
const ROOM_BATCHES: u64 = 16;

/// The largest batch of item slots a waiting producer asks for.
const MAX_SLOT_BATCH: u64 = 64;

/// A waiting producer's mark in the consumers' `GetWait`: the consumer whose get reaches
/// the value clears it (`GetWait::answer`). The producer watches the mark, a line that the
/// consumers only read until then, instead of the positions they write at every get.
pub(super) struct RoomMark<'a> {
    mark: &'a AtomicU64,
    /// What the mark held once set: this producer's value, or another's already there.
    seen: u64,
    /// Whether this producer set it, and so clears it if it is still there at the end.
    own: bool,
    /// The position (`gets` or `head`) that clears the mark when it reaches `seen`.
    position: &'a AtomicU64,
}

impl<'a> RoomMark<'a> {
    /// Sets `mark` to `wanted` unless another producer's mark is there, which this one
    /// then watches too.
    fn set(mark: &'a AtomicU64, wanted: u64, position: &'a AtomicU64) -> Self {
        // SeqCst, here and in `watch`: with the consumer's SeqCst store of the position and
        // load of the mark (see `advance`), either the consumer sees the mark or this
        // producer sees the position that reached it.
        let (seen, own) = match mark.compare_exchange(0, wanted, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => (wanted, true),
            Err(other) => (other, false),
        };
        RoomMark {
            mark,
            seen,
            own,
            position,
        }
    }

    /// Watches the mark for a few microseconds at most (as `await_change` watches), until a
    /// consumer clears it or the queue is closed. The caller then waits for any change, so
    /// a consumer that stops before the batch is taken costs only this short watch.
    pub(super) fn watch(self, closed: &AtomicU32) {
        if self.position.load(Ordering::SeqCst) < self.seen {
            watch_for(|| {
                self.mark.load(Ordering::Acquire) != self.seen
                    || closed.load(Ordering::Relaxed) != 0
            });
        }
    }
}

impl Drop for RoomMark<'_> {
    fn drop(&mut self) {
        if self.own {
            let _ = self
                .mark
                .compare_exchange(self.seen, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// Watches `watched` until it no longer holds `seen` (or `also` holds): a few
/// microseconds of looking, then sleeps on `bell` until `deadline`.
pub(super) fn await_change(
    watched: &AtomicU64,
    seen: u64,
    bell: &Doorbell,
    also: impl Fn() -> bool,
    deadline: Option<&Deadline>,
) -> futex::Wake {
    let changed = || watched.load(Ordering::SeqCst) != seen || also();
    if watch_for(changed) {
        return futex::Wake::Recheck;
    }
    bell.sleep(changed, deadline)
}

/// Looks at `done` for a few microseconds: `SPINS` turns, each followed by a `pause` and
/// every `YIELD_EVERY`th by a `sched_yield`. Whether it came to hold.
fn watch_for(done: impl Fn() -> bool) -> bool {
    for spun in 1..=SPINS {
        if done() {
            return true;
        }
        std::hint::spin_loop();
        if spun % YIELD_EVERY == 0 {
            std::thread::yield_now();
        }
    }
    false
}

impl<T> Queue<T> {
    /// Waits, holding the consumers' lock, for the next frame of the streamed item being
    /// received, whose last frame so far ends at `seen_tail`. `false` when the wait must
    /// end: the item's producer is gone and `wait` allows no more waiting.
    pub(super) fn await_rest_of_item(&self, seen_tail: u64, wait: &Wait) -> bool {
        let tail = &self.put_hot().tail;
        let bell = &self.put_side().wait.0.bell;
        if !wait.is_over() {
            await_change(tail, seen_tail, bell, || false, wait.deadline());
            return true;
        }
        // Past the deadline: the item is acknowledged as soon as its last frame is in, so
        // wait on while its producer lives. A producer holds its lock from the first frame
        // of an item to the last (or to its `Abort`), so a free lock means it is dead,
        // unless it let go just after publishing that frame: look at `tail` once more.
        if !self.put_side().lock.0.is_locked() {
            fence(Ordering::Acquire);
            return tail.load(Ordering::Acquire) != seen_tail;
        }
        let soon = Deadline::after(PRODUCER_CHECK);
        await_change(tail, seen_tail, bell, || false, Some(&soon));
        true
    }

    /// Leaves the mark of a producer that found no room (producers' lock held, its view of
    /// the consumers' side just read again), asking the consumers for a batch of item slots
    /// when the queue is full by its item count, else a sixteenth of the ring, before it
    /// looks again. None: the ring holds nothing to wait for (a hand-over's socket was
    /// full).
    ///
    /// Taking room in batches keeps the producer off the consumers' lines while it waits:
    /// watching `head` itself, it would pull that line away from the consumer at every get,
    /// and the two would take turns one item at a time.
    pub(super) fn ask_for_room(&self) -> Option<RoomMark<'_>> {
        let (hot, gets, wait) = (self.put_hot(), self.get_hot(), &self.get_side().wait.0);
        let maxsize = self.shared.maxsize;
        let gets_seen = hot.gets_seen.load(Ordering::Relaxed);
        if maxsize != 0 && hot.puts.load(Ordering::Relaxed).saturating_sub(gets_seen) >= maxsize {
            let batch = (maxsize / ROOM_BATCHES).clamp(1, MAX_SLOT_BATCH);
            return Some(RoomMark::set(
                &wait.slots_wanted,
                gets_seen + batch,
                &gets.gets,
            ));
        }
        let head_seen = hot.head_seen.load(Ordering::Relaxed);
        let held = hot.tail.load(Ordering::Relaxed).saturating_sub(head_seen);
        let batch = (self.shared.ring.len() as u64 / ROOM_BATCHES).min(held);
        (batch > 0).then(|| RoomMark::set(&wait.bytes_wanted, head_seen + batch, &gets.head))
    }

    /// Whether a consumer is there to take the chunks of a streamed item: one holds the
    /// consumers' lock or sleeps waiting for items, now or within `CONSUMER_GRACE` (one
    /// that is busy with the item it got last comes back soon, when there is one).
    pub(super) fn consumer_present(&self) -> bool {
        let lock = &self.get_side().lock.0;
        let bell = &self.put_side().wait.0.bell;
        let present = || lock.is_locked() || bell.has_sleepers();
        let deadline = Deadline::after(CONSUMER_GRACE);
        loop {
            if watch_for(present) {
                return true;
            }
            if deadline.has_passed() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    /// The marks of producers waiting for room: slots, then bytes.
    fn marks<T>(q: &Queue<T>) -> [u64; 2] {
        let wait = &q.get_side().wait.0;
        [&wait.slots_wanted, &wait.bytes_wanted].map(|m| m.load(Ordering::SeqCst))
    }

    /// Puts `item` on the full `q` from another thread, takes one item from `q` once the
    /// put sleeps, and checks that the put then goes through and that the marks are
    /// `marks_after`: a waiting producer asks for a batch of room, and must neither watch
    /// its mark for long nor wait for the rest of the batch once consumers stop.
    fn one_get_lets_a_waiting_put_through<T>(q: &Queue<T>, item: T, marks_after: [u64; 2])
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.put_timeout(item, Duration::from_secs(30)).is_ok())
        };
        // Until the producer has watched its mark and gone to sleep on the consumers' bell.
        let started = std::time::Instant::now();
        while !q.get_side().wait.0.bell.has_sleepers() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the waiting producer never went to sleep"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        q.get().unwrap();
        assert!(
            producer.join().unwrap(),
            "the waiting put did not go through"
        );
        assert_eq!(marks(q), marks_after);
    }

    #[test]
    fn a_producer_waiting_for_item_slots_goes_on_when_one_is_freed_and_consumers_stop() {
        let q: Queue<u32> = Queue::new(64).unwrap(); // a batch of 4 slots
        for i in 0..64 {
            q.put(i).unwrap();
        }
        one_get_lets_a_waiting_put_through(&q, 64, [0, 0]);
        assert_eq!(q.len(), 64);
        assert_eq!(q.get().unwrap(), 1);
    }

    #[test]
    fn a_producer_waiting_for_ring_bytes_goes_on_when_one_item_is_taken_and_consumers_stop() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        let mut n = 0;
        while q.try_put(vec![n; 100]).is_ok() {
            n += 1;
        }
        one_get_lets_a_waiting_put_through(&q, vec![n; 100], [0, 0]);
        assert_eq!(q.get().unwrap(), vec![1; 100]);
    }

    #[test]
    fn a_mark_left_by_a_dead_producer_neither_blocks_others_nor_outlives_the_room_it_asked_for() {
        let q: Queue<u32> = Queue::new(16).unwrap(); // a batch of 1 slot
        for i in 0..16 {
            q.put(i).unwrap();
        }
        // A producer died watching for slots that will never be freed: the next one watches
        // its mark for a moment, then goes on when a slot is there.
        let slots = &q.get_side().wait.0.slots_wanted;
        slots.store(u64::MAX, Ordering::SeqCst);
        one_get_lets_a_waiting_put_through(&q, 16, [u64::MAX, 0]);
        // One whose room comes: the consumer that reaches it clears it.
        let gets = q.get_hot().gets.load(Ordering::SeqCst);
        slots.store(gets + 2, Ordering::SeqCst);
        q.get().unwrap();
        assert_eq!(marks(&q), [gets + 2, 0]);
        q.get().unwrap();
        assert_eq!(marks(&q), [0, 0]);
    }
}
