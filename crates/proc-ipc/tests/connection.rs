//! Connections between processes: what arrives, in what order, and what every kind of bad
//! input or dead peer gives.
//!
//! The children are targets given their ends as arguments, so that they are forked, spawned
//! or served as `MULTIPROC_START_METHOD` says; what a forked child inherits besides is the
//! subject of two tests at the end.

mod common;

use std::time::Duration;

use common::write_raw;
use common::{NEVER, start};
use proc_core::{Process, StartMethod, exit};
use proc_ipc::{Connection, Error, pipe, pipe_oneway};
use proc_sync::Event;

/// Receives `(i, "item i")` for i in 0..100, checking each, and answers each with `2 i`.
fn answer_100_doubled(end: Connection) {
    for i in 0..100u32 {
        let (n, text): (u32, String) = end.recv().unwrap();
        assert_eq!((n, text.as_str()), (i, format!("item {i}").as_str()));
        end.send(&(n * 2)).unwrap();
    }
}

#[test]
fn values_cross_between_processes_both_ways_in_order() {
    let (parent_end, child_end) = pipe().unwrap();
    let p = start(answer_100_doubled, (child_end,));
    for i in 0..100u32 {
        parent_end.send(&(i, format!("item {i}"))).unwrap();
        assert_eq!(parent_end.recv::<u32>().unwrap(), i * 2);
    }
    assert_eq!(p.join().unwrap(), 0);
}

fn send_from_the_child(writer: Connection) {
    writer.send("from the child").unwrap();
}

#[test]
fn a_one_way_pair_refuses_the_wrong_direction_and_carries_the_right_one() {
    let (reader, writer) = pipe_oneway().unwrap();
    assert!(reader.is_readable() && !reader.is_writable());
    assert!(writer.is_writable() && !writer.is_readable());
    assert!(matches!(
        reader.send(&1u8),
        Err(Error::WrongDirection { .. })
    ));
    assert!(matches!(
        writer.recv::<u8>(),
        Err(Error::WrongDirection { .. })
    ));
    assert!(matches!(
        writer.poll(Some(Duration::ZERO)),
        Err(Error::WrongDirection { .. })
    ));
    let p = start(send_from_the_child, (writer,));
    assert_eq!(reader.recv::<String>().unwrap(), "from the child");
    assert_eq!(p.join().unwrap(), 0);
    // The child has ended and the parent dropped its copy of the writer at start.
    assert!(reader.recv::<String>().unwrap_err().is_eof());
}

const BIG_MESSAGE: usize = 64 << 20;

fn send_a_64_mib_pattern(end: Connection) {
    let big: Vec<u8> = (0..BIG_MESSAGE).map(|i| (i % 251) as u8).collect();
    end.send_bytes(&big).unwrap();
}

#[test]
fn a_message_of_64_mib_crosses_between_processes_intact() {
    let (parent_end, child_end) = pipe().unwrap();
    let p = start(send_a_64_mib_pattern, (child_end,));
    let got = parent_end.recv_bytes().unwrap();
    assert_eq!(got.len(), BIG_MESSAGE);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(p.join().unwrap(), 0);
}

/// Holds `end`, says so, and sleeps until killed.
fn hold_and_sleep(end: Connection, holding: Event) {
    let _keep = end;
    holding.set();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn recv_from_a_peer_killed_before_sending_is_end_of_file() {
    let (parent_end, child_end) = pipe().unwrap();
    let holding = Event::new().unwrap();
    let p = start(hold_and_sleep, (child_end, holding.clone()));
    // Killed while it holds the end (a spawned child would otherwise often die before its
    // end even reached it).
    assert!(holding.wait_timeout(NEVER));
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
    assert!(matches!(parent_end.recv::<u8>(), Err(Error::Eof)));
    assert!(
        parent_end.poll(Some(Duration::ZERO)).unwrap(),
        "EOF is ready"
    );
}

/// Far more than a socket buffer holds.
const BLOCKING_MESSAGE: usize = 8 << 20;

fn send_a_message_larger_than_the_socket_buffer(end: Connection) {
    end.send_bytes(&vec![7u8; BLOCKING_MESSAGE]).unwrap();
}

#[test]
fn a_peer_killed_in_the_middle_of_a_message_gives_end_of_file_in_message() {
    let (parent_end, child_end) = pipe().unwrap();
    let p = start(send_a_message_larger_than_the_socket_buffer, (child_end,));
    // Once bytes are there, the child is blocked in the middle of its send.
    assert!(parent_end.poll(None).unwrap());
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), -9);
    match parent_end.recv_bytes() {
        Err(Error::EofInMessage { received, expected }) => {
            assert_eq!(expected, BLOCKING_MESSAGE + 8);
            assert!(received < expected);
        }
        other => panic!("expected EofInMessage, got {other:?}"),
    }
}

/// Sends to closed peers with SIGPIPE's default action, which kills; exits 0 when both
/// sends returned end of file.
fn send_to_closed_peers_with_sigpipe_at_its_default() {
    // SAFETY: resetting a signal's disposition to its default; no handler involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (a, b) = pipe().unwrap();
    drop(b);
    let eof = a.send(&1u64).is_err_and(|e| e.is_eof());
    let (reader, writer) = pipe_oneway().unwrap();
    drop(reader);
    let eof_oneway = writer.send_bytes(&[1; 100_000]).is_err_and(|e| e.is_eof());
    exit(if eof && eof_oneway { 0 } else { 1 });
}

#[test]
fn send_to_a_closed_peer_is_an_error_not_a_sigpipe() {
    // The default action of SIGPIPE kills; a send must not raise it.
    let p = start(send_to_closed_peers_with_sigpipe_at_its_default, ());
    assert_eq!(p.join().unwrap(), 0, "-13 would mean SIGPIPE killed it");
}

#[test]
fn a_message_over_the_senders_limit_is_refused_and_nothing_is_sent() {
    let (a, b) = pipe().unwrap();
    let a = a.with_limit(16);
    assert!(matches!(
        a.send(&vec![0u8; 100]),
        Err(Error::TooLarge { limit: 16, .. })
    ));
    assert!(matches!(
        a.send_bytes(&[0; 17]),
        Err(Error::TooLarge { len: 17, limit: 16 })
    ));
    assert!(!b.poll(Some(Duration::ZERO)).unwrap(), "nothing was sent");
    a.send(&5u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 5);
}

fn send_300_000_bytes_then_after(end: Connection) {
    end.send_bytes(&vec![1u8; 300_000]).unwrap();
    end.send("after").unwrap();
}

#[test]
fn a_message_over_the_receivers_limit_is_skipped_and_the_next_one_arrives() {
    let (a, b) = pipe().unwrap();
    let b = b.with_limit(1000);
    let p = start(send_300_000_bytes_then_after, (a,));
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::TooLarge {
            len: 300_000,
            limit: 1000
        })
    ));
    assert_eq!(b.recv::<String>().unwrap(), "after");
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn bytes_that_do_not_decode_are_an_error_for_that_message_only() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(&[0xFF, 0xFF, 0xFF]).unwrap();
    assert!(matches!(b.recv::<String>(), Err(Error::Codec(_))));
    // A value followed by bytes that belong to nothing.
    a.send_bytes(&[1, 2]).unwrap();
    assert!(matches!(b.recv::<u8>(), Err(Error::Codec(_))));
    // The wrong type: a string where a u64 is expected may decode as garbage or fail, but
    // never panics; the next message is intact either way.
    a.send("not a number").unwrap();
    let _ = b.recv::<u64>();
    a.send(&9u64).unwrap();
    assert_eq!(b.recv::<u64>().unwrap(), 9);
}

#[test]
fn a_huge_declared_length_with_a_closed_peer_is_end_of_file_not_an_allocation() {
    let (a, b) = pipe().unwrap();
    // Under the limit: 60 MiB announced, 3 bytes sent, then the peer is gone.
    let mut frame = (60u64 << 20).to_le_bytes().to_vec();
    frame.extend_from_slice(b"abc");
    write_raw(&a, &frame);
    drop(a);
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::EofInMessage {
            received: 11,
            expected
        }) if expected == (60 << 20) + 8
    ));

    // Over any limit: u64::MAX announced.
    let (a, b) = pipe().unwrap();
    write_raw(&a, &u64::MAX.to_le_bytes());
    drop(a);
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::EofInMessage { received: 8, .. })
    ));
}

#[test]
fn a_truncated_header_is_end_of_file_in_message() {
    let (a, b) = pipe().unwrap();
    write_raw(&a, &[1, 0, 0]);
    drop(a);
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::EofInMessage {
            received: 3,
            expected: 8
        })
    ));
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

fn send_one(end: Connection) {
    end.send(&1u8).unwrap();
}

#[test]
fn poll_waits_for_a_message_and_honours_its_timeout() {
    let (a, b) = pipe().unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    assert!(!b.poll(Some(Duration::from_millis(5))).unwrap());
    let p = start(send_one, (a,));
    assert!(b.poll(None).unwrap());
    assert_eq!(b.recv::<u8>().unwrap(), 1);
    assert_eq!(p.join().unwrap(), 0);
    // A timeout too large to add to the clock waits as without one.
    assert!(b.poll(Some(Duration::MAX)).unwrap(), "the peer has ended");
}

#[test]
fn an_empty_message_is_a_message() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(&[]).unwrap();
    a.send(&()).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), Vec::<u8>::new());
    b.recv::<()>().unwrap();
}

/// Sends 0..1000, and after every hundredth a large message among the small ones: it starts
/// in the same read as others.
fn send_many_small_and_some_large(end: Connection) {
    for i in 0..1000u32 {
        end.send(&i).unwrap();
        if i % 100 == 0 {
            end.send_bytes(&vec![(i % 256) as u8; 200_000]).unwrap();
        }
    }
}

#[test]
fn many_messages_read_together_come_out_one_by_one_and_intact() {
    let (a, b) = pipe().unwrap();
    let p = start(send_many_small_and_some_large, (a,));
    for i in 0..1000u32 {
        assert_eq!(b.recv::<u32>().unwrap(), i);
        if i % 100 == 0 {
            let big = b.recv_bytes().unwrap();
            assert_eq!(big.len(), 200_000);
            assert!(big.iter().all(|&x| x == (i % 256) as u8));
        }
    }
    assert_eq!(p.join().unwrap(), 0);
    assert!(b.recv::<u32>().unwrap_err().is_eof());
}

// Pinned to Fork: the subject is what a forked child inherits besides what its closure
// captured (the crate docs' "Ends inherited through fork"), and only a copy of this process
// can run a closure (under Spawn or ForkServer, `start()` refuses it with ClosureNeedsFork).
#[test]
fn a_forked_child_holds_copies_of_the_ends_its_closure_did_not_capture() {
    let (parent_end, child_end) = pipe().unwrap();
    let (kept, not_captured) = pipe().unwrap();
    let mut child = Process::new(move || {
        // Ends when the parent says so.
        let _: () = child_end.recv().unwrap();
    })
    .with_start_method(StartMethod::Fork);
    child.start().unwrap();
    drop(not_captured);
    // The child's copy of `not_captured` is still open: no end of file while it lives.
    assert!(!kept.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(child.is_alive());
    parent_end.send(&()).unwrap();
    assert_eq!(child.join().unwrap(), 0);
    // Its copy went with it.
    assert!(kept.recv::<()>().unwrap_err().is_eof());
    // The other way round: `start` closed the parent's copy of the captured end.
    assert!(parent_end.recv::<()>().unwrap_err().is_eof());
}

/// Ends when the parent says so (or closes its end).
fn wait_for_the_word(end: Connection) {
    let _ = end.recv::<()>();
}

/// A child started from a target is given its arguments' ends; a forked one also holds a
/// copy of every other end its parent had open, a spawned or served one holds nothing more.
/// Under every method the parent sees end of file on the child's conversation once the
/// child has ended: `start` closed the parent's copy of the end it gave.
#[test]
fn a_child_holds_the_parents_other_ends_only_when_it_is_forked() {
    let (parent_end, child_end) = pipe().unwrap();
    let (kept, not_given) = pipe().unwrap();
    let child = start(wait_for_the_word, (child_end,));
    drop(not_given);
    match child.start_method() {
        StartMethod::Fork => {
            // The child's copy of `not_given` is still open.
            assert!(!kept.poll(Some(Duration::from_millis(100))).unwrap());
        }
        StartMethod::Spawn | StartMethod::ForkServer => {
            // The child never had `not_given`: end of file now, while it still runs.
            assert!(kept.recv::<()>().unwrap_err().is_eof());
        }
    }
    assert!(child.is_alive(), "the child waits for the word");
    parent_end.send(&()).unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert!(kept.recv::<()>().unwrap_err().is_eof());
    assert!(parent_end.recv::<()>().unwrap_err().is_eof());
}
