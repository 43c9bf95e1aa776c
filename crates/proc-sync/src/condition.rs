//! [`Condition`]: a condition variable with its own robust lock, or over a shared
//! [`Lock`] or [`RLock`], as Python's `multiprocessing.Condition`, optionally guarding a
//! plain-data value. See `waiters` for how a notification finds its waiter, and
//! `condition_lock` for the lock a wait releases and takes back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytemuck::Pod;

use crate::condition_lock::{OWN_LOCK, SharedLock, UnderLock};
use crate::deadline::{Deadline, How};
use crate::error::{Error, Result};
use crate::futex::{self, Wake};
use crate::lock::{Lock, RLock, block_forever};
use crate::mutex_region::{MutexRegion, ValueGuard};
use crate::raw_mutex::{Kind, RawMutex};
use crate::stamp::{Element, Primitive};
use crate::waiters::{ConditionHeader, NOTIFIED, SlotHeld, WAITING};

/// An interprocess condition variable that owns its lock, as Python's
/// `multiprocessing.Condition`; `Condition<T>` also keeps a plain-data `T` under that lock
/// (`Condition` alone is `Condition<()>`).
///
/// [`lock`](Condition::lock) gives a [`ConditionGuard`] (with
/// [`previous_owner_died`](ConditionGuard::previous_owner_died), as every lock here);
/// [`wait`](Condition::wait) releases it while sleeping and returns it re-acquired.
/// A wait returns when it is notified (or times out); still, wait in a loop on a
/// predicate, or use [`wait_while`](Condition::wait_while), which does: a notification says
/// that the state may have changed, not how, and another process may have changed it again
/// before the waiter has the lock back (and, with more than 128 waiters at once, some wake
/// spuriously: see the notes below).
///
/// ```
/// use proc_sync::Condition;
///
/// // A counter that a child raises and the parent waits on.
/// let ready = Condition::with_value(0u32)?;
/// let mut child = proc_core::Process::new({
///     let ready = ready.clone();
///     move || {
///         *ready.lock() = 3;
///         ready.notify_all();
///     }
/// });
/// child.start().unwrap();
/// let guard = ready.wait_while(ready.lock(), |n| *n < 3);
/// assert_eq!(*guard, 3);
/// # drop(guard);
/// # child.join().unwrap();
/// # Ok::<(), proc_sync::Error>(())
/// ```
///
/// A notification reaches the processes (and threads) waiting at that moment, the
/// longest-waiting first: [`notify_one`](Condition::notify_one) makes at most one of them
/// return, [`notify`](Condition::notify) at most `n`, and each one notified returns. A
/// waiter that was killed is passed over; one killed after it was notified, before it took
/// the lock back, spends that notification. A timed wait that runs out spends none.
///
/// Up to 128 waiters at once are notified one by one; with more, those beyond 128 wake at
/// every notification (and whenever a waiter leaves), as from a spurious wake-up, and
/// take a place among the 128 when they wait again.
///
/// ## Over a shared lock
/// [`with_lock`](Condition::with_lock) and [`with_rlock`](Condition::with_rlock) make a
/// condition over an existing [`Lock`] or [`RLock`], as Python's `Condition(lock)`: several
/// conditions can share one lock (a queue's "not empty" and "not full"), and
/// [`lock`](Condition::lock) takes that lock. A wait on any of them releases the lock
/// (an `RLock` completely, however many times this thread holds it) and takes it back as
/// it was. A guard of one condition serves to wait on another over the same lock.
pub struct Condition<T = ()> {
    shared: MutexRegion<ConditionHeader, T>,
    /// The lock it is under, if not its own.
    lock: Option<SharedLock>,
}

impl<T> Clone for Condition<T> {
    fn clone(&self) -> Self {
        Condition {
            shared: self.shared.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl Condition<()> {
    /// A condition variable with its own lock and no value, as Python's `Condition()`.
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// let guard = c.lock();
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new() -> Result<Condition> {
        Condition::with_value(())
    }

    /// A condition variable over `lock`, as Python's `Condition(lock)`: [`lock`](Self::lock)
    /// takes `lock`, a wait releases it, and other conditions made with the same lock (in
    /// any process) share it.
    ///
    /// ```
    /// use proc_sync::{Condition, Lock};
    ///
    /// let lock = Lock::new()?;
    /// let not_empty = Condition::with_lock(&lock)?;
    /// let not_full = Condition::with_lock(&lock)?;
    /// let guard = not_empty.lock();
    /// assert!(lock.locked());
    /// assert!(not_full.try_lock().is_none()); // the same lock
    /// // A guard of one serves to wait on the other: nobody notifies, so this times out.
    /// let (guard, result) = not_full.wait_timeout(guard, std::time::Duration::from_millis(1));
    /// assert!(result.timed_out());
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the condition's shared memory cannot be made.
    pub fn with_lock(lock: &Lock) -> Result<Condition> {
        Condition::make((), Some(SharedLock::Lock(lock.clone())))
    }

    /// A condition variable over the re-entrant `lock`, as Python's `Condition(rlock)`: a
    /// wait releases it completely, however many times this thread holds it, and takes it
    /// back as many times.
    ///
    /// ```
    /// use proc_sync::{Condition, RLock};
    ///
    /// let rlock = RLock::new()?;
    /// let c = Condition::with_rlock(&rlock)?;
    /// let outer = rlock.acquire();
    /// let guard = c.lock(); // the owner re-enters
    /// let (guard, _) = c.wait_timeout(guard, std::time::Duration::from_millis(1));
    /// drop(guard);
    /// assert!(rlock.locked()); // `outer` still holds it
    /// drop(outer);
    /// assert!(!rlock.locked());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the condition's shared memory cannot be made.
    pub fn with_rlock(lock: &RLock) -> Result<Condition> {
        Condition::make((), Some(SharedLock::RLock(lock.clone())))
    }
}

/// Whether a timed wait of a [`Condition`] ended because its time was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because the timeout passed (and, for the `_while` form, the
    /// predicate still held).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let c = proc_sync::Condition::new()?;
    /// let (_guard, result) = c.wait_timeout(c.lock(), Duration::from_millis(1));
    /// assert!(result.timed_out()); // nobody notified it
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

crate::handle_wire::travels!(
    Primitive::Condition, [T: Pod] Condition<T>,
    |condition| (condition.shared.fd(), (Element::of::<T>(), &condition.lock)),
    |fd, sent: (Element, Option<SharedLock>)| {
        let (element, lock) = sent;
        element.check_sent::<T>(Primitive::Condition)?;
        let shared: MutexRegion<ConditionHeader, T> =
            MutexRegion::from_fd(fd, 1, Kind::ErrorCheck)?;
        let header = shared.header();
        header.stamp.check(Primitive::Condition, Element::of::<T>())?;
        header.check_received()?;
        let recorded = header.lock_code.load(Ordering::Relaxed);
        let sent = lock.as_ref().map_or(OWN_LOCK, SharedLock::code);
        if recorded != sent {
            return Err(Error::Received {
                reason: format!(
                    "a condition under {} sent as one under {}",
                    SharedLock::describe(recorded),
                    SharedLock::describe(sent)
                ),
            });
        }
        Ok(Condition { shared, lock })
    }
);

impl<T: Pod> Condition<T> {
    /// A condition variable whose lock guards `value`.
    ///
    /// ```
    /// let c = proc_sync::Condition::with_value(5i32)?;
    /// assert_eq!(*c.lock(), 5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn with_value(value: T) -> Result<Condition<T>> {
        Condition::make(value, None)
    }

    fn make(value: T, lock: Option<SharedLock>) -> Result<Condition<T>> {
        let shared: MutexRegion<ConditionHeader, T> =
            MutexRegion::new(c"multiproc-condition", Kind::ErrorCheck, 1)?;
        let header = shared.header();
        for slot in &header.slots {
            // SAFETY: nobody else can see the region yet, so nothing uses the slot's mutex;
            // it is aligned (a field of the aligned header) and stays in place for the
            // region's lifetime; a RawMutex is all interior mutability, so writing it
            // through a pointer made from a shared reference is allowed.
            unsafe { RawMutex::init(&raw const slot.mutex as *mut RawMutex, Kind::ErrorCheck)? };
        }
        header.lock_code.store(
            lock.as_ref().map_or(OWN_LOCK, SharedLock::code),
            Ordering::Relaxed,
        );
        header.stamp.write(Primitive::Condition, Element::of::<T>());
        // SAFETY: nobody else can see the region yet; the data pointer is valid and aligned.
        unsafe { shared.data().cast::<T>().write(value) };
        Ok(Condition { shared, lock })
    }

    /// The lock the condition is under.
    fn under(&self) -> UnderLock<'_> {
        match &self.lock {
            None => UnderLock::own(self.shared.mutex(), self.shared.region()),
            Some(lock) => UnderLock::shared(lock),
        }
    }

    /// A guard for this thread, which has just taken the lock (`died`: from a holder that
    /// died, so the waiter table is counted again).
    fn guard(&self, died: bool) -> ConditionGuard<'_, T> {
        if died {
            self.shared.header().repair();
        }
        // SAFETY: this thread holds the condition's lock (once, for this guard); the value
        // is valid, aligned and initialised (Pod) for as long as `self` lives, and only
        // touched under that lock.
        let inner = unsafe {
            ValueGuard::new(
                self.under().mutex,
                self.shared.data().cast::<T>(),
                "Condition",
                died,
            )
        };
        ConditionGuard {
            inner,
            condition: self,
        }
    }

    /// Blocks until this thread holds the condition's lock. Locking again in the thread
    /// that holds it waits forever (see [`lock_checked`](Condition::lock_checked)).
    ///
    /// ```
    /// let c = proc_sync::Condition::with_value(0u8)?;
    /// *c.lock() += 1;
    /// assert_eq!(*c.lock(), 1);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn lock(&self) -> ConditionGuard<'_, T> {
        self.lock_checked().unwrap_or_else(|_| block_forever())
    }

    /// Blocks until this thread holds the lock, or returns why it never will.
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// let guard = c.lock_checked()?;
    /// assert!(c.lock_checked().is_err()); // this thread holds it already
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::lock_checked`](crate::Value::lock_checked).
    pub fn lock_checked(&self) -> Result<ConditionGuard<'_, T>> {
        self.lock_with(How::Block)
            .map(|guard| guard.unwrap_or_else(|| block_forever()))
    }

    /// Locks if nobody holds the lock; `None` otherwise.
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// assert!(c.try_lock().is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn try_lock(&self) -> Option<ConditionGuard<'_, T>> {
        self.lock_with(How::Try).ok().flatten()
    }

    /// Waits at most `timeout` for the lock; `None` if not acquired in time.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let c = proc_sync::Condition::new()?;
    /// assert!(c.lock_timeout(Duration::from_secs(1)).is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_, T>> {
        self.lock_with(How::timeout(timeout)).ok().flatten()
    }

    fn lock_with(&self, how: How) -> Result<Option<ConditionGuard<'_, T>>> {
        let Some(died) = self.under().mutex.lock_with(how, "Condition")? else {
            return Ok(None);
        };
        Ok(Some(self.guard(died)))
    }

    /// Releases the lock, sleeps until notified, and re-acquires the lock. (Only with more
    /// than 128 waiters at once may a wait return without a notification: see
    /// [`Condition`].)
    ///
    /// `guard` may be this condition's, or that of another condition over the same shared
    /// lock (see [`with_lock`](Condition::with_lock)): the wait is on this condition.
    ///
    /// ```
    /// let c = proc_sync::Condition::with_value(0u8)?; // 1: the child was here
    /// let mut child = proc_core::Process::new({
    ///     let c = c.clone();
    ///     move || {
    ///         *c.lock() = 1;
    ///         c.notify_one();
    ///     }
    /// });
    /// let mut guard = c.lock();
    /// child.start().unwrap();
    /// while *guard == 0 {
    ///     guard = c.wait(guard);
    /// }
    /// # drop(guard);
    /// # child.join().unwrap();
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `guard` holds another lock than this condition's (a guard of a condition with
    /// a lock of its own, or over another shared lock), as std's `Condvar` panics when
    /// used with two mutexes: that wait could never be notified reliably. The same for
    /// every wait below.
    pub fn wait<'a>(&'a self, guard: ConditionGuard<'a, T>) -> ConditionGuard<'a, T> {
        wait_once(self, guard, None).0
    }

    /// As [`wait`](Condition::wait), but wakes after at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let c = proc_sync::Condition::new()?;
    /// let (guard, _result) = c.wait_timeout(c.lock(), Duration::from_millis(10));
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn wait_timeout<'a>(
        &'a self,
        guard: ConditionGuard<'a, T>,
        timeout: Duration,
    ) -> (ConditionGuard<'a, T>, WaitTimeoutResult) {
        let (guard, timed_out) = wait_once(self, guard, Some(Deadline::after(timeout)));
        (guard, WaitTimeoutResult(timed_out))
    }

    /// Waits while `condition` returns `true`, re-checking it (under the lock) after every
    /// wake-up; returns with the lock held and `condition` false.
    ///
    /// ```
    /// let c = proc_sync::Condition::with_value(1u8)?;
    /// let guard = c.wait_while(c.lock(), |n| *n == 0); // already false: no wait
    /// assert_eq!(*guard, 1);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn wait_while<'a, F>(
        &'a self,
        mut guard: ConditionGuard<'a, T>,
        mut condition: F,
    ) -> ConditionGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        let mut died = false;
        while condition(&mut guard) {
            guard = wait_once(self, guard, None).0;
            died |= guard.previous_owner_died();
        }
        guard.inner.mark_previous_owner_died(died);
        guard
    }

    /// As [`wait_while`](Condition::wait_while), but gives up after `timeout`:
    /// `timed_out()` is true when it returns with `condition` still true.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let c = proc_sync::Condition::with_value(0u8)?;
    /// let (guard, result) = c.wait_timeout_while(c.lock(), Duration::from_millis(20), |n| *n == 0);
    /// assert!(result.timed_out());
    /// assert_eq!(*guard, 0);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn wait_timeout_while<'a, F>(
        &'a self,
        mut guard: ConditionGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> (ConditionGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Deadline::after(timeout);
        let mut died = false;
        let mut timed_out = false;
        while condition(&mut guard) {
            if timed_out || deadline.has_passed() {
                timed_out = true;
                break;
            }
            (guard, timed_out) = wait_once(self, guard, Some(deadline));
            died |= guard.previous_owner_died();
        }
        guard.inner.mark_previous_owner_died(died);
        (guard, WaitTimeoutResult(timed_out))
    }

    /// Wakes the process or thread that has waited longest on this condition, if any: at
    /// most one wait returns for it. As [`notify(1)`](Condition::notify).
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// c.notify_one(); // nobody waits: nothing happens
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every process and thread waiting on this condition.
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// c.notify_all();
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }

    /// Wakes the `n` processes or threads that have waited longest on this condition (all
    /// of them if fewer wait), as Python's `Condition.notify(n)`: at most `n` waits return
    /// for it, and each waiter it chose returns.
    ///
    /// It may be called with or without the condition's lock held (it takes the lock for
    /// the moment it needs it if this thread does not hold it); change the state the
    /// waiters look at under the lock, before notifying, or a waiter may miss the change.
    ///
    /// ```
    /// use proc_sync::Condition;
    ///
    /// // [waiting, permits]: three threads wait for a permit each; two are handed out.
    /// let c = Condition::with_value([0u32; 2])?;
    /// let took_one = |c: &Condition<[u32; 2]>| {
    ///     let mut guard = c.lock();
    ///     guard[0] += 1;
    ///     guard = c.wait_while(guard, |[_, permits]| *permits == 0);
    ///     guard[0] -= 1;
    ///     guard[1] -= 1;
    /// };
    /// let until = |c: &Condition<[u32; 2]>, waiting: u32| {
    ///     while c.lock()[0] != waiting {
    ///         std::thread::yield_now();
    ///     }
    /// };
    /// std::thread::scope(|s| {
    ///     for _ in 0..3 {
    ///         s.spawn(|| took_one(&c));
    ///     }
    ///     until(&c, 3);
    ///     c.lock()[1] = 2;
    ///     c.notify(2); // two of the three go; the third sleeps on
    ///     until(&c, 1);
    ///     assert_eq!(*c.lock(), [1, 0]);
    ///     c.lock()[1] = 1;
    ///     c.notify(1);
    /// });
    /// assert_eq!(*c.lock(), [0, 0]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn notify(&self, n: usize) {
        let header = self.shared.header();
        // A waiter counts itself under the lock, in the critical section where it saw the
        // state unchanged; a notifier that changed the state under the lock afterwards sees
        // the count. So nobody counted means nobody to wake, and no lock is taken.
        if n == 0
            || (header.waiting.load(Ordering::SeqCst) == 0
                && header.overflow_sleepers.load(Ordering::SeqCst) == 0)
        {
            return;
        }
        let mutex = self.under().mutex;
        if mutex.is_held_by_this_thread() {
            header.notify(n);
            return;
        }
        // Only a lock corrupted from outside the crate cannot be taken: then there is no
        // state that can be trusted to notify anyone with.
        if let Ok(Some(died)) = mutex.lock_with(How::Block, "Condition") {
            if died {
                header.repair();
            }
            header.notify(n);
            let _ = mutex.unlock("Condition");
        }
    }
}

/// One wait on `condition`: take a slot, release the lock, sleep until notified or
/// `deadline`, take the lock back. `true` when the deadline passed without a notification.
fn wait_once<'a, T: Pod>(
    condition: &'a Condition<T>,
    guard: ConditionGuard<'a, T>,
    deadline: Option<Deadline>,
) -> (ConditionGuard<'a, T>, bool) {
    let under = condition.under();
    assert!(
        under.is(&guard.condition.under()),
        "a Condition was waited on with the guard of another lock: wait with a guard of \
         this condition, or of a condition over the same lock"
    );
    let header = condition.shared.header();
    let Some(slot) = header.take_slot() else {
        return wait_without_a_slot(condition, guard, deadline);
    };
    let held = SlotHeld(slot);
    drop(guard);
    let levels = under.release_rest();
    let mut timed_out = false;
    // Only a notifier changes the word from WAITING (under the lock): a wake-up that finds
    // it unchanged, or a signal, is slept through.
    while slot.state.load(Ordering::Acquire) == WAITING {
        if futex::wait(&slot.state, WAITING, deadline.as_ref()) == Wake::TimedOut {
            timed_out = true;
            break;
        }
    }
    let guard = relock(condition, levels);
    // Under the lock, so that a notification cannot arrive after this look and be lost
    // with the slot: one that came as the time ran out counts.
    let notified = slot.state.load(Ordering::Acquire) == NOTIFIED;
    header.free_slot(held);
    (guard, timed_out && !notified)
}

/// A wait with every slot taken by a live waiter: sleeps until any notification or freed
/// slot (or `deadline`), and returns as from a spurious wake-up.
fn wait_without_a_slot<'a, T: Pod>(
    condition: &'a Condition<T>,
    guard: ConditionGuard<'a, T>,
    deadline: Option<Deadline>,
) -> (ConditionGuard<'a, T>, bool) {
    let header = condition.shared.header();
    let seen = header.overflow.load(Ordering::Acquire);
    header.overflow_sleepers.fetch_add(1, Ordering::Relaxed);
    drop(guard);
    let levels = condition.under().release_rest();
    let wake = futex::wait(&header.overflow, seen, deadline.as_ref());
    let guard = relock(condition, levels);
    let _ = header
        .overflow_sleepers
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    (guard, wake == Wake::TimedOut)
}

/// Takes the condition's lock back after a wait, and the `levels` of an `RLock` that the
/// wait released beyond its guard's.
fn relock<T: Pod>(condition: &Condition<T>, levels: u32) -> ConditionGuard<'_, T> {
    let under = condition.under();
    let died = match under.mutex.lock_with(How::Block, "Condition") {
        Ok(Some(died)) => died,
        Ok(None) | Err(_) => block_forever(),
    };
    under.restore(levels);
    condition.guard(died)
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

/// This thread holds a [`Condition`]'s lock; dereferences to the condition's value and
/// releases the lock when dropped. `!Send`, as every guard here.
///
/// ```
/// let c = proc_sync::Condition::with_value(1u32)?;
/// let mut guard = c.lock();
/// *guard += 1;
/// assert_eq!(*guard, 2);
/// drop(guard); // released
/// assert!(c.try_lock().is_some());
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T> {
    inner: ValueGuard<'a, T>,
    /// The condition whose lock it holds.
    condition: &'a Condition<T>,
}

impl<T> ConditionGuard<'_, T> {
    /// Whether the lock was taken over from a holder that died holding it (for a guard
    /// returned by a wait: at the re-acquisition). The guarded value may be half updated.
    ///
    /// ```
    /// let c = proc_sync::Condition::new()?;
    /// assert!(!c.lock().previous_owner_died());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.inner.previous_owner_died()
    }
}

impl<T> std::ops::Deref for ConditionGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("value", &*self.inner)
            .field("previous_owner_died", &self.previous_owner_died())
            .finish()
    }
}
