//! [`DataRegion`]: one shared region laid out as a `#[repr(C)]` header followed by `len`
//! values of a plain-data `T`. The layout arithmetic, the making and the receiving of
//! every such region live here: [`MutexRegion`](crate::mutex_region::MutexRegion) adds a
//! robust mutex at the start of the header, the raw values
//! ([`RawValue`](crate::RawValue), [`RawArray`](crate::RawArray)) use it as it is.

use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::region::{Expect, Region};

/// A header `H` and `len` values of `T` after it, in one shared region.
///
/// It only places things: what the header's bytes mean, and who may touch the values when,
/// is the owning type's to say (hence the raw pointers).
pub(crate) struct DataRegion<H, T> {
    region: Arc<Region>,
    data_offset: usize,
    len: usize,
    _header: PhantomData<fn() -> H>,
    /// A handle is `Send`/`Sync` only if `T` is.
    _data: PhantomData<T>,
}

impl<H, T> Clone for DataRegion<H, T> {
    fn clone(&self) -> Self {
        DataRegion {
            region: Arc::clone(&self.region),
            data_offset: self.data_offset,
            len: self.len,
            _header: PhantomData,
            _data: PhantomData,
        }
    }
}

impl<H, T> std::fmt::Debug for DataRegion<H, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataRegion")
            .field("data_offset", &self.data_offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<H, T: bytemuck::Pod> DataRegion<H, T> {
    /// The data's offset, the region's total length and alignment for `len` values.
    pub(crate) fn layout(len: usize) -> Result<(usize, usize, usize)> {
        let too_large = Error::InvalidArgument {
            reason: "the shared value is larger than the address space",
        };
        let data_offset = size_of::<H>().next_multiple_of(align_of::<T>());
        let total = size_of::<T>()
            .checked_mul(len)
            .and_then(|bytes| bytes.checked_add(data_offset))
            .ok_or(too_large)?;
        Ok((data_offset, total, align_of::<H>().max(align_of::<T>())))
    }

    /// A zero-filled region for a header and `len` values; `robust_mutex` is the offset of
    /// a robust mutex the caller will place in the header, if any (see `Region::new`).
    pub(crate) fn new(
        name: &'static std::ffi::CStr,
        len: usize,
        robust_mutex: Option<usize>,
    ) -> Result<Self> {
        let (data_offset, total, align) = Self::layout(len)?;
        let region = Region::new(name, total, align, robust_mutex)?;
        Ok(DataRegion {
            region: Arc::new(region),
            data_offset,
            len,
            _header: PhantomData,
            _data: PhantomData,
        })
    }

    /// The region of another process, received as its memory file, for a header and `len`
    /// values: checked as `expect` (given the layout's total size and alignment) says,
    /// exactly that size at least (see `Region::from_fd`).
    pub(crate) fn from_fd(
        fd: OwnedFd,
        len: usize,
        expect: impl FnOnce(usize, usize) -> Expect,
    ) -> Result<Self> {
        let (data_offset, total, align) = Self::layout(len).map_err(|_| Error::Received {
            reason: format!("{len} values would be larger than the address space"),
        })?;
        Ok(DataRegion {
            region: Arc::new(Region::from_fd(fd, expect(total, align))?),
            data_offset,
            len,
            _header: PhantomData,
            _data: PhantomData,
        })
    }
}

impl<H, T> DataRegion<H, T> {
    /// The memory file, for sending the region to another process.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.region.fd()
    }

    /// The region itself.
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// The header, at the start of the (page-aligned) mapping, valid as long as `self`.
    #[inline]
    pub(crate) fn header_ptr(&self) -> *const H {
        self.region.base().cast::<H>()
    }

    /// The number of values of `T` after the header.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The `len` values, as a raw slice pointer, valid as long as `self`.
    #[inline]
    pub(crate) fn data(&self) -> NonNull<[T]> {
        // SAFETY: `data_offset` is within the mapping (the layout was checked when the
        // region was made or received), so the pointer is in bounds and not null.
        let first = unsafe { NonNull::new_unchecked(self.region.base().add(self.data_offset)) };
        NonNull::slice_from_raw_parts(first.cast::<T>(), self.len)
    }
}
