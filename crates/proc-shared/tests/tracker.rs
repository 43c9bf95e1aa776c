//! The resource tracker: a block created by a process tree and never unlinked is unlinked
//! when the tree has ended, however it ended, with a warning that names it; a block
//! unlinked normally causes no warning.
//!
//! The test process itself never creates a block here (a tree's tracker ends with the
//! tree, and the tree of a test binary ends only with it). Blocks are created by children,
//! or by a run of this binary of its own (the `helper` test, with a role in
//! [`HELPER_ENV`]), whose stderr the test reads: the tracker writes its warnings there and
//! holds it until it ends, so reading it to the end also waits for the tracker.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{EVENTUALLY, eventually_gone, shm_exists, start};
use proc_ipc::Queue;
use proc_shared::{Item, ShareableList, SharedMemory};

const HELPER_ENV: &str = "PROC_SHARED_TRACKER_HELPER";

/// What the tracker says about a leaked block.
const WARNING: &str = "resource tracker: leaked shared_memory block";

/// A run of this test binary in the role `role`: its stdout and its stderr, once it and
/// every process holding its stderr (the tracker) have ended.
fn run_role(role: &str) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, role);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(command.output()));
    let output = receiver
        .recv_timeout(EVENTUALLY)
        .expect("the helper and its tracker end")
        .expect("run the helper");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "helper {role} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// As [`run_role`]: what the helper [`tell`]s (the last value of each key), and its stderr.
fn run_helper(role: &str) -> (BTreeMap<String, String>, String) {
    let (stdout, stderr) = run_role(role);
    let values = told(&stdout)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (values, stderr)
}

/// As [`run_role`]: every value the helper told under `key`, and its stderr.
fn run_helper_all(role: &str, key: &str) -> (Vec<String>, String) {
    let (stdout, stderr) = run_role(role);
    let values = told(&stdout)
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .collect();
    (values, stderr)
}

/// The `key=value` pairs a helper told, in order (a key may come several times).
fn told(stdout: &str) -> Vec<(&str, &str)> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(TOLD)?.1.split_once('='))
        .collect()
}

/// What marks a line of the helper's answers (libtest may print before it on the line).
const TOLD: &str = "told: ";

/// Says `key=value` to the test that runs this helper.
fn tell(key: &str, value: impl std::fmt::Display) {
    println!("{TOLD}{key}={value}");
}

#[test]
#[ignore = "a role run by the other tests in a process of its own"]
fn helper() {
    let Ok(role) = std::env::var(HELPER_ENV) else {
        return;
    };
    match role.as_str() {
        "leak" => {
            let shm = SharedMemory::create(8).unwrap();
            let list = ShareableList::create(&[Item::Int(1)]).unwrap();
            tell("block", shm.name());
            tell("list", list.name());
            // Ends without unlinking either.
        }
        "unlink" => {
            for _ in 0..3 {
                let shm = SharedMemory::create(8).unwrap();
                tell("block", shm.name());
                shm.unlink().unwrap();
            }
            let list = ShareableList::create(&[Item::Str("x".into())]).unwrap();
            list.shm().unlink().unwrap();
        }
        "leak_many" => {
            // More than the tracker's first table holds.
            for _ in 0..150 {
                tell("block", SharedMemory::create(1).unwrap().name());
            }
        }
        "sigchld_ignored" => {
            // SAFETY: setting a signal's disposition to SIG_IGN touches no memory.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            tell("block", SharedMemory::create(8).unwrap().name());
        }
        "refused_twin" => {
            // A second create of the same name in the same tree is refused; the refusal
            // must not take the first block's registration with it.
            let name = format!("mpt_twin_{}", std::process::id());
            let first = SharedMemory::create_named(&name, 8).unwrap();
            let twin = SharedMemory::create_named(&name, 8);
            assert!(
                matches!(twin, Err(proc_shared::Error::AlreadyExists { .. })),
                "{twin:?}"
            );
            tell("block", first.name());
            // Ends without unlinking it.
        }
        "inspect" => inspect_the_tracker(),
        "family" => family(),
        other => panic!("unknown helper role {other}"),
    }
}

#[test]
fn a_leaked_block_is_unlinked_with_a_warning_that_names_it_when_its_tree_ends() {
    let (told, stderr) = run_helper("leak");
    for block in [&told["block"], &told["list"]] {
        assert!(
            stderr.contains(&format!("{WARNING} '{block}'")),
            "no warning for {block}: {stderr}"
        );
        assert!(!shm_exists(block), "{block} is still in /dev/shm");
    }
}

#[test]
fn a_create_refused_for_an_existing_name_leaves_that_blocks_registration() {
    let (told, stderr) = run_helper("refused_twin");
    let block = &told["block"];
    assert_eq!(
        stderr.matches(&format!("{WARNING} '{block}'")).count(),
        1,
        "{stderr}"
    );
    assert!(!shm_exists(block), "{block} is still in /dev/shm");
}

#[test]
fn every_leaked_block_is_unlinked_however_many_there_are() {
    let (blocks, stderr) = run_helper_all("leak_many", "block");
    assert_eq!(blocks.len(), 150);
    for block in &blocks {
        assert!(stderr.contains(&format!("{WARNING} '{block}'")), "{block}");
        assert!(!shm_exists(block), "{block} is still in /dev/shm");
    }
}

#[test]
fn the_tracker_starts_in_a_program_that_ignores_sigchld() {
    let (told, stderr) = run_helper("sigchld_ignored");
    assert!(
        stderr.contains(&format!("{WARNING} '{}'", told["block"])),
        "{stderr}"
    );
    assert!(!shm_exists(&told["block"]));
}

#[test]
fn a_block_unlinked_normally_causes_no_warning() {
    let (told, stderr) = run_helper("unlink");
    assert!(!stderr.contains("resource tracker"), "{stderr}");
    assert!(!shm_exists(&told["block"]));
}

fn create_and_wait(names: Queue<String>) {
    let shm = SharedMemory::create(4096).unwrap();
    names.put(shm.name().to_string()).unwrap();
    std::thread::sleep(EVENTUALLY);
}

#[test]
fn a_block_whose_creator_is_killed_is_unlinked_soon_after() {
    let names = Queue::<String>::new(0).unwrap();
    let child = start(create_and_wait, (names.clone(),));
    let name = names.get().unwrap();
    assert!(shm_exists(&name));
    child.kill().unwrap();
    assert_eq!(common::join(&child), -9);
    assert!(
        eventually_gone(&name),
        "{name} still exists after its creator was killed"
    );
}

/// Makes this process the reaper of its orphaned descendants, so that the tracker (forked
/// twice, then orphaned) becomes its child and can be found.
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    let set = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(set, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

fn inspect_the_tracker() {
    become_subreaper();
    // Threads at work while the tracker is forked: it must still start and work.
    let busy: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_millis(300))))
        .collect();
    let shm = SharedMemory::create(8).unwrap();
    let me = std::process::id();
    let children = multiproc_test_support::procs::children_of(me);
    assert_eq!(
        children.len(),
        1,
        "the tracker is the one child: {children:?}"
    );
    let tracker = children[0].pid;
    let fds = std::fs::read_dir(format!("/proc/{tracker}/fd")).unwrap();
    for fd in fds {
        let fd = fd.unwrap();
        let target = std::fs::read_link(fd.path()).unwrap();
        tell(
            &format!("fd{}", fd.file_name().to_string_lossy()),
            target.display(),
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{tracker}/status")).unwrap();
    let ignored = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .unwrap()
        .trim();
    tell("ignored", u64::from_str_radix(ignored, 16).unwrap());
    shm.unlink().unwrap();
    for thread in busy {
        thread.join().unwrap();
    }
}

#[test]
fn the_tracker_holds_only_its_socket_and_stdio_and_ignores_interrupts() {
    let (told, stderr) = run_helper("inspect");
    let fds: Vec<&str> = told.keys().filter_map(|k| k.strip_prefix("fd")).collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{told:?}");
    assert_eq!(told["fd0"], "/dev/null");
    assert_eq!(told["fd1"], "/dev/null");
    assert!(told["fd3"].starts_with("socket:"), "{told:?}");
    let ignored: u64 = told["ignored"].parse().unwrap();
    let bit = |signal: i32| 1u64 << (signal - 1);
    assert_eq!(ignored & bit(libc::SIGINT), bit(libc::SIGINT));
    assert_eq!(ignored & bit(libc::SIGTERM), bit(libc::SIGTERM));
    assert!(!stderr.contains("resource tracker"), "{stderr}");
}

fn create_in_child(first: SharedMemory, names: Queue<String>) {
    let shm = SharedMemory::create(8).unwrap();
    names.put(shm.name().to_string()).unwrap();
    drop(first);
    std::thread::sleep(EVENTUALLY);
}

/// Creates a block, hands it to a child (under the start method in force) that creates
/// another and is killed; ends without unlinking either.
fn family() {
    let first = SharedMemory::create(8).unwrap();
    tell("first", first.name());
    let names = Queue::<String>::new(0).unwrap();
    let copy = SharedMemory::open(first.name()).unwrap();
    // A fresh handle (not `first` itself): the child gets the block and the tracker with it.
    let mut child = proc_core::Process::target(create_in_child, (copy, names.clone()));
    child.start().unwrap();
    let second = names.get().unwrap();
    tell("second", &second);
    child.kill().unwrap();
    child.join().unwrap();
    // Had the child its own tracker, that tracker would unlink the block now.
    std::thread::sleep(Duration::from_millis(300));
    tell("second_after_kill", shm_exists(&second));
}

#[test]
fn children_share_their_creators_tracker() {
    let (told, stderr) = run_helper("family");
    assert_eq!(
        told["second_after_kill"], "true",
        "the child's block outlives the child while its tree lives"
    );
    for block in [&told["first"], &told["second"]] {
        assert!(
            stderr.contains(&format!("{WARNING} '{block}'")),
            "no warning for {block}: {stderr}"
        );
        assert!(!shm_exists(block));
    }
}
