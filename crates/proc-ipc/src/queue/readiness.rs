//! How [`proc_core::wait`] waits for a queue: a queue is ready when a get would not block,
//! that is when a frame is published past `head` (an item, or the first chunk of a streamed
//! one, whose producer is streaming the rest) or the queue is closed.
//!
//! The queue has no descriptor to poll, so `wait` watches it from a bridge thread that
//! sleeps on the consumers' doorbell as a consumer does: counted as a sleeper, so every
//! publication and `close` rings it, with no cost to puts and gets while nobody waits.
//!
//! Ending a bridge's sleep: `interrupt` rings the doorbell unconditionally, which wakes the
//! real consumers asleep on the same queue too. Each of those looks at the queue once more
//! and sleeps again: one futex wake-up and a few loads, once per `wait` call that ends while
//! its bridge still sleeps. The alternative, a futex bitset that only bridges wait with,
//! would make every consumer sleep with a bitset that excludes it, a change to the
//! doorbell that all of proc-sync's waiters share, to save a wake-up that is rare (it needs
//! a consumer blocked in `get` on the very queue another thread waits for) and cheap.

use std::sync::atomic::Ordering;

use proc_core::{WaitSource, Waitable, Watch};

use super::handle::Queue;
use super::layout::Shared;

impl Watch for Shared {
    fn is_ready(&self) -> bool {
        let put_side = self.ring.header();
        // SeqCst, as the consumers' look in `await_change`: paired with the producers' SeqCst
        // store of `tail` (or of `closed`) before they ring.
        put_side.wait.0.closed.load(Ordering::SeqCst) != 0
            || put_side.hot.0.tail.load(Ordering::SeqCst)
                != self.gets.header().hot.0.head.load(Ordering::SeqCst)
    }

    fn sleep(&self, stop: &dyn Fn() -> bool) {
        // The doorbell counts this sleeper before its last look: no ring is missed.
        let bell = &self.ring.header().wait.0.bell;
        bell.sleep(|| self.is_ready() || stop(), None);
    }

    fn interrupt(&self) {
        self.ring.header().wait.0.bell.ring_always();
    }
}

impl<T> Waitable for Queue<T> {
    /// Ready when a get would not block: an item is there (or on its way in, streamed by a
    /// producer that is writing it), or the queue is closed. Another consumer may take the
    /// item first: then a `get` blocks, so use [`try_get`](Queue::try_get) or
    /// [`get_timeout`](Queue::get_timeout) after a `wait` when several consumers share
    /// the queue.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_core::{Process, wait};
    /// use proc_ipc::Queue;
    ///
    /// let q: Queue<String> = Queue::new(0)?;
    /// assert!(wait(&[&q], Some(Duration::from_millis(10)))?.is_empty());
    /// let mut p = Process::new({
    ///     let q = q.clone();
    ///     move || q.put("hello".to_string()).unwrap()
    /// });
    /// p.start()?;
    /// assert_eq!(wait(&[&q], None)?, [0]);
    /// assert_eq!(q.get()?, "hello");
    /// p.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_source(&self) -> proc_core::Result<WaitSource<'_>> {
        Ok(WaitSource::Watched(self.shared()))
    }
}
