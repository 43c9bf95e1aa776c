//! How the handles of this crate travel to another process: as an argument of
//! `Process::target` under any start method, or through a multiproc `Queue` or
//! `Connection`.
//!
//! A handle serializes as the descriptor of its memory file (a `proc_core::travel::FdRef`,
//! which only a multiproc channel can carry) and the few numbers that are not in shared
//! memory (a semaphore's limit, an array's length); the receiver maps the same file, so
//! both processes use the same object. Serialized anywhere else, a handle refuses with an
//! error that says where it can go.

use std::os::fd::{BorrowedFd, OwnedFd};

use proc_core::travel::{FdRef, ReceivedFd};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;

/// Writes a handle as its memory file's descriptor and `extra`.
pub(crate) fn serialize<S: Serializer, X: Serialize>(
    fd: BorrowedFd<'_>,
    extra: X,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    (FdRef::new(fd), extra).serialize(serializer)
}

/// Reads what [`serialize`] wrote and makes the handle with `make`.
pub(crate) fn deserialize<'de, D, X, T>(
    deserializer: D,
    make: impl FnOnce(OwnedFd, X) -> Result<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    X: Deserialize<'de>,
{
    let (fd, extra): (ReceivedFd, X) = Deserialize::deserialize(deserializer)?;
    make(fd.into_inner(), extra).map_err(D::Error::custom)
}

/// Implements `Serialize` and `Deserialize` for a handle type (`[generics] Type`): `$fd` gives its memory
/// file, `$extra` what travels beside it, `$make` builds the handle from both.
macro_rules! travels {
    (
        [$($generic:ident: $bound:path),*] $ty:ty,
        |$this:ident| ($fd:expr, $extra:expr),
        |$file:ident, $received:ident: $extra_ty:ty| $make:expr
    ) => {
        impl<$($generic: $bound),*> serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let $this = self;
                $crate::travel::serialize($fd, $extra, serializer)
            }
        }

        impl<'de, $($generic: $bound),*> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::travel::deserialize(deserializer, |$file, $received: $extra_ty| $make)
            }
        }
    };
}

pub(crate) use travels;
