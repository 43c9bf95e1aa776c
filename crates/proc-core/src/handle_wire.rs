//! Handles that travel: how a value that holds file descriptors (the shared memory of a
//! `Lock`, the ring and sockets of a `Queue`, the socket of a `Connection`) crosses to
//! another process.
//!
//! A descriptor is not data: its number means nothing in another process. So a handle's
//! `Serialize` impl does not write the number; it hands the descriptor to the *parcel*
//! being encoded ([`FdRef`]) and writes the descriptor's index in the parcel instead. The
//! parcel's bytes and its descriptors then go together over a Unix socket (`SCM_RIGHTS`,
//! [`send_with_fds`](crate::fd_passing::send_with_fds)) or by inheritance, and on the other
//! side [`decode`] puts the received descriptors where the handle's `Deserialize` impl
//! finds them ([`ReceivedFd`]). Nothing is ever opened by name.
//!
//! Handles can travel only where a channel for descriptors exists: as arguments of
//! `Process::target`, through a multiproc `Queue` or `Connection`. Serialized anywhere else
//! (with [`codec::encode`], serde_json, …) a handle refuses with an
//! encoding error that says so, rather than writing a number that would be meaningless.
//!
//! ```
//! use std::os::fd::{AsFd, OwnedFd};
//! use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
//!
//! let (read, write) = std::io::pipe()?;
//! let read = OwnedFd::from(read);
//!
//! // Encoding collects a duplicate of each descriptor the value refers to.
//! let parcel = handle_wire::encode(&("the pipe", FdRef::new(read.as_fd())))?;
//! assert_eq!(parcel.fds.len(), 1);
//!
//! // Decoding hands the parcel's descriptors to the value's `ReceivedFd` fields.
//! let (label, fd): (String, ReceivedFd) = handle_wire::decode(&parcel.bytes, 1024, parcel.fds)?;
//! assert_eq!(label, "the pipe");
//! let _same_pipe: OwnedFd = fd.into_inner();
//!
//! // Without a parcel, there is nowhere to put the descriptor: a clear error.
//! assert!(proc_core::codec::encode(&FdRef::new(read.as_fd())).is_err());
//! # drop(write);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, CodecError};
use crate::fd_passing::MAX_FDS;

/// An encoded value and the descriptors it refers to, ready to be sent together.
#[derive(Debug, Default)]
pub struct Parcel {
    /// The codec's bytes; each descriptor appears in them as its index in `fds`.
    pub bytes: Vec<u8>,
    /// Duplicates of the descriptors, in the order the value referred to them.
    pub fds: Vec<OwnedFd>,
}

enum Context {
    Sending(Vec<OwnedFd>),
    Receiving(Vec<Option<OwnedFd>>),
}

thread_local! {
    /// The context of the encode or decode running on this thread: a pointer to the
    /// `Context` that [`with_context`] lends for the length of one call, null outside. A
    /// pointer in a `Cell` needs no destructor, so reading it is a plain thread-local
    /// access: every value put on a queue is encoded through here.
    static CONTEXT: Cell<*mut Context> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with `context` as this thread's context, and puts the one before back (a
/// `Serialize` impl may itself encode a parcel) when it returns, even on unwind.
fn with_context<R>(context: &mut Context, f: impl FnOnce() -> R) -> R {
    struct Restore(*mut Context);
    impl Drop for Restore {
        fn drop(&mut self) {
            CONTEXT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CONTEXT.with(|c| c.replace(context)));
    f()
}

/// This thread's context, if an encode or decode has lent one.
///
/// # Safety
/// Nothing that can reach this function again may run while the reference lives: only
/// `push_fd` and `take_fd` call it, and while they hold the reference they run no code but
/// their own (no `Serialize`, `Deserialize` or error type of a caller).
unsafe fn lent_context<'a>() -> Option<&'a mut Context> {
    let context = CONTEXT.with(Cell::get);
    // SAFETY: the pointer is null, or it came from the `&mut Context` that `with_context`
    // lent for the call now running on this thread, which outlives this call and is not
    // used otherwise until that call returns; by this function's contract, no other
    // reference made from it is alive.
    unsafe { context.as_mut() }
}

/// Adds a duplicate of `fd` to the parcel being encoded on this thread; its index.
fn push_fd(fd: BorrowedFd<'_>) -> Result<u32, String> {
    // SAFETY: the reference lives only within this function, which calls no caller's code.
    match unsafe { lent_context() } {
        Some(Context::Sending(fds)) => {
            let copy = fd
                .try_clone_to_owned()
                .map_err(|e| format!("duplicating a descriptor to send: {e}"))?;
            fds.push(copy);
            u32::try_from(fds.len() - 1).map_err(|e| e.to_string())
        }
        _ => Err(
            "this value holds a file descriptor (a multiproc Lock, Queue, Connection, \
                  shared Value, …) and can only be sent through multiproc: as an argument of \
                  Process::target, through a multiproc Queue, or through a Connection"
                .to_string(),
        ),
    }
}

/// Takes descriptor `index` of the parcel being decoded on this thread.
fn take_fd(index: usize) -> Result<OwnedFd, String> {
    // SAFETY: the reference lives only within this function, which calls no caller's code.
    match unsafe { lent_context() } {
        Some(Context::Receiving(fds)) => match fds.get_mut(index).map(Option::take) {
            Some(Some(fd)) => Ok(fd),
            Some(None) => Err(format!(
                "file descriptor {index} of the message is claimed twice"
            )),
            None => Err(format!(
                "the message names file descriptor {index} but carries {}",
                fds.len()
            )),
        },
        _ => Err(
            "this value needs a file descriptor, and was not received through a \
                  multiproc channel that carries them"
                .to_string(),
        ),
    }
}

/// Encodes `value` into a [`Parcel`]: its bytes and duplicates of the descriptors its
/// handles refer to. At most [`MAX_FDS`] descriptors.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Parcel, CodecError> {
    let mut bytes = Vec::new();
    let fds = encode_into(value, &mut bytes)?;
    Ok(Parcel { bytes, fds })
}

/// As [`encode`], appending the bytes to `buf`; returns the descriptors. What was in `buf`
/// before is left in place, also when encoding fails.
pub fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, CodecError> {
    encode_into_with(buf, |buf| codec::encode_into(value, buf))
}

/// As [`encode_into`] if the bytes are at most `cap`; returns the descriptors and the
/// encoding's length either way. A longer one leaves `buf` as it was, and its descriptors
/// are those of a value that was measured, not sent (see [`codec::encode_into_at_most`]).
///
/// ```
/// use proc_core::internal::handle_wire;
///
/// let mut buf = Vec::new();
/// let (fds, len) = handle_wire::encode_into_at_most(&(1u8, "small"), &mut buf, 64).unwrap();
/// assert_eq!((fds.len(), len, buf.len()), (0, 7, 7));
/// let long = vec![0u64; 100];
/// let (_, len) = handle_wire::encode_into_at_most(&long, &mut Vec::new(), 64).unwrap();
/// assert_eq!(len, 101);
/// ```
pub fn encode_into_at_most<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<(Vec<OwnedFd>, usize), CodecError> {
    let mut len = 0;
    let fds = encode_into_with(buf, |buf| {
        len = codec::encode_into_at_most(value, buf, cap)?;
        Ok(())
    })?;
    Ok((fds, len))
}

/// Runs `encode` (which appends to `buf`) in a sending context: the descriptors of the
/// handles it wrote. On an error, or when the value refers to more than [`MAX_FDS`], `buf`
/// is as it was.
#[inline(always)]
fn encode_into_with(
    buf: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<Vec<OwnedFd>, CodecError> {
    let start = buf.len();
    let (encoded, fds) = sending(|| encode(buf));
    let error = match encoded {
        Ok(()) if fds.len() <= MAX_FDS => return Ok(fds),
        Ok(()) => too_many_fds(fds.len()),
        Err(e) => e,
    };
    buf.truncate(start);
    Err(error)
}

/// Runs `f` in a sending context; what it returned, and the descriptors it collected.
#[inline(always)]
fn sending<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let mut context = Context::Sending(Vec::new());
    let result = with_context(&mut context, f);
    match context {
        Context::Sending(fds) => (result, fds),
        Context::Receiving(_) => (result, Vec::new()),
    }
}

/// The error for a value that refers to more descriptors than one message carries.
#[cold]
fn too_many_fds(count: usize) -> CodecError {
    CodecError::Encode(format!(
        "the value refers to {count} file descriptors; one message carries at most {MAX_FDS}"
    ))
}

/// As [`encode`], into a [`Sink`](codec::Sink) piece by piece (see [`codec::encode_to`]);
/// returns the descriptors. When it fails, the sink may have taken part of the bytes.
///
/// ```
/// use proc_core::codec::{self, ByteBuf, Sink};
/// use proc_core::internal::handle_wire;
///
/// /// Keeps how many pieces came, and their bytes.
/// #[derive(Default)]
/// struct Pieces(usize, Vec<u8>);
/// impl Sink for Pieces {
///     type Error = std::convert::Infallible;
///     fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
///         self.0 += 1;
///         self.1.extend_from_slice(bytes);
///         Ok(())
///     }
/// }
///
/// let value = (3u32, ByteBuf::from(vec![0u8; 1 << 20]));
/// let mut pieces = Pieces::default();
/// let fds = handle_wire::encode_to(&value, &mut pieces).unwrap();
/// assert!(fds.is_empty());
/// assert_eq!((pieces.0, pieces.1), (2, codec::encode(&value).unwrap()));
/// ```
pub fn encode_to<T: Serialize + ?Sized, S: codec::Sink + ?Sized>(
    value: &T,
    sink: &mut S,
) -> Result<Vec<OwnedFd>, codec::StreamError<S::Error>> {
    let (sent, fds) = sending(|| codec::encode_to(value, sink));
    sent?;
    if fds.len() > MAX_FDS {
        return Err(codec::StreamError::Codec(too_many_fds(fds.len())));
    }
    Ok(fds)
}

/// Decodes a `T` from `bytes` (at most `limit` of them), giving its [`ReceivedFd`] fields
/// the descriptors of `fds` they name. Descriptors the value does not claim are closed.
/// The bytes and descriptors are untrusted: an index out of range or named twice is a
/// decode error, never a panic.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    fds: Vec<OwnedFd>,
) -> Result<T, CodecError> {
    let mut context = Context::Receiving(fds.into_iter().map(Some).collect());
    // Unclaimed descriptors close when `context` is dropped.
    with_context(&mut context, || codec::decode(bytes, limit))
}

/// A borrowed descriptor that serializes as its index in the parcel being encoded (a
/// duplicate of it joins the parcel). A handle's `Serialize` impl writes its descriptors
/// through this. Outside [`encode`] it refuses with an error that says where handles can go.
#[derive(Debug, Clone, Copy)]
pub struct FdRef<'fd>(BorrowedFd<'fd>);

impl<'fd> FdRef<'fd> {
    /// Wraps `fd` for serialization.
    pub fn new(fd: BorrowedFd<'fd>) -> Self {
        FdRef(fd)
    }
}

impl Serialize for FdRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = push_fd(self.0).map_err(S::Error::custom)?;
        index.serialize(serializer)
    }
}

/// A descriptor received with a parcel: a handle's `Deserialize` impl reads its descriptors
/// through this. Outside [`decode`] it refuses with an error.
#[derive(Debug)]
pub struct ReceivedFd(OwnedFd);

impl ReceivedFd {
    /// The descriptor, now owned by the caller.
    pub fn into_inner(self) -> OwnedFd {
        self.0
    }
}

impl From<ReceivedFd> for OwnedFd {
    fn from(fd: ReceivedFd) -> OwnedFd {
        fd.0
    }
}

impl<'de> Deserialize<'de> for ReceivedFd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u32::deserialize(deserializer)? as usize;
        take_fd(index).map(ReceivedFd).map_err(D::Error::custom)
    }
}

/// An owned descriptor that travels: it serializes as [`FdRef`] does and deserializes as
/// [`ReceivedFd`] does, so that a type holding one derives `Serialize` and `Deserialize`
/// and can be an argument of `Process::target` (inherited by a forked child, attached to
/// the task of a spawned or served one) or go through a Queue or a Connection.
///
/// ```
/// use std::os::fd::OwnedFd;
///
/// use proc_core::internal::handle_wire::{self, Descriptor};
///
/// let (read, _write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
/// let parcel = handle_wire::encode(&Descriptor::from(read)).unwrap();
/// assert_eq!(parcel.fds.len(), 1, "a copy of the descriptor joins the parcel");
/// let back: Descriptor = handle_wire::decode(&parcel.bytes, 1 << 10, parcel.fds).unwrap();
/// let _fd: OwnedFd = back.into();
/// ```
#[derive(Debug)]
pub struct Descriptor(OwnedFd);

impl From<OwnedFd> for Descriptor {
    fn from(fd: OwnedFd) -> Descriptor {
        Descriptor(fd)
    }
}

impl From<Descriptor> for OwnedFd {
    fn from(fd: Descriptor) -> OwnedFd {
        fd.0
    }
}

impl AsFd for Descriptor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Serialize for Descriptor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FdRef::new(self.0.as_fd()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Descriptor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ReceivedFd::deserialize(deserializer).map(|fd| Descriptor(fd.into_inner()))
    }
}

/// The kind of handle a value is, written first in its wire form, so that a handle received
/// as another type (a `Lock` as an `RLock`, a `Semaphore` as a `BoundedSemaphore`, a `Queue`
/// as a `JoinableQueue`) is a decode error that names both, as for any mistyped item.
///
/// A handle's `Serialize` impl writes [`HandleKind::new`] before its descriptors; its
/// `Deserialize` impl reads a `HandleKind` first and [`expect`](HandleKind::expect)s its own.
///
/// ```
/// use proc_core::codec;
/// use proc_core::internal::handle_wire::HandleKind;
///
/// let bytes = codec::encode(&(HandleKind::new("Lock"), 7u32)).unwrap();
/// let (kind, _fd_index): (HandleKind, u32) = codec::decode(&bytes, 64).unwrap();
/// type DecodeError = serde::de::value::Error;
/// assert!(kind.expect::<DecodeError>("Lock").is_ok());
/// let err = kind.expect::<DecodeError>("RLock").unwrap_err();
/// assert_eq!(err.to_string(), "received a Lock where an RLock was expected");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleKind(std::borrow::Cow<'static, str>);

/// The longest kind name a receiver reads; a longer one is not a handle's.
const KIND_NAME_LIMIT: usize = 64;

impl HandleKind {
    /// The kind named `name` (the type's name, as users know it: `"Lock"`, `"Queue"`).
    pub const fn new(name: &'static str) -> Self {
        HandleKind(std::borrow::Cow::Borrowed(name))
    }

    /// The kind's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `Ok` when this (received) kind is `expected`; otherwise the decode error that says
    /// what arrived instead.
    pub fn expect<E: serde::de::Error>(&self, expected: &str) -> Result<(), E> {
        if self.0 == expected {
            return Ok(());
        }
        // "an Event", "an RLock" (said "ar-lock"), "a Lock".
        let article = |name: &str| {
            let mut letters = name.chars();
            match (letters.next(), letters.next()) {
                (Some('A' | 'E' | 'I' | 'O' | 'U'), _) => "an",
                (Some('R'), Some(second)) if second.is_uppercase() => "an",
                _ => "a",
            }
        };
        Err(E::custom(format!(
            "received {} {} where {} {expected} was expected",
            article(&self.0),
            self.0,
            article(expected)
        )))
    }
}

impl Serialize for HandleKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HandleKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name.len() > KIND_NAME_LIMIT || name.is_empty() {
            return Err(D::Error::custom(format!(
                "a handle's kind is named by 1 to {KIND_NAME_LIMIT} bytes, not {}",
                name.len()
            )));
        }
        Ok(HandleKind(std::borrow::Cow::Owned(name)))
    }
}

/// Writes a handle: its kind, then `rest` (its descriptors, as [`FdRef`]s, and whatever
/// else travels with them). [`deserialize_handle`] reads it back.
///
/// ```
/// use std::os::fd::{AsFd, OwnedFd};
/// use serde::{Deserialize, Deserializer, Serialize, Serializer};
/// use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
///
/// /// A handle to a pipe's reading end, with a label.
/// struct Reader(OwnedFd, u32);
///
/// impl Serialize for Reader {
///     fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
///         handle_wire::serialize_handle(s, "Reader", &(FdRef::new(self.0.as_fd()), self.1))
///     }
/// }
///
/// impl<'de> Deserialize<'de> for Reader {
///     fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         let (fd, label): (ReceivedFd, u32) = handle_wire::deserialize_handle(d, "Reader")?;
///         Ok(Reader(fd.into_inner(), label))
///     }
/// }
///
/// /// Another kind of handle, with the same wire form.
/// struct Writer(OwnedFd);
///
/// impl<'de> Deserialize<'de> for Writer {
///     fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         let (fd, _): (ReceivedFd, u32) = handle_wire::deserialize_handle(d, "Writer")?;
///         Ok(Writer(fd.into_inner()))
///     }
/// }
///
/// let (read, _write) = std::io::pipe()?;
/// let parcel = handle_wire::encode(&Reader(read.into(), 7))?;
/// let back: Reader = handle_wire::decode(&parcel.bytes, 64, parcel.fds)?;
/// assert_eq!(back.1, 7);
///
/// // Received as another kind, it is refused before anything else of it is read.
/// let parcel = handle_wire::encode(&back)?;
/// let err = handle_wire::decode::<Writer>(&parcel.bytes, 64, parcel.fds).err().unwrap();
/// assert!(err.to_string().ends_with("received a Reader where a Writer was expected"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serialize_handle<S: Serializer, R: Serialize + ?Sized>(
    serializer: S,
    kind: &'static str,
    rest: &R,
) -> Result<S::Ok, S::Error> {
    (HandleKind::new(kind), rest).serialize(serializer)
}

/// Reads what [`serialize_handle`] wrote: the kind, which must be `kind` (otherwise a
/// decode error that names both, before anything else is read), then the rest.
pub fn deserialize_handle<'de, D: Deserializer<'de>, R: Deserialize<'de>>(
    deserializer: D,
    kind: &'static str,
) -> Result<R, D::Error> {
    struct Handle<R>(&'static str, std::marker::PhantomData<R>);
    impl<'de, R: Deserialize<'de>> serde::de::Visitor<'de> for Handle<R> {
        type Value = R;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a multiproc {} handle", self.0)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<R, A::Error> {
            let missing = |index| A::Error::invalid_length(index, &self);
            let received: HandleKind = seq.next_element()?.ok_or_else(|| missing(0))?;
            received.expect(self.0)?;
            seq.next_element()?.ok_or_else(|| missing(1))
        }
    }
    deserializer.deserialize_tuple(2, Handle(kind, std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn nested_parcels_keep_their_own_descriptors() {
        struct Nested<'a>(BorrowedFd<'a>);
        impl Serialize for Nested<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = encode(&FdRef::new(self.0)).map_err(S::Error::custom)?;
                assert_eq!(inner.fds.len(), 1);
                (FdRef::new(self.0), inner.bytes.len()).serialize(s)
            }
        }
        let (read, _write) = std::io::pipe().unwrap();
        let parcel = encode(&(FdRef::new(read.as_fd()), Nested(read.as_fd()))).unwrap();
        assert_eq!(parcel.fds.len(), 2);
    }

    #[test]
    fn bad_indexes_are_decode_errors() {
        let (read, _write) = std::io::pipe().unwrap();
        let parcel = encode(&FdRef::new(read.as_fd())).unwrap();
        // No descriptors delivered with the bytes.
        assert!(decode::<ReceivedFd>(&parcel.bytes, 64, Vec::new()).is_err());
        // The same index claimed twice.
        let twice = codec::encode(&(0u32, 0u32)).unwrap();
        let err = decode::<(ReceivedFd, ReceivedFd)>(&twice, 64, parcel.fds).unwrap_err();
        assert!(err.to_string().contains("claimed twice"), "{err}");
        // Outside a parcel.
        assert!(codec::decode::<ReceivedFd>(&parcel.bytes, 64).is_err());
    }

    #[test]
    fn descriptors_cross_a_socket_with_their_bytes() {
        use crate::fd_passing::{recv_with_fds, send_with_fds};
        use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (read, write) = std::io::pipe().unwrap();
        let parcel = encode(&("x".repeat(100), FdRef::new(read.as_fd()))).unwrap();
        let fds: Vec<BorrowedFd<'_>> = parcel.fds.iter().map(AsFd::as_fd).collect();
        send_with_fds(a.as_fd(), &parcel.bytes, &fds).unwrap();
        let mut buf = vec![0u8; parcel.bytes.len()];
        let mut got = Vec::new();
        let n = recv_with_fds(b.as_fd(), &mut buf, &mut got, MsgFlags::empty()).unwrap();
        assert_eq!(n.bytes, buf.len());
        let (text, fd): (String, ReceivedFd) = decode(&buf, 1024, got).unwrap();
        assert_eq!(text.len(), 100);
        // The received descriptor is the same pipe: a write shows up on it.
        use std::io::{Read, Write};
        (&write).write_all(b"!").unwrap();
        let mut one = [0u8; 1];
        std::fs::File::from(fd.into_inner())
            .read_exact(&mut one)
            .unwrap();
        assert_eq!(&one, b"!");
    }
}
