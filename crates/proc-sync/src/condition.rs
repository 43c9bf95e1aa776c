//! [`Condition`]: a condition variable with its own robust lock, as Python's
//! `multiprocessing.Condition`, optionally guarding a plain-data value.
//!
//! The region holds the mutex, a sequence word and a sleeper count, then the value. A
//! waiter reads the sequence while holding the lock, counts itself as a sleeper, unlocks,
//! and sleeps on the sequence word with a futex; a notifier bumps the sequence and wakes
//! one or all sleepers, so a notification between the unlock and the sleep is never lost
//! (the futex sees the sequence moved and returns at once). The sleeper count spares
//! `notify_*` the system call when nobody waits; a waiter killed while counted only costs
//! later notifications a wake-up with nobody to wake.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytemuck::Pod;

use crate::deadline::Deadline;
use crate::error::Result;
use crate::futex::{self, Wake};
use crate::lock::block_forever;
use crate::raw_mutex::{Kind, RawMutex};
use crate::shared::{How, MutexHeader, MutexRegion, ValueGuard};

#[repr(C)]
struct ConditionHeader {
    mutex: RawMutex,
    sequence: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: repr(C), the mutex is the first field, the others are atomics (zero is valid).
unsafe impl MutexHeader for ConditionHeader {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

/// An interprocess condition variable that owns its lock, as Python's
/// `multiprocessing.Condition`; `Condition<T>` also keeps a plain-data `T` under that lock
/// (`Condition` alone is `Condition<()>`).
///
/// [`lock`](Condition::lock) gives a [`ConditionGuard`] (with
/// [`previous_owner_died`](ConditionGuard::previous_owner_died), as every lock here);
/// [`wait`](Condition::wait) releases it while sleeping and returns it re-acquired.
/// Wake-ups may be spurious: wait in a loop on a predicate, or use
/// [`wait_while`](Condition::wait_while), which does.
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
/// A notification reaches the processes waiting at that moment. If `notify_one` wakes a
/// process that is killed before it re-acquires the lock, that notification is spent:
/// use `notify_all` where waiters may die.
pub struct Condition<T = ()> {
    shared: MutexRegion<ConditionHeader, T>,
}

impl<T> Clone for Condition<T> {
    fn clone(&self) -> Self {
        Condition {
            shared: self.shared.clone(),
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
    /// # let _ = result.timed_out(); // a spurious wake-up may end it early
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

crate::travel::travels!(
    [T: Pod] Condition<T>,
    |condition| (condition.shared.fd(), ()),
    |fd, _nothing: ()| Ok(Condition {
        shared: MutexRegion::from_fd(fd, 1)?,
    })
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
        let shared = MutexRegion::new(c"multiproc-condition", Kind::ErrorCheck, 1)?;
        // SAFETY: nobody else can see the region yet; the data pointer is valid and aligned.
        unsafe { shared.data().cast::<T>().write(value) };
        Ok(Condition { shared })
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
        let Some(died) = self.shared.lock_with(how, "Condition")? else {
            return Ok(None);
        };
        // SAFETY: this thread now holds the mutex; the value is valid, aligned and
        // initialised (Pod) for as long as `self` lives, and only touched under the mutex.
        let inner = unsafe {
            ValueGuard::new(
                self.shared.mutex(),
                self.shared.data().cast::<T>(),
                "Condition",
                died,
            )
        };
        Ok(Some(ConditionGuard {
            inner,
            shared: &self.shared,
        }))
    }

    /// Releases the lock, sleeps until notified (or woken spuriously), and re-acquires the
    /// lock. The guard decides which condition is waited on.
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
    pub fn wait<'a>(&'a self, guard: ConditionGuard<'a, T>) -> ConditionGuard<'a, T> {
        wait_once(guard, None).0
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
        let (guard, timed_out) = wait_once(guard, Some(Deadline::after(timeout)));
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
            guard = wait_once(guard, None).0;
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
            (guard, timed_out) = wait_once(guard, Some(deadline));
            died |= guard.previous_owner_died();
        }
        guard.inner.mark_previous_owner_died(died);
        (guard, WaitTimeoutResult(timed_out))
    }

    /// Wakes one process or thread waiting on this condition, if any.
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
        self.notify(u32::MAX);
    }

    fn notify(&self, count: u32) {
        let header = self.shared.header();
        if header.sleepers.load(Ordering::SeqCst) > 0 {
            header.sequence.fetch_add(1, Ordering::SeqCst);
            futex::wake(&header.sequence, count);
        }
    }
}

/// One wait: unlock, sleep on the sequence word, relock. `true` when the deadline passed.
fn wait_once<'a, T: Pod>(
    guard: ConditionGuard<'a, T>,
    deadline: Option<Deadline>,
) -> (ConditionGuard<'a, T>, bool) {
    let shared = guard.shared;
    let header = shared.header();
    // Read under the lock, and count ourselves before releasing it: a notifier that
    // changes the state under the lock afterwards sees us and moves the sequence.
    let sequence = header.sequence.load(Ordering::SeqCst);
    header.sleepers.fetch_add(1, Ordering::SeqCst);
    drop(guard);
    let wake = futex::wait(&header.sequence, sequence, deadline.as_ref());
    header.sleepers.fetch_sub(1, Ordering::SeqCst);
    let died = match shared.lock_with(How::Block, "Condition") {
        Ok(Some(died)) => died,
        Ok(None) | Err(_) => block_forever(),
    };
    // SAFETY: this thread holds the mutex again; the value is valid as in `lock_with`.
    let inner =
        unsafe { ValueGuard::new(shared.mutex(), shared.data().cast::<T>(), "Condition", died) };
    (ConditionGuard { inner, shared }, wake == Wake::TimedOut)
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
    shared: &'a MutexRegion<ConditionHeader, T>,
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
