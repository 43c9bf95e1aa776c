//! How [`proc_core::wait`] waits for a queue: a queue is ready when a get would not block,
//! that is when a frame is published past `head` (an item, or the first chunk of a streamed
//! one, whose producer is streaming the rest) or the queue is closed.
//!
//! The queue has no descriptor to poll, so `wait` watches it from a bridge thread that
//! sleeps on the consumers' doorbell as a consumer does: counted as a sleeper, so every
//! publication and `close` rings it, with no cost to puts and gets while nobody waits.
//!
//! Ending a bridge's sleep without waking the queue's consumers: the bridge sleeps as a
//! doorbell *watcher* (`Doorbell::sleep_watching`, a futex bitset of its own, which every
//! ring still wakes), and `interrupt` wakes the watchers alone (`Doorbell::wake_watchers`).
//! Ringing the doorbell instead (`ring_always`) would wake every consumer blocked in `get`
//! on the queue each time a `wait` on it ends while its bridge sleeps; measured, that cost
//! such a consumer 22 µs of CPU time per `wait` (it looks at the queue again, watching it
//! for a few microseconds before it sleeps again), against none (under 2 µs, the resolution
//! of the measure) with the bitset. A `wait` in another process that ends wakes this
//! process's bridges on the same queue too: they look once and sleep again.

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
        bell.sleep_watching(|| self.is_ready() || stop(), None);
    }

    fn interrupt(&self) {
        self.ring.header().wait.0.bell.wake_watchers();
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
