//! The frames of a queue's ring: how messages are laid out in its shared bytes, and the
//! decoder that reads them back without trusting a single byte.
//!
//! A ring is `capacity` bytes; positions are byte counts since the queue was made, so they
//! only grow, and a position's place in the ring is `position % capacity`. Between `head`
//! (the next frame to read) and `tail` (the end of the last published frame) lie whole
//! frames, each an 8-byte header, then its payload:
//!
//! ```text
//! | len: u32 LE | kind: u32 LE | payload: len bytes | next frame …
//! ```
//!
//! A frame may wrap around the end of the ring: header and payload are copied in two parts
//! then. `kind` says what the payload is: [`FrameKind::Inline`], the encoded message;
//! [`FrameKind::Handoff`], a record naming a message handed over as a memory file (see the
//! queue's side channel); [`FrameKind::ChunkFirst`], [`FrameKind::ChunkMore`] and
//! [`FrameKind::ChunkLast`], the parts of a message streamed through the ring, and
//! [`FrameKind::Abort`], the end of one abandoned half way (see the `chunk` module).
//!
//! The ring is shared memory that any process with the queue can write, so the decoder
//! checks everything it reads: positions, lengths and kinds. A check that fails is a
//! [`FrameError`], never a panic or an out-of-bounds access.

use std::mem::MaybeUninit;

/// Bytes of a frame's header.
pub(crate) const HEADER: usize = 8;

/// What a frame's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// The payload is the encoded message itself.
    Inline = 1,
    /// The payload is a [`Handoff`] record: the message travels as a memory file.
    Handoff = 2,
    /// The first part of a streamed message: its total length (u64 LE), then bytes.
    ChunkFirst = 3,
    /// A middle part of a streamed message.
    ChunkMore = 4,
    /// The last part of a streamed message (possibly empty).
    ChunkLast = 5,
    /// The streamed message in progress is abandoned; no payload.
    Abort = 6,
}

impl FrameKind {
    fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(FrameKind::Inline),
            2 => Some(FrameKind::Handoff),
            3 => Some(FrameKind::ChunkFirst),
            4 => Some(FrameKind::ChunkMore),
            5 => Some(FrameKind::ChunkLast),
            6 => Some(FrameKind::Abort),
            _ => None,
        }
    }
}

/// A frame found at `head`: its kind, where its payload is, and where the next frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) kind: FrameKind,
    /// Where the payload's first byte is in the ring (its position modulo the capacity).
    pub(crate) payload_offset: usize,
    pub(crate) payload_len: usize,
    /// Position just past the frame: the new `head` once it is taken.
    pub(crate) next: u64,
}

/// Why the bytes at `head` are not a frame. Only a process that wrote into the ring
/// without the queue's lock (a bug, or memory corruption) can cause one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the ring's positions are inconsistent: head {head}, tail {tail}, capacity {capacity}")]
    Positions {
        head: u64,
        tail: u64,
        capacity: usize,
    },
    #[error("a frame announces {len} bytes but only {available} follow its header")]
    Length { len: u64, available: u64 },
    #[error("a frame has the unknown kind {kind}")]
    Kind { kind: u32 },
}

/// The bytes a frame with a payload of `payload_len` takes in the ring.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    (HEADER + payload_len) as u64
}

/// A ring's bytes, by address: producers write past `tail` while consumers read before it,
/// in other processes or threads, so no reference to the whole ring may exist; every access
/// copies exactly the bytes it concerns.
#[derive(Clone, Copy)]
pub(crate) struct Ring {
    base: *mut u8,
    len: usize,
}

impl Ring {
    /// # Safety
    /// `base` must be valid for reads and writes of `len` bytes while the ring is used.
    pub(crate) unsafe fn new(base: *mut u8, len: usize) -> Ring {
        Ring { base, len }
    }

    /// A ring over bytes this thread has to itself (tests, the fuzz target).
    pub(crate) fn over(bytes: &mut [u8]) -> Ring {
        Ring {
            base: bytes.as_mut_ptr(),
            len: bytes.len(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The place of position `at` in the ring.
    #[inline]
    pub(crate) fn offset_of(&self, at: u64) -> usize {
        (at % self.len as u64) as usize
    }

    /// The offset `n` bytes after `offset`, wrapping at the end.
    #[inline]
    pub(crate) fn advance(&self, offset: usize, n: usize) -> usize {
        let to_end = self.len - offset;
        if n < to_end { offset + n } else { n - to_end }
    }

    /// Copies `out.len()` bytes starting at ring offset `offset` (`< len()`), wrapping at
    /// the end.
    ///
    /// # Safety
    /// Nobody writes those bytes meanwhile (the queue's protocol: they lie between `head`
    /// and `tail`, and the caller holds the consumers' lock), and `out.len() <= len()`.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, offset: usize, out: &mut [u8]) {
        // SAFETY: the caller's contract; `out` is valid for writes of its length.
        unsafe { self.copy_out_raw(offset, out.as_mut_ptr(), out.len()) }
    }

    /// `copy_out` into memory that may not be initialised yet: every byte of `out` is
    /// written.
    ///
    /// # Safety
    /// As for `copy_out`.
    #[inline]
    pub(crate) unsafe fn copy_out_uninit(&self, offset: usize, out: &mut [MaybeUninit<u8>]) {
        // SAFETY: the caller's contract; `out` is valid for writes of its length, and
        // writing bytes into MaybeUninit<u8> is always allowed.
        unsafe { self.copy_out_raw(offset, out.as_mut_ptr().cast::<u8>(), out.len()) }
    }

    /// # Safety
    /// As for `copy_out`, with `out` valid for writes of `len` bytes.
    #[inline]
    unsafe fn copy_out_raw(&self, offset: usize, out: *mut u8, len: usize) {
        debug_assert!(offset < self.len && len <= self.len);
        let first = len.min(self.len - offset);
        let rest = len - first;
        // SAFETY: `offset + first <= len` and `rest <= len`, so both ranges lie in the
        // ring, which is valid (Ring::new's contract); `out` is another allocation, valid
        // for `len` bytes; nobody writes these bytes meanwhile (this function's contract).
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(offset), out, first);
            if rest > 0 {
                std::ptr::copy_nonoverlapping(self.base, out.add(first), rest);
            }
        }
    }

    /// The `HEADER` bytes at ring offset `offset` (`< len()`), wrapping at the end.
    ///
    /// # Safety
    /// As for `copy_out`.
    #[inline]
    unsafe fn read_header(&self, offset: usize) -> [u8; HEADER] {
        if self.len - offset >= HEADER {
            // SAFETY: the header lies within the ring (checked just above); the caller's
            // contract says nobody writes it meanwhile. One unaligned 8-byte load.
            unsafe {
                self.base
                    .add(offset)
                    .cast::<[u8; HEADER]>()
                    .read_unaligned()
            }
        } else {
            let mut header = [0u8; HEADER];
            // SAFETY: the caller's contract.
            unsafe { self.copy_out(offset, &mut header) };
            header
        }
    }

    /// Writes a frame's header at ring offset `offset` (`< len()`), wrapping at the end;
    /// returns the offset just past it.
    ///
    /// # Safety
    /// As for `copy_in`.
    #[inline]
    pub(crate) unsafe fn write_header(&self, offset: usize, header: [u8; HEADER]) -> usize {
        if self.len - offset > HEADER {
            // SAFETY: the header lies within the ring, and does not reach its end (checked
            // just above); the caller's contract says nobody else touches it. One unaligned
            // 8-byte store.
            unsafe {
                self.base
                    .add(offset)
                    .cast::<[u8; HEADER]>()
                    .write_unaligned(header)
            };
            offset + HEADER
        } else {
            // SAFETY: the caller's contract.
            unsafe { self.copy_in(offset, &header) }
        }
    }

    /// Copies `bytes` in at ring offset `offset` (`< len()`), wrapping at the end; returns
    /// the offset just past them.
    ///
    /// # Safety
    /// Nobody reads or writes those bytes meanwhile (the queue's protocol: they lie past
    /// `tail` and before `head` plus the length, and the caller holds the producers' lock),
    /// and `bytes.len() <= len()`.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, offset: usize, bytes: &[u8]) -> usize {
        debug_assert!(offset < self.len && bytes.len() <= self.len);
        let first = bytes.len().min(self.len - offset);
        let rest = bytes.len() - first;
        // SAFETY: as in copy_out, with the roles of the two sides swapped.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), first);
            if rest > 0 {
                std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.base, rest);
            }
        }
        self.advance(offset, bytes.len())
    }
}

/// Where the payload of a frame comes from: the ring, or (tests, the fuzz target) a slice.
///
/// # Safety
/// `copy_to` must write every byte of `out`: [`Assembly`](crate::chunk::Assembly) then treats
/// them as initialised.
pub(crate) unsafe trait Payload {
    /// Copies `out.len()` bytes of the payload, from `offset` on, into `out`. Called only
    /// within the payload's length.
    fn copy_to(&mut self, offset: usize, out: &mut [MaybeUninit<u8>]);
}

// SAFETY: forwards to `P`, which writes every byte of `out`.
unsafe impl<P: Payload> Payload for &mut P {
    fn copy_to(&mut self, offset: usize, out: &mut [MaybeUninit<u8>]) {
        (**self).copy_to(offset, out);
    }
}

/// The payload of a frame in a ring, as the consumer's [`Assembly`](crate::chunk::Assembly)
/// copies it out.
pub(crate) struct RingPayload {
    pub(crate) ring: Ring,
    /// Where the payload starts in the ring.
    pub(crate) offset: usize,
}

// SAFETY: copy_to writes every byte of `out` (copy_out_uninit does).
unsafe impl Payload for RingPayload {
    fn copy_to(&mut self, offset: usize, out: &mut [MaybeUninit<u8>]) {
        let at = self.ring.advance(self.offset, offset);
        // SAFETY: the frame was decoded between `head` and `tail` under the consumers'
        // lock, and it is copied from only within its payload (Payload's use).
        unsafe { self.ring.copy_out_uninit(at, out) }
    }
}

/// Reads and checks the frame at `head` of a ring whose published frames end at `tail`.
/// `Ok(None)` when the ring is empty.
///
/// # Safety
/// As [`Ring::copy_out`] for the bytes between `head` and `tail`.
pub(crate) unsafe fn decode(ring: Ring, head: u64, tail: u64) -> Result<Option<Frame>, FrameError> {
    let capacity = ring.len();
    let used = tail.wrapping_sub(head);
    if capacity == 0 || tail < head || used > capacity as u64 {
        return Err(FrameError::Positions {
            head,
            tail,
            capacity,
        });
    }
    if used == 0 {
        return Ok(None);
    }
    if used < HEADER as u64 {
        return Err(FrameError::Length {
            len: HEADER as u64,
            available: used,
        });
    }
    let at = ring.offset_of(head);
    // SAFETY: the header lies between head and tail (used >= HEADER); the caller's contract.
    let header = unsafe { ring.read_header(at) };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let kind = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = FrameKind::from_u32(kind).ok_or(FrameError::Kind { kind })?;
    let available = used - HEADER as u64;
    if u64::from(len) > available {
        return Err(FrameError::Length {
            len: u64::from(len),
            available,
        });
    }
    Ok(Some(Frame {
        kind,
        payload_offset: ring.advance(at, HEADER),
        payload_len: len as usize,
        next: head + HEADER as u64 + u64::from(len),
    }))
}

/// The header of a frame of `kind` whose payload is `len` bytes (`len` fits in a `u32`).
pub(crate) fn header(kind: FrameKind, len: usize) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&(len as u32).to_le_bytes());
    header[4..].copy_from_slice(&(kind as u32).to_le_bytes());
    header
}

/// Writes a frame at `tail` whose payload is `parts`, one after the other; returns the
/// position just past it.
///
/// # Safety
/// As [`Ring::copy_in`] for the `frame_len(payload length)` bytes from `tail`, which the
/// caller has checked are free; the payload's length fits in a `u32`.
pub(crate) unsafe fn encode(ring: Ring, tail: u64, kind: FrameKind, parts: &[&[u8]]) -> u64 {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    // SAFETY: the caller's contract covers the frame's bytes, header then payload, which
    // are written one after the other from the frame's offset.
    unsafe {
        let mut offset = ring.write_header(ring.offset_of(tail), header(kind, len));
        for part in parts {
            offset = ring.copy_in(offset, part);
        }
    }
    tail.wrapping_add(frame_len(len))
}

/// The payload of a [`FrameKind::Handoff`] frame: which message of the side channel it is,
/// how long it is, and how many descriptors of handles come with it besides its memory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handoff {
    pub(crate) id: u64,
    pub(crate) len: u64,
    pub(crate) handles: u64,
}

impl Handoff {
    pub(crate) const LEN: usize = 24;

    pub(crate) fn to_bytes(self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..8].copy_from_slice(&self.id.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.len.to_le_bytes());
        bytes[16..].copy_from_slice(&self.handles.to_le_bytes());
        bytes
    }

    /// `None` unless `bytes` is exactly a record.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Handoff {
            id: word(0)?,
            len: word(8)?,
            handles: word(16)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in(ring: &mut [u8], tail: u64, kind: FrameKind, payload: &[u8]) -> u64 {
        // SAFETY: the test owns the bytes; the caller leaves room for the frame.
        unsafe { encode(Ring::over(ring), tail, kind, &[payload]) }
    }

    fn decode_in(ring: &[u8], head: u64, tail: u64) -> Result<Option<Frame>, FrameError> {
        let mut copy = ring.to_vec();
        // SAFETY: the test owns the copy.
        unsafe { decode(Ring::over(&mut copy), head, tail) }
    }

    #[test]
    fn an_empty_ring_has_no_frame() {
        assert_eq!(decode_in(&[0; 16], 32, 32), Ok(None));
    }

    #[test]
    fn positions_that_cannot_be_are_refused() {
        let ring = [0u8; 16];
        assert!(matches!(
            decode_in(&ring, 10, 5),
            Err(FrameError::Positions { .. })
        ));
        assert!(matches!(
            decode_in(&ring, 0, 17),
            Err(FrameError::Positions { .. })
        ));
        assert!(matches!(
            decode_in(&[], 0, 0),
            Err(FrameError::Positions { .. })
        ));
    }

    #[test]
    fn a_length_past_the_tail_is_refused() {
        let mut ring = vec![0u8; 32];
        let tail = encode_in(&mut ring, 0, FrameKind::Inline, b"abcd");
        assert!(matches!(
            decode_in(&ring, 0, tail - 1),
            Err(FrameError::Length {
                len: 4,
                available: 3
            })
        ));
        assert!(matches!(
            decode_in(&ring, 0, 5),
            Err(FrameError::Length { available: 5, .. })
        ));
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let mut ring = vec![0u8; 32];
        let tail = encode_in(&mut ring, 0, FrameKind::Inline, b"x");
        ring[4] = 9;
        assert_eq!(decode_in(&ring, 0, tail), Err(FrameError::Kind { kind: 9 }));
    }

    #[test]
    fn handoff_records_round_trip_and_refuse_other_lengths() {
        let h = Handoff {
            id: 7,
            len: 1 << 40,
            handles: 3,
        };
        assert_eq!(Handoff::from_bytes(&h.to_bytes()), Some(h));
        assert_eq!(Handoff::from_bytes(&[0; 23]), None);
        assert_eq!(Handoff::from_bytes(&[0; 25]), None);
    }
}
