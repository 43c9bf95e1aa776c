//! [`Barrier`]: parties wait until all have arrived, as Python's `multiprocessing.Barrier`.
//!
//! The state lives under a robust mutex: how many have arrived, the generation number, and
//! a bitmap of which of the last 64 generations were broken. Waiters sleep (futex) on a
//! separate wake-up word that every trip, break and reset moves. A waiter of generation
//! `g` learns its outcome from the state, without the lock: if the generation moved on,
//! bit `g % 64` of the bitmap says whether `g` ended broken; if not, the current
//! generation's bit says whether it is broken now. (So a waiter may lag at most 63
//! generations behind; lagging that far would take 63 complete rounds of the others while
//! it had already been woken and not yet run.)
//!
//! A holder of the mutex that dies may leave the state half updated; the next locker sees
//! `previous_owner_died` and breaks the barrier, so that every waiter gets
//! [`Error::BrokenBarrier`] instead of a wrong count, until [`Barrier::reset`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::futex::{self, Wake};
use crate::mutex_region::{How, MutexHeader, MutexRegion};
use crate::raw_mutex::{Kind, RawMutex};
use crate::stamp::{Element, Primitive, Stamp};

#[repr(C)]
struct BarrierHeader {
    mutex: RawMutex,
    /// Parties that arrived in the current generation (under the mutex).
    arrived: AtomicU32,
    /// The current generation (written under the mutex).
    generation: AtomicU32,
    /// Bit `g % 64` set: generation `g` is (or ended) broken (written under the mutex).
    broken: AtomicU64,
    /// Moved by every trip, break and reset: what waiters sleep on.
    wakeups: AtomicU32,
    /// The parties a round needs, written once at creation: what a received handle's
    /// number is checked against.
    parties: AtomicU32,
    stamp: Stamp,
}

// SAFETY: repr(C), the mutex is the first field, the others are atomics (zero is valid).
unsafe impl MutexHeader for BarrierHeader {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

fn bit(generation: u32) -> u64 {
    1 << (generation % 64)
}

/// A barrier for a fixed number of parties, across processes, as Python's
/// `multiprocessing.Barrier`.
///
/// Each [`wait`](Barrier::wait) blocks until `parties` waits have been made, then all
/// return, each with a distinct index in `0..parties` (arrival order). A timed-out wait or
/// [`abort`](Barrier::abort) *breaks* the barrier: every current and later waiter gets
/// [`Error::BrokenBarrier`] until [`reset`](Barrier::reset). The barrier is reusable: after
/// a trip, the next `parties` waits form the next round.
///
/// ```
/// use proc_sync::Barrier;
///
/// let barrier = Barrier::new(2)?;
/// let mut child = proc_core::Process::new({
///     let barrier = barrier.clone();
///     move || {
///         barrier.wait().unwrap();
///     }
/// });
/// child.start().unwrap();
/// let index = barrier.wait()?; // returns once the child has arrived too
/// assert!(index < 2);
/// # child.join().unwrap();
/// # Ok::<(), proc_sync::Error>(())
/// ```
///
/// A party killed after it arrived still counts; a party killed while it held the
/// barrier's internal lock breaks the barrier (its update may be half done); a party that
/// never arrives leaves the others waiting, so give them a timeout if that can happen.
#[derive(Clone)]
pub struct Barrier {
    shared: MutexRegion<BarrierHeader, u8>,
    parties: u32,
}

/// The barrier's lock is held; released on drop.
struct Locked<'a> {
    header: &'a BarrierHeader,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Cannot fail: this thread locked the mutex in `Barrier::lock` and nothing else
        // releases it.
        let _ = self.header.mutex.unlock("Barrier");
    }
}

impl Locked<'_> {
    fn generation(&self) -> u32 {
        self.header.generation.load(Ordering::Relaxed)
    }

    fn is_broken(&self) -> bool {
        self.header.broken.load(Ordering::Relaxed) & bit(self.generation()) != 0
    }

    fn wake_everyone(&self) {
        self.header.wakeups.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.header.wakeups);
    }

    fn break_current(&self) {
        self.header
            .broken
            .fetch_or(bit(self.generation()), Ordering::Release);
        self.wake_everyone();
    }

    /// Starts a new, unbroken generation with nobody arrived.
    fn next_generation(&self) {
        let next = self.generation().wrapping_add(1);
        self.header.broken.fetch_and(!bit(next), Ordering::Relaxed);
        self.header.arrived.store(0, Ordering::Relaxed);
        self.header.generation.store(next, Ordering::Release);
        self.wake_everyone();
    }
}

crate::handle_wire::travels!(
    Primitive::Barrier, [] Barrier,
    |barrier| (barrier.shared.fd(), barrier.parties),
    |fd, parties: u32| {
        let refuse = |reason: String| Err(Error::Received { reason });
        if parties == 0 {
            return refuse("a barrier for zero parties".into());
        }
        let shared: MutexRegion<BarrierHeader, u8> = MutexRegion::from_fd(fd, 0, Kind::ErrorCheck)?;
        let header = shared.header();
        header.stamp.check(Primitive::Barrier, Element::NONE)?;
        let recorded = header.parties.load(Ordering::Relaxed);
        if recorded != parties {
            return refuse(format!("a barrier for {recorded} parties sent as one for {parties}"));
        }
        // Fewer than `parties` have arrived in any state a barrier can be in, even one a
        // holder of its lock died updating (the count is one word, set below `parties`).
        let arrived = header.arrived.load(Ordering::Relaxed);
        if arrived >= parties {
            return refuse(format!(
                "a barrier for {parties} parties at which {arrived} are said to wait"
            ));
        }
        Ok(Barrier { shared, parties })
    }
);

impl Barrier {
    /// A barrier for `parties` parties.
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(3)?;
    /// assert_eq!(b.parties(), 3);
    /// assert!(proc_sync::Barrier::new(0).is_err());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero parties; [`Error::Io`] if the shared memory
    /// cannot be created.
    pub fn new(parties: u32) -> Result<Barrier> {
        if parties == 0 {
            return Err(Error::InvalidArgument {
                reason: "a barrier needs at least one party",
            });
        }
        let shared: MutexRegion<BarrierHeader, u8> =
            MutexRegion::new(c"multiproc-barrier", Kind::ErrorCheck, 0)?;
        shared.header().parties.store(parties, Ordering::Relaxed);
        shared
            .header()
            .stamp
            .write(Primitive::Barrier, Element::NONE);
        Ok(Barrier { shared, parties })
    }

    /// The number of parties a round needs.
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(2)?.parties(), 2);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.parties
    }

    fn header(&self) -> &BarrierHeader {
        self.shared.header()
    }

    fn lock(&self, how: How) -> Result<Option<Locked<'_>>> {
        let Some(died) = self.shared.lock_with(how, "Barrier")? else {
            return Ok(None);
        };
        let locked = Locked {
            header: self.header(),
        };
        if died {
            // The dead holder may have counted itself without tripping, or tripped halfway:
            // no count can be trusted, so this generation is broken.
            locked.break_current();
        }
        Ok(Some(locked))
    }

    fn lock_blocking(&self) -> Result<Locked<'_>> {
        self.lock(How::Block)?.ok_or(Error::BrokenBarrier)
    }

    /// Waits until all parties have called `wait`; returns this party's index in
    /// `0..parties` (distinct for each party of a round).
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(1)?;
    /// assert_eq!(b.wait()?, 0); // a single party trips it alone
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken while waiting; the
    /// errors of a lock (see [`Lock::acquire_checked`](crate::Lock::acquire_checked)) if its
    /// internal lock cannot be taken.
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(None)
    }

    /// As [`wait`](Barrier::wait), but if the round is not complete within `timeout` the
    /// barrier breaks (for every waiter) and this returns [`Error::BrokenBarrier`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let b = proc_sync::Barrier::new(2)?;
    /// assert!(b.wait_timeout(Duration::from_millis(10)).is_err()); // nobody else came
    /// assert!(b.is_broken());
    /// b.reset()?;
    /// assert!(!b.is_broken());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_until(Some(Deadline::after(timeout)))
    }

    fn wait_until(&self, deadline: Option<Deadline>) -> Result<usize> {
        let header = self.header();
        let locked = self.lock_blocking()?;
        if locked.is_broken() {
            return Err(Error::BrokenBarrier);
        }
        // Another process may write any count: none can overflow this, nor give an index
        // outside 0..parties.
        let index = header.arrived.load(Ordering::Relaxed).min(self.parties - 1);
        if index == self.parties - 1 {
            locked.next_generation();
            return Ok(index as usize);
        }
        header.arrived.store(index + 1, Ordering::Relaxed);
        let generation = locked.generation();
        let mut wakeups = header.wakeups.load(Ordering::Acquire);
        drop(locked);

        loop {
            // The outcome of our generation, read without the lock: the bitmap bit is
            // written before the generation or wake-up word moves (Release/Acquire).
            let current = header.generation.load(Ordering::Acquire);
            let broken = header.broken.load(Ordering::Acquire) & bit(generation) != 0;
            if current != generation {
                return if broken {
                    Err(Error::BrokenBarrier)
                } else {
                    Ok(index as usize)
                };
            }
            if broken {
                return Err(Error::BrokenBarrier);
            }
            if futex::wait(&header.wakeups, wakeups, deadline.as_ref()) == Wake::TimedOut {
                let locked = self.lock_blocking()?;
                if locked.generation() == generation && !locked.is_broken() {
                    locked.break_current();
                    return Err(Error::BrokenBarrier);
                }
                // The round completed (or broke) just before the timeout: report that.
                drop(locked);
                continue;
            }
            wakeups = header.wakeups.load(Ordering::Acquire);
        }
    }

    /// Breaks the barrier: every current and later waiter gets [`Error::BrokenBarrier`]
    /// until [`reset`](Barrier::reset). Useful to release waiters when a party fails.
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(2)?;
    /// b.abort()?;
    /// assert!(matches!(b.wait(), Err(proc_sync::Error::BrokenBarrier)));
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of the internal lock, as for [`wait`](Barrier::wait).
    pub fn abort(&self) -> Result<()> {
        self.lock_blocking()?.break_current();
        Ok(())
    }

    /// Returns the barrier to its empty, unbroken state. Parties waiting at that moment get
    /// [`Error::BrokenBarrier`], as in Python.
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(1)?;
    /// b.abort()?;
    /// b.reset()?;
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of the internal lock, as for [`wait`](Barrier::wait).
    pub fn reset(&self) -> Result<()> {
        let locked = self.lock_blocking()?;
        if self.header().arrived.load(Ordering::Relaxed) > 0 {
            // Those waiting now must not pass: their round is over, unfinished.
            self.header()
                .broken
                .fetch_or(bit(locked.generation()), Ordering::Release);
        }
        if locked.is_broken() || self.header().arrived.load(Ordering::Relaxed) > 0 {
            locked.next_generation();
        }
        Ok(())
    }

    /// Whether the barrier is broken (a timeout, an abort, or a party that died while
    /// updating it).
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(2)?;
    /// assert!(!b.is_broken());
    /// b.abort()?;
    /// assert!(b.is_broken());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        match self.lock_blocking() {
            Ok(locked) => locked.is_broken(),
            Err(_) => true,
        }
    }

    /// How many parties are waiting in the current round.
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        match self.lock_blocking() {
            Ok(locked) if !locked.is_broken() => self.header().arrived.load(Ordering::Relaxed),
            _ => 0,
        }
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}
