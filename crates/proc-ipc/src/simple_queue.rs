//! [`SimpleQueue<T>`]: Python's `multiprocessing.SimpleQueue`, the plain put-and-get queue,
//! made of a [`Queue`] with no item limit: the same ring, the same travel between processes,
//! the same `close`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use proc_core::{WaitSource, Waitable};

use crate::error::{GetError, PutError, Result};
use crate::queue::Queue;

/// A queue between processes with nothing but `put`, `get`, `is_empty` and `close`, as
/// Python's `multiprocessing.SimpleQueue`.
///
/// It is a [`Queue`] without an item limit, in a ring of
/// [`DEFAULT_RING_BYTES`](crate::DEFAULT_RING_BYTES): a `put` copies the item into shared
/// memory before it returns (Python's has no feeder thread either), and blocks while the
/// ring is full, as Python's blocks while its pipe is full, until a consumer takes an item.
/// An item too large for a quarter of the ring goes through in chunks or as a memory file,
/// as in a [`Queue`]. A clone, a copy inherited by a forked child, one passed as an argument
/// of [`Process::target`](proc_core::Process::target), or one sent through a queue or a
/// [`Connection`](crate::Connection), is the same queue.
///
/// [`close`](Self::close) is for every process (unlike Python's, which closes this
/// process's pipe ends): puts fail from then on, everywhere, and gets take what is left,
/// then fail, so consumers can stop cleanly.
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::SimpleQueue;
///
/// let q: SimpleQueue<String> = SimpleQueue::new()?;
/// let mut child = Process::new({
///     let q = q.clone();
///     move || {
///         while let Ok(word) = q.get() {
///             println!("got {word}");
///         }
///     }
/// });
/// child.start()?;
/// for word in ["a", "b", "c"] {
///     q.put(word.to_string())?;
/// }
/// q.close(); // the child takes the three words, then its get fails and it ends
/// assert_eq!(child.join()?, 0);
/// assert!(q.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<u32>::new()?;
    /// assert!(q.is_empty());
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        Ok(SimpleQueue {
            queue: Queue::new(0)?,
        })
    }

    /// Whether the queue holds no item now (others may change that at once).
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<u32>::new()?;
    /// q.put(1)?;
    /// assert!(!q.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Closes the queue for every process: puts fail with `Closed` from now on, gets take
    /// what is left and then fail with `Closed`. Waiting producers and consumers wake up.
    /// Closing again does nothing.
    ///
    /// ```
    /// use proc_ipc::{GetError, PutError, SimpleQueue};
    ///
    /// let q = SimpleQueue::<u8>::new()?;
    /// q.put(1)?;
    /// q.close();
    /// q.close();
    /// assert!(matches!(q.put(2), Err(PutError::Closed(2))));
    /// assert_eq!(q.get()?, 1);
    /// assert!(matches!(q.get(), Err(GetError::Closed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.queue.close();
    }

    /// Whether [`close`](Self::close) was called, in any process.
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<u8>::new()?;
    /// let other = q.clone();
    /// other.close();
    /// assert!(q.is_closed());
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Puts `item` at the end, waiting while the ring is full. When it returns `Ok` the item
    /// is in shared memory: this process may exit at once and it is still delivered. Every
    /// error hands the item back: `Closed(item)` after [`close`](Self::close).
    ///
    /// ```
    /// let q = proc_ipc::SimpleQueue::<Vec<u8>>::new()?;
    /// q.put(vec![1, 2, 3])?;
    /// assert_eq!(q.get()?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put(item)
    }

    /// Takes the first item, waiting while the queue is empty; `Err(Closed)` once the queue
    /// is closed and drained.
    ///
    /// ```
    /// use proc_ipc::{GetError, SimpleQueue};
    ///
    /// let q = SimpleQueue::<u8>::new()?;
    /// q.close();
    /// assert!(matches!(q.get(), Err(GetError::Closed)));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.queue.get()
    }
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("len", &self.queue.len())
            .field("closed", &self.queue.is_closed())
            .finish()
    }
}

/// It travels as its queue does (see [`Queue`]'s handle).
impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.queue.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SimpleQueue {
            queue: Queue::deserialize(deserializer)?,
        })
    }
}

impl<T> Waitable for SimpleQueue<T> {
    /// Ready when a get would not block: an item is there, or the queue is closed (as for a
    /// [`Queue`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = proc_ipc::SimpleQueue::<u8>::new()?;
    /// assert!(proc_core::wait(&[&q], Some(Duration::ZERO))?.is_empty());
    /// q.put(1)?;
    /// assert_eq!(proc_core::wait(&[&q], None)?, [0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_source(&self) -> proc_core::Result<WaitSource<'_>> {
        self.queue.wait_source()
    }
}
