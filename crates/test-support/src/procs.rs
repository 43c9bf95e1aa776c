//! Processes as `/proc` shows them: a process's state and parent, the children of a
//! process, its fork servers, and the zombies among them.

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Its pid.
    pub pid: u32,
    /// Its state: `R`, `S`, `D`, `Z` (a zombie), `T`, …
    pub state: char,
    /// Its parent's pid.
    pub ppid: u32,
}

/// `/proc/<pid>/stat`, or `None` when there is no such process.
///
/// ```
/// let me = multiproc_test_support::procs::stat_of(std::process::id()).unwrap();
/// assert_eq!(me.state, 'R');
/// ```
pub fn stat_of(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { pid, state, ppid })
}

/// Every process whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<ProcStat> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_of)
        .filter(|stat| stat.ppid == parent)
        .collect()
}

/// Whether `pid` runs as a multiproc fork server (its command line carries the marker).
pub fn is_fork_server(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == b"--multiproc-forkserver")
    })
}

/// This process's fork servers (it has one once it started a child by ForkServer).
pub fn my_fork_servers() -> Vec<u32> {
    children_of(std::process::id())
        .into_iter()
        .filter(|c| c.state != 'Z' && is_fork_server(c.pid))
        .map(|c| c.pid)
        .collect()
}

/// Children of this process, and of its fork servers, that ended and were not reaped.
pub fn zombies() -> Vec<ProcStat> {
    let mut parents = vec![std::process::id()];
    parents.extend(my_fork_servers());
    parents
        .into_iter()
        .flat_map(children_of)
        .filter(|c| c.state == 'Z')
        .collect()
}
