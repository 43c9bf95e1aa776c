//! [`MutexRegion`]: one shared region laid out as a header that starts with a robust mutex,
//! followed by the data the mutex protects. [`Condition`](crate::Condition) and
//! [`Barrier`](crate::Barrier) are built on it; [`ValueGuard`] is the guard that hands out
//! the data of a value, an array or a condition while its mutex is held.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use crate::data_region::DataRegion;
use crate::deadline::How;
use crate::error::Result;
use crate::raw_mutex::{Kind, RawMutex};
use crate::region::Expect;

/// A `#[repr(C)]` header whose first field is the robust mutex that guards the data.
///
/// # Safety
/// The type must be `#[repr(C)]` with a [`RawMutex`] as its first field (at offset 0, where
/// the region's drop looks for it), all-zero bytes must be a valid value of it apart from
/// the mutex (which `MutexRegion::new` initialises), and every field other than the mutex
/// must change only atomically or while the mutex is held.
pub unsafe trait MutexHeader: Sized {
    /// The mutex at offset 0.
    fn mutex(&self) -> &RawMutex;
}

/// A header `H` and `len` values of `T` after it, in one shared region, the header starting
/// with the robust mutex that guards the values.
pub struct MutexRegion<H, T> {
    inner: DataRegion<H, T>,
}

impl<H, T> std::fmt::Debug for MutexRegion<H, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexRegion")
            .field("region", &self.inner)
            .finish()
    }
}

impl<H, T> Clone for MutexRegion<H, T> {
    fn clone(&self) -> Self {
        MutexRegion {
            inner: self.inner.clone(),
        }
    }
}

impl<H: MutexHeader, T: bytemuck::Pod> MutexRegion<H, T> {
    /// A region holding a header (its mutex initialised as `kind`, the rest zero) and `len`
    /// zeroed values of `T`.
    pub fn new(name: &'static std::ffi::CStr, kind: Kind, len: usize) -> Result<Self> {
        let inner: DataRegion<H, T> = DataRegion::new(name, len, Some(0))?;
        // SAFETY: the region is fresh, large enough, aligned for H, zero-filled and used by
        // nobody yet; by MutexHeader's contract the mutex is H's first field, at offset 0,
        // and it stays there for the region's lifetime.
        unsafe { RawMutex::init(inner.header_ptr().cast_mut().cast(), kind)? };
        Ok(MutexRegion { inner })
    }

    /// The region of another process, received as its memory file (see
    /// `proc_core::internal::handle_wire`): a header of type `H` whose mutex that process
    /// initialised as `kind`, and `len` values of `T`. An error when the descriptor is not a
    /// memory file, the file is not of exactly that layout's size (as [`new`](Self::new)
    /// makes it) or not sealed against changing size, or its mutex is not one of `kind`
    /// this crate initialised (or names as its holder a thread of this process that cannot
    /// hold it, a thread that does not exist, or one of a process that does not map the
    /// file).
    ///
    /// The processes that share a region trust each other as much as a forked child and
    /// its parent do: each can write anything into it.
    pub fn from_fd(fd: OwnedFd, len: usize, kind: Kind) -> Result<Self> {
        let inner = DataRegion::from_fd(fd, len, |total, align| {
            Expect::exactly(total, align).with_mutex(0, Some(kind))
        })?;
        Ok(MutexRegion { inner })
    }
}

impl<H: MutexHeader, T> MutexRegion<H, T> {
    /// The memory file, for sending the region to another process (see
    /// `proc_core::internal::handle_wire::FdRef`); [`from_fd`](MutexRegion::from_fd) maps it there.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }

    /// The header, in shared memory: its fields other than the mutex are atomics or are
    /// touched only while the mutex is held.
    #[inline]
    pub fn header(&self) -> &H {
        // SAFETY: the layout was checked when the region was made or received; H is valid
        // for any bytes apart from its mutex (MutexHeader), which was initialised; the
        // region lives as long as `self`.
        unsafe { &*self.inner.header_ptr() }
    }

    /// The robust mutex at the start of the header.
    #[inline]
    pub fn mutex(&self) -> &RawMutex {
        self.header().mutex()
    }

    /// The number of values of `T` after the header.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are no values after the header.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` values, as a raw slice pointer (only to be dereferenced under the mutex).
    #[inline]
    pub fn data(&self) -> NonNull<[T]> {
        self.inner.data()
    }

    /// Locks with the blocking, try or timed form; `Ok(None)` when not acquired.
    #[inline]
    pub(crate) fn lock_with(&self, how: How, what: &'static str) -> Result<Option<bool>> {
        self.mutex().lock_with(how, what)
    }

    /// The region itself.
    pub(crate) fn region(&self) -> &crate::region::Region {
        self.inner.region()
    }
}

/// Access to the data of a [`Value`](crate::Value) (`T`) or an [`Array`](crate::Array)
/// (`[T]`) while this thread holds its lock; the lock is released when the guard drops.
///
/// Like every guard of this crate it is `!Send`: a robust mutex must be released by the
/// thread that locked it.
///
/// ```compile_fail
/// let v = proc_sync::Value::new(0u32).unwrap();
/// let guard = v.lock();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: the guard cannot be sent between threads
/// });
/// ```
///
/// ```
/// let v = proc_sync::Value::new([0u8; 4])?;
/// let mut guard = v.lock();
/// guard[1] = 7;
/// assert!(!guard.previous_owner_died());
/// drop(guard);
/// assert_eq!(v.get(), [0, 7, 0, 0]);
/// # Ok::<(), proc_sync::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: ?Sized> {
    mutex: &'a RawMutex,
    data: NonNull<T>,
    what: &'static str,
    previous_owner_died: bool,
    /// Borrows the data mutably for `'a`; the raw pointer also makes the guard `!Send`.
    _data: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> ValueGuard<'a, T> {
    /// # Safety
    /// This thread must hold `mutex` (once, for this guard), and `data` must be valid for
    /// reads and writes for `'a`, accessed by nobody else while `mutex` is held.
    #[inline]
    pub(crate) unsafe fn new(
        mutex: &'a RawMutex,
        data: NonNull<T>,
        what: &'static str,
        previous_owner_died: bool,
    ) -> Self {
        ValueGuard {
            mutex,
            data,
            what,
            previous_owner_died,
            _data: PhantomData,
        }
    }

    /// Whether the lock was taken over from a holder that died holding it: the data may be
    /// half updated, and it is the caller's to check or repair.
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u32)?;
    /// assert!(!v.lock().previous_owner_died());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }

    pub(crate) fn mark_previous_owner_died(&mut self, died: bool) {
        self.previous_owner_died |= died;
    }
}

impl<T: ?Sized> Deref for ValueGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: by `new`'s contract the data is valid and ours alone while the guard
        // lives (it holds the mutex).
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for ValueGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.data.as_mut() }
    }
}

impl<T: ?Sized> Drop for ValueGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Cannot fail: this thread holds the mutex (the guard is !Send and was made when it
        // was acquired), and nothing else releases it.
        let _ = self.mutex.unlock(self.what);
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueGuard")
            .field("value", &&**self)
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}
