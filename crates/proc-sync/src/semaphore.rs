//! [`Semaphore`] and [`BoundedSemaphore`]: a counter in shared memory that `acquire`
//! decrements (blocking at zero) and `release` increments.
//!
//! The count is one atomic word; acquire is a compare-and-swap loop and sleeps on the count
//! word with a futex when it reads zero. A second word counts sleepers, so that a release
//! makes the wake-up system call only when someone may be asleep. A release wakes *all*
//! sleepers rather than one: if it woke one and that process were killed before taking the
//! unit, the others would sleep on although the count is positive. Woken sleepers race for
//! the count; the losers sleep again. A sleeper killed while counted leaves the sleeper
//! count too high, which costs later releases a wake-up call with nobody to wake, nothing
//! more.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::futex::{self, Wake};
use crate::shared_atomics::{AtomicBlock, SharedAtomics};
use crate::stamp::{Element, Primitive, Stamp};

#[repr(C)]
struct Header {
    count: AtomicU32,
    sleepers: AtomicU32,
    /// The largest count (`u32::MAX` for a `Semaphore`), written once at creation: what a
    /// received handle's limit is checked against.
    limit: AtomicU32,
    stamp: Stamp,
}

// SAFETY: atomics only; all-zero is a count of 0 with no sleepers (and no stamp yet).
unsafe impl AtomicBlock for Header {}

/// The shared state and the limit of a semaphore.
#[derive(Clone)]
struct Shared {
    block: SharedAtomics<Header>,
    limit: u32,
}

impl Shared {
    /// A received semaphore's memory, checked: stamped as `primitive`, with the limit that
    /// travelled with it, and a count within that limit.
    fn receive(fd: std::os::fd::OwnedFd, primitive: Primitive, limit: u32) -> Result<Shared> {
        let block = SharedAtomics::<Header>::from_fd(fd)?;
        let header = block.get();
        header.stamp.check(primitive, Element::NONE)?;
        let refuse = |reason: String| Err(Error::Received { reason });
        let recorded = header.limit.load(Ordering::Relaxed);
        if recorded != limit {
            return refuse(format!(
                "{} whose limit is {recorded} was sent as one whose limit is {limit}",
                primitive.a()
            ));
        }
        if primitive == Primitive::Semaphore && limit != u32::MAX {
            return refuse(format!(
                "a Semaphore with a limit ({limit}), which only a BoundedSemaphore has"
            ));
        }
        let count = header.count.load(Ordering::Acquire);
        if count > limit {
            return refuse(format!(
                "{} whose count {count} is above its limit {limit}",
                primitive.a()
            ));
        }
        Ok(Shared { block, limit })
    }

    fn new(
        value: u32,
        limit: u32,
        primitive: Primitive,
        name: &'static std::ffi::CStr,
    ) -> Result<Shared> {
        let shared = Shared {
            block: SharedAtomics::new(name)?,
            limit,
        };
        let header = shared.header();
        header.count.store(value, Ordering::Release);
        header.limit.store(limit, Ordering::Release);
        header.stamp.write(primitive, Element::NONE);
        Ok(shared)
    }

    fn header(&self) -> &Header {
        self.block.get()
    }

    fn try_take(&self) -> bool {
        let count = &self.header().count;
        let mut current = count.load(Ordering::Relaxed);
        while current > 0 {
            match count.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    fn take_until(&self, deadline: Option<&Deadline>) -> bool {
        let header = self.header();
        loop {
            if self.try_take() {
                return true;
            }
            // Count ourselves as a sleeper before the futex re-checks the count: a release
            // either sees us counted (and wakes us) or happened before, and then the futex
            // finds the count non-zero and returns at once.
            header.sleepers.fetch_add(1, Ordering::SeqCst);
            let wake = futex::wait(&header.count, 0, deadline);
            header.sleepers.fetch_sub(1, Ordering::SeqCst);
            if wake == Wake::TimedOut {
                return self.try_take();
            }
        }
    }

    fn release(&self) -> Result<()> {
        let header = self.header();
        let mut current = header.count.load(Ordering::Relaxed);
        loop {
            if current >= self.limit {
                return Err(Error::SemaphoreOverRelease { limit: self.limit });
            }
            match header.count.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if header.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&header.count);
        }
        Ok(())
    }
}

macro_rules! semaphore_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Shared,
        }

        impl $name {
            /// Blocks until the count is positive, then decrements it.
            ///
            /// ```
            #[doc = concat!("let s = proc_sync::", stringify!($name), "::new(1)?;")]
            /// s.acquire();
            /// assert_eq!(s.value(), 0);
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn acquire(&self) {
                self.shared.take_until(None);
            }

            /// Decrements the count if it is positive; `false` (without waiting) if it is 0.
            ///
            /// ```
            #[doc = concat!("let s = proc_sync::", stringify!($name), "::new(1)?;")]
            /// assert!(s.try_acquire());
            /// assert!(!s.try_acquire());
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn try_acquire(&self) -> bool {
                self.shared.try_take()
            }

            /// Waits at most `timeout` for the count to be positive and decrements it;
            /// `false` if it stayed 0.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let s = proc_sync::", stringify!($name), "::new(0)?;")]
            /// assert!(!s.acquire_timeout(Duration::from_millis(10)));
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> bool {
                self.shared.take_until(Some(&Deadline::after(timeout)))
            }

            /// The current count (already stale when it returns, if others use it).
            ///
            /// ```
            #[doc = concat!("let s = proc_sync::", stringify!($name), "::new(3)?;")]
            /// assert_eq!(s.value(), 3);
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn value(&self) -> u32 {
                self.shared.header().count.load(Ordering::Acquire)
            }
        }

        crate::handle_wire::travels!(
            Primitive::$name, [] $name,
            |semaphore| (semaphore.shared.block.fd(), semaphore.shared.limit),
            |fd, limit: u32| Ok($name {
                shared: Shared::receive(fd, Primitive::$name, limit)?,
            })
        );

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("value", &self.value())
                    .finish()
            }
        }
    };
}

semaphore_type! {
    /// An interprocess counting semaphore, as Python's `multiprocessing.Semaphore`.
    ///
    /// Unlike a [`Lock`](crate::Lock), a semaphore has no owner: any process may release
    /// what another acquired, which makes it the tool for handing permits between
    /// processes. A process that dies holding a unit does not give it back (there is no
    /// owner to notice), but a process that dies while *waiting* never stops the others.
    ///
    /// ```
    /// use proc_sync::Semaphore;
    ///
    /// let ready = Semaphore::new(0)?;
    /// let mut child = proc_core::Process::new({
    ///     let ready = ready.clone();
    ///     move || ready.release().unwrap()
    /// });
    /// child.start().unwrap();
    /// ready.acquire(); // returns once the child has released
    /// # child.join().unwrap();
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    Semaphore
}

impl Semaphore {
    /// A semaphore whose count starts at `value`.
    ///
    /// ```
    /// let s = proc_sync::Semaphore::new(2)?;
    /// assert_eq!(s.value(), 2);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore> {
        Ok(Semaphore {
            shared: Shared::new(
                value,
                u32::MAX,
                Primitive::Semaphore,
                c"multiproc-semaphore",
            )?,
        })
    }

    /// Increments the count, waking waiters. Any process may release.
    ///
    /// ```
    /// let s = proc_sync::Semaphore::new(0)?;
    /// s.release()?;
    /// s.release()?;
    /// assert_eq!(s.value(), 2);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::SemaphoreOverRelease`] if the count is already `u32::MAX`.
    pub fn release(&self) -> Result<()> {
        self.shared.release()
    }
}

semaphore_type! {
    /// A semaphore whose count may never exceed its initial value, as Python's
    /// `multiprocessing.BoundedSemaphore`: a release without a matching acquire is caught
    /// as an error instead of silently raising the limit.
    ///
    /// ```
    /// let s = proc_sync::BoundedSemaphore::new(2)?;
    /// s.acquire();
    /// s.release()?;
    /// assert!(s.release().is_err()); // would make it 3
    /// assert_eq!(s.value(), 2);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    BoundedSemaphore
}

impl BoundedSemaphore {
    /// A semaphore whose count starts at, and may never exceed, `value`.
    ///
    /// ```
    /// let s = proc_sync::BoundedSemaphore::new(1)?;
    /// assert_eq!(s.value(), 1);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            shared: Shared::new(
                value,
                value,
                Primitive::BoundedSemaphore,
                c"multiproc-bounded-semaphore",
            )?,
        })
    }

    /// The initial value, which the count may never exceed.
    ///
    /// ```
    /// assert_eq!(proc_sync::BoundedSemaphore::new(4)?.limit(), 4);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn limit(&self) -> u32 {
        self.shared.limit
    }

    /// Increments the count, waking waiters. Any process may release.
    ///
    /// ```
    /// let s = proc_sync::BoundedSemaphore::new(1)?;
    /// s.acquire();
    /// s.release()?;
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::SemaphoreOverRelease`] if the count is already at the initial value; the
    /// count is left unchanged.
    pub fn release(&self) -> Result<()> {
        self.shared.release()
    }
}
