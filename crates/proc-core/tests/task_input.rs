//! A process that multiproc takes over before `main` (a spawned child, a fork server) reads
//! what another process sent it: untrusted bytes and descriptors. Each test runs this very
//! test binary as such a process, with a task socket it fills itself, and checks that a
//! malformed, truncated or missing task, or one whose descriptors are missing, of the wrong
//! kind or more than the process can open, ends it with `TASK_ERROR_EXIT_CODE` and a reason on
//! its stderr (and on the task socket, where the parent reads it), never with a panic or
//! by running the test harness. Were the takeover to fail, the harness would run (no
//! test matches the filter given) and exit with 0: these tests would fail.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use nix::sys::socket::{AddressFamily, Shutdown, SockFlag, SockType, shutdown, socketpair};
use proc_core::codec::{self, ByteBuf};
use proc_core::{ProcessInfo, StartMethod, TASK_ERROR_EXIT_CODE, current_process};
use serde::Serialize;

const TASK_FD: &str = "MULTIPROC_TASK_FD";
const SERVER_FD: &str = "MULTIPROC_FORKSERVER_FD";

/// This test binary, told to run nothing should it reach the harness.
fn this_binary() -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", "the-takeover-did-not-happen"])
        .env_remove("MULTIPROC_START_METHOD")
        .stdin(Stdio::null());
    command
}

/// Lets the new process inherit `fd` (close-on-exec is cleared between fork and exec).
fn inherit(command: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs between fork and exec and makes one fcntl call, which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn socket_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

/// What the process did, and what it answered on the socket.
struct Ran {
    output: Output,
    answer: Vec<u8>,
}

impl Ran {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Ended with the task error code, saying `why` on stderr and on the socket.
    fn refused_because(&self, why: &str) {
        let stderr = self.stderr();
        assert_eq!(
            self.output.status.code(),
            Some(TASK_ERROR_EXIT_CODE),
            "{}: {stderr}",
            self.output.status
        );
        assert!(stderr.contains("could not run its task"), "{stderr}");
        assert!(stderr.contains(why), "expected {why:?} on stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(self.output.stdout.is_empty(), "the harness ran");
        let answer = String::from_utf8_lossy(&self.answer);
        assert!(
            answer.starts_with('-') && answer.contains(why),
            "expected \"-…{why}…\" on the task socket, got {answer:?}"
        );
    }
}

/// Runs this binary as a spawned child whose task socket receives `sent`, then end of file.
fn spawned_child_given(sent: &[u8]) -> Ran {
    spawned_child_given_fds(sent, &[], None)
}

/// As [`spawned_child_given`], with `fds` attached to the first bytes sent, and the child's
/// limit of open files (`RLIMIT_NOFILE`) lowered to `open_files` when given.
fn spawned_child_given_fds(sent: &[u8], fds: &[BorrowedFd<'_>], open_files: Option<u64>) -> Ran {
    let (ours, theirs) = socket_pair();
    let mut command = this_binary();
    command
        .env(TASK_FD, theirs.as_raw_fd().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    inherit(&mut command, theirs.as_raw_fd());
    if let Some(limit) = open_files {
        // SAFETY: runs between fork and exec; setrlimit is a plain system call
        // (async-signal-safe) on a value on the stack, and nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command.spawn().expect("run this binary");
    drop(theirs);
    let mut socket = std::fs::File::from(ours);
    // The child may refuse before it read everything; a send that then fails is fine.
    let _ = proc_core::internal::fd_passing::send_with_fds(socket.as_fd(), sent, fds);
    // End of file for the child even if a sibling process holds a copy of our end.
    let _ = shutdown(socket.as_raw_fd(), Shutdown::Write);
    let output = child.wait_with_output().expect("wait for the child");
    let mut answer = Vec::new();
    let _ = io::Read::read_to_end(&mut socket, &mut answer);
    Ran { output, answer }
}

fn frame(announced: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = announced.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn a_task_that_is_not_a_task_message_is_refused() {
    spawned_child_given(&frame(8, &[0xFF; 8])).refused_because("does not decode");
}

#[test]
fn a_task_cut_short_inside_its_body_is_refused() {
    spawned_child_given(&frame(100, &[0u8; 10])).refused_because("cut short: 10 of 100 bytes");
}

#[test]
fn a_task_cut_short_inside_its_length_is_refused() {
    spawned_child_given(&[7, 0]).refused_because("cut short: 2 of 4 bytes");
}

#[test]
fn a_task_that_never_comes_is_refused() {
    spawned_child_given(&[]).refused_because("never came");
}

#[test]
fn a_task_that_announces_more_than_the_limit_is_refused() {
    spawned_child_given(&frame(u32::MAX, b"tiny")).refused_because("over the limit");
}

#[test]
fn a_whole_frame_that_holds_half_a_header_is_refused() {
    // The frame is complete; the header in it ends after its first fields.
    spawned_child_given(&frame(3, &[0, 0, 0])).refused_because("does not decode");
}

/// A task header as a parent writes it: the fields of `start::task::Header`, in order, with
/// the entry point (a `CodeAddress`, which encodes as its `u64` offset) chosen by the test.
/// Should the real header change, these tests fail with "does not decode" instead of the
/// reason they expect, and say so.
#[derive(Serialize)]
struct Header {
    name: String,
    identity: Vec<u64>,
    daemon: bool,
    parent: ProcessInfo,
    start_method: StartMethod,
    entry: u64,
    args: ByteBuf,
}

/// A whole task message whose header decodes, naming code at `entry` (no offset of this
/// executable's code is ever this large, so the child can never call it).
fn task_message(daemon: bool) -> Vec<u8> {
    let header = Header {
        name: "crafted".into(),
        identity: vec![1],
        daemon,
        parent: current_process(),
        start_method: StartMethod::Spawn,
        entry: u64::MAX / 2,
        args: ByteBuf::from(Vec::new()),
    };
    let bytes = codec::encode(&header).unwrap();
    frame(bytes.len() as u32, &bytes)
}

#[test]
fn a_task_naming_code_outside_the_executable_is_refused_with_its_descriptors() {
    // The header decodes (the reason comes from the step after it), the descriptors arrive,
    // and the entry point is refused before anything is called.
    let (read, write) = io::pipe().unwrap();
    let stderr = io::stderr();
    let parent = pidfd_of_this_process();
    let fds = [parent.as_fd(), read.as_fd(), write.as_fd(), stderr.as_fd()];
    spawned_child_given_fds(&task_message(false), &fds, None)
        .refused_because("is not in this executable");
}

/// A pidfd of this process, as a parent sends it for its child's `parent_process()`.
fn pidfd_of_this_process() -> OwnedFd {
    // SAFETY: pidfd_open of our own pid with no flags; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    assert!(fd >= 0, "pidfd_open: {}", io::Error::last_os_error());
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) }
}

#[test]
fn a_task_without_a_descriptor_for_the_parents_sentinel_is_refused() {
    spawned_child_given(&task_message(false))
        .refused_because("no descriptor for the parent's sentinel");
}

#[test]
fn a_task_whose_parent_sentinel_is_not_a_pidfd_is_refused() {
    // A pipe's read end would never turn readable (the parent would seem immortal), and
    // /dev/null always is (the parent would seem dead): only a pidfd tells the truth.
    let (read, _write) = io::pipe().unwrap();
    spawned_child_given_fds(&task_message(false), &[read.as_fd()], None)
        .refused_because("is not a pidfd");
    let (read, write) = io::pipe().unwrap();
    let lifeline = read;
    let null = std::fs::File::open("/dev/null").unwrap();
    spawned_child_given_fds(&task_message(true), &[lifeline.as_fd(), null.as_fd()], None)
        .refused_because("is not a pidfd");
    drop(write);
}

#[test]
fn a_daemons_task_without_its_lifeline_is_refused() {
    spawned_child_given(&task_message(true)).refused_because("carries no lifeline descriptor");
}

#[test]
fn a_daemons_task_whose_lifeline_is_not_a_pipe_is_refused() {
    // /dev/null is always readable: taken as the lifeline, it would read as the parent's
    // death and SIGKILL the daemon at once, with no word of why.
    let null = std::fs::File::open("/dev/null").unwrap();
    spawned_child_given_fds(&task_message(true), &[null.as_fd()], None)
        .refused_because("the lifeline, is not a pipe");
}

#[test]
fn a_task_with_more_descriptors_than_the_child_can_open_is_refused() {
    let null = std::fs::File::open("/dev/null").unwrap();
    let fds = vec![null.as_fd(); 40];
    spawned_child_given_fds(&task_message(false), &fds, Some(16))
        .refused_because("more file descriptors than this process could take");
}

/// Runs this binary with `variable` set to `value`, which names no usable descriptor.
fn started_with(variable: &str, value: &str) -> Output {
    this_binary()
        .env(variable, value)
        .output()
        .expect("run this binary")
}

fn refused_descriptor(output: &Output, variable: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(TASK_ERROR_EXIT_CODE),
        "{}: {stderr}",
        output.status
    );
    assert!(
        stderr.contains(variable) && stderr.contains("does not name an open file descriptor"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "the harness ran");
}

#[test]
fn a_task_descriptor_that_is_closed_ends_the_process_with_the_task_error_code() {
    // Descriptors are close-on-exec here: 900 is not open in the new process.
    refused_descriptor(&started_with(TASK_FD, "900"), TASK_FD);
}

#[test]
fn a_task_descriptor_that_is_not_a_number_or_is_stdio_is_refused() {
    for value in ["", "three", "-1", "1", "99999999999"] {
        refused_descriptor(&started_with(TASK_FD, value), TASK_FD);
    }
}

#[test]
fn a_fork_server_descriptor_that_is_closed_ends_the_process_with_the_task_error_code() {
    refused_descriptor(&started_with(SERVER_FD, "900"), SERVER_FD);
}

#[test]
fn a_fork_server_answers_a_request_it_does_not_know_and_ends_with_its_connection() {
    let (ours, theirs) = socket_pair();
    let mut command = this_binary();
    command
        .env(SERVER_FD, theirs.as_raw_fd().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    inherit(&mut command, theirs.as_raw_fd());
    let server = command.spawn().expect("run this binary as a fork server");
    drop(theirs);
    let mut socket = std::fs::File::from(ours);
    // A frame that is not "fork", and a "fork" without its three descriptors, each with the
    // answer it must get.
    for (request, expected) in [
        (&b"hello"[..], "not one the fork server knows"),
        (b"fork", "3 descriptors (task, stdout, stderr), not 0"),
    ] {
        socket
            .write_all(&frame(request.len() as u32, request))
            .unwrap();
        let mut len = [0u8; 4];
        io::Read::read_exact(&mut socket, &mut len).expect("an answer");
        let mut reply = vec![0u8; u32::from_le_bytes(len) as usize];
        io::Read::read_exact(&mut socket, &mut reply).expect("the whole answer");
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.contains(expected),
            "request {:?}: expected {expected:?} in {reply:?}",
            String::from_utf8_lossy(request)
        );
    }
    // A connection that ends mid-frame ends the server, which forked nothing.
    socket.write_all(&[200, 0]).unwrap();
    let _ = shutdown(socket.as_fd().as_raw_fd(), Shutdown::Write);
    let output = server.wait_with_output().expect("wait for the server");
    assert!(output.status.success(), "{}", output.status);
    assert!(output.stdout.is_empty(), "the harness ran");
}
