//! [`ProcessInfo`]: who a process is (name, pid, parent's pid, daemon flag), as a value that
//! can be kept and sent; the [`parent_process`](crate::parent_process) of a child also
//! carries a sentinel that tells when the parent has ended.

use std::hash::{Hash, Hasher};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::wait_readable::wait_readable;

/// A snapshot of one process's identity, as Python's `current_process()` shows it.
///
/// ```
/// let me = proc_core::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.is_daemon());
/// assert!(me.is_alive());
/// ```
///
/// Two snapshots are equal when they name the same process the same way (name, pid,
/// parent's pid, daemon flag); the sentinel plays no part, and does not travel: a
/// `ProcessInfo` decoded in another process has none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    ppid: u32,
    daemon: bool,
    /// A descriptor that turns readable when this process has ended: a pidfd of it.
    #[serde(skip)]
    sentinel: Option<Arc<OwnedFd>>,
}

impl ProcessInfo {
    pub(crate) fn new(name: String, pid: u32, ppid: u32, daemon: bool) -> Self {
        ProcessInfo {
            name,
            pid,
            ppid,
            daemon,
            sentinel: None,
        }
    }

    /// The same snapshot, with `sentinel` (a pidfd of this process) to watch it by.
    pub(crate) fn with_sentinel(mut self, sentinel: Arc<OwnedFd>) -> Self {
        self.sentinel = Some(sentinel);
        self
    }

    /// The process's name: `"MainProcess"`, `"Process-N"` by default, or the name given
    /// with [`Process::with_name`](crate::Process::with_name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The parent's process id. For [`current_process`](crate::current_process) in a child
    /// started by multiproc, the process that started it (under the ForkServer start method the
    /// fork server forks the child, but the parent is the process that asked for it); elsewhere
    /// the operating system's parent, read when it was called.
    pub fn ppid(&self) -> u32 {
        self.ppid
    }

    /// Whether the process is a daemon (killed when its parent ends).
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Whether the process is still running, now.
    ///
    /// Exact for the [`parent_process`](crate::parent_process) of a child, which carries a
    /// [`sentinel`](ProcessInfo::sentinel), and for the calling process itself. For another
    /// snapshot (a child listed by [`active_children`](crate::active_children), one decoded
    /// from elsewhere) it asks the kernel whether a process with that pid exists, which a
    /// recycled pid can fool; watch children through their [`Process`](crate::Process).
    ///
    /// ```
    /// use proc_core::{parent_process, spawn};
    ///
    /// let h = spawn(|| parent_process().map(|parent| parent.is_alive()))?;
    /// assert_eq!(h.join().unwrap(), Some(true), "the parent is alive while it joins");
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        if let Some(sentinel) = &self.sentinel {
            // Readable, or an error of poll: the process is not known to be running.
            return matches!(
                wait_readable(sentinel.as_fd(), Some(Instant::now())),
                Ok(false)
            );
        }
        if self.pid == std::process::id() {
            return true;
        }
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        // SAFETY: signal 0 checks that the process exists and sends nothing.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    /// A file descriptor that turns readable when the process has ended, for `poll`,
    /// `epoll` or [`wait`](https://docs.rs/multiproc) alongside other descriptors: Python's
    /// `parent_process().sentinel`. Only the [`parent_process`](crate::parent_process) of a
    /// child started by multiproc carries one (a pidfd of the parent, which cannot be
    /// confused with a later process that reuses its pid); other snapshots give
    /// [`Error::NoSentinel`].
    ///
    /// Under every start method the parent is the process that started the child: under
    /// ForkServer that is the process that asked the fork server for it, not the fork server
    /// (the child's parent for the operating system), so the sentinel turns readable when
    /// the process that asked has ended.
    ///
    /// ```
    /// use std::time::Instant;
    /// use proc_core::{current_process, internal::wait_readable, parent_process, spawn};
    ///
    /// assert!(current_process().sentinel().is_err(), "the main process has no sentinel of its own");
    /// let h = spawn(|| {
    ///     let parent = parent_process().expect("a child has a parent");
    ///     let sentinel = parent.sentinel().expect("and a sentinel of it");
    ///     wait_readable(sentinel, Some(Instant::now())).expect("poll")
    /// })?;
    /// assert_eq!(h.join().unwrap(), false, "the parent is alive: its sentinel is not readable");
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>> {
        self.sentinel
            .as_deref()
            .map(AsFd::as_fd)
            .ok_or_else(|| Error::NoSentinel {
                name: self.name.clone(),
            })
    }
}

impl PartialEq for ProcessInfo {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.pid, self.ppid, self.daemon)
            == (&other.name, other.pid, other.ppid, other.daemon)
    }
}

impl Eq for ProcessInfo {}

impl Hash for ProcessInfo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.name, self.pid, self.ppid, self.daemon).hash(state);
    }
}
