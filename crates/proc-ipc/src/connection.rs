//! [`Connection`], [`pipe`] and [`pipe_oneway`]: Python's `multiprocessing.Pipe`.
//!
//! A connection is one end of a Unix stream socket pair (or, from a
//! [`Listener`](crate::Listener) or [`Client`](crate::Client), of a Unix or TCP socket
//! speaking Python's protocol, see the `framing` module). Each message is one frame: an
//! 8-byte little-endian header, then the payload (for [`Connection::send`], the codec's
//! encoding of the value). The header's low 48 bits are the payload's length, its high 16
//! bits the number of file descriptors that travel with the message (`SCM_RIGHTS`, attached
//! to the header's first byte): the handles a value holds (a `Lock`, a `Queue`, another
//! `Connection`) go that way, see `proc_core::internal::handle_wire`. The receiver checks the length against
//! its limit before it stores anything, and sets room aside only in step with what has
//! arrived (at most 1 MiB, or as much again as has arrived, ahead of it), so a peer that
//! announces a huge message cannot make it allocate memory for bytes it never sends.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, Shutdown, SockFlag, SockType, SockaddrLike, SockaddrStorage,
    getsockname, getsockopt, send, shutdown, socketpair, sockopt,
};
use proc_core::internal::fd_passing;
use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::closing;
use crate::error::{Error, Result};
use crate::framing::{Framing, MAX_HEADER};
use crate::inbox::Inbox;

mod receive;

/// The largest message a connection sends or receives unless told otherwise: 64 MiB of
/// data and 64 KiB more for the encoding's own bytes, so that a `Vec<u8>` of 64 MiB fits.
/// A receiver's buffer grows in step with the bytes that arrive, so the limit costs nothing
/// by itself.
pub const DEFAULT_MESSAGE_LIMIT: usize = (64 << 20) + (64 << 10);

/// Payloads up to this size are copied behind their header and sent with one call; larger
/// ones are sent in place, after the header.
const COPY_BELOW: usize = 64 << 10;

/// A duplex connection pair: what one end sends, the other receives, both ways.
///
/// ```
/// use proc_core::Process;
///
/// let (parent_end, child_end) = proc_ipc::pipe()?;
/// let mut p = Process::new(move || {
///     let n: u64 = child_end.recv().unwrap();
///     child_end.send(&(n * 2)).unwrap();
/// });
/// p.start()?;
/// parent_end.send(&21u64)?;
/// assert_eq!(parent_end.recv::<u64>()?, 42);
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pipe() -> Result<(Connection, Connection)> {
    let (a, b) = stream_pair()?;
    Ok((
        Connection::new(a, true, true),
        Connection::new(b, true, true),
    ))
}

/// A one-way pair `(reader, writer)`, as Python's `Pipe(duplex=False)`: the writer only
/// sends, the reader only receives.
///
/// ```
/// let (reader, writer) = proc_ipc::pipe_oneway()?;
/// writer.send("hello")?;
/// assert_eq!(reader.recv::<String>()?, "hello");
/// assert!(reader.send(&1).is_err(), "the reading end cannot send");
/// # Ok::<(), proc_ipc::Error>(())
/// ```
pub fn pipe_oneway() -> Result<(Connection, Connection)> {
    let (read, write) = stream_pair()?;
    // A socket pair rather than pipe(2), so that writes can refuse SIGPIPE (MSG_NOSIGNAL).
    shutdown(read.as_raw_fd(), Shutdown::Write).map_err(|e| Error::io("shutdown", e))?;
    shutdown(write.as_raw_fd(), Shutdown::Read).map_err(|e| Error::io("shutdown", e))?;
    Ok((
        Connection::new(read, true, false),
        Connection::new(write, false, true),
    ))
}

fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::io("socketpair", e))
}

/// One end of a connection between processes: typed messages with [`send`](Self::send) /
/// [`recv`](Self::recv), raw ones with [`send_bytes`](Self::send_bytes) /
/// [`recv_bytes`](Self::recv_bytes), and [`poll`](Self::poll) to wait for one.
///
/// A connection is `Send` but not `Sync`: one thread of a process uses it at a time, so
/// the frames it writes never interleave. Two *processes* writing to copies of the same end
/// at once can interleave their frames, as in Python: give each writer its own pair, or
/// use a queue. When the other end is gone (dropped, or its process ended), `recv` returns
/// an end-of-file error ([`Error::is_eof`]) once everything sent before has been received,
/// and `send` returns one at once. Mind that a forked child holds copies of its parent's
/// ends (see the crate docs): the peer is gone only when every copy is closed.
pub struct Connection {
    /// The socket: a Unix stream socket, or a TCP one with Python framing.
    stream: OwnedFd,
    /// Also what makes a connection `!Sync`: one thread reads at a time.
    inbox: RefCell<Inbox>,
    readable: bool,
    writable: bool,
    limit: usize,
    framing: Framing,
    closed: Cell<bool>,
}

impl Connection {
    fn new(fd: OwnedFd, readable: bool, writable: bool) -> Self {
        Connection {
            stream: fd,
            inbox: RefCell::new(Inbox::new()),
            readable,
            writable,
            limit: DEFAULT_MESSAGE_LIMIT,
            framing: Framing::Native,
            closed: Cell::new(false),
        }
    }

    /// A duplex connection over `socket` (a connected Unix or TCP stream socket) that
    /// speaks Python's `multiprocessing.connection` framing.
    pub(crate) fn python(socket: OwnedFd) -> Self {
        Connection {
            framing: Framing::Python,
            ..Connection::new(socket, true, true)
        }
    }

    /// Closes this end, as Python's `Connection.close`: the socket is released at once
    /// (the peer sees end of file once no other process holds a copy of this end), and
    /// every later use of this end is an [`Error::Closed`]. Closing again does nothing.
    /// Bytes received and not yet handed out are dropped.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.close();
    /// assert!(a.closed());
    /// assert!(matches!(a.send_bytes(b"x"), Err(proc_ipc::Error::Closed { .. })));
    /// assert!(b.recv_bytes().unwrap_err().is_eof(), "the peer sees end of file");
    /// a.close(); // again: nothing happens
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    ///
    /// Until the connection is dropped, [`as_fd`](AsFd::as_fd) gives a descriptor that
    /// refers to `/dev/null`, not to the socket. Should this process have no descriptor
    /// left to make that switch (`RLIMIT_NOFILE`), the socket is released only when the
    /// connection is dropped; the connection is closed all the same.
    pub fn close(&self) {
        if let Ok(mut inbox) = self.inbox.try_borrow_mut() {
            self.shut(&mut inbox);
        } else {
            self.closed.set(true);
        }
    }

    /// Whether [`close`](Self::close) was called (or the peer broke the protocol, see
    /// [`Error::Protocol`]).
    pub fn closed(&self) -> bool {
        self.closed.get()
    }

    fn shut(&self, inbox: &mut Inbox) {
        if !self.closed.replace(true) {
            *inbox = Inbox::new();
            // On failure the socket goes when the connection is dropped (see `close`).
            let _ = closing::release(self.stream.as_fd());
        }
    }

    /// Sets the largest message this end sends or receives (default
    /// [`DEFAULT_MESSAGE_LIMIT`]). Each end has its own limit.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// let a = a.with_limit(4);
    /// assert!(matches!(a.send_bytes(b"12345"), Err(proc_ipc::Error::TooLarge { len: 5, limit: 4 })));
    /// a.send_bytes(b"1234")?; // the connection is still usable
    /// assert_eq!(b.recv_bytes()?, b"1234");
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The largest message this end sends or receives.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether this end can receive (false for the writer of a one-way pair).
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send (false for the reader of a one-way pair).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Sends `value`, encoded by the codec. A value whose encoding is over the limit is
    /// refused before anything is written.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send(&(1u8, "one".to_string(), vec![1.0f64]))?;
    /// let (n, name, v): (u8, String, Vec<f64>) = b.recv()?;
    /// assert_eq!((n, name.as_str(), v), (1, "one", vec![1.0]));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    ///
    /// A value that holds handles (a `Lock`, a `Queue`, a `Connection`, …) sends their file
    /// descriptors with it: the receiver's copy refers to the same objects.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.check_direction(self.writable, "send", "read")?;
        let mut frame = vec![0u8; MAX_HEADER];
        let fds = handle_wire::encode_into(value, &mut frame)?;
        if !fds.is_empty() && !self.framing.carries_fds() {
            return Err(Error::HandlesNotCarried { count: fds.len() });
        }
        let len = frame.len() - MAX_HEADER;
        self.check_limit(len)?;
        let mut head = [0; MAX_HEADER];
        let size = self.framing.encode(len, fds.len(), &mut head);
        frame[..MAX_HEADER].copy_from_slice(&head);
        let frame = &frame[MAX_HEADER - size..];
        if fds.is_empty() {
            return self.write_all(frame);
        }
        let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        fd_passing::send_with_fds(self.stream.as_fd(), frame, &fds).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::EPIPE | libc::ECONNRESET) => Error::Eof,
                _ => Error::io("sendmsg", e),
            }
        })
    }

    /// Receives one value sent with [`send`](Self::send). Blocks until it arrives. Bytes
    /// that are not an encoding of `T` give a codec error for this message; the connection
    /// stays usable.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send(&-7i32)?;
    /// assert_eq!(b.recv::<i32>()?, -7);
    /// a.send_bytes(&[0xFF; 3])?;
    /// assert!(matches!(b.recv::<String>(), Err(proc_ipc::Error::Codec(_))));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        let (bytes, fds) = self.recv_message(self.limit)?;
        Ok(handle_wire::decode(&bytes, self.limit, fds)?)
    }

    /// Sends `bytes` as one message.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send_bytes(b"raw")?;
    /// assert_eq!(b.recv_bytes()?, b"raw");
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.check_direction(self.writable, "send", "read")?;
        self.check_limit(bytes.len())?;
        let mut head = [0; MAX_HEADER];
        let size = self.framing.encode(bytes.len(), 0, &mut head);
        let header = &head[MAX_HEADER - size..];
        if bytes.len() < COPY_BELOW {
            let mut frame = Vec::with_capacity(size + bytes.len());
            frame.extend_from_slice(header);
            frame.extend_from_slice(bytes);
            self.write_all(&frame)
        } else {
            self.write_all(header)?;
            self.write_all(bytes)
        }
    }

    /// Sends `size` bytes of `buf` from `offset` on as one message, as Python's
    /// `send_bytes(buf, offset, size)`. A range that does not lie within `buf` is an
    /// [`Error::OutOfRange`], and nothing is sent.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send_bytes_range(b"hello world", 6, 5)?;
    /// assert_eq!(b.recv_bytes()?, b"world");
    /// assert!(matches!(
    ///     a.send_bytes_range(b"hello", 3, 3),
    ///     Err(proc_ipc::Error::OutOfRange { offset: 3, size: 3, len: 5 })
    /// ));
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn send_bytes_range(&self, buf: &[u8], offset: usize, size: usize) -> Result<()> {
        let range = offset
            .checked_add(size)
            .and_then(|end| buf.get(offset..end))
            .ok_or(Error::OutOfRange {
                offset,
                size,
                len: buf.len(),
            })?;
        self.send_bytes(range)
    }

    /// Receives one message as bytes. Blocks until it arrives. A message over this end's
    /// limit is read past without being stored and reported as [`Error::TooLarge`]; the next
    /// message can then be received. Descriptors that came with the message (it was sent
    /// with [`send`](Self::send) and held handles) are closed.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.recv_message(self.limit).map(|(bytes, _fds)| bytes)
    }

    /// Receives one message as bytes, as [`recv_bytes`](Self::recv_bytes), refusing one
    /// longer than `maxlength` (Python's `recv_bytes(maxlength)`): such a message is read
    /// past without being stored and reported as [`Error::TooLarge`], and the connection
    /// stays usable, receiving the next message (where Python closes the connection).
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send_bytes(b"too long")?;
    /// a.send_bytes(b"fits")?;
    /// assert!(matches!(b.recv_bytes_max(4), Err(proc_ipc::Error::TooLarge { len: 8, limit: 4 })));
    /// assert_eq!(b.recv_bytes_max(4)?, b"fits");
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn recv_bytes_max(&self, maxlength: usize) -> Result<Vec<u8>> {
        self.recv_message(maxlength.min(self.limit))
            .map(|(bytes, _fds)| bytes)
    }

    /// Receives one message into `buf` from `offset` on, in place, and returns its length
    /// (Python's `recv_bytes_into(buf, offset)`). A message longer than the room after
    /// `offset` is an [`Error::BufferTooShort`] that holds the whole message (`buf` is left
    /// as it was) and the connection goes on with the next. An `offset` past the end of
    /// `buf` is an [`Error::OutOfRange`] and receives nothing. Otherwise as
    /// [`recv_bytes`](Self::recv_bytes).
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// let mut buf = [0u8; 8];
    /// a.send_bytes(b"abc")?;
    /// assert_eq!(b.recv_bytes_into_slice(&mut buf, 2)?, 3);
    /// assert_eq!(&buf, b"\0\0abc\0\0\0");
    /// a.send_bytes(b"far too long")?;
    /// match b.recv_bytes_into_slice(&mut buf, 0) {
    ///     Err(proc_ipc::Error::BufferTooShort { message }) => assert_eq!(message, b"far too long"),
    ///     other => panic!("expected BufferTooShort, got {other:?}"),
    /// }
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn recv_bytes_into_slice(&self, buf: &mut [u8], offset: usize) -> Result<usize> {
        let len = buf.len();
        let room = buf.get_mut(offset..).ok_or(Error::OutOfRange {
            offset,
            size: 0,
            len,
        })?;
        self.check_direction(self.readable, "recv", "write")?;
        let mut inbox = self.inbox.borrow_mut();
        let frame = self.next_frame(&mut inbox, self.limit)?;
        if frame.len > room.len() {
            let mut message = Vec::new();
            self.finish_into_vec(&mut inbox, frame, &mut message)?;
            return Err(Error::BufferTooShort { message });
        }
        self.finish_into_slice(&mut inbox, frame, &mut room[..frame.len])?;
        Ok(frame.len)
    }

    /// Receives one message as bytes into `buf`, which it replaces: `buf` keeps its
    /// allocation, so a caller that receives many large messages into the same buffer does
    /// not allocate (and page-fault in) a fresh one for each. Returns the message's length.
    /// Otherwise as [`recv_bytes`](Self::recv_bytes); on an error `buf` is left empty.
    ///
    /// ```
    /// let (a, b) = proc_ipc::pipe()?;
    /// let mut buf = Vec::with_capacity(1 << 20);
    /// a.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(b.recv_bytes_into(&mut buf)?, 3);
    /// assert_eq!(buf, [1, 2, 3]);
    /// assert!(buf.capacity() >= 1 << 20, "the same allocation");
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
        buf.clear();
        let received = self.recv_message_into(buf, self.limit).map(drop);
        if received.is_err() {
            buf.clear();
        }
        received.map(|()| buf.len())
    }

    /// Receives one message of at most `max` bytes: its bytes and the descriptors that
    /// came with it.
    fn recv_message(&self, max: usize) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
        let mut payload = Vec::new();
        let fds = self.recv_message_into(&mut payload, max)?;
        Ok((payload, fds))
    }

    /// Receives one message of at most `max` bytes: its bytes appended to `payload` (empty
    /// on entry), and the descriptors that came with it.
    ///
    /// Whatever goes wrong with one message (over the limit, descriptors that do not match
    /// what its header announces, or that this process could not take), all of its bytes
    /// are read, so that the next message is received intact and in order.
    fn recv_message_into(&self, payload: &mut Vec<u8>, max: usize) -> Result<Vec<OwnedFd>> {
        self.check_direction(self.readable, "recv", "write")?;
        let mut inbox = self.inbox.borrow_mut();
        let frame = self.next_frame(&mut inbox, max)?;
        self.finish_into_vec(&mut inbox, frame, payload)
    }

    /// Waits at most `timeout` (`None`: without limit) for a message to be ready, and
    /// returns whether one is. A closed peer counts as ready: `recv` then reports it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = proc_ipc::pipe()?;
    /// assert!(!b.poll(Some(Duration::from_millis(1)))?);
    /// a.send(&1u8)?;
    /// assert!(b.poll(Some(Duration::ZERO))?);
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.check_direction(self.readable, "poll", "write")?;
        if !self.inbox.borrow().is_empty() {
            return Ok(true);
        }
        // A timeout too large to add to the clock waits as without one.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        proc_core::internal::wait_readable(self.stream.as_fd(), deadline)
            .map_err(|e| Error::io("poll", e))
    }

    fn check_direction(
        &self,
        allowed: bool,
        operation: &'static str,
        direction: &'static str,
    ) -> Result<()> {
        if self.closed.get() {
            Err(Error::Closed { what: "connection" })
        } else if allowed {
            Ok(())
        } else {
            Err(Error::WrongDirection {
                operation,
                direction,
            })
        }
    }

    fn check_limit(&self, len: usize) -> Result<()> {
        let limit = self.limit.min(self.framing.max_len());
        if len > limit {
            return Err(Error::TooLarge { len, limit });
        }
        Ok(())
    }

    /// Writes all of `buf`. MSG_NOSIGNAL: a closed peer is an error, never a SIGPIPE.
    fn write_all(&self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            match send(self.stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => buf = &buf[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(Error::Eof),
                Err(e) => return Err(Error::io("send", e)),
            }
        }
        Ok(())
    }
}

/// A connection travels as its socket, its direction and its limit: sent through another
/// connection or a queue, or passed to `Process::target`, it is the same end in the
/// receiver. An end with received bytes not yet handed out refuses to travel (they would be
/// lost): receive them first. A closed end, and one from a [`Listener`](crate::Listener) or
/// [`Client`](crate::Client) (Python's protocol), do not travel either.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        if self.closed.get() {
            return Err(S::Error::custom(
                "this connection is closed: it cannot be sent to another process",
            ));
        }
        if self.framing != Framing::Native {
            return Err(S::Error::custom(
                "a connection from a Listener or Client (Python's protocol) cannot be sent to \
                 another process; connect from that process instead",
            ));
        }
        let inbox = self.inbox.try_borrow().map_err(S::Error::custom)?;
        if !inbox.is_empty() || !inbox.book.arrivals.is_empty() {
            return Err(S::Error::custom(
                "this connection has received bytes that were not handed out yet; receive \
                 them before sending the connection to another process",
            ));
        }
        let rest = (
            FdRef::new(self.stream.as_fd()),
            self.readable,
            self.writable,
            self.limit as u64,
        );
        handle_wire::serialize_handle(serializer, KIND, &rest)
    }
}

/// The kind a connection travels as.
const KIND: &str = "Connection";

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (fd, readable, writable, limit): (ReceivedFd, bool, bool, u64) =
            handle_wire::deserialize_handle(deserializer, KIND)?;
        let fd = fd.into_inner();
        // Framing, descriptors and end of file are those of a Unix stream socket.
        let refuse = |what: String| {
            D::Error::custom(format!(
                "a received connection is {what}, not a Unix stream socket"
            ))
        };
        let address = getsockname::<SockaddrStorage>(fd.as_raw_fd())
            .map_err(|e| refuse(format!("not a socket ({e})")))?;
        let kind = getsockopt(&fd, sockopt::SockType).map_err(|e| refuse(e.to_string()))?;
        if address.family() != Some(AddressFamily::Unix) || kind != SockType::Stream {
            return Err(refuse(format!("a {:?} {kind:?} socket", address.family())));
        }
        let limit = usize::try_from(limit).map_err(D::Error::custom)?;
        Ok(Connection::new(fd, readable, writable).with_limit(limit))
    }
}

impl AsFd for Connection {
    /// The socket, for `poll`/`epoll` alongside other fds (after [`close`](Connection::close),
    /// a descriptor of `/dev/null`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.stream.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("limit", &self.limit)
            .field("framing", &self.framing)
            .field("closed", &self.closed.get())
            .finish()
    }
}
