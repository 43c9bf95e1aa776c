//! A worker's two mailboxes: shared memory that a chunk's message crosses into the worker
//! (its inbox) and its results cross back in (its outbox), instead of the socket.
//!
//! Through a Unix socket, a 200 KB message costs 33 to 41 µs on this project's test
//! machine: the kernel copies it into socket buffers and out again, and allocates and frees
//! those on the way. A copy into shared memory costs about 4 µs. So a message that fits
//! goes into the mailbox, and the socket carries only a notice of a few bytes that says how
//! long it is. The socket still orders everything, and so no lock is needed:
//! - the pool writes a worker's inbox only while that worker holds no chunk (it reads its
//!   inbox only between a notice and its reply), and
//! - the worker writes its outbox only while it holds a chunk; the pool copies the results
//!   out when the reply's notice comes, before it hands that worker another chunk.
//!
//! A message larger than a mailbox goes through the socket as before.
//!
//! A mailbox is a memory file of [`MAILBOX_BYTES`]; its pages are only taken as a message
//! first reaches them, and are used again by every later message.
//!
//! Under Fork, a worker inherits the mappings of the mailboxes of the workers started
//! before it, and so keeps their pages alive after those workers end (with `max_tasks`,
//! retired workers' mailboxes add up in the ones that outlive them) until it ends itself.
//! Mapping them with `MADV_DONTFORK`, and having each worker map its own pair from the
//! descriptors, would end that; not done yet.

use proc_core::internal::handle_wire::{self, FdRef, ReceivedFd};
use proc_sync::internal::SharedBytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use proc_ipc::Connection;

use super::message::{KEEP_BUFFER, seal};
use crate::error::Result;

/// How large a message a mailbox holds: the largest buffer the pool and its workers keep.
const MAILBOX_BYTES: usize = KEEP_BUFFER;

/// One mailbox, mapped in the pool and in its worker. It has no lock: the socket's
/// messages order every access (see above).
#[derive(Clone)]
pub(crate) struct Mailbox(SharedBytes);

impl Mailbox {
    pub(crate) fn new() -> Result<Mailbox> {
        Ok(Mailbox(SharedBytes::new(
            c"multiproc-pool-mailbox",
            MAILBOX_BYTES,
        )?))
    }

    /// How many bytes it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.0.len()
    }

    /// Writes `message` at its start; `false` (and nothing written) when it does not fit.
    ///
    /// # Safety
    /// The other process neither reads nor writes the mailbox meanwhile (see the module
    /// docs for when that is so).
    pub(crate) unsafe fn put(&self, message: &[u8]) -> bool {
        if message.len() > self.capacity() {
            return false;
        }
        // SAFETY: the region holds `capacity()` bytes and the message fits; by the caller's
        // promise nobody else touches them now.
        unsafe {
            std::ptr::copy_nonoverlapping(message.as_ptr(), self.0.as_ptr(), message.len());
        }
        true
    }

    /// Sends `message` to the process at the other end of `conn`: written here, with a
    /// notice of its length (the header `notice(len)`, sealed into `scratch`) through
    /// `conn`; or through `conn` itself when it does not fit.
    ///
    /// # Safety
    /// As for [`put`](Self::put).
    pub(crate) unsafe fn post<H: Serialize>(
        &self,
        conn: &Connection,
        message: &[u8],
        notice: impl FnOnce(u64) -> H,
        scratch: &mut Vec<u8>,
    ) -> Result<(), proc_ipc::Error> {
        // SAFETY: by the caller's promise.
        if !unsafe { self.put(message) } {
            return conn.send_bytes(message);
        }
        scratch.clear();
        seal(scratch, &notice(message.len() as u64))?;
        conn.send_bytes(scratch)
    }

    /// Replaces what `into` holds with the first `len` bytes of the mailbox; `false` (and
    /// `into` emptied) when `len` is more than it holds. `len` came from the other process.
    ///
    /// # Safety
    /// The other process does not write the mailbox meanwhile. (One that broke the rule
    /// could only garble what is copied, which the caller decodes as untrusted bytes.)
    pub(crate) unsafe fn copy_out(&self, len: u64, into: &mut Vec<u8>) -> bool {
        into.clear();
        // SAFETY: by the caller's promise, the other process does not write the mailbox
        // while the slice lives, which ends with this copy.
        match unsafe { self.contents(len) } {
            Some(contents) => {
                into.extend_from_slice(contents);
                true
            }
            None => false,
        }
    }

    /// The first `len` bytes of the mailbox, in place; `None` when `len` is more than it
    /// holds. `len` came from the other process.
    ///
    /// # Safety
    /// The other process does not write the mailbox while the slice lives.
    pub(crate) unsafe fn contents(&self, len: u64) -> Option<&[u8]> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.capacity())?;
        // SAFETY: `len` bytes are within the region, which lives as long as `self`; by the
        // caller's promise they do not change while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(self.0.as_ptr(), len) })
    }
}

/// A mailbox travels to its worker as its memory file and its size.
impl Serialize for Mailbox {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rest = (FdRef::new(self.0.fd()), self.capacity() as u64);
        handle_wire::serialize_handle(serializer, KIND, &rest)
    }
}

/// The kind a mailbox travels as.
const KIND: &str = "Mailbox";

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (fd, capacity): (ReceivedFd, u64) =
            handle_wire::deserialize_handle(deserializer, KIND)?;
        let capacity = usize::try_from(capacity).map_err(D::Error::custom)?;
        SharedBytes::from_fd(fd.into_inner(), capacity)
            .map(Mailbox)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_holds_16_mib_as_the_size_tests_of_pool_chunks_assume() {
        // tests/pool_chunks.rs sends 17.6 MB chunks and 20 MiB of results to take the
        // connection instead: if this size grows, they must grow with it.
        assert_eq!(Mailbox::new().unwrap().capacity(), 16 << 20);
    }

    #[test]
    #[allow(
        clippy::undocumented_unsafe_blocks,
        reason = "one SAFETY comment covers the calls below: no other process has this mailbox"
    )]
    fn a_message_that_fits_comes_out_as_it_went_in_and_one_that_does_not_is_refused() {
        let mailbox = Mailbox::new().unwrap();
        let mut out = vec![9];
        // SAFETY (all below): no other process has this mailbox.
        assert!(unsafe { mailbox.put(b"hello") });
        assert!(unsafe { mailbox.copy_out(5, &mut out) });
        assert_eq!(out, b"hello");
        assert_eq!(unsafe { mailbox.contents(4) }, Some(&b"hell"[..]));
        let too_long = mailbox.capacity() as u64 + 1;
        assert!(!unsafe { mailbox.copy_out(too_long, &mut out) });
        assert!(out.is_empty());
        assert_eq!(unsafe { mailbox.contents(too_long) }, None);
        assert_eq!(unsafe { mailbox.contents(u64::MAX) }, None);
        assert!(!unsafe { mailbox.put(&vec![0; mailbox.capacity() + 1]) });
        assert_eq!(unsafe { mailbox.contents(5) }, Some(&b"hello"[..]));
    }
}
