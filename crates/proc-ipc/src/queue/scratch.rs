//! Each thread's scratch buffer, which a put encodes its item into and a get copies an
//! item out into.

use std::cell::RefCell;

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
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
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
