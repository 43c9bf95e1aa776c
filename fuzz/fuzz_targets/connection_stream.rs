//! A connection's receiver on whatever a peer writes: the input is cut into writes, each
//! with some descriptors attached or none, and the receiver takes messages (as bytes, and
//! as values holding handles) until end of file. It may not panic or hang, and every
//! descriptor that arrived is closed or handed out: none stays open in the receiver.
//!
//! ```text
//! cargo xtask fuzz --only connection_stream --seconds 300
//! ```

#![no_main]

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use libfuzzer_sys::fuzz_target;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use proc_ipc::{Error, pipe};
use proc_sync::Event;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fuzz_target!(|data: &[u8]| {
    let (peer, ours) = pipe().unwrap();
    let ours = ours.with_limit(1 << 12);
    let (read, write) = std::io::pipe().unwrap();
    let (read, write) = (OwnedFd::from(read), OwnedFd::from(write));
    let before = open_fds();
    // Each write: a byte that says how long it is (1 to 64 bytes) and how many descriptors
    // go with it (0 to 3), then its bytes. The socket's buffer holds far more than the
    // longest input, so every write goes in before the receiver starts.
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let len = (usize::from(op & 0x3f) + 1).min(tail.len());
        if len == 0 {
            break;
        }
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        let fds: Vec<i32> = (0..op >> 6).map(|_| read.as_raw_fd()).collect();
        let control = [ControlMessage::ScmRights(&fds)];
        let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &control };
        let sent = sendmsg::<()>(
            peer.as_fd().as_raw_fd(),
            &[IoSlice::new(bytes)],
            control,
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        if sent.is_err() {
            break;
        }
    }
    drop(peer);
    let mut as_value = data.first().is_some_and(|b| b & 1 == 1);
    let mut handed_out = Vec::new();
    for _ in 0..=data.len() {
        let got = if as_value {
            ours.recv::<(u8, Vec<Event>)>()
                .map(|(_, events)| handed_out.extend(events))
        } else {
            ours.recv_bytes().map(drop)
        };
        match got {
            Err(e) if e.is_eof() => break,
            Err(Error::Io { .. }) => panic!("{got:?}"),
            _ => {}
        }
        as_value = !as_value;
    }
    drop(handed_out);
    drop(ours);
    assert_eq!(open_fds() + 2, before, "a received descriptor stayed open");
    drop((read, write));
});
