//! The process-wide state of the process layer: who this process is, which children it
//! has started and not yet reaped, and its lifeline. One mutex guards it all; `fork` is
//! called with that mutex held, so the child inherits it in a known state and resets it.
//!
//! The mutex is `std::sync::Mutex`, a bare futex word whose unlock is a swap and a wake.
//! parking_lot's mutex must not be used for anything held across `fork`: when threads of
//! the parent were parked on it, the child's unlock hands it to a thread that does not
//! exist there, and the child deadlocks (the test of concurrent starts caught this).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::child::Child;
use crate::error::{Error, Result};
use crate::lifeline::Lifeline;
use crate::pidfd::Pidfd;
use crate::process_info::ProcessInfo;

/// Who this process is.
#[derive(Debug)]
pub(crate) struct Me {
    pub(crate) name: Cow<'static, str>,
    /// Python's `_identity`: the path of child numbers from the main process (empty there).
    pub(crate) identity: Vec<u64>,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<ProcessInfo>,
    /// Started by multiproc (by any start method): must end through `start::finish`,
    /// never return into code that is not its own.
    pub(crate) managed: bool,
}

impl Me {
    /// Who this process is, as `current_process()` tells it. The parent's pid is the one
    /// recorded at start when there is one: a child forked by the fork server has the
    /// server as its kernel parent, not the process that started it.
    pub(crate) fn info(&self) -> ProcessInfo {
        let ppid = self
            .parent
            .as_ref()
            .map_or_else(|| nix::unistd::getppid().as_raw() as u32, ProcessInfo::pid);
        ProcessInfo::new(self.name.to_string(), std::process::id(), ppid, self.daemon)
    }
}

#[derive(Debug)]
pub(crate) struct Global {
    pub(crate) me: Me,
    /// Started and not yet known to be reaped.
    pub(crate) children: Vec<Arc<Child>>,
    /// Created with the first daemon child.
    pub(crate) lifeline: Option<Lifeline>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    me: Me {
        name: Cow::Borrowed("MainProcess"),
        identity: Vec::new(),
        daemon: false,
        parent: None,
        managed: false,
    },
    children: Vec::new(),
    lifeline: None,
});

/// The number of the last child named by this process ("Process-N"); reset in a child.
static LAST_CHILD_NUMBER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn lock() -> MutexGuard<'static, Global> {
    // No code path panics while holding it; should one, the state is still consistent.
    GLOBAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The identity and default name of the next child of this process: `Process-1`, or
/// `Process-1:2` for the second child of `Process-1`, as in Python.
pub(crate) fn next_child_identity() -> (Vec<u64>, String) {
    let number = LAST_CHILD_NUMBER.fetch_add(1, Ordering::Relaxed) + 1;
    let mut identity = lock().me.identity.clone();
    identity.push(number);
    let path: Vec<String> = identity.iter().map(u64::to_string).collect();
    let name = format!("Process-{}", path.join(":"));
    (identity, name)
}

/// In a freshly forked child: restart the numbering of children.
pub(crate) fn reset_child_numbering() {
    LAST_CHILD_NUMBER.store(0, Ordering::Relaxed);
}

impl Global {
    /// What every start does first, whatever the method: a daemon may not start children;
    /// finished children are reaped; a daemon child needs the lifeline, made the first time.
    /// Returns who this process is, as the child will know its parent, with a new pidfd of
    /// this process as its sentinel (the child's `parent_process().sentinel()`; the parent's
    /// copy closes when the start is over).
    pub(crate) fn prepare_start(&mut self, daemon_child: bool) -> Result<ProcessInfo> {
        if self.me.daemon {
            return Err(Error::DaemonCannotStartChildren {
                name: self.me.name.to_string(),
            });
        }
        self.reap_finished();
        if daemon_child && self.lifeline.is_none() {
            self.lifeline = Some(
                Lifeline::new().map_err(|e| Error::io("creating the daemon lifeline pipe", e))?,
            );
        }
        let sentinel = Pidfd::of_this_process()
            .map_err(|e| Error::io("pidfd_open of this process, for its child to watch", e))?;
        Ok(self.me.info().with_sentinel(Arc::new(sentinel)))
    }

    /// Reaps every child that has ended and forgets it. A child that cannot be waited for
    /// (someone else reaped it: SIGCHLD ignored, or a stray `waitpid(-1)`) is forgotten too.
    pub(crate) fn reap_finished(&mut self) {
        self.children.retain(|c| matches!(c.poll(), Ok(None)));
    }
}

/// Forgets a child that its handle saw end, so that its pidfd closes with the handle.
pub(crate) fn forget(child: &Arc<Child>) {
    lock().children.retain(|c| !Arc::ptr_eq(c, child));
}

/// Python's exit routine: terminate the daemon children, then join every child. Runs at
/// normal exit of the main process and at the end of every child multiproc started.
pub(crate) fn finish_children() {
    let children = {
        let mut global = lock();
        global.reap_finished();
        global.children.clone()
    };
    for child in children.iter().filter(|c| c.daemon) {
        let _ = child.signal(libc::SIGTERM);
    }
    for child in &children {
        let _ = child.wait(None);
    }
    lock().reap_finished();
}
