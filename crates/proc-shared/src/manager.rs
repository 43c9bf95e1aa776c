//! [`SharedMemoryManager`]: blocks that live as long as their manager, as Python's
//! `multiprocessing.managers.SharedMemoryManager`.

use std::os::fd::{AsFd, OwnedFd};

use proc_core::internal::handle_wire::{FdRef, ReceivedFd, deserialize_handle, serialize_handle};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::shareable_list::{Item, ShareableList};
use crate::shared_memory::{SharedMemory, Tracking};
use crate::tracker;

/// The kind a manager announces when it travels.
const KIND: &str = "SharedMemoryManager";

/// Hands out [`SharedMemory`] blocks and [`ShareableList`]s that are unlinked together when
/// the manager is shut down, as Python's `SharedMemoryManager`.
///
/// The manager is a small process of its own (a resource tracker that answers to this
/// handle). [`shutdown`](SharedMemoryManager::shutdown), or dropping the manager in the
/// process that started it, unlinks every block it handed out, wherever they were created;
/// if that process dies without shutting the manager down (SIGKILL), the blocks are unlinked
/// with a warning once no process holds the manager any more.
///
/// The manager travels to children (captured by a closure, as an argument of
/// `Process::target`, through a queue), which can make blocks through it too; a copy that
/// travelled, or one made with [`try_clone`](Self::try_clone), does not shut the manager
/// down when dropped; [`shutdown`](Self::shutdown) on it does.
///
/// ```
/// use proc_shared::{Item, SharedMemoryManager};
///
/// let mut smm = SharedMemoryManager::start()?;
/// let shm = smm.shared_memory(128)?;
/// let list = smm.shareable_list(&[Item::Int(1), Item::Str("two".into())])?;
/// let names = [shm.name().to_string(), list.name().to_string()];
/// assert!(std::path::Path::new("/dev/shm").join(&names[0]).exists());
///
/// smm.shutdown()?; // both blocks are unlinked now
/// for name in &names {
///     assert!(!std::path::Path::new("/dev/shm").join(name).exists());
/// }
/// assert!(smm.shared_memory(1).is_err());
/// # Ok::<(), proc_shared::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedMemoryManager {
    /// The manager's end of its tracker's socket; `None` once shut down here.
    end: Option<OwnedFd>,
    /// The process that started the manager: dropping it there shuts the manager down.
    owner: Option<u32>,
}

impl SharedMemoryManager {
    /// Starts a manager.
    ///
    /// ```
    /// let smm = proc_shared::SharedMemoryManager::start()?;
    /// # drop(smm);
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if its process cannot be started.
    pub fn start() -> Result<SharedMemoryManager> {
        Ok(SharedMemoryManager {
            end: Some(tracker::start_for_manager()?),
            owner: Some(std::process::id()),
        })
    }

    /// A new block of `size` bytes (random name), unlinked when the manager shuts down.
    ///
    /// ```
    /// let smm = proc_shared::SharedMemoryManager::start()?;
    /// let shm = smm.shared_memory(8)?;
    /// shm.write(0, &1u64)?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerShutDown`], or those of [`SharedMemory::create`].
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory> {
        SharedMemory::create_tracked(size, Tracking::Manager(self.end()?.as_fd()))
    }

    /// A new [`ShareableList`] of `items`, unlinked when the manager shuts down.
    ///
    /// ```
    /// let smm = proc_shared::SharedMemoryManager::start()?;
    /// let list = smm.shareable_list(&[true.into()])?;
    /// assert_eq!(list.get(0)?, true.into());
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerShutDown`], or those of [`ShareableList::create`].
    pub fn shareable_list(&self, items: &[Item]) -> Result<ShareableList> {
        ShareableList::create_tracked(items, Tracking::Manager(self.end()?.as_fd()))
    }

    /// Unlinks every block the manager handed out (those already unlinked aside) and ends
    /// its process; returns once it has. Later calls, here or on another copy, do nothing.
    ///
    /// ```
    /// let mut smm = proc_shared::SharedMemoryManager::start()?;
    /// smm.shutdown()?;
    /// smm.shutdown()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the manager cannot be reached for a reason other than its end.
    pub fn shutdown(&mut self) -> Result<()> {
        match self.end.take() {
            Some(end) => tracker::shut_down(end),
            None => Ok(()),
        }
    }

    /// Another handle to the same manager, for a child (or a thread) to make blocks
    /// through. Dropping it does not shut the manager down; its
    /// [`shutdown`](Self::shutdown) does.
    ///
    /// ```
    /// let smm = proc_shared::SharedMemoryManager::start()?;
    /// let copy = smm.try_clone()?;
    /// drop(copy);
    /// assert!(smm.shared_memory(8).is_ok());
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerShutDown`], or [`Error::Io`] if the descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Result<SharedMemoryManager> {
        let end = self
            .end()?
            .try_clone()
            .map_err(|e| Error::io("duplicating the SharedMemoryManager's socket", e))?;
        Ok(SharedMemoryManager {
            end: Some(end),
            owner: None,
        })
    }

    fn end(&self) -> Result<&OwnedFd> {
        self.end.as_ref().ok_or(Error::ManagerShutDown)
    }
}

impl Drop for SharedMemoryManager {
    fn drop(&mut self) {
        // A copy in a forked child (or one that travelled) is not the manager's owner.
        if self.owner == Some(std::process::id()) {
            let _ = self.shutdown();
        }
    }
}

impl Serialize for SharedMemoryManager {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let end = self.end().map_err(serde::ser::Error::custom)?;
        serialize_handle(serializer, KIND, &(FdRef::new(end.as_fd()),))
    }
}

impl<'de> Deserialize<'de> for SharedMemoryManager {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (end,): (ReceivedFd,) = deserialize_handle(deserializer, KIND)?;
        let end = end.into_inner();
        tracker::socket_identity(&end).map_err(D::Error::custom)?;
        Ok(SharedMemoryManager {
            end: Some(end),
            owner: None,
        })
    }
}
