//! Helpers shared by the pattern tests, for children that run under whatever start method
//! `MULTIPROC_START_METHOD` says: a file through which a pool task says which worker runs
//! it, a tally of items seen by processes that cannot be handed a shared object, children
//! started from targets, and a check that a child is asleep in a blocking call.
//!
//! Pool tasks and the functions of a `ProducerConsumer` capture nothing (under Spawn and
//! ForkServer they cannot), and a pool task's arguments are plain data: handles such as an
//! `Event` do not travel through a pool. So a task that must tell the test something
//! writes a file whose path it was given, or whose path it can work out.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::Process;

/// Long enough never to be reached by a correct run; only a broken one waits this long.
pub(crate) const NEVER: Duration = Duration::from_secs(60);

/// A path no other test (of this process or another) uses, in the temporary directory.
fn unique_path(kind: &str, tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "multiproc-{kind}-{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A file through which a child says its pid: the test makes one and passes its
/// [`path`](PidFile::path) to the child, the child calls [`PidFile::announce`], the test
/// [`wait`](PidFile::wait)s for it. Removed when dropped.
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub(crate) fn new(tag: &str) -> PidFile {
        let path = unique_path("pid", tag);
        let _ = std::fs::remove_file(&path);
        PidFile { path }
    }

    /// The path, as a task argument.
    pub(crate) fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// In the child: writes this process's pid to `path`, all at once (written aside, then
    /// renamed), so that the test never reads half of it.
    pub(crate) fn announce(path: &str) {
        let aside = format!("{path}.{}", std::process::id());
        std::fs::write(&aside, std::process::id().to_string()).unwrap();
        std::fs::rename(&aside, path).unwrap();
    }

    /// Waits (polling) until the child has announced itself; its pid.
    pub(crate) fn wait(&self) -> u32 {
        let start = Instant::now();
        loop {
            if let Ok(pid) = std::fs::read_to_string(&self.path) {
                return pid.parse().unwrap();
            }
            assert!(start.elapsed() < NEVER, "nobody announced {:?}", self.path);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The items that the children of this test process saw, each child recording in its own
/// file of a directory named after this process and `tag`. For functions that cannot be
/// handed a shared object: they find the directory from their parent's pid.
pub(crate) struct Tally {
    dir: PathBuf,
}

impl Tally {
    fn dir(parent: u32, tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("multiproc-tally-{parent}-{tag}"))
    }

    /// In the test: an empty tally for the children of this process that record under
    /// `tag` (unique to the test, since the tests of a binary share its pid).
    pub(crate) fn new(tag: &str) -> Tally {
        let dir = Tally::dir(std::process::id(), tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Tally { dir }
    }

    /// In a child of the test process: records that this process saw `item`.
    pub(crate) fn record(tag: &str, item: u64) {
        let parent = proc_core::parent_process()
            .expect("a child of the test")
            .pid();
        let mine = Tally::dir(parent, tag).join(std::process::id().to_string());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(mine)
            .unwrap();
        writeln!(file, "{item}").unwrap();
    }

    /// Every item recorded, by every child, sorted (an item seen twice is there twice).
    pub(crate) fn items(&self) -> Vec<u64> {
        let mut items = Vec::new();
        for file in std::fs::read_dir(&self.dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            items.extend(text.lines().map(|line| line.parse::<u64>().unwrap()));
        }
        items.sort_unstable();
        items
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a child that calls `target` with `args`, by the start method in force.
pub(crate) fn start<F, Args>(target: F, args: Args) -> Process
where
    F: proc_core::Target<Args>,
    Args: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args);
    p.start().expect("start a child");
    p
}

/// Polls the kernel's record of where the child sleeps until it is a futex wait: the child
/// has gone to sleep in a blocking call (join, get, …), not merely been started.
pub(crate) fn wait_until_asleep_in_futex(p: &Process) {
    let pid = p.pid().expect("a started child");
    let start = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .unwrap_or_default()
        .contains("futex")
    {
        assert!(start.elapsed() < NEVER, "child {pid} never slept");
        std::thread::yield_now();
    }
}
