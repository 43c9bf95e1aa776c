//! Every start method keeps the promises of `Process`: the same exit codes, signals, names,
//! `current_process()`, daemons and errors, whether the child is a fork of this process
//! (Fork), a new run of this test binary that never runs the test harness (Spawn), or a fork
//! of the fork server (ForkServer). Each specification below is one function taking the
//! method; `every_start_method!` makes it one test per method (`fork::…`, `spawn::…`,
//! `forkserver::…`). Where the methods differ by design, the specification says how.
//!
//! Every process here is started with an explicit method, so these tests mean the same
//! whatever `MULTIPROC_START_METHOD` says.

#[macro_use]
mod common;

use std::time::Duration;

use proc_core::{
    Error, Process, StartMethod, TASK_ERROR_EXIT_CODE, active_children, current_process, exit,
    get_start_method, parent_process, set_start_method,
};
use serde::{Deserialize, Serialize};

use common::{PanicsWhenDecoded, RefusesToDecode, Reporter, report_pipe, takes};

every_start_method![
    a_target_that_returns_exits_with_zero,
    a_panicking_target_exits_with_one,
    exit_n_gives_exit_code_n,
    terminate_gives_minus_fifteen,
    kill_gives_minus_nine,
    join_timeout_is_none_while_the_child_runs_then_its_exit_code,
    is_alive_and_exitcode_follow_the_child_from_start_to_end,
    signals_after_the_child_was_reaped_are_no_ops,
    the_sentinel_turns_readable_when_the_child_ends,
    active_children_lists_the_running_child_and_forgets_the_ended_one,
    names_default_to_process_n_and_with_name_sets_them,
    the_child_knows_its_name_pid_parent_and_that_it_is_no_daemon,
    a_grandchild_knows_its_parents_parent,
    a_daemon_child_knows_it_is_a_daemon,
    a_daemon_may_not_start_children,
    the_childs_stdin_is_dev_null,
    the_child_goes_by_the_programs_name_in_ps,
    arguments_arrive_as_given_even_larger_than_a_socket_buffer,
    a_child_joins_its_own_children_before_it_ends,
    children_can_be_started_from_several_threads_at_once,
    a_closure_runs_under_fork_and_is_refused_at_start_under_the_others,
    a_capturing_closure_or_fn_pointer_target_runs_only_under_fork,
    a_closure_target_that_captures_nothing_runs_under_every_method,
    arguments_that_fail_to_decode_in_the_child_fail_its_task,
    arguments_whose_decoding_panics_fail_its_task,
    the_start_method_is_the_one_given_and_stays_fixed_after_start,
    a_child_and_its_own_children_use_the_method_that_started_it,
    a_child_that_sets_another_method_starts_its_children_with_that,
    a_task_refused_with_a_long_reason_ends_without_waiting_for_its_parent,
];

/// `Process::target(function, args)` with `method`, started.
fn started<F, Args>(method: StartMethod, function: F, args: Args) -> Process
where
    F: proc_core::Target<Args>,
    Args: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(function, args).with_start_method(method);
    p.start()
        .unwrap_or_else(|e| panic!("start under {method}: {e}"));
    p
}

fn nothing() {}

fn sleep_a_minute() {
    std::thread::sleep(Duration::from_secs(60));
}

fn panic_on_purpose(message: String) {
    panic!("{message}");
}

fn exit_with(code: i32) {
    exit(code)
}

/// Tells the test when it runs, then sleeps: a child that is surely running.
fn say_running_then_sleep(reporter: Reporter) {
    reporter.send(&"running");
    sleep_a_minute();
}

/// A child that has told the test it is running.
fn running_child(method: StartMethod) -> Process {
    let (reports, reporter) = report_pipe();
    let p = started(method, say_running_then_sleep, (reporter,));
    assert_eq!(reports.recv::<String>(), "running");
    p
}

fn a_target_that_returns_exits_with_zero(method: StartMethod) {
    let p = started(method, nothing, ());
    assert_eq!(p.join().unwrap(), 0);
}

fn a_panicking_target_exits_with_one(method: StartMethod) {
    // The message on the child's stderr: scenarios/tests/lifecycle.rs, which owns a stderr.
    let p = started(method, panic_on_purpose, ("on purpose".to_string(),));
    assert_eq!(p.join().unwrap(), 1);
}

fn exit_n_gives_exit_code_n(method: StartMethod) {
    for code in [0, 3, 42, 255] {
        assert_eq!(started(method, exit_with, (code,)).join().unwrap(), code);
    }
}

fn terminate_gives_minus_fifteen(method: StartMethod) {
    let p = running_child(method);
    p.terminate().unwrap();
    assert_eq!(p.join().unwrap(), -15);
    assert_eq!(p.exitcode(), Some(-15));
}

fn kill_gives_minus_nine(method: StartMethod) {
    let p = running_child(method);
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
    // Killed at once, perhaps before it took its task: still the signal, no task error.
    let p = started(method, sleep_a_minute, ());
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
}

fn join_timeout_is_none_while_the_child_runs_then_its_exit_code(method: StartMethod) {
    let p = running_child(method);
    assert_eq!(p.join_timeout(Duration::from_millis(20)).unwrap(), None);
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), None);
    p.terminate().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), Some(-15));
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), Some(-15));
}

fn is_alive_and_exitcode_follow_the_child_from_start_to_end(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(say_running_then_sleep, (reporter,)).with_start_method(method);
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert_eq!(p.pid(), None);
    p.start().unwrap();
    assert_eq!(reports.recv::<String>(), "running");
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.kill().unwrap();
    p.join().unwrap();
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(-9));
}

fn signals_after_the_child_was_reaped_are_no_ops(method: StartMethod) {
    let p = started(method, nothing, ());
    assert_eq!(p.join().unwrap(), 0);
    p.terminate().unwrap();
    p.kill().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(p.join().unwrap(), 0);
}

fn the_sentinel_turns_readable_when_the_child_ends(method: StartMethod) {
    let p = running_child(method);
    let sentinel = p.sentinel().unwrap();
    assert!(
        !proc_core::internal::wait_readable(sentinel, Some(std::time::Instant::now())).unwrap()
    );
    p.kill().unwrap();
    assert!(proc_core::internal::wait_readable(sentinel, None).unwrap());
    assert_eq!(p.join().unwrap(), -9);
}

fn active_children_lists_the_running_child_and_forgets_the_ended_one(method: StartMethod) {
    let running = running_child(method);
    let ended = started(method, nothing, ());
    let ended_pid = ended.pid().unwrap();
    // Wait for the end through the sentinel, which does not reap.
    assert!(proc_core::internal::wait_readable(ended.sentinel().unwrap(), None).unwrap());
    let active = active_children();
    assert!(active.iter().any(|c| Some(c.pid()) == running.pid()));
    assert!(active.iter().all(|c| c.pid() != ended_pid));
    assert_eq!(ended.exitcode(), Some(0));
    running.kill().unwrap();
    running.join().unwrap();
    assert!(
        active_children()
            .iter()
            .all(|c| Some(c.pid()) != running.pid())
    );
}

/// What a child sees of itself and of its parent.
#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    name: String,
    pid: u32,
    ppid: u32,
    daemon: bool,
    os_ppid: u32,
    parent_name: Option<String>,
    parent_pid: Option<u32>,
    parent_ppid: Option<u32>,
}

fn report_what_i_see(reporter: Reporter) {
    let me = current_process();
    let parent = parent_process();
    reporter.send(&Seen {
        name: me.name().to_string(),
        pid: me.pid(),
        ppid: me.ppid(),
        daemon: me.is_daemon(),
        os_ppid: nix::unistd::getppid().as_raw() as u32,
        parent_name: parent.as_ref().map(|p| p.name().to_string()),
        parent_pid: parent.as_ref().map(|p| p.pid()),
        parent_ppid: parent.as_ref().map(|p| p.ppid()),
    });
}

fn names_default_to_process_n_and_with_name_sets_them(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let p = started(method, report_what_i_see, (reporter,));
    // N counts the processes this test binary has made, on every thread: only the form is
    // known here (exact numbers: scenarios/tests/lifecycle.rs, in a process of its own).
    let number = p.name().strip_prefix("Process-").expect("Process-N");
    assert!(number.parse::<u64>().is_ok_and(|n| n >= 1), "{}", p.name());
    assert_eq!(reports.recv::<Seen>().name, p.name());
    p.join().unwrap();

    let (reports, reporter) = report_pipe();
    let mut p = Process::target(report_what_i_see, (reporter,))
        .with_name("worker-小王")
        .with_start_method(method);
    assert_eq!(p.name(), "worker-小王");
    p.start().unwrap();
    assert_eq!(reports.recv::<Seen>().name, "worker-小王");
    assert_eq!(p.join().unwrap(), 0);
}

fn the_child_knows_its_name_pid_parent_and_that_it_is_no_daemon(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let p = started(method, report_what_i_see, (reporter,));
    let seen: Seen = reports.recv();
    assert_eq!(p.join().unwrap(), 0);
    let me = std::process::id();
    assert_eq!(seen.name, p.name());
    assert_eq!(Some(seen.pid), p.pid());
    assert_ne!(seen.pid, me);
    assert_eq!(
        seen.ppid, me,
        "ppid() is the process that started the child"
    );
    assert!(!seen.daemon);
    assert_eq!(seen.parent_pid, Some(me));
    assert_eq!(seen.parent_name.as_deref(), Some(current_process().name()));
    if method == StartMethod::ForkServer {
        // By design the fork server forks the child; ppid() names the requester anyway.
        assert_ne!(seen.os_ppid, me);
    } else {
        assert_eq!(seen.os_ppid, me);
    }
}

/// A child: starts a grandchild by `method` that reports what it sees, and exits with the
/// grandchild's exit code.
fn start_a_reporting_grandchild(reporter: Reporter, method: StartMethod) {
    let grandchild = started(method, report_what_i_see, (reporter,));
    exit(grandchild.join().unwrap());
}

fn a_grandchild_knows_its_parents_parent(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let child = started(method, start_a_reporting_grandchild, (reporter, method));
    let seen: Seen = reports.recv();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(seen.ppid, child.pid().unwrap());
    assert_eq!(seen.parent_pid, child.pid());
    assert_eq!(
        seen.parent_ppid,
        Some(std::process::id()),
        "the parent's ppid() is this process, whichever process forked the parent"
    );
}

fn a_daemon_child_knows_it_is_a_daemon(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(report_what_i_see, (reporter,))
        .with_name("guard")
        .with_daemon(true)
        .with_start_method(method);
    p.start().unwrap();
    let seen: Seen = reports.recv();
    assert_eq!(p.join().unwrap(), 0);
    assert!(seen.daemon);
    assert_eq!(seen.name, "guard");
    assert_eq!(seen.ppid, std::process::id());
}

fn try_to_start_a_child(method: StartMethod) {
    match Process::target(nothing, ())
        .with_start_method(method)
        .start()
    {
        Err(Error::DaemonCannotStartChildren { name }) if name == "the daemon" => exit(7),
        Err(e) => {
            eprintln!("unexpected error: {e}");
            exit(8)
        }
        Ok(()) => exit(9),
    }
}

fn a_daemon_may_not_start_children(method: StartMethod) {
    let mut p = Process::target(try_to_start_a_child, (method,))
        .with_name("the daemon")
        .with_daemon(true)
        .with_start_method(method);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 7);
}

fn report_stdin(reporter: Reporter) {
    let stdin = std::fs::read_link("/proc/self/fd/0").unwrap_or_default();
    reporter.send(&stdin.to_string_lossy().into_owned());
}

fn the_childs_stdin_is_dev_null(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let p = started(method, report_stdin, (reporter,));
    assert_eq!(reports.recv::<String>(), "/dev/null");
    assert_eq!(p.join().unwrap(), 0);
}

fn report_command_name(reporter: Reporter) {
    reporter.send(&std::fs::read_to_string("/proc/self/comm").unwrap_or_default());
}

fn the_child_goes_by_the_programs_name_in_ps(method: StartMethod) {
    // The name `ps`, `top`, `pgrep` and `killall` go by. A spawned child runs
    // /proc/self/exe, which the kernel would name "exe"; it takes the program's name
    // instead. A forked child's one thread is a copy of the forking thread and keeps its
    // name: the program's when main forks, the test's thread here.
    let expected = match method {
        StartMethod::Fork => "/proc/thread-self/comm",
        _ => "/proc/self/comm",
    };
    let expected = std::fs::read_to_string(expected).unwrap();
    let (reports, reporter) = report_pipe();
    let p = started(method, report_command_name, (reporter,));
    assert_eq!(reports.recv::<String>(), expected);
    assert_eq!(p.join().unwrap(), 0);
}

/// Exits 0 only when every argument is what the test sent.
fn check_arguments(name: String, numbers: Vec<u64>, nested: (Option<i8>, bool), big: Vec<u8>) {
    let expected_big = (0..(3usize << 20)).map(|i| (i % 251) as u8);
    let ok = name == "小王 ✓"
        && numbers == [0, 1, u64::MAX]
        && nested == (Some(-5), true)
        && big.len() == 3 << 20
        && big.iter().copied().eq(expected_big);
    exit(if ok { 0 } else { 1 })
}

fn arguments_arrive_as_given_even_larger_than_a_socket_buffer(method: StartMethod) {
    let big: Vec<u8> = (0..(3usize << 20)).map(|i| (i % 251) as u8).collect();
    let p = started(
        method,
        check_arguments,
        (
            "小王 ✓".to_string(),
            vec![0, 1, u64::MAX],
            (Some(-5i8), true),
            big,
        ),
    );
    assert_eq!(p.join().unwrap(), 0);
}

fn grandchild(reporter: Reporter) {
    std::thread::sleep(Duration::from_millis(200));
    reporter.send(&current_process().name().to_string());
}

/// Starts a grandchild and returns without joining it: the exit routine must.
fn start_a_grandchild(method: StartMethod, reporter: Reporter) {
    let mut p = Process::target(grandchild, (reporter,)).with_start_method(method);
    p.start().expect("start the grandchild");
}

fn a_child_joins_its_own_children_before_it_ends(method: StartMethod) {
    let (reports, reporter) = report_pipe();
    let p = started(method, start_a_grandchild, (method, reporter));
    assert_eq!(p.join().unwrap(), 0);
    // The grandchild had ended, report sent, before its parent did: no waiting here.
    assert!(reports.ready(), "the child ended before its own child");
    assert_eq!(reports.recv::<String>(), format!("{}:1", p.name()));
}

fn children_can_be_started_from_several_threads_at_once(method: StartMethod) {
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                (0..8)
                    .map(|j| started(method, exit_with, (i * 10 + j,)).join().unwrap())
                    .collect::<Vec<i32>>()
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let codes = thread.join().unwrap();
        let expected: Vec<i32> = (0..8).map(|j| i as i32 * 10 + j).collect();
        assert_eq!(codes, expected, "each child ran its own arguments");
    }
}

fn a_closure_runs_under_fork_and_is_refused_at_start_under_the_others(method: StartMethod) {
    let code = 6;
    let mut p = Process::new(move || exit(code)).with_start_method(method);
    if method == StartMethod::Fork {
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 6);
        return;
    }
    let err = p.start().unwrap_err();
    assert!(
        matches!(&err, Error::ClosureNeedsFork { name, method: m } if name == p.name() && *m == method),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("Process::target"),
        "says what instead: {message}"
    );
    assert!(
        message.contains(method.name()),
        "names the method: {message}"
    );
    assert_eq!(p.pid(), None);
    assert!(!p.is_alive());
    // The closure was kept: the same process starts under Fork.
    let mut p = p.with_start_method(StartMethod::Fork);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 6);
}

fn a_capturing_closure_or_fn_pointer_target_runs_only_under_fork(method: StartMethod) {
    let base = 40;
    let capturing = Process::target(move |n: i32| exit(base + n), (2,));
    let pointer: fn(i32) = exit_with;
    let through_pointer = Process::target(pointer, (41,));
    for (mut p, code) in [(capturing, 42), (through_pointer, 41)] {
        p = p.with_start_method(method);
        if method == StartMethod::Fork {
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), code);
            continue;
        }
        let err = p.start().unwrap_err();
        assert!(
            matches!(&err, Error::TargetCannotTravel { method: m, .. } if *m == method),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("fn task"),
            "says what instead: {err}"
        );
        assert_eq!(p.pid(), None);
    }
}

fn a_closure_target_that_captures_nothing_runs_under_every_method(method: StartMethod) {
    let p = started(method, |a: i32, b: i32| exit(a * b), (6, 7));
    assert_eq!(p.join().unwrap(), 42);
}

fn arguments_that_fail_to_decode_in_the_child_fail_its_task(method: StartMethod) {
    let mut p = Process::target(takes::<RefusesToDecode>, (RefusesToDecode {},))
        .with_name("picky")
        .with_start_method(method);
    p.start().unwrap();
    if method == StartMethod::Fork {
        // A forked child gets the arguments as they are in memory: nothing to decode.
        assert_eq!(p.join().unwrap(), 0);
        return;
    }
    match p.join() {
        Err(Error::TaskFailed { name, reason }) => {
            assert_eq!(name, "picky");
            assert!(reason.contains("did not decode"), "{reason}");
            assert!(reason.contains("refused on purpose"), "{reason}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(TASK_ERROR_EXIT_CODE));
    assert!(!p.is_alive());
    // Asking again gives the same answer.
    assert!(matches!(p.join(), Err(Error::TaskFailed { .. })));
}

fn arguments_whose_decoding_panics_fail_its_task(method: StartMethod) {
    let p = started(method, takes::<PanicsWhenDecoded>, (PanicsWhenDecoded {},));
    if method == StartMethod::Fork {
        assert_eq!(p.join().unwrap(), 0);
        return;
    }
    match p.join() {
        Err(Error::TaskFailed { reason, .. }) => {
            assert!(reason.contains("panicked"), "{reason}");
            assert!(
                reason.contains("a Deserialize impl that panics"),
                "{reason}"
            );
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(TASK_ERROR_EXIT_CODE));
}

fn the_start_method_is_the_one_given_and_stays_fixed_after_start(method: StartMethod) {
    let mut p = Process::target(nothing, ()).with_start_method(method);
    assert_eq!(p.start_method(), method);
    p.start().unwrap();
    assert_eq!(p.start_method(), method);
    // Builders after start change nothing.
    let other = StartMethod::ALL.into_iter().find(|&m| m != method).unwrap();
    let p = p.with_start_method(other);
    assert_eq!(p.start_method(), method);
    assert_eq!(p.join().unwrap(), 0);
}

/// A grandchild: tells which start method is in force in it.
fn report_my_start_method(reporter: Reporter) {
    reporter.send(&get_start_method());
}

/// A child: tells the method in force in it and the one its new process would use, then
/// starts that process (a grandchild, with no method given) and exits with its exit code.
/// With `then_use`, it first sets that method, as its program may.
fn report_and_start_a_grandchild(
    me: Reporter,
    grandchild: Reporter,
    then_use: Option<StartMethod>,
) {
    if let Some(method) = then_use {
        set_start_method(method).expect("set the child's start method");
    }
    let mut p = Process::target(report_my_start_method, (grandchild,));
    me.send(&(get_start_method(), p.start_method()));
    p.start().expect("start the grandchild");
    exit(p.join().expect("join the grandchild"));
}

fn a_child_and_its_own_children_use_the_method_that_started_it(method: StartMethod) {
    let (child_reports, child_reporter) = report_pipe();
    let (grandchild_reports, grandchild_reporter) = report_pipe();
    let p = started(
        method,
        report_and_start_a_grandchild,
        (child_reporter, grandchild_reporter, None),
    );
    assert_eq!(
        child_reports.recv::<(StartMethod, StartMethod)>(),
        (method, method),
        "in a child started by {method}: get_start_method(), and a new Process's method"
    );
    assert_eq!(
        grandchild_reports.recv::<StartMethod>(),
        method,
        "in the grandchild of a child started by {method}"
    );
    assert_eq!(p.join().unwrap(), 0);
}

fn a_child_that_sets_another_method_starts_its_children_with_that(method: StartMethod) {
    let other = StartMethod::ALL
        .into_iter()
        .cycle()
        .skip_while(|&m| m != method)
        .nth(1)
        .unwrap();
    let (child_reports, child_reporter) = report_pipe();
    let (grandchild_reports, grandchild_reporter) = report_pipe();
    let p = started(
        method,
        report_and_start_a_grandchild,
        (child_reporter, grandchild_reporter, Some(other)),
    );
    assert_eq!(
        child_reports.recv::<(StartMethod, StartMethod)>(),
        (other, other)
    );
    assert_eq!(grandchild_reports.recv::<StartMethod>(), other);
    assert_eq!(p.join().unwrap(), 0);
}

/// Encodes as a byte; refuses to decode with a reason of a MiB, longer than a socket holds.
#[derive(Debug)]
struct RefusesAtLength;

impl Serialize for RefusesAtLength {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(0)
    }
}

impl<'de> Deserialize<'de> for RefusesAtLength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer)?;
        Err(serde::de::Error::custom(format!(
            "refused at length: {}",
            "x".repeat(1 << 20)
        )))
    }
}

fn a_task_refused_with_a_long_reason_ends_without_waiting_for_its_parent(method: StartMethod) {
    let p = started(method, takes::<RefusesAtLength>, (RefusesAtLength,));
    // The parent reads the reason only once the child has ended: a child that waited for
    // it to be read would never end. Waiting boundedly, not join(), lets that fail here.
    let ended = p.join_timeout(Duration::from_secs(60));
    if method == StartMethod::Fork {
        assert_eq!(ended.unwrap(), Some(0));
        return;
    }
    match ended {
        Err(Error::TaskFailed { reason, .. }) => {
            assert!(
                reason.starts_with("its arguments did not decode"),
                "{reason:.200}"
            );
            assert!(reason.contains("refused at length: xxx"), "{reason:.200}");
            assert!(
                reason.ends_with("more bytes)"),
                "cut, and says so: …{}",
                &reason[reason.len() - 100..]
            );
            assert!(reason.len() < 64 << 10, "{} bytes", reason.len());
        }
        other => panic!("expected TaskFailed within a minute, got {other:?}"),
    }
}
