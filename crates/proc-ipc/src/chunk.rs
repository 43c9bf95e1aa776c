//! Streamed items: an item larger than a quarter of the ring goes through it as a run of
//! chunk frames, which a consumer copies out (decoding the item as it goes) while the
//! producer writes the next ones, so that an item of any size passes through a ring much
//! smaller than it.
//!
//! ```text
//! First(total: u64 LE, bytes…)  More(bytes…)*  Last(bytes…)      a complete item
//! First(…) More(…)* Abort                                        abandoned: nothing delivered
//! ```
//!
//! The producer holds the producers' lock from its `First` to its `Last`, so the frames of
//! one item are never interleaved with another's; the consumer holds the consumers' lock
//! from `First` to `Last` too, so one consumer receives the whole item. What each side
//! knows of an item in flight lives in that process only, so the frames must tell every
//! other process what to do when one side dies:
//!
//! - The producer dies mid-item: its lock passes to the next producer, which sees the
//!   `open_item` mark of the producers' side and writes `Abort` (room for it was kept free
//!   by every chunk). A consumer receiving the item drops what it has on `Abort`, or on any
//!   frame that starts an item (`Inline`, `Handoff`, `First`): only a new producer can have
//!   written that after an unfinished `First`.
//! - The producer gives up (its deadline passed while the ring stayed full, or the item's
//!   `Serialize` wrote other bytes than it measured, or panicked): it writes `Abort` itself
//!   and its `put` hands the item back (or the panic goes on). Nothing was acknowledged,
//!   nothing is delivered.
//! - No consumer is there to take the chunks once the ring is full: if none has read any
//!   of them, the producer takes them back, moving `tail` back under both locks; else it
//!   writes `Abort`. Either way it then hands the item over as a memory file.
//! - The consumer dies mid-item: the next consumer finds `More` / `Last` frames with no
//!   `First` before them and skips them. The item is lost with the consumer that had taken
//!   its beginning, as an inline item is lost with a consumer that dies between taking it
//!   and returning it. The skipped `Last` counts as the item's get, so the counts agree.
//!
//! [`Assembly`] is the consumer's side of this, free of shared memory so that the fuzz
//! target can drive it with arbitrary frames. It says which bytes of each frame continue
//! the item; the queue's consumer hands them to the decoder as it asks for them (the
//! queue's `RingSource`), and [`Assembly::collect`] gathers them into a buffer (the fuzz
//! target, the tests). A consumer that stops decoding half way (the bytes are not the
//! item's type, or its `Deserialize` panicked) leaves the rest of the item's frames to be
//! skipped: by itself up to the last one, or, after a panic, by the next consumer, as
//! those of a dead one.

use std::mem::MaybeUninit;

use crate::frame::{FrameKind, Handoff, Payload, Ring, RingPayload, decode};

/// A payload held in a slice.
#[cfg(test)]
pub(crate) struct SlicePayload<'a>(pub(crate) &'a [u8]);

// SAFETY: copy_to writes every byte of `out` (or panics on a misuse out of the slice's
// bounds, writing nothing that is then read).
#[cfg(test)]
unsafe impl Payload for SlicePayload<'_> {
    fn copy_to(&mut self, offset: usize, out: &mut [MaybeUninit<u8>]) {
        let from = &self.0[offset..offset + out.len()];
        for (to, &byte) in out.iter_mut().zip(from) {
            to.write(byte);
        }
    }
}

/// The first `N` bytes of `payload` (which holds at least that many).
fn first_bytes<const N: usize>(payload: &mut impl Payload) -> [u8; N] {
    let mut out = [MaybeUninit::<u8>::uninit(); N];
    payload.copy_to(0, &mut out);
    // SAFETY: Payload's contract says that `copy_to` wrote every byte of `out`.
    out.map(|byte| unsafe { byte.assume_init() })
}

/// Appends `len` bytes of `payload` from `offset` to `buf`, without zeroing them first.
pub(crate) fn append_from(
    buf: &mut Vec<u8>,
    len: usize,
    offset: usize,
    payload: &mut impl Payload,
) {
    buf.reserve(len);
    let have = buf.len();
    payload.copy_to(offset, &mut buf.spare_capacity_mut()[..len]);
    // SAFETY: `reserve` made room for `len` more bytes, and Payload's contract says that
    // `copy_to` wrote every one of them.
    unsafe { buf.set_len(have + len) };
}

/// Bytes of the total length at the start of a `First` frame's payload.
pub(crate) const TOTAL_LEN: usize = 8;

/// The largest chunk a producer writes into a ring of `capacity` bytes: an eighth of the
/// ring (so that a producer writes the next chunks while a consumer copies one out), at
/// most 128 KiB (a chunk stays in the cache of the core that wrote it until the other one
/// reads it), at least 16 bytes.
pub(crate) fn chunk_bytes(capacity: usize) -> usize {
    (capacity / 8).clamp(16, 128 << 10)
}

/// What a consumer does with the frame it just looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to take from the frame (it was skipped, or ends an abandoned item): move
    /// past it and read on. `ends_item`: it was the last frame of an item, which counts as
    /// a get.
    Consumed { ends_item: bool },
    /// The payload is a whole encoded item.
    Whole,
    /// The payload is a hand-over record: the item is a memory file of the side channel.
    Handoff,
    /// The `len` payload bytes from `from` are the next bytes of the streamed item being
    /// received, counted as received: the consumer takes all of them, then moves past the
    /// frame. `last`: the item ends with them, with as many bytes as it announced; moving
    /// past the frame counts as a get. A frame that begins an item has `from` past its
    /// total length.
    Bytes { from: usize, len: usize, last: bool },
    /// The item being received was abandoned by its producer, which this frame shows:
    /// what was received is dropped; look at the same frame again, without moving past it.
    Abandoned,
    /// The frame ends an item whose chunks do not add up to what its `First` announced,
    /// or that announced more than the item limit: move past it (a get); that item is
    /// spoiled.
    Spoiled(String),
}

/// A consumer's state between the frames of one streamed item.
#[derive(Debug)]
pub(crate) struct Assembly {
    /// The item limit: a `First` that announces more is spoiled without storing anything.
    limit: usize,
    /// `Some` between a `First` and its `Last`.
    receiving: Option<Receiving>,
}

#[derive(Debug, Clone, Copy)]
struct Receiving {
    total: u64,
    /// The bytes of the item handed to the consumer so far.
    received: u64,
    /// Set when the frames stopped making sense; the rest of the item is skipped.
    spoiled: Option<&'static str>,
}

impl Assembly {
    pub(crate) fn new(limit: usize) -> Self {
        Assembly {
            limit,
            receiving: None,
        }
    }

    /// Whether a streamed item is partly received: the consumer must read on (holding its
    /// lock) until its end.
    pub(crate) fn is_receiving(&self) -> bool {
        self.receiving.is_some()
    }

    /// At most how many bytes of the item being received are still to come.
    pub(crate) fn left(&self) -> u64 {
        self.receiving.map_or(0, |r| r.total - r.received)
    }

    /// Drops a partly received item (its producer is gone).
    fn abandon(&mut self) {
        self.receiving = None;
    }

    /// Looks at a frame of `kind` whose payload is `len` bytes: says what the consumer
    /// takes from it. Only a `First` frame's total length is read from `payload`.
    pub(crate) fn accept(
        &mut self,
        kind: FrameKind,
        len: usize,
        mut payload: impl Payload,
    ) -> Outcome {
        let Some(mut receiving) = self.receiving else {
            return match kind {
                FrameKind::Inline => Outcome::Whole,
                FrameKind::Handoff => Outcome::Handoff,
                FrameKind::ChunkFirst => {
                    let (total, spoiled) = if len < TOTAL_LEN {
                        (0, Some("a first chunk too short to hold the item's length"))
                    } else {
                        (u64::from_le_bytes(first_bytes(&mut payload)), None)
                    };
                    let spoiled = spoiled.or_else(|| {
                        (total > self.limit as u64).then_some("an item over the limit")
                    });
                    let mut receiving = Receiving {
                        total,
                        received: 0,
                        spoiled,
                    };
                    let outcome = receiving.take(len.saturating_sub(TOTAL_LEN), TOTAL_LEN, false);
                    self.receiving = Some(receiving);
                    outcome
                }
                // The rest of an item whose first part a consumer took before it died.
                FrameKind::ChunkMore | FrameKind::Abort => Outcome::Consumed { ends_item: false },
                FrameKind::ChunkLast => Outcome::Consumed { ends_item: true },
            };
        };
        match kind {
            FrameKind::ChunkMore => {
                let outcome = receiving.take(len, 0, false);
                self.receiving = Some(receiving);
                outcome
            }
            FrameKind::ChunkLast => {
                self.receiving = None;
                receiving.take(len, 0, true)
            }
            FrameKind::Abort => {
                self.abandon();
                Outcome::Consumed { ends_item: false }
            }
            FrameKind::Inline | FrameKind::Handoff | FrameKind::ChunkFirst => {
                self.abandon();
                Outcome::Abandoned
            }
        }
    }

    /// `accept`, with what the consumer takes collected into `buf`: an item (a whole one,
    /// or a streamed one once its last frame is in) or a hand-over record. What the fuzz
    /// target and the tests drive.
    pub(crate) fn collect(
        &mut self,
        buf: &mut Vec<u8>,
        kind: FrameKind,
        len: usize,
        mut payload: impl Payload,
    ) -> Collected {
        let outcome = self.accept(kind, len, &mut payload);
        if !matches!(outcome, Outcome::Bytes { .. }) || kind == FrameKind::ChunkFirst {
            buf.clear();
        }
        match outcome {
            Outcome::Consumed { ends_item } => Collected::Consumed { ends_item },
            Outcome::Whole | Outcome::Handoff => {
                append_from(buf, len, 0, &mut payload);
                if outcome == Outcome::Whole {
                    Collected::Item
                } else {
                    Collected::Handoff
                }
            }
            Outcome::Bytes { from, len, last } => {
                // Memory is set aside as bytes arrive, never for a mere announcement.
                append_from(buf, len, from, &mut payload);
                if last {
                    Collected::Item
                } else {
                    Collected::Consumed { ends_item: false }
                }
            }
            Outcome::Abandoned => Collected::Abandoned,
            Outcome::Spoiled(detail) => Collected::Spoiled(detail),
        }
    }
}

/// What [`Assembly::collect`] made of a frame: as [`Outcome`], with the bytes in the
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Collected {
    /// Move past the frame and read on.
    Consumed { ends_item: bool },
    /// The buffer holds a whole encoded item: move past the frame (a get).
    Item,
    /// The buffer holds a hand-over record: move past the frame (a get).
    Handoff,
    /// Look at the same frame again.
    Abandoned,
    /// Move past the frame (a get); the item is spoiled.
    Spoiled(String),
}

impl Receiving {
    /// What the consumer takes of `len` payload bytes from `from`, which continue the
    /// item (and end it, if `last`): none once they pass the announced total, or the item
    /// was spoiled before.
    fn take(&mut self, len: usize, from: usize, last: bool) -> Outcome {
        let received = self.received.saturating_add(len as u64);
        if self.spoiled.is_none() && received > self.total {
            self.spoiled = Some("its chunks brought more bytes than it announced");
        }
        match self.spoiled {
            Some(why) if last => Outcome::Spoiled(format!("a streamed item was dropped: {why}")),
            Some(_) => Outcome::Consumed { ends_item: false },
            None if last && received != self.total => Outcome::Spoiled(format!(
                "a streamed item announced {} bytes and brought {received}",
                self.total
            )),
            None => {
                self.received = received;
                Outcome::Bytes { from, len, last }
            }
        }
    }
}

/// Reads every frame between `head` and `tail` as a consumer would, streamed items
/// reassembled, and returns what a consumer would decode (encoded items and hand-over
/// records). The fuzz target drives the decoder through this.
#[doc(hidden)]
pub fn decode_all(
    ring: &[u8],
    mut head: u64,
    tail: u64,
    limit: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let mut bytes = ring.to_vec();
    let ring = Ring::over(&mut bytes);
    let mut items = Vec::new();
    let mut assembly = Assembly::new(limit);
    let mut buf = Vec::new();
    // SAFETY: `bytes` is this function's own copy; nothing else touches it.
    while let Some(frame) = unsafe { decode(ring, head, tail) }.map_err(|e| e.to_string())? {
        let payload = RingPayload {
            ring,
            offset: frame.payload_offset,
        };
        let collected = assembly.collect(&mut buf, frame.kind, frame.payload_len, payload);
        match collected {
            Collected::Consumed { .. } | Collected::Spoiled(_) => {}
            Collected::Item => items.push(std::mem::take(&mut buf)),
            Collected::Handoff => {
                if Handoff::from_bytes(&buf).is_none() {
                    return Err("a hand-over frame does not hold a hand-over record".to_string());
                }
                items.push(std::mem::take(&mut buf));
            }
            // Looked at again, without moving past it.
            Collected::Abandoned => continue,
        }
        head = frame.next;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode;

    /// Feeds whole payloads, as the fuzz target does.
    fn feed(
        assembly: &mut Assembly,
        buf: &mut Vec<u8>,
        kind: FrameKind,
        payload: &[u8],
    ) -> Collected {
        assembly.collect(buf, kind, payload.len(), SlicePayload(payload))
    }

    fn first(total: u64, bytes: &[u8]) -> Vec<u8> {
        let mut payload = total.to_le_bytes().to_vec();
        payload.extend_from_slice(bytes);
        payload
    }

    #[test]
    fn chunks_add_up_to_the_item() {
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        let c = Collected::Consumed { ends_item: false };
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::ChunkFirst, &first(7, b"ab")),
            c
        );
        assert!(a.is_receiving());
        assert_eq!(feed(&mut a, &mut buf, FrameKind::ChunkMore, b"cde"), c);
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b"fg"),
            Collected::Item
        );
        assert_eq!(buf, b"abcdefg");
        assert!(!a.is_receiving());
    }

    #[test]
    fn a_streamed_item_is_handed_out_frame_by_frame() {
        let mut a = Assembly::new(100);
        let start = first(7, b"ab");
        assert_eq!(
            a.accept(FrameKind::ChunkFirst, start.len(), SlicePayload(&start)),
            Outcome::Bytes {
                from: TOTAL_LEN,
                len: 2,
                last: false
            }
        );
        assert_eq!(a.left(), 5);
        assert_eq!(
            a.accept(FrameKind::ChunkMore, 3, SlicePayload(b"cde")),
            Outcome::Bytes {
                from: 0,
                len: 3,
                last: false
            }
        );
        assert_eq!(
            a.accept(FrameKind::ChunkLast, 2, SlicePayload(b"fg")),
            Outcome::Bytes {
                from: 0,
                len: 2,
                last: true
            }
        );
        assert!(!a.is_receiving());
        assert_eq!(a.left(), 0);
    }

    #[test]
    fn an_abort_or_a_new_item_drops_what_was_received() {
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        feed(&mut a, &mut buf, FrameKind::ChunkFirst, &first(7, b"ab"));
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::Abort, b""),
            Collected::Consumed { ends_item: false }
        );
        assert!(!a.is_receiving() && buf.is_empty());
        feed(&mut a, &mut buf, FrameKind::ChunkFirst, &first(7, b"ab"));
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::Inline, b"x"),
            Collected::Abandoned
        );
        // The same frame, looked at again, is an item of its own.
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::Inline, b"x"),
            Collected::Item
        );
        assert_eq!(buf, b"x");
    }

    #[test]
    fn the_rest_of_an_item_whose_beginning_went_with_a_dead_consumer_is_skipped_and_counted() {
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::ChunkMore, b"cde"),
            Collected::Consumed { ends_item: false }
        );
        assert_eq!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b"fg"),
            Collected::Consumed { ends_item: true }
        );
        assert!(!a.is_receiving());
    }

    #[test]
    fn an_item_over_the_limit_or_with_the_wrong_length_is_spoiled_without_storing_it() {
        let (mut a, mut buf) = (Assembly::new(4), Vec::new());
        feed(
            &mut a,
            &mut buf,
            FrameKind::ChunkFirst,
            &first(1 << 40, b"ab"),
        );
        feed(&mut a, &mut buf, FrameKind::ChunkMore, b"cd");
        assert!(buf.is_empty() && buf.capacity() == 0);
        assert!(matches!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b""),
            Collected::Spoiled(_)
        ));
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        feed(&mut a, &mut buf, FrameKind::ChunkFirst, &first(3, b"ab"));
        feed(&mut a, &mut buf, FrameKind::ChunkMore, b"cd"); // past the total
        assert!(matches!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b""),
            Collected::Spoiled(_)
        ));
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        feed(&mut a, &mut buf, FrameKind::ChunkFirst, &first(9, b"ab"));
        assert!(matches!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b"c"), // short of the total
            Collected::Spoiled(_)
        ));
        let (mut a, mut buf) = (Assembly::new(100), Vec::new());
        feed(&mut a, &mut buf, FrameKind::ChunkFirst, b"short");
        assert!(matches!(
            feed(&mut a, &mut buf, FrameKind::ChunkLast, b""),
            Collected::Spoiled(_)
        ));
    }

    #[test]
    fn memory_is_set_aside_as_bytes_arrive_not_as_announced() {
        let (mut a, mut buf) = (Assembly::new(usize::MAX), Vec::new());
        feed(
            &mut a,
            &mut buf,
            FrameKind::ChunkFirst,
            &first(1 << 40, b"abcd"),
        );
        assert!(buf.capacity() <= 8, "{} bytes set aside", buf.capacity());
    }

    #[test]
    fn chunks_are_an_eighth_of_the_ring_within_bounds() {
        assert_eq!(chunk_bytes(1 << 20), 128 << 10);
        assert_eq!(chunk_bytes(16 << 10), 2 << 10);
        assert_eq!(chunk_bytes(64), 16);
        assert_eq!(chunk_bytes(1 << 30), 128 << 10);
    }

    fn encode_in(ring: &mut [u8], tail: u64, kind: FrameKind, payload: &[u8]) -> u64 {
        // SAFETY: the test owns the bytes; the caller leaves room for the frame.
        unsafe { encode(Ring::over(ring), tail, kind, &[payload]) }
    }

    #[test]
    fn frames_round_trip_including_across_the_end_of_the_ring() {
        let mut ring = vec![0u8; 64];
        let mut tail = 50; // close to the end: the first frame wraps
        let head = tail;
        for payload in [&b"hello, ring"[..], b"", b"0123456789"] {
            tail = encode_in(&mut ring, tail, FrameKind::Inline, payload);
        }
        assert_eq!(
            decode_all(&ring, head, tail, 1 << 20).unwrap(),
            vec![b"hello, ring".to_vec(), vec![], b"0123456789".to_vec()]
        );
    }

    #[test]
    fn a_streamed_item_written_in_parts_across_the_end_of_the_ring_reads_back_whole() {
        let mut ring = vec![0u8; 128];
        let mut tail = 100;
        let head = tail;
        let total = 11u64.to_le_bytes();
        for (kind, parts) in [
            (FrameKind::ChunkFirst, &[&total[..], b"hell"][..]),
            (FrameKind::ChunkMore, &[&b"o, r"[..]][..]),
            (FrameKind::ChunkLast, &[&b"in"[..], b"g"][..]),
            (FrameKind::ChunkFirst, &[&total[..], b"lost"][..]),
            (FrameKind::Abort, &[][..]),
        ] {
            // SAFETY: the test owns the bytes; they leave room for every frame.
            tail = unsafe { encode(Ring::over(&mut ring), tail, kind, parts) };
        }
        assert_eq!(
            decode_all(&ring, head, tail, 1 << 20).unwrap(),
            vec![b"hello, ring".to_vec()]
        );
    }
}
