//! How a [`Queue`] travels to another process: as argument of `Process::target` under any
//! start method, or through a [`Connection`](crate::Connection) or another queue. It goes
//! as the descriptors of its two shared regions and its side channel, with the settings
//! that are not in shared memory (its ring size, maxsize, item limit and how it passes large
//! items); the receiver maps the same regions, so both hold the same queue. (A `Connection`
//! travels as its socket, see its own module.)

use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
use proc_sync::internal::{MutexKind, MutexRegion};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::handle::Queue;
use super::layout::Shared;
use super::settings::{LargeItems, check_settings};
use crate::side_channel::SideChannel;

/// The kind a queue travels as.
const KIND: &str = "Queue";

/// What travels besides the descriptors.
#[derive(Serialize, Deserialize)]
struct Settings {
    ring_bytes: u64,
    maxsize: u64,
    item_limit: u64,
    handed_over: bool,
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shared = self.shared();
        let [send_end, recv_end] = shared.side.fds();
        let settings = Settings {
            ring_bytes: shared.ring.len() as u64,
            maxsize: shared.maxsize,
            item_limit: shared.item_limit as u64,
            handed_over: shared.large_items == LargeItems::HandedOver,
        };
        let rest = (
            FdRef::new(shared.ring.fd()),
            FdRef::new(shared.gets.fd()),
            FdRef::new(send_end),
            FdRef::new(recv_end),
            settings,
        );
        handle_wire::serialize_handle(serializer, KIND, &rest)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        type Wire = (ReceivedFd, ReceivedFd, ReceivedFd, ReceivedFd, Settings);
        let (ring, gets, send_end, recv_end, settings): Wire =
            handle_wire::deserialize_handle(deserializer, KIND)?;
        let refuse = |reason: String| D::Error::custom(format!("a received queue's {reason}"));
        let too_large = |what: &str, n: u64| refuse(format!("{what} of {n} bytes is too large"));
        let ring_bytes = usize::try_from(settings.ring_bytes)
            .map_err(|_| too_large("ring", settings.ring_bytes))?;
        let item_limit = usize::try_from(settings.item_limit)
            .map_err(|_| too_large("item limit", settings.item_limit))?;
        // What no builder makes, no receiver takes.
        check_settings(ring_bytes, item_limit)
            .map_err(|reason| refuse(format!("settings are not ones a builder makes: {reason}")))?;
        // The files must hold exactly the layout of those settings (proc-sync checks): a
        // ring that the processes sharing it saw with different sizes would be read at
        // different places.
        let ring = MutexRegion::from_fd(ring.into_inner(), ring_bytes, MutexKind::ErrorCheck)
            .map_err(|e| refuse(format!("ring does not hold its settings' layout: {e}")))?;
        let gets = MutexRegion::from_fd(gets.into_inner(), 0, MutexKind::ErrorCheck)
            .map_err(|e| refuse(format!("consumers' state does not hold its layout: {e}")))?;
        let side = SideChannel::from_fds(send_end.into_inner(), recv_end.into_inner())
            .map_err(D::Error::custom)?;
        let large_items = match settings.handed_over {
            true => LargeItems::HandedOver,
            false => LargeItems::Streamed,
        };
        Ok(Queue::from_shared(Shared::new(
            ring,
            gets,
            side,
            settings.maxsize,
            item_limit,
            large_items,
        )))
    }
}
