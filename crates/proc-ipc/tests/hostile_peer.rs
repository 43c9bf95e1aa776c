//! A peer that does not play by the protocol: raw `sendmsg` with crafted headers and
//! descriptors on a connection, and forged queue and connection handles. Whatever it sends,
//! the receiver gets an error for that message only, keeps no descriptor it was not
//! promised, never takes one message's descriptor for another's, and goes on.

mod common;

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use common::open_fds;
use multiproc_test_support::fds::one_at_a_time;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use proc_core::codec;
use proc_core::internal::handle_wire::{self, Descriptor, HandleKind};
use proc_ipc::{Connection, Error, Queue, pipe};
use proc_sync::Event;

/// A frame's header as a connection writes it: the payload length, and the descriptor
/// count in the top 16 bits.
fn header(len: usize, fds: usize) -> [u8; 8] {
    ((len as u64) | ((fds as u64) << 48)).to_le_bytes()
}

/// Sends `bytes` with `fds` attached, in one call.
fn send_raw(conn: &Connection, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let control = [ControlMessage::ScmRights(&raw)];
    let control: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &control };
    let sent = sendmsg::<()>(
        conn.as_fd().as_raw_fd(),
        &[IoSlice::new(bytes)],
        control,
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
    assert_eq!(sent, bytes.len());
}

/// A frame of `payload` announcing `announced` descriptors, with `fds` attached.
fn send_frame(conn: &Connection, payload: &[u8], announced: usize, fds: &[BorrowedFd<'_>]) {
    let mut frame = header(payload.len(), announced).to_vec();
    frame.extend_from_slice(payload);
    send_raw(conn, &frame, fds);
}

fn descriptor_mismatch(got: Result<String, Error>, announced: usize, arrived: usize) {
    match got {
        Err(Error::DescriptorMismatch {
            announced: a,
            arrived: b,
        }) if (a, b) == (announced, arrived) => {}
        other => panic!("expected a mismatch of {announced} and {arrived}, got {other:?}"),
    }
}

#[test]
fn descriptors_a_frame_does_not_announce_are_closed_and_the_frame_refused() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let (read, _write) = std::io::pipe().unwrap();
    let payload = codec::encode("hello").unwrap();
    let before = open_fds();
    send_frame(&peer, &payload, 0, &[read.as_fd(), read.as_fd()]);
    peer.send("next").unwrap();
    descriptor_mismatch(ours.recv::<String>(), 0, 2);
    assert_eq!(
        open_fds(),
        before,
        "the unannounced descriptors were closed"
    );
    assert_eq!(ours.recv::<String>().unwrap(), "next");
}

#[test]
fn thousands_of_unannounced_descriptors_never_accumulate() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let (read, _write) = std::io::pipe().unwrap();
    let payload = codec::encode(&7u32).unwrap();
    let before = open_fds();
    for _ in 0..2000 {
        send_frame(&peer, &payload, 0, &[read.as_fd()]);
        assert!(ours.recv::<u32>().is_err());
    }
    assert_eq!(open_fds(), before);
}

#[test]
fn a_stray_descriptor_is_never_taken_for_the_next_message_s_handle() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let (stray, real) = (Event::new().unwrap(), Event::new().unwrap());
    // The stray event's descriptor, attached to a frame that announces none...
    let stray_parcel = handle_wire::encode(&stray).unwrap();
    let payload = codec::encode(&1u8).unwrap();
    send_frame(&peer, &payload, 0, &[stray_parcel.fds[0].as_fd()]);
    // ... then the real event in a well-formed message.
    peer.send(&real).unwrap();
    assert!(ours.recv::<u8>().is_err());
    let received: Event = ours.recv().unwrap();
    received.set();
    assert!(real.is_set(), "the received event is the one sent with it");
    assert!(
        !stray.is_set(),
        "the stray descriptor was not taken for the event"
    );
}

#[test]
fn a_frame_with_fewer_descriptors_than_announced_is_refused_and_the_next_arrives() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let event = Event::new().unwrap();
    let parcel = handle_wire::encode(&(event.clone(), event.clone())).unwrap();
    let before = open_fds();
    send_frame(&peer, &parcel.bytes, 2, &[parcel.fds[0].as_fd()]);
    peer.send("next").unwrap();
    descriptor_mismatch(ours.recv::<String>(), 2, 1);
    assert_eq!(open_fds(), before);
    assert_eq!(ours.recv::<String>().unwrap(), "next");
}

#[test]
fn more_descriptors_within_a_frame_than_its_header_announces_are_refused() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let event = Event::new().unwrap();
    let parcel = handle_wire::encode(&event).unwrap();
    let extra = parcel.fds[0].try_clone().unwrap();
    let before = open_fds();
    // The header with the one descriptor it announces, then the payload with another.
    // (Descriptors anywhere within a frame are that frame's: the receiver cannot tell which
    // of its bytes a read that took several of them met them at.)
    send_raw(
        &peer,
        &header(parcel.bytes.len(), 1),
        &[parcel.fds[0].as_fd()],
    );
    send_raw(&peer, &parcel.bytes, &[extra.as_fd()]);
    peer.send("next").unwrap();
    let got = ours.recv::<Event>().map(|_| String::new());
    assert!(
        matches!(
            got,
            Err(Error::DescriptorMismatch {
                announced: 1,
                arrived: 2
            })
        ),
        "{got:?}"
    );
    assert_eq!(open_fds(), before);
    assert_eq!(ours.recv::<String>().unwrap(), "next");
}

#[test]
fn a_large_frame_s_descriptors_come_with_it_and_not_with_the_frames_around_it() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let event = Event::new().unwrap();
    let blob = vec![7u8; 200_000];
    // Several frames in the socket at once, the handles in the middle one, behind a
    // payload larger than one read.
    let sender = {
        let (blob, event) = (blob.clone(), event.clone());
        std::thread::spawn(move || {
            peer.send_bytes(&blob).unwrap();
            peer.send(&(blob.clone(), event)).unwrap();
            peer.send_bytes(&blob).unwrap();
        })
    };
    assert_eq!(ours.recv_bytes().unwrap(), blob);
    let (got, received): (Vec<u8>, Event) = ours.recv().unwrap();
    assert_eq!(got, blob);
    received.set();
    assert!(event.is_set());
    assert_eq!(ours.recv_bytes().unwrap(), blob);
    sender.join().unwrap();
}

#[test]
fn a_descriptor_that_is_not_the_handle_it_claims_is_an_error_for_that_message() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let (read, _write) = std::io::pipe().unwrap();
    let fd = OwnedFd::from(read);
    // A pipe, announced as what an Event sends.
    peer.send(&(HandleKind::new("Event"), Descriptor::from(fd)))
        .unwrap();
    peer.send("next").unwrap();
    assert!(matches!(ours.recv::<Event>(), Err(Error::Codec(_))));
    assert_eq!(ours.recv::<String>().unwrap(), "next");
}

#[test]
fn a_handle_received_as_another_kind_is_a_decode_error_that_names_both() {
    let _serial = one_at_a_time();
    let (peer, ours) = pipe().unwrap();
    let queue: Queue<u32> = Queue::new(0).unwrap();
    let (a, _b) = pipe().unwrap();
    peer.send(&queue).unwrap();
    peer.send(&a).unwrap();
    let err = ours.recv::<Connection>().unwrap_err();
    assert!(
        err.to_string()
            .contains("received a Queue where a Connection was expected"),
        "{err}"
    );
    let err = ours.recv::<Queue<u32>>().unwrap_err();
    assert!(
        err.to_string()
            .contains("received a Connection where a Queue was expected"),
        "{err}"
    );
}

/// Decodes a queue handle whose settings are `settings` (ring bytes, maxsize, item limit,
/// handed over) and whose descriptors are `fds`, as a receiver would.
fn forged_queue(fds: Vec<OwnedFd>, settings: (u64, u64, u64, bool)) -> String {
    let bytes = codec::encode(&("Queue", 0u32, 1u32, 2u32, 3u32, settings)).unwrap();
    match handle_wire::decode::<Queue<u32>>(&bytes, 1 << 10, fds) {
        Ok(_) => "accepted".to_string(),
        Err(e) => e.to_string(),
    }
}

/// The four descriptors of a real queue with a ring of `ring` bytes.
fn queue_fds(ring: usize) -> Vec<OwnedFd> {
    let queue: Queue<u32> = Queue::builder().ring_bytes(ring).build().unwrap();
    handle_wire::encode(&queue).unwrap().fds
}

#[test]
fn a_queue_handle_with_settings_no_builder_makes_is_refused() {
    let _serial = one_at_a_time();
    // Well formed, as a control.
    assert_eq!(
        forged_queue(queue_fds(4096), (4096, 0, 1 << 20, false)),
        "accepted"
    );
    for (settings, why) in [
        ((0, 0, 1 << 20, false), "ring must be at least 64 bytes"),
        ((4096, 0, 0, false), "item limit must be at least 1 byte"),
        // The ring's file holds 4096 bytes of ring: a receiver that took 1024 or 8192
        // would read other places than its senders.
        (
            (1024, 0, 1 << 20, false),
            "does not hold its settings' layout",
        ),
        (
            (8192, 0, 1 << 20, false),
            "does not hold its settings' layout",
        ),
        (
            (u64::MAX, 0, 1 << 20, false),
            "does not hold its settings' layout",
        ),
    ] {
        let got = forged_queue(queue_fds(4096), settings);
        assert!(got.contains(why), "{settings:?}: {got}");
    }
}

#[test]
fn a_queue_handle_whose_descriptors_are_not_its_files_and_sockets_is_refused() {
    let _serial = one_at_a_time();
    let (read, _write) = std::io::pipe().unwrap();
    let pipe_fd = OwnedFd::from(read);
    let stream = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let settings = (4096, 0, 1 << 20, false);
    // A pipe for the ring.
    let mut fds = queue_fds(4096);
    fds[0] = pipe_fd;
    assert!(forged_queue(fds, settings).contains("not a memory file"));
    // The consumers' state and the ring swapped: sizes that do not match.
    let mut fds = queue_fds(4096);
    fds.swap(0, 1);
    assert!(forged_queue(fds, settings).contains("does not hold its settings' layout"));
    // A stream socket for the side channel.
    let mut fds = queue_fds(4096);
    fds[2] = stream.0;
    assert!(forged_queue(fds, settings).contains("datagram socket"));
    // Too few descriptors.
    let mut fds = queue_fds(4096);
    fds.truncate(3);
    assert!(forged_queue(fds, settings).contains("carries 3"));
}

#[test]
fn a_connection_handle_that_is_not_a_unix_stream_socket_is_refused() {
    let _serial = one_at_a_time();
    let (read, _write) = std::io::pipe().unwrap();
    let datagram = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Datagram,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    for fd in [OwnedFd::from(read), datagram.0] {
        let bytes = codec::encode(&("Connection", 0u32, true, true, 1024u64)).unwrap();
        let err = handle_wire::decode::<Connection>(&bytes, 1 << 10, vec![fd]).unwrap_err();
        assert!(
            err.to_string().contains("not a Unix stream socket"),
            "{err}"
        );
    }
}
