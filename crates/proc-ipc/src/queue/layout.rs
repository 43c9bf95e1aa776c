//! The queue's two shared regions, field by field: the producers' side (`PutSide`, at the
//! start of the region that also holds the ring's bytes) and the consumers' side
//! (`GetSide`), each part on cache lines of its own (`OwnLine`); and `Shared`, what every
//! handle of one queue holds within a process.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use proc_sync::internal::{Doorbell, MutexHeader, MutexRegion, RawMutex, monotonic_nanos};

use super::settings::LargeItems;
use crate::chunk;
use crate::frame;
use crate::side_channel::SideChannel;

/// The producers' side, at the start of the region that also holds the ring's bytes.
#[repr(C)]
pub(crate) struct PutSide {
    /// Guards the fields of `hot` and the ring's free bytes.
    pub(super) lock: OwnLine<RawMutex>,
    /// Written by producers at every put; read by consumers (`tail`) when they run out.
    pub(super) hot: OwnLine<PutHot>,
    /// Read by producers at every put, written only by sleeping consumers and `close`.
    pub(super) wait: OwnLine<PutWait>,
}

#[repr(C)]
pub(super) struct PutHot {
    /// Position just past the last published frame.
    pub(super) tail: AtomicU64,
    /// Items ever published (an item's last frame counts it).
    pub(super) puts: AtomicU64,
    /// Where the last publication moved (or was about to move) `tail` and `puts`: see
    /// "Consistency when a process dies".
    pub(super) intent_tail: AtomicU64,
    pub(super) intent_puts: AtomicU64,
    /// The id of the last hand-over message reserved; ids start at 1.
    pub(super) next_handoff: AtomicU64,
    /// Non-zero between the first and the last frame of a streamed item.
    pub(super) open_item: AtomicU64,
    /// `head` and `gets` as a producer last read them: they only grow, so room computed
    /// from them is never more than there is.
    pub(super) head_seen: AtomicU64,
    pub(super) gets_seen: AtomicU64,
}

#[repr(C)]
pub(super) struct PutWait {
    /// Consumers sleep here; producers ring it after every publication.
    pub(super) bell: Doorbell,
    pub(super) closed: AtomicU32,
}

/// The consumers' side, in a region of its own.
#[repr(C)]
pub(crate) struct GetSide {
    /// Guards the fields of `hot` and the reading of frames.
    pub(super) lock: OwnLine<RawMutex>,
    /// Written by consumers at every get; read by producers (`head`, `gets`) when full.
    pub(super) hot: OwnLine<GetHot>,
    /// Read by consumers at every get, written only by waiting producers (their marks, and
    /// the count of sleepers) and, when a producer asked, by the consumer that answers.
    pub(super) wait: OwnLine<GetWait>,
}

#[repr(C)]
pub(super) struct GetHot {
    /// Position of the first unread frame.
    pub(super) head: AtomicU64,
    /// Items ever taken.
    pub(super) gets: AtomicU64,
    /// As `intent_tail` and `intent_puts`, for `head` and `gets`.
    pub(super) intent_head: AtomicU64,
    pub(super) intent_gets: AtomicU64,
    /// `tail` as a consumer last read it.
    pub(super) tail_seen: AtomicU64,
    /// Non-zero while a consumer holds the lock in the middle of a streamed item.
    pub(super) open_item: AtomicU64,
}

#[repr(C)]
pub(super) struct GetWait {
    /// Producers sleep here; consumers ring it after moving `head`.
    pub(super) bell: Doorbell,
    /// Set by a consumer that found the ring corrupt and waits for the producers' lock to
    /// empty it: a producer in the middle of a streamed item gives up and lets go.
    pub(super) reset_requested: AtomicU32,
    /// The `gets` count that a producer watching for item slots waits for (0: none), and
    /// the `head` position that one watching for bytes waits for: the consumer whose get
    /// reaches it clears it (see `RoomMark`).
    pub(super) slots_wanted: AtomicU64,
    pub(super) bytes_wanted: AtomicU64,
}

// SAFETY: both are #[repr(C)] with the RawMutex first (OwnLine is #[repr(C)] too); all-zero
// is a valid value of every other field (atomics), and those change only atomically.
unsafe impl MutexHeader for PutSide {
    fn mutex(&self) -> &RawMutex {
        &self.lock.0
    }
}

// SAFETY: as for PutSide.
unsafe impl MutexHeader for GetSide {
    fn mutex(&self) -> &RawMutex {
        &self.lock.0
    }
}

/// A value on cache lines of its own, so that what one side writes at every operation
/// does not share a line with what the other side reads at every operation.
#[repr(C, align(64))]
pub(super) struct OwnLine<T>(pub(super) T);

/// What every handle of one queue shares within a process.
pub(crate) struct Shared {
    /// The producers' side and the ring.
    pub(crate) ring: MutexRegion<PutSide, u8>,
    /// The consumers' side.
    pub(crate) gets: MutexRegion<GetSide, u8>,
    pub(crate) side: SideChannel,
    pub(crate) maxsize: u64,
    pub(crate) item_limit: usize,
    /// Items whose encoding is larger are streamed or handed over.
    pub(crate) inline_limit: usize,
    /// The largest chunk of a streamed item.
    pub(crate) chunk_bytes: usize,
    pub(crate) large_items: LargeItems,
    /// When a streamed item of this process last waited for a consumer that was there
    /// (see `Queue::consumer_seen_lately`), as `Recent` keeps it.
    pub(super) consumer_seen: Recent,
}

impl Shared {
    /// The state of a queue whose regions and side channel exist (made here, or received
    /// from another process), with the settings of this handle.
    pub(crate) fn new(
        ring: MutexRegion<PutSide, u8>,
        gets: MutexRegion<GetSide, u8>,
        side: SideChannel,
        maxsize: u64,
        item_limit: usize,
        large_items: LargeItems,
    ) -> Shared {
        let ring_bytes = ring.len();
        Shared {
            ring,
            gets,
            side,
            maxsize,
            item_limit,
            inline_limit: (ring_bytes / 4)
                .saturating_sub(frame::HEADER)
                .min(u32::MAX as usize),
            chunk_bytes: chunk::chunk_bytes(ring_bytes),
            large_items,
            consumer_seen: Recent::default(),
        }
    }
}

/// A moment, kept in an atomic: [`monotonic_nanos`] (0: none yet).
///
/// Read straight from the clock, not against a base kept in a lazily set static: a child
/// forked while another thread of its parent was setting such a static would wait for it
/// forever.
#[derive(Debug, Default)]
pub(super) struct Recent(AtomicU64);

impl Recent {
    pub(super) fn mark(&self) {
        self.0.store(monotonic_nanos(), Ordering::Relaxed);
    }

    /// Whether the last mark is at most `within` old.
    pub(super) fn within(&self, within: Duration) -> bool {
        match self.0.load(Ordering::Relaxed) {
            0 => false,
            marked => Duration::from_nanos(monotonic_nanos().saturating_sub(marked)) <= within,
        }
    }
}
