//! The lifecycle of one process, as Python's `multiprocessing.Process` defines it, shown
//! with closures (`Process::new`, `spawn`), which only the Fork start method can run: they
//! are started with Fork whatever the default (`MULTIPROC_START_METHOD`), and the one
//! target here runs under the default. The same behaviours under every start method:
//! `start_methods.rs`.

use std::os::fd::AsRawFd;
use std::time::Duration;

use proc_core::{
    Error, JoinError, Process, StartMethod, active_children, current_process, exit,
    get_start_method, parent_process, spawn,
};

/// A closure's process: started with Fork.
fn forked(body: impl FnOnce() + Send + 'static) -> Process {
    Process::new(body).with_start_method(StartMethod::Fork)
}

fn started(body: impl FnOnce() + Send + 'static) -> Process {
    let mut p = forked(body);
    p.start().expect("start");
    p
}

/// `spawn` runs a closure and has no start method of its own: it uses the default. Under a
/// Spawn or ForkServer default it must refuse at once with the clear error, and that is
/// all there is to test of it then.
fn spawn_can_run_closures() -> bool {
    if get_start_method() == StartMethod::Fork {
        return true;
    }
    assert!(matches!(spawn(|| 1u8), Err(Error::ClosureNeedsFork { .. })));
    false
}

fn sleeper() -> Process {
    started(|| std::thread::sleep(Duration::from_secs(60)))
}

#[test]
fn a_body_that_returns_exits_with_zero() {
    assert_eq!(started(|| {}).join().unwrap(), 0);
}

#[test]
fn a_panicking_body_exits_with_one() {
    assert_eq!(started(|| panic!("on purpose")).join().unwrap(), 1);
}

#[test]
fn exit_n_gives_exit_code_n() {
    assert_eq!(started(|| exit(42)).join().unwrap(), 42);
}

#[test]
fn terminate_then_join_gives_minus_fifteen() {
    let p = sleeper();
    p.terminate().unwrap();
    assert_eq!(p.join().unwrap(), -15);
    assert_eq!(p.exitcode(), Some(-15));
}

#[test]
fn a_child_ended_by_sigkill_reports_minus_nine() {
    let p = sleeper();
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
}

#[test]
fn a_child_killed_from_outside_reports_the_signal() {
    let p = sleeper();
    let pid = nix::unistd::Pid::from_raw(p.pid().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    assert_eq!(p.join().unwrap(), -(libc::SIGUSR1));
}

#[test]
fn signals_after_the_child_was_reaped_are_no_ops() {
    let p = started(|| {});
    p.join().unwrap();
    p.terminate().unwrap();
    p.kill().unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

#[test]
fn signals_go_through_a_pidfd_for_this_very_child() {
    let p = sleeper();
    let fd = p.sentinel().unwrap().as_raw_fd();
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let pid_line = fdinfo
        .lines()
        .find(|l| l.starts_with("Pid:"))
        .expect("a pidfd has a Pid: line");
    assert_eq!(
        pid_line.split_whitespace().nth(1).unwrap(),
        p.pid().unwrap().to_string()
    );
    p.kill().unwrap();
    p.join().unwrap();
}

#[test]
fn the_sentinel_turns_readable_when_the_child_ends() {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let p = sleeper();
    let mut fds = [PollFd::new(p.sentinel().unwrap(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 0);
    p.kill().unwrap();
    let mut fds = [PollFd::new(p.sentinel().unwrap(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::from(10_000u16)).unwrap(), 1);
    p.join().unwrap();
}

#[test]
fn is_alive_is_false_before_start_true_while_running_false_after() {
    let mut p = forked(|| std::thread::sleep(Duration::from_secs(60)));
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.start().unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    p.join().unwrap();
    assert!(!p.is_alive());
}

#[test]
fn join_timeout_returns_none_while_running_and_the_code_after() {
    let p = sleeper();
    assert_eq!(p.join_timeout(Duration::from_millis(20)).unwrap(), None);
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), None);
    p.terminate().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), Some(-15));
}

#[test]
fn starting_twice_is_an_error() {
    let mut p = started(|| {});
    assert!(matches!(p.start(), Err(Error::AlreadyStarted { .. })));
    let msg = p.start().unwrap_err().to_string();
    assert!(msg.contains("already started"), "{msg}");
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn joining_or_signalling_before_start_is_an_error() {
    let p = Process::new(|| {}).with_name("idle");
    for result in [
        p.join().map(|_| ()),
        p.join_timeout(Duration::ZERO).map(|_| ()),
        p.terminate(),
        p.kill(),
    ] {
        match result {
            Err(Error::NotStarted { name, .. }) => assert_eq!(name, "idle"),
            other => panic!("expected NotStarted, got {other:?}"),
        }
    }
    assert!(p.sentinel().is_err());
    assert_eq!(p.pid(), None);
}

#[test]
fn changing_daemon_or_name_after_start_is_an_error() {
    let mut p = started(|| {});
    assert!(matches!(
        p.set_daemon(true),
        Err(Error::ChangeAfterStart { .. })
    ));
    assert!(matches!(
        p.set_name("late"),
        Err(Error::ChangeAfterStart { .. })
    ));
    assert!(!p.is_daemon());
    p.join().unwrap();
}

#[test]
fn a_daemon_may_not_start_children() {
    let mut p = forked(|| {
        let refused = matches!(
            forked(|| {}).start(),
            Err(Error::DaemonCannotStartChildren { .. })
        );
        exit(if refused { 7 } else { 8 });
    })
    .with_daemon(true);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 7);
}

#[test]
fn memory_is_isolated() {
    let mut n = 100;
    let p = started(move || {
        n -= 100;
        exit(n);
    });
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(n, 100);
}

#[test]
fn the_child_knows_its_name_pid_parent_and_numbers_its_own_children() {
    if !spawn_can_run_closures() {
        return;
    }
    let h = spawn(move || {
        let h = spawn(|| {
            let me = current_process();
            (
                me.name().to_string(),
                me.pid(),
                me.ppid(),
                me.is_daemon(),
                parent_process().unwrap().pid(),
            )
        })
        .unwrap();
        let me = current_process();
        (
            me.pid(),
            me.ppid(),
            me.name().to_string(),
            h.join().unwrap(),
        )
    })
    .unwrap();
    let child_name_seen_by_parent = h.process().name().to_string();
    let (child_pid, child_ppid, child_name, (grandchild_name, gpid, gppid, gdaemon, gparent)) =
        h.join().unwrap();
    assert_eq!(child_name, child_name_seen_by_parent);
    assert!(child_name.starts_with("Process-"), "{child_name}");
    assert_eq!(child_ppid, std::process::id());
    assert_eq!(
        grandchild_name,
        format!("{child_name}:1"),
        "children are numbered per parent"
    );
    assert_eq!(gppid, child_pid);
    assert_eq!(gparent, child_pid);
    assert_ne!(gpid, child_pid);
    assert!(!gdaemon);
    assert!(
        parent_process().is_none(),
        "the main process has no parent process"
    );
    assert_eq!(current_process().name(), "MainProcess");
}

#[test]
fn a_daemon_child_reports_itself_as_daemon() {
    let (read, write) = nix::unistd::pipe().unwrap();
    let mut p = forked(move || {
        let me = current_process();
        let byte = if me.is_daemon() && me.name() == "guard" {
            b'y'
        } else {
            b'n'
        };
        nix::unistd::write(&write, &[byte]).unwrap();
    })
    .with_name("guard")
    .with_daemon(true);
    p.start().unwrap();
    let mut buf = [0u8; 1];
    nix::unistd::read(&read, &mut buf).unwrap();
    assert_eq!(&buf, b"y");
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn target_calls_the_function_with_its_arguments() {
    fn task(name: String, code: i32) {
        assert_eq!(name, "小王");
        exit(code);
    }
    let mut p = Process::target(task, ("小王".to_string(), 5));
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
}

#[test]
fn spawn_returns_the_value_small_and_larger_than_a_pipe() {
    if !spawn_can_run_closures() {
        return;
    }
    assert_eq!(spawn(|| 6 * 7).unwrap().join().unwrap(), 42);
    let big = spawn(|| {
        (0..3_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
    })
    .unwrap();
    let big = big.join().unwrap();
    assert_eq!(big.len(), 3_000_000);
    assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn spawn_reports_panic_exit_and_signal() {
    if !spawn_can_run_closures() {
        return;
    }
    let h = spawn(|| -> u8 { panic!("the message: {}", 5) }).unwrap();
    match h.join() {
        Err(JoinError::Panicked { message, .. }) => assert_eq!(message, "the message: 5"),
        other => panic!("{other:?}"),
    }
    let h = spawn(|| -> u8 { exit(3) }).unwrap();
    assert!(matches!(h.join(), Err(JoinError::Exited(3))));
    let h = spawn(|| std::thread::sleep(Duration::from_secs(60))).unwrap();
    h.kill().unwrap();
    assert!(matches!(h.join(), Err(JoinError::Signaled(9))));
}

#[test]
fn a_child_joins_its_own_children_before_it_exits() {
    let dir = std::env::temp_dir().join(format!("proc-core-grandchild-{}", std::process::id()));
    let marker = dir.clone();
    let p = started(move || {
        let mut grandchild = forked(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::write(&marker, b"done").unwrap();
        });
        grandchild.start().unwrap();
        // Returns without joining: the child's exit routine must join it.
    });
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(std::fs::read(&dir).unwrap(), b"done");
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn active_children_lists_running_children_and_reaps_finished_ones() {
    let running = sleeper();
    let finished = started(|| {});
    let finished_pid = finished.pid().unwrap();
    // Wait for the end without reaping, through the sentinel.
    let mut fds = [nix::poll::PollFd::new(
        finished.sentinel().unwrap(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE).unwrap();
    let active = active_children();
    assert!(active.iter().any(|c| Some(c.pid()) == running.pid()));
    assert!(active.iter().all(|c| c.pid() != finished_pid));
    assert_eq!(finished.exitcode(), Some(0));
    running.kill().unwrap();
    running.join().unwrap();
}

#[test]
fn start_can_be_called_from_several_threads_at_once() {
    if !spawn_can_run_closures() {
        return;
    }
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|j| spawn(move || i * 100 + j).unwrap().join().unwrap())
                    .collect::<Vec<i32>>()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let values = t.join().unwrap();
        assert_eq!(
            values,
            (0..10).map(|j| i as i32 * 100 + j).collect::<Vec<_>>()
        );
    }
}
