//! `QueueBuilder`: a queue's settings, chosen before it is made.

use std::marker::PhantomData;

use proc_sync::internal::{MutexKind, MutexRegion};

use super::handle::Queue;
use super::layout::Shared;
use super::settings::{LargeItems, check_settings};
use crate::error::Error;
use crate::side_channel::SideChannel;

/// Configures a [`Queue`] before it is made: [`Queue::builder`].
#[must_use]
pub struct QueueBuilder<T> {
    pub(super) maxsize: usize,
    pub(super) ring_bytes: usize,
    pub(super) item_limit: usize,
    pub(super) large_items: LargeItems,
    pub(super) _items: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for QueueBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("maxsize", &self.maxsize)
            .field("ring_bytes", &self.ring_bytes)
            .field("item_limit", &self.item_limit)
            .field("large_items", &self.large_items)
            .finish()
    }
}

impl<T> QueueBuilder<T> {
    /// The most items the queue holds; 0 (the default) for no item limit, only the ring's.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// The size of the ring in bytes (default
    /// [`DEFAULT_RING_BYTES`](crate::DEFAULT_RING_BYTES), at least 64). Items larger than a
    /// quarter of it are streamed through it in chunks or handed over as memory files: see
    /// [`large_items`](Self::large_items).
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// The largest encoded item the queue takes (default
    /// [`DEFAULT_ITEM_LIMIT`](crate::DEFAULT_ITEM_LIMIT)). A larger one is refused by `put`,
    /// which hands it back.
    pub fn item_limit(mut self, bytes: usize) -> Self {
        self.item_limit = bytes;
        self
    }

    /// What to do with items larger than a quarter of the ring (default
    /// [`LargeItems::Streamed`]).
    ///
    /// ```
    /// use proc_ipc::{LargeItems, Queue};
    ///
    /// let q = Queue::<Vec<u8>>::builder()
    ///     .ring_bytes(4096)
    ///     .large_items(LargeItems::HandedOver)
    ///     .build()?;
    /// q.put(vec![7; 100_000])?; // a memory file: no consumer needs to be there
    /// assert_eq!(q.get()?.len(), 100_000);
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn large_items(mut self, large_items: LargeItems) -> Self {
        self.large_items = large_items;
        self
    }

    /// Makes the queue.
    ///
    /// ```
    /// let q = proc_ipc::Queue::<Vec<u8>>::builder()
    ///     .maxsize(10)
    ///     .ring_bytes(4096)
    ///     .item_limit(1 << 20)
    ///     .build()?;
    /// // Larger than the ring, and no consumer is waiting: handed over as a memory file.
    /// q.put(vec![7; 100_000])?;
    /// assert_eq!(q.get()?.len(), 100_000);
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn build(self) -> Result<Queue<T>, Error> {
        check_settings(self.ring_bytes, self.item_limit)
            .map_err(|reason| Error::InvalidArgument { reason })?;
        let ring = MutexRegion::new(c"multiproc-queue", MutexKind::ErrorCheck, self.ring_bytes)
            .map_err(Error::from)?;
        let gets = MutexRegion::new(c"multiproc-queue-gets", MutexKind::ErrorCheck, 0)
            .map_err(Error::from)?;
        let side =
            SideChannel::new().map_err(|e| Error::io("creating a queue's side channel", e))?;
        Ok(Queue::from_shared(Shared::new(
            ring,
            gets,
            side,
            self.maxsize as u64,
            self.item_limit,
            self.large_items,
        )))
    }
}
