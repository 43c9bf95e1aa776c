//! [`Value<T>`] and [`Array<T>`]: plain data in shared memory with a robust lock, as
//! Python's `multiprocessing.Value` and `Array`.
//!
//! Each is the shared cells of a [`RawValue`](crate::RawValue) / [`RawArray`](crate::RawArray)
//! (`{len, stamp}` then `[T; len]`) and a [`Lock`]: its own, or one that several values
//! share ([`Value::with_lock`]), so that holding it excludes every one of them. `T` must be
//! [`bytemuck::Pod`]: plain bytes, no pointers, no destructor, valid for any bit pattern.
//! That is what makes it sound to share between address spaces (a `String`'s heap pointer
//! would mean nothing in another process) and to read data that a killed writer left half
//! written.
//!
//! ```compile_fail
//! // A String owns heap memory of one process: it cannot be shared.
//! let v = proc_sync::Value::new(String::from("no"));
//! ```

use std::ptr::NonNull;
use std::time::Duration;

use bytemuck::Pod;

use crate::cells::Cells;
use crate::deadline::How;
use crate::error::Result;
use crate::lock::{Lock, block_forever};
use crate::mutex_region::ValueGuard;
use crate::stamp::{Element, Primitive};

/// A `T` in shared memory with a robust lock, as Python's `multiprocessing.Value`: its
/// own [`Lock`], or one it shares with other values ([`with_lock`](Value::with_lock)),
/// which [`get_lock`](Value::get_lock) gives.
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
    cells: Cells<T>,
    lock: Lock,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            cells: self.cells.clone(),
            lock: self.lock.clone(),
        }
    }
}

crate::handle_wire::travels!(
    Primitive::Value, [T: Pod] Value<T>,
    |value| (value.cells.fd(), (Element::of::<T>(), &value.lock)),
    |fd, sent: (Element, Lock)| {
        let (element, lock) = sent;
        element.check_sent::<T>(Primitive::Value)?;
        Ok(Value { cells: Cells::receive(fd, Primitive::Value, 1)?, lock })
    }
);

crate::handle_wire::travels!(
    Primitive::Array, [T: Pod] Array<T>,
    |array| (array.cells.fd(), ((Element::of::<T>(), array.cells.len() as u64), &array.lock)),
    |fd, sent: ((Element, u64), Lock)| {
        let ((element, len), lock) = sent;
        element.check_sent::<T>(Primitive::Array)?;
        Ok(Array { cells: Cells::receive(fd, Primitive::Array, len)?, lock })
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
        Value::with_lock(value, &Lock::new()?)
    }

    /// A new shared value holding `value`, guarded by `lock`, as Python's
    /// `Value(typecode, value, lock=lock)`: several values (and arrays) made with the same
    /// lock share it, so locking one excludes the others, and holding `lock` itself
    /// excludes them all.
    ///
    /// ```
    /// use proc_sync::{Lock, Value};
    ///
    /// let lock = Lock::new()?;
    /// let (x, y) = (Value::with_lock(1i32, &lock)?, Value::with_lock(2i32, &lock)?);
    /// let guard = x.lock();
    /// assert!(y.try_lock().is_none()); // one lock for both
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert_eq!(y.get(), 2);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the shared memory cannot be made.
    pub fn with_lock(value: T, lock: &Lock) -> Result<Value<T>> {
        let cells = Cells::new(Primitive::Value, c"multiproc-value", 1)?;
        cells.store(0, value);
        Ok(Value {
            cells,
            lock: lock.clone(),
        })
    }

    /// The lock that guards the value, as Python's `get_lock()`: its own, or the one given
    /// to [`with_lock`](Value::with_lock). Holding it keeps every other locker of the
    /// value out; [`lock`](Value::lock) (and `get`, `set`) take this same lock, so do not
    /// call them in the thread that holds it.
    ///
    /// ```
    /// let v = proc_sync::Value::new(0u8)?;
    /// let held = v.get_lock().acquire();
    /// assert!(v.try_lock().is_none());
    /// drop(held);
    /// assert!(v.try_lock().is_some());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
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
    /// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) if this thread holds the lock
    /// already; [`Error::NotRecoverable`](crate::Error::NotRecoverable) if the shared state
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
        let mutex = self.lock.raw();
        let Some(died) = mutex.lock_with(how, "Value")? else {
            return Ok(None);
        };
        let data: NonNull<T> = self.cells.data().cast();
        // SAFETY: this thread now holds the value's lock; the data is valid, aligned and
        // initialised (Pod: any bytes are a valid T) for as long as `self` lives, and only
        // touched under that lock.
        Ok(Some(unsafe { ValueGuard::new(mutex, data, "Value", died) }))
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

/// `len` values of `T` in shared memory with one robust lock (its own, or shared: see
/// [`with_lock`](Array::with_lock)), as Python's
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
    cells: Cells<T>,
    lock: Lock,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            cells: self.cells.clone(),
            lock: self.lock.clone(),
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
        Ok(Array {
            cells: Cells::new(Primitive::Array, c"multiproc-array", len)?,
            lock: Lock::new()?,
        })
    }

    /// A shared copy of `values`.
    ///
    /// ```
    /// let a = proc_sync::Array::from_slice(&[1.0f32, 2.0])?;
    /// assert_eq!(a.to_vec(), [1.0, 2.0]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<Array<T>> {
        Array::with_lock(values, &Lock::new()?)
    }

    /// A shared copy of `values` guarded by `lock`, as Python's
    /// `Array(typecode, values, lock=lock)`: see [`Value::with_lock`].
    ///
    /// ```
    /// use proc_sync::{Array, Lock, Value};
    ///
    /// let lock = Lock::new()?;
    /// let samples = Array::with_lock(&[0u16; 4], &lock)?;
    /// let count = Value::with_lock(0u32, &lock)?;
    /// let guard = count.lock();
    /// assert!(samples.try_lock().is_none());
    /// # drop(guard);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if the values do not fit
    /// in the address space; [`Error::Io`](crate::Error::Io) if the shared memory cannot
    /// be made.
    pub fn with_lock(values: &[T], lock: &Lock) -> Result<Array<T>> {
        let cells = Cells::new(Primitive::Array, c"multiproc-array", values.len())?;
        // SAFETY: nobody else can see the cells yet; they hold exactly `values.len()`
        // aligned elements.
        unsafe {
            cells
                .data()
                .cast::<T>()
                .as_ptr()
                .copy_from_nonoverlapping(values.as_ptr(), values.len())
        };
        Ok(Array {
            cells,
            lock: lock.clone(),
        })
    }

    /// The lock that guards the elements, as Python's `get_lock()`: see
    /// [`Value::get_lock`].
    ///
    /// ```
    /// let a = proc_sync::Array::<u8>::new(2)?;
    /// let held = a.get_lock().acquire();
    /// assert!(a.try_lock().is_none());
    /// # drop(held);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(proc_sync::Array::<u8>::new(5)?.len(), 5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
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
        let mutex = self.lock.raw();
        let Some(died) = mutex.lock_with(how, "Array")? else {
            return Ok(None);
        };
        // SAFETY: this thread now holds the array's lock; the `len` elements are valid,
        // aligned and initialised (Pod: any bytes are valid) for as long as `self` lives,
        // and only touched under that lock.
        Ok(Some(unsafe {
            ValueGuard::new(mutex, self.cells.data(), "Array", died)
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
