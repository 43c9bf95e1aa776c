//! `wait` over processes and descriptors, as CPython's `TestWait` specifies
//! `multiprocessing.connection.wait`: the ready objects in the order given, nothing on
//! timeout, a zero timeout looks once. The children are targets started by the method in
//! force (`MULTIPROC_START_METHOD`); the queue and connection cases are proc-ipc's tests.

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use proc_core::internal::handle_wire::Descriptor;
use proc_core::{Error, Process, StartMethod, Waitable, spawn, wait};

/// Longer than any correct run waits; a wait that reaches it has missed a wake-up.
const NEVER: Duration = Duration::from_secs(60);

fn started(mut p: Process) -> Process {
    p.start().expect("start a child");
    p
}

/// Writes `count` numbered lines to `out`, pausing a little before each (the children of
/// one test interleave their writes), then ends: the reader sees end of file.
fn write_lines(out: Descriptor, id: u8, count: u8, pause_ms: u64) {
    for n in 0..count {
        std::thread::sleep(Duration::from_millis(pause_ms));
        let line = [id, n];
        assert_eq!(nix::unistd::write(&out, &line).expect("write"), 2);
    }
}

/// Sleeps, then writes one byte.
fn sleep_then_write(out: Descriptor, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    nix::unistd::write(&out, &[1]).expect("write");
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// Reads what `fd` holds now: empty at end of file.
fn read_some(fd: &OwnedFd) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = nix::unistd::read(fd, &mut buf).expect("read");
    buf[..n].to_vec()
}

#[test]
fn wait_hands_out_every_reader_until_all_writers_are_done() {
    // test_wait: four children write to their pipes; waiting on the readers gives each
    // message, and each reader's end of file, without blocking on the others.
    let mut readers = Vec::new();
    let mut children = Vec::new();
    for id in 0..4u8 {
        let (read, write) = pipe();
        children.push(started(Process::target(
            write_lines,
            (Descriptor::from(write), id, 10, 3 + u64::from(id)),
        )));
        readers.push(read);
    }
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut open: Vec<usize> = (0..4).collect();
    let started_at = Instant::now();
    while !open.is_empty() {
        assert!(started_at.elapsed() < NEVER, "the writers never finished");
        let waiting: Vec<&dyn Waitable> = open.iter().map(|&i| &readers[i] as _).collect();
        let ready = wait(&waiting, None).unwrap();
        assert!(!ready.is_empty(), "a wait without timeout returned nothing");
        assert!(
            ready.windows(2).all(|w| w[0] < w[1]),
            "not in order: {ready:?}"
        );
        let mut ended = Vec::new();
        for index in ready {
            let reader = open[index];
            let bytes = read_some(&readers[reader]);
            if bytes.is_empty() {
                ended.push(reader);
            }
            got[reader].extend(bytes);
        }
        open.retain(|r| !ended.contains(r));
    }
    for (id, bytes) in got.iter().enumerate() {
        let expected: Vec<u8> = (0..10).flat_map(|n| [id as u8, n]).collect();
        assert_eq!(bytes, &expected);
    }
    for child in children {
        assert_eq!(child.join().unwrap(), 0);
    }
}

#[test]
fn wait_on_sockets_and_process_sentinels_reports_what_is_ready() {
    // test_wait_socket and test_wait_integer: sockets, and processes waited for through
    // their sentinel descriptors, in one list.
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let (read, write) = pipe();
    let writer = started(Process::target(
        sleep_then_write,
        (Descriptor::from(OwnedFd::from(theirs)), 50),
    ));
    let quiet = started(Process::target(
        sleep_then_write,
        (Descriptor::from(write), 0),
    ));
    let sentinel = quiet.sentinel().unwrap();
    assert_eq!(
        wait(&[&sentinel as &dyn Waitable], Some(NEVER)).unwrap(),
        [0]
    );
    // The quiet child wrote its byte before it ended: both of its objects are ready.
    let ready = wait(&[&sentinel as &dyn Waitable, &read], Some(NEVER)).unwrap();
    assert_eq!(ready, [0, 1]);
    assert_eq!(quiet.join().unwrap(), 0);
    assert_eq!(read_some(&read), [1]);
    // Every writer of the pipe is gone: end of file is ready, and stays so.
    assert_eq!(read_some(&read), []);
    let ready = wait(&[&read as &dyn Waitable, &ours], Some(NEVER)).unwrap();
    assert_eq!(ready[0], 0);
    // The socket's byte comes from the other child.
    assert_eq!(wait(&[&ours as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert_eq!(read_some(&OwnedFd::from(ours.try_clone().unwrap())), [1]);
    assert_eq!(wait(&[&writer as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert_eq!(writer.join().unwrap(), 0);
    // Its end of the socket closed with it: end of file is ready too.
    assert_eq!(wait(&[&ours as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
}

#[test]
fn a_wait_whose_timeout_passes_returns_nothing_and_not_before_the_timeout() {
    // test_wait_timeout.
    let (read, write) = pipe();
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    assert!(
        wait(&[&read as &dyn Waitable], Some(timeout))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= timeout);
    nix::unistd::write(&write, b"x").unwrap();
    assert_eq!(wait(&[&read as &dyn Waitable], Some(timeout)).unwrap(), [0]);
}

#[test]
fn a_process_is_ready_once_it_has_ended_and_stays_ready_after_join() {
    let (read, write) = pipe();
    let child = started(Process::target(
        sleep_then_write,
        (Descriptor::from(write), 100),
    ));
    let start = Instant::now();
    assert_eq!(
        wait(&[&read as &dyn Waitable, &child], Some(NEVER)).unwrap()[0],
        0,
        "the child writes before it ends"
    );
    assert_eq!(wait(&[&child as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert!(start.elapsed() < NEVER);
    child.join().unwrap();
    assert_eq!(wait(&[&child as &dyn Waitable], None).unwrap(), [0]);
}

#[test]
fn a_zero_timeout_looks_once_without_waiting() {
    // test_neg_timeout: Python's negative timeout is Rust's zero.
    let (read, _write) = pipe();
    let start = Instant::now();
    assert!(
        wait(&[&read as &dyn Waitable], Some(Duration::ZERO))
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() < NEVER);
}

#[test]
fn an_empty_list_waits_out_its_timeout() {
    let timeout = Duration::from_millis(20);
    let start = Instant::now();
    assert!(wait(&[], Some(timeout)).unwrap().is_empty());
    assert!(start.elapsed() >= timeout);
}

#[test]
fn a_process_not_yet_started_cannot_be_waited_for() {
    let p = Process::target(sleep_then_write, (Descriptor::from(pipe().1), 0));
    let (read, _write) = pipe();
    match wait(&[&read as &dyn Waitable, &p], Some(Duration::ZERO)) {
        Err(Error::NotStarted { operation, .. }) => assert_eq!(operation, "sentinel()"),
        other => panic!("expected NotStarted, got {other:?}"),
    }
}

#[test]
fn a_join_handle_is_ready_once_its_child_has_returned() {
    if proc_core::get_start_method() != StartMethod::Fork {
        return; // spawn runs closures, which only Fork can run: process.rs tests the refusal
    }
    let h = spawn(|| {
        std::thread::sleep(Duration::from_millis(20));
        42u32
    })
    .unwrap();
    assert_eq!(wait(&[&h as &dyn Waitable], Some(NEVER)).unwrap(), [0]);
    assert!(!h.is_alive());
    assert_eq!(h.join().unwrap(), 42);
}
