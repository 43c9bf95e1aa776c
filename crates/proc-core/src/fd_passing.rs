//! File descriptors sent with bytes on a Unix socket (`SCM_RIGHTS`): [`send_with_fds`],
//! [`recv_with_fds`] (which never leaves a received descriptor unowned, also when some were
//! cut off), and the length-prefixed frames the start methods exchange ([`send_frame`],
//! [`recv_frame`]).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// The most descriptors one message may carry: the kernel's `SCM_MAX_FD`.
pub const MAX_FDS: usize = 253;

/// Sends all of `data` on the stream socket `socket`, with `fds` attached to its first
/// bytes (`SCM_RIGHTS`). Blocks until everything is in the socket's buffer. Never raises
/// SIGPIPE: a peer that is gone gives `BrokenPipe`.
pub fn send_with_fds(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message; at most {MAX_FDS}",
                fds.len()
            ),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let mut sent = 0;
    let mut first = true;
    while sent < data.len() || first {
        let control = [ControlMessage::ScmRights(&raw)];
        let control: &[ControlMessage<'_>] = if first && !raw.is_empty() {
            &control
        } else {
            &[]
        };
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&data[sent..])],
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => {
                sent += n;
                first = false;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What one receive brought, besides the bytes in the caller's buffer and the descriptors
/// appended to the caller's list ([`recv_with_fds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes received; 0 on a stream socket whose peer closed.
    pub bytes: usize,
    /// Descriptors came with the bytes that this process did not get (`MSG_CTRUNC`): it is
    /// at its limit of open files (`RLIMIT_NOFILE`), or more came than one message carries.
    /// The kernel closed those; the ones it could open are in the caller's list.
    pub fds_cut_off: bool,
    /// A datagram longer than the buffer: its end was dropped (`MSG_TRUNC`).
    pub bytes_cut_off: bool,
}

/// Room for the most descriptors one message carries, aligned for a `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuffer([u8; control_space()]);

const fn control_space() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) as usize }
}

/// Receives up to `buf.len()` bytes from `socket` (for a stream socket, at least one unless
/// the peer closed: then 0), appending the descriptors that came with them to `fds`
/// (close-on-exec). `flags` are `recvmsg(2)`'s (`MSG_PEEK`, `MSG_DONTWAIT`); interrupted
/// calls are made again.
///
/// Every descriptor the kernel opened for this process ends up in `fds`, also when some
/// could not be opened ([`Received::fds_cut_off`]): none is left open and unowned. With
/// `MSG_PEEK`, the descriptors are opened as duplicates and the message stays queued, so a
/// receiver that finds them cut off can leave it for later, losing nothing.
///
/// ```
/// use std::os::fd::AsFd;
/// use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
/// use proc_core::internal::fd_passing::{recv_with_fds, send_with_fds};
///
/// let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?;
/// let (read, _write) = std::io::pipe()?;
/// send_with_fds(a.as_fd(), b"hi", &[read.as_fd()])?;
/// let (mut buf, mut fds) = ([0u8; 8], Vec::new());
/// let got = recv_with_fds(b.as_fd(), &mut buf, &mut fds, MsgFlags::empty())?;
/// assert_eq!((got.bytes, fds.len(), got.fds_cut_off), (2, 1, false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    flags: MsgFlags,
) -> io::Result<Received> {
    // SAFETY: a `[u8]` is a valid `[MaybeUninit<u8>]` of the same length, and the kernel
    // writes only initialised bytes into it.
    let buf = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    recv_with_fds_into(socket, buf, fds, flags)
}

/// As [`recv_with_fds`], into memory that need not be initialised (the spare capacity of a
/// `Vec`): the first [`Received::bytes`] of it are initialised when it returns.
pub fn recv_with_fds_into(
    socket: BorrowedFd<'_>,
    buf: &mut [std::mem::MaybeUninit<u8>],
    fds: &mut Vec<OwnedFd>,
    flags: MsgFlags,
) -> io::Result<Received> {
    let mut control = std::mem::MaybeUninit::<ControlBuffer>::uninit();
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = control_space();
        let flags = (flags | MsgFlags::MSG_CMSG_CLOEXEC).bits();
        // SAFETY: `message` points at `buf` (its length) and at `control` (its length), both
        // alive and writable for the call; the kernel writes at most that much into each,
        // and reads neither.
        let got = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, flags) };
        let Ok(bytes) = usize::try_from(got) else {
            // A failed call opens no descriptor and leaves the control buffer unwritten.
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        };
        // SAFETY: after a successful recvmsg, `message` describes the control bytes the
        // kernel wrote (`msg_controllen` of them) and the descriptors it opened for us.
        unsafe { take_control_fds(&message, fds) };
        return Ok(Received {
            bytes,
            fds_cut_off: message.msg_flags & libc::MSG_CTRUNC != 0,
            bytes_cut_off: message.msg_flags & libc::MSG_TRUNC != 0,
        });
    }
}

/// Moves the descriptors of the `SCM_RIGHTS` messages in `message`'s control bytes into
/// `fds`.
///
/// # Safety
/// `message` must be as `recvmsg` left it: `msg_control` points at `msg_controllen` bytes
/// it wrote (or `msg_controllen` is 0), and the descriptors named there are ours alone.
unsafe fn take_control_fds(message: &libc::msghdr, fds: &mut Vec<OwnedFd>) {
    if message.msg_control.is_null() {
        return;
    }
    let end = message.msg_control as usize + message.msg_controllen;
    // SAFETY: by this function's contract the control bytes are the kernel's; the CMSG
    // macros stay within `msg_controllen`.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(message) };
    while !header.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies within the control
        // bytes, aligned for a cmsghdr.
        let cmsg = unsafe { &*header };
        if cmsg.cmsg_level == libc::SOL_SOCKET && cmsg.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: as above; CMSG_DATA points just past the header, CMSG_LEN(0) is the
            // header's own length.
            let data = unsafe { libc::CMSG_DATA(header) } as usize;
            // SAFETY: CMSG_LEN only computes a length.
            let header_len = unsafe { libc::CMSG_LEN(0) } as usize;
            let len = (cmsg.cmsg_len as usize)
                .saturating_sub(header_len)
                .min(end.saturating_sub(data));
            for i in 0..len / size_of::<RawFd>() {
                // SAFETY: within the message's data, which need not be aligned for an int.
                let fd = unsafe { (data as *const RawFd).add(i).read_unaligned() };
                if fd >= 0 {
                    // SAFETY: the kernel just opened this descriptor for this process;
                    // nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: `header` is a valid header within `message`'s control bytes.
        header = unsafe { libc::CMSG_NXTHDR(message, header) };
    }
}

/// Sends `bytes` as one frame (a `u32` little-endian length, then the bytes) on the stream
/// socket `socket`, with `fds` attached. Refuses more than `limit` bytes.
pub(crate) fn send_frame(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    limit: usize,
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&len| len as usize <= limit)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a message of {} bytes is over the limit of {limit}",
                    bytes.len()
                ),
            )
        })?;
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(bytes);
    send_with_fds(socket, &frame, fds)
}

/// Receives one frame sent by [`send_frame`], with the descriptors that came with it.
/// `Ok(None)` when the peer closed before the frame began. The length is checked against
/// `limit` before anything is allocated for it; a frame cut short is an error.
pub(crate) fn recv_frame(
    socket: BorrowedFd<'_>,
    limit: usize,
) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut fds = Vec::new();
    let mut len = [0u8; 4];
    let got = recv_exact(socket, &mut len, &mut fds)?;
    if got == 0 {
        return Ok(None);
    }
    if got < len.len() {
        return Err(truncated(got, len.len()));
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message announces {len} bytes, over the limit of {limit}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    let got = recv_exact(socket, &mut bytes, &mut fds)?;
    if got < len {
        return Err(truncated(got, len));
    }
    Ok(Some((bytes, fds)))
}

/// Fills `buf` unless the peer closes first; returns how much was filled.
fn recv_exact(socket: BorrowedFd<'_>, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let received = recv_with_fds(socket, &mut buf[filled..], fds, MsgFlags::empty())?;
        if received.fds_cut_off {
            return Err(fds_cut_off());
        }
        match received.bytes {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The error for a message whose descriptors did not all arrive.
fn fds_cut_off() -> io::Error {
    io::Error::other(
        "a message came with more file descriptors than this process could take (it is at its \
         limit of open files); those were closed",
    )
}

fn truncated(got: usize, wanted: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the message was cut short: {got} of {wanted} bytes arrived"),
    )
}
