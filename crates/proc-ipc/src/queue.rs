//! [`Queue<T>`]: a bounded multi-producer multi-consumer queue between processes, as a ring
//! of frames in shared memory.
//!
//! Python's `Queue` is a pipe, a lock and a feeder thread; an item `put` is in the feeder's
//! buffer until the thread writes it, so a process that exits right after `put` can lose
//! it. Here `put` copies the item into shared memory (or, when it is larger than a quarter of
//! the ring, into a memory file whose descriptor sits in a kernel socket buffer, see the
//! `handoff` module) before it returns: no feeder thread, nothing to lose.
//!
//! ## Two sides, two locks
//! Producers and consumers each have a robust mutex of their own, in separate shared
//! regions (separate cache lines): producers own `tail` (the end of the published frames)
//! and the count of puts, consumers own `head` (the first unread frame) and the count of
//! gets. A producer reads `head` only to know how much room there is, a consumer reads
//! `tail` only to know where the frames end, so a producer and a consumer never wait for
//! each other's lock. When both locks are needed (repairs, below), the producers' is taken
//! first.
//!
//! ## Consistency when a process dies
//! Every operation does its work first and publishes it with one store last: a producer
//! writes its frame past `tail`, then moves `tail`; a consumer copies its frame out, then
//! moves `head`. A process killed at any instruction in between leaves either the old state
//! or the new one. The counts of puts and gets, which move in a second store, are derived
//! state: whoever takes a lock from a dead owner takes both and makes the counts agree with
//! the frames between `head` and `tail` again. Waiting uses futexes on two sequence words,
//! bumped by every put and every get; a process killed while waiting leaves nothing behind
//! but a waiter count that is one too high, which only costs a spare wake-up.

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
use crate::frame::{self, FrameError, FrameKind, Handoff, Ring};
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

/// The producers' side, at the start of the region that also holds the ring's bytes.
#[repr(C)]
struct PutSide {
    /// Guards `tail`, `puts`, `next_handoff` and the ring's free bytes.
    lock: OwnLine<RawMutex>,
    /// Position just past the last published frame.
    tail: AtomicU64,
    /// Frames ever published (made to agree with the ring after a holder died).
    puts: AtomicU64,
    /// The id of the last hand-over message reserved; ids start at 1.
    next_handoff: AtomicU64,
    /// Bumped by every put (and by `close`); consumers wait on it.
    put_seq: AtomicU32,
    /// Consumers asleep on `put_seq`.
    consumers_waiting: AtomicU32,
    closed: AtomicU32,
    /// `head` and `gets` as a producer last read them: they only grow, so room computed
    /// from them is never more than there is, and producers look at the consumers' side
    /// (a cache line the consumers keep writing) only when this view says "full".
    head_seen: AtomicU64,
    gets_seen: AtomicU64,
}

/// The consumers' side, in a region of its own.
#[repr(C)]
struct GetSide {
    /// Guards `head`, `gets` and the reading of frames.
    lock: OwnLine<RawMutex>,
    /// Position of the first unread frame.
    head: AtomicU64,
    /// Frames ever taken.
    gets: AtomicU64,
    /// Bumped by every get (and by `close`); producers wait on it.
    get_seq: AtomicU32,
    /// Producers asleep on `get_seq`.
    producers_waiting: AtomicU32,
    /// `tail` as a consumer last read it: consumers look at the producers' side only when
    /// they have taken every frame up to it.
    tail_seen: AtomicU64,
}

// SAFETY: both are #[repr(C)] with the RawMutex first; all-zero is a valid value of every
// other field (atomics), and those change only atomically.
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

/// A lock on a cache line of its own: the fields after it are read by the other side at
/// every operation, and sharing a line with them would make every lock and unlock a cache
/// miss.
#[repr(C, align(64))]
struct OwnLine<T>(T);

/// What every handle of one queue shares within a process.
struct Shared {
    /// The producers' side and the ring.
    ring: MutexRegion<PutSide, u8>,
    /// The consumers' side.
    gets: MutexRegion<GetSide, u8>,
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
        let ring = MutexRegion::new(c"multiproc-queue", MutexKind::ErrorCheck, self.ring_bytes)
            .map_err(Error::from)?;
        let gets = MutexRegion::new(c"multiproc-queue-gets", MutexKind::ErrorCheck, 0)
            .map_err(Error::from)?;
        let side =
            SideChannel::new().map_err(|e| Error::io("creating a queue's side channel", e))?;
        let inline_limit = (self.ring_bytes / 4)
            .saturating_sub(frame::HEADER)
            .min(u32::MAX as usize);
        Ok(Queue {
            shared: Arc::new(Shared {
                ring,
                gets,
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
        // Gets first: a get counted after the puts were read could make it look negative.
        let gets = self.get_side().gets.load(Ordering::Acquire);
        let puts = self.put_side().puts.load(Ordering::Acquire);
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
        self.put_side().closed.load(Ordering::Acquire) != 0
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
        puts.closed.store(1, Ordering::SeqCst);
        puts.put_seq.fetch_add(1, Ordering::SeqCst);
        gets.get_seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&puts.put_seq);
        futex::wake_all(&gets.get_seq);
    }

    fn put_side(&self) -> &PutSide {
        self.shared.ring.header()
    }

    fn get_side(&self) -> &GetSide {
        self.shared.gets.header()
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
        let capacity = shared.ring.len() as u64;

        let mut held = match Held::acquire(self, Side::Producer, wait) {
            Ok(Some(held)) => held,
            Ok(None) => return Err(PutError::Full(item)),
            Err(error) => return Err(PutError::Failed { item, error }),
        };
        loop {
            let puts = self.put_side();
            if puts.closed.load(Ordering::SeqCst) != 0 {
                return Err(PutError::Closed(item));
            }
            let tail = puts.tail.load(Ordering::Relaxed);
            let fits = |head: u64, gets: u64| {
                let items = puts.puts.load(Ordering::Relaxed).saturating_sub(gets);
                let room_for_item = shared.maxsize == 0 || items < shared.maxsize;
                room_for_item && tail >= head && capacity - (tail - head).min(capacity) >= needed
            };
            // The count of gets this look is based on: what a wait below waits to change.
            let mut looked_at = puts.gets_seen.load(Ordering::Relaxed);
            let mut room = fits(puts.head_seen.load(Ordering::Relaxed), looked_at);
            if !room {
                // Look at the consumers' side again. Acquire: the bytes before `head` have
                // been copied out before a consumer moved it, so they may be written now.
                let gets = self.get_side();
                let (taken, head) = (
                    gets.gets.load(Ordering::Acquire),
                    gets.head.load(Ordering::Acquire),
                );
                puts.head_seen.store(head, Ordering::Relaxed);
                puts.gets_seen.store(taken, Ordering::Relaxed);
                if !self.positions_hold() {
                    // A consumer would report the corruption; a producer repairs and goes on.
                    if let Err(error) = held.with_consumers_locked(|| self.reset()) {
                        return Err(PutError::Failed { item, error });
                    }
                    continue;
                }
                looked_at = taken;
                room = fits(head, taken);
            }
            if room {
                let published = match &file {
                    None => {
                        held.publish(FrameKind::Inline, bytes);
                        true
                    }
                    Some(file) => {
                        // Should the side channel be full, the wait below is for a consumer
                        // to take a message from it, which it counts as a get: looked at
                        // before the send, so that one taken just after it is not missed.
                        looked_at = self.get_side().gets.load(Ordering::Acquire);
                        // Reserved before it is sent: a producer killed after sending must
                        // not leave its id to the next one (see the handoff module).
                        let id = puts.next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
                        match shared.side.send(id, file) {
                            Ok(()) => {
                                let record = Handoff {
                                    id,
                                    len: bytes.len() as u64,
                                };
                                held.publish(FrameKind::Handoff, &record.to_bytes());
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
                if published {
                    drop(held);
                    if puts.consumers_waiting.load(Ordering::SeqCst) > 0 {
                        futex::wake_all(&puts.put_seq);
                    }
                    return Ok(());
                }
            }
            match held.wait_for_change(&mut wait, looked_at) {
                Ok(Some(relocked)) => held = relocked,
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
        let mut held = match Held::acquire(self, Side::Consumer, wait)? {
            Some(held) => held,
            None => return Err(GetError::Empty),
        };
        let mut closed_and_drained = false;
        loop {
            let gets = self.get_side();
            let head = gets.head.load(Ordering::Relaxed);
            let mut tail = gets.tail_seen.load(Ordering::Relaxed);
            if tail == head {
                // Every frame seen so far is taken: look at the producers' side again.
                // Acquire: a frame's bytes were written before a producer moved `tail`.
                tail = self.put_side().tail.load(Ordering::Acquire);
                gets.tail_seen.store(tail, Ordering::Relaxed);
            }
            let decoded = if tail < 1 << 62 {
                // SAFETY: this thread holds the consumers' lock, so nobody else reads from
                // `head`, and producers do not write before `tail`. (decode checks that the
                // positions can be those of this ring.)
                unsafe { frame::decode(self.ring(), head, tail) }
            } else {
                Err(FrameError::Positions {
                    head,
                    tail,
                    capacity: shared.ring.len(),
                })
            };
            match decoded {
                Err(corrupt) => {
                    // Someone wrote the ring without the lock. What is in it cannot be read
                    // back; drop it so that the queue is usable again.
                    drop(held);
                    self.reset_from_outside()?;
                    self.wake_producers();
                    return Err(GetError::Failed(Error::CorruptQueue {
                        detail: corrupt.to_string(),
                    }));
                }
                Ok(Some(found)) => {
                    buf.clear();
                    buf.resize(found.payload_len, 0);
                    // SAFETY: as for the decode: the frame lies between head and tail.
                    unsafe { self.ring().copy_out(found.payload_at, buf) };
                    let large = match found.kind {
                        FrameKind::Inline => None,
                        FrameKind::Handoff => match self.take_handoff(buf) {
                            Some(message) => Some(message),
                            None => {
                                // Taken by a consumer that died: gone with it. Next frame.
                                held.consume(found.next);
                                continue;
                            }
                        },
                    };
                    held.consume(found.next);
                    drop(held);
                    self.wake_producers();
                    let decoded = match large {
                        None => codec::decode(buf, shared.item_limit),
                        Some(message) => codec::decode(&message?, shared.item_limit),
                    };
                    return decoded.map_err(|e| GetError::Failed(e.into()));
                }
                Ok(None) => {
                    if self.put_side().closed.load(Ordering::SeqCst) != 0 {
                        if closed_and_drained {
                            return Err(GetError::Closed);
                        }
                        // A producer may have seen the queue open just before `close` and
                        // be publishing now: its put will return Ok, so its item must not be
                        // stranded. Wait it out on the producers' lock (any producer after
                        // this sees `closed`), then look once more.
                        drop(held);
                        drop(Held::acquire(self, Side::Producer, Wait::Forever)?);
                        held = match Held::acquire(self, Side::Consumer, Wait::Forever)? {
                            Some(held) => held,
                            None => return Err(GetError::Closed),
                        };
                        closed_and_drained = true;
                        continue;
                    }
                }
            }
            // `tail` is where this look found the published frames to end.
            match held.wait_for_change(&mut wait, tail)? {
                Some(relocked) => held = relocked,
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
        let gets = self.get_side();
        if gets.producers_waiting.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&gets.get_seq);
        }
    }
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
        let head = self.get_side().head.load(Ordering::Acquire);
        let tail = self.put_side().tail.load(Ordering::Acquire);
        // Far from the end of u64, so that positions never overflow: 2^62 bytes would take
        // centuries to pass through a queue.
        tail >= head && tail - head <= self.shared.ring.len() as u64 && tail < 1 << 62
    }

    /// Makes the count of puts agree with the frames between `head` and `tail`. Both locks
    /// held: after a holder died between moving a position and counting.
    fn recount(&self) {
        let (puts, gets) = (self.put_side(), self.get_side());
        let mut head = gets.head.load(Ordering::Relaxed);
        let tail = puts.tail.load(Ordering::Relaxed);
        let mut frames = 0u64;
        // SAFETY: both locks are held: nobody reads or writes the ring meanwhile.
        while let Ok(Some(found)) = unsafe { frame::decode(self.ring(), head, tail) } {
            frames += 1;
            head = found.next;
        }
        let taken = gets.gets.load(Ordering::Relaxed);
        puts.puts.store(taken + frames, Ordering::Release);
    }

    /// Empties a ring whose state is corrupt (see `positions_hold`), so that it is usable
    /// again: what was in it cannot be read back anyway. Both locks held.
    fn reset(&self) {
        let (puts, gets) = (self.put_side(), self.get_side());
        gets.head.store(0, Ordering::Release);
        puts.tail.store(0, Ordering::Release);
        puts.head_seen.store(0, Ordering::Relaxed);
        gets.tail_seen.store(0, Ordering::Relaxed);
        let taken = gets.gets.load(Ordering::Relaxed);
        puts.puts.store(taken, Ordering::Release);
        puts.gets_seen.store(taken, Ordering::Relaxed);
        gets.get_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// `reset`, from a consumer that holds no lock: takes both, in order.
    fn reset_from_outside(&self) -> Result<(), Error> {
        let held = Held::acquire(self, Side::Producer, Wait::Forever)?;
        match held {
            Some(held) => held.with_consumers_locked(|| self.reset()),
            None => Ok(()),
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
    /// After a holder died, makes the counts agree with the ring again.
    fn acquire(queue: &'q Queue<T>, side: Side, wait: Wait) -> Result<Option<Self>, Error> {
        let lock = Self::lock_of(queue, side);
        let acquired = match wait {
            // A try still waits for the lock itself: it is held only for a copy.
            Wait::Forever | Wait::No => lock.lock("Queue").map(Some),
            Wait::Until(deadline) => lock.lock_until(&deadline, "Queue"),
        }?;
        let Some(owner_died) = acquired else {
            return Ok(None);
        };
        let held = Held { queue, side };
        if !owner_died {
            return Ok(Some(held));
        }
        match side {
            Side::Producer => held.with_consumers_locked(|| queue.recount())?,
            Side::Consumer => {
                // The producers' lock comes first: let go, take both in order, repair.
                drop(held);
                let producers = Held::acquire(queue, Side::Producer, Wait::Forever)?;
                if let Some(producers) = producers {
                    producers.with_consumers_locked(|| queue.recount())?;
                }
                return Held::acquire(queue, Side::Consumer, wait);
            }
        }
        Ok(Some(held))
    }

    fn lock_of(queue: &Queue<T>, side: Side) -> &RawMutex {
        match side {
            Side::Producer => &queue.put_side().lock.0,
            Side::Consumer => &queue.get_side().lock.0,
        }
    }

    /// Runs `f` with the consumers' lock taken too (this must be the producers' lock).
    fn with_consumers_locked(&self, f: impl FnOnce()) -> Result<(), Error> {
        debug_assert!(self.side == Side::Producer);
        let lock = &self.queue.get_side().lock.0;
        // Whether its owner died does not matter: the caller repairs the counts anyway.
        lock.lock("Queue")?;
        f();
        lock.unlock("Queue")?;
        Ok(())
    }

    /// Writes a frame past `tail`, publishes it, then counts it (producers' lock).
    fn publish(&mut self, kind: FrameKind, payload: &[u8]) {
        let puts = self.queue.put_side();
        let tail = puts.tail.load(Ordering::Relaxed);
        // SAFETY: the bytes past `tail` (up to `head` plus the ring's length, which the
        // caller checked leaves room for this frame) are written only by the holder of the
        // producers' lock, which this thread is, and read by consumers only once `tail` has
        // moved past them.
        let new_tail = unsafe { frame::encode(self.queue.ring(), tail, kind, payload) };
        puts.tail.store(new_tail, Ordering::Release);
        puts.puts.fetch_add(1, Ordering::Release);
        puts.put_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves `head` past the frame just taken, then counts it (consumers' lock).
    fn consume(&mut self, new_head: u64) {
        let gets = self.queue.get_side();
        gets.head.store(new_head, Ordering::Release);
        gets.gets.fetch_add(1, Ordering::Release);
        gets.get_seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Releases the lock, waits until the other side changes the queue (or `wait` runs
    /// out), and takes the lock again. `Ok(None)`: no wait allowed. Once the deadline has
    /// passed, `wait` becomes `Wait::No`: the caller looks once more, then gives up.
    ///
    /// `looked_at` is what the caller's look at the other side found, which made it wait:
    /// the end of the published frames (`tail`) for a consumer, the count of gets for a
    /// producer.
    fn wait_for_change(self, wait: &mut Wait, looked_at: u64) -> Result<Option<Self>, Error> {
        if matches!(wait, Wait::No) {
            return Ok(None);
        }
        let (queue, side) = (self.queue, self.side);
        let (puts, gets) = (queue.put_side(), queue.get_side());
        // A producer waits for gets, a consumer for puts.
        let (word, waiting) = match side {
            Side::Producer => (&gets.get_seq, &gets.producers_waiting),
            Side::Consumer => (&puts.put_seq, &puts.consumers_waiting),
        };
        let seen = word.load(Ordering::Acquire);
        // The other side does not wait for our lock: between the caller's look at the queue
        // (empty, full, open) and the load above, it may have made the very change we are
        // about to wait for, bump of `word` included, and nothing later would wake us. So
        // look again after the load: the other side publishes its change (`tail`, `gets`,
        // `closed`) before it bumps the word, so a `seen` that includes the bump sees the
        // change here, and a change after this look moves the word past `seen`.
        let changed = puts.closed.load(Ordering::Acquire) != 0
            || match side {
                Side::Consumer => puts.tail.load(Ordering::Acquire) != looked_at,
                Side::Producer => gets.gets.load(Ordering::Acquire) != looked_at,
            };
        // Let go of the lock before taking it again.
        drop(self);
        if changed {
            return Held::acquire(queue, side, *wait);
        }
        // The other side often answers within microseconds (a consumer keeping up with a
        // producer, a ping-pong): watch the word for a moment before sleeping, which spares
        // both the sleep and the other side's wake-up call. Bounded: a few microseconds.
        for _ in 0..SPINS {
            if word.load(Ordering::Acquire) != seen {
                return Held::acquire(queue, side, *wait);
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
        Held::acquire(queue, side, *wait)
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
        q.put_side().tail.store(u64::MAX, Ordering::Relaxed);
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
        let id = q.put_side().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        let orphan = SideChannel::file_with(&[9; 3000]).unwrap();
        q.shared.side.send(id, &orphan).unwrap();
        q.put(vec![3; 4000]).unwrap();
        assert_eq!(q.get().unwrap(), vec![3; 4000]);
        assert!(matches!(q.try_get(), Err(GetError::Empty)));
    }

    /// Long enough never to pass in a correct run: a wait that reaches it slept through
    /// the change it was waiting for.
    const NEVER: Duration = Duration::from_secs(20);

    #[test]
    fn a_consumer_that_found_the_queue_empty_just_before_a_put_does_not_sleep_through_it() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        // A consumer holds its lock and has found the ring empty...
        let consumer = Held::acquire(&q, Side::Consumer, Wait::Forever)
            .unwrap()
            .unwrap();
        let tail = q.put_side().tail.load(Ordering::Acquire);
        // ...when a producer, which takes only the producers' lock, publishes an item and
        // bumps the sequence word, before the consumer has read that word.
        q.put(7).unwrap();
        let mut wait = Wait::Until(Deadline::after(NEVER));
        let consumer = consumer.wait_for_change(&mut wait, tail).unwrap().unwrap();
        assert!(
            matches!(wait, Wait::Until(_)),
            "the consumer slept until its deadline with an item in the queue"
        );
        drop(consumer);
        assert_eq!(q.try_get().unwrap(), 7);
    }

    #[test]
    fn a_producer_that_found_the_queue_full_just_before_a_get_does_not_sleep_through_it() {
        let q: Queue<u8> = Queue::new(1).unwrap();
        q.put(1).unwrap();
        // The producer's look at the consumers' side: full.
        assert!(matches!(q.try_put(2), Err(PutError::Full(2))));
        let producer = Held::acquire(&q, Side::Producer, Wait::Forever)
            .unwrap()
            .unwrap();
        let gets = q.get_side().gets.load(Ordering::Acquire);
        // A consumer, which takes only the consumers' lock, makes room meanwhile.
        assert_eq!(q.get().unwrap(), 1);
        let mut wait = Wait::Until(Deadline::after(NEVER));
        let producer = producer.wait_for_change(&mut wait, gets).unwrap().unwrap();
        assert!(
            matches!(wait, Wait::Until(_)),
            "the producer slept until its deadline with room in the queue"
        );
        drop(producer);
        q.try_put(2).unwrap();
    }

    #[test]
    fn a_waiter_that_finds_the_queue_closed_as_it_is_about_to_sleep_looks_again() {
        for side in [Side::Consumer, Side::Producer] {
            let q: Queue<u8> = Queue::new(0).unwrap();
            let held = Held::acquire(&q, side, Wait::Forever).unwrap().unwrap();
            let looked_at = match side {
                Side::Consumer => q.put_side().tail.load(Ordering::Acquire),
                Side::Producer => q.get_side().gets.load(Ordering::Acquire),
            };
            // close() takes no lock: it can come between the caller's look and the wait.
            q.close();
            let mut wait = Wait::Forever;
            let held = held.wait_for_change(&mut wait, looked_at);
            assert!(
                matches!(held, Ok(Some(_))),
                "the waiter could not take its lock again: {:?}",
                held.err()
            );
        }
    }

    #[test]
    fn the_item_count_is_recounted_after_a_holder_died() {
        let q: Queue<u8> = Queue::new(0).unwrap();
        q.put(1).unwrap();
        q.put(2).unwrap();
        // A producer that died between publishing a frame and counting it.
        q.put_side().puts.fetch_sub(1, Ordering::Relaxed);
        assert_eq!(q.len(), 1);
        let producers = Held::acquire(&q, Side::Producer, Wait::Forever)
            .unwrap()
            .unwrap();
        producers.with_consumers_locked(|| q.recount()).unwrap();
        drop(producers);
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        assert!(q.is_empty());
    }
}
