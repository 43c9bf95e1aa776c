//! How a child hands an encoded value to its parent so that the child never waits for the
//! parent: the value is left with the kernel, where it outlives the child, and the parent
//! takes it when it joins.
//!
//! The channel is a `SOCK_SEQPACKET` socket pair made by the parent; the child sends one
//! record on its end:
//!
//! ```text
//! byte 0      kind: b'v' the value is inline, b'f' the value is in a memory file
//! bytes 1..9  u64, little-endian: the length of the encoded value
//! b'v'        the encoded value follows, exactly that many bytes (at most INLINE_LIMIT);
//!             no descriptor
//! b'f'        nothing follows; exactly one descriptor (SCM_RIGHTS): a memfd of exactly that
//!             length, sealed against shrinking, growing and writing
//! ```
//!
//! A small value goes inline: a record of a few KiB always fits an empty socket's buffer,
//! so sending it does not block. A larger one (or one the socket does not take at once) is
//! written into a memfd, sealed, and its descriptor sent; a descriptor in flight keeps its
//! file alive after the sender has exited. Either way the child is done at once, whatever
//! the size of its value, and the record waits in the parent's socket until `join`.
//!
//! Everything the parent receives is untrusted ([`take`]): a record of another kind or
//! length, a length over the limit, descriptors where none belong, or a file that is not a
//! sealed memfd of the announced length is an error that says which, and every descriptor
//! that came with it is closed. The file is mapped only once its seals guarantee that it
//! can neither shrink (a read past its end would be SIGBUS) nor change while it is decoded.

use std::fs::File;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use serde::Serialize;

use crate::codec::{self, CodecError, Sink, StreamError};
use crate::error::JoinError;
use crate::fd_passing;
use crate::memory_file::{self, FIXED_CONTENTS};

/// The largest value sent inline. Larger ones travel in a memory file.
pub(crate) const INLINE_LIMIT: usize = 32 << 10;

/// Bytes of a record's header: the kind and the value's length.
const HEADER: usize = 9;

/// The kind of a record whose value follows inline.
const INLINE: u8 = b'v';

/// The kind of a record whose value is in the memory file that comes with it.
const IN_FILE: u8 = b'f';

/// A new channel: the parent's end (it receives), and the child's end (it sends once).
pub(crate) fn channel() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Why the child could not hand its value over.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandOverError {
    /// The value did not encode, or encoded longer than the limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The memory file could not be made or written, or the record could not be sent.
    #[error("the value could not be handed to the parent: {0}")]
    Io(#[from] io::Error),
}

/// In the child: encodes `value` (at most `limit` bytes) and hands it over on `socket`.
/// Does not wait for the parent. A panic of the value's `Serialize` impl goes through to
/// the caller, with nothing sent.
pub(crate) fn hand_over<T: Serialize + ?Sized>(
    socket: BorrowedFd<'_>,
    value: &T,
    limit: usize,
) -> Result<(), HandOverError> {
    let mut record = Vec::with_capacity(HEADER + 256);
    record.push(INLINE);
    record.extend_from_slice(&[0; HEADER - 1]);
    // One pass encodes a small value, or only measures a large one.
    let cap = INLINE_LIMIT.min(limit);
    let len = codec::encode_into_at_most(value, &mut record, cap)?;
    if len > limit {
        return Err(CodecError::TooLarge { len, limit }.into());
    }
    let (file, len) = if len <= cap {
        record[1..HEADER].copy_from_slice(&(len as u64).to_le_bytes());
        match send_record(socket, &record) {
            Ok(()) => return Ok(()),
            // The socket takes no record this large now (a small send buffer): the value
            // goes in a file like a large one, rather than wait for the parent.
            Err(Errno::EMSGSIZE | Errno::EAGAIN | Errno::ENOBUFS) => {}
            Err(e) => return Err(io::Error::from(e).into()),
        }
        let mut file = new_file()?;
        file.write_all(&record[HEADER..])?;
        (file, len)
    } else {
        // Straight from the value into the file: no second copy of a large value.
        let mut sink = FileSink {
            file: new_file()?,
            written: 0,
        };
        match codec::encode_to(value, &mut sink) {
            Ok(()) => {}
            Err(StreamError::Codec(e)) => return Err(e.into()),
            Err(StreamError::Stopped(e)) => return Err(e.into()),
        }
        // What was written is what is announced, even from a `Serialize` impl that wrote
        // something else the first time.
        if sink.written > limit {
            return Err(CodecError::TooLarge {
                len: sink.written,
                limit,
            }
            .into());
        }
        (sink.file, sink.written)
    };
    memory_file::seal(&file, FIXED_CONTENTS)?;
    let mut header = [0u8; HEADER];
    header[0] = IN_FILE;
    header[1..].copy_from_slice(&(len as u64).to_le_bytes());
    // A record of 9 bytes and a descriptor: the socket takes it unless it is full of
    // records sent by others than this child, which nothing of multiproc does.
    fd_passing::send_with_fds(socket, &header, &[file.as_fd()])?;
    Ok(())
}

/// Sends `record` without waiting: all of it, or an error.
fn send_record(socket: BorrowedFd<'_>, record: &[u8]) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    loop {
        match send(
            socket.as_raw_fd(),
            record,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A memory file to write a value into, sealable.
fn new_file() -> io::Result<File> {
    memory_file::create(c"multiproc-value")
}

/// Writes an encoding into a file, counting its bytes.
struct FileSink {
    file: File,
    written: usize,
}

impl Sink for FileSink {
    type Error = io::Error;

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.written = self.written.saturating_add(bytes.len());
        Ok(())
    }
}

/// A value the parent took: its bytes, inline or in a mapped memory file.
pub(crate) enum Value {
    Inline(Vec<u8>),
    Mapped(Mapping),
}

impl Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Value::Inline(bytes) => bytes,
            Value::Mapped(mapping) => mapping,
        }
    }
}

/// A read-only private mapping of a whole sealed memory file; unmapped on drop.
pub(crate) struct Mapping {
    start: NonNull<libc::c_void>,
    len: NonZeroUsize,
}

impl Deref for Mapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `start` is a live mapping of `len` readable bytes (made in `map_sealed`,
        // unmapped only by drop). Its file is sealed against shrinking, growing and
        // writing, so every page is backed and no process can change the bytes while the
        // slice is borrowed.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().cast::<u8>(), self.len.get()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by mmap with this start and length and is unmapped
        // once, here; no slice of it outlives `self` (Deref borrows self).
        let _ = unsafe { munmap(self.start, self.len.get()) };
    }
}

/// In the parent, once the child has ended: the value it handed over on `socket`, `None`
/// when it handed over nothing (it ended first, or sent an empty record). Never waits.
///
/// A record that breaks the format above is [`JoinError::Malformed`] with the reason, and
/// the descriptors that came with it are closed. A value longer than `limit` is refused
/// before anything is allocated or mapped for it.
pub(crate) fn take(socket: BorrowedFd<'_>, limit: usize) -> Result<Option<Value>, JoinError> {
    // One byte more than the longest inline record: a longer one is seen, not cut to fit.
    let mut buf = vec![0u8; HEADER + INLINE_LIMIT + 1];
    // Dropped on every return that does not take them: the descriptors close.
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut reset_seen = false;
    let got = loop {
        match fd_passing::recv_with_fds(socket, &mut buf, &mut fds, MsgFlags::MSG_DONTWAIT) {
            Ok(got) => break got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            // The child's end closed with records sent *to* it unread (by some process
            // holding a copy of our end): the kernel reports that once, ahead of the
            // records queued here, which are still there to take.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !reset_seen => {
                reset_seen = true;
            }
            Err(e) => return Err(JoinError::Io(e)),
        }
    };
    if got.fds_cut_off {
        return malformed(
            "its record came with descriptors that this process could not take (it is at its \
             limit of open files, or too many came); those were closed"
                .into(),
        );
    }
    if got.bytes_cut_off || got.bytes > HEADER + INLINE_LIMIT {
        return malformed(format!(
            "its record is longer than the longest there is ({} bytes)",
            HEADER + INLINE_LIMIT
        ));
    }
    if got.bytes == 0 && fds.is_empty() {
        // The socket's end (no other sender left), or an empty record: no value.
        return Ok(None);
    }
    if got.bytes < HEADER {
        return malformed(format!(
            "its record of {} bytes is shorter than a record's {HEADER}-byte header",
            got.bytes
        ));
    }
    let mut announced = [0u8; HEADER - 1];
    announced.copy_from_slice(&buf[1..HEADER]);
    let announced = u64::from_le_bytes(announced);
    let len = match usize::try_from(announced) {
        Ok(len) if len <= limit => len,
        _ => {
            return malformed(format!(
                "it announces a value of {announced} bytes, over the limit of {limit}"
            ));
        }
    };
    match buf[0] {
        INLINE => {
            if !fds.is_empty() {
                return malformed(format!(
                    "its inline value came with {} descriptors, where none belong",
                    fds.len()
                ));
            }
            let carried = got.bytes - HEADER;
            if carried != len {
                return malformed(format!(
                    "it announces a value of {len} bytes and carries {carried}"
                ));
            }
            buf.truncate(got.bytes);
            buf.drain(..HEADER);
            Ok(Value::Inline(buf))
        }
        IN_FILE => {
            if got.bytes != HEADER {
                return malformed(format!(
                    "its record for a value in a memory file has {} bytes after the header, \
                     where none belong",
                    got.bytes - HEADER
                ));
            }
            let count = fds.len();
            let Ok([file]): Result<[OwnedFd; 1], _> = fds.try_into() else {
                return malformed(format!(
                    "its record for a value in a memory file came with {count} descriptors, \
                     not 1"
                ));
            };
            map_sealed(file, len).or_else(malformed)
        }
        kind => malformed(format!(
            "its record is of kind {kind:#04x}, neither an inline value ({INLINE:#04x}) nor a \
             memory file ({IN_FILE:#04x})"
        )),
    }
    .map(Some)
}

/// The error for a record that breaks the format.
fn malformed<T>(reason: String) -> Result<T, JoinError> {
    Err(JoinError::Malformed { reason })
}

/// Maps `file`, which must be a memfd of exactly `len` bytes, sealed so that it cannot
/// shrink, grow or change. The reason otherwise. The descriptor is closed either way (a
/// mapping does not need it).
fn map_sealed(file: OwnedFd, len: usize) -> Result<Value, String> {
    let seen = memory_file::inspect(&file).map_err(|e| format!("its value's {e}"))?;
    if !seen.seals.contains(FIXED_CONTENTS) {
        return Err(format!(
            "its memory file is not sealed against shrinking, growing and writing (seals \
             {:?}), so it could vanish or change while it is read",
            seen.seals
        ));
    }
    if seen.size != len as u64 {
        return Err(format!(
            "its memory file holds {} bytes where it announces {len}",
            seen.size
        ));
    }
    let Some(nonzero) = NonZeroUsize::new(len) else {
        return Ok(Value::Inline(Vec::new()));
    };
    // SAFETY: a new private read-only mapping at an address the kernel chooses, of a file
    // whose seals (checked above) fix its size at `len` bytes and its contents: no page of
    // it can disappear (no SIGBUS) and nothing can write to it while it is mapped.
    let start = unsafe {
        mmap(
            None,
            nonzero,
            ProtFlags::PROT_READ,
            MapFlags::MAP_PRIVATE,
            &file,
            0,
        )
    }
    .map_err(|e| format!("its memory file of {len} bytes could not be mapped: {e}"))?;
    Ok(Value::Mapped(Mapping {
        start,
        len: nonzero,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::socket::{setsockopt, sockopt};

    fn taken(parent: &OwnedFd) -> Result<Option<Value>, JoinError> {
        take(parent.as_fd(), 1 << 30)
    }

    fn decoded(value: Option<Value>) -> Vec<u8> {
        let value = value.expect("a value");
        codec::decode::<Vec<u8>>(&value, 1 << 30).expect("decodes")
    }

    #[test]
    fn a_small_value_goes_inline_and_a_large_one_in_a_sealed_file() {
        for len in [0, 10, INLINE_LIMIT - 16, INLINE_LIMIT, 1 << 20] {
            let (parent, child) = channel().unwrap();
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            hand_over(child.as_fd(), &value, 1 << 30).unwrap();
            drop(child);
            let taken = taken(&parent).unwrap();
            let inline = matches!(taken, Some(Value::Inline(_)));
            assert_eq!(inline, len < INLINE_LIMIT - 8, "len {len}");
            assert_eq!(decoded(taken), value);
            // One record, taken: nothing more.
            assert!(self::taken(&parent).unwrap().is_none());
        }
    }

    #[test]
    fn a_socket_that_takes_no_large_record_gets_the_value_in_a_file_instead() {
        let (parent, child) = channel().unwrap();
        // The kernel's smallest send buffer (a few KiB) takes no record of 20 KiB.
        setsockopt(&child, sockopt::SndBuf, &1024).unwrap();
        let value = vec![7u8; 20 << 10];
        hand_over(child.as_fd(), &value, 1 << 30).unwrap();
        let taken = taken(&parent).unwrap();
        assert!(matches!(taken, Some(Value::Mapped(_))));
        assert_eq!(decoded(taken), value);
    }

    #[test]
    fn a_value_over_the_limit_is_refused_by_the_sender_and_nothing_is_sent() {
        for (len, limit) in [(100usize, 50usize), (1 << 20, 1 << 19)] {
            let (parent, child) = channel().unwrap();
            let err = hand_over(child.as_fd(), &vec![1u8; len], limit).unwrap_err();
            assert!(
                matches!(err, HandOverError::Codec(CodecError::TooLarge { limit: l, .. }) if l == limit),
                "{err:?}"
            );
            assert!(taken(&parent).unwrap().is_none());
        }
    }

    #[test]
    fn nothing_sent_is_no_value_whether_the_sender_is_there_or_gone() {
        let (parent, child) = channel().unwrap();
        assert!(taken(&parent).unwrap().is_none(), "nothing yet: no wait");
        drop(child);
        assert!(taken(&parent).unwrap().is_none(), "the sender is gone");
    }

    #[test]
    fn a_file_is_refused_before_it_is_mapped_unless_its_size_and_seals_are_right() {
        let file = |len: usize, seals: SealFlag| {
            let file = new_file().unwrap();
            (&file).write_all(&vec![0u8; len]).unwrap();
            if !seals.is_empty() {
                fcntl(&file, FcntlArg::F_ADD_SEALS(seals)).unwrap();
            }
            OwnedFd::from(file)
        };
        let cases = [
            (file(100, SealFlag::empty()), 100, "not sealed"),
            (
                file(100, SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW),
                100,
                "not sealed",
            ),
            (
                file(50, FIXED_CONTENTS),
                100,
                "holds 50 bytes where it announces 100",
            ),
            (file(150, FIXED_CONTENTS), 100, "holds 150 bytes"),
        ];
        for (fd, len, why) in cases {
            match map_sealed(fd, len) {
                Err(reason) => assert!(reason.contains(why), "{why:?}: {reason}"),
                Ok(_) => panic!("{why:?}: mapped"),
            }
        }
        let (read, _write) = io::pipe().unwrap();
        let reason = map_sealed(read.into(), 1).err().unwrap();
        assert!(reason.contains("is a pipe, not a memory file"), "{reason}");
        let mapped = map_sealed(file(100, FIXED_CONTENTS), 100).ok().unwrap();
        assert_eq!(&*mapped, &[0u8; 100][..]);
    }
}
