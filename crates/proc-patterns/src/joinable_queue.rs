//! [`JoinableQueue<T>`]: a [`Queue`] that counts the items not yet marked done, so that a
//! producer can wait until consumers in any process have finished everything it put.
//!
//! The count lives in a small shared region beside the queue: one 32-bit word of unfinished
//! items, one word bumped each time the count reaches zero (what `join` sleeps on, so that
//! a zero followed at once by a new put still wakes every joiner), and a count of sleeping
//! joiners, so that `task_done` makes a wake-up system call only when someone waits. Every
//! change is a single atomic operation: a process killed at any instruction leaves the count
//! either before or after its change, never torn.
//!
//! Why not inside the queue's own lock: the count must be raised *before* the item becomes
//! visible, or a fast consumer could call `task_done` for it first and be refused. So `put`
//! raises the count, then puts, and lowers it again if the put failed. The cost is that a
//! producer killed between those two steps leaves the count one too high; a consumer killed
//! between `get` and `task_done` does the same. Either way `join` would wait forever, which
//! is why [`join_timeout`](JoinableQueue::join_timeout) exists and
//! [`unfinished`](JoinableQueue::unfinished) shows how many items are still owed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
use proc_ipc::{GetError, Iter, PutError, Queue, QueueBuilder};
use proc_sync::internal::{AtomicBlock, Deadline, SharedAtomics, futex};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The shared count of a joinable queue. Every field changes by one atomic operation,
/// which needs no lock and cannot be left half done by a killed process.
#[repr(C)]
struct Counter {
    /// Items put and not yet marked done.
    unfinished: AtomicU32,
    /// Bumped each time `unfinished` reaches zero; joiners sleep on it.
    zeros: AtomicU32,
    /// Threads sleeping in `join` (any process).
    joiners: AtomicU32,
}

// SAFETY: three atomics, for which all-zero bytes (nothing unfinished, nobody waiting)
// are a valid value.
unsafe impl AtomicBlock for Counter {}

/// A queue whose consumers mark each item done, so that [`join`](Self::join) can wait
/// until everything put so far has been processed, as Python's
/// `multiprocessing.JoinableQueue`.
///
/// It has the whole [`Queue`] API (put, get, their timeout and try forms, `close`, `iter`,
/// `len`), plus [`task_done`](Self::task_done), [`join`](Self::join),
/// [`join_timeout`](Self::join_timeout) and [`unfinished`](Self::unfinished). A clone, or a
/// copy inherited by a forked child, is the same queue with the same count.
///
/// ```
/// use proc_core::Process;
/// use proc_patterns::JoinableQueue;
///
/// let q = JoinableQueue::<u32>::new(0)?;
/// let mut consumer = Process::new({
///     let q = q.clone();
///     move || {
///         for n in q.iter() {
///             println!("processed {n}");
///             q.task_done().unwrap();
///         }
///     }
/// })
/// .with_daemon(true);
/// consumer.start()?;
/// for n in 0..10 {
///     q.put(n)?;
/// }
/// q.join(); // returns once the consumer marked all ten done
/// assert_eq!(q.unfinished(), 0);
/// # q.close();
/// # consumer.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ## When a process dies
/// A consumer killed after `get` and before `task_done` never marks its item done, and a
/// producer killed inside `put` may leave its item counted: then `join` waits forever.
/// Use [`join_timeout`](Self::join_timeout), which returns `false`, and
/// [`unfinished`](Self::unfinished), which says how many items are owed.
pub struct JoinableQueue<T> {
    queue: Queue<T>,
    counter: SharedAtomics<Counter>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
            counter: self.counter.clone(),
        }
    }
}

/// A joinable queue travels as its queue and the descriptor of its shared count: passed to
/// `Process::target` under any start method, or sent through a queue or connection, it is
/// the same queue with the same count in the receiver.
impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let rest = (&self.queue, FdRef::new(self.counter.fd()));
        handle_wire::serialize_handle(serializer, KIND, &rest)
    }
}

/// The kind a joinable queue travels as.
const KIND: &str = "JoinableQueue";

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (queue, counter): (Queue<T>, ReceivedFd) =
            handle_wire::deserialize_handle(deserializer, KIND)?;
        let counter = counter.into_inner();
        let counter = SharedAtomics::from_fd(counter).map_err(D::Error::custom)?;
        Ok(JoinableQueue { queue, counter })
    }
}

/// Configures a [`JoinableQueue`] before it is made: [`JoinableQueue::builder`]. The
/// settings are those of [`QueueBuilder`].
#[must_use]
pub struct JoinableQueueBuilder<T> {
    queue: QueueBuilder<T>,
}

impl<T> std::fmt::Debug for JoinableQueueBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueueBuilder")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> JoinableQueueBuilder<T> {
    /// The most items the queue holds; 0 (the default) for no item limit.
    pub fn maxsize(self, maxsize: usize) -> Self {
        JoinableQueueBuilder {
            queue: self.queue.maxsize(maxsize),
        }
    }

    /// The size of the queue's ring in bytes (see [`QueueBuilder::ring_bytes`]).
    pub fn ring_bytes(self, bytes: usize) -> Self {
        JoinableQueueBuilder {
            queue: self.queue.ring_bytes(bytes),
        }
    }

    /// The largest encoded item the queue takes (see [`QueueBuilder::item_limit`]).
    pub fn item_limit(self, bytes: usize) -> Self {
        JoinableQueueBuilder {
            queue: self.queue.item_limit(bytes),
        }
    }

    /// Makes the queue.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<String>::builder()
    ///     .maxsize(4)
    ///     .ring_bytes(4096)
    ///     .build()?;
    /// assert_eq!(q.maxsize(), 4);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn build(self) -> Result<JoinableQueue<T>> {
        let queue = self.queue.build()?;
        let counter = SharedAtomics::new(c"multiproc-joinable")?;
        Ok(JoinableQueue { queue, counter })
    }
}

impl<T> JoinableQueue<T> {
    /// A joinable queue that holds at most `maxsize` items (0: no item limit).
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(2)?;
    /// assert_eq!(q.maxsize(), 2);
    /// assert_eq!(q.unfinished(), 0);
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> Result<Self> {
        Self::builder().maxsize(maxsize).build()
    }

    /// A builder for a joinable queue with a chosen ring size and item limit.
    pub fn builder() -> JoinableQueueBuilder<T> {
        JoinableQueueBuilder {
            queue: Queue::builder(),
        }
    }

    /// The number of items in the queue now (taken items that are not yet done are not
    /// counted here: see [`unfinished`](Self::unfinished)).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the queue holds `maxsize` items now.
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// The item limit given at creation; 0 for none.
    pub fn maxsize(&self) -> usize {
        self.queue.maxsize()
    }

    /// Whether [`close`](Self::close) was called, in any process.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Closes the queue for every process (see [`Queue::close`]): puts fail, gets drain
    /// what is left and then fail with `Closed`. The count is not changed: items still in
    /// the queue remain to be taken and marked done.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.close();
    /// assert!(q.put(2).is_err());
    /// assert_eq!(q.unfinished(), 1);
    /// assert_eq!(q.get()?, 1);
    /// q.task_done()?;
    /// assert!(q.join_timeout(std::time::Duration::ZERO));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }

    /// Items put and not yet marked done, in every process: those in the queue, and those
    /// taken whose `task_done` has not come (yet, or ever: a consumer killed in between).
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.get()?;
    /// assert_eq!((q.len(), q.unfinished()), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unfinished(&self) -> usize {
        self.counter().unfinished.load(Ordering::Acquire) as usize
    }

    /// Marks one item taken from the queue as done. An error when there is no unfinished
    /// item ([`Error::TaskDoneTooOften`]), as Python's `ValueError`. When the last
    /// unfinished item is marked done, every `join` returns.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(matches!(q.task_done(), Err(proc_patterns::Error::TaskDoneTooOften)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_done(&self) -> Result<()> {
        let counter = self.counter();
        counter
            .unfinished
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| Error::TaskDoneTooOften)
            .map(|previous| {
                if previous == 1 {
                    self.reached_zero();
                }
            })
    }

    /// Waits until every item put so far (in any process) has been marked done.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.join(); // nothing was put: returns at once
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn join(&self) {
        while !self.join_until(None) {}
    }

    /// Waits at most `timeout` for every item put so far to be marked done; whether they
    /// were. `false` leaves [`unfinished`](Self::unfinished) to say how many are owed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(10)));
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Some(&Deadline::after(timeout)))
    }

    fn join_until(&self, deadline: Option<&Deadline>) -> bool {
        let counter = self.counter();
        loop {
            // Read the generation first: a zero reached after this read bumps it, so the
            // futex below cannot sleep through it.
            let zeros = counter.zeros.load(Ordering::SeqCst);
            if counter.unfinished.load(Ordering::SeqCst) == 0 {
                return true;
            }
            // Counted before the futex checks the word (SeqCst on both sides): a task_done
            // that brings the count to zero after this either sees us and wakes us, or
            // bumps `zeros` before the check, which then returns at once.
            counter.joiners.fetch_add(1, Ordering::SeqCst);
            let woke = futex::wait(&counter.zeros, zeros, deadline);
            counter.joiners.fetch_sub(1, Ordering::SeqCst);
            if woke == futex::Wake::TimedOut {
                return counter.unfinished.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Counts one more unfinished item; an item cannot be put when the count is full.
    fn reserve(&self) -> bool {
        self.counter()
            .unfinished
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1))
            .is_ok()
    }

    /// Takes back a reservation whose put failed.
    fn unreserve(&self) {
        if self.counter().unfinished.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.reached_zero();
        }
    }

    fn reached_zero(&self) {
        let counter = self.counter();
        counter.zeros.fetch_add(1, Ordering::SeqCst);
        if counter.joiners.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&counter.zeros);
        }
    }

    fn counter(&self) -> &Counter {
        self.counter.get()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Puts `item` at the end, waiting while the queue is full, and counts it unfinished.
    /// A put that fails does not count; every error hands the item back.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(7)?;
    /// q.close();
    /// assert!(q.put(8).is_err());
    /// assert_eq!(q.unfinished(), 1); // the failed put was not counted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.counted(item, |item| self.queue.put(item))
    }

    /// Puts `item`, waiting at most `timeout` for room: `Err(Full(item))` after that.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_patterns::JoinableQueue::<u8>::new(1)?;
    /// q.put_timeout(1, Duration::from_millis(10))?;
    /// assert!(q.put_timeout(2, Duration::from_millis(10)).is_err());
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.counted(item, |item| self.queue.put_timeout(item, timeout))
    }

    /// Puts `item` if there is room now: `Err(Full(item))` otherwise.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.counted(item, |item| self.queue.try_put(item))
    }

    /// Takes the first item, waiting while the queue is empty; `Err(Closed)` once the queue
    /// is closed and drained. Mark it done with [`task_done`](Self::task_done) when it has
    /// been processed.
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }

    /// Takes the first item, waiting at most `timeout`: `Err(Empty)` after that.
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// assert!(q.get_timeout(std::time::Duration::from_millis(1)).is_err());
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.queue.get_timeout(timeout)
    }

    /// Takes the first item if there is one now: `Err(Empty)` otherwise.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.queue.try_get()
    }

    /// The items, taken one by one, until the queue is closed and drained (see
    /// [`Queue::iter`]). Each still needs its [`task_done`](Self::task_done).
    ///
    /// ```
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.close();
    /// for _ in q.iter() {
    ///     q.task_done()?;
    /// }
    /// assert_eq!(q.unfinished(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        self.queue.iter()
    }

    /// Counts the item, puts it with `put`, and takes the count back if the put failed.
    fn counted(
        &self,
        item: T,
        put: impl FnOnce(T) -> Result<(), PutError<T>>,
    ) -> Result<(), PutError<T>> {
        if !self.reserve() {
            return Err(PutError::Failed {
                item,
                error: proc_ipc::Error::InvalidArgument {
                    reason: "the joinable queue has 4294967295 unfinished items, its most",
                },
            });
        }
        put(item).inspect_err(|_| self.unreserve())
    }
}

impl<T> proc_core::Waitable for JoinableQueue<T> {
    /// Ready when a get would not block: an item is there, or the queue is closed (as for
    /// a [`Queue`]). Whether items are unfinished does not count: that is [`join`](Self::join).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_patterns::JoinableQueue::<u8>::new(0)?;
    /// assert!(proc_core::wait(&[&q], Some(Duration::ZERO))?.is_empty());
    /// q.put(1)?;
    /// assert_eq!(proc_core::wait(&[&q], None)?, [0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_source(&self) -> proc_core::Result<proc_core::WaitSource<'_>> {
        self.queue.wait_source()
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &self.unfinished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_reached_and_left_again_still_wakes_a_joiner_that_read_the_old_generation() {
        let q = JoinableQueue::<u8>::new(0).unwrap();
        q.put(1).unwrap();
        let zeros = q.counter().zeros.load(Ordering::SeqCst);
        q.get().unwrap();
        q.task_done().unwrap();
        q.put(2).unwrap(); // the count is 1 again
        assert_ne!(q.counter().zeros.load(Ordering::SeqCst), zeros);
    }

    #[test]
    fn a_full_count_refuses_the_put_and_hands_the_item_back() {
        let q = JoinableQueue::<u8>::new(0).unwrap();
        q.counter().unfinished.store(u32::MAX, Ordering::SeqCst);
        let err = q.put(5).unwrap_err();
        assert_eq!(err.into_inner(), 5);
        assert!(q.is_empty());
        assert_eq!(q.unfinished(), u32::MAX as usize);
    }
}
