//! `Process::close()` and `Process::interrupt()`, as Python's `Process.close()` (CPython's
//! `test_close`) and `Process.interrupt()` (`test_interrupt`, `test_interrupt_no_handler`),
//! under every start method. The tests of this binary count this process's descriptors, so
//! they run one at a time.

#[macro_use]
mod common;

use std::time::Duration;

use multiproc_test_support::fds::{one_at_a_time, open_fd_numbers};
use proc_core::{Error, Process, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

use common::{Reporter, report_pipe, stat_of};

every_start_method![
    close_is_refused_while_the_child_runs_and_changes_nothing,
    after_close_every_result_returning_call_says_closed_and_pid_name_exitcode_answer,
    close_releases_every_descriptor_the_started_process_held,
    close_of_an_ended_unjoined_child_reaps_it,
    interrupt_ends_a_child_without_a_handler_with_minus_two,
    interrupt_reaches_a_child_that_ignores_sigint_without_ending_it,
];

fn started<F, Args>(method: StartMethod, function: F, args: Args) -> Process
where
    F: proc_core::Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
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

/// Ignores SIGINT, says so, then sleeps.
fn ignore_sigint_then_sleep(reporter: Reporter) {
    // SAFETY: setting SIGINT's disposition to SIG_IGN runs no handler code.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    reporter.send(&"ignoring");
    sleep_a_minute();
}

fn close_is_refused_while_the_child_runs_and_changes_nothing(method: StartMethod) {
    let _alone = one_at_a_time();
    let mut p = started(method, sleep_a_minute, ());
    let err = p.close().unwrap_err();
    assert!(
        matches!(&err, Error::StillRunning { name } if name == p.name()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("join()"),
        "the error says what to do: {err}"
    );
    // The handle still works in full.
    assert!(p.is_alive());
    assert_eq!(p.join_timeout(Duration::from_millis(1)).unwrap(), None);
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
    p.close().unwrap();
}

fn after_close_every_result_returning_call_says_closed_and_pid_name_exitcode_answer(
    method: StartMethod,
) {
    let _alone = one_at_a_time();
    let mut p = Process::target(sleep_a_minute, ())
        .with_name("to-close")
        .with_start_method(method);
    p.start().unwrap();
    let pid = p.pid();
    p.terminate().unwrap();
    assert_eq!(p.join().unwrap(), -15);
    p.close().unwrap();

    fn closed<T: std::fmt::Debug>(result: proc_core::Result<T>, operation: &str) {
        match result {
            Err(Error::Closed {
                name,
                operation: op,
            }) => {
                assert_eq!(name, "to-close");
                assert!(op.starts_with(operation), "{op} for {operation}");
            }
            other => panic!("{operation} after close: expected Closed, got {other:?}"),
        }
    }
    closed(p.join(), "join");
    closed(p.join_timeout(Duration::from_millis(1)), "join_timeout");
    closed(p.terminate(), "terminate");
    closed(p.kill(), "kill");
    closed(p.interrupt(), "interrupt");
    closed(p.sentinel().map(|_| ()), "sentinel");
    closed(p.start(), "start");
    closed(p.set_name("again"), "change the name");
    let message = p.join().unwrap_err().to_string();
    assert!(message.contains("closed"), "{message}");

    assert_eq!(p.pid(), pid);
    assert_eq!(p.name(), "to-close");
    assert_eq!(p.exitcode(), Some(-15));
    assert!(!p.is_alive());
    p.close().expect("a second close is Ok");
    assert_eq!(p.exitcode(), Some(-15));
}

fn close_releases_every_descriptor_the_started_process_held(method: StartMethod) {
    let _alone = one_at_a_time();
    // A first child starts the fork server (under ForkServer), which stays for the life
    // of the program with its one descriptor: not what is measured.
    started(method, nothing, ()).join().unwrap();

    let before = open_fd_numbers();
    let mut p = started(method, sleep_a_minute, ());
    assert_ne!(
        open_fd_numbers(),
        before,
        "a started process holds descriptors"
    );
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
    p.close().unwrap();
    assert_eq!(open_fd_numbers(), before, "close() released everything");
    drop(p);
    assert_eq!(
        open_fd_numbers(),
        before,
        "drop of a closed process closes nothing more"
    );

    // A process never started closes too, and then cannot start.
    let mut q = Process::target(nothing, ()).with_start_method(method);
    q.close().unwrap();
    assert!(matches!(q.start(), Err(Error::Closed { .. })));
    assert_eq!((q.pid(), q.exitcode()), (None, None));
    assert_eq!(open_fd_numbers(), before);
}

fn close_of_an_ended_unjoined_child_reaps_it(method: StartMethod) {
    let _alone = one_at_a_time();
    let mut p = started(method, nothing, ());
    let pid = p.pid().unwrap();
    assert!(
        proc_core::internal::wait_readable(p.sentinel().unwrap(), None).unwrap(),
        "the sentinel turns readable"
    );
    p.close()
        .expect("an ended child may be closed without join()");
    assert_eq!(p.exitcode(), Some(0));
    // Reaped: by us (our own child), or by the fork server (a served one), never a zombie.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stat_of(pid).is_some_and(|s| s.state == 'Z') {
        assert!(std::time::Instant::now() < deadline, "{pid} stays a zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(stat_of(pid).is_none(), "{pid} was reaped");
}

fn interrupt_ends_a_child_without_a_handler_with_minus_two(method: StartMethod) {
    let _alone = one_at_a_time();
    let p = started(method, sleep_a_minute, ());
    p.interrupt().unwrap();
    assert_eq!(p.join().unwrap(), -libc::SIGINT);
    p.interrupt()
        .expect("once reaped, interrupt() sends nothing and is Ok");
}

fn interrupt_reaches_a_child_that_ignores_sigint_without_ending_it(method: StartMethod) {
    let _alone = one_at_a_time();
    let (reports, reporter) = report_pipe();
    let p = started(method, ignore_sigint_then_sleep, (reporter,));
    assert_eq!(reports.recv::<String>(), "ignoring");
    p.interrupt().unwrap();
    assert_eq!(
        p.join_timeout(Duration::from_millis(200)).unwrap(),
        None,
        "a child that ignores SIGINT runs on"
    );
    p.terminate().unwrap();
    assert_eq!(p.join().unwrap(), -libc::SIGTERM);
}
