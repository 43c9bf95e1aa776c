//! No zombies and no leaked file descriptors. This binary holds only these tests, run one
//! after another, so that no other test's children blur the counts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use proc_core::{Process, active_children, spawn};

/// The tests of this binary run one at a time: each counts this process's children.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Children of this process that have ended but were not reaped.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.to_string().as_str()) {
            zombies.push(pid);
        }
    }
    zombies
}

fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

#[test]
fn two_thousand_started_and_joined_processes_leave_no_fd_and_no_zombie() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up once: the first start installs the exit hook and may open lazily-made fds.
    let mut p = Process::new(|| {});
    p.start().unwrap();
    p.join().unwrap();
    let fds_before = open_fds();
    let zombies_before = zombie_children().len();

    for i in 0..2000u32 {
        if i % 2 == 0 {
            let mut p = Process::new(|| {});
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 0);
        } else {
            assert_eq!(spawn(move || i).unwrap().join().unwrap(), i);
        }
    }

    assert_eq!(open_fds(), fds_before, "file descriptors leaked");
    assert_eq!(
        zombie_children().len(),
        zombies_before,
        "zombies left behind"
    );
    assert!(
        zombie_children().is_empty(),
        "zombies: {:?}",
        zombie_children()
    );
}

#[test]
fn a_dropped_handle_of_a_running_child_is_reaped_not_left_a_zombie() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Process::new(|| std::thread::sleep(Duration::from_secs(60)));
    p.start().unwrap();
    let pid = p.pid().unwrap();
    drop(p);
    // The handle is gone while the child runs; end the child by its pid, which is safe
    // here: an unreaped child keeps its pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "the child did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Python's rule: finished children are reaped by active_children() (and by the next
    // start, and at exit).
    assert!(active_children().iter().all(|c| c.pid() != pid));
    assert_eq!(state_of(pid), None, "the dropped child is still a zombie");

    // The next start reaps too.
    let mut p = Process::new(|| {});
    p.start().unwrap();
    let first = p.pid().unwrap();
    drop(p);
    while state_of(first) != Some('Z') {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut q = Process::new(|| {});
    q.start().unwrap();
    assert_eq!(
        state_of(first),
        None,
        "start() did not reap the finished child"
    );
    q.join().unwrap();
    assert!(zombie_children().is_empty());
}

#[test]
fn a_dropped_join_handle_of_a_running_child_is_reaped_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let h = spawn(|| std::thread::sleep(Duration::from_secs(60))).unwrap();
    let pid = h.pid();
    drop(h);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while state_of(pid) != Some('Z') {
        std::thread::sleep(Duration::from_millis(5));
    }
    active_children();
    assert_eq!(state_of(pid), None);
}
