//! The rest of Python's `Connection` surface: `close` / `closed`, `send_bytes` of a range,
//! `recv_bytes` with a maximum length, and `recv_bytes_into` a buffer in place.

mod common;

use common::{NEVER, start};
use proc_ipc::{Connection, Error, pipe, pipe_oneway};

/// Patterned bytes, so that a misplaced or lost byte shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Sends `messages` from another thread (a large one fills the socket's buffer until it is
/// received); the thread gives the connection back when done.
fn send_meanwhile(end: Connection, messages: Vec<Vec<u8>>) -> std::thread::JoinHandle<Connection> {
    std::thread::spawn(move || {
        for message in &messages {
            end.send_bytes(message).unwrap();
        }
        end
    })
}

#[test]
fn a_closed_connection_refuses_every_operation_with_a_closed_error() {
    let (a, _b) = pipe().unwrap();
    assert!(!a.closed());
    a.close();
    assert!(a.closed());
    let closed = |r: Result<(), Error>| matches!(r, Err(Error::Closed { what: "connection" }));
    assert!(closed(a.send(&1u8)));
    assert!(closed(a.send_bytes(b"x")));
    assert!(closed(a.send_bytes_range(b"xy", 0, 1)));
    assert!(closed(a.recv::<u8>().map(drop)));
    assert!(closed(a.recv_bytes().map(drop)));
    assert!(closed(a.recv_bytes_max(10).map(drop)));
    assert!(closed(a.recv_bytes_into(&mut Vec::new()).map(drop)));
    assert!(closed(a.recv_bytes_into_slice(&mut [0; 4], 0).map(drop)));
    assert!(closed(a.poll(Some(std::time::Duration::ZERO)).map(drop)));
    let shown = a.send_bytes(b"x").unwrap_err().to_string();
    assert!(shown.contains("closed"), "{shown}");
}

#[test]
fn closing_twice_is_harmless_and_a_closed_end_does_not_travel() {
    let (a, b) = pipe().unwrap();
    a.close();
    a.close();
    assert!(a.closed());
    assert!(b.send(&a).is_err(), "a closed end cannot be sent");
}

#[test]
fn the_peer_of_a_closed_end_sees_end_of_file_after_what_was_sent_before() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(b"last words").unwrap();
    a.close();
    assert_eq!(b.recv_bytes().unwrap(), b"last words");
    assert!(b.recv_bytes().unwrap_err().is_eof());
    assert!(b.send_bytes(b"anyone?").unwrap_err().is_eof());
}

#[test]
fn closing_drops_what_was_received_and_not_handed_out() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(b"one").unwrap();
    a.send_bytes(b"two").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"one"); // "two" is likely buffered now
    b.close();
    assert!(matches!(b.recv_bytes(), Err(Error::Closed { .. })));
}

fn close_and_wait(end: Connection, done: Connection) {
    end.close();
    done.send(&()).unwrap();
    // Stay alive: the parent's end of file must come from close, not from the exit.
    let _ = done.poll(Some(NEVER));
}

#[test]
fn closing_in_a_child_gives_end_of_file_in_the_parent_while_the_child_lives() {
    let (parent_end, child_end) = pipe().unwrap();
    let (done_parent, done_child) = pipe().unwrap();
    let p = start(close_and_wait, (child_end, done_child));
    done_parent.recv::<()>().unwrap();
    assert!(parent_end.poll(Some(NEVER)).unwrap());
    assert!(parent_end.recv_bytes().unwrap_err().is_eof());
    done_parent.send(&()).unwrap();
    assert_eq!(p.join().unwrap(), 0);
}

#[test]
fn a_one_way_end_refuses_the_new_operations_of_the_wrong_direction() {
    let (reader, writer) = pipe_oneway().unwrap();
    let wrong = |r: Result<(), Error>| matches!(r, Err(Error::WrongDirection { .. }));
    assert!(wrong(reader.send_bytes_range(b"abc", 0, 1)));
    assert!(wrong(writer.recv_bytes_max(10).map(drop)));
    assert!(wrong(
        writer.recv_bytes_into_slice(&mut [0; 4], 0).map(drop)
    ));
}

#[test]
fn send_bytes_range_sends_exactly_the_range() {
    let (a, b) = pipe().unwrap();
    let buf = pattern(200_000, 7);
    let sent = buf.clone();
    let sender = std::thread::spawn(move || {
        a.send_bytes_range(&sent, 0, 0).unwrap();
        a.send_bytes_range(&sent, 13, 150_000).unwrap();
        a.send_bytes_range(&sent, sent.len(), 0).unwrap();
    });
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), buf[13..150_013]);
    assert_eq!(b.recv_bytes().unwrap(), b"");
    sender.join().unwrap();
}

#[test]
fn send_bytes_range_outside_the_buffer_is_refused_and_sends_nothing() {
    let (a, b) = pipe().unwrap();
    let buf = [1u8, 2, 3, 4];
    for (offset, size) in [(5, 0), (4, 1), (0, 5), (2, usize::MAX), (usize::MAX, 1)] {
        match a.send_bytes_range(&buf, offset, size) {
            Err(Error::OutOfRange {
                offset: o,
                size: s,
                len: 4,
            }) if (o, s) == (offset, size) => {}
            other => panic!("({offset}, {size}): expected OutOfRange, got {other:?}"),
        }
    }
    assert!(
        !b.poll(Some(std::time::Duration::ZERO)).unwrap(),
        "nothing sent"
    );
}

#[test]
fn recv_bytes_max_refuses_a_longer_message_and_goes_on_with_the_next() {
    let (a, b) = pipe().unwrap();
    let big = pattern(300_000, 1);
    let sender = send_meanwhile(
        a,
        vec![
            big.clone(),
            b"12345".to_vec(),
            b"123456".to_vec(),
            big.clone(),
        ],
    );
    assert!(matches!(
        b.recv_bytes_max(5),
        Err(Error::TooLarge {
            len: 300_000,
            limit: 5
        })
    ));
    assert_eq!(
        b.recv_bytes_max(5).unwrap(),
        b"12345",
        "exactly the maximum fits"
    );
    assert!(matches!(
        b.recv_bytes_max(5),
        Err(Error::TooLarge { len: 6, limit: 5 })
    ));
    assert_eq!(b.recv_bytes_max(300_000).unwrap(), big);
    sender.join().unwrap();
}

#[test]
fn recv_bytes_max_never_raises_the_connections_own_limit() {
    let (a, b) = pipe().unwrap();
    let b = b.with_limit(3);
    a.send_bytes(b"four").unwrap();
    assert!(matches!(
        b.recv_bytes_max(100),
        Err(Error::TooLarge { len: 4, limit: 3 })
    ));
}

#[test]
fn recv_bytes_into_slice_writes_the_message_in_place_at_the_offset() {
    let (a, b) = pipe().unwrap();
    // Larger than what one read into the inbox takes: the rest goes straight into buf.
    let big = pattern(1 << 20, 9);
    let mut buf = vec![0xEE; (1 << 20) + 10];
    let a = send_meanwhile(a, vec![big.clone()]);
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 10).unwrap(), 1 << 20);
    assert_eq!(buf[..10], [0xEE; 10], "bytes before the offset untouched");
    assert!(buf[10..] == big[..]);
    let a = a.join().unwrap();
    a.send_bytes(b"xyz").unwrap();
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 1).unwrap(), 3);
    assert_eq!(
        &buf[..5],
        [0xEE, b'x', b'y', b'z', 0xEE],
        "nothing past the message changes"
    );
}

#[test]
fn recv_bytes_into_slice_of_an_empty_message_fits_at_the_very_end() {
    let (a, b) = pipe().unwrap();
    let mut buf = [0u8; 4];
    a.send_bytes(b"").unwrap();
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 4).unwrap(), 0);
}

#[test]
fn a_message_longer_than_the_room_is_buffer_too_short_with_the_whole_message() {
    let (a, b) = pipe().unwrap();
    let big = pattern(300_000, 3);
    let sender = send_meanwhile(a, vec![big.clone(), b"next".to_vec()]);
    let mut buf = vec![0x55u8; 300_000];
    match b.recv_bytes_into_slice(&mut buf, 1) {
        Err(Error::BufferTooShort { message }) => assert!(message == big),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    assert!(
        buf.iter().all(|&x| x == 0x55),
        "the buffer is left as it was"
    );
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 0).unwrap(), 4);
    assert_eq!(&buf[..4], b"next");
    sender.join().unwrap();
}

#[test]
fn an_offset_past_the_end_of_the_buffer_is_refused_and_receives_nothing() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(b"kept").unwrap();
    let mut buf = [0u8; 4];
    assert!(matches!(
        b.recv_bytes_into_slice(&mut buf, 5),
        Err(Error::OutOfRange {
            offset: 5,
            len: 4,
            ..
        })
    ));
    assert_eq!(b.recv_bytes().unwrap(), b"kept");
}

#[test]
fn recv_bytes_into_slice_over_the_limit_is_too_large_and_skipped() {
    let (a, b) = pipe().unwrap();
    let b = b.with_limit(8);
    a.send_bytes(&[1; 9]).unwrap();
    a.send_bytes(&[2; 8]).unwrap();
    let mut buf = [0u8; 100];
    assert!(matches!(
        b.recv_bytes_into_slice(&mut buf, 0),
        Err(Error::TooLarge { len: 9, limit: 8 })
    ));
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 0).unwrap(), 8);
    assert_eq!(buf[..8], [2; 8]);
}

fn send_big_then_small(end: Connection) {
    end.send_bytes(&pattern(3 << 20, 5)).unwrap();
    end.send_bytes(b"after").unwrap();
}

#[test]
fn a_large_message_from_another_process_arrives_in_place() {
    let (parent_end, child_end) = pipe().unwrap();
    let p = start(send_big_then_small, (child_end,));
    let mut buf = vec![0u8; 4 << 20];
    assert_eq!(
        parent_end.recv_bytes_into_slice(&mut buf, 0).unwrap(),
        3 << 20
    );
    assert!(buf[..3 << 20] == pattern(3 << 20, 5)[..]);
    assert_eq!(parent_end.recv_bytes_max(5).unwrap(), b"after");
    assert_eq!(p.join().unwrap(), 0);
}
