//! [`RawValue<T>`] and [`RawArray<T>`]: plain data in shared memory with no lock, as
//! Python's `multiprocessing.RawValue` and `RawArray`.
//!
//! Every read and write is of whole elements, byte by byte with atomic operations: never a
//! data race, but nothing orders one process's `set` with another's `get` either, and a
//! read that overlaps a write of a multi-byte element may see half of each. Order them by
//! other means (a [`Lock`](crate::Lock), an [`Event`](crate::Event), a message), or use
//! [`Value`](crate::Value) / [`Array`](crate::Array), which have a lock.

use bytemuck::Pod;

use crate::cells::Cells;
use crate::error::{Error, Result};
use crate::stamp::{Element, Primitive};

/// A `T` in shared memory with no lock, as Python's `multiprocessing.RawValue`.
///
/// Clones (in this process or, moved into a child or sent to one, in another) refer to the
/// same value.
///
/// No lock: every read and write is of a whole element, byte by byte with atomic
/// operations, so never a data race; but nothing orders one process's `set` with another's
/// `get`, and a read that overlaps a write of a multi-byte value may see half of each.
/// Order them by other means (a [`Lock`](crate::Lock), an [`Event`](crate::Event), a
/// message, a join), or use [`Value`](crate::Value), which has a lock.
///
/// ```
/// use proc_sync::RawValue;
///
/// let answer = RawValue::new(0u32)?;
/// let mut child = proc_core::Process::new({
///     let answer = answer.clone();
///     move || answer.set(42)
/// });
/// child.start().unwrap();
/// child.join().unwrap(); // the join orders the child's set before this get
/// assert_eq!(answer.get(), 42);
/// # Ok::<(), proc_sync::Error>(())
/// ```
pub struct RawValue<T> {
    cells: Cells<T>,
}

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            cells: self.cells.clone(),
        }
    }
}

crate::handle_wire::travels!(
    Primitive::RawValue, [T: Pod] RawValue<T>,
    |value| (value.cells.fd(), Element::of::<T>()),
    |fd, element: Element| {
        element.check_sent::<T>(Primitive::RawValue)?;
        Ok(RawValue { cells: Cells::receive(fd, Primitive::RawValue, 1)? })
    }
);

impl<T: Pod> RawValue<T> {
    /// A new shared value holding `value`.
    ///
    /// ```
    /// let v = proc_sync::RawValue::new(2.5f64)?;
    /// assert_eq!(v.get(), 2.5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be made.
    pub fn new(value: T) -> Result<RawValue<T>> {
        let cells = Cells::new(Primitive::RawValue, c"multiproc-rawvalue", 1)?;
        cells.store(0, value);
        Ok(RawValue { cells })
    }

    /// A copy of the value (no lock is taken: see [`RawValue`]).
    ///
    /// ```
    /// assert_eq!(proc_sync::RawValue::new(7i8)?.get(), 7);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn get(&self) -> T {
        // A value's cells hold exactly one element (made so, or checked when received).
        self.cells.load(0).unwrap_or_else(T::zeroed)
    }

    /// Replaces the value (no lock is taken).
    ///
    /// ```
    /// let v = proc_sync::RawValue::new(0u64)?;
    /// v.set(9);
    /// assert_eq!(v.get(), 9);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        self.cells.store(0, value);
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawValue")
            .field("value", &self.get())
            .finish()
    }
}

/// `len` values of `T` in shared memory with no lock, as Python's
/// `multiprocessing.RawArray`.
///
/// Elements are read and written one at a time, by index: [`get`](RawArray::get) is `None`
/// and [`set`](RawArray::set) an error past the end. No lock, as for [`RawValue`]: each
/// element is read and written whole, atomically byte by byte; nothing orders the accesses
/// of different processes. [`Array`](crate::Array) has a lock.
///
/// ```
/// use proc_sync::RawArray;
///
/// let squares = RawArray::<u32>::new(4)?;
/// let mut child = proc_core::Process::new({
///     let squares = squares.clone();
///     move || {
///         for i in 0..squares.len() {
///             squares.set(i, (i * i) as u32).unwrap();
///         }
///     }
/// });
/// child.start().unwrap();
/// child.join().unwrap();
/// assert_eq!(squares.to_vec(), [0, 1, 4, 9]);
/// assert_eq!(squares.get(4), None);
/// # Ok::<(), proc_sync::Error>(())
/// ```
pub struct RawArray<T> {
    cells: Cells<T>,
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            cells: self.cells.clone(),
        }
    }
}

crate::handle_wire::travels!(
    Primitive::RawArray, [T: Pod] RawArray<T>,
    |array| (array.cells.fd(), (Element::of::<T>(), array.cells.len() as u64)),
    |fd, sent: (Element, u64)| {
        let (element, len) = sent;
        element.check_sent::<T>(Primitive::RawArray)?;
        Ok(RawArray { cells: Cells::receive(fd, Primitive::RawArray, len)? })
    }
);

impl<T: Pod> RawArray<T> {
    /// `len` zeroed elements.
    ///
    /// ```
    /// let a = proc_sync::RawArray::<i16>::new(3)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `len` elements do not fit in the address space;
    /// [`Error::Io`] if the shared memory cannot be made.
    pub fn new(len: usize) -> Result<RawArray<T>> {
        Ok(RawArray {
            cells: Cells::new(Primitive::RawArray, c"multiproc-rawarray", len)?,
        })
    }

    /// A shared copy of `values`.
    ///
    /// ```
    /// let a = proc_sync::RawArray::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.get(2), Some(3));
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](RawArray::new).
    pub fn from_slice(values: &[T]) -> Result<RawArray<T>> {
        let array = RawArray::new(values.len())?;
        for (i, value) in values.iter().enumerate() {
            array.cells.store(i, *value);
        }
        Ok(array)
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::<u64>::new(5)?.len(), 5);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(proc_sync::RawArray::<u64>::new(0)?.is_empty());
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of element `index`; `None` if `index >= len()`.
    ///
    /// ```
    /// let a = proc_sync::RawArray::from_slice(&[5i32, 6])?;
    /// assert_eq!(a.get(1), Some(6));
    /// assert_eq!(a.get(2), None);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        self.cells.load(index)
    }

    /// Replaces element `index`.
    ///
    /// ```
    /// let a = proc_sync::RawArray::<u8>::new(2)?;
    /// a.set(1, 9)?;
    /// assert_eq!(a.to_vec(), [0, 9]);
    /// assert!(a.set(2, 1).is_err()); // past the end: nothing is written
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `index >= len()`.
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        if self.cells.store(index, value) {
            Ok(())
        } else {
            Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            })
        }
    }

    /// A copy of every element, each read as by [`get`](RawArray::get) (no lock: another
    /// process's writes meanwhile may show in some elements and not others).
    ///
    /// ```
    /// assert_eq!(proc_sync::RawArray::from_slice(&[1.5f32])?.to_vec(), [1.5]);
    /// # Ok::<(), proc_sync::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).filter_map(|i| self.cells.load(i)).collect()
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawArray")
            .field("values", &self.to_vec())
            .finish()
    }
}
