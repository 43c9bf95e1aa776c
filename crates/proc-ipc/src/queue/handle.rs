//! [`Queue`], the handle: what every clone of one queue in a process shares (an `Arc` of
//! its [`Shared`] state), and the way to its two sides. The queue's operations are
//! `impl Queue<T>` blocks in the files of their concern (put, get, ring, wait, …), which
//! name the type from here.

use std::marker::PhantomData;
use std::sync::Arc;

use super::layout::{GetHot, GetSide, PutHot, PutSide, Shared};

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
/// consumer copies them out (see [`LargeItems`](crate::LargeItems)). Both ends then wait
/// for each other until the item is through: a producer past its deadline gives the item up
/// (`Full`, nothing delivered); a consumer that has begun to receive an item waits for its end beyond its
/// own deadline (and a `try_get` waits too) for as long as the item's producer is alive,
/// since that item is acknowledged the moment its last chunk is in the ring.
pub struct Queue<T> {
    pub(super) shared: Arc<Shared>,
    pub(super) _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            shared: Arc::clone(&self.shared),
            _items: PhantomData,
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

    #[inline]
    pub(super) fn put_side(&self) -> &PutSide {
        self.shared.ring.header()
    }

    #[inline]
    pub(super) fn get_side(&self) -> &GetSide {
        self.shared.gets.header()
    }

    #[inline]
    pub(super) fn put_hot(&self) -> &PutHot {
        &self.put_side().hot.0
    }

    #[inline]
    pub(super) fn get_hot(&self) -> &GetHot {
        &self.get_side().hot.0
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
