//! `parent_process()` in a child: who the parent is, `is_alive()`, and a sentinel that turns
//! readable when the parent has ended, however it ends (CPython's `test_parent_process`,
//! `test_parent_process_attributes`), under every start method. Under ForkServer the parent
//! is the process that asked for the child, not the fork server that forked it.
//!
//! A child whose parent is killed is orphaned: this test binary makes itself a child
//! subreaper, so such orphans come back to it, and each test reaps the ones it made by pid.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use proc_core::{Error, Process, StartMethod, Waitable, current_process, parent_process, wait};
use serde::{Deserialize, Serialize};

use common::{Reporter, report_pipe};

every_start_method![
    the_parent_is_the_starting_process_alive_with_an_unreadable_sentinel,
    the_sentinel_turns_readable_when_the_parent_is_killed,
];

#[test]
fn the_main_process_has_no_parent_and_no_sentinel_of_its_own() {
    assert!(parent_process().is_none());
    let me = current_process();
    assert!(me.is_alive());
    assert!(matches!(me.sentinel(), Err(Error::NoSentinel { .. })));
}

/// What a child sees of its parent.
#[derive(Debug, Serialize, Deserialize)]
struct ParentSeen {
    /// The pid of `parent_process()`, if any.
    pid: Option<u32>,
    /// `parent_process().is_alive()`.
    alive: bool,
    /// Whether the sentinel was readable (after waiting, for the second report).
    readable: bool,
    /// The pid and the operating system's parent of the child that reports.
    me: u32,
    os_parent: u32,
}

fn look_at_parent(reporter: &Reporter, patience: Option<Duration>) {
    let parent = parent_process();
    // The parent as multiproc::wait sees it: through its sentinel.
    let readable = match &parent {
        Some(parent) => {
            let ready = wait(
                &[parent as &dyn Waitable],
                Some(patience.unwrap_or_default()),
            )
            .expect("wait for the parent");
            ready == [0]
        }
        None => false,
    };
    reporter.send(&ParentSeen {
        pid: parent.as_ref().map(|p| p.pid()),
        alive: parent.as_ref().is_some_and(|p| p.is_alive()),
        readable,
        me: std::process::id(),
        os_parent: nix::unistd::getppid().as_raw() as u32,
    });
}

fn report_parent(reporter: Reporter) {
    look_at_parent(&reporter, None);
}

fn the_parent_is_the_starting_process_alive_with_an_unreadable_sentinel(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(report_parent, (reporter,)).with_start_method(method);
    p.start().unwrap();
    let seen: ParentSeen = reports.recv();
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(seen.pid, Some(std::process::id()));
    assert!(seen.alive, "the parent is alive");
    assert!(
        !seen.readable,
        "the sentinel of a live parent is not readable"
    );
    if method == StartMethod::ForkServer {
        assert_ne!(
            seen.os_parent,
            std::process::id(),
            "a served child's parent for the kernel is the fork server"
        );
    }
}

/// The grandchild: reports its parent alive, then waits (up to a minute) for the parent's
/// sentinel and reports again.
fn grandchild(reporter: Reporter) {
    look_at_parent(&reporter, None);
    look_at_parent(&reporter, Some(Duration::from_secs(60)));
}

/// The middle process: starts the grandchild (by the method that started it, which is its
/// default), then waits to be killed.
fn middle(reporter: Reporter) {
    let mut p = Process::target(grandchild, (reporter,));
    p.start().expect("start the grandchild");
    std::thread::sleep(Duration::from_secs(60));
}

fn the_sentinel_turns_readable_when_the_parent_is_killed(method: StartMethod) {
    become_subreaper();
    let (reports, reporter) = report_pipe();
    let mut middle_process = Process::target(middle, (reporter,)).with_start_method(method);
    middle_process.start().unwrap();
    let middle_pid = middle_process.pid().unwrap();

    let before: ParentSeen = reports.recv();
    assert_eq!(
        before.pid,
        Some(middle_pid),
        "its parent is the middle process"
    );
    assert!(before.alive && !before.readable, "{before:?}");
    if method == StartMethod::ForkServer {
        assert_ne!(
            before.os_parent, middle_pid,
            "forked by the middle's fork server"
        );
    }

    middle_process.kill().unwrap();
    assert_eq!(middle_process.join().unwrap(), -9);

    let after: ParentSeen = reports.recv();
    assert_eq!(after.pid, Some(middle_pid));
    assert!(
        after.readable,
        "the sentinel turned readable when the parent died"
    );
    assert!(!after.alive, "is_alive() says the parent is gone");

    // The orphans came back to us: the grandchild, and under ForkServer the middle's fork
    // server, which ends once its requester is gone.
    reap(after.me);
    if method == StartMethod::ForkServer {
        // Seen before the middle died: by now the grandchild may be ours already.
        reap(before.os_parent);
    }
}

/// Makes this process the one that orphans of its descendants are given to.
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER and a flag; no memory is involved.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Waits for `pid`, an orphan that comes to this process, and reaps it. Until it is
/// reparented it is another's child (the grandchild is its fork server's until the server
/// ends), which may reap it first: then it is gone, and there is nothing to do.
fn reap(pid: u32) {
    let me = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let Some(stat) = common::stat_of(pid) else {
            return;
        };
        if stat.ppid == me {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            nix::sys::wait::waitpid(pid, None).unwrap_or_else(|e| panic!("reaping {pid}: {e}"));
            return;
        }
        assert!(Instant::now() < deadline, "{pid} did not end: {stat:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
