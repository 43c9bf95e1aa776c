//! Where the serializer writes: the [`Out`] trait, and its buffers. A `Vec<u8>` takes the
//! whole encoding; [`Capped`] keeps it only while it fits a cap, and past that only counts
//! it. (The third, which passes an encoding on to a [`Sink`](crate::Sink), is
//! [`Streamed`](crate::sink::Streamed), beside the trait it serves.)

use crate::error::Result;

/// Where an [`Encoder`](crate::serializer::Encoder) writes: a buffer ([`Vec<u8>`]), a
/// buffer with a cap ([`Capped`]), or a small buffer that passes what it holds on to a sink
/// ([`Streamed`](crate::sink::Streamed)).
pub(crate) trait Out {
    /// The buffer that the small parts of a value (numbers, markers, lengths) go into.
    fn staged(&mut self) -> &mut Vec<u8>;
    /// A run of a value's bytes (a string's or a byte buffer's), of any length.
    fn run(&mut self, bytes: &[u8]) -> Result<()>;
    /// Called after each part of a compound value: where staged bytes may be passed on.
    fn checkpoint(&mut self) -> Result<()>;
}

impl Out for Vec<u8> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        self
    }

    #[inline]
    fn run(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A buffer that keeps an encoding only while it is at most `cap` bytes long. Past that,
/// the rest is counted and not kept: a run is not copied, and the small parts staged since
/// the last checkpoint are dropped at the next one. So one pass gives either the encoding
/// or the length of one too long to keep.
pub(crate) struct Capped<'v> {
    buf: &'v mut Vec<u8>,
    /// Where the encoding starts in `buf`.
    start: usize,
    /// The end of `buf` that the encoding may reach.
    cap: usize,
    /// Bytes of the encoding counted and not kept: past the cap once not 0.
    dropped: usize,
}

impl<'v> Capped<'v> {
    pub(crate) fn new(buf: &'v mut Vec<u8>, cap: usize) -> Self {
        let start = buf.len();
        Capped {
            buf,
            start,
            cap: start.saturating_add(cap),
            dropped: 0,
        }
    }

    /// Ends the encoding: its length, kept (`buf` holds it) if at most the cap, else
    /// dropped (`buf` holds what it held before).
    pub(crate) fn end(mut self) -> usize {
        self.drop_if_over();
        self.dropped + (self.buf.len() - self.start)
    }

    /// Drops what is kept of the encoding once it is past the cap.
    fn drop_if_over(&mut self) {
        if self.dropped > 0 || self.buf.len() > self.cap {
            self.drop_kept();
        }
    }

    /// Counts what is kept of the encoding as dropped, and drops it.
    fn drop_kept(&mut self) {
        self.dropped += self.buf.len() - self.start;
        self.buf.truncate(self.start);
    }
}

impl Out for Capped<'_> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    #[inline]
    fn run(&mut self, bytes: &[u8]) -> Result<()> {
        if self.dropped == 0 && self.buf.len() + bytes.len() <= self.cap {
            self.buf.extend_from_slice(bytes);
        } else {
            self.drop_kept();
            self.dropped += bytes.len();
        }
        Ok(())
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<()> {
        self.drop_if_over();
        Ok(())
    }
}
