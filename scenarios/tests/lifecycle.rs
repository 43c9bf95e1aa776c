//! Process-lifecycle behaviours that need a clean parent: its own stdout, a known number of
//! threads, its own exit. Each test runs `lifecycle <scenario>` and reads what it printed.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lifecycle");

fn run(args: &[&str]) -> (String, String, Output) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run scenario");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (stdout, stderr, out)
}

fn pidfd_of(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open with a pid and no flags; returns a new fd we then own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}) failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the fd was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Waits until the process behind `pidfd` has ended; false on timeout.
fn ended_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).expect("poll") == 1
}

#[test]
fn nothing_prints_twice_and_a_childs_text_without_newline_is_flushed() {
    let (stdout, stderr, out) = run(&["output"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "parent-before child-no-newline parent-after\n");
}

#[test]
fn a_panicking_child_prints_its_message_on_stderr_and_exits_with_one() {
    let (stdout, stderr, out) = run(&["panic"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "exit code 1\n");
    assert!(
        stderr.contains("the child gave up: code 7"),
        "the panic message is not on stderr: {stderr}"
    );
}

#[test]
fn default_names_count_per_parent() {
    let (stdout, stderr, out) = run(&["names"]);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "main: MainProcess",
            "handles: Process-1 Process-2",
            "child: Process-1 daemon=false",
            "grandchild: Process-1:1",
        ]
    );
}

#[test]
fn a_single_threaded_parent_forks_without_warning() {
    let (stdout, stderr, out) = run(&["fork-warning"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "forked twice\n");
    assert!(!stderr.contains("warning"), "unexpected warning: {stderr}");
}

#[test]
fn a_multi_threaded_parent_gets_exactly_one_warning_that_says_why_and_what_instead() {
    let (stdout, stderr, out) = run(&["fork-warning", "threads"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "forked twice\n");
    assert_eq!(stderr.matches("multiproc: warning").count(), 1, "{stderr}");
    assert!(stderr.contains("2 threads"), "{stderr}");
    assert!(stderr.contains("deadlock"), "says why: {stderr}");
    assert!(
        stderr.contains("before creating threads"),
        "says what instead: {stderr}"
    );
}

#[test]
fn at_normal_exit_daemons_are_terminated_and_other_children_joined() {
    let (stdout, stderr, out) = run(&["exit-routine"]);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let (Some(returned), Some(worker_done)) = (at("main returns"), at("worker done")) else {
        panic!("the non-daemon child was not joined: {stdout}");
    };
    assert!(returned < worker_done, "{stdout}");
    // The daemon prints this after its 30 s sleep: had main joined it instead of
    // terminating it, the line would be there (no timing needs asserting).
    assert!(
        at("daemon died normally").is_none(),
        "the daemon outlived main: {stdout}"
    );
    let daemon_pid: u32 = lines
        .iter()
        .find_map(|l| l.strip_prefix("daemon pid "))
        .expect("daemon pid line")
        .parse()
        .unwrap();
    // main terminated and reaped it before exiting: no process of ours has that pid now
    // (the pid may only have been recycled by an unrelated program).
    let stat = std::fs::read_to_string(format!("/proc/{daemon_pid}/stat")).unwrap_or_default();
    assert!(
        !stat.contains("(lifecycle)"),
        "the daemon is still there: {stat}"
    );
}

#[test]
fn a_daemon_dies_with_its_parent_even_when_the_parent_is_sigkilled() {
    let mut parent = Command::new(BIN)
        .arg("parent-killed")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (pid, alive) = line
        .trim()
        .strip_prefix("daemon ")
        .and_then(|rest| rest.split_once(" alive="))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert_eq!(
        alive, "true",
        "the daemon died when the thread that started it ended"
    );
    let daemon = pidfd_of(pid.parse().unwrap());
    assert!(daemon.as_raw_fd() >= 0);
    assert!(
        !ended_within(&daemon, Duration::ZERO),
        "the daemon ended before its parent"
    );
    parent.kill().unwrap(); // SIGKILL: no exit routine runs in the parent
    parent.wait().unwrap();
    assert!(
        ended_within(&daemon, Duration::from_secs(10)),
        "the daemon outlived its SIGKILLed parent"
    );
}
