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
//!   (the `handoff` module).
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

use std::borrow::Borrow;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

use proc_core::codec;
use proc_sync::raw::{
    Deadline, Doorbell, MutexHeader, MutexKind, MutexRegion, RawMutex, futex, monotonic_nanos,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::chunk::{self, Assembly, Outcome};
use crate::error::{Error, GetError, PutError};
use crate::frame::{self, FrameError, FrameKind, HEADER, Handoff, Ring, RingPayload};
use crate::handoff::{self, Message, SideChannel, Taking};

/// The ring size of a queue made with [`Queue::new`]: 1 MiB. Only the pages that items
/// actually pass through take memory.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// The largest encoded item a queue made with [`Queue::new`] accepts: 64 MiB of data and
/// 64 KiB more for the encoding's own bytes (length prefixes and the like), so that a
/// `Vec<u8>` of 64 MiB fits. Only a size limit: memory is taken by what is actually put.
pub const DEFAULT_ITEM_LIMIT: usize = (64 << 20) + (64 << 10);

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
const CONSUMER_GRACE: Duration = Duration::from_millis(1);

/// How often a consumer whose deadline has passed in the middle of a streamed item looks
/// whether the item's producer is still alive.
const PRODUCER_CHECK: Duration = Duration::from_millis(10);

/// Positions stay below this, far from the end of u64: 2^62 bytes would take centuries to
/// pass through a queue.
const POSITION_LIMIT: u64 = 1 << 62;

/// What a queue does with an item larger than a quarter of its ring: [`QueueBuilder::large_items`].
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

/// The producers' side, at the start of the region that also holds the ring's bytes.
#[repr(C)]
pub(crate) struct PutSide {
    /// Guards the fields of `hot` and the ring's free bytes.
    lock: OwnLine<RawMutex>,
    /// Written by producers at every put; read by consumers (`tail`) when they run out.
    hot: OwnLine<PutHot>,
    /// Read by producers at every put, written only by sleeping consumers and `close`.
    wait: OwnLine<PutWait>,
}

#[repr(C)]
struct PutHot {
    /// Position just past the last published frame.
    tail: AtomicU64,
    /// Items ever published (an item's last frame counts it).
    puts: AtomicU64,
    /// Where the last publication moved (or was about to move) `tail` and `puts`: see
    /// "Consistency when a process dies".
    intent_tail: AtomicU64,
    intent_puts: AtomicU64,
    /// The id of the last hand-over message reserved; ids start at 1.
    next_handoff: AtomicU64,
    /// Non-zero between the first and the last frame of a streamed item.
    open_item: AtomicU64,
    /// `head` and `gets` as a producer last read them: they only grow, so room computed
    /// from them is never more than there is.
    head_seen: AtomicU64,
    gets_seen: AtomicU64,
}

#[repr(C)]
struct PutWait {
    /// Consumers sleep here; producers ring it after every publication.
    bell: Doorbell,
    closed: AtomicU32,
}

/// The consumers' side, in a region of its own.
#[repr(C)]
pub(crate) struct GetSide {
    /// Guards the fields of `hot` and the reading of frames.
    lock: OwnLine<RawMutex>,
    /// Written by consumers at every get; read by producers (`head`, `gets`) when full.
    hot: OwnLine<GetHot>,
    /// Read by consumers at every get, written only by waiting producers (their marks, and
    /// the count of sleepers) and, when a producer asked, by the consumer that answers.
    wait: OwnLine<GetWait>,
}

#[repr(C)]
struct GetHot {
    /// Position of the first unread frame.
    head: AtomicU64,
    /// Items ever taken.
    gets: AtomicU64,
    /// As `intent_tail` and `intent_puts`, for `head` and `gets`.
    intent_head: AtomicU64,
    intent_gets: AtomicU64,
    /// `tail` as a consumer last read it.
    tail_seen: AtomicU64,
    /// Non-zero while a consumer holds the lock in the middle of a streamed item.
    open_item: AtomicU64,
}

#[repr(C)]
struct GetWait {
    /// Producers sleep here; consumers ring it after moving `head`.
    bell: Doorbell,
    /// Set by a consumer that found the ring corrupt and waits for the producers' lock to
    /// empty it: a producer in the middle of a streamed item gives up and lets go.
    reset_requested: AtomicU32,
    /// The `gets` count that a producer watching for item slots waits for (0: none), and
    /// the `head` position that one watching for bytes waits for: the consumer whose get
    /// reaches it clears it (see `RoomMark`).
    slots_wanted: AtomicU64,
    bytes_wanted: AtomicU64,
}

impl GetWait {
    /// Clears the marks that `head` and `gets` have now reached (consumers' lock, after
    /// moving them). SeqCst loads: they pair with a producer's setting of a mark (see
    /// `RoomMark::set`).
    #[inline]
    fn answer(&self, head: u64, gets: u64) {
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
struct OwnLine<T>(T);

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
    consumer_seen: Recent,
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
struct Recent(AtomicU64);

impl Recent {
    fn mark(&self) {
        self.0.store(monotonic_nanos(), Ordering::Relaxed);
    }

    /// Whether the last mark is at most `within` old.
    fn within(&self, within: Duration) -> bool {
        match self.0.load(Ordering::Relaxed) {
            0 => false,
            marked => Duration::from_nanos(monotonic_nanos().saturating_sub(marked)) <= within,
        }
    }
}

/// A bounded FIFO queue of `T` between processes, as Python's `multiprocessing.Queue`.
///
/// Bounded by item count (`maxsize`, 0 for no item limit) and by the bytes of its ring.
/// Any number of producers and consumers, in any processes; items of one producer arrive in
/// the order it put them. A clone of the handle (or a copy inherited through fork) is the
/// same queue.
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::Queue;
///
/// let q: Queue<String> = Queue::new(3)?;
/// let producer = {
///     let q = q.clone();
///     let mut p = Process::new(move || {
///         for i in 0..5 {
///             q.put(format!("item {i}")).unwrap(); // blocks while 3 are waiting
///         }
///         q.close(); // no more items: consumers drain what is left, then stop
///     });
///     p.start()?;
///     p
/// };
/// let got: Vec<String> = q.iter().collect();
/// assert_eq!(got, ["item 0", "item 1", "item 2", "item 3", "item 4"]);
/// producer.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ## Byte buffers
/// A `Vec<u8>` goes through serde byte by byte (about 300 MiB/s); for binary payloads use
/// [`ByteBuf`](proc_core::codec::ByteBuf), which is copied as one block (GiB/s).
///
/// ## Handles as items
/// An item may hold multiproc handles (a `Lock`, a `Value`, another `Queue`, a
/// [`Connection`](crate::Connection), …): their descriptors travel with it, through the
/// queue's side channel, and the process that gets the item holds the same objects. Such an
/// item is handed over as a memory file whatever its size, and at most 252 descriptors go
/// with one item.
///
/// ```
/// use proc_ipc::Queue;
/// use proc_sync::Event;
///
/// let q: Queue<(String, Event)> = Queue::new(0)?;
/// let done = Event::new()?;
/// q.put(("ring when done".to_string(), done.clone()))?;
/// let (_what, event) = q.get()?;
/// event.set(); // the same event
/// assert!(done.is_set());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ## When a process dies
/// A process killed at any point inside `put` or `get` leaves the queue usable by all the
/// others. An item whose `put` returned `Ok` is delivered exactly once, unless a consumer
/// that had already begun to take it out of the queue dies before `get` returns it: that
/// item is gone with that consumer. A producer killed in the middle of a large item leaves
/// no part of it to anyone.
///
/// ## Large items
/// An item larger than a quarter of the ring is streamed through it in chunks while a
/// consumer copies them out (see [`LargeItems`]). Both ends then wait for each other until
/// the item is through: a producer past its deadline gives the item up (`Full`, nothing
/// delivered); a consumer that has begun to receive an item waits for its end beyond its
/// own deadline (and a `try_get` waits too) for as long as the item's producer is alive,
/// since that item is acknowledged the moment its last chunk is in the ring.
pub struct Queue<T> {
    shared: Arc<Shared>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            shared: Arc::clone(&self.shared),
            _items: PhantomData,
        }
    }
}

/// Configures a [`Queue`] before it is made: [`Queue::builder`].
#[must_use]
pub struct QueueBuilder<T> {
    maxsize: usize,
    ring_bytes: usize,
    item_limit: usize,
    large_items: LargeItems,
    _items: PhantomData<fn(T) -> T>,
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

    /// The size of the ring in bytes (default [`DEFAULT_RING_BYTES`], at least 64). Items
    /// larger than a quarter of it are streamed through it in chunks or handed over as
    /// memory files: see [`large_items`](Self::large_items).
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes;
        self
    }

    /// The largest encoded item the queue takes (default [`DEFAULT_ITEM_LIMIT`]). A larger
    /// one is refused by `put`, which hands it back.
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

/// How long a put or get may wait.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Deadline),
    Forever,
}

impl Wait {
    fn deadline(&self) -> Option<&Deadline> {
        match self {
            Wait::Until(deadline) => Some(deadline),
            Wait::No | Wait::Forever => None,
        }
    }

    /// Whether no more waiting is allowed.
    fn is_over(&self) -> bool {
        match self {
            Wait::No => true,
            Wait::Until(deadline) => deadline.has_passed(),
            Wait::Forever => false,
        }
    }
}

impl<T> Queue<T> {
    pub(crate) fn from_shared(shared: Shared) -> Self {
        Queue {
            shared: Arc::new(shared),
            _items: PhantomData,
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

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

    #[inline]
    fn put_side(&self) -> &PutSide {
        self.shared.ring.header()
    }

    #[inline]
    fn get_side(&self) -> &GetSide {
        self.shared.gets.header()
    }

    #[inline]
    fn put_hot(&self) -> &PutHot {
        &self.put_side().hot.0
    }

    #[inline]
    fn get_hot(&self) -> &GetHot {
        &self.get_side().hot.0
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

    fn put_with<I: Borrow<T>>(&self, item: I, wait: Wait) -> Result<(), PutError<I>> {
        with_scratch(|bytes| self.put_encoded_in(bytes, item, wait))
    }

    /// `put_with`, encoding into `bytes` (this thread's scratch buffer, empty). `item` is
    /// the item, or a reference to it: errors hand back what was given.
    fn put_encoded_in<I: Borrow<T>>(
        &self,
        bytes: &mut Vec<u8>,
        item: I,
        mut wait: Wait,
    ) -> Result<(), PutError<I>> {
        let shared = &*self.shared;
        let failed = |item, error| Err(PutError::Failed { item, error });
        let value: &T = item.borrow();
        // A small item is encoded here in full. One longer than an inline frame is only
        // measured by the same pass (no string or byte buffer past the cap is copied), to be
        // encoded again straight into the ring as it is streamed: one copy of its bytes.
        // `carried`: the descriptors of the handles the item holds (a Lock, a Queue, …).
        let (mut carried, len) =
            match proc_core::travel::encode_into_at_most(value, bytes, shared.inline_limit) {
                Ok(encoded) => encoded,
                Err(e) => return failed(item, e.into()),
            };
        if carried.len() >= handoff::MAX_FDS {
            let error = Error::TooManyHandles {
                count: carried.len(),
                limit: handoff::MAX_FDS - 1,
            };
            return failed(item, error);
        }
        if len > shared.item_limit {
            let error = Error::TooLarge {
                len,
                limit: shared.item_limit,
            };
            return failed(item, error);
        }
        let encoding = if len <= shared.inline_limit {
            Encoding::Done(bytes)
        } else if carried.is_empty() && shared.large_items == LargeItems::Streamed {
            Encoding::Deferred { item: value, len }
        } else {
            // Handed over as a memory file (it holds handles, which only a socket can
            // carry, or the queue hands every large item over): encoded in full here.
            match proc_core::travel::encode_into(value, bytes) {
                Ok(fds) => carried = fds,
                Err(e) => return failed(item, e.into()),
            }
            Encoding::Done(bytes)
        };
        // A large item that ends up handed over keeps its memory file across waits.
        let mut file = None;
        let mut held = match Held::acquire(self, Side::Producer, wait) {
            Ok(Some(held)) => held,
            Ok(None) => return Err(PutError::Full(item)),
            Err(error) => return failed(item, error),
        };
        loop {
            match held.try_publish(&encoding, &carried, &mut file, &mut wait) {
                Attempt::Done => return Ok(()),
                Attempt::Closed => return Err(PutError::Closed(item)),
                Attempt::GaveUp => return Err(PutError::Full(item)),
                Attempt::Failed(error) => return failed(item, error),
                Attempt::NoRoom => {}
            }
            match held.wait_for_change(&mut wait) {
                Ok(Some(relocked)) => held = relocked,
                Ok(None) => return Err(PutError::Full(item)),
                Err(error) => return failed(item, error),
            }
        }
    }

    fn get_with(&self, wait: Wait) -> Result<T, GetError> {
        with_scratch(|buf| self.get_through(buf, wait))
    }

    /// `get_with`, copying a whole item out into `buf` (this thread's scratch buffer)
    /// under the lock and decoding it after the lock is released. A streamed item is
    /// decoded as its chunks are copied out of the ring (see `receive_streamed`).
    fn get_through(&self, buf: &mut Vec<u8>, mut wait: Wait) -> Result<T, GetError> {
        let shared = &*self.shared;
        let mut held = match Held::acquire(self, Side::Consumer, wait)? {
            Some(held) => held,
            None => return Err(GetError::Empty),
        };
        let mut assembly = Assembly::new(shared.item_limit);
        let mut closed_and_drained = false;
        loop {
            let found = match held.next_frame() {
                (Ok(Some(found)), _) => found,
                (Err(corrupt), _) => return Err(self.corrupted(held, corrupt)),
                (Ok(None), tail) => {
                    if self.is_closed() {
                        if closed_and_drained {
                            return Err(GetError::Closed);
                        }
                        // A producer may have seen the queue open just before `close` and be
                        // publishing now: its put will return Ok, so its item must not be
                        // stranded. Wait until the producers' lock is free (any producer
                        // after that sees `closed`), then look once more. Without blocking
                        // on that lock: its holder may be streaming an item and waiting for
                        // a consumer to take the chunks.
                        drop(held);
                        match Held::try_acquire(self, Side::Producer)? {
                            Some(producers) => {
                                drop(producers);
                                closed_and_drained = true;
                            }
                            None => {
                                let soon = Deadline::after(PRODUCER_CHECK);
                                let bell = &self.put_side().wait.0.bell;
                                await_change(
                                    &self.put_hot().tail,
                                    tail,
                                    bell,
                                    || false,
                                    Some(&soon),
                                );
                            }
                        }
                        held = match Held::acquire(self, Side::Consumer, Wait::Forever)? {
                            Some(held) => held,
                            None => return Err(GetError::Closed),
                        };
                        continue;
                    }
                    match held.wait_for_change(&mut wait)? {
                        Some(relocked) => held = relocked,
                        None => return Err(GetError::Empty),
                    }
                    continue;
                }
            };
            // The payload lies between head and tail, which this thread reads under the
            // consumers' lock (see RingPayload).
            let mut payload = RingPayload {
                ring: self.ring(),
                offset: found.payload_offset,
            };
            match assembly.accept(found.kind, found.payload_len, &mut payload) {
                Outcome::Consumed { ends_item } => held.advance(found.next, ends_item),
                // Not while no item is being received; looked at again if it were.
                Outcome::Abandoned => {}
                Outcome::Whole => {
                    buf.clear();
                    chunk::append_from(buf, found.payload_len, 0, &mut payload);
                    held.advance(found.next, true);
                    drop(held);
                    return codec::decode(buf, shared.item_limit)
                        .map_err(|e| GetError::Failed(e.into()));
                }
                Outcome::Spoiled(detail) => {
                    held.advance(found.next, true);
                    return Err(GetError::Failed(Error::CorruptQueue { detail }));
                }
                Outcome::Handoff => {
                    buf.clear();
                    chunk::append_from(buf, found.payload_len, 0, &mut payload);
                    let (message, carried) = match self.take_handoff(buf) {
                        // Taken by a consumer that died; gone with it. Next frame.
                        HandedOver::Gone => {
                            held.advance(found.next, true);
                            continue;
                        }
                        // Not taken: the item stays first in the queue, whole.
                        HandedOver::Left(error) => return Err(GetError::Failed(error)),
                        HandedOver::Taken(taken) => {
                            held.advance(found.next, true);
                            drop(held);
                            taken?
                        }
                    };
                    let decoded = proc_core::travel::decode(&message, shared.item_limit, carried);
                    return decoded.map_err(|e| GetError::Failed(e.into()));
                }
                Outcome::Bytes { from, len, last } => {
                    let first = Chunk {
                        payload_offset: found.payload_offset,
                        at: from,
                        end: from + len,
                        last,
                        next: found.next,
                    };
                    match self.receive_streamed(&held, &mut assembly, &wait, first) {
                        Ok(received) => return received,
                        // Its producer died half way: look at what came after it.
                        Err(StreamStop::Abandoned) => debug_assert!(!assembly.is_receiving()),
                        Err(StreamStop::GaveUp) => return Err(GetError::Empty),
                        Err(StreamStop::Spoiled(detail)) => {
                            return Err(GetError::Failed(Error::CorruptQueue { detail }));
                        }
                        Err(StreamStop::Corrupt(corrupt)) => {
                            return Err(self.corrupted(held, corrupt));
                        }
                    }
                }
            }
        }
    }

    /// Receives the streamed item whose first frame is `first`, decoding it as its chunks
    /// are copied out of the ring: a large byte buffer or string is copied once, into the
    /// value. The consumers' lock is held from the first frame to the last (see the chunk
    /// module), and moving past each frame as it is read lets the producer write the next
    /// ones into its room. `Ok`: the item was taken (moved past its last frame, a get),
    /// whether or not it decoded. `Err`: what ended it before its last frame.
    fn receive_streamed(
        &self,
        held: &Held<'_, T>,
        assembly: &mut Assembly,
        wait: &Wait,
        first: Chunk,
    ) -> Result<Result<T, GetError>, StreamStop> {
        let open_item = &self.get_hot().open_item;
        open_item.store(1, Ordering::Relaxed);
        // Cleared however this ends, a panic in the item's `Deserialize` included (the
        // next consumer then skips the rest of the item, as a dead consumer's).
        let _open = OpenItem(open_item);
        let mut source = RingSource {
            held,
            assembly,
            wait,
            chunk: first,
        };
        // Err: the item ended before its last frame; `accept` has already dropped it when
        // its producer abandoned it.
        let decoded = match codec::decode_from::<T, _>(&mut source, self.shared.item_limit) {
            Ok(value) => Ok(value),
            Err(codec::StreamError::Codec(e)) => Err(GetError::Failed(e.into())),
            Err(codec::StreamError::Stopped(stop)) => return Err(stop),
        };
        // The item is taken once its last frame is. A value decodes only once its source
        // has ended (`decode_from` checks that no byte is left), so this skips the rest of
        // an item that did not decode.
        source.skip_rest()?;
        held.advance(source.chunk.next, true);
        Ok(decoded)
    }

    /// Drops what a consumer knows of the ring after finding bytes that are not a frame,
    /// and empties the ring, so that the queue is usable again: what is in it cannot be read
    /// back. Someone wrote the ring without the lock.
    fn corrupted(&self, held: Held<'_, T>, corrupt: FrameError) -> GetError {
        self.get_hot().open_item.store(0, Ordering::Relaxed);
        drop(held);
        match self.reset_from_outside() {
            Ok(()) => GetError::Failed(Error::CorruptQueue {
                detail: corrupt.to_string(),
            }),
            Err(e) => GetError::Failed(e),
        }
    }

    /// The bytes of the item a hand-over frame names, and the descriptors of the handles it
    /// holds (see [`HandedOver`]). Runs under the lock.
    fn take_handoff(&self, record: &[u8]) -> HandedOver {
        let shared = &*self.shared;
        let taken = |result| HandedOver::Taken(result);
        let Some(record) = Handoff::from_bytes(record) else {
            return taken(Err(Error::CorruptQueue {
                detail: "a hand-over frame does not hold a hand-over record".to_string(),
            }));
        };
        let side_failed = |e| taken(Err(Error::io("reading a queue's side channel", e)));
        loop {
            let id = match shared.side.peek_id() {
                Err(e) => return side_failed(e),
                Ok(None) => return HandedOver::Gone,
                Ok(Some(id)) if id > record.id => return HandedOver::Gone,
                Ok(Some(id)) => id,
            };
            if id < record.id {
                // An orphan of a producer that died before publishing its frame: dropped
                // without opening its descriptors.
                if let Err(e) = shared.side.discard() {
                    return side_failed(e);
                }
                continue;
            }
            // With its memory file, the datagram carries the descriptors of the handles.
            let carried = usize::try_from(record.handles)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let mut fds = match shared.side.take() {
                Err(e) => return side_failed(e),
                Ok(Taking::Empty) => return HandedOver::Gone,
                Ok(Taking::Exhausted { opened }) => {
                    return HandedOver::Left(Error::DescriptorsExhausted {
                        carried,
                        received: opened,
                        item_kept: true,
                    });
                }
                Ok(Taking::Taken { id, fds }) if id == record.id => fds,
                Ok(Taking::Taken { .. }) => {
                    return taken(Err(Error::CorruptQueue {
                        detail: "a hand-over message is not the one its frame names".to_string(),
                    }));
                }
            };
            if fds.len() != carried {
                return taken(Err(Error::DescriptorMismatch {
                    announced: carried,
                    arrived: fds.len(),
                }));
            }
            let file = fds.remove(0);
            let len = usize::try_from(record.len).unwrap_or(usize::MAX);
            if len > shared.item_limit {
                return taken(Err(Error::TooLarge {
                    len,
                    limit: shared.item_limit,
                }));
            }
            return taken(
                SideChannel::read_file(file, len)
                    .map(|message| (message, fds))
                    .map_err(|e| Error::io("reading a large item's memory file", e)),
            );
        }
    }
}

/// What became of the item a hand-over frame names.
enum HandedOver {
    /// Its memory file was taken by a consumer that died before moving past the frame: the
    /// item is gone with that consumer.
    Gone,
    /// It was taken from the side channel: its bytes and descriptors, or why they are not
    /// an item (an error for this item only).
    Taken(Result<(Message, Vec<OwnedFd>), Error>),
    /// It was left where it is, whole: this process could not open its descriptors.
    Left(Error),
}

/// The frame of a streamed item that a consumer is reading: its payload from `at` to
/// `end` is still to be copied out.
struct Chunk {
    /// Where the frame's payload starts in the ring.
    payload_offset: usize,
    at: usize,
    end: usize,
    /// It is the item's last frame.
    last: bool,
    /// The position just past the frame.
    next: u64,
}

/// Why a streamed item ended before its last frame, for a consumer.
enum StreamStop {
    /// Its producer gave it up or died: nothing of it was acknowledged. Read on.
    Abandoned,
    /// Its producer died, and the consumer's deadline has passed.
    GaveUp,
    /// Its chunks did not add up; it was moved past (a get).
    Spoiled(String),
    /// The ring holds bytes that are not a frame.
    Corrupt(FrameError),
}

/// Clears the consumers' mark of an item being received when dropped.
struct OpenItem<'a>(&'a AtomicU64);

impl Drop for OpenItem<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A streamed item's bytes, as the decoder reads them: copied out of the ring frame by
/// frame, under the consumers' lock, moving past each frame once it is read.
struct RingSource<'a, 'q, T> {
    held: &'a Held<'q, T>,
    assembly: &'a mut Assembly,
    wait: &'a Wait,
    chunk: Chunk,
}

impl<T> RingSource<'_, '_, T> {
    /// Moves past the frame being read (what is left of its bytes is skipped) to the
    /// item's next one.
    fn next_chunk(&mut self) -> Result<(), StreamStop> {
        let held = self.held;
        held.advance(self.chunk.next, false);
        loop {
            let found = match held.next_frame() {
                (Ok(Some(found)), _) => found,
                (Err(corrupt), _) => return Err(StreamStop::Corrupt(corrupt)),
                (Ok(None), tail) => {
                    // Wait for it, keeping the lock, so that no other consumer takes its
                    // next chunks for the rest of a dead one's item.
                    if !held.queue.await_rest_of_item(tail, self.wait) {
                        // Its producer died and our deadline has passed: nothing of it was
                        // acknowledged, and nothing of it will come.
                        return Err(StreamStop::GaveUp);
                    }
                    continue;
                }
            };
            let payload = RingPayload {
                ring: held.queue.ring(),
                offset: found.payload_offset,
            };
            match self.assembly.accept(found.kind, found.payload_len, payload) {
                Outcome::Bytes { from, len, last } => {
                    self.chunk = Chunk {
                        payload_offset: found.payload_offset,
                        at: from,
                        end: from + len,
                        last,
                        next: found.next,
                    };
                    return Ok(());
                }
                Outcome::Consumed { ends_item } => {
                    held.advance(found.next, ends_item);
                    // A chunk of an item that is spoiled: skipped up to its last frame.
                    if !self.assembly.is_receiving() {
                        return Err(StreamStop::Abandoned);
                    }
                }
                Outcome::Spoiled(detail) => {
                    held.advance(found.next, true);
                    return Err(StreamStop::Spoiled(detail));
                }
                // A frame that begins an item: the one being received was abandoned, and
                // this one is looked at again. (A whole item or a hand-over frame also
                // begins one, and comes as `Abandoned` while an item is being received.)
                Outcome::Abandoned | Outcome::Whole | Outcome::Handoff => {
                    return Err(StreamStop::Abandoned);
                }
            }
        }
    }

    /// Skips the rest of the item, up to the end of its last frame (where the position
    /// stays, for the caller to move past it).
    fn skip_rest(&mut self) -> Result<(), StreamStop> {
        while !self.chunk.last {
            self.next_chunk()?;
        }
        self.chunk.at = self.chunk.end;
        Ok(())
    }
}

impl<T> codec::Source for RingSource<'_, '_, T> {
    type Error = StreamStop;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, StreamStop> {
        while self.chunk.at == self.chunk.end {
            if self.chunk.last {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let chunk = &mut self.chunk;
        let len = at_most.min(chunk.end - chunk.at);
        let mut payload = RingPayload {
            ring: self.held.queue.ring(),
            offset: chunk.payload_offset,
        };
        // Within the frame's payload, which lies between head and tail (see RingPayload).
        chunk::append_from(buf, len, chunk.at, &mut payload);
        chunk.at += len;
        Ok(len)
    }

    fn left_at_most(&self) -> usize {
        let in_chunk = (self.chunk.end - self.chunk.at) as u64;
        usize::try_from(self.assembly.left() + in_chunk).unwrap_or(usize::MAX)
    }
}

/// A put error with the reference it was given dropped: the caller of a `put_ref` has the
/// item.
fn without_item<I>(error: PutError<I>) -> PutError<()> {
    match error {
        PutError::Full(_) => PutError::Full(()),
        PutError::Closed(_) => PutError::Closed(()),
        PutError::Failed { error, .. } => PutError::Failed { item: (), error },
    }
}

/// An item on its way into the ring.
enum Encoding<'i, T> {
    /// Encoded in full.
    Done(&'i [u8]),
    /// A large item, measured at `len` bytes: encoded as its frames are written.
    Deferred { item: &'i T, len: usize },
}

impl<T: Serialize> Encoding<'_, T> {
    fn len(&self) -> usize {
        match self {
            Encoding::Done(bytes) => bytes.len(),
            Encoding::Deferred { len, .. } => *len,
        }
    }

    /// The bytes in full, `len()` of them: for the memory file of an item handed over.
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
        match self {
            Encoding::Done(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
            Encoding::Deferred { item, len } => match codec::encode(item)? {
                bytes if bytes.len() == *len => Ok(bytes.into()),
                bytes => Err(changed(*len as u64, bytes.len() as u64)),
            },
        }
    }
}

/// The error for an item whose encoding came to `written` bytes (at least, if it was
/// stopped there) after it measured `measured`, or held handles only the second time.
fn changed(measured: u64, written: u64) -> Error {
    let at_least = if written > measured { "at least " } else { "" };
    Error::Codec(codec::CodecError::Encode(format!(
        "the item measured {measured} bytes without handles, then wrote {at_least}{written} \
         bytes or held handles: its Serialize implementation must write the same each time"
    )))
}

/// What one attempt at publishing an item under the producers' lock came to.
enum Attempt {
    /// Published (and the consumers' doorbell rung).
    Done,
    /// No room for it (or no item slot) now: wait for consumers, then try again.
    NoRoom,
    /// The queue is closed.
    Closed,
    /// A streamed item was given up half way (deadline passed): nothing delivered.
    GaveUp,
    Failed(Error),
}

/// What the ring and the item count allow a producer now.
struct Room {
    /// Whether an item more is within `maxsize`.
    slot: bool,
    /// Free bytes in the ring.
    free: u64,
}

/// The bytes the frames of a streamed item of `len` bytes take at most: its chunks, their
/// headers, the total length in the first and possibly an empty last frame.
fn streamed_len(len: usize, chunk_bytes: usize) -> u64 {
    let frames = len.div_ceil(chunk_bytes) as u64 + 1;
    (len + chunk::TOTAL_LEN) as u64 + frames * HEADER as u64
}

/// A producer waiting for room asks for a batch of this part of the queue's item slots (or
/// of its ring's bytes) to be freed before it looks again: see `Queue::ask_for_room`.
const ROOM_BATCHES: u64 = 16;

/// The largest batch of item slots a waiting producer asks for.
const MAX_SLOT_BATCH: u64 = 64;

/// A waiting producer's mark in the consumers' `GetWait`: the consumer whose get reaches
/// the value clears it (`GetWait::answer`). The producer watches the mark, a line that the
/// consumers only read until then, instead of the positions they write at every get.
struct RoomMark<'a> {
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
    fn watch(self, closed: &AtomicU32) {
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
fn await_change(
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
    /// The ring's bytes: read only by the holder of the consumers' lock between `head`
    /// and `tail`, written only by the holder of the producers' lock past `tail`.
    fn ring(&self) -> Ring {
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
    fn reset_from_outside(&self) -> Result<(), Error> {
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

    /// Waits, holding the consumers' lock, for the next frame of the streamed item being
    /// received, whose last frame so far ends at `seen_tail`. `false` when the wait must
    /// end: the item's producer is gone and `wait` allows no more waiting.
    fn await_rest_of_item(&self, seen_tail: u64, wait: &Wait) -> bool {
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
    fn ask_for_room(&self) -> Option<RoomMark<'_>> {
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
    fn consumer_present(&self) -> bool {
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

thread_local! {
    /// Each thread's buffer for encoding what it puts and copying out what it gets, so
    /// that an item costs no allocation beyond its own.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Scratch space kept between calls: more than this is given back after use. Enough for a
/// few MiB, so that a stream of large items does not take fresh pages for each.
const SCRATCH_KEPT: usize = 4 << 20;

/// Runs `f` with this thread's scratch buffer, emptied. A call from inside another (a
/// `Serialize` implementation that uses a queue) gets a fresh buffer.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > SCRATCH_KEPT {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Which side of the queue a lock or a waiter is on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Producer,
    Consumer,
}

/// One side's lock, held; released on drop.
struct Held<'q, T> {
    queue: &'q Queue<T>,
    side: Side,
}

impl<'q, T> Held<'q, T> {
    /// Takes `side`'s lock, waiting as `wait` allows; `Ok(None)` when the deadline passed.
    /// After a holder died, repairs that side's state.
    fn acquire(queue: &'q Queue<T>, side: Side, wait: Wait) -> Result<Option<Self>, Error> {
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
    fn try_acquire(queue: &'q Queue<T>, side: Side) -> Result<Option<Self>, Error> {
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
    fn room(&self, needed: u64, for_item: bool) -> Result<Room, Error> {
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

    /// Publishes the item if there is room: inline, streamed, or handed over as `file`
    /// (made here the first time it is needed). Producers' lock held.
    fn try_publish(
        &mut self,
        encoding: &Encoding<'_, T>,
        carried: &[OwnedFd],
        file: &mut Option<OwnedFd>,
        wait: &mut Wait,
    ) -> Attempt
    where
        T: Serialize,
    {
        let queue = self.queue;
        let shared = &*queue.shared;
        if queue.put_side().wait.0.closed.load(Ordering::SeqCst) != 0 {
            return Attempt::Closed;
        }
        // An item that holds handles goes through the side channel, whatever its size: only
        // a socket can carry its descriptors.
        let handles = !carried.is_empty();
        if let Encoding::Done(bytes) = encoding
            && bytes.len() <= shared.inline_limit
            && !handles
        {
            let needed = frame::frame_len(bytes.len());
            return match self.room(needed, true) {
                Ok(room) if room.slot && room.free >= needed => {
                    self.publish(FrameKind::Inline, &[bytes], true);
                    Attempt::Done
                }
                Ok(_) => Attempt::NoRoom,
                Err(error) => Attempt::Failed(error),
            };
        }
        // A deferred item is one the queue streams (it holds no handles).
        if let Encoding::Deferred { item, len } = *encoding
            && file.is_none()
        {
            // All its frames, and room for an `Abort` after them.
            let whole = streamed_len(len, shared.chunk_bytes) + HEADER as u64;
            let room = match self.room(whole, true) {
                Ok(room) => room,
                Err(error) => return Attempt::Failed(error),
            };
            if !room.slot {
                return Attempt::NoRoom;
            }
            // Streaming an item larger than the free room makes this producer wait for a
            // consumer: only when one is there, or took this process's last streamed item
            // just now (it is decoding that one, and comes back soon). Should none take the
            // chunks after all, they are taken back (see `take_back`) and the item is
            // handed over below. A try never waits: it streams only what fits at once.
            let streams = room.free >= whole
                || (!matches!(wait, Wait::No)
                    && (shared.consumer_seen.within(CONSUMER_GRACE) || queue.consumer_present()));
            if streams && let Some(attempt) = self.stream(item, len, wait) {
                return attempt;
            }
        }
        let needed = frame::frame_len(Handoff::LEN);
        match self.room(needed, true) {
            Ok(room) if room.slot && room.free >= needed => {}
            Ok(_) => return Attempt::NoRoom,
            Err(error) => return Attempt::Failed(error),
        }
        let file = match file {
            Some(file) => file,
            None => match encoding.bytes() {
                Err(error) => return Attempt::Failed(error),
                Ok(bytes) => match SideChannel::file_with(&bytes) {
                    Ok(made) => file.insert(made),
                    Err(e) => {
                        return Attempt::Failed(Error::io(
                            "writing a large item to a memory file",
                            e,
                        ));
                    }
                },
            },
        };
        // Reserved before it is sent: a producer killed after sending must not leave its id
        // to the next one (see the handoff module).
        let id = queue.put_hot().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        match shared.side.send(id, file, carried) {
            Ok(()) => {
                let record = Handoff {
                    id,
                    len: encoding.len() as u64,
                    handles: carried.len() as u64,
                };
                self.publish(FrameKind::Handoff, &[&record.to_bytes()], true);
                Attempt::Done
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Attempt::NoRoom,
            Err(e) => Attempt::Failed(Error::io("sending a large item's memory file", e)),
        }
    }

    /// Streams `item`, measured at `len` bytes, through the ring in chunks (see the `chunk`
    /// module), encoding it straight into its frames and keeping the producers' lock from
    /// the first to the last. `None`: the ring filled up with no consumer there to empty
    /// it; the frames written are abandoned and the caller hands the item over instead.
    fn stream(&mut self, item: &T, len: usize, wait: &mut Wait) -> Option<Attempt>
    where
        T: Serialize,
    {
        let mut writer = ChunkWriter::new(self, wait, len as u64);
        let written = match proc_core::travel::encode_to(item, &mut writer) {
            // Measured without handles, it must have none now either.
            Ok(carried) if carried.is_empty() => Ok(()),
            Ok(_) => Err(writer.changed(0)),
            Err(codec::StreamError::Stopped(stop)) => Err(stop),
            Err(codec::StreamError::Codec(e)) => Err(Stop::Failed(e.into())),
        };
        // Dropped before its last frame, the writer ends the item with an `Abort`.
        match written.and_then(|()| writer.finish()) {
            Ok(()) => Some(Attempt::Done),
            Err(Stop::NoConsumer) => {
                writer.take_back();
                None
            }
            Err(Stop::GaveUp) => {
                drop(writer);
                *wait = Wait::No;
                Some(Attempt::GaveUp)
            }
            Err(Stop::Failed(error)) => Some(Attempt::Failed(error)),
        }
    }

    /// Takes back the frames published from `start` on (the beginning of a streamed item
    /// that no consumer is there to take), so that they take no room in the ring: only if
    /// the consumers' lock is free and no consumer has read any of them. Producers' lock
    /// held. `false`: they stay, and the item must be ended with an `Abort`.
    ///
    /// Under both locks, nobody reads `tail` to act on it but this thread; `tail_seen`, the
    /// consumers' copy of it, is moved back first. Each store leaves a state that the next
    /// producer's repair completes, should this one die between two of them: `puts` does
    /// not change (no frame of the item counted), and `open_item` is still set, so the
    /// next producer writes an `Abort` where `tail` is, which a consumer skips.
    fn take_back(&self, start: u64) -> bool {
        debug_assert!(self.side == Side::Producer);
        let queue = self.queue;
        let Ok(Some(consumers)) = Held::try_acquire(queue, Side::Consumer) else {
            return false;
        };
        let gets = queue.get_hot();
        if gets.head.load(Ordering::Relaxed) > start {
            return false;
        }
        if gets.tail_seen.load(Ordering::Relaxed) > start {
            gets.tail_seen.store(start, Ordering::Relaxed);
        }
        let hot = queue.put_hot();
        hot.intent_tail.store(start, Ordering::Relaxed);
        hot.intent_puts
            .store(hot.puts.load(Ordering::Relaxed), Ordering::Release);
        hot.tail.store(start, Ordering::SeqCst);
        hot.open_item.store(0, Ordering::Release);
        drop(consumers);
        true
    }

    /// Writes a frame past `tail`, then publishes it (producers' lock): the intent, then
    /// `tail`, then the count, each a store that a process killed between two of them
    /// leaves repairable (see "Consistency when a process dies"); then rings the bell that
    /// consumers sleep on, as `advance` does on the other side.
    fn publish(&self, kind: FrameKind, parts: &[&[u8]], ends_item: bool) {
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
    fn publish_written(&self, new_tail: u64, ends_item: bool) {
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
    fn next_frame(&self) -> (Result<Option<frame::Frame>, FrameError>, u64) {
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
    fn advance(&self, new_head: u64, ends_item: bool) {
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
    fn wait_for_change(self, wait: &mut Wait) -> Result<Option<Self>, Error> {
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

/// Why a streamed item ended before its last frame.
enum Stop {
    /// The deadline passed (or a reset was asked for) while the ring stayed full.
    GaveUp,
    /// The ring is full and no consumer is there to empty it: hand the item over instead.
    NoConsumer,
    /// The item could not be written: among others, it wrote other bytes than it measured
    /// (see `ChunkWriter::changed`).
    Failed(Error),
}

/// What every chunk but the last keeps free after it: room for the `Abort` frame that ends
/// the item early, and for the hand-over frame that may follow it (see `Stop::NoConsumer`).
const STREAM_RESERVE: u64 = (HEADER + HEADER + Handoff::LEN) as u64;

/// The frame a [`ChunkWriter`] is filling: written past `tail`, published once full.
struct OpenFrame {
    /// Ring offset of its next byte.
    offset: usize,
    /// `tail` once it is published.
    new_tail: u64,
    /// Bytes of the item it still takes.
    left: usize,
    ends_item: bool,
}

/// Writes a streamed item into the ring as its bytes arrive (a codec [`Sink`](codec::Sink)
/// for an item encoded straight into its frames): frames of up to `chunk_bytes`, each
/// published once full, waiting for room as consumers take them. The producers' lock is
/// held throughout. Dropped before the item's last frame (an error, or a panic in the
/// item's `Serialize`), it ends the item with an `Abort`.
struct ChunkWriter<'h, 'q, T> {
    held: &'h Held<'q, T>,
    wait: &'h mut Wait,
    /// Where the item's first frame starts.
    start: u64,
    /// The item's length, announced in its first frame.
    total: u64,
    /// Bytes of the item written so far (published, or in the open frame).
    written: u64,
    /// Whether a frame of the item is published, so that ending it early takes an `Abort`.
    published: bool,
    open: Option<OpenFrame>,
    /// The item's last frame is published, or the item was abandoned.
    ended: bool,
}

impl<'h, 'q, T> ChunkWriter<'h, 'q, T> {
    fn new(held: &'h Held<'q, T>, wait: &'h mut Wait, total: u64) -> Self {
        let hot = held.queue.put_hot();
        hot.open_item.store(1, Ordering::Release);
        ChunkWriter {
            held,
            wait,
            start: hot.tail.load(Ordering::Relaxed),
            total,
            written: 0,
            published: false,
            open: None,
            ended: false,
        }
    }

    /// Copies `bytes` into the open frames, opening and publishing frames as they fill.
    fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        if self.written + bytes.len() as u64 > self.total {
            return Err(self.changed(bytes.len()));
        }
        let ring = self.held.queue.ring();
        while !bytes.is_empty() {
            let open = match self.open.take() {
                Some(open) => open,
                None => self.open_frame()?,
            };
            let n = open.left.min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            // SAFETY: the frame's bytes are free (open_frame checked the room), and this
            // thread holds the producers' lock; consumers read them once `tail` moves.
            let offset = unsafe { ring.copy_in(open.offset, now) };
            self.written += n as u64;
            bytes = rest;
            let open = OpenFrame {
                offset,
                left: open.left - n,
                ..open
            };
            if open.left == 0 {
                self.held.publish_written(open.new_tail, open.ends_item);
                self.published = true;
                self.ended = open.ends_item;
            } else {
                self.open = Some(open);
            }
        }
        Ok(())
    }

    /// Writes the header of the item's next frame, once there is room for it.
    fn open_frame(&mut self) -> Result<OpenFrame, Stop> {
        let queue = self.held.queue;
        let first = !self.published;
        let n = (self.total - self.written).min(queue.shared.chunk_bytes as u64) as usize;
        // The first frame is never the last one: an item is at least First and Last.
        let last = !first && self.written + n as u64 == self.total;
        let (kind, prefix) = match (first, last) {
            (true, _) => (FrameKind::ChunkFirst, chunk::TOTAL_LEN),
            (false, true) => (FrameKind::ChunkLast, 0),
            (false, false) => (FrameKind::ChunkMore, 0),
        };
        let payload = prefix + n;
        let reserve = if last { 0 } else { STREAM_RESERVE };
        self.await_room(frame::frame_len(payload) + reserve)?;
        let tail = queue.put_hot().tail.load(Ordering::Relaxed);
        let ring = queue.ring();
        // SAFETY: await_room found the frame's bytes free, and this thread holds the
        // producers' lock; consumers read them once `tail` moves past them.
        let mut offset =
            unsafe { ring.write_header(ring.offset_of(tail), frame::header(kind, payload)) };
        if first {
            // SAFETY: as above.
            offset = unsafe { ring.copy_in(offset, &self.total.to_le_bytes()) };
        }
        Ok(OpenFrame {
            offset,
            new_tail: tail + frame::frame_len(payload),
            left: n,
            ends_item: last,
        })
    }

    /// Returns once the ring has `needed` free bytes, waiting (the lock kept) for consumers
    /// to take chunks while one is there to.
    fn await_room(&mut self, needed: u64) -> Result<(), Stop> {
        let queue = self.held.queue;
        let consumers = queue.get_side();
        let reset = &consumers.wait.0.reset_requested;
        loop {
            let room = self.held.room(needed, false).map_err(Stop::Failed)?;
            if room.free >= needed {
                return Ok(());
            }
            if self.wait.is_over() || reset.load(Ordering::Relaxed) != 0 {
                return Err(Stop::GaveUp);
            }
            if !queue.consumer_present() {
                return Err(Stop::NoConsumer);
            }
            queue.shared.consumer_seen.mark();
            let seen = queue.put_hot().head_seen.load(Ordering::Relaxed);
            let woke = await_change(
                &consumers.hot.0.head,
                seen,
                &consumers.wait.0.bell,
                || reset.load(Ordering::Relaxed) != 0,
                self.wait.deadline(),
            );
            if woke == futex::Wake::TimedOut {
                return Err(Stop::GaveUp);
            }
        }
    }

    /// Checks that the whole item was written, and publishes an empty last frame if the
    /// first one held all of it.
    fn finish(&mut self) -> Result<(), Stop> {
        if self.written != self.total || self.open.is_some() {
            return Err(self.changed(0));
        }
        // A streamed item is longer than an inline frame: its first frame is published.
        debug_assert!(self.published);
        if !self.ended {
            self.await_room(frame::frame_len(0))?;
            self.held.publish(FrameKind::ChunkLast, &[], true);
            self.ended = true;
        }
        self.held
            .queue
            .put_hot()
            .open_item
            .store(0, Ordering::Release);
        Ok(())
    }

    /// Ends the item early, taking back what was published if no consumer has read any of
    /// it (see `Held::take_back`), so that it takes no room in the ring; else as `give_up`.
    fn take_back(&mut self) {
        if !self.ended && self.published && self.held.take_back(self.start) {
            self.open = None;
            self.ended = true;
        }
        self.give_up();
    }

    /// Ends the item early: an `Abort` frame if a frame of it was published, so that a
    /// consumer receiving it drops what it has.
    fn give_up(&mut self) {
        if !self.ended {
            self.open = None;
            if self.published {
                self.held.publish(FrameKind::Abort, &[], false);
            }
            self.held
                .queue
                .put_hot()
                .open_item
                .store(0, Ordering::Release);
            self.ended = true;
        }
    }

    /// The error for an item that wrote other bytes than it measured: what it wrote so
    /// far, and a piece of `refused` bytes that would have taken it past `total` (or held
    /// handles the second time).
    fn changed(&self, refused: usize) -> Stop {
        Stop::Failed(changed(self.total, self.written + refused as u64))
    }
}

impl<T> codec::Sink for ChunkWriter<'_, '_, T> {
    type Error = Stop;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        self.write_bytes(bytes)
    }
}

impl<T> Drop for ChunkWriter<'_, '_, T> {
    fn drop(&mut self) {
        self.give_up();
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        // Cannot fail: this thread took the lock in `acquire` and releases it once.
        let _ = Self::lock_of(self.queue, self.side).unlock("Queue");
    }
}

/// The items of a [`Queue`], until it is closed and drained: [`Queue::iter`].
pub struct Iter<'q, T> {
    queue: &'q Queue<T>,
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

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("maxsize", &self.shared.maxsize)
            .field("ring_bytes", &self.shared.ring.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same queue, seen with another item type: how a producer of the wrong type, or
    /// a buggy one, would fill it.
    fn as_queue_of<U, T>(q: &Queue<T>) -> Queue<U> {
        Queue {
            shared: Arc::clone(&q.shared),
            _items: PhantomData,
        }
    }

    #[test]
    fn bytes_that_do_not_decode_as_the_item_type_are_an_error_for_that_item_only() {
        let q: Queue<String> = Queue::new(0).unwrap();
        let wrong: Queue<Vec<u32>> = as_queue_of(&q);
        wrong.put(vec![u32::MAX; 3]).unwrap(); // not valid UTF-8 in any reading
        q.put("fine".to_string()).unwrap();
        assert!(matches!(q.get(), Err(GetError::Failed(Error::Codec(_)))));
        assert_eq!(q.get().unwrap(), "fine");
    }

    #[test]
    fn iter_skips_an_item_that_does_not_decode() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        as_queue_of::<u64, _>(&q).put(u64::MAX).unwrap();
        q.put(7).unwrap();
        q.close();
        assert_eq!(q.iter().collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn a_corrupt_ring_is_reported_dropped_and_the_queue_goes_on() {
        let q: Queue<u32> = Queue::new(0).unwrap();
        q.put(1).unwrap();
        // A writer that ignores the locks scribbles over the first frame's header.
        let data = q.shared.ring.data();
        // SAFETY: nobody else uses this queue now; the first 8 bytes are in the ring.
        unsafe { std::ptr::write_bytes(data.as_ptr().cast::<u8>(), 0xFF, 8) };
        assert!(matches!(
            q.get(),
            Err(GetError::Failed(Error::CorruptQueue { .. }))
        ));
        assert!(q.is_empty());
        q.put(2).unwrap();
        assert_eq!(q.get().unwrap(), 2);
    }

    #[test]
    fn positions_that_cannot_be_are_reported_and_repaired() {
        let q: Queue<u32> = Queue::new(0).unwrap();
        q.put_hot().tail.store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(
            q.get(),
            Err(GetError::Failed(Error::CorruptQueue { .. }))
        ));
        q.put(3).unwrap();
        assert_eq!(q.get().unwrap(), 3);
    }

    #[test]
    fn a_handoff_record_whose_file_was_taken_by_a_dead_consumer_is_skipped() {
        let q: Queue<Vec<u8>> = Queue::builder()
            .ring_bytes(1024)
            .large_items(LargeItems::HandedOver)
            .build()
            .unwrap();
        q.put(vec![1; 5000]).unwrap(); // handed over
        q.put(vec![2; 10]).unwrap(); // inline
        // A consumer takes the first item's file and dies before moving the ring's head.
        let Ok(Taking::Taken { id, fds }) = q.shared.side.take() else {
            panic!("the first item's file is in the side channel");
        };
        assert_eq!((id, fds.len()), (1, 1));
        drop(fds);
        assert_eq!(q.get().unwrap(), vec![2; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_hand_over_whose_descriptors_are_not_the_count_its_record_says_is_an_error_for_it_only() {
        for extra in [0, 3] {
            let q: Queue<(u8, proc_sync::Event)> = Queue::new(0).unwrap();
            let event = proc_sync::Event::new().unwrap();
            q.put((1, event.clone())).unwrap();
            // A holder of the queue swaps the item's datagram for one with another count of
            // descriptors: its memory file, and `extra` instead of the event's one.
            let Ok(Taking::Taken { id, fds }) = q.shared.side.take() else {
                panic!("the item's datagram is in the side channel");
            };
            let carried: Vec<OwnedFd> = (0..extra).map(|_| fds[1].try_clone().unwrap()).collect();
            q.shared.side.send(id, &fds[0], &carried).unwrap();
            q.put((2, event.clone())).unwrap();
            match q.try_get() {
                Err(GetError::Failed(Error::DescriptorMismatch {
                    announced: 2,
                    arrived,
                })) if arrived == 1 + extra => {}
                other => panic!("expected a descriptor mismatch, got {other:?}"),
            }
            assert_eq!(q.try_get().unwrap().0, 2, "the next item arrives");
        }
    }

    #[test]
    fn an_orphan_file_of_a_producer_that_died_before_publishing_is_dropped() {
        let q: Queue<Vec<u8>> = Queue::builder()
            .ring_bytes(1024)
            .large_items(LargeItems::HandedOver)
            .build()
            .unwrap();
        // A producer reserves id 1, sends its file, and dies before publishing the frame.
        let id = q.put_hot().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        let orphan = SideChannel::file_with(&[9; 3000]).unwrap();
        q.shared.side.send(id, &orphan, &[]).unwrap();
        q.put(vec![3; 4000]).unwrap();
        assert_eq!(q.get().unwrap(), vec![3; 4000]);
        assert!(matches!(q.try_get(), Err(GetError::Empty)));
    }

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

    /// Runs `f` with `side`'s lock held, in a thread that then ends without releasing
    /// it: as a process killed inside `f` leaves the lock to the next taker.
    fn die_holding<T: Send + 'static>(
        q: &Queue<T>,
        side: Side,
        f: impl FnOnce(&Held<'_, T>) + Send + 'static,
    ) {
        let q = q.clone();
        std::thread::spawn(move || {
            let held = Held::acquire(&q, side, Wait::Forever).unwrap().unwrap();
            f(&held);
            std::mem::forget(held);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_count_left_behind_by_a_producer_killed_after_publishing_is_finished_by_the_next() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        q.put(1).unwrap();
        // A producer that moved `tail` past its frame and died before counting it.
        die_holding(&q, Side::Producer, |held| {
            held.publish(FrameKind::Inline, &[&codec::encode(&2u8).unwrap()], true);
            held.queue.put_hot().puts.fetch_sub(1, Ordering::Relaxed);
        });
        assert_eq!(q.len(), 1);
        q.put(3).unwrap(); // takes the lock over and finishes the count
        assert_eq!(q.len(), 3);
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        assert_eq!(q.get().unwrap(), 3);
        assert!(q.is_empty());
    }

    #[test]
    fn a_producer_killed_before_moving_tail_leaves_the_count_alone() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        q.put(1).unwrap();
        die_holding(&q, Side::Producer, |held| {
            // Wrote down where it was going, then died.
            let hot = held.queue.put_hot();
            hot.intent_tail
                .store(hot.tail.load(Ordering::Relaxed) + 10, Ordering::Relaxed);
            hot.intent_puts.store(99, Ordering::Relaxed);
        });
        q.put(2).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        assert!(q.is_empty());
    }

    #[test]
    fn a_count_left_behind_by_a_consumer_killed_after_taking_is_finished_by_the_next() {
        let q: Queue<u8> = Queue::new(1).unwrap();
        q.put(1).unwrap();
        // A consumer that moved `head` past the item and died before counting it: the
        // item is gone with it, and the queue must not look full for ever.
        die_holding(&q, Side::Consumer, |held| {
            let hot = held.queue.get_hot();
            let tail = held.queue.put_hot().tail.load(Ordering::Acquire);
            held.advance(tail, true);
            hot.gets.fetch_sub(1, Ordering::Relaxed);
        });
        assert!(q.is_full());
        assert!(matches!(q.try_get(), Err(GetError::Empty))); // takes over, finishes the count
        assert!(q.is_empty());
        q.put(2).unwrap();
        assert_eq!(q.get().unwrap(), 2);
    }

    #[test]
    fn a_streamed_item_whose_producer_died_half_way_is_dropped_and_the_queue_goes_on() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        die_holding(&q, Side::Producer, |held| {
            held.queue.put_hot().open_item.store(1, Ordering::Relaxed);
            held.publish(
                FrameKind::ChunkFirst,
                &[&5000u64.to_le_bytes(), &[1; 500]],
                false,
            );
            held.publish(FrameKind::ChunkMore, &[&[1; 500]], false);
        });
        // The next producer ends the dead one's item with an Abort, then puts its own.
        q.put(vec![2; 3000]).unwrap();
        q.put(vec![3; 10]).unwrap();
        assert_eq!(q.get().unwrap(), vec![2; 3000]);
        assert_eq!(q.get().unwrap(), vec![3; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn the_rest_of_a_streamed_item_whose_consumer_died_is_skipped_and_counted() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        q.put(vec![1; 3000]).unwrap(); // fits at once: streamed with no consumer there
        q.put(vec![2; 10]).unwrap();
        assert_eq!(q.len(), 2);
        // A consumer takes the first chunk of the first item and dies.
        die_holding(&q, Side::Consumer, |held| {
            let queue = held.queue;
            let head = queue.get_hot().head.load(Ordering::Relaxed);
            let tail = queue.put_hot().tail.load(Ordering::Acquire);
            // SAFETY: the consumers' lock is held; the frame lies between head and tail.
            let first = unsafe { frame::decode(queue.ring(), head, tail) }
                .unwrap()
                .unwrap();
            assert_eq!(first.kind, FrameKind::ChunkFirst);
            held.advance(first.next, false);
        });
        assert_eq!(q.get().unwrap(), vec![2; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_put_that_gives_up_half_way_through_a_streamed_item_delivers_nothing_of_it() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        // A consumer is "there" (holds its lock) but takes nothing: the producer streams
        // what fits, waits, and gives up at its deadline.
        let consumers = &q.get_side().lock.0;
        consumers.lock("test").unwrap();
        let big = vec![5u8; 20_000];
        match q.put_timeout(big, Duration::from_millis(50)) {
            Err(PutError::Full(item)) => assert_eq!(item.len(), 20_000),
            other => panic!("expected Full, got {other:?}"),
        }
        consumers.unlock("test").unwrap();
        q.put(vec![6; 10]).unwrap();
        assert_eq!(q.get().unwrap(), vec![6; 10]);
        assert!(q.is_empty());
    }

    /// Serializes as a byte buffer of `len` bytes for its first `same_for` serializations,
    /// then of `len + grow` bytes, or panics half way if `panics`: a `Serialize` that
    /// writes something else each time. Decodes as any byte buffer.
    struct Fickle {
        len: usize,
        grow: isize,
        same_for: usize,
        panics: bool,
        calls: std::cell::Cell<usize>,
    }

    impl Fickle {
        fn new(len: usize, grow: isize, panics: bool) -> Self {
            // A large item is encoded twice: measured (past the inline cap), then streamed.
            Fickle {
                len,
                grow,
                same_for: 1,
                panics,
                calls: std::cell::Cell::new(0),
            }
        }
    }

    impl Serialize for Fickle {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            let call = self.calls.get();
            self.calls.set(call + 1);
            if call < self.same_for {
                return (codec::ByteBuf::from(vec![7; self.len]), 0u8).serialize(s);
            }
            let mut tuple = s.serialize_tuple(2)?;
            let len = self.len.saturating_add_signed(self.grow);
            tuple.serialize_element(&codec::ByteBuf::from(vec![7; len]))?;
            assert!(
                !self.panics,
                "a Serialize that panics half way through an item"
            );
            tuple.serialize_element(&0u8)?;
            tuple.end()
        }
    }

    impl<'de> serde::Deserialize<'de> for Fickle {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let (bytes, _): (codec::ByteBuf, u8) = serde::Deserialize::deserialize(d)?;
            Ok(Fickle::new(bytes.len(), 0, false))
        }
    }

    #[test]
    fn an_item_that_writes_other_bytes_than_it_measured_is_refused_and_nothing_of_it_delivered() {
        let q: Queue<Fickle> = Queue::builder().ring_bytes(4096).build().unwrap();
        for grow in [100, -100, -3000] {
            match q.put(Fickle::new(3000, grow, false)) {
                Err(PutError::Failed {
                    item,
                    error: Error::Codec(codec::CodecError::Encode(message)),
                }) => {
                    assert_eq!(item.len, 3000);
                    assert!(message.contains("measured 3004 bytes"), "{message}");
                }
                other => panic!("grow {grow}: expected an encode error, got {other:?}"),
            }
        }
        q.put(Fickle::new(10, 0, false)).unwrap();
        q.put(Fickle::new(2500, 0, false)).unwrap(); // streamed
        assert_eq!(q.get().unwrap().len, 10);
        assert_eq!(q.get().unwrap().len, 2500);
        assert!(q.is_empty());
    }

    #[test]
    fn a_serialize_that_panics_half_way_through_a_streamed_item_leaves_nothing_of_it() {
        let q: Queue<Fickle> = Queue::builder().ring_bytes(4096).build().unwrap();
        let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.put(Fickle::new(3000, 0, true))
        }));
        assert!(put.is_err());
        // The lock is free, the chunks written are abandoned, the queue goes on.
        q.put(Fickle::new(2500, 0, false)).unwrap();
        q.put(Fickle::new(10, 0, false)).unwrap();
        assert_eq!(q.get().unwrap().len, 2500);
        assert_eq!(q.get().unwrap().len, 10);
        assert!(q.is_empty());
    }

    #[test]
    fn a_large_item_streamed_for_a_consumer_that_is_gone_is_taken_back_and_handed_over() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        // As if a consumer had just taken an item streamed by this process: the next large
        // item is streamed without waiting to see one, fills the ring, finds nobody there.
        q.shared.consumer_seen.mark();
        q.put(vec![9; 20_000]).unwrap();
        // Its frames were taken back: the ring has room for small items again.
        for i in 0..3 {
            q.try_put(vec![i; 900]).unwrap();
        }
        assert_eq!(q.len(), 4);
        assert_eq!(q.get().unwrap(), vec![9; 20_000]);
        for i in 0..3 {
            assert_eq!(q.get().unwrap(), vec![i; 900]);
        }
        assert!(q.is_empty());
    }

    /// Encodes as a 3000-byte buffer the first time (past the inline limit of a 4 KiB ring),
    /// then as nothing at all: a large item measured at 3003 bytes that streams none.
    struct Vanishing(std::cell::Cell<usize>);

    impl Serialize for Vanishing {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let call = self.0.get();
            self.0.set(call + 1);
            match call {
                0 => codec::ByteBuf::from(vec![1; 3000]).serialize(s),
                _ => s.serialize_unit(),
            }
        }
    }

    impl<'de> serde::Deserialize<'de> for Vanishing {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            <()>::deserialize(d)?;
            Ok(Vanishing(std::cell::Cell::new(0)))
        }
    }

    #[test]
    fn a_large_item_that_streams_nothing_of_what_it_measured_is_refused_and_the_queue_goes_on() {
        let q: Queue<Vanishing> = Queue::builder().ring_bytes(4096).build().unwrap();
        match q.put(Vanishing(std::cell::Cell::new(0))) {
            Err(PutError::Failed {
                error: Error::Codec(codec::CodecError::Encode(message)),
                ..
            }) => assert!(message.contains("measured 3003 bytes"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(q.is_empty());
        q.put(Vanishing(std::cell::Cell::new(1))).unwrap();
        assert!(q.get_timeout(Duration::from_secs(10)).is_ok());
        assert!(q.is_empty());
    }

    /// A queue whose items of 20,000 bytes are streamed (past its inline limit) and fit
    /// in its ring whole, so that one thread can put them and then get them.
    fn streaming_queue<T>() -> Queue<T> {
        let q: Queue<T> = Queue::builder().ring_bytes(64 << 10).build().unwrap();
        assert!(q.shared.inline_limit < 20_000 && q.shared.chunk_bytes < 10_000);
        q
    }

    #[test]
    fn a_streamed_item_that_does_not_decode_is_an_error_for_it_only_and_its_rest_is_skipped() {
        let bytes: Queue<codec::ByteBuf> = streaming_queue();
        let strings: Queue<String> = as_queue_of(&bytes);
        // A length, then bytes that are not UTF-8: the decoder fails in the first chunk.
        bytes.put(codec::ByteBuf::from(vec![0xFF; 20_000])).unwrap();
        strings.put("next".to_string()).unwrap();
        match strings.get() {
            Err(GetError::Failed(e)) => assert!(e.is_about_one_item(), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(strings.get().unwrap(), "next");
        assert!(strings.is_empty());
    }

    #[test]
    fn a_streamed_item_with_bytes_after_its_value_is_an_error_and_the_next_one_arrives() {
        let pairs: Queue<(codec::ByteBuf, u64)> = streaming_queue();
        let bytes: Queue<codec::ByteBuf> = as_queue_of(&pairs);
        pairs
            .put((codec::ByteBuf::from(vec![1; 20_000]), 7))
            .unwrap();
        pairs.put((codec::ByteBuf::from(vec![2; 3]), 8)).unwrap();
        match bytes.get() {
            Err(GetError::Failed(e)) => assert!(e.to_string().contains("left over"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(pairs.get().unwrap(), (codec::ByteBuf::from(vec![2; 3]), 8));
        assert!(pairs.is_empty());
    }

    /// Reads the first of two byte buffers, then panics, half way through the item.
    struct PanicsHalfWay;

    impl Serialize for PanicsHalfWay {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_unit()
        }
    }

    impl<'de> serde::Deserialize<'de> for PanicsHalfWay {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Half;
            impl<'de> serde::de::Visitor<'de> for Half {
                type Value = PanicsHalfWay;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("two byte buffers")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<PanicsHalfWay, A::Error> {
                    let _: Option<codec::ByteBuf> = seq.next_element()?;
                    panic!("a Deserialize that panics half way through a streamed item");
                }
            }
            d.deserialize_tuple(2, Half)
        }
    }

    #[test]
    fn a_deserialize_that_panics_half_way_through_a_streamed_item_leaves_the_queue_usable() {
        type Pair = (codec::ByteBuf, codec::ByteBuf);
        let pairs: Queue<Pair> = streaming_queue();
        let panicky: Queue<PanicsHalfWay> = as_queue_of(&pairs);
        let half = codec::ByteBuf::from(vec![3; 20_000]);
        pairs.put((half.clone(), half)).unwrap();
        let small = (codec::ByteBuf::from(vec![4]), codec::ByteBuf::from(vec![5]));
        pairs.put(small.clone()).unwrap();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicky.get()));
        assert!(got.is_err());
        // Taken up to the panic: the rest of it is skipped, and counted, by the next get.
        assert_eq!(pairs.get_hot().open_item.load(Ordering::Relaxed), 0);
        assert_eq!(pairs.try_get().unwrap(), small);
        assert!(pairs.is_empty());
    }

    #[test]
    fn put_ref_leaves_the_item_with_the_caller_and_says_why_it_did_not_put_it() {
        let q: Queue<String> = Queue::new(1).unwrap();
        let item = "kept".to_string();
        q.put_ref(&item).unwrap();
        assert!(matches!(q.try_put_ref(&item), Err(PutError::Full(()))));
        q.close();
        match q.put_ref(&item) {
            Err(PutError::Closed(())) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(q.get().unwrap(), item);
    }

    #[test]
    fn a_streamed_item_whose_chunks_bring_more_than_announced_is_spoiled_and_the_next_arrives() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
        {
            let held = Held::acquire(&q, Side::Producer, Wait::Forever)
                .unwrap()
                .unwrap();
            held.publish(
                FrameKind::ChunkFirst,
                &[&10u64.to_le_bytes(), &[1; 4]],
                false,
            );
            held.publish(FrameKind::ChunkMore, &[&[1; 10]], false);
            held.publish(FrameKind::ChunkLast, &[], true);
        }
        q.put(vec![2; 10]).unwrap();
        match q.get() {
            Err(GetError::Failed(Error::CorruptQueue { detail })) => {
                assert!(detail.contains("more bytes than it announced"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(q.get().unwrap(), vec![2; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_get_whose_deadline_passes_in_a_dead_producers_streamed_item_is_empty_and_the_queue_goes_on()
     {
        let q: Queue<codec::ByteBuf> = Queue::builder().ring_bytes(4096).build().unwrap();
        let mut start = 5000u64.to_le_bytes().to_vec();
        start.extend(codec::encode(&codec::ByteBuf::from(vec![1; 4990])).unwrap());
        die_holding(&q, Side::Producer, move |held| {
            held.queue.put_hot().open_item.store(1, Ordering::Relaxed);
            held.publish(FrameKind::ChunkFirst, &[&start[..508]], false);
        });
        assert!(matches!(
            q.get_timeout(Duration::from_millis(20)),
            Err(GetError::Empty)
        ));
        assert_eq!(q.get_hot().open_item.load(Ordering::Relaxed), 0);
        // The next producer ends the dead one's item, then puts its own.
        q.put(codec::ByteBuf::from(vec![2; 10])).unwrap();
        assert_eq!(q.get().unwrap(), codec::ByteBuf::from(vec![2; 10]));
        assert!(q.is_empty());
    }
}
