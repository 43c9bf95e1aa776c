//! [`Cells`]: the shared memory of every value and array of this crate: a header (the
//! element count and the stamp) and `len` plain-data elements after it. A
//! [`RawValue`](crate::RawValue) or [`RawArray`](crate::RawArray) is cells alone; a
//! [`Value`](crate::Value) or [`Array`](crate::Array) is cells and a [`Lock`](crate::Lock).
//!
//! Cells hold `T: Pod`: plain bytes, no pointers, valid for any bit pattern, so that they
//! mean the same in every address space and a half-written element is still a `T`.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use bytemuck::Pod;

use crate::data_region::DataRegion;
use crate::error::{Error, Result};
use crate::region::Expect;
use crate::stamp::{Element, Primitive, Stamp};

#[repr(C)]
pub(crate) struct CellsHeader {
    /// The element count, for a process that receives the region without the handle.
    len: AtomicU64,
    stamp: Stamp,
}

/// `len` elements of `T` in their own shared region, stamped as one primitive's.
pub(crate) struct Cells<T> {
    region: DataRegion<CellsHeader, T>,
}

impl<T> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells {
            region: self.region.clone(),
        }
    }
}

impl<T: Pod> Cells<T> {
    /// `len` zeroed elements in a new region stamped as `primitive`'s.
    pub(crate) fn new(
        primitive: Primitive,
        name: &'static std::ffi::CStr,
        len: usize,
    ) -> Result<Cells<T>> {
        let region = DataRegion::new(name, len, None)?;
        let cells = Cells { region };
        let header = cells.header();
        header.len.store(len as u64, Ordering::Relaxed);
        header.stamp.write(primitive, Element::of::<T>());
        Ok(cells)
    }

    /// Received cells: a sealed memory file of exactly the layout of `len` elements of `T`,
    /// stamped as `primitive`'s with elements of `T`'s size and alignment, whose recorded
    /// count is `len`.
    pub(crate) fn receive(fd: OwnedFd, primitive: Primitive, len: u64) -> Result<Cells<T>> {
        let count = usize::try_from(len).map_err(|_| Error::Received {
            reason: format!("an array of {len} elements is larger than the address space"),
        })?;
        // The file's size is checked to be exactly that of `len` elements before it is
        // mapped; the count recorded in it must say the same.
        let region = DataRegion::from_fd(fd, count, Expect::exactly)?;
        let cells = Cells { region };
        let header = cells.header();
        header.stamp.check(primitive, Element::of::<T>())?;
        let recorded = header.len.load(Ordering::Relaxed);
        if recorded != len {
            return Err(Error::Received {
                reason: format!("an array of {recorded} elements announced as {len}"),
            });
        }
        Ok(cells)
    }
}

impl<T> Cells<T> {
    fn header(&self) -> &CellsHeader {
        // SAFETY: the region holds a CellsHeader at its start (made by `new`, or checked
        // to be of exactly this layout by `receive`); it is atomics only, valid for any
        // bytes, and lives as long as `self`.
        unsafe { &*self.region.header_ptr() }
    }

    /// The memory file, for sending the cells to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.region.len()
    }

    /// The elements, as a raw slice pointer: the owner decides how they are accessed
    /// (under a lock, or only atomically).
    #[inline]
    pub(crate) fn data(&self) -> NonNull<[T]> {
        self.region.data()
    }
}

impl<T: Pod> Cells<T> {
    /// Element `index` read byte by byte with atomic loads: no lock, and never a data race
    /// with a concurrent [`store`](Cells::store) (which may leave it half written: any
    /// bytes are a `T`). `None` past the end.
    pub(crate) fn load(&self, index: usize) -> Option<T> {
        let element = self.element(index)?;
        let mut value = T::zeroed();
        for (i, byte) in bytemuck::bytes_of_mut(&mut value).iter_mut().enumerate() {
            // SAFETY: within element `index` (size_of::<T>() bytes), inside the mapping;
            // the owner accesses these bytes only through atomics (`load`, `store`).
            *byte = unsafe { AtomicU8::from_ptr(element.add(i)) }.load(Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Acquire);
        Some(value)
    }

    /// Writes element `index` byte by byte with atomic stores; `false` past the end.
    pub(crate) fn store(&self, index: usize, value: T) -> bool {
        let Some(element) = self.element(index) else {
            return false;
        };
        std::sync::atomic::fence(Ordering::Release);
        for (i, byte) in bytemuck::bytes_of(&value).iter().enumerate() {
            // SAFETY: as in `load`.
            unsafe { AtomicU8::from_ptr(element.add(i)) }.store(*byte, Ordering::Relaxed);
        }
        true
    }

    /// The first byte of element `index`, if there is one.
    fn element(&self, index: usize) -> Option<*mut u8> {
        if index >= self.len() {
            return None;
        }
        let first = self.data().cast::<T>().as_ptr();
        // SAFETY: index < len, so the element is within the mapping.
        Some(unsafe { first.add(index) }.cast::<u8>())
    }
}

impl<T> std::fmt::Debug for Cells<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
