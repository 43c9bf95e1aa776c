//! [`Queue<T>`]: a bounded multi-producer multi-consumer queue between processes, as a ring
//! of frames in shared memory.
//!
//! Python's `Queue` is a pipe, a lock and a feeder thread; an item `put` is in the feeder's
//! buffer until the thread writes it, so a process that exits right after `put` can lose
//! it. Here `put` copies the item into shared memory before it returns: no feeder thread,
//! nothing to lose.
//!
//! ## Three ways through
//! - An item up to a quarter of the ring is one inline frame.
//! - A larger one is streamed through the ring in chunks (the `chunk` module) while a
//!   consumer copies them out, so that an item of any size passes through a small ring at
//!   the speed of copying memory. The encoding that would have made its inline frame
//!   measures it (past the inline limit nothing is copied, only counted); it is then
//!   encoded straight into its frames, and a consumer decodes it as it copies the frames
//!   out (a byte buffer or string straight into the vector it becomes): each side copies
//!   its bytes once. ([`Queue::put_ref`] spares a producer that keeps its item the clone
//!   that `put` would need.)
//! - When no consumer is there to take the chunks (so that streaming would block the
//!   producer until one comes), or when the queue was built with
//!   [`LargeItems::HandedOver`], a large item is written into a sealed memory file whose
//!   descriptor waits in a kernel socket buffer, and the ring gets a small hand-over frame
//!   (the `side_channel` module).
//!
//! ## Two sides, two locks
//! Producers and consumers each have a robust mutex of their own, in separate shared
//! regions: producers own `tail` (the end of the published frames) and the count of puts,
//! consumers own `head` (the first unread frame) and the count of gets. A producer reads
//! `head` only when its last view of it says the ring is full, a consumer reads `tail`
//! only when it has taken every frame up to its last view of it, so a producer and a
//! consumer never wait for each other's lock, and each side's lines of shared memory move
//! between cores only when the other side needs to know.
//!
//! ## Consistency when a process dies
//! Every operation does its work first and publishes it with one store: a producer writes
//! its frame past `tail`, then moves `tail`; a consumer copies its frame out, then moves
//! `head`. The count that goes with a position moves in a second store, and each side can
//! repair its own pair alone: before moving its position, an operation writes down where
//! it is going (`intent_tail` and `intent_puts`, or `intent_head` and `intent_gets`). Whoever
//! takes a lock from a dead owner finishes the count if the position had moved
//! (`position == intent`), and otherwise leaves it, since then nothing was published. No
//! repair needs the other side's lock, so a side that holds its own lock while it waits
//! for the other (the two ends of a streamed item) never blocks a repair.
//!
//! ## Waiting without lost wake-ups
//! A consumer waits for `tail` to move, a producer for `head`. A waiter first watches the
//! word for a few microseconds, which costs the other side nothing. Then it sleeps on the
//! other side's [`Doorbell`] (proc-sync's futex doorbell, whose docs give the protocol):
//! the other side stores the watched word SeqCst and then rings. So when nobody sleeps, a
//! put or get pays one `xchg` (the SeqCst store) and one read of a line that nobody writes,
//! and no system call.
//!
//! A producer that finds the queue full first asks for a batch of room: it leaves a mark
//! (the `gets` count, or the `head` position, it waits for) on a line that consumers only
//! read, and watches that mark until the consumer whose get reaches it clears it. Watching
//! `head` itself would pull the consumers' line away at every get, and a full queue would
//! move one item at a time with a cache miss on each side. The watch is as short as the
//! one above; after it, the producer waits for any change, so consumers that stop before
//! the batch is taken only delay it by that much.
//!
//! ## Where each part is
//! Each file uses only those above it; this one, the map, holds the public operations:
//! - `settings`: the default limits, [`LargeItems`], the check of a queue's settings.
//! - `scratch`: each thread's buffer for encoding and copying out items.
//! - `layout`: the two shared regions' headers (`PutSide`, `GetSide`) and `Shared`, what
//!   every handle of one queue holds within a process.
//! - `handle`: [`Queue`] itself, the handle over `Shared`, and the way to its two sides;
//!   the files below add the operations of their concern to it.
//! - `wait`: how long a put or get may wait, watching and doorbells, producers' marks for a
//!   batch of room.
//! - `ring`: one side's lock, held (`Held`): repair after a dead holder, room, publishing
//!   and taking frames, waiting for the other side; emptying a corrupt ring.
//! - `stream`: large items streamed through the ring in chunks, both ends.
//! - `handoff`: a consumer's take of an item handed over as a memory file.
//! - `put`: the put path: inline, streamed or handed over.
//! - `get`: the get path: whole, streamed or handed over; draining a closed queue.
//! - `builder`: [`QueueBuilder`].
//! - `wire`: how a queue travels to another process, as a handle.
//! - `readiness`: how `proc_core::wait` waits for a queue, which has no descriptor to poll.

mod builder;
mod get;
mod handle;
mod handoff;
mod layout;
mod put;
mod readiness;
mod ring;
mod scratch;
mod settings;
mod stream;
mod wait;
mod wire;

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proc_sync::internal::Deadline;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::QueueBuilder;
pub use handle::Queue;
use put::without_item;
pub use settings::{DEFAULT_ITEM_LIMIT, DEFAULT_RING_BYTES, LargeItems};
use wait::Wait;

use crate::error::{Error, GetError, PutError};

impl<T> Queue<T> {
    /// A queue that holds at most `maxsize` items (0: no item limit) in a ring of
    /// [`DEFAULT_RING_BYTES`].
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u32>::new(2)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.is_full());
    /// assert!(matches!(q.try_put(3), Err(proc_ipc::PutError::Full(3))));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<Self, Error> {
        Self::builder().maxsize(maxsize).build()
    }

    /// A builder for a queue with a chosen ring size and item limit.
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder {
            maxsize: 0,
            ring_bytes: DEFAULT_RING_BYTES,
            item_limit: DEFAULT_ITEM_LIMIT,
            large_items: LargeItems::default(),
            _items: PhantomData,
        }
    }

    /// The number of items in the queue now (others may change it at once).
    pub fn len(&self) -> usize {
        // Gets first: a get counted after the puts were read could make it look negative.
        let gets = self.get_hot().gets.load(Ordering::Acquire);
        let puts = self.put_hot().puts.load(Ordering::Acquire);
        usize::try_from(puts.saturating_sub(gets)).unwrap_or(usize::MAX)
    }

    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `maxsize` items now (never, with no item limit).
    pub fn is_full(&self) -> bool {
        self.shared.maxsize > 0 && self.len() as u64 >= self.shared.maxsize
    }

    /// The item limit given at creation; 0 for none.
    pub fn maxsize(&self) -> usize {
        self.shared.maxsize as usize
    }

    /// Whether [`close`](Self::close) was called, in any process.
    pub fn is_closed(&self) -> bool {
        self.put_side().wait.0.closed.load(Ordering::Acquire) != 0
    }

    /// Closes the queue, for every process: puts fail with `Closed` from now on, gets take
    /// what is left and then fail with `Closed`, so consumers can stop cleanly. Waiting
    /// producers and consumers wake up.
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.close();
    /// assert!(matches!(q.put(2), Err(proc_ipc::PutError::Closed(2))));
    /// assert_eq!(q.get()?, 1);
    /// assert!(matches!(q.get(), Err(proc_ipc::GetError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        let (puts, gets) = (self.put_side(), self.get_side());
        puts.wait.0.closed.store(1, Ordering::SeqCst);
        // Unconditionally: a waiter that read the sequence word before this bump and did
        // not see `closed` in its last look is asleep or about to be, and must wake.
        puts.wait.0.bell.ring_always();
        gets.wait.0.bell.ring_always();
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts `item` at the end, waiting while the queue is full. When it returns `Ok` the
    /// item is in shared memory: this process may exit at once and it is still delivered.
    /// Every error hands the item back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_with(item, Wait::Forever)
    }

    /// Puts `item`, waiting at most `timeout` for room: `Err(Full(item))` after that.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::Queue::<String>::new(1)?;
    /// q.put_timeout("first".to_string(), Duration::from_millis(10))?;
    /// let err = q.put_timeout("second".to_string(), Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.into_inner(), "second");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_with(item, Wait::Until(Deadline::after(timeout)))
    }

    /// Puts `item` if there is room now: `Err(Full(item))` otherwise, and also while
    /// another producer is in the middle of streaming a large item. A large item that does
    /// not fit in the ring at once is handed over as a memory file.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_with(item, Wait::No)
    }

    /// Takes the first item, waiting while the queue is empty; `Err(Closed)` once the queue
    /// is closed and drained.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_with(Wait::Forever)
    }

    /// Takes the first item, waiting at most `timeout`: `Err(Empty)` after that.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::Queue::<u8>::new(0)?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(proc_ipc::GetError::Empty)));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_with(Wait::Until(Deadline::after(timeout)))
    }

    /// Takes the first item if there is one now: `Err(Empty)` otherwise, and also while
    /// another consumer is in the middle of receiving a streamed item. Once it has begun
    /// to receive a streamed item itself, it waits for the rest (see [`Queue`]).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_with(Wait::No)
    }

    /// The items, taken one by one, waiting for each, until the queue is closed and
    /// drained. An item that does not decode as `T` is skipped: use [`get`](Self::get) to
    /// see such errors.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    /// Puts a copy of `*item` at the end, waiting while the queue is full, as
    /// [`put`](Self::put) does; the caller keeps the item. For an item that is put again
    /// and again, or still needed after: cloning it to `put` it would copy it once more
    /// (an item is always copied into the queue's shared memory). The errors are those of
    /// `put`, with nothing to hand back: the caller has the item.
    ///
    /// ```
    /// use proc_core::codec::ByteBuf;
    ///
    /// let q = proc_ipc::Queue::<ByteBuf>::new(0)?;
    /// let frame = ByteBuf::from(vec![7u8; 1 << 20]);
    /// q.put_ref(&frame)?;
    /// q.put_ref(&frame)?;
    /// assert_eq!(q.get()?, frame);
    /// assert_eq!(q.get()?.len(), frame.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_ref(&self, item: &T) -> Result<(), PutError<()>> {
        self.put_with(item, Wait::Forever).map_err(without_item)
    }

    /// [`put_ref`](Self::put_ref), waiting at most `timeout` for room: `Err(Full(()))`
    /// after that.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::Queue::<String>::new(1)?;
    /// let line = "kept".to_string();
    /// q.put_ref_timeout(&line, Duration::from_millis(10))?;
    /// let full = q.put_ref_timeout(&line, Duration::from_millis(10));
    /// assert!(matches!(full, Err(proc_ipc::PutError::Full(()))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_ref_timeout(&self, item: &T, timeout: Duration) -> Result<(), PutError<()>> {
        self.put_with(item, Wait::Until(Deadline::after(timeout)))
            .map_err(without_item)
    }

    /// [`put_ref`](Self::put_ref) if there is room now, as [`try_put`](Self::try_put).
    ///
    /// ```
    /// let q = proc_ipc::Queue::<u64>::new(1)?;
    /// q.try_put_ref(&7)?;
    /// assert!(matches!(q.try_put_ref(&8), Err(proc_ipc::PutError::Full(()))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_ref(&self, item: &T) -> Result<(), PutError<()>> {
        self.put_with(item, Wait::No).map_err(without_item)
    }
}

/// The items of a [`Queue`], until it is closed and drained: [`Queue::iter`].
pub struct Iter<'q, T> {
    queue: &'q Queue<T>,
}

impl<T> std::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("queue", self.queue).finish()
    }
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            match self.queue.get() {
                Ok(item) => return Some(item),
                // That item is spoiled (and taken); the queue goes on.
                Err(GetError::Failed(e)) if e.is_about_one_item() => {}
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
