//! Who this process is and whom it started: [`current_process`], [`parent_process`],
//! [`active_children`].

use crate::global_state;
use crate::process_info::ProcessInfo;

/// The calling process: its name, pid, parent pid and daemon flag.
///
/// In a child started by multiproc the name is the child's (`"Process-1"` …); in the
/// program's first process it is `"MainProcess"`.
///
/// ```
/// use proc_core::{current_process, spawn};
///
/// let main_pid = current_process().pid();
/// let h = spawn(|| {
///     let me = current_process();
///     (me.name().to_string(), me.ppid())
/// })
/// .unwrap();
/// let (name, ppid) = h.join().unwrap();
/// assert!(name.starts_with("Process-"));
/// assert_eq!(ppid, main_pid);
/// ```
pub fn current_process() -> ProcessInfo {
    global_state::lock().me.info()
}

/// The process that started this one, as it was when it did; `None` in the main process.
///
/// It carries a [`sentinel`](ProcessInfo::sentinel) (a pidfd of the parent, handed to the
/// child at start under every start method) and answers
/// [`is_alive`](ProcessInfo::is_alive) by it, so a child can watch its parent end, even by
/// SIGKILL. Under ForkServer the parent is the process that asked for the child, not the
/// fork server, as in Python.
///
/// ```
/// use proc_core::{current_process, parent_process, spawn};
///
/// assert!(parent_process().is_none());
/// let h = spawn(|| parent_process().map(|p| p.pid())).unwrap();
/// assert_eq!(h.join().unwrap(), Some(current_process().pid()));
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    global_state::lock().me.parent.clone()
}

/// The children of this process that are still running. Finished children are reaped as
/// a side effect, as in Python.
///
/// ```
/// use proc_core::{active_children, Process};
///
/// let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(5)));
/// p.start().unwrap();
/// assert!(active_children().iter().any(|c| Some(c.pid()) == p.pid()));
/// p.kill().unwrap();
/// p.join().unwrap();
/// assert!(active_children().iter().all(|c| Some(c.pid()) != p.pid()));
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    let mut global = global_state::lock();
    global.reap_finished();
    global.children.iter().map(|c| c.info()).collect()
}
