//! [`Queue<T>`]: a bounded multi-producer multi-consumer queue between processes, as a ring
//! of frames in shared memory.
//!
//! Python's `Queue` is a pipe, a lock and a feeder thread; an item `put` is in the feeder's
//! buffer until the thread writes it, so a process that exits right after `put` can lose
//! it. Here `put` copies the item into shared memory (or, when it is larger than a quarter of
//! the ring, into a memory file whose descriptor sits in a kernel socket buffer, see the
//! `handoff` module) before it returns: no feeder thread, nothing to lose.
//!
//! ## Consistency when a process dies
//! One robust mutex guards the ring's state (`head`, `tail`, the item count). Every
//! operation does its work first and publishes it with one store last: a producer writes
//! its frame past `tail`, then moves `tail`; a consumer copies its frame out, then moves
//! `head`. A process killed at any instruction in between leaves either the old state or the
//! new one. The item count, which moves in a second store, is derived state: the next
//! process to take the mutex from a dead owner counts the frames between `head` and `tail`
//! again. Waiting uses futexes on two sequence words, bumped by every put and every get;
//! a process killed while waiting leaves nothing behind but a waiter count that is one too
//! high, which only costs a spare wake-up.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use proc_core::codec;
use proc_sync::raw::{Deadline, MutexHeader, MutexKind, MutexRegion, RawMutex, futex};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, GetError, PutError};
use crate::frame::{self, FrameError, FrameKind, Handoff};
use crate::handoff::{Message, SideChannel};

/// The ring size of a queue made with [`Queue::new`]: 1 MiB. Only the pages that items
/// actually pass through take memory.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// The largest encoded item a queue made with [`Queue::new`] accepts: 64 MiB of data and
/// 64 KiB more for the encoding's own bytes (length prefixes and the like), so that a
/// `Vec<u8>` of 64 MiB fits. Only a size limit: memory is taken by what is actually put.
pub const DEFAULT_ITEM_LIMIT: usize = (64 << 20) + (64 << 10);

/// How many times a waiter looks at the sequence word before it sleeps on it.
const SPINS: u32 = 200;

/// The ring's state, at the start of the shared region, followed by the ring's bytes.
#[repr(C)]
struct Header {
    /// Guards `head`, `tail`, `items`, `next_handoff` and the ring's bytes.
    mutex: RawMutex,
    /// Bumped by every put (and by `close`); consumers wait on it.
    put_seq: AtomicU32,
    /// Bumped by every get (and by `close`); producers wait on it.
    get_seq: AtomicU32,
    consumers_waiting: AtomicU32,
    producers_waiting: AtomicU32,
    closed: AtomicU32,
    /// Position of the first unread frame.
    head: AtomicU64,
    /// Position just past the last published frame.
    tail: AtomicU64,
    /// Frames between `head` and `tail` (recounted after a holder died).
    items: AtomicU64,
    /// The id of the last hand-over message reserved; ids start at 1.
    next_handoff: AtomicU64,
}

// SAFETY: Header is #[repr(C)] with the RawMutex first; all-zero is a valid value of every
// other field (atomics), and those change only atomically.
unsafe impl MutexHeader for Header {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

/// What every handle of one queue shares within a process.
struct Shared {
    region: MutexRegion<Header, u8>,
    side: SideChannel,
    maxsize: u64,
    item_limit: usize,
    /// Items whose encoding is larger go through the side channel.
    inline_limit: usize,
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
/// ## When a process dies
/// A process killed at any point inside `put` or `get` leaves the queue usable by all the
/// others. An item whose `put` returned `Ok` is delivered exactly once, unless a consumer
/// that had already taken it out of the queue dies before `get` returns it: that item is
/// gone with that consumer.
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
    _items: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for QueueBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("maxsize", &self.maxsize)
            .field("ring_bytes", &self.ring_bytes)
            .field("item_limit", &self.item_limit)
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
    /// larger than a quarter of it are handed over as memory files instead.
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

    /// Makes the queue.
    ///
    /// ```
    /// let q = proc_ipc::Queue::<Vec<u8>>::builder()
    ///     .maxsize(10)
    ///     .ring_bytes(4096)
    ///     .item_limit(1 << 20)
    ///     .build()?;
    /// q.put(vec![7; 100_000])?; // larger than the ring: handed over as a memory file
    /// assert_eq!(q.get()?.len(), 100_000);
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn build(self) -> Result<Queue<T>, Error> {
        if self.ring_bytes < 64 {
            return Err(Error::InvalidArgument {
                reason: "a queue's ring must be at least 64 bytes",
            });
        }
        let region = MutexRegion::new(c"multiproc-queue", MutexKind::ErrorCheck, self.ring_bytes)
            .map_err(Error::from)?;
        let side =
            SideChannel::new().map_err(|e| Error::io("creating a queue's side channel", e))?;
        let inline_limit = (self.ring_bytes / 4)
            .saturating_sub(frame::HEADER)
            .min(u32::MAX as usize);
        Ok(Queue {
            shared: Arc::new(Shared {
                region,
                side,
                maxsize: self.maxsize as u64,
                item_limit: self.item_limit,
                inline_limit,
            }),
            _items: PhantomData,
        })
    }
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
}

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
            _items: PhantomData,
        }
    }

    /// The number of items in the queue now (others may change it at once).
    pub fn len(&self) -> usize {
        usize::try_from(self.header().items.load(Ordering::Acquire)).unwrap_or(usize::MAX)
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
        self.header().closed.load(Ordering::Acquire) != 0
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
        let header = self.header();
        header.closed.store(1, Ordering::SeqCst);
        header.put_seq.fetch_add(1, Ordering::SeqCst);
        header.get_seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&header.put_seq);
        futex::wake_all(&header.get_seq);
    }

    fn header(&self) -> &Header {
        self.shared.region.header()
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

    /// Puts `item` if there is room now: `Err(Full(item))` otherwise.
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

    /// Takes the first item if there is one now: `Err(Empty)` otherwise.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_with(Wait::No)
    }

    /// The items, taken one by one, waiting for each, until the queue is closed and
    /// drained. An item that does not decode as `T` is skipped: use [`get`](Self::get) to
    /// see such errors.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    fn put_with(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        with_scratch(|bytes| self.put_encoded_in(bytes, item, wait))
    }

    /// `put_with`, encoding into `bytes` (this thread's scratch buffer, empty).
    fn put_encoded_in(
        &self,
        bytes: &mut Vec<u8>,
        item: T,
        mut wait: Wait,
    ) -> Result<(), PutError<T>> {
        let shared = &*self.shared;
        if let Err(e) = codec::encode_into(&item, bytes) {
            return Err(PutError::Failed {
                item,
                error: e.into(),
            });
        }
        let bytes = &bytes[..];
        if bytes.len() > shared.item_limit {
            let error = Error::TooLarge {
                len: bytes.len(),
                limit: shared.item_limit,
            };
            return Err(PutError::Failed { item, error });
        }
        // A large item goes into its memory file before the lock is taken.
        let file = if bytes.len() > shared.inline_limit {
            match SideChannel::file_with(bytes) {
                Ok(file) => Some(file),
                Err(e) => {
                    let error = Error::io("writing a large item to a memory file", e);
                    return Err(PutError::Failed { item, error });
                }
            }
        } else {
            None
        };
        let payload_len = if file.is_some() {
            Handoff::LEN
        } else {
            bytes.len()
        };
        let needed = frame::frame_len(payload_len);
        let capacity = shared.region.len() as u64;

        let mut locked = match Locked::acquire(self, wait) {
            Ok(Some(locked)) => locked,
            Ok(None) => return Err(PutError::Full(item)),
            Err(error) => return Err(PutError::Failed { item, error }),
        };
        loop {
            let header = locked.header();
            if header.closed.load(Ordering::Acquire) != 0 {
                return Err(PutError::Closed(item));
            }
            if !locked.positions_hold() {
                // A consumer would report the corruption; a producer repairs and goes on.
                locked.reset();
            }
            let head = header.head.load(Ordering::Relaxed);
            let tail = header.tail.load(Ordering::Relaxed);
            let items = header.items.load(Ordering::Relaxed);
            let room_for_item = shared.maxsize == 0 || items < shared.maxsize;
            let free = capacity.saturating_sub(tail.wrapping_sub(head));
            if room_for_item && free >= needed {
                let sent = match &file {
                    None => true,
                    Some(file) => {
                        // Reserved before it is sent: a producer killed after sending must
                        // not leave its id to the next one (see the handoff module).
                        let id = header.next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
                        match shared.side.send(id, file) {
                            Ok(()) => {
                                let record = Handoff {
                                    id,
                                    len: bytes.len() as u64,
                                };
                                locked.publish(FrameKind::Handoff, &record.to_bytes());
                                true
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                            Err(e) => {
                                let error = Error::io("sending a large item's memory file", e);
                                return Err(PutError::Failed { item, error });
                            }
                        }
                    }
                };
                if sent {
                    if file.is_none() {
                        locked.publish(FrameKind::Inline, bytes);
                    }
                    drop(locked);
                    let header = self.header();
                    if header.consumers_waiting.load(Ordering::SeqCst) > 0 {
                        futex::wake_all(&header.put_seq);
                    }
                    return Ok(());
                }
            }
            match locked.wait_for_change(Side::Producer, &mut wait) {
                Ok(Some(relocked)) => locked = relocked,
                Ok(None) => return Err(PutError::Full(item)),
                Err(error) => return Err(PutError::Failed { item, error }),
            }
        }
    }

    fn get_with(&self, wait: Wait) -> Result<T, GetError> {
        with_scratch(|buf| self.get_through(buf, wait))
    }

    /// `get_with`, copying the frame out into `buf` (this thread's scratch buffer) under
    /// the lock and decoding it after the lock is released.
    fn get_through(&self, buf: &mut Vec<u8>, mut wait: Wait) -> Result<T, GetError> {
        let shared = &*self.shared;
        let mut locked = match Locked::acquire(self, wait)? {
            Some(locked) => locked,
            None => return Err(GetError::Empty),
        };
        loop {
            let header = locked.header();
            let head = header.head.load(Ordering::Relaxed);
            let tail = header.tail.load(Ordering::Relaxed);
            let decoded = if locked.positions_hold() {
                frame::decode(locked.ring(), head, tail)
            } else {
                Err(FrameError::Positions {
                    head,
                    tail,
                    capacity: locked.ring().len(),
                })
            };
            match decoded {
                Err(corrupt) => {
                    // Someone wrote the ring without the lock. What is in it cannot be read
                    // back; drop it so that the queue is usable again.
                    locked.reset();
                    drop(locked);
                    self.wake_producers();
                    return Err(GetError::Failed(Error::CorruptQueue {
                        detail: corrupt.to_string(),
                    }));
                }
                Ok(Some(found)) => {
                    buf.clear();
                    buf.resize(found.payload_len, 0);
                    frame::copy_out(locked.ring(), found.payload_at, buf);
                    let large = match found.kind {
                        FrameKind::Inline => None,
                        FrameKind::Handoff => match self.take_handoff(buf) {
                            Some(message) => Some(message),
                            None => {
                                // Taken by a consumer that died: gone with it. Next frame.
                                locked.consume(found.next);
                                continue;
                            }
                        },
                    };
                    locked.consume(found.next);
                    drop(locked);
                    self.wake_producers();
                    let decoded = match large {
                        None => codec::decode(buf, shared.item_limit),
                        Some(message) => codec::decode(&message?, shared.item_limit),
                    };
                    return decoded.map_err(|e| GetError::Failed(e.into()));
                }
                Ok(None) => {
                    if header.closed.load(Ordering::Acquire) != 0 {
                        return Err(GetError::Closed);
                    }
                }
            }
            match locked.wait_for_change(Side::Consumer, &mut wait)? {
                Some(relocked) => locked = relocked,
                None => return Err(GetError::Empty),
            }
        }
    }

    /// The bytes of the large item a hand-over frame names; `None` when its memory file is
    /// gone with a consumer that died (see the handoff module). Runs under the lock.
    fn take_handoff(&self, record: &[u8]) -> Option<Result<Message, Error>> {
        let shared = &*self.shared;
        let Some(record) = Handoff::from_bytes(record) else {
            return Some(Err(Error::CorruptQueue {
                detail: "a hand-over frame does not hold a hand-over record".to_string(),
            }));
        };
        loop {
            match shared.side.peek_id() {
                Err(e) => return Some(Err(Error::io("reading a queue's side channel", e))),
                Ok(None) => return None,
                Ok(Some(id)) if id > record.id => return None,
                Ok(Some(id)) => {
                    let taken = shared.side.take();
                    if id < record.id {
                        // An orphan of a producer that died before publishing its frame.
                        continue;
                    }
                    return Some(match taken {
                        Ok((taken_id, Some(file))) if taken_id == record.id => {
                            let len = usize::try_from(record.len).unwrap_or(usize::MAX);
                            if len > shared.item_limit {
                                Err(Error::TooLarge {
                                    len,
                                    limit: shared.item_limit,
                                })
                            } else {
                                SideChannel::read_file(file, len)
                                    .map_err(|e| Error::io("reading a large item's memory file", e))
                            }
                        }
                        Ok(_) => Err(Error::CorruptQueue {
                            detail: "a hand-over message came without its memory file".to_string(),
                        }),
                        Err(e) => Err(Error::io("receiving a large item's memory file", e)),
                    });
                }
            }
        }
    }

    fn wake_producers(&self) {
        let header = self.header();
        if header.producers_waiting.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&header.get_seq);
        }
    }
}

thread_local! {
    /// Each thread's buffer for encoding what it puts and copying out what it gets, so
    /// that a small item costs no allocation beyond its own.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Scratch space kept between calls: more than this is given back after use.
const SCRATCH_KEPT: usize = 1 << 20;

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

/// Which side of the queue a waiter is on.
#[derive(Clone, Copy)]
enum Side {
    Producer,
    Consumer,
}

/// The queue's mutex, held; released on drop.
struct Locked<'q, T> {
    queue: &'q Queue<T>,
}

impl<'q, T> Locked<'q, T> {
    /// Takes the mutex, waiting as `wait` allows; `Ok(None)` when the deadline passed.
    /// After a holder died, recounts the items.
    fn acquire(queue: &'q Queue<T>, wait: Wait) -> Result<Option<Self>, Error> {
        let mutex = queue.header().mutex();
        let acquired = match wait {
            Wait::Forever => mutex.lock("Queue").map(Some),
            // A try still waits for the mutex itself: it is held only for a copy.
            Wait::No => mutex.lock("Queue").map(Some),
            Wait::Until(deadline) => mutex.lock_until(&deadline, "Queue"),
        }?;
        let Some(owner_died) = acquired else {
            return Ok(None);
        };
        let locked = Locked { queue };
        if owner_died {
            locked.recount();
        }
        Ok(Some(locked))
    }

    fn header(&self) -> &'q Header {
        self.queue.header()
    }

    fn ring(&self) -> &[u8] {
        let data = self.queue.shared.region.data();
        // SAFETY: the ring's bytes are read and written only under the mutex, which this
        // guard holds; the region lives as long as the queue.
        unsafe { data.as_ref() }
    }

    fn ring_mut(&mut self) -> &mut [u8] {
        let mut data = self.queue.shared.region.data();
        // SAFETY: as in `ring`; `&mut self` makes this the only reference.
        unsafe { data.as_mut() }
    }

    /// Writes a frame past `tail` and publishes it (then counts it).
    fn publish(&mut self, kind: FrameKind, payload: &[u8]) {
        let header = self.header();
        let tail = header.tail.load(Ordering::Relaxed);
        let new_tail = frame::encode(self.ring_mut(), tail, kind, payload);
        header.tail.store(new_tail, Ordering::Release);
        header.items.fetch_add(1, Ordering::Relaxed);
        header.put_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves `head` past the frame just taken.
    fn consume(&mut self, new_head: u64) {
        let header = self.header();
        header.head.store(new_head, Ordering::Release);
        header.items.fetch_sub(1, Ordering::Relaxed);
        header.get_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Empties a ring whose state is corrupt (see `positions_hold`), so that it is usable
    /// again: what was in it cannot be read back anyway.
    fn reset(&mut self) {
        let header = self.header();
        header.head.store(0, Ordering::Release);
        header.tail.store(0, Ordering::Release);
        header.items.store(0, Ordering::Relaxed);
        header.get_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether `head` and `tail` can be the positions of this ring: only a process writing
    /// the header without the lock makes them impossible.
    fn positions_hold(&self) -> bool {
        let header = self.header();
        let head = header.head.load(Ordering::Relaxed);
        let tail = header.tail.load(Ordering::Relaxed);
        // Far from the end of u64, so that positions never overflow: 2^62 bytes would take
        // centuries to pass through a queue.
        tail >= head && tail - head <= self.ring().len() as u64 && tail < 1 << 62
    }

    /// After a holder died between publishing a frame and counting it: count again.
    fn recount(&self) {
        let header = self.header();
        let mut head = header.head.load(Ordering::Relaxed);
        let tail = header.tail.load(Ordering::Relaxed);
        let mut items = 0u64;
        while let Ok(Some(found)) = frame::decode(self.ring(), head, tail) {
            items += 1;
            head = found.next;
        }
        header.items.store(items, Ordering::Relaxed);
    }

    /// Releases the mutex, waits until the other side changes the queue (or `wait` runs
    /// out), and takes the mutex again. `Ok(None)`: no wait allowed. Once the deadline has
    /// passed, `wait` becomes `Wait::No`: the caller looks once more, then gives up.
    fn wait_for_change(self, side: Side, wait: &mut Wait) -> Result<Option<Self>, Error> {
        if matches!(wait, Wait::No) {
            return Ok(None);
        }
        let queue = self.queue;
        let header = self.header();
        let (word, waiting) = match side {
            Side::Producer => (&header.get_seq, &header.producers_waiting),
            Side::Consumer => (&header.put_seq, &header.consumers_waiting),
        };
        let seen = word.load(Ordering::Acquire);
        drop(self);
        // The other side often answers within microseconds (a consumer keeping up with a
        // producer, a ping-pong): watch the word for a moment before sleeping, which spares
        // both the sleep and the other side's wake-up call. Bounded: a few microseconds.
        for _ in 0..SPINS {
            if word.load(Ordering::Acquire) != seen {
                return Locked::acquire(queue, *wait);
            }
            std::hint::spin_loop();
        }
        // Counted before the futex re-checks the word: a change after `seen` either sees us
        // counted and wakes us, or happened before the check, which then returns at once.
        // (SeqCst here and on the other side's bump-then-load: neither may pass the other.)
        waiting.fetch_add(1, Ordering::SeqCst);
        let woke = futex::wait(word, seen, wait.deadline());
        waiting.fetch_sub(1, Ordering::SeqCst);
        if woke == futex::Wake::TimedOut {
            *wait = Wait::No;
        }
        Locked::acquire(queue, *wait)
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // Cannot fail: this thread took the mutex in `acquire` and releases it once.
        let _ = self.header().mutex().unlock("Queue");
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
            .field("ring_bytes", &self.shared.region.len())
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
        // A writer that ignores the lock scribbles over the first frame's header.
        {
            let mut locked = Locked::acquire(&q, Wait::Forever).unwrap().unwrap();
            locked.ring_mut()[..8].copy_from_slice(&[0xFF; 8]);
        }
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
        q.header().tail.store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(
            q.get(),
            Err(GetError::Failed(Error::CorruptQueue { .. }))
        ));
        q.put(3).unwrap();
        assert_eq!(q.get().unwrap(), 3);
    }

    #[test]
    fn a_handoff_record_whose_file_was_taken_by_a_dead_consumer_is_skipped() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(1024).build().unwrap();
        q.put(vec![1; 5000]).unwrap(); // handed over
        q.put(vec![2; 10]).unwrap(); // inline
        // A consumer takes the first item's file and dies before moving the ring's head.
        let (id, file) = q.shared.side.take().unwrap();
        assert_eq!(id, 1);
        drop(file);
        assert_eq!(q.get().unwrap(), vec![2; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_orphan_file_of_a_producer_that_died_before_publishing_is_dropped() {
        let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(1024).build().unwrap();
        // A producer reserves id 1, sends its file, and dies before publishing the frame.
        let id = q.header().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        let orphan = SideChannel::file_with(&[9; 3000]).unwrap();
        q.shared.side.send(id, &orphan).unwrap();
        q.put(vec![3; 4000]).unwrap();
        assert_eq!(q.get().unwrap(), vec![3; 4000]);
        assert!(matches!(q.try_get(), Err(GetError::Empty)));
    }

    #[test]
    fn the_item_count_is_recounted_after_a_holder_died() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        q.put(1).unwrap();
        q.put(2).unwrap();
        // A holder that died between publishing a frame and counting it.
        q.header().items.store(0, Ordering::Relaxed);
        Locked::acquire(&q, Wait::Forever)
            .unwrap()
            .unwrap()
            .recount();
        assert_eq!(q.len(), 2);
    }
}
