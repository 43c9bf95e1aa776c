//! [`Event`]: a flag in shared memory that processes wait on until it is set.
//!
//! One atomic word holds the flag (bit 0), a "someone may be asleep" bit (bit 1) and a
//! count of `set` calls (the remaining bits). `set` only makes the wake-up system call when
//! the sleeper bit is on. A waiter returns when the flag is set *or* the count moved: so a
//! waiter woken by `set` returns `true` even if another process cleared the flag again
//! before it ran, as with Python's `Event`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::Result;
use crate::futex::{self, Wake};
use crate::shared_atomics::{AtomicBlock, SharedAtomics};
use crate::stamp::{Element, Primitive, Stamp};

const SET: u32 = 1;
const SLEEPERS: u32 = 2;
const ONE_SET_CALL: u32 = 4;

/// An interprocess event, as Python's `multiprocessing.Event`: a flag that starts clear;
/// [`wait`](Event::wait) blocks until some process [`set`](Event::set)s it, and every
/// waiter wakes.
///
/// ```
/// use proc_sync::Event;
///
/// let go = Event::new()?;
/// let mut child = proc_core::Process::new({
///     let go = go.clone();
///     move || {
///         go.wait();
///         println!("started");
///     }
/// });
/// child.start().unwrap();
/// go.set();
/// assert_eq!(child.join().unwrap(), 0);
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    flag: SharedAtomics<Flag>,
}

/// The event's word (see the module's docs), and what it is.
#[repr(C)]
struct Flag {
    word: AtomicU32,
    stamp: Stamp,
}

// SAFETY: atomics only; zero is a clear event (and no stamp yet).
unsafe impl AtomicBlock for Flag {}

crate::handle_wire::travels!(
    Primitive::Event, [] Event,
    |event| (event.flag.fd(), ()),
    |fd, _nothing: ()| {
        // Any word is a valid event: the stamp is all there is to check.
        let flag = SharedAtomics::<Flag>::from_fd(fd)?;
        flag.get().stamp.check(Primitive::Event, Element::NONE)?;
        Ok(Event { flag })
    }
);

impl Event {
    /// A new event, clear.
    ///
    /// ```
    /// assert!(!proc_sync::Event::new()?.is_set());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new() -> Result<Event> {
        let flag = SharedAtomics::<Flag>::new(c"multiproc-event")?;
        flag.get().stamp.write(Primitive::Event, Element::NONE);
        Ok(Event { flag })
    }

    fn word(&self) -> &AtomicU32 {
        &self.flag.get().word
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let e = proc_sync::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn set(&self) {
        let word = self.word();
        let mut current = word.load(Ordering::Relaxed);
        loop {
            if current & SET != 0 {
                return;
            }
            let new = (current.wrapping_add(ONE_SET_CALL) & !SLEEPERS) | SET;
            match word.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if current & SLEEPERS != 0 {
            futex::wake_all(word);
        }
    }

    /// Clears the flag: later waits block until the next `set`.
    ///
    /// ```
    /// let e = proc_sync::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn clear(&self) {
        self.word().fetch_and(!SET, Ordering::AcqRel);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let e = proc_sync::Event::new()?;
    /// assert!(!e.is_set());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.word().load(Ordering::Acquire) & SET != 0
    }

    /// Blocks until the flag is set (returns at once if it is).
    ///
    /// ```
    /// let e = proc_sync::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks at most `timeout` until the flag is set: `true` if it was set (or a `set`
    /// happened while waiting), `false` on timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let e = proc_sync::Event::new()?;
    /// assert!(!e.wait_timeout(Duration::from_millis(10)));
    /// e.set();
    /// assert!(e.wait_timeout(Duration::from_millis(10)));
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(&Deadline::after(timeout)))
    }

    fn wait_until(&self, deadline: Option<&Deadline>) -> bool {
        let word = self.word();
        let mut current = word.load(Ordering::Acquire);
        let calls_at_start = current / ONE_SET_CALL;
        loop {
            if current & SET != 0 || current / ONE_SET_CALL != calls_at_start {
                return true;
            }
            if current & SLEEPERS == 0 {
                if let Err(actual) = word.compare_exchange_weak(
                    current,
                    current | SLEEPERS,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    current = actual;
                    continue;
                }
                current |= SLEEPERS;
            }
            let wake = futex::wait(word, current, deadline);
            current = word.load(Ordering::Acquire);
            if wake == Wake::TimedOut {
                return current & SET != 0 || current / ONE_SET_CALL != calls_at_start;
            }
        }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
