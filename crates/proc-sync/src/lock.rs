//! [`Lock`] and [`RLock`]: Python's `multiprocessing.Lock` and `RLock`, robust against a
//! holder that dies. Both hand out a [`LockGuard`] that releases on drop.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::Result;
use crate::raw_mutex::{Kind, RawMutex};
use crate::region::{Expect, Region};
use crate::stamp::{Element, Primitive, Stamp};

/// Waits forever: what acquiring a lock that can never be acquired amounts to.
///
/// The infallible `acquire`/`lock` forms of the API contract cannot return an error, and
/// library code must not panic; the errors they cannot report (re-locking a non-re-entrant
/// lock in the thread that holds it, a lock made unrecoverable from outside the crate) mean
/// the lock will never be ours, so they block, as Python's `Lock.acquire()` and std's
/// `Mutex::lock` do on a self-deadlock. The `*_checked` forms return the error instead.
pub(crate) fn block_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The shared memory of a `Lock` or an `RLock`: the robust mutex, and what it is.
#[repr(C)]
struct LockHeader {
    mutex: RawMutex,
    stamp: Stamp,
}

/// A robust mutex in its own shared region: the state of a `Lock` or an `RLock`.
#[derive(Clone)]
struct Shared {
    region: Arc<Region>,
}

impl Shared {
    fn new(primitive: Primitive, kind: Kind, name: &'static std::ffi::CStr) -> Result<Shared> {
        let region = Region::new(
            name,
            size_of::<LockHeader>(),
            align_of::<LockHeader>(),
            Some(0),
        )?;
        // SAFETY: the region is fresh, page aligned, large enough and used by nobody yet;
        // the mutex stays at its start for the region's lifetime.
        unsafe { RawMutex::init(region.base().cast(), kind)? };
        let shared = Shared {
            region: Arc::new(region),
        };
        shared.header().stamp.write(primitive, Element::NONE);
        Ok(shared)
    }

    /// A received lock's memory: a sealed memory file of exactly a lock's size, stamped as
    /// `primitive`, whose mutex is of `kind`.
    fn receive(fd: std::os::fd::OwnedFd, primitive: Primitive, kind: Kind) -> Result<Shared> {
        let expect = Expect::exactly(size_of::<LockHeader>(), align_of::<LockHeader>())
            .with_mutex(0, Some(kind));
        let shared = Shared {
            region: Arc::new(Region::from_fd(fd, expect)?),
        };
        shared.header().stamp.check(primitive, Element::NONE)?;
        Ok(shared)
    }

    #[inline]
    fn header(&self) -> &LockHeader {
        // SAFETY: the region holds a LockHeader at offset 0 (made by `new`, or checked to be
        // exactly that size by `receive`): any bytes are a valid one (a RawMutex is opaque
        // bytes, the stamp atomics); it lives as long as `self`.
        unsafe { &*self.region.base().cast::<LockHeader>() }
    }

    #[inline]
    fn raw(&self) -> &RawMutex {
        &self.header().mutex
    }
}

macro_rules! lock_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $what:literal, $file:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            shared: Shared,
        }

        crate::handle_wire::travels!(
            Primitive::$name, [] $name,
            |lock| (lock.shared.region.fd(), ()),
            |fd, _nothing: ()| Ok($name {
                shared: Shared::receive(fd, Primitive::$name, $kind)?,
            })
        );

        impl $name {
            /// A new, unlocked lock in its own shared memory.
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// drop(lock.acquire());
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn new() -> Result<Self> {
                Ok($name {
                    shared: Shared::new(Primitive::$name, $kind, $file)?,
                })
            }

            /// Blocks until this thread holds the lock; released when the guard drops.
            /// The guard's [`previous_owner_died`](LockGuard::previous_owner_died) says
            /// whether the previous holder died holding it.
            ///
            /// If the lock can never be acquired by this thread (see
            /// [`acquire_checked`](Self::acquire_checked)'s errors) this blocks forever;
            /// use `acquire_checked` to get the error instead.
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// let guard = lock.acquire();
            /// assert!(!guard.previous_owner_died());
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            #[inline]
            pub fn acquire(&self) -> LockGuard<'_> {
                match self.acquire_checked() {
                    Ok(guard) => guard,
                    Err(_) => block_forever(),
                }
            }

            /// Blocks until this thread holds the lock, or returns why it never will.
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// let guard = lock.acquire_checked()?;
            /// # drop(guard);
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) when this thread
            /// already holds a (non-re-entrant) `Lock`;
            /// [`Error::TooManyReentries`](crate::Error::TooManyReentries) for an `RLock`
            /// re-entered more than its counter holds;
            /// [`Error::NotRecoverable`](crate::Error::NotRecoverable) when the shared state
            /// was corrupted from outside the crate.
            #[inline]
            pub fn acquire_checked(&self) -> Result<LockGuard<'_>> {
                let died = self.shared.raw().lock($what)?;
                Ok(self.guard(died))
            }

            /// Takes the lock if it is free; `None` if anyone holds it (including this
            /// thread, for a `Lock`).
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// let mut child = proc_core::Process::new({
            ///     let lock = lock.clone();
            ///     move || assert!(lock.try_acquire().is_none())
            /// });
            /// let guard = lock.acquire();
            /// child.start().unwrap();
            /// assert_eq!(child.join().unwrap(), 0);
            /// # drop(guard);
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
                match self.shared.raw().try_lock($what) {
                    Ok(Some(died)) => Some(self.guard(died)),
                    Ok(None) | Err(_) => None,
                }
            }

            /// Blocks at most `timeout` for the lock; `None` if it was not acquired in time
            /// (or can never be acquired by this thread).
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// let guard = lock.acquire_timeout(Duration::from_secs(1));
            /// assert!(guard.is_some());
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
                let deadline = Deadline::after(timeout);
                match self.shared.raw().lock_until(&deadline, $what) {
                    Ok(Some(died)) => Some(self.guard(died)),
                    Ok(None) | Err(_) => None,
                }
            }

            /// Whether anyone holds the lock right now: this thread, another thread, or
            /// another process (Python 3.14's `locked()`). A holder that died no longer
            /// holds it (the kernel released it; the next acquirer is told). A snapshot:
            /// another process may take or release the lock the moment after.
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// assert!(!lock.locked());
            /// let guard = lock.acquire();
            /// assert!(lock.locked());
            /// drop(guard);
            /// assert!(!lock.locked());
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            #[inline]
            pub fn locked(&self) -> bool {
                self.shared.raw().is_locked()
            }

            /// Releases the lock held by this thread without a guard: the pair of
            /// [`LockGuard::leak`], for Python-style `acquire()` … `release()` across
            /// functions.
            ///
            /// ```
            #[doc = concat!("let lock = proc_sync::", stringify!($name), "::new()?;")]
            /// lock.acquire().leak();
            /// lock.release()?;
            /// assert!(lock.release().is_err()); // nothing left to release
            /// # Ok::<(), proc_sync::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`Error::NotOwner`](crate::Error::NotOwner) when this thread does not hold
            /// the lock (released already, never acquired, or held by another thread or
            /// process): a robust lock can only be released by its owner.
            pub fn release(&self) -> Result<()> {
                self.shared.raw().unlock($what)
            }

            /// The robust mutex, for the objects that share this lock.
            #[inline]
            pub(crate) fn raw(&self) -> &RawMutex {
                self.shared.raw()
            }

            /// The region that holds the mutex: what tells two mappings of it for one lock.
            pub(crate) fn region(&self) -> &Region {
                &self.shared.region
            }

            #[inline]
            fn guard(&self, previous_owner_died: bool) -> LockGuard<'_> {
                LockGuard {
                    mutex: self.shared.raw(),
                    what: $what,
                    previous_owner_died,
                    _not_send: PhantomData,
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

lock_type! {
    /// An interprocess lock, as Python's `multiprocessing.Lock`, that survives the death of
    /// its holder.
    ///
    /// A `Lock` is a handle to a robust mutex in shared memory: clone it, move the clone
    /// into a child process, and both refer to the same lock. If the process (or thread)
    /// holding it dies, even by SIGKILL, the next acquirer gets it and
    /// [`previous_owner_died`](LockGuard::previous_owner_died) says so, so it can repair
    /// whatever the dead holder left half done.
    ///
    /// The lock is owned by the thread that acquired it: only that thread can release it
    /// (unlike Python's `Lock`, which any process may release; use a
    /// [`Semaphore`](crate::Semaphore) for that). Acquiring it again in the thread that
    /// holds it would deadlock: `try_acquire` returns `None`, `acquire_checked` an error.
    ///
    /// ```
    /// use proc_sync::{Lock, Value};
    ///
    /// let lock = Lock::new()?;
    /// let total = Value::new(0u64)?;
    /// let mut children = Vec::new();
    /// for _ in 0..2 {
    ///     let (lock, total) = (lock.clone(), total.clone());
    ///     let mut p = proc_core::Process::new(move || {
    ///         for _ in 0..100 {
    ///             let _guard = lock.acquire();
    ///             total.set(total.get() + 1); // a read-modify-write, serialised by `lock`
    ///         }
    ///     });
    ///     p.start().unwrap();
    ///     children.push(p);
    /// }
    /// for p in children {
    ///     assert_eq!(p.join().unwrap(), 0);
    /// }
    /// assert_eq!(total.get(), 200);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    Lock, Kind::ErrorCheck, "Lock", c"multiproc-lock"
}

lock_type! {
    /// A re-entrant interprocess lock, as Python's `multiprocessing.RLock`, that survives
    /// the death of its holder.
    ///
    /// The thread that holds it may acquire it again; it is released for others when every
    /// guard has been dropped (or every acquire matched by a [`release`](RLock::release)).
    /// Another thread or process trying to release it gets
    /// [`Error::NotOwner`](crate::Error::NotOwner). Like [`Lock`], a holder that dies hands
    /// it to the next acquirer with [`previous_owner_died`](LockGuard::previous_owner_died).
    ///
    /// ```
    /// let lock = proc_sync::RLock::new()?;
    /// let outer = lock.acquire();
    /// let inner = lock.acquire(); // the owner may re-enter
    /// drop(inner);
    /// drop(outer);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    RLock, Kind::Recursive, "RLock", c"multiproc-rlock"
}

/// Proof that this thread holds a [`Lock`] or [`RLock`]; releases it (once) when dropped.
///
/// ```
/// let lock = proc_sync::Lock::new()?;
/// {
///     let _guard = lock.acquire();
///     // ... the critical section ...
/// } // released here
/// assert!(lock.try_acquire().is_some());
/// # Ok::<(), proc_sync::Error>(())
/// ```
///
/// A guard cannot be sent to another thread: a robust mutex is owned by the thread that
/// locked it, and only that thread may unlock it.
///
/// ```compile_fail
/// let lock = proc_sync::Lock::new().unwrap();
/// let guard = lock.acquire();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: `*const ()` cannot be sent between threads
/// });
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    mutex: &'a RawMutex,
    what: &'static str,
    previous_owner_died: bool,
    /// Keeps the guard `!Send` and `!Sync`.
    _not_send: PhantomData<*const ()>,
}

impl LockGuard<'_> {
    /// Whether the lock was taken over from a holder that died holding it (killed, crashed,
    /// or its thread ended). What that holder protected may be half updated: check or
    /// repair it before relying on it.
    ///
    /// ```
    /// let lock = proc_sync::Lock::new()?;
    /// let mut holder = proc_core::Process::new({
    ///     let lock = lock.clone();
    ///     move || {
    ///         std::mem::forget(lock.acquire());
    ///         proc_core::exit(0); // ends holding the lock
    ///     }
    /// });
    /// holder.start().unwrap();
    /// holder.join().unwrap();
    /// assert!(lock.acquire().previous_owner_died());
    /// assert!(!lock.acquire().previous_owner_died());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }

    /// Keeps the lock held without the guard, to be released later with
    /// [`Lock::release`] / [`RLock::release`] by this same thread.
    ///
    /// ```
    /// let lock = proc_sync::Lock::new()?;
    /// lock.acquire().leak();
    /// assert!(lock.try_acquire().is_none());
    /// lock.release()?;
    /// assert!(lock.try_acquire().is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Only fails if the lock was already released through `release()` while this guard
        // lived; glibc refuses that second release, and there is nothing left to do.
        let _ = self.mutex.unlock(self.what);
    }
}

impl std::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.what)
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}
