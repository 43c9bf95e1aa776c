//! No zombies and no leaked file descriptors, under every start method. This binary holds
//! only these tests, run one after another, so that no other test's children blur the
//! counts.
//!
//! The one thing that stays is the fork server: started on the first ForkServer start, it is
//! one more child process and one more descriptor (its connection) for the life of the
//! program. The tests account for it by name, and nothing else.

mod common;

use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use multiproc_test_support::fds::one_at_a_time;
use proc_core::{
    Error, Process, StartMethod, active_children, exit, get_context, get_start_method, spawn,
};

use common::{
    RefusesToDecode, Reporter, children_of, my_fork_servers, report_pipe, stat_of, takes, zombies,
};

/// This process's open descriptors and what each one is.
fn fd_table() -> BTreeMap<u32, String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        // The directory listing itself.
        .filter(|(_, target)| !target.starts_with("/proc/"))
        .collect()
}

fn nothing() {}

fn exit_with(code: i32) {
    exit(code)
}

fn sleep_a_minute() {
    std::thread::sleep(Duration::from_secs(60));
}

fn echo(value: u32) -> u32 {
    value
}

fn report(reporter: Reporter, value: u32) {
    reporter.send(&value);
}

/// Starts and joins `count` processes with `method`, of every kind: returning, exiting with
/// a code, sending a report through a descriptor among their arguments, daemons, killed
/// ones, (where arguments are decoded) ones whose arguments refuse to decode, targets that
/// hand a value back (`spawn_target`), and processes closed once joined.
fn start_and_join_many(method: StartMethod, count: u32) {
    for i in 0..count {
        let started = |mut p: Process| {
            p = p.with_start_method(method);
            p.start()
                .unwrap_or_else(|e| panic!("start {i} under {method}: {e}"));
            p
        };
        match i % 8 {
            0 => assert_eq!(started(Process::target(nothing, ())).join().unwrap(), 0),
            1 => {
                let code = (i % 200) as i32;
                assert_eq!(
                    started(Process::target(exit_with, (code,))).join().unwrap(),
                    code
                );
            }
            2 => {
                let (reports, reporter) = report_pipe();
                let p = started(Process::target(report, (reporter, i)));
                assert_eq!(reports.recv::<u32>(), i);
                assert_eq!(p.join().unwrap(), 0);
            }
            3 => {
                let p = started(Process::target(nothing, ()).with_daemon(true));
                assert_eq!(p.join().unwrap(), 0);
            }
            4 => {
                let p = started(Process::target(sleep_a_minute, ()));
                p.kill().unwrap();
                assert_eq!(p.join().unwrap(), -9);
            }
            6 => {
                let h = get_context(method).unwrap().spawn_target(echo, (i,));
                assert_eq!(h.unwrap().join().unwrap(), i);
            }
            7 => {
                let mut p = started(Process::target(nothing, ()));
                assert_eq!(p.join().unwrap(), 0);
                p.close().unwrap();
            }
            _ => {
                let p = started(Process::target(
                    takes::<RefusesToDecode>,
                    (RefusesToDecode {},),
                ));
                match (method, p.join()) {
                    (StartMethod::Fork, Ok(0)) => {}
                    (_, Err(Error::TaskFailed { .. })) if method != StartMethod::Fork => {}
                    (_, other) => panic!("under {method}: {other:?}"),
                }
            }
        }
    }
}

fn started_and_joined_processes_leave_no_fd_and_no_zombie(method: StartMethod, count: u32) {
    let _turn = one_at_a_time();
    // Warm up: the first start installs the exit hook, the first daemon makes the
    // lifeline that all daemons of this process share.
    let mut p = Process::target(nothing, ())
        .with_daemon(true)
        .with_start_method(StartMethod::Fork);
    p.start().unwrap();
    p.join().unwrap();
    let fds_before = fd_table();
    let servers_before = my_fork_servers();

    start_and_join_many(method, count);

    let servers = my_fork_servers();
    assert!(
        servers_before.iter().all(|s| servers.contains(s)),
        "a fork server went away: {servers_before:?} -> {servers:?}"
    );
    assert_eq!(
        servers.len(),
        usize::from(method == StartMethod::ForkServer || !servers_before.is_empty()),
        "one fork server for the life of the program, once it is used"
    );
    let new_servers = servers.len() - servers_before.len();
    let fds = fd_table();
    let opened: Vec<&String> = fds
        .iter()
        .filter(|(fd, target)| fds_before.get(fd) != Some(target))
        .map(|(_, target)| target)
        .collect();
    let closed: Vec<(&u32, &String)> = fds_before
        .iter()
        .filter(|(fd, target)| fds.get(fd) != Some(target))
        .collect();
    assert!(closed.is_empty(), "descriptors closed: {closed:?}");
    assert_eq!(
        opened.len(),
        new_servers,
        "descriptors leaked under {method} (a new fork server accounts for one): {opened:?}"
    );
    assert!(
        opened.iter().all(|target| target.starts_with("socket:")),
        "the fork server's connection is a socket: {opened:?}"
    );
    assert!(zombies().is_empty(), "zombies: {:?}", zombies());
    let living: Vec<u32> = children_of(std::process::id())
        .into_iter()
        .map(|c| c.pid)
        .collect();
    assert_eq!(living, servers, "children left besides the fork server");
    assert!(active_children().is_empty());
}

#[test]
fn a_thousand_forked_processes_leave_no_fd_and_no_zombie() {
    started_and_joined_processes_leave_no_fd_and_no_zombie(StartMethod::Fork, 1000);
}

#[test]
fn five_hundred_spawned_processes_leave_no_fd_and_no_zombie() {
    started_and_joined_processes_leave_no_fd_and_no_zombie(StartMethod::Spawn, 500);
}

#[test]
fn five_hundred_served_processes_leave_only_the_fork_server() {
    started_and_joined_processes_leave_no_fd_and_no_zombie(StartMethod::ForkServer, 500);
}

#[test]
fn a_thousand_closures_and_spawn_handles_leave_no_fd_and_no_zombie() {
    let _turn = one_at_a_time();
    let fork_default = get_start_method() == StartMethod::Fork;
    let mut p = Process::new(|| {}).with_start_method(StartMethod::Fork);
    p.start().unwrap();
    p.join().unwrap();
    let fds_before = common::open_fds();

    for i in 0..1000u32 {
        if i % 2 == 0 {
            let mut p = Process::new(|| {}).with_start_method(StartMethod::Fork);
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 0);
        } else if fork_default {
            assert_eq!(spawn(move || i).unwrap().join().unwrap(), i);
        } else {
            // spawn() runs a closure, which only Fork can: under another default it
            // refuses, and the refusal leaks nothing either.
            assert!(matches!(
                spawn(move || i),
                Err(Error::ClosureNeedsFork { .. })
            ));
        }
    }

    assert_eq!(common::open_fds(), fds_before, "file descriptors leaked");
    assert!(zombies().is_empty(), "zombies: {:?}", zombies());
}

/// Whether a memory file is mapped in this process (a value taken from a child, not
/// unmapped).
fn a_memory_file_is_mapped() -> bool {
    multiproc_test_support::maps::memfd_mappings("") > 0
}

/// Puts the default start method back when dropped.
struct RestoreDefault(StartMethod);

impl Drop for RestoreDefault {
    fn drop(&mut self) {
        proc_core::set_start_method(self.0).unwrap();
    }
}

#[test]
fn spawn_handles_of_large_values_joined_or_dropped_leave_no_fd_no_mapping_and_no_zombie() {
    let _turn = one_at_a_time();
    // spawn() runs closures: Fork, whatever the suite's default, for this test only (the
    // tests of this binary take turns).
    let _restore = RestoreDefault(get_start_method());
    proc_core::set_start_method(StartMethod::Fork).unwrap();
    assert_eq!(spawn(|| 0u8).unwrap().join().unwrap(), 0);
    let fds_before = common::open_fds();

    for i in 0..200usize {
        // Values in a memory file (100 KiB) and inline (100 bytes), alternately.
        let len = if i % 2 == 0 { 100 << 10 } else { 100 };
        let h = spawn(move || vec![i as u8; len]).unwrap();
        if i % 4 >= 2 {
            // Half of each size dropped once the value is in flight: the value is discarded
            // with the socket, and the next start reaps the child.
            let deadline = Instant::now() + Duration::from_secs(60);
            while h.is_alive() {
                assert!(Instant::now() < deadline, "the child did not end");
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(h);
            continue;
        }
        assert_eq!(h.join().unwrap(), vec![i as u8; len]);
        assert!(!a_memory_file_is_mapped(), "value {i} is still mapped");
    }
    active_children();

    assert_eq!(common::open_fds(), fds_before, "file descriptors leaked");
    assert!(!a_memory_file_is_mapped());
    assert!(zombies().is_empty(), "zombies: {:?}", zombies());
}

/// Waits until `pid` has ended: a zombie, or gone (its fork server reaped it).
fn wait_until_ended(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stat_of(pid).is_some_and(|s| s.state != 'Z') {
        assert!(Instant::now() < deadline, "{pid} did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn a_dropped_handle_of_a_running_child_is_reaped_not_left_a_zombie(method: StartMethod) {
    let _turn = one_at_a_time();
    // Warm up (the fork server, under ForkServer).
    let mut p = Process::target(nothing, ()).with_start_method(method);
    p.start().unwrap();
    p.join().unwrap();
    let fds_before = common::open_fds();

    let mut p = Process::target(sleep_a_minute, ()).with_start_method(method);
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
    wait_until_ended(pid);
    // Python's rule: finished children are reaped by active_children() (and by the next
    // start, and at exit); what this process held for the child is closed with it.
    // (A served child is the fork server's to reap; it reports the end when it has.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while active_children().iter().any(|c| c.pid() == pid) {
        assert!(Instant::now() < deadline, "the dropped child stays active");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stat_of(pid), None, "the dropped child is still a zombie");
    assert_eq!(common::open_fds(), fds_before, "its descriptors leaked");

    // The next start reaps too.
    let table_before_first = fd_table();
    let mut p = Process::target(nothing, ()).with_start_method(method);
    p.start().unwrap();
    let first = p.pid().unwrap();
    drop(p);
    // What this process still holds for `first` once its handle is gone (in the registry of
    // children, which start() reaps): of it, the pipes and sockets, named by an inode that
    // is unique while they are open, so that a later descriptor of the same number is not
    // mistaken for them. A served child has its status pipe and task socket, a spawned one
    // its task socket, a forked one none (only its pidfd).
    let held_for_first: Vec<String> = fd_table()
        .into_iter()
        .filter(|(fd, target)| table_before_first.get(fd) != Some(target))
        .map(|(_, target)| target)
        .filter(|target| target.starts_with("pipe:") || target.starts_with("socket:"))
        .collect();
    if method != StartMethod::Fork {
        assert!(
            !held_for_first.is_empty(),
            "no task socket or status pipe held for the child: the check below would be empty"
        );
    }
    wait_until_ended(first);
    if method == StartMethod::ForkServer {
        // Let the server report the end it has reaped, so that start() can see it: the
        // server reaps the child, then writes its exit code into the status pipe, so wait
        // for the pipe to turn readable (the child being gone from /proc is not enough).
        let status: Vec<u32> = fd_table()
            .into_iter()
            .filter(|(_, target)| target.starts_with("pipe:") && held_for_first.contains(target))
            .map(|(fd, _)| fd)
            .collect();
        assert_eq!(status.len(), 1, "the status pipe of the served child");
        // SAFETY: the descriptor is the status pipe's read end that the registry of children
        // holds for `first`; nothing closes it before q.start() below, after this borrow.
        let status = unsafe { BorrowedFd::borrow_raw(status[0] as RawFd) };
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(
            proc_core::internal::wait_readable(status, Some(deadline)).unwrap(),
            "the fork server never reported the end of the child"
        );
    }
    let mut q = Process::target(nothing, ()).with_start_method(method);
    q.start().unwrap();
    // A forked or spawned child is ours to reap, and is a zombie until start() does. A
    // served child is the fork server's: the server reaped it (its report, waited for above,
    // comes after the reap), so it is gone whatever start() does, and this would prove
    // nothing. What start() owns for it is its registry entry, whose descriptors are checked
    // below for every method (under Fork only the pidfd, which this check cannot name).
    if method != StartMethod::ForkServer {
        assert_eq!(
            stat_of(first),
            None,
            "start() did not reap the finished child"
        );
    }
    let table = fd_table();
    let still_held: Vec<&String> = held_for_first
        .iter()
        .filter(|target| table.values().any(|t| t == *target))
        .collect();
    assert!(
        still_held.is_empty(),
        "start() did not close what this process held for the finished child: {still_held:?}"
    );
    q.join().unwrap();
    drop(q);
    assert!(zombies().is_empty(), "zombies: {:?}", zombies());
    assert_eq!(common::open_fds(), fds_before, "descriptors leaked");
}

#[test]
fn a_dropped_handle_of_a_running_forked_child_is_reaped_not_left_a_zombie() {
    a_dropped_handle_of_a_running_child_is_reaped_not_left_a_zombie(StartMethod::Fork);
}

#[test]
fn a_dropped_handle_of_a_running_spawned_child_is_reaped_not_left_a_zombie() {
    a_dropped_handle_of_a_running_child_is_reaped_not_left_a_zombie(StartMethod::Spawn);
}

#[test]
fn a_dropped_handle_of_a_running_served_child_is_forgotten_once_the_server_reaped_it() {
    a_dropped_handle_of_a_running_child_is_reaped_not_left_a_zombie(StartMethod::ForkServer);
}

#[test]
fn a_dropped_join_handle_of_a_running_child_is_reaped_too() {
    let _turn = one_at_a_time();
    if get_start_method() != StartMethod::Fork {
        // spawn() needs Fork; its refusal is tested above.
        return;
    }
    let h = spawn(|| std::thread::sleep(Duration::from_secs(60))).unwrap();
    let pid = h.pid();
    drop(h);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until_ended(pid);
    active_children();
    assert_eq!(stat_of(pid), None);
}
