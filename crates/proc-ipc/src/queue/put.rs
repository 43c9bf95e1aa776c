//! The put path: an item is encoded (past the inline limit, only measured), then published
//! under the producers' lock as an inline frame, streamed in chunks, or handed over as a
//! memory file (`Held::try_publish`), waiting for room as long as the caller allows.

use proc_core::internal::handle_wire;
use std::borrow::Borrow;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use proc_core::codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Queue;
use super::ring::{Held, Side};
use super::scratch::with_scratch;
use super::settings::LargeItems;
use super::stream::{ChunkWriter, Stop, changed};
use super::wait::{CONSUMER_GRACE, Wait};
use crate::chunk;
use crate::error::{Error, PutError};
use crate::frame::{self, FrameKind, HEADER, Handoff};
use crate::side_channel::{self, SideChannel};

impl<T: Serialize + DeserializeOwned> Queue<T> {
    pub(super) fn put_with<I: Borrow<T>>(&self, item: I, wait: Wait) -> Result<(), PutError<I>> {
        with_scratch(|bytes| self.put_encoded_in(bytes, item, wait))
    }

    /// `put_with`, encoding into `bytes` (this thread's scratch buffer, empty). `item` is
    /// the item, or a reference to it: errors hand back what was given.
    fn put_encoded_in<I: Borrow<T>>(
        &self,
        bytes: &mut Vec<u8>,
        item: I,
        mut wait: Wait,
    ) -> Result<(), PutError<I>> {
        let shared = &*self.shared;
        let failed = |item, error| Err(PutError::Failed { item, error });
        let value: &T = item.borrow();
        // A small item is encoded here in full. One longer than an inline frame is only
        // measured by the same pass (no string or byte buffer past the cap is copied), to be
        // encoded again straight into the ring as it is streamed: one copy of its bytes.
        // `carried`: the descriptors of the handles the item holds (a Lock, a Queue, …).
        let (mut carried, len) =
            match handle_wire::encode_into_at_most(value, bytes, shared.inline_limit) {
                Ok(encoded) => encoded,
                Err(e) => return failed(item, e.into()),
            };
        if carried.len() >= side_channel::MAX_FDS {
            let error = Error::TooManyHandles {
                count: carried.len(),
                limit: side_channel::MAX_FDS - 1,
            };
            return failed(item, error);
        }
        if len > shared.item_limit {
            let error = Error::TooLarge {
                len,
                limit: shared.item_limit,
            };
            return failed(item, error);
        }
        let encoding = if len <= shared.inline_limit {
            Encoding::Done(bytes)
        } else if carried.is_empty() && shared.large_items == LargeItems::Streamed {
            Encoding::Deferred { item: value, len }
        } else {
            // Handed over as a memory file (it holds handles, which only a socket can
            // carry, or the queue hands every large item over): encoded in full here.
            match handle_wire::encode_into(value, bytes) {
                Ok(fds) => carried = fds,
                Err(e) => return failed(item, e.into()),
            }
            Encoding::Done(bytes)
        };
        // A large item that ends up handed over keeps its memory file across waits.
        let mut file = None;
        let mut held = match Held::acquire(self, Side::Producer, wait) {
            Ok(Some(held)) => held,
            Ok(None) => return Err(PutError::Full(item)),
            Err(error) => return failed(item, error),
        };
        loop {
            match held.try_publish(&encoding, &carried, &mut file, &mut wait) {
                Attempt::Done => return Ok(()),
                Attempt::Closed => return Err(PutError::Closed(item)),
                Attempt::GaveUp => return Err(PutError::Full(item)),
                Attempt::Failed(error) => return failed(item, error),
                Attempt::NoRoom => {}
            }
            match held.wait_for_change(&mut wait) {
                Ok(Some(relocked)) => held = relocked,
                Ok(None) => return Err(PutError::Full(item)),
                Err(error) => return failed(item, error),
            }
        }
    }
}

/// A put error with the reference it was given dropped: the caller of a `put_ref` has the
/// item.
pub(super) fn without_item<I>(error: PutError<I>) -> PutError<()> {
    match error {
        PutError::Full(_) => PutError::Full(()),
        PutError::Closed(_) => PutError::Closed(()),
        PutError::Failed { error, .. } => PutError::Failed { item: (), error },
    }
}

/// An item on its way into the ring.
enum Encoding<'i, T> {
    /// Encoded in full.
    Done(&'i [u8]),
    /// A large item, measured at `len` bytes: encoded as its frames are written.
    Deferred { item: &'i T, len: usize },
}

impl<T: Serialize> Encoding<'_, T> {
    fn len(&self) -> usize {
        match self {
            Encoding::Done(bytes) => bytes.len(),
            Encoding::Deferred { len, .. } => *len,
        }
    }

    /// The bytes in full, `len()` of them: for the memory file of an item handed over.
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
        match self {
            Encoding::Done(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
            Encoding::Deferred { item, len } => match codec::encode(item)? {
                bytes if bytes.len() == *len => Ok(bytes.into()),
                bytes => Err(changed(*len as u64, bytes.len() as u64)),
            },
        }
    }
}

/// What one attempt at publishing an item under the producers' lock came to.
enum Attempt {
    /// Published (and the consumers' doorbell rung).
    Done,
    /// No room for it (or no item slot) now: wait for consumers, then try again.
    NoRoom,
    /// The queue is closed.
    Closed,
    /// A streamed item was given up half way (deadline passed): nothing delivered.
    GaveUp,
    Failed(Error),
}

/// The bytes the frames of a streamed item of `len` bytes take at most: its chunks, their
/// headers, the total length in the first and possibly an empty last frame.
fn streamed_len(len: usize, chunk_bytes: usize) -> u64 {
    let frames = len.div_ceil(chunk_bytes) as u64 + 1;
    (len + chunk::TOTAL_LEN) as u64 + frames * HEADER as u64
}

impl<'q, T> Held<'q, T> {
    /// Publishes the item if there is room: inline, streamed, or handed over as `file`
    /// (made here the first time it is needed). Producers' lock held.
    fn try_publish(
        &mut self,
        encoding: &Encoding<'_, T>,
        carried: &[OwnedFd],
        file: &mut Option<OwnedFd>,
        wait: &mut Wait,
    ) -> Attempt
    where
        T: Serialize,
    {
        let queue = self.queue;
        let shared = &*queue.shared;
        if queue.put_side().wait.0.closed.load(Ordering::SeqCst) != 0 {
            return Attempt::Closed;
        }
        // An item that holds handles goes through the side channel, whatever its size: only
        // a socket can carry its descriptors.
        let handles = !carried.is_empty();
        if let Encoding::Done(bytes) = encoding
            && bytes.len() <= shared.inline_limit
            && !handles
        {
            let needed = frame::frame_len(bytes.len());
            return match self.room(needed, true) {
                Ok(room) if room.slot && room.free >= needed => {
                    self.publish(FrameKind::Inline, &[bytes], true);
                    Attempt::Done
                }
                Ok(_) => Attempt::NoRoom,
                Err(error) => Attempt::Failed(error),
            };
        }
        // A deferred item is one the queue streams (it holds no handles).
        if let Encoding::Deferred { item, len } = *encoding
            && file.is_none()
        {
            // All its frames, and room for an `Abort` after them.
            let whole = streamed_len(len, shared.chunk_bytes) + HEADER as u64;
            let room = match self.room(whole, true) {
                Ok(room) => room,
                Err(error) => return Attempt::Failed(error),
            };
            if !room.slot {
                return Attempt::NoRoom;
            }
            // Streaming an item larger than the free room makes this producer wait for a
            // consumer: only when one is there, or took this process's last streamed item
            // just now (it is decoding that one, and comes back soon). Should none take the
            // chunks after all, they are taken back (see `take_back`) and the item is
            // handed over below. A try never waits: it streams only what fits at once.
            let streams = room.free >= whole
                || (!matches!(wait, Wait::No)
                    && (shared.consumer_seen.within(CONSUMER_GRACE) || queue.consumer_present()));
            if streams && let Some(attempt) = self.stream(item, len, wait) {
                return attempt;
            }
        }
        let needed = frame::frame_len(Handoff::LEN);
        match self.room(needed, true) {
            Ok(room) if room.slot && room.free >= needed => {}
            Ok(_) => return Attempt::NoRoom,
            Err(error) => return Attempt::Failed(error),
        }
        let file = match file {
            Some(file) => file,
            None => match encoding.bytes() {
                Err(error) => return Attempt::Failed(error),
                Ok(bytes) => match SideChannel::file_with(&bytes) {
                    Ok(made) => file.insert(made),
                    Err(e) => {
                        return Attempt::Failed(Error::io(
                            "writing a large item to a memory file",
                            e,
                        ));
                    }
                },
            },
        };
        // Reserved before it is sent: a producer killed after sending must not leave its id
        // to the next one (see the side_channel module).
        let id = queue.put_hot().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        match shared.side.send(id, file, carried) {
            Ok(()) => {
                let record = Handoff {
                    id,
                    len: encoding.len() as u64,
                    handles: carried.len() as u64,
                };
                self.publish(FrameKind::Handoff, &[&record.to_bytes()], true);
                Attempt::Done
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Attempt::NoRoom,
            Err(e) => Attempt::Failed(Error::io("sending a large item's memory file", e)),
        }
    }

    /// Streams `item`, measured at `len` bytes, through the ring in chunks (see the `chunk`
    /// module), encoding it straight into its frames and keeping the producers' lock from
    /// the first to the last. `None`: the ring filled up with no consumer there to empty
    /// it; the frames written are abandoned and the caller hands the item over instead.
    fn stream(&mut self, item: &T, len: usize, wait: &mut Wait) -> Option<Attempt>
    where
        T: Serialize,
    {
        let mut writer = ChunkWriter::new(self, wait, len as u64);
        let written = match handle_wire::encode_to(item, &mut writer) {
            // Measured without handles, it must have none now either.
            Ok(carried) if carried.is_empty() => Ok(()),
            Ok(_) => Err(writer.changed(0)),
            Err(codec::StreamError::Stopped(stop)) => Err(stop),
            Err(codec::StreamError::Codec(e)) => Err(Stop::Failed(e.into())),
        };
        // Dropped before its last frame, the writer ends the item with an `Abort`.
        match written.and_then(|()| writer.finish()) {
            Ok(()) => Some(Attempt::Done),
            Err(Stop::NoConsumer) => {
                writer.take_back();
                None
            }
            Err(Stop::GaveUp) => {
                drop(writer);
                *wait = Wait::No;
                Some(Attempt::GaveUp)
            }
            Err(Stop::Failed(error)) => Some(Attempt::Failed(error)),
        }
    }
}
