//! How the handles of this crate travel to another process: as an argument of
//! `Process::target` under any start method, or through a multiproc `Queue` or
//! `Connection`.
//!
//! A handle serializes as its kind (a `proc_core::internal::handle_wire::HandleKind`: "Lock", "RLock",
//! …), the descriptor of its memory file (a `proc_core::internal::handle_wire::FdRef`, which only a
//! multiproc channel can carry) and a few numbers (a semaphore's limit, a barrier's
//! parties, the size and alignment of a value's element, an array's length); the receiver
//! maps the same file, so both processes use the same object.
//!
//! The receiver trusts none of it. A handle received as another kind is a decode error
//! before anything else of it is read; the file must be a sealed memory file of exactly the
//! primitive's layout; its [`Stamp`](crate::stamp::Stamp) must say it holds that primitive
//! (with that element); a robust mutex in it must be of the primitive's kind and not claim
//! to be held by a thread that cannot hold it; and the numbers that travelled must agree
//! with the ones in shared memory. Each refusal is an [`Error::Received`](crate::Error)
//! that says what was wrong, and a decode error for the whole item.
//!
//! Serialized anywhere else, a handle refuses with an error that says where it can go.

use std::os::fd::{BorrowedFd, OwnedFd};

use proc_core::internal::handle_wire::{FdRef, ReceivedFd, deserialize_handle, serialize_handle};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::stamp::Primitive;

/// Writes a handle as its kind, its memory file's descriptor and `extra`.
pub(crate) fn serialize<S: Serializer, X: Serialize>(
    primitive: Primitive,
    fd: BorrowedFd<'_>,
    extra: X,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_handle(serializer, primitive.name(), &(FdRef::new(fd), extra))
}

/// Reads what [`serialize`] wrote, refusing (before anything else is read) a handle of
/// another kind, and makes the handle with `make`, which checks the rest.
pub(crate) fn deserialize<'de, D, X, T>(
    deserializer: D,
    primitive: Primitive,
    make: impl FnOnce(OwnedFd, X) -> Result<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    X: Deserialize<'de>,
{
    let (fd, extra): (ReceivedFd, X) = deserialize_handle(deserializer, primitive.name())?;
    make(fd.into_inner(), extra).map_err(D::Error::custom)
}

/// Implements `Serialize` and `Deserialize` for a handle type (`[generics] Type`) of
/// `$primitive`: `$fd` gives its memory file, `$extra` what travels beside it, `$make`
/// builds the handle from both (checking what it received).
macro_rules! travels {
    (
        $primitive:expr, [$($generic:ident: $bound:path),*] $ty:ty,
        |$this:ident| ($fd:expr, $extra:expr),
        |$file:ident, $received:ident: $extra_ty:ty| $make:expr
    ) => {
        impl<$($generic: $bound),*> serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let $this = self;
                $crate::handle_wire::serialize($primitive, $fd, $extra, serializer)
            }
        }

        impl<'de, $($generic: $bound),*> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::handle_wire::deserialize(deserializer, $primitive, |$file, $received: $extra_ty| {
                    $make
                })
            }
        }
    };
}

pub(crate) use travels;
