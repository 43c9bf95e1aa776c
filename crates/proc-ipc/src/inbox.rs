//! What a connection has read from its socket and not yet handed out: the bytes
//! ([`Inbox`]), and the descriptors that came with them, by position in the stream
//! ([`Book`]), so that each frame gets the descriptors sent with it and no others.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use crate::error::{Error, Result};

/// Descriptors that came with one read from the socket, and the stretch of the stream
/// (positions counted from the connection's first byte) that the read covered.
///
/// The kernel hands out a message's descriptors with the read that reaches the first byte
/// they were attached to, and ends that read within the bytes sent with them: so a read
/// that brings descriptors ends inside the frame whose header they were sent with (a
/// sender attaches them to its header's first byte). That frame is the one whose header
/// lies in the read's stretch and which reaches to its end.
pub(crate) struct Arrival {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) fds: Vec<OwnedFd>,
    /// Some descriptors could not be opened in this process (`MSG_CTRUNC`).
    pub(crate) cut_off: bool,
}

/// The descriptors that arrived within one frame (see [`Book::settle`]).
#[derive(Default)]
pub(crate) struct Came {
    /// Those of the read that reached the frame's header: sent with it.
    pub(crate) with_header: Vec<OwnedFd>,
    /// How many came attached to the frame's later bytes: not where a sender puts them.
    pub(crate) elsewhere: usize,
    /// Some that came within the frame could not be opened (`MSG_CTRUNC`).
    pub(crate) cut_off: bool,
}

impl Came {
    /// The frame's descriptors if they are the `wanted` its header announced; otherwise the
    /// error for this frame (the descriptors are closed).
    pub(crate) fn for_message(self, wanted: usize) -> Result<Vec<OwnedFd>> {
        let fds = self.with_header;
        if self.cut_off {
            return Err(Error::DescriptorsExhausted {
                carried: wanted,
                received: fds.len(),
                item_kept: false,
            });
        }
        if fds.len() != wanted || self.elsewhere > 0 {
            return Err(Error::DescriptorMismatch {
                announced: wanted,
                arrived: fds.len() + self.elsewhere,
            });
        }
        Ok(fds)
    }
}

/// Bytes read from the socket and not yet handed out: a read takes what is there (up to
/// [`INBOX`] bytes), which may be a header and a whole small message, or several.
pub(crate) struct Inbox {
    pub(crate) bytes: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) book: Book,
}

/// What has been read from the socket, by position in the stream.
#[derive(Default)]
pub(crate) struct Book {
    /// Bytes ever read from the socket, into the inbox or straight into a payload.
    pub(crate) received: u64,
    /// Descriptors received and not yet handed out, with the stretch of the stream their
    /// read covered, in the order they came.
    pub(crate) arrivals: VecDeque<Arrival>,
}

/// The most a single read takes into the inbox.
pub(crate) const INBOX: usize = 64 << 10;

/// The room a large message's payload may have reserved beyond what has arrived, before
/// it holds that much (see `Connection::read_rest`).
pub(crate) const READ_AHEAD: usize = 1 << 20;

impl Inbox {
    pub(crate) fn new() -> Self {
        Inbox {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            book: Book::default(),
        }
    }

    /// The stream position of the first byte not yet handed out.
    pub(crate) fn position(&self) -> u64 {
        self.book.received - self.len() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes buffered and not yet handed out.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Hands out the next `n` buffered bytes (`n <= len()`).
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let taken = self.start..self.start + n;
        self.start += n;
        &self.bytes[taken]
    }

    /// Moves what is buffered to the front, so that the room after it is free to read into.
    pub(crate) fn make_room(&mut self) {
        if self.bytes.is_empty() {
            self.bytes = vec![0; INBOX];
        }
        self.bytes.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

impl Book {
    /// Takes the descriptors that arrived within the frame from `start` to `end` (now read
    /// up to there): those whose read reached its header, and any that came attached to
    /// its later bytes. Those of reads that end past `end` came with a later frame, and stay.
    pub(crate) fn settle(&mut self, start: u64, end: u64) -> Came {
        let mut came = Came::default();
        while self
            .arrivals
            .front()
            .is_some_and(|arrival| arrival.to <= end)
        {
            let Some(arrival) = self.arrivals.pop_front() else {
                break;
            };
            if arrival.to <= start {
                // Left by a frame that ended in error before it settled: closed here.
                continue;
            }
            came.cut_off |= arrival.cut_off;
            // Reads do not overlap: one at most reached the header.
            if arrival.from <= start {
                came.with_header = arrival.fds;
            } else {
                came.elsewhere += arrival.fds.len();
            }
        }
        came
    }
}
