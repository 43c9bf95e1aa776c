//! Large items streamed through the ring in chunks (the frames, and what each side does
//! when the other dies, are in the `chunk` module): the producer's `ChunkWriter`, which
//! encodes an item straight into its frames, taking them back when no consumer comes; and
//! the consumer's `receive_streamed`, which decodes an item as its frames are copied out
//! (`RingSource`).

use std::sync::atomic::{AtomicU64, Ordering};

use proc_core::codec;
use proc_sync::internal::futex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Queue;
use super::ring::{Held, Side};
use super::wait::{Wait, await_change};
use crate::chunk::{self, Assembly, Outcome};
use crate::error::{Error, GetError};
use crate::frame::{self, FrameError, FrameKind, HEADER, Handoff, RingPayload};

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Receives the streamed item whose first frame is `first`, decoding it as its chunks
    /// are copied out of the ring: a large byte buffer or string is copied once, into the
    /// value. The consumers' lock is held from the first frame to the last (see the chunk
    /// module), and moving past each frame as it is read lets the producer write the next
    /// ones into its room. `Ok`: the item was taken (moved past its last frame, a get),
    /// whether or not it decoded. `Err`: what ended it before its last frame.
    pub(super) fn receive_streamed(
        &self,
        held: &Held<'_, T>,
        assembly: &mut Assembly,
        wait: &Wait,
        first: Chunk,
    ) -> Result<Result<T, GetError>, StreamStop> {
        let open_item = &self.get_hot().open_item;
        open_item.store(1, Ordering::Relaxed);
        // Cleared however this ends, a panic in the item's `Deserialize` included (the
        // next consumer then skips the rest of the item, as a dead consumer's).
        let _open = OpenItem(open_item);
        let mut source = RingSource {
            held,
            assembly,
            wait,
            chunk: first,
        };
        // Err: the item ended before its last frame; `accept` has already dropped it when
        // its producer abandoned it.
        let decoded = match codec::decode_from::<T, _>(&mut source, self.shared.item_limit) {
            Ok(value) => Ok(value),
            Err(codec::StreamError::Codec(e)) => Err(GetError::Failed(e.into())),
            Err(codec::StreamError::Stopped(stop)) => return Err(stop),
        };
        // The item is taken once its last frame is. A value decodes only once its source
        // has ended (`decode_from` checks that no byte is left), so this skips the rest of
        // an item that did not decode.
        source.skip_rest()?;
        held.advance(source.chunk.next, true);
        Ok(decoded)
    }
}

/// The frame of a streamed item that a consumer is reading: its payload from `at` to
/// `end` is still to be copied out.
pub(super) struct Chunk {
    /// Where the frame's payload starts in the ring.
    pub(super) payload_offset: usize,
    pub(super) at: usize,
    pub(super) end: usize,
    /// It is the item's last frame.
    pub(super) last: bool,
    /// The position just past the frame.
    pub(super) next: u64,
}

/// Why a streamed item ended before its last frame, for a consumer.
pub(super) enum StreamStop {
    /// Its producer gave it up or died: nothing of it was acknowledged. Read on.
    Abandoned,
    /// Its producer died, and the consumer's deadline has passed.
    GaveUp,
    /// Its chunks did not add up; it was moved past (a get).
    Spoiled(String),
    /// The ring holds bytes that are not a frame.
    Corrupt(FrameError),
}

/// Clears the consumers' mark of an item being received when dropped.
struct OpenItem<'a>(&'a AtomicU64);

impl Drop for OpenItem<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A streamed item's bytes, as the decoder reads them: copied out of the ring frame by
/// frame, under the consumers' lock, moving past each frame once it is read.
struct RingSource<'a, 'q, T> {
    held: &'a Held<'q, T>,
    assembly: &'a mut Assembly,
    wait: &'a Wait,
    chunk: Chunk,
}

impl<T> RingSource<'_, '_, T> {
    /// Moves past the frame being read (what is left of its bytes is skipped) to the
    /// item's next one.
    fn next_chunk(&mut self) -> Result<(), StreamStop> {
        let held = self.held;
        held.advance(self.chunk.next, false);
        loop {
            let found = match held.next_frame() {
                (Ok(Some(found)), _) => found,
                (Err(corrupt), _) => return Err(StreamStop::Corrupt(corrupt)),
                (Ok(None), tail) => {
                    // Wait for it, keeping the lock, so that no other consumer takes its
                    // next chunks for the rest of a dead one's item.
                    if !held.queue.await_rest_of_item(tail, self.wait) {
                        // Its producer died and our deadline has passed: nothing of it was
                        // acknowledged, and nothing of it will come.
                        return Err(StreamStop::GaveUp);
                    }
                    continue;
                }
            };
            let payload = RingPayload {
                ring: held.queue.ring(),
                offset: found.payload_offset,
            };
            match self.assembly.accept(found.kind, found.payload_len, payload) {
                Outcome::Bytes { from, len, last } => {
                    self.chunk = Chunk {
                        payload_offset: found.payload_offset,
                        at: from,
                        end: from + len,
                        last,
                        next: found.next,
                    };
                    return Ok(());
                }
                Outcome::Consumed { ends_item } => {
                    held.advance(found.next, ends_item);
                    // A chunk of an item that is spoiled: skipped up to its last frame.
                    if !self.assembly.is_receiving() {
                        return Err(StreamStop::Abandoned);
                    }
                }
                Outcome::Spoiled(detail) => {
                    held.advance(found.next, true);
                    return Err(StreamStop::Spoiled(detail));
                }
                // A frame that begins an item: the one being received was abandoned, and
                // this one is looked at again. (A whole item or a hand-over frame also
                // begins one, and comes as `Abandoned` while an item is being received.)
                Outcome::Abandoned | Outcome::Whole | Outcome::Handoff => {
                    return Err(StreamStop::Abandoned);
                }
            }
        }
    }

    /// Skips the rest of the item, up to the end of its last frame (where the position
    /// stays, for the caller to move past it).
    fn skip_rest(&mut self) -> Result<(), StreamStop> {
        while !self.chunk.last {
            self.next_chunk()?;
        }
        self.chunk.at = self.chunk.end;
        Ok(())
    }
}

impl<T> codec::Source for RingSource<'_, '_, T> {
    type Error = StreamStop;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, StreamStop> {
        while self.chunk.at == self.chunk.end {
            if self.chunk.last {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let chunk = &mut self.chunk;
        let len = at_most.min(chunk.end - chunk.at);
        let mut payload = RingPayload {
            ring: self.held.queue.ring(),
            offset: chunk.payload_offset,
        };
        // Within the frame's payload, which lies between head and tail (see RingPayload).
        chunk::append_from(buf, len, chunk.at, &mut payload);
        chunk.at += len;
        Ok(len)
    }

    fn left_at_most(&self) -> usize {
        let in_chunk = (self.chunk.end - self.chunk.at) as u64;
        usize::try_from(self.assembly.left() + in_chunk).unwrap_or(usize::MAX)
    }
}

/// The error for an item whose encoding came to `written` bytes (at least, if it was
/// stopped there) after it measured `measured`, or held handles only the second time.
pub(super) fn changed(measured: u64, written: u64) -> Error {
    let at_least = if written > measured { "at least " } else { "" };
    Error::Codec(codec::CodecError::Encode(format!(
        "the item measured {measured} bytes without handles, then wrote {at_least}{written} \
         bytes or held handles: its Serialize implementation must write the same each time"
    )))
}

/// Why a streamed item ended before its last frame.
pub(super) enum Stop {
    /// The deadline passed (or a reset was asked for) while the ring stayed full.
    GaveUp,
    /// The ring is full and no consumer is there to empty it: hand the item over instead.
    NoConsumer,
    /// The item could not be written: among others, it wrote other bytes than it measured
    /// (see `ChunkWriter::changed`).
    Failed(Error),
}

/// What every chunk but the last keeps free after it: room for the `Abort` frame that ends
/// the item early, and for the hand-over frame that may follow it (see `Stop::NoConsumer`).
const STREAM_RESERVE: u64 = (HEADER + HEADER + Handoff::LEN) as u64;

/// The frame a [`ChunkWriter`] is filling: written past `tail`, published once full.
struct OpenFrame {
    /// Ring offset of its next byte.
    offset: usize,
    /// `tail` once it is published.
    new_tail: u64,
    /// Bytes of the item it still takes.
    left: usize,
    ends_item: bool,
}

/// Writes a streamed item into the ring as its bytes arrive (a codec [`Sink`](codec::Sink)
/// for an item encoded straight into its frames): frames of up to `chunk_bytes`, each
/// published once full, waiting for room as consumers take them. The producers' lock is
/// held throughout. Dropped before the item's last frame (an error, or a panic in the
/// item's `Serialize`), it ends the item with an `Abort`.
pub(super) struct ChunkWriter<'h, 'q, T> {
    held: &'h Held<'q, T>,
    wait: &'h mut Wait,
    /// Where the item's first frame starts.
    start: u64,
    /// The item's length, announced in its first frame.
    total: u64,
    /// Bytes of the item written so far (published, or in the open frame).
    written: u64,
    /// Whether a frame of the item is published, so that ending it early takes an `Abort`.
    published: bool,
    open: Option<OpenFrame>,
    /// The item's last frame is published, or the item was abandoned.
    ended: bool,
}

impl<'h, 'q, T> ChunkWriter<'h, 'q, T> {
    pub(super) fn new(held: &'h Held<'q, T>, wait: &'h mut Wait, total: u64) -> Self {
        let hot = held.queue.put_hot();
        hot.open_item.store(1, Ordering::Release);
        ChunkWriter {
            held,
            wait,
            start: hot.tail.load(Ordering::Relaxed),
            total,
            written: 0,
            published: false,
            open: None,
            ended: false,
        }
    }

    /// Copies `bytes` into the open frames, opening and publishing frames as they fill.
    fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        if self.written + bytes.len() as u64 > self.total {
            return Err(self.changed(bytes.len()));
        }
        let ring = self.held.queue.ring();
        while !bytes.is_empty() {
            let open = match self.open.take() {
                Some(open) => open,
                None => self.open_frame()?,
            };
            let n = open.left.min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            // SAFETY: the frame's bytes are free (open_frame checked the room), and this
            // thread holds the producers' lock; consumers read them once `tail` moves.
            let offset = unsafe { ring.copy_in(open.offset, now) };
            self.written += n as u64;
            bytes = rest;
            let open = OpenFrame {
                offset,
                left: open.left - n,
                ..open
            };
            if open.left == 0 {
                self.held.publish_written(open.new_tail, open.ends_item);
                self.published = true;
                self.ended = open.ends_item;
            } else {
                self.open = Some(open);
            }
        }
        Ok(())
    }

    /// Writes the header of the item's next frame, once there is room for it.
    fn open_frame(&mut self) -> Result<OpenFrame, Stop> {
        let queue = self.held.queue;
        let first = !self.published;
        let n = (self.total - self.written).min(queue.shared.chunk_bytes as u64) as usize;
        // The first frame is never the last one: an item is at least First and Last.
        let last = !first && self.written + n as u64 == self.total;
        let (kind, prefix) = match (first, last) {
            (true, _) => (FrameKind::ChunkFirst, chunk::TOTAL_LEN),
            (false, true) => (FrameKind::ChunkLast, 0),
            (false, false) => (FrameKind::ChunkMore, 0),
        };
        let payload = prefix + n;
        let reserve = if last { 0 } else { STREAM_RESERVE };
        self.await_room(frame::frame_len(payload) + reserve)?;
        let tail = queue.put_hot().tail.load(Ordering::Relaxed);
        let ring = queue.ring();
        // SAFETY: await_room found the frame's bytes free, and this thread holds the
        // producers' lock; consumers read them once `tail` moves past them.
        let mut offset =
            unsafe { ring.write_header(ring.offset_of(tail), frame::header(kind, payload)) };
        if first {
            // SAFETY: as above.
            offset = unsafe { ring.copy_in(offset, &self.total.to_le_bytes()) };
        }
        Ok(OpenFrame {
            offset,
            new_tail: tail + frame::frame_len(payload),
            left: n,
            ends_item: last,
        })
    }

    /// Returns once the ring has `needed` free bytes, waiting (the lock kept) for consumers
    /// to take chunks while one is there to.
    fn await_room(&mut self, needed: u64) -> Result<(), Stop> {
        let queue = self.held.queue;
        let consumers = queue.get_side();
        let reset = &consumers.wait.0.reset_requested;
        loop {
            let room = self.held.room(needed, false).map_err(Stop::Failed)?;
            if room.free >= needed {
                return Ok(());
            }
            if self.wait.is_over() || reset.load(Ordering::Relaxed) != 0 {
                return Err(Stop::GaveUp);
            }
            if !queue.consumer_present() {
                return Err(Stop::NoConsumer);
            }
            queue.shared.consumer_seen.mark();
            let seen = queue.put_hot().head_seen.load(Ordering::Relaxed);
            let woke = await_change(
                &consumers.hot.0.head,
                seen,
                &consumers.wait.0.bell,
                || reset.load(Ordering::Relaxed) != 0,
                self.wait.deadline(),
            );
            if woke == futex::Wake::TimedOut {
                return Err(Stop::GaveUp);
            }
        }
    }

    /// Checks that the whole item was written, and publishes an empty last frame if the
    /// first one held all of it.
    pub(super) fn finish(&mut self) -> Result<(), Stop> {
        if self.written != self.total || self.open.is_some() {
            return Err(self.changed(0));
        }
        // A streamed item is longer than an inline frame: its first frame is published.
        debug_assert!(self.published);
        if !self.ended {
            self.await_room(frame::frame_len(0))?;
            self.held.publish(FrameKind::ChunkLast, &[], true);
            self.ended = true;
        }
        self.held
            .queue
            .put_hot()
            .open_item
            .store(0, Ordering::Release);
        Ok(())
    }

    /// Ends the item early, taking back what was published if no consumer has read any of
    /// it (see `Held::take_back`), so that it takes no room in the ring; else as `give_up`.
    pub(super) fn take_back(&mut self) {
        if !self.ended && self.published && self.held.take_back(self.start) {
            self.open = None;
            self.ended = true;
        }
        self.give_up();
    }

    /// Ends the item early: an `Abort` frame if a frame of it was published, so that a
    /// consumer receiving it drops what it has.
    fn give_up(&mut self) {
        if !self.ended {
            self.open = None;
            if self.published {
                self.held.publish(FrameKind::Abort, &[], false);
            }
            self.held
                .queue
                .put_hot()
                .open_item
                .store(0, Ordering::Release);
            self.ended = true;
        }
    }

    /// The error for an item that wrote other bytes than it measured: what it wrote so
    /// far, and a piece of `refused` bytes that would have taken it past `total` (or held
    /// handles the second time).
    pub(super) fn changed(&self, refused: usize) -> Stop {
        Stop::Failed(changed(self.total, self.written + refused as u64))
    }
}

impl<T> codec::Sink for ChunkWriter<'_, '_, T> {
    type Error = Stop;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        self.write_bytes(bytes)
    }
}

impl<T> Drop for ChunkWriter<'_, '_, T> {
    fn drop(&mut self) {
        self.give_up();
    }
}

impl<'q, T> Held<'q, T> {
    /// Takes back the frames published from `start` on (the beginning of a streamed item
    /// that no consumer is there to take), so that they take no room in the ring: only if
    /// the consumers' lock is free and no consumer has read any of them. Producers' lock
    /// held. `false`: they stay, and the item must be ended with an `Abort`.
    ///
    /// Under both locks, nobody reads `tail` to act on it but this thread; `tail_seen`, the
    /// consumers' copy of it, is moved back first. Each store leaves a state that the next
    /// producer's repair completes, should this one die between two of them: `puts` does
    /// not change (no frame of the item counted), and `open_item` is still set, so the
    /// next producer writes an `Abort` where `tail` is, which a consumer skips.
    fn take_back(&self, start: u64) -> bool {
        debug_assert!(self.side == Side::Producer);
        let queue = self.queue;
        let Ok(Some(consumers)) = Held::try_acquire(queue, Side::Consumer) else {
            return false;
        };
        let gets = queue.get_hot();
        if gets.head.load(Ordering::Relaxed) > start {
            return false;
        }
        if gets.tail_seen.load(Ordering::Relaxed) > start {
            gets.tail_seen.store(start, Ordering::Relaxed);
        }
        let hot = queue.put_hot();
        hot.intent_tail.store(start, Ordering::Relaxed);
        hot.intent_puts
            .store(hot.puts.load(Ordering::Relaxed), Ordering::Release);
        hot.tail.store(start, Ordering::SeqCst);
        hot.open_item.store(0, Ordering::Release);
        drop(consumers);
        true
    }
}
