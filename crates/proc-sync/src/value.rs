//! [`Value<T>`] and [`Array<T>`]: plain data in shared memory, each with its own robust
//! lock, as Python's `multiprocessing.Value` and `Array`.
//!
//! The layout is one region: `{robust mutex}` then `T` (Value), or `{robust mutex, len}`
//! then `[T; len]` (Array). `T` must be [`bytemuck::Pod`]: plain bytes, no pointers, no
//! destructor, valid for any bit pattern. That is what makes it sound to share between
//! address spaces (a `String`'s heap pointer would mean nothing in another process) and
//! to read data that a killed writer left half written.
//!
//! ```compile_fail
//! // A String owns heap memory of one process: it cannot be shared.
//! let v = proc_sync::Value::new(String::from("no"));
//! ```

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::lock::block_forever;
use crate::mutex_region::{How, MutexHeader, MutexRegion, ValueGuard};
use crate::raw_mutex::{Kind, RawMutex};
use crate::stamp::{Element, Primitive, Stamp};

#[repr(C)]
struct ValueHeader {
    mutex: RawMutex,
    stamp: Stamp,
}

// SAFETY: repr(C), the mutex is the first field, and the stamp is atomics.
unsafe impl MutexHeader for ValueHeader {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

#[repr(C)]
struct ArrayHeader {
    mutex: RawMutex,
    /// The element count, for a process that receives the region without the handle.
    len: AtomicU64,
    stamp: Stamp,
}

// SAFETY: repr(C), the mutex is the first field, `len` and the stamp are atomics.
unsafe impl MutexHeader for ArrayHeader {
    fn mutex(&self) -> &RawMutex {
        &self.mutex
    }
}

/// A `T` in shared memory with its own robust lock, as Python's `multiprocessing.Value`.
///
/// Clones (in this process or, moved into a child, in another) refer to the same value.
/// [`lock`](Value::lock) gives a guard that dereferences to the value; a read-modify-write
/// must happen under one guard. [`get`](Value::get) and [`set`](Value::set) lock for one
/// read or one write. If a process dies holding the lock, the next locker gets it with
/// [`previous_owner_died`](ValueGuard::previous_owner_died) set.
///
/// ```
/// use proc_sync::Value;
///
/// let counter = Value::new(0u64)?;
/// let mut child = proc_core::Process::new({
///     let counter = counter.clone();
///     move || {
///         for _ in 0..1000 {
///             *counter.lock() += 1;
///         }
///     }
/// });
/// child.start().unwrap();
/// for _ in 0..1000 {
///     *counter.lock() += 1;
/// }
/// child.join().unwrap();
/// assert_eq!(counter.get(), 2000);
/// # Ok::<(), proc_sync::Error>(())
/// ```
///
/// Only plain data can be shared: a type that owns memory (or holds pointers into its own
/// process) does not implement [`bytemuck::Pod`], so this does not compile:
///
/// ```compile_fail
/// let name = proc_sync::Value::new(String::from("小王"))?;
/// # Ok::<(), proc_sync::Error>(())
/// ```
pub struct Value<T> {
    shared: MutexRegion<ValueHeader, T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            shared: self.shared.clone(),
        }
    }
}

crate::handle_wire::travels!(
    Primitive::Value, [T: Pod] Value<T>,
    |value| (value.shared.fd(), Element::of::<T>()),
    |fd, element: Element| {
        element.check_sent::<T>(Primitive::Value)?;
        let shared: MutexRegion<ValueHeader, T> = MutexRegion::from_fd(fd, 1, Kind::ErrorCheck)?;
        shared.header().stamp.check(Primitive::Value, Element::of::<T>())?;
        Ok(Value { shared })
    }
);

crate::handle_wire::travels!(
    Primitive::Array, [T: Pod] Array<T>,
    |array| (array.shared.fd(), (Element::of::<T>(), array.shared.len() as u64)),
    |fd, sent: (Element, u64)| {
        let (element, len) = sent;
        element.check_sent::<T>(Primitive::Array)?;
        let len = usize::try_from(len).map_err(|_| Error::Received {
            reason: format!("an array of {len} elements is larger than the address space"),
        })?;
        // The file's size is checked to be exactly that of `len` elements before it is
        // mapped; the length recorded in it must say the same.
        let shared: MutexRegion<ArrayHeader, T> =
            MutexRegion::from_fd(fd, len, Kind::ErrorCheck)?;
        let header = shared.header();
        header.stamp.check(Primitive::Array, Element::of::<T>())?;
        let recorded = header.len.load(Ordering::Acquire);
        if recorded != len as u64 {
            return Err(Error::Received {
                reason: format!("an array of {recorded} elements announced as {len}"),
            });
        }
        Ok(Array { shared })
    }
);

impl<T: Pod> Value<T> {
    /// A new shared value holding `value`.
    ///
    /// ```
    /// let v = proc_sync::Value::new(1.5f64)?;
    /// assert_eq!(v.get(), 1.5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new(value: T) -> Result<Value<T>> {
        let shared: MutexRegion<ValueHeader, T> =
            MutexRegion::new(c"multiproc-value", Kind::ErrorCheck, 1)?;
        shared
            .header()
            .stamp
            .write(Primitive::Value, Element::of::<T>());
        // SAFETY: nobody else can see the region yet; the data pointer is valid and aligned.
        unsafe { shared.data().cast::<T>().write(value) };
        Ok(Value { shared })
    }

    /// Blocks until this thread holds the value's lock; the guard dereferences to the value.
    ///
    /// Locking again in the thread that holds the lock (for instance calling `get` while a
    /// guard lives) would wait forever; [`lock_checked`](Value::lock_checked) returns an
    /// error instead.
    ///
    /// ```
    /// let v = proc_sync::Value::new(10i32)?;
    /// let mut guard = v.lock();
    /// *guard -= 3;
    /// drop(guard);
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> ValueGuard<'_, T> {
        self.lock_checked().unwrap_or_else(|_| block_forever())
    }

    /// Blocks until this thread holds the lock, or returns why it never will.
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u8)?;
    /// let guard = v.lock_checked()?;
    /// assert!(matches!(v.lock_checked(), Err(proc_sync::Error::WouldDeadlock { .. })));
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WouldDeadlock`] if this thread holds the lock
    /// already; [`Error::NotRecoverable`] if the shared state
    /// was corrupted from outside the crate.
    #[inline]
    pub fn lock_checked(&self) -> Result<ValueGuard<'_, T>> {
        self.lock_with(How::Block)
            .map(|guard| guard.unwrap_or_else(|| block_forever()))
    }

    /// Locks if nobody holds the lock; `None` otherwise.
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u8)?;
    /// let guard = v.try_lock();
    /// assert!(guard.is_some());
    /// assert!(v.try_lock().is_none()); // held (by this thread)
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn try_lock(&self) -> Option<ValueGuard<'_, T>> {
        self.lock_with(How::Try).ok().flatten()
    }

    /// Waits at most `timeout` for the lock; `None` if not acquired in time.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let v = proc_sync::Value::new(0u8)?;
    /// assert!(v.lock_timeout(Duration::from_secs(1)).is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ValueGuard<'_, T>> {
        self.lock_with(How::timeout(timeout)).ok().flatten()
    }

    /// A copy of the value, read under the lock.
    ///
    /// ```
    /// assert_eq!(proc_sync::Value::new(42u16)?.get(), 42);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn get(&self) -> T {
        *self.lock()
    }

    /// Replaces the value, under the lock.
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u64)?;
    /// v.set(9);
    /// assert_eq!(v.get(), 9);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        *self.lock() = value;
    }

    #[inline]
    fn lock_with(&self, how: How) -> Result<Option<ValueGuard<'_, T>>> {
        let Some(died) = self.shared.lock_with(how, "Value")? else {
            return Ok(None);
        };
        let data: NonNull<T> = self.shared.data().cast();
        // SAFETY: this thread now holds the mutex; the data is valid, aligned and
        // initialised (Pod: any bytes are a valid T) for as long as `self` lives, and only
        // touched under the mutex.
        Ok(Some(unsafe {
            ValueGuard::new(self.shared.mutex(), data, "Value", died)
        }))
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Value");
        match self.try_lock() {
            Some(guard) => d.field("value", &*guard),
            None => d.field("value", &"<locked>"),
        };
        d.finish()
    }
}

/// `len` values of `T` in shared memory with one robust lock, as Python's
/// `multiprocessing.Array`.
///
/// [`lock`](Array::lock) gives a guard that dereferences to the slice `[T]`; every clone,
/// in every process, sees the same elements.
///
/// ```
/// use proc_sync::Array;
///
/// let squares = Array::<u32>::new(4)?;
/// let mut child = proc_core::Process::new({
///     let squares = squares.clone();
///     move || {
///         for (i, x) in squares.lock().iter_mut().enumerate() {
///             *x = (i * i) as u32;
///         }
///     }
/// });
/// child.start().unwrap();
/// child.join().unwrap();
/// assert_eq!(squares.to_vec(), [0, 1, 4, 9]);
/// # Ok::<(), proc_sync::Error>(())
/// ```
pub struct Array<T> {
    shared: MutexRegion<ArrayHeader, T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Pod> Array<T> {
    /// `len` zeroed elements.
    ///
    /// ```
    /// let a = proc_sync::Array::<i64>::new(3)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn new(len: usize) -> Result<Array<T>> {
        let shared: MutexRegion<ArrayHeader, T> =
            MutexRegion::new(c"multiproc-array", Kind::ErrorCheck, len)?;
        shared.header().len.store(len as u64, Ordering::Release);
        shared
            .header()
            .stamp
            .write(Primitive::Array, Element::of::<T>());
        Ok(Array { shared })
    }

    /// A shared copy of `values`.
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[1.0f32, 2.0])?;
    /// assert_eq!(a.to_vec(), [1.0, 2.0]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>> {
        let array = Array::new(values.len())?;
        array.lock().copy_from_slice(values);
        Ok(array)
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(proc_sync::Array::<u8>::new(5)?.len(), 5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(proc_sync::Array::<u8>::new(0)?.is_empty());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks until this thread holds the array's lock; the guard dereferences to `[T]`.
    /// Locking again in the thread that holds it waits forever (see
    /// [`lock_checked`](Array::lock_checked)).
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[3u8, 1, 2])?;
    /// a.lock().sort();
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn lock(&self) -> ValueGuard<'_, [T]> {
        self.lock_checked().unwrap_or_else(|_| block_forever())
    }

    /// Blocks until this thread holds the lock, or returns why it never will.
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(2)?;
    /// a.lock_checked()?[0] = 1;
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::lock_checked`].
    pub fn lock_checked(&self) -> Result<ValueGuard<'_, [T]>> {
        self.lock_with(How::Block)
            .map(|guard| guard.unwrap_or_else(|| block_forever()))
    }

    /// Locks if nobody holds the lock; `None` otherwise.
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(2)?;
    /// assert!(a.try_lock().is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn try_lock(&self) -> Option<ValueGuard<'_, [T]>> {
        self.lock_with(How::Try).ok().flatten()
    }

    /// Waits at most `timeout` for the lock; `None` if not acquired in time.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let a = proc_sync::Array::<u8>::new(2)?;
    /// assert!(a.lock_timeout(Duration::from_secs(1)).is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ValueGuard<'_, [T]>> {
        self.lock_with(How::timeout(timeout)).ok().flatten()
    }

    /// A copy of the elements, read under the lock.
    ///
    /// ```
    /// assert_eq!(proc_sync::Array::from_slice(&[7u8])?.to_vec(), [7]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }

    fn lock_with(&self, how: How) -> Result<Option<ValueGuard<'_, [T]>>> {
        let Some(died) = self.shared.lock_with(how, "Array")? else {
            return Ok(None);
        };
        // SAFETY: this thread now holds the mutex; the `len` elements are valid, aligned and
        // initialised (Pod: any bytes are valid) for as long as `self` lives, and only
        // touched under the mutex.
        Ok(Some(unsafe {
            ValueGuard::new(self.shared.mutex(), self.shared.data(), "Array", died)
        }))
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Array");
        d.field("len", &self.len());
        match self.try_lock() {
            Some(guard) => d.field("values", &&*guard),
            None => d.field("values", &"<locked>"),
        };
        d.finish()
    }
}
