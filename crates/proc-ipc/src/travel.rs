//! How a [`Queue`] travels to another process: as argument of `Process::target` under any
//! start method, or through a [`Connection`](crate::Connection) or another queue. It goes
//! as the descriptors of its two shared regions and its side channel, with the numbers
//! that are not in shared memory (its item limit, maxsize and ring size); the receiver maps
//! the same regions, so both hold the same queue. (A `Connection` travels as its socket,
//! see its own module.)

use proc_core::travel::{FdRef, ReceivedFd};
use proc_sync::raw::MutexRegion;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::handoff::SideChannel;
use crate::queue::{Queue, Shared};

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shared = self.shared();
        let [send_end, recv_end] = shared.side.fds();
        (
            FdRef::new(shared.ring.fd()),
            FdRef::new(shared.gets.fd()),
            FdRef::new(send_end),
            FdRef::new(recv_end),
            shared.ring.len() as u64,
            shared.maxsize,
            shared.item_limit as u64,
        )
            .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        type Wire = (
            ReceivedFd,
            ReceivedFd,
            ReceivedFd,
            ReceivedFd,
            u64,
            u64,
            u64,
        );
        let (ring, gets, send_end, recv_end, ring_bytes, maxsize, item_limit): Wire =
            Deserialize::deserialize(deserializer)?;
        let ring_bytes = usize::try_from(ring_bytes).map_err(D::Error::custom)?;
        let item_limit = usize::try_from(item_limit).map_err(D::Error::custom)?;
        let ring = MutexRegion::from_fd(ring.into_inner(), ring_bytes).map_err(D::Error::custom)?;
        let gets = MutexRegion::from_fd(gets.into_inner(), 0).map_err(D::Error::custom)?;
        let side = SideChannel::from_fds(send_end.into_inner(), recv_end.into_inner())
            .map_err(D::Error::custom)?;
        Ok(Queue::from_shared(Shared {
            ring,
            gets,
            side,
            maxsize,
            item_limit,
            inline_limit: Shared::inline_limit(ring_bytes),
        }))
    }
}
