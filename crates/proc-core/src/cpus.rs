//! How many CPUs: [`cpu_count`], the CPUs this process may use as the standard library
//! counts them, and [`process_cpu_count`], Python 3.13's count of the CPUs this process may
//! use now: its affinity mask, lowered by a cgroup v2 CPU quota.

use std::path::{Path, PathBuf};

/// The number of CPUs this process may run on (its affinity mask and cgroup quota taken
/// into account), at least 1: `std::thread::available_parallelism`. This is what a pool
/// should size itself by; Python's `cpu_count()` counts every CPU of the machine instead.
///
/// ```
/// assert!(proc_core::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The number of CPUs this process may use now, as Python 3.13's
/// `multiprocessing.process_cpu_count()`: the CPUs of its affinity mask
/// (`sched_getaffinity`), lowered to a cgroup v2 CPU quota (`cpu.max` of its cgroup and of
/// every cgroup above it, rounded up) when there is one; at least 1, and never more than
/// [`cpu_count`]. It is read at each call, so it follows `sched_setaffinity` and `taskset`.
///
/// ```
/// let now = proc_core::process_cpu_count();
/// assert!(now >= 1);
/// assert!(now <= proc_core::cpu_count());
/// ```
pub fn process_cpu_count() -> usize {
    let affinity = affinity_count();
    let quota = cgroup_quota();
    let usable = match (affinity, quota) {
        (Some(a), Some(q)) => a.min(q),
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => cpu_count(),
    };
    usable.clamp(1, cpu_count())
}

/// The CPUs in this thread's affinity mask, or `None` if it cannot be read.
fn affinity_count() -> Option<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size and pointer are those of `set`, which lives
    // across the call.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    // SAFETY: CPU_COUNT only reads the set, a valid cpu_set_t filled by the kernel.
    let count = unsafe { libc::CPU_COUNT(&set) };
    usize::try_from(count).ok().filter(|&n| n > 0)
}

/// The tightest CPU quota of this process's cgroup v2 and the cgroups above it, in whole
/// CPUs rounded up; `None` when there is no cgroup v2 or no quota.
fn cgroup_quota() -> Option<usize> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut dir = cgroup_dir(&cgroup, &mountinfo)?;
    let (mount, _) = cgroup2_mount(&mountinfo)?;
    let mut tightest: Option<usize> = None;
    loop {
        if let Some(quota) = std::fs::read_to_string(dir.join("cpu.max"))
            .ok()
            .and_then(|text| parse_cpu_max(&text))
        {
            tightest = Some(tightest.map_or(quota, |t| t.min(quota)));
        }
        if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
            return tightest;
        }
    }
}

/// The directory of this process's cgroup v2, from `/proc/self/cgroup` (the `0::/path`
/// line) and the mount of the cgroup2 filesystem in `/proc/self/mountinfo`.
fn cgroup_dir(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let (mount, root) = cgroup2_mount(mountinfo)?;
    // The path is relative to the root of the hierarchy; the mount shows `root` of it.
    let inside = Path::new(path).strip_prefix(&root).ok()?;
    Some(mount.join(inside))
}

/// Where the cgroup2 filesystem is mounted, and which of its directories is seen there:
/// fields 5 and 4 of its line in `/proc/self/mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (fields, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = fields.split_whitespace().skip(3);
        let root = fields.next()?;
        let mount = fields.next()?;
        Some((PathBuf::from(mount), PathBuf::from(root)))
    })
}

/// `cpu.max`: `max PERIOD` (no quota) or `QUOTA PERIOD` in microseconds; the quota in
/// whole CPUs, rounded up, at least 1.
fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut fields = text.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?;
    let period: u64 = fields.next()?.parse().ok()?;
    if period == 0 {
        return None;
    }
    usize::try_from(quota.div_ceil(period))
        .ok()
        .map(|n| n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_counts_whole_cpus_rounded_up() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2));
        assert_eq!(parse_cpu_max("1000 100000"), Some(1));
    }

    #[test]
    fn no_quota_or_a_malformed_one_is_no_limit() {
        assert_eq!(parse_cpu_max("max 100000"), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("-5 100000"), None);
    }

    #[test]
    fn the_cgroup_directory_is_found_under_the_cgroup2_mount() {
        let mountinfo = "\
22 1 0:21 / /proc rw - proc proc rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        let cgroup = "4:memory:/x\n0::/user.slice/app.scope\n";
        assert_eq!(
            cgroup_dir(cgroup, mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/user.slice/app.scope"))
        );
        // A container sees its own cgroup as the root of the mount.
        let mountinfo = "40 30 0:26 /kube/pod1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw";
        assert_eq!(
            cgroup_dir("0::/kube/pod1/c\n", mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/c"))
        );
        assert_eq!(
            cgroup_dir("1:cpu:/\n", mountinfo),
            None,
            "no cgroup v2 line"
        );
        assert_eq!(
            cgroup_dir("0::/\n", "22 1 0:21 / /proc rw - proc proc rw"),
            None
        );
    }
}
