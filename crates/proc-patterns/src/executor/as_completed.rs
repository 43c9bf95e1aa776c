//! [`as_completed`]: futures in the order they finish, as Python's
//! `concurrent.futures.as_completed`.

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;

use super::future::TaskFuture;

/// Yields `futures` as they finish (done or cancelled), those already done first; blocks
/// in `next` until one more is done, without polling. Python's
/// `concurrent.futures.as_completed`.
///
/// ```
/// use std::time::Duration;
/// use proc_patterns::{as_completed, Executor};
///
/// fn nap(ms: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// }
///
/// let ex = Executor::new(2)?;
/// let futures = [ex.submit(nap, 400)?, ex.submit(nap, 0)?];
/// let order: Vec<u64> = as_completed(futures).map(|f| f.result().unwrap()).collect();
/// assert_eq!(order, [0, 400]);
/// # Ok::<(), proc_patterns::Error>(())
/// ```
pub fn as_completed<R, I>(futures: I) -> impl Iterator<Item = TaskFuture<R>>
where
    R: DeserializeOwned,
    I: IntoIterator<Item = TaskFuture<R>>,
{
    let futures: Vec<Option<TaskFuture<R>>> = futures.into_iter().map(Some).collect();
    let (tx, done) = crossbeam_channel::unbounded();
    for (index, future) in futures.iter().flatten().enumerate() {
        if future.done() {
            // Its outcome may be on its channel before the result path has told its
            // watchers: it is done all the same, and comes first.
            let _ = tx.send(index);
        } else {
            future.shared().watch(tx.clone(), index);
        }
    }
    AsCompleted {
        remaining: futures.len(),
        futures,
        done,
    }
}

/// The iterator of [`as_completed`].
struct AsCompleted<R> {
    futures: Vec<Option<TaskFuture<R>>>,
    remaining: usize,
    /// The index of each future as it is done.
    done: Receiver<usize>,
}

impl<R> Iterator for AsCompleted<R> {
    type Item = TaskFuture<R>;

    fn next(&mut self) -> Option<TaskFuture<R>> {
        while self.remaining > 0 {
            let Ok(index) = self.done.recv() else {
                // Every watcher is gone without a word (cannot happen: each is told when
                // its task is done or its sink dropped): the rest, as they are, so that
                // each reports its own state rather than this waiting forever.
                self.remaining -= 1;
                return self.futures.iter_mut().find_map(Option::take);
            };
            if let Some(future) = self.futures.get_mut(index).and_then(Option::take) {
                self.remaining -= 1;
                return Some(future);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}
