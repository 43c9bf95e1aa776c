//! Mappings: how many mappings of multiproc's memory files a process holds.

/// The mappings of this process whose file is a memory file labelled `label…` (multiproc
/// names its memory files `multiproc-…`; `/proc/self/maps` shows them as
/// `/memfd:multiproc-… (deleted)`). Only those: the test harness's threads come and go, and
/// their stacks are mappings too.
///
/// ```
/// use multiproc_test_support::maps::memfd_mappings;
///
/// assert_eq!(memfd_mappings("no-such-label-"), 0);
/// ```
pub fn memfd_mappings(label: &str) -> usize {
    let pattern = format!("memfd:{label}");
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter(|line| line.contains(&pattern))
        .count()
}

/// The mappings of multiproc's memory files in this process.
pub fn multiproc_mappings() -> usize {
    memfd_mappings("multiproc-")
}
