//! The side channel of a queue: messages too large for its ring travel as memory files.
//!
//! The producer writes the encoded message into a new memory file (`memfd_create`) and
//! sends its descriptor, with the message's id, as one datagram over a Unix datagram socket
//! pair that every holder of the queue shares (`SCM_RIGHTS`); the ring gets a small
//! hand-over frame naming the id. The datagram lives in the kernel's socket buffer, not in
//! the producer, so the message survives its producer's exit: a `put` that returned is
//! delivered.
//!
//! Datagrams come out in the order they went in. A consumer that takes a hand-over frame
//! looks at the next datagram first ([`SideChannel::peek`]): an older id is an
//! orphan (its producer died between sending it and publishing the frame) and is dropped;
//! a newer id, or none, means this frame's datagram was taken by a consumer that died
//! before it could advance the ring, and the message is gone with that consumer.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, recv, sendmsg, socketpair,
};
use proc_core::internal::fd_passing::recv_with_fds;
use proc_core::internal::memory_file::{self, FIXED_CONTENTS};

/// A received large message: mapped from its sealed memory file, or copied out of it.
pub(crate) enum Message {
    Mapped(memmap2::Mmap),
    Copied(Vec<u8>),
}

impl std::ops::Deref for Message {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Message::Mapped(map) => map,
            Message::Copied(bytes) => bytes,
        }
    }
}

/// The datagram socket pair: producers send on one end, consumers receive on the other.
#[derive(Debug)]
pub(crate) struct SideChannel {
    send_end: OwnedFd,
    recv_end: OwnedFd,
}

/// The most descriptors one datagram carries: the kernel's limit per message. A datagram
/// carries the message's memory file, then the descriptors of the handles the item holds
/// (at most `MAX_FDS - 1` of them).
pub(crate) const MAX_FDS: usize = proc_core::internal::fd_passing::MAX_FDS;

impl SideChannel {
    pub(crate) fn new() -> io::Result<Self> {
        let (send_end, recv_end) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        Ok(SideChannel { send_end, recv_end })
    }

    /// The two ends, for sending the channel to another process.
    pub(crate) fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.send_end.as_fd(), self.recv_end.as_fd()]
    }

    /// The channel of another process, received as its two ends. They must be Unix datagram
    /// sockets: anything else is refused.
    pub(crate) fn from_fds(send_end: OwnedFd, recv_end: OwnedFd) -> io::Result<Self> {
        for end in [&send_end, &recv_end] {
            let kind = nix::sys::socket::getsockopt(end, nix::sys::socket::sockopt::SockType)?;
            if kind != SockType::Datagram {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a queue's side channel must be a datagram socket",
                ));
            }
        }
        Ok(SideChannel { send_end, recv_end })
    }

    /// Writes `message` into a new memory file, sealed against any further change, ready
    /// to be sent.
    pub(crate) fn file_with(message: &[u8]) -> io::Result<OwnedFd> {
        let mut file = memory_file::create(c"multiproc-queue-message")?;
        file.write_all(message)?;
        memory_file::seal(&file, FIXED_CONTENTS)?;
        Ok(OwnedFd::from(file))
    }

    /// The bytes of a received memory file, which must hold exactly `len` bytes. A sealed
    /// file (as [`file_with`](Self::file_with) makes them) is mapped, not copied; one that
    /// is not sealed could shrink under the mapping (a SIGBUS), so it is copied.
    pub(crate) fn read_file(file: OwnedFd, len: usize) -> io::Result<Message> {
        let seen = memory_file::inspect(&file)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if seen.size != len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a large item's memory file holds {} bytes, not {len}",
                    seen.size
                ),
            ));
        }
        let file = File::from(file);
        if len > 0 && seen.seals.contains(FIXED_CONTENTS) {
            // SAFETY: the file is sealed against shrinking, growing and writing, so the
            // mapped bytes can neither change nor vanish while the map lives.
            let map = unsafe { memmap2::Mmap::map(&file) }?;
            return Ok(Message::Mapped(map));
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)?;
        Ok(Message::Copied(bytes))
    }

    /// Sends `file` as message `id`, with `carried`, the descriptors of the handles the
    /// item holds (at most `MAX_FDS - 1`). `Err(WouldBlock)` when the socket's buffer is
    /// full: the caller waits for consumers as it does for a full ring.
    pub(crate) fn send(&self, id: u64, file: &OwnedFd, carried: &[OwnedFd]) -> io::Result<()> {
        let payload = id.to_le_bytes();
        let fds: Vec<RawFd> = std::iter::once(file)
            .chain(carried)
            .map(AsRawFd::as_raw_fd)
            .collect();
        let control = [ControlMessage::ScmRights(&fds)];
        loop {
            match sendmsg::<()>(
                self.send_end.as_raw_fd(),
                &[IoSlice::new(&payload)],
                &control,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                // ETOOMANYREFS: too many descriptors in flight for this user; as full.
                Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::ETOOMANYREFS) => {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next datagram, looked at and left in place (`MSG_PEEK`): its id (0 if
    /// malformed: ids start at 1, so it reads as an orphan) and duplicates of its
    /// descriptors, the memory file first, then those of the handles its item holds.
    /// `None` when there is none.
    ///
    /// A process at its limit of open files gets those it could open, and
    /// [`Peeked::cut_off`]: the datagram stays, whole, for a later look here or in another
    /// process. Taking it is [`discard`](Self::discard): the duplicates are its descriptors.
    pub(crate) fn peek(&self) -> io::Result<Option<Peeked>> {
        let mut id = [0u8; 8];
        let mut fds = Vec::new();
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        let peeked = match recv_with_fds(self.recv_end.as_fd(), &mut id, &mut fds, flags) {
            Ok(peeked) => peeked,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = match (peeked.bytes, peeked.bytes_cut_off) {
            (8, false) => u64::from_le_bytes(id),
            _ => 0,
        };
        Ok(Some(Peeked {
            id,
            fds,
            cut_off: peeked.fds_cut_off,
        }))
    }

    /// Takes the next datagram without opening any of its descriptors (the kernel closes
    /// them); its id (0 if malformed), `None` when there is none.
    pub(crate) fn discard(&self) -> io::Result<Option<u64>> {
        let mut id = [0u8; 8];
        loop {
            // No control buffer: the datagram's descriptors are dropped, not opened.
            match recv(
                self.recv_end.as_raw_fd(),
                &mut id,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Ok(8) => return Ok(Some(u64::from_le_bytes(id))),
                Ok(_) => return Ok(Some(0)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A datagram looked at by [`SideChannel::peek`].
pub(crate) struct Peeked {
    /// Its id; 0 if it is not one.
    pub(crate) id: u64,
    /// Duplicates of its descriptors that this process could open.
    pub(crate) fds: Vec<OwnedFd>,
    /// It carried more descriptors than this process could open.
    pub(crate) cut_off: bool,
}
