//! What `/proc` says about this process and its children: the counts the leak check
//! compares before and after a scenario, and the description of a stuck process that a
//! deadlock report prints.

use std::collections::HashMap;

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub comm: String,
}

fn stat_of(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split after the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        state,
        comm,
    })
}

/// Whether `pid` is a child of this process that has not ended.
pub fn is_running_child(pid: u32) -> bool {
    stat_of(pid).is_some_and(|p| p.ppid == std::process::id() && p.state != 'Z')
}

/// Every process of the machine (those that can be read).
fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_of)
        .collect()
}

/// The children of this process.
pub fn children() -> Vec<Proc> {
    let me = std::process::id();
    all().into_iter().filter(|p| p.ppid == me).collect()
}

/// Every descendant of `root`, children first.
pub fn descendants(root: u32) -> Vec<Proc> {
    let mut by_parent: HashMap<u32, Vec<Proc>> = HashMap::new();
    for p in all() {
        by_parent.entry(p.ppid).or_default().push(p);
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for child in by_parent.remove(&pid).unwrap_or_default() {
            next.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Mappings of multiproc's shared memory files in this process.
pub fn shared_regions() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| {
        maps.lines()
            .filter(|line| line.contains("memfd:multiproc-"))
            .count()
    })
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// Where `pid` and each of its threads stand: state, kernel wait channel, system call.
pub fn describe(pid: u32) -> String {
    let Some(p) = stat_of(pid) else {
        return format!("pid {pid}: gone");
    };
    let mut out = format!("pid {pid} ({}) parent {} state {}", p.comm, p.ppid, p.state);
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for tid in tasks {
        let base = format!("/proc/{pid}/task/{tid}");
        let state = std::fs::read_to_string(format!("{base}/stat"))
            .ok()
            .and_then(|s| {
                let close = s.rfind(')')?;
                s.get(close + 1..)?
                    .split_whitespace()
                    .next()
                    .map(String::from)
            })
            .unwrap_or_else(|| "?".to_string());
        let syscall = read_trimmed(&format!("{base}/syscall"));
        let mut fields = syscall.split_whitespace();
        let number = fields.next().unwrap_or("?").to_string();
        out.push_str(&format!(
            "; thread {tid} state {state} wchan {} syscall {number}",
            read_trimmed(&format!("{base}/wchan")),
        ));
        // A futex wait: whose word it is (a lock's shared memory, or the heap), the value
        // the waiter expected, and the value the word holds now.
        let hex = |a: Option<&str>| {
            a.and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        };
        if number == libc::SYS_futex.to_string()
            && let Some(word) = hex(fields.next())
        {
            let (op, expected) = (hex(fields.next()), hex(fields.next()));
            out.push_str(&format!(" on {}", mapping_of(pid, word)));
            if let (Some(op), Some(expected)) = (op, expected) {
                out.push_str(&format!(" (op {op:#x}, expecting {expected:#010x})"));
            }
            if let Some(value) = read_word(pid, word) {
                out.push_str(&format!(" holding {value:#010x}"));
            }
        }
    }
    out
}

/// The mapping of process `pid` that holds `address`, as "name+offset".
fn mapping_of(pid: u32, address: u64) -> String {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let Some((start, end)) = fields.next().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        if (start..end).contains(&address) {
            let name = fields.nth(4).unwrap_or("[anonymous]");
            return format!("{name}+{:#x}", address - start);
        }
    }
    format!("{address:#x}")
}

/// The 32-bit word at `address` in process `pid` (a child: its memory is ours to read).
fn read_word(pid: u32, address: u64) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut bytes = [0u8; 4];
    mem.read_exact_at(&mut bytes, address).ok()?;
    Some(u32::from_ne_bytes(bytes))
}
