//! How a [`Queue`] travels to another process: as argument of `Process::target` under any
//! start method, or through a [`Connection`](crate::Connection) or another queue. It goes
//! as the descriptors of its two shared regions and its side channel, with the settings
//! that are not in shared memory (its ring size, maxsize, item limit and how it passes large
//! items); the receiver maps the same regions, so both hold the same queue. (A `Connection`
//! travels as its socket, see its own module.)

use std::os::fd::{AsFd, OwnedFd};

use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
use proc_sync::internal::MutexRegion;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::handle::Queue;
use super::layout::{GetSide, PutSide, Shared};
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
        // The files hold exactly the layout of those settings: a ring that the processes
        // sharing it saw with different sizes would be read at different places.
        let (ring, gets) = (ring.into_inner(), gets.into_inner());
        let ring_layout = (size_of::<PutSide>() as u64).saturating_add(settings.ring_bytes);
        for (file, what, layout) in [
            (&ring, "ring", ring_layout),
            (&gets, "consumers' state", size_of::<GetSide>() as u64),
        ] {
            let size = file_size(file).map_err(|e| refuse(format!("{what} {e}")))?;
            if size != layout {
                return Err(refuse(format!(
                    "{what} is a file of {size} bytes where its settings make {layout}"
                )));
            }
        }
        let ring = MutexRegion::from_fd(ring, ring_bytes).map_err(D::Error::custom)?;
        let gets = MutexRegion::from_fd(gets, 0).map_err(D::Error::custom)?;
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

/// The size of a received file; an error for anything that is not a regular file (a
/// memory file is one).
fn file_size(file: &OwnedFd) -> Result<u64, String> {
    let stat = nix::sys::stat::fstat(file.as_fd()).map_err(|e| format!("fstat failed: {e}"))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("is not a memory file".to_string());
    }
    u64::try_from(stat.st_size).map_err(|_| "has a negative size".to_string())
}
