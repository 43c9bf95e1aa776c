//! Choosing the start method: Python's names, `set_start_method` / `get_start_method`, and
//! `MULTIPROC_START_METHOD`, which multiproc applies before `main` so that a whole program
//! or test suite runs under another method unchanged. The tests here change the process's
//! default, so they take turns.

use multiproc_test_support::fds::one_at_a_time;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use proc_core::{
    Error, Process, START_METHOD_ENV, StartMethod, exit, get_start_method, set_start_method, spawn,
};

/// Sets the default for the rest of a test and puts back the one before when dropped.
struct DefaultFor(StartMethod);

impl DefaultFor {
    fn set(method: StartMethod) -> Self {
        let before = get_start_method();
        set_start_method(method).unwrap();
        DefaultFor(before)
    }
}

impl Drop for DefaultFor {
    fn drop(&mut self) {
        set_start_method(self.0).unwrap();
    }
}

#[test]
fn start_methods_have_pythons_names_and_parse_from_them() {
    assert_eq!(
        StartMethod::ALL,
        [
            StartMethod::Fork,
            StartMethod::Spawn,
            StartMethod::ForkServer
        ]
    );
    assert_eq!(StartMethod::default(), StartMethod::Fork);
    for (method, name) in StartMethod::ALL
        .into_iter()
        .zip(["fork", "spawn", "forkserver"])
    {
        assert_eq!(method.name(), name);
        assert_eq!(method.to_string(), name);
        assert_eq!(name.parse::<StartMethod>().unwrap(), method);
    }
    for wrong in ["vfork", "Spawn", " spawn", "fork-server", ""] {
        match wrong.parse::<StartMethod>() {
            Err(Error::UnknownStartMethod { given }) => assert_eq!(given, wrong),
            other => panic!("{wrong:?} parsed as {other:?}"),
        }
    }
    let message = "vfork".parse::<StartMethod>().unwrap_err().to_string();
    assert!(
        message.contains("fork, spawn and forkserver"),
        "lists the methods: {message}"
    );
}

/// A global of this program: a spawned child starts from the program's initial value, a
/// forked one from the parent's copy.
static MARK: AtomicU32 = AtomicU32::new(0);

fn exit_with_the_mark() {
    exit(MARK.load(Ordering::SeqCst) as i32)
}

fn exit_with(code: i32) {
    exit(code)
}

#[test]
fn set_start_method_sets_the_default_that_new_and_unstarted_processes_use() {
    let _turn = one_at_a_time();
    MARK.store(7, Ordering::SeqCst);
    for method in StartMethod::ALL {
        let unstarted = Process::target(exit_with_the_mark, ());
        let _default = DefaultFor::set(method);
        assert_eq!(get_start_method(), method);
        // An unstarted process follows the default in force.
        assert_eq!(unstarted.start_method(), method);
        let mut p = Process::target(exit_with_the_mark, ());
        assert_eq!(p.start_method(), method);
        p.start().unwrap();
        let expected = if method == StartMethod::Fork { 7 } else { 0 };
        assert_eq!(
            p.join().unwrap(),
            expected,
            "under {method} the child sees the mark its way"
        );
    }
}

#[test]
fn a_started_process_keeps_its_method_when_the_default_changes() {
    let _turn = one_at_a_time();
    let mut p = Process::target(exit_with_the_mark, ()).with_name("keeps");
    let _default = DefaultFor::set(StartMethod::Spawn);
    p.start().unwrap();
    set_start_method(StartMethod::ForkServer).unwrap();
    assert_eq!(p.start_method(), StartMethod::Spawn);
    p.join().unwrap();
}

#[test]
fn closures_are_refused_clearly_under_a_spawn_or_forkserver_default() {
    let _turn = one_at_a_time();
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let _default = DefaultFor::set(method);
        let mut p = Process::new(|| {});
        assert!(matches!(p.start(), Err(Error::ClosureNeedsFork { method: m, .. }) if m == method));
        // spawn() runs a closure too: it refuses at once, with the same error.
        match spawn(|| 1u8) {
            Err(Error::ClosureNeedsFork { method: m, .. }) => assert_eq!(m, method),
            other => panic!("under {method}, spawn gave {other:?}"),
        }
    }
}

/// Run by the test below in a fresh run of this binary, with `MULTIPROC_START_METHOD` set;
/// in the suite's own run it checks the suite's environment.
#[test]
fn the_start_method_in_force_is_the_one_multiproc_start_method_names() {
    let _turn = one_at_a_time();
    let named = std::env::var(START_METHOD_ENV).ok();
    let expected = named
        .as_deref()
        .and_then(|name| name.parse().ok())
        .unwrap_or(StartMethod::Fork);
    assert_eq!(get_start_method(), expected, "{START_METHOD_ENV}={named:?}");
    println!("start method in force: {}", get_start_method());
    // A process started with the default uses it.
    let mut p = Process::target(exit_with, (0,));
    assert_eq!(p.start_method(), expected);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 0);
}

/// Runs the test above in a new run of this binary with `MULTIPROC_START_METHOD=value`.
fn run_the_check_with(value: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_start_method_in_force_is_the_one_multiproc_start_method_names",
            "--nocapture",
        ])
        .env(START_METHOD_ENV, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{START_METHOD_ENV}={value}: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the check did not run: {stdout}"
    );
    (stdout, stderr)
}

#[test]
fn multiproc_start_method_is_applied_before_main() {
    for method in StartMethod::ALL {
        let (stdout, stderr) = run_the_check_with(method.name());
        assert!(
            stdout.contains(&format!("start method in force: {method}")),
            "{stdout}"
        );
        assert!(!stderr.contains("ignored"), "{stderr}");
    }
}

#[test]
fn an_unknown_multiproc_start_method_is_reported_and_ignored() {
    let (stdout, stderr) = run_the_check_with("vfork");
    assert!(stdout.contains("start method in force: fork"), "{stdout}");
    assert!(
        stderr.contains("MULTIPROC_START_METHOD ignored") && stderr.contains("vfork"),
        "{stderr}"
    );
}
