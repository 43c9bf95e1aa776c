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
//!
//! A barrier built with an action ([`BarrierBuilder::action`]) runs it in the last party
//! to arrive, under the mutex, before the round trips. The action is a `fn()`, which every
//! handle carries: a forked child has the same address; a handle sent to a spawned process
//! carries it as a [`CodeAddress`] (its offset in the executable, which both run), resolved
//! and checked to be code of that executable on receipt. The memory says whether the
//! barrier has an action, and its default timeout, written once when it is built.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use proc_core::internal::CodeAddress;

use crate::deadline::{Deadline, How};
use crate::error::{Error, Result};
use crate::futex::{self, Wake};
use crate::mutex_region::{MutexHeader, MutexRegion};
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
    /// The default timeout of `wait` in nanoseconds, [`NO_TIMEOUT`] for none (written once
    /// at creation).
    timeout_nanos: AtomicU64,
    /// 1 if the barrier was built with an action, 0 if not (written once at creation):
    /// what a received handle's action is checked against.
    has_action: AtomicU32,
}

/// The longest a waiter sleeps before it looks at the barrier's lock by itself. A party
/// that dies holding the lock (in the action, say) cannot wake the others; the kernel
/// releases the lock, and the next waiter to look takes it, sees its holder died and
/// breaks the barrier for all. Every trip, break and reset still wakes them at once.
const RECHECK: Duration = Duration::from_millis(50);

/// `timeout_nanos` of a barrier whose `wait` waits for ever.
const NO_TIMEOUT: u64 = u64::MAX;

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
///
/// [`Barrier::builder`] adds an action, run by one party each round before any is released,
/// and a default timeout for [`wait`](Barrier::wait), as Python's `Barrier(parties, action,
/// timeout)`.
#[derive(Clone)]
pub struct Barrier {
    shared: MutexRegion<BarrierHeader, u8>,
    parties: u32,
    action: Option<fn()>,
}

/// Builds a [`Barrier`] with an action and a default timeout: [`Barrier::builder`].
///
/// ```
/// use std::time::Duration;
///
/// fn round_done() {
///     println!("every party arrived");
/// }
///
/// let barrier = proc_sync::Barrier::builder(1)
///     .action(round_done)
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(barrier.wait()?, 0); // prints once, then returns
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use = "a builder does nothing until build() is called"]
pub struct BarrierBuilder {
    parties: u32,
    action: Option<fn()>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` in one of the parties (the last to arrive) each time the barrier
    /// trips, before any party is released, as Python's `action`. If it panics, the
    /// barrier breaks: every party of that round, the one that ran it included, gets
    /// [`Error::BrokenBarrier`] (the panic's message goes to the panic hook, stderr by
    /// default), until [`Barrier::reset`].
    ///
    /// It is a plain `fn()` so that any process of the program can run it: a forked child
    /// calls the same address, a spawned one the same function of the same executable. A
    /// function outside the main executable (in a shared library) cannot travel to a
    /// spawned process: sending the barrier there fails with an error that says so.
    ///
    /// ```
    /// fn nothing() {}
    /// let b = proc_sync::Barrier::builder(2).action(nothing).build()?;
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn action(self, action: fn()) -> Self {
        BarrierBuilder {
            action: Some(action),
            ..self
        }
    }

    /// The timeout of [`Barrier::wait`]: a round not complete within it breaks the barrier
    /// (as [`Barrier::wait_timeout`] does). Without one, `wait` waits for ever.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let b = proc_sync::Barrier::builder(2).timeout(Duration::from_millis(10)).build()?;
    /// assert!(b.wait().is_err()); // nobody else came in time
    /// assert!(b.is_broken());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        BarrierBuilder {
            timeout: Some(timeout),
            ..self
        }
    }

    /// The barrier.
    ///
    /// ```
    /// let b = proc_sync::Barrier::builder(3).build()?;
    /// assert_eq!(b.parties(), 3);
    /// assert!(proc_sync::Barrier::builder(0).build().is_err());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Barrier::new`].
    pub fn build(self) -> Result<Barrier> {
        let BarrierBuilder {
            parties,
            action,
            timeout,
        } = self;
        if parties == 0 {
            return Err(Error::InvalidArgument {
                reason: "a barrier needs at least one party",
            });
        }
        let shared: MutexRegion<BarrierHeader, u8> =
            MutexRegion::new(c"multiproc-barrier", Kind::ErrorCheck, 0)?;
        let header = shared.header();
        header.parties.store(parties, Ordering::Relaxed);
        // A timeout of u64::MAX nanoseconds or more (584 years) is none.
        let nanos = timeout.map_or(NO_TIMEOUT, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(NO_TIMEOUT)
        });
        header.timeout_nanos.store(nanos, Ordering::Relaxed);
        header
            .has_action
            .store(u32::from(action.is_some()), Ordering::Relaxed);
        header.stamp.write(Primitive::Barrier, Element::NONE);
        Ok(Barrier {
            shared,
            parties,
            action,
        })
    }
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

/// A barrier's action as it travels: its place in the executable.
fn action_address<E: serde::ser::Error>(action: Option<fn()>) -> Result<Option<CodeAddress>, E> {
    action
        .map(|f| CodeAddress::of(f as usize))
        .transpose()
        .map_err(|e| E::custom(format!("a Barrier's action cannot travel: {e}")))
}

crate::handle_wire::travels!(
    Primitive::Barrier, [] Barrier,
    |barrier| (barrier.shared.fd(), (barrier.parties, action_address::<S::Error>(barrier.action)?)),
    |fd, sent: (u32, Option<CodeAddress>)| {
        let (parties, action) = sent;
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
        let has_action = header.has_action.load(Ordering::Relaxed);
        match (has_action, action.is_some()) {
            (0, false) | (1, true) => {}
            (0 | 1, _) => {
                return refuse(format!(
                    "a barrier {} an action sent as one {} one",
                    if has_action == 1 { "with" } else { "without" },
                    if action.is_some() { "with" } else { "without" },
                ));
            }
            (other, _) => return refuse(format!("a barrier whose action flag is {other}")),
        }
        let action = match action {
            None => None,
            Some(address) => {
                let address = address.resolve().map_err(|e| Error::Received {
                    reason: format!("a Barrier's action: {e}"),
                })?;
                // SAFETY: the address is inside this executable's code (checked by
                // `resolve`); it was sent as the offset of a `fn()` of the same executable
                // (the start methods check both processes run the same file), by a process
                // that shares this barrier's memory and so is trusted as a forked child is.
                Some(unsafe { std::mem::transmute::<usize, fn()>(address) })
            }
        };
        Ok(Barrier { shared, parties, action })
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
        Barrier::builder(parties).build()
    }

    /// A builder for a barrier of `parties` parties with an
    /// [`action`](BarrierBuilder::action) and a default
    /// [`timeout`](BarrierBuilder::timeout), as Python's `Barrier(parties, action, timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// fn tick() {}
    /// let b = proc_sync::Barrier::builder(2)
    ///     .action(tick)
    ///     .timeout(Duration::from_secs(5))
    ///     .build()?;
    /// assert_eq!(b.timeout(), Some(Duration::from_secs(5)));
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn builder(parties: u32) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// The timeout [`wait`](Barrier::wait) uses, if the barrier was built with one.
    ///
    /// ```
    /// assert_eq!(proc_sync::Barrier::new(2)?.timeout(), None);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        match self.header().timeout_nanos.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
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
    /// `0..parties` (distinct for each party of a round). With a default
    /// [`timeout`](BarrierBuilder::timeout), waits at most that long, as
    /// [`wait_timeout`](Barrier::wait_timeout).
    ///
    /// ```
    /// let b = proc_sync::Barrier::new(1)?;
    /// assert_eq!(b.wait()?, 0); // a single party trips it alone
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken while waiting (a timeout,
    /// an abort, a party that died while updating it, an action that panicked); the
    /// errors of a lock (see [`Lock::acquire_checked`](crate::Lock::acquire_checked)) if its
    /// internal lock cannot be taken.
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(self.timeout().map(Deadline::after))
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
            // The action runs before anyone is released, under the lock (a death in it
            // breaks the barrier, as any death under the lock does).
            if let Some(action) = self.action
                && std::panic::catch_unwind(action).is_err()
            {
                locked.break_current();
                return Err(Error::BrokenBarrier);
            }
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
            // Never asleep longer than RECHECK: see its docs.
            let recheck = Deadline::after(RECHECK);
            let until = deadline.map_or(recheck, |deadline| recheck.earliest(&deadline));
            if futex::wait(&header.wakeups, wakeups, Some(&until)) == Wake::TimedOut {
                if !deadline.is_some_and(|deadline| deadline.has_passed()) {
                    // Time to look: a lock free with its holder dead breaks the barrier
                    // as it is taken (see `lock`); then the top of the loop says so.
                    drop(self.lock(How::Try)?);
                    continue;
                }
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
            .field("has_action", &self.action.is_some())
            .finish_non_exhaustive()
    }
}
