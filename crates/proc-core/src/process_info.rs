//! [`ProcessInfo`]: who a process is (name, pid, parent's pid, daemon flag), as a value that
//! can be kept and sent.

use serde::{Deserialize, Serialize};

/// A snapshot of one process's identity, as Python's `current_process()` shows it.
///
/// ```
/// let me = proc_core::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.is_daemon());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    ppid: u32,
    daemon: bool,
}

impl ProcessInfo {
    pub(crate) fn new(name: String, pid: u32, ppid: u32, daemon: bool) -> Self {
        ProcessInfo {
            name,
            pid,
            ppid,
            daemon,
        }
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
}
