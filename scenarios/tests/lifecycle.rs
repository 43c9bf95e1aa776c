//! Process-lifecycle behaviours that need a clean parent: its own stdout, a known number of
//! threads, its own exit. Each test runs `lifecycle <scenario>` once per start method (set
//! through `MULTIPROC_START_METHOD`) and reads what it printed.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lifecycle");

const METHODS: [&str; 3] = ["fork", "spawn", "forkserver"];

fn command(method: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("MULTIPROC_START_METHOD", method)
        .stdin(Stdio::null());
    command
}

fn run(method: &str, args: &[&str]) -> (String, String, Output) {
    let out = command(method, args).output().expect("run scenario");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "lifecycle {args:?} under {method}: {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
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

/// The fork servers among the children of `parent`.
fn fork_servers_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|close| stat[close + 1..].split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent)
                && cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == b"--multiproc-forkserver")
        })
        .collect()
}

/// Reads lines of a running scenario's stdout until one satisfies `pick`. The scenarios
/// print a few lines at most, so the rest waits in the pipe until the caller reads it.
fn read_until<R: BufRead, T>(stdout: &mut R, mut pick: impl FnMut(&str) -> Option<T>) -> T {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read a line");
        assert!(n > 0, "the scenario ended its output early: {seen:?}");
        if let Some(found) = pick(line.trim_end()) {
            return found;
        }
        seen.push_str(&line);
    }
}

#[test]
fn nothing_prints_twice_and_a_childs_text_without_newline_is_flushed() {
    for method in METHODS {
        let (stdout, _, _) = run(method, &["output"]);
        assert_eq!(
            stdout, "parent-before child-no-newline parent-after\n",
            "under {method}"
        );
    }
}

#[test]
fn a_childs_stdout_and_stderr_are_its_parents() {
    for method in METHODS {
        let (stdout, stderr, _) = run(method, &["stdio"]);
        assert_eq!(
            stdout,
            format!("method {method}\nthe child on stdout\nparent after join\n"),
            "under {method}"
        );
        assert_eq!(stderr, "the child on stderr\n", "under {method}");
    }
}

#[test]
fn a_panicking_child_prints_its_message_on_stderr_and_exits_with_one() {
    for method in METHODS {
        let (stdout, stderr, _) = run(method, &["panic"]);
        assert_eq!(stdout, "exit code 1\n", "under {method}");
        assert!(
            stderr.contains("the child gave up: code 7"),
            "under {method}, the panic message is not on stderr: {stderr}"
        );
    }
}

#[test]
fn default_names_count_per_parent() {
    for method in METHODS {
        let (stdout, _, _) = run(method, &["names"]);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            [
                "main: MainProcess",
                "handles: Process-1 Process-2",
                "child: Process-1 daemon=false",
                "grandchild: Process-1:1",
            ],
            "under {method}"
        );
    }
}

#[test]
fn a_single_threaded_parent_starts_children_without_warning() {
    for method in METHODS {
        let (stdout, stderr, _) = run(method, &["fork-warning"]);
        assert_eq!(stdout, "started twice\n", "under {method}");
        assert!(
            !stderr.contains("warning"),
            "under {method}, unexpected warning: {stderr}"
        );
    }
}

#[test]
fn a_multi_threaded_parent_that_forks_gets_exactly_one_warning_that_says_why_and_what_instead() {
    let (stdout, stderr, _) = run("fork", &["fork-warning", "threads"]);
    assert_eq!(stdout, "started twice\n");
    assert_eq!(stderr.matches("multiproc: warning").count(), 1, "{stderr}");
    assert!(stderr.contains("2 threads"), "{stderr}");
    assert!(stderr.contains("deadlock"), "says why: {stderr}");
    assert!(
        stderr.contains("before creating threads"),
        "says what instead: {stderr}"
    );
}

#[test]
fn a_multi_threaded_parent_that_spawns_or_uses_the_fork_server_gets_no_warning() {
    for method in ["spawn", "forkserver"] {
        let (stdout, stderr, _) = run(method, &["fork-warning", "threads"]);
        assert_eq!(stdout, "started twice\n", "under {method}");
        assert!(
            stderr.is_empty(),
            "under {method}, nothing to warn about: {stderr}"
        );
    }
}

#[test]
fn at_normal_exit_daemons_are_terminated_and_other_children_joined() {
    for method in METHODS {
        let mut parent = command(method, &["exit-routine"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scenario");
        let mut stdout = BufReader::new(parent.stdout.take().expect("piped stdout"));
        // The daemon prints its pid, then tells main it runs; main then waits for us.
        let daemon_pid = read_until(&mut stdout, |line| {
            line.strip_prefix("daemon pid ")
                .map(|pid| pid.parse::<u32>().expect("a pid"))
        });
        let daemon = pidfd_of(daemon_pid);
        assert!(
            !ended_within(&daemon, Duration::ZERO),
            "under {method}, the daemon ended before main returned"
        );
        let mut stdin = parent.stdin.take().expect("piped stdin");
        std::io::Write::write_all(&mut stdin, b"seen").expect("tell main");
        drop(stdin);
        let status = parent.wait().expect("wait for the scenario");
        let mut stderr = String::new();
        parent
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert!(status.success(), "under {method}: {status} {stderr}");
        // main terminated the daemon and waited for its end before it exited itself.
        assert!(
            ended_within(&daemon, Duration::ZERO),
            "under {method}, the daemon outlived main"
        );
    }
}

#[test]
fn at_normal_exit_the_non_daemon_child_is_joined_and_the_daemon_never_ends_naturally() {
    for method in METHODS {
        let (stdout, _, _) = run(method, &["exit-routine"]);
        let lines: Vec<&str> = stdout.lines().collect();
        let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
        let (Some(returned), Some(worker_done)) = (at("main returns"), at("worker done")) else {
            panic!("under {method}, the non-daemon child was not joined: {stdout}");
        };
        assert!(returned < worker_done, "under {method}: {stdout}");
        // The daemon prints this after its 30 s sleep: had main joined it instead of
        // terminating it, the line would be there (no timing needs asserting).
        assert!(
            at("daemon died normally").is_none(),
            "under {method}, the daemon outlived main: {stdout}"
        );
    }
}

#[test]
fn a_daemon_dies_with_its_parent_even_when_the_parent_is_sigkilled() {
    for method in METHODS {
        let mut parent = command(method, &["parent-killed"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(parent.stdout.take().expect("piped stdout"));
        let (pid, alive) = read_until(&mut stdout, |line| {
            let (pid, alive) = line.strip_prefix("daemon ")?.split_once(" alive=")?;
            Some((pid.parse::<u32>().expect("a pid"), alive == "true"))
        });
        assert!(
            alive,
            "under {method}, the daemon died when the thread that started it ended"
        );
        let daemon = pidfd_of(pid);
        let servers: Vec<OwnedFd> = fork_servers_of(parent.id())
            .into_iter()
            .map(pidfd_of)
            .collect();
        assert_eq!(
            servers.len(),
            usize::from(method == "forkserver"),
            "under {method}, fork servers of the scenario"
        );
        assert!(
            !ended_within(&daemon, Duration::ZERO),
            "under {method}, the daemon ended before its parent"
        );
        parent.kill().unwrap(); // SIGKILL: no exit routine runs in the parent
        parent.wait().unwrap();
        assert!(
            ended_within(&daemon, Duration::from_secs(10)),
            "under {method}, the daemon outlived its SIGKILLed parent"
        );
        for server in &servers {
            assert!(
                ended_within(server, Duration::from_secs(10)),
                "the fork server outlived its SIGKILLed requester"
            );
        }
    }
}
