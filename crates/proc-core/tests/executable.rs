//! `set_executable()` (CPython's `test_set_executable`): which file spawned children run, and
//! what a start that cannot run it leaves behind: nothing. The executable is the whole
//! process's, so this binary holds only these tests, run one at a time; its processes are
//! started by Spawn (and ForkServer where said), whatever `MULTIPROC_START_METHOD` says.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use multiproc_test_support::fds::{one_at_a_time, open_fd_numbers};
use proc_core::{Error, Process, StartMethod, set_executable};

use common::{Reporter, children_of, report_pipe, zombies};

/// A fresh copy of this test binary in Cargo's scratch directory, executable.
fn copy_of_this_binary(name: &str) -> PathBuf {
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "proc-core-executable-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(std::env::current_exe().unwrap(), &copy).expect("copy this binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Puts the executable back to this binary's own file, whatever a test did.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        set_executable(std::env::current_exe().unwrap()).expect("restore the executable");
    }
}

fn report_my_executable(reporter: Reporter) {
    let exe = std::fs::read_link("/proc/self/exe").expect("read /proc/self/exe");
    reporter.send(&exe.to_string_lossy().into_owned());
}

fn nothing() {}

/// Starts `report_my_executable` by `method` and returns what the child runs.
fn executable_of_a_child(method: StartMethod) -> String {
    let (reports, reporter) = report_pipe();
    let mut p = Process::target(report_my_executable, (reporter,)).with_start_method(method);
    p.start().unwrap();
    let exe = reports.recv::<String>();
    assert_eq!(p.join().unwrap(), 0);
    exe
}

#[test]
fn a_spawned_child_runs_the_executable_that_was_set_even_once_its_path_is_gone() {
    let _alone = one_at_a_time();
    let _restore = Restore;
    let copy = copy_of_this_binary("runs");
    set_executable(&copy).unwrap();
    assert_eq!(
        executable_of_a_child(StartMethod::Spawn),
        copy.to_string_lossy()
    );

    // The file was kept open when it was set: deleting its path does not change it.
    std::fs::remove_file(&copy).unwrap();
    let exe = executable_of_a_child(StartMethod::Spawn);
    assert!(
        exe.starts_with(&*copy.to_string_lossy()) && exe.ends_with("(deleted)"),
        "{exe}"
    );

    drop(_restore);
    let own = std::env::current_exe().unwrap();
    assert_eq!(
        executable_of_a_child(StartMethod::Spawn),
        own.to_string_lossy()
    );
}

#[test]
fn set_executable_refuses_what_cannot_be_this_program_and_keeps_the_one_in_force() {
    let _alone = one_at_a_time();
    let _restore = Restore;
    let copy = copy_of_this_binary("kept");
    set_executable(&copy).unwrap();

    let not_executable = copy_of_this_binary("not-executable");
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let other_program = which_sh().expect("a shell to stand for another program");
    for (path, why) in [
        (PathBuf::from("/no/such/executable"), "does not exist"),
        (
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            "not a regular file",
        ),
        (not_executable.clone(), "not executable"),
        (other_program, "not this program"),
    ] {
        match set_executable(&path) {
            Err(e @ Error::BadExecutable { .. }) => {
                let message = e.to_string();
                assert!(message.contains(why), "{path:?}: {message}");
                assert!(message.contains(&*path.to_string_lossy()), "{message}");
            }
            other => panic!("{path:?}: expected BadExecutable, got {other:?}"),
        }
    }
    assert_eq!(
        executable_of_a_child(StartMethod::Spawn),
        copy.to_string_lossy(),
        "a refused path changes nothing"
    );
    let _ = std::fs::remove_file(not_executable);
    let _ = std::fs::remove_file(copy);
}

fn which_sh() -> Option<PathBuf> {
    ["/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn a_start_that_cannot_run_the_executable_leaves_nothing_and_can_be_retried() {
    let _alone = one_at_a_time();
    let _restore = Restore;
    let copy = copy_of_this_binary("failing");
    set_executable(&copy).unwrap();
    // Accepted, then made unrunnable: the exec of the next child fails.
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();

    // ForkServer first, while no fork server runs in this binary: it must start one, and
    // cannot. Then Spawn.
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        let fds = open_fd_numbers();
        let children = children_of(std::process::id()).len();
        let mut p = Process::target(nothing, ()).with_start_method(method);
        match p.start() {
            Err(Error::Exec { path, source }) => {
                assert_eq!(path, copy, "{method}: the error names the file");
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied,
                    "{method}"
                );
            }
            other => panic!("{method}: expected Exec, got {other:?}"),
        }
        assert_eq!(open_fd_numbers(), fds, "{method}: no descriptor left open");
        assert_eq!(
            children_of(std::process::id()).len(),
            children,
            "{method}: no child left"
        );
        assert!(zombies().is_empty(), "{method}: no zombie");
        assert_eq!((p.pid(), p.exitcode(), p.is_alive()), (None, None, false));
        assert!(
            matches!(p.join(), Err(Error::NotStarted { .. })),
            "{method}"
        );

        // Runnable again: the same process starts, its target kept.
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0, "{method}");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let _ = std::fs::remove_file(copy);
}
