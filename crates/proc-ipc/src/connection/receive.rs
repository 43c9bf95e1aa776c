//! How a connection receives a frame: its header (in the connection's framing), then its
//! payload, into a growing `Vec` or in place into a caller's slice, with the descriptors
//! that came with it; and how a frame over the limit is read past without being stored.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::MsgFlags;
use proc_core::internal::fd_passing;

use super::Connection;
use crate::error::{Error, Result};
use crate::framing::Parsed;
use crate::inbox::{Arrival, Book, INBOX, Inbox, READ_AHEAD};

/// A frame whose header has been read: where it starts in the stream, its header's size,
/// its payload's length and the descriptors it announces.
#[derive(Clone, Copy)]
pub(super) struct Frame {
    pub(super) start: u64,
    pub(super) header: usize,
    pub(super) len: usize,
    pub(super) wanted: usize,
}

impl Connection {
    /// Reads the next frame's header. A frame over `max` bytes is read past (its
    /// descriptors closed) and reported as [`Error::TooLarge`].
    pub(super) fn next_frame(&self, inbox: &mut Inbox, max: usize) -> Result<Frame> {
        // One read usually brings the header and the whole of a small message.
        let header = loop {
            match self.framing.parse(inbox.peek()) {
                Parsed::Header(header) => break header,
                Parsed::Invalid(detail) => {
                    // What follows cannot be read in step: nothing more is read from it.
                    self.shut(inbox);
                    return Err(Error::Protocol { detail });
                }
                Parsed::Need(expected) => {
                    if self.fill(inbox)? == 0 {
                        return Err(match inbox.len() {
                            0 => Error::Eof,
                            got => {
                                inbox.take(got); // the part of a header that arrived is discarded
                                let end = inbox.book.received;
                                drop(inbox.book.settle(end - got as u64, end));
                                Error::EofInMessage {
                                    received: got,
                                    expected,
                                }
                            }
                        });
                    }
                }
            }
        };
        let start = inbox.position();
        inbox.take(header.size);
        let len = usize::try_from(header.len).unwrap_or(usize::MAX);
        if len > max {
            let buffered = inbox.len().min(len);
            inbox.take(buffered);
            let skipped = buffered as u64 + self.skip(inbox, header.len - buffered as u64)?;
            // Descriptors that came with it are closed with it.
            drop(
                inbox
                    .book
                    .settle(start, start + header.size as u64 + skipped),
            );
            if skipped < header.len {
                return Err(Error::EofInMessage {
                    received: header
                        .size
                        .saturating_add(usize::try_from(skipped).unwrap_or(usize::MAX)),
                    expected: len.saturating_add(header.size),
                });
            }
            return Err(Error::TooLarge { len, limit: max });
        }
        Ok(Frame {
            start,
            header: header.size,
            len,
            wanted: header.fds,
        })
    }

    /// Receives the payload of `frame` (its header read, its length within the limit),
    /// appended to `payload` (empty on entry).
    pub(super) fn finish_into_vec(
        &self,
        inbox: &mut Inbox,
        frame: Frame,
        payload: &mut Vec<u8>,
    ) -> Result<Vec<OwnedFd>> {
        let buffered = inbox.len().min(frame.len);
        payload.extend_from_slice(inbox.take(buffered));
        if payload.len() < frame.len {
            // The rest belongs to this message alone: read it straight into the payload.
            self.read_rest(inbox, payload, frame.len)?;
        }
        Self::settle(inbox, frame, payload.len())
    }

    /// Receives the payload of `frame` into `out`, which is exactly as long.
    pub(super) fn finish_into_slice(
        &self,
        inbox: &mut Inbox,
        frame: Frame,
        out: &mut [u8],
    ) -> Result<Vec<OwnedFd>> {
        let buffered = inbox.len().min(out.len());
        out[..buffered].copy_from_slice(inbox.take(buffered));
        let mut got = buffered;
        while got < out.len() {
            let socket = self.stream.as_fd();
            let rest = &mut out[got..];
            let read = self.read(&mut inbox.book, |fds| {
                fd_passing::recv_with_fds(socket, rest, fds, MsgFlags::empty())
            })?;
            match read {
                0 => break,
                n => got += n,
            }
        }
        Self::settle(inbox, frame, got)
    }

    /// Ends the receipt of `frame`, of which `got` payload bytes arrived: the descriptors
    /// sent with it, or the error if it was cut short or they do not match its header.
    pub(super) fn settle(inbox: &mut Inbox, frame: Frame, got: usize) -> Result<Vec<OwnedFd>> {
        let end = frame.start + (frame.header + got) as u64;
        let came = inbox.book.settle(frame.start, end);
        if got < frame.len {
            return Err(Error::EofInMessage {
                received: frame.header + got,
                expected: frame.len.saturating_add(frame.header),
            });
        }
        came.for_message(frame.wanted)
    }

    /// Reads the rest of a message straight from the socket into `payload`, until it holds
    /// `len` bytes or the peer has gone (then it holds fewer; the caller reports it).
    ///
    /// Each read takes as much as the socket holds, into room reserved ahead of it: a
    /// message arrives in a few large reads, not in many small ones into a buffer that is
    /// reallocated and copied as it grows. The room reserved ahead is bounded by what has
    /// arrived (the length came from another process): at most [`READ_AHEAD`] or as much
    /// again as the payload holds, whichever is more, so that a peer announcing a large
    /// message and sending little cannot make this end allocate much more than it sent.
    /// No read goes past this message's last byte, so descriptors sent with the next one
    /// stay in the socket.
    pub(super) fn read_rest(
        &self,
        inbox: &mut Inbox,
        payload: &mut Vec<u8>,
        len: usize,
    ) -> Result<()> {
        while payload.len() < len {
            let missing = len - payload.len();
            if payload.capacity() == payload.len() {
                payload.reserve_exact(missing.min(payload.len().max(READ_AHEAD)));
            }
            let spare = payload.spare_capacity_mut();
            let room = spare.len().min(missing);
            let spare = &mut spare[..room];
            let socket = self.stream.as_fd();
            let read = self.read(&mut inbox.book, |fds| {
                fd_passing::recv_with_fds_into(socket, spare, fds, MsgFlags::empty())
            })?;
            match read {
                0 => return Ok(()),
                // SAFETY: the read initialised the first `n` (at most `room`) spare bytes.
                n => unsafe { payload.set_len(payload.len() + n) },
            }
        }
        Ok(())
    }

    /// Reads and drops the next `count` bytes (the rest of a message over the limit);
    /// returns how many there were before the peer closed.
    pub(super) fn skip(&self, inbox: &mut Inbox, count: u64) -> Result<u64> {
        let mut scratch = vec![0; INBOX];
        let mut skipped = 0;
        while skipped < count {
            let room = usize::try_from(count - skipped).map_or(INBOX, |left| left.min(INBOX));
            let scratch = &mut scratch[..room];
            let socket = self.stream.as_fd();
            let read = self.read(&mut inbox.book, |fds| {
                fd_passing::recv_with_fds(socket, scratch, fds, MsgFlags::empty())
            })?;
            match read {
                0 => break,
                n => skipped += n as u64,
            }
        }
        Ok(skipped)
    }

    /// Reads what the socket holds now (waiting for at least one byte) into the inbox;
    /// returns how many bytes, 0 at end of file.
    pub(super) fn fill(&self, inbox: &mut Inbox) -> Result<usize> {
        inbox.make_room();
        let Inbox {
            bytes, end, book, ..
        } = inbox;
        let spare = &mut bytes[*end..];
        let socket = self.stream.as_fd();
        let n = self.read(book, |fds| {
            fd_passing::recv_with_fds(socket, spare, fds, MsgFlags::empty())
        })?;
        *end += n;
        Ok(n)
    }

    /// One read from the socket by `receive` (`fd_passing`'s receive into some buffer; at
    /// least one byte unless the peer closed: 0). The stretch of the stream it covered is
    /// counted, and descriptors that came with it are kept with that stretch (see
    /// [`Book::settle`]).
    pub(super) fn read(
        &self,
        book: &mut Book,
        receive: impl FnOnce(&mut Vec<OwnedFd>) -> io::Result<fd_passing::Received>,
    ) -> Result<usize> {
        let mut fds = Vec::new();
        // The receive tries again itself when interrupted.
        let received = match receive(&mut fds) {
            Ok(received) => received,
            Err(e) => return read_count(Err(e)),
        };
        let from = book.received;
        book.received += received.bytes as u64;
        if !fds.is_empty() || received.fds_cut_off {
            book.arrivals.push_back(Arrival {
                from,
                to: book.received,
                fds,
                cut_off: received.fds_cut_off,
            });
        }
        Ok(received.bytes)
    }
}

/// What one read from the socket came to: the bytes read, 0 at end of file. A peer that
/// reset the connection has ended too. Other failures are errors.
fn read_count(read: io::Result<usize>) -> Result<usize> {
    match read {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(0),
        Err(e) => Err(Error::io("recv", e)),
    }
}
