//! What a queue is made with: its default limits, what it does with large items
//! (`LargeItems`), and the one check of the settings that a builder makes and a receiver
//! takes (`check_settings`).

/// The ring size of a queue made with [`Queue::new`](crate::Queue::new): 1 MiB. Only the
/// pages that items actually pass through take memory.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// The largest encoded item a queue made with [`Queue::new`](crate::Queue::new) accepts:
/// 64 MiB of data and 64 KiB more for the encoding's own bytes (length prefixes and the
/// like), so that a `Vec<u8>` of 64 MiB fits. Only a size limit: memory is taken by what is
/// actually put.
pub const DEFAULT_ITEM_LIMIT: usize = (64 << 20) + (64 << 10);

/// What a queue does with an item larger than a quarter of its ring:
/// [`QueueBuilder::large_items`](crate::QueueBuilder::large_items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LargeItems {
    /// Streamed through the ring in chunks while a consumer takes them (one copy into the
    /// ring, one out of it); handed over as a memory file when no consumer is there, so
    /// that a producer never waits for a consumer that may not come. The default.
    #[default]
    Streamed,
    /// Always handed over as a sealed memory file: a `put` never waits for a consumer to
    /// take part of the item, at the price of fresh pages for every item.
    HandedOver,
}

/// Why a queue with these settings cannot work, if it cannot: the one check of what a
/// builder makes and a receiver takes.
pub(crate) fn check_settings(ring_bytes: usize, item_limit: usize) -> Result<(), &'static str> {
    if ring_bytes < 64 {
        return Err("a queue's ring must be at least 64 bytes");
    }
    if item_limit == 0 {
        return Err("a queue's item limit must be at least 1 byte");
    }
    Ok(())
}
