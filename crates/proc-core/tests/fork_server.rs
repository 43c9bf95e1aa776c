//! The fork server itself: one per process that uses it, started on first use, replaced
//! when found dead, deaf to Ctrl-C, and never shared with a forked child. The tests here
//! signal the server, so they take turns and nothing else runs in this binary.

mod common;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proc_core::{Error, Process, StartMethod, exit};

use common::{Reporter, my_fork_servers, report_pipe, stat_of, zombies};
use multiproc_test_support::fds::one_at_a_time;

fn exit_with(code: i32) {
    exit(code)
}

fn say_running_then_sleep(reporter: Reporter) {
    reporter.send(&"running");
    std::thread::sleep(Duration::from_secs(60));
}

fn served(code: i32) -> Process {
    let mut p = Process::target(exit_with, (code,)).with_start_method(StartMethod::ForkServer);
    p.start().expect("start a served child");
    p
}

/// This process's one fork server, started if need be.
fn the_fork_server() -> u32 {
    assert_eq!(served(0).join().unwrap(), 0);
    let servers = my_fork_servers();
    assert_eq!(servers.len(), 1, "one fork server per process: {servers:?}");
    servers[0]
}

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).unwrap();
}

#[test]
fn a_fork_server_found_dead_is_replaced_and_reaped() {
    let _turn = one_at_a_time();
    let first = the_fork_server();
    signal(first, Signal::SIGKILL);
    // The next start finds the connection broken, reaps the dead server and starts another.
    assert_eq!(served(3).join().unwrap(), 3);
    let second = the_fork_server();
    assert_ne!(second, first);
    assert_eq!(stat_of(first), None, "the dead server was left a zombie");
    assert!(zombies().is_empty(), "{:?}", zombies());
}

#[test]
fn a_child_whose_fork_server_died_fails_to_join_instead_of_hanging() {
    let _turn = one_at_a_time();
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(say_running_then_sleep, (reporter,))
        .with_start_method(StartMethod::ForkServer);
    p.start().unwrap();
    assert_eq!(reports.recv::<String>(), "running");
    let server = the_fork_server();
    signal(server, Signal::SIGKILL);
    // Only the server could reap the child and learn its exit code: it is lost.
    match p.join() {
        Err(Error::Io { source, .. }) => {
            assert!(source.to_string().contains("fork server"), "{source}");
        }
        other => panic!("expected an error naming the fork server, got {other:?}"),
    }
    // The orphan still runs; its pidfd still reaches it.
    p.kill().unwrap();
    // The next start gets a new server.
    assert_eq!(served(4).join().unwrap(), 4);
}

#[test]
fn the_fork_server_ignores_ctrl_c_and_goes_on_serving() {
    let _turn = one_at_a_time();
    let server = the_fork_server();
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(say_running_then_sleep, (reporter,))
        .with_start_method(StartMethod::ForkServer);
    p.start().unwrap();
    assert_eq!(reports.recv::<String>(), "running");
    // Ctrl-C reaches the whole foreground process group: the server and its children.
    signal(server, Signal::SIGINT);
    signal(p.pid().unwrap(), Signal::SIGINT);
    // Its children get the default action back: SIGINT ends them.
    assert_eq!(p.join().unwrap(), -libc::SIGINT);
    assert_eq!(the_fork_server(), server, "the server survived SIGINT");
}

/// In a forked child: starts a served grandchild and reports the fork servers it has.
fn start_a_served_grandchild(reporter: Reporter) {
    let code = served(5).join().unwrap();
    reporter.send(&(code, my_fork_servers()));
}

#[test]
fn a_forked_child_uses_a_fork_server_of_its_own() {
    let _turn = one_at_a_time();
    let ours = the_fork_server();
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(start_a_served_grandchild, (reporter,))
        .with_start_method(StartMethod::Fork);
    p.start().unwrap();
    let (code, theirs): (i32, Vec<u32>) = reports.recv();
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(code, 5);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_ne!(theirs[0], ours, "the child's server is its own");
    assert_eq!(the_fork_server(), ours);
}
