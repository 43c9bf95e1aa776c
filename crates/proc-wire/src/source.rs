//! The end a decode streams from: the [`Source`] trait, and [`Streaming`], the
//! deserializer's input that reads the small parts of a value through a stage of a few KiB
//! and a long string or byte buffer straight into the vector it becomes, counting every
//! byte against the decode's limit.

use crate::error::WireError;
use crate::input::{Input, Run, short, too_long};
use crate::limits::{GROW_FLOOR, STAGE_BYTES};

/// Gives an encoding piece by piece, in order, as [`decode_from`](crate::decode_from) asks
/// for it: the other side of [`Sink`](crate::Sink). The decoder asks for a few KiB at a
/// time for the small parts of a value, and for a long string or byte buffer appends
/// straight into the vector that the value ends up owning, so that its bytes are copied
/// once, by the source.
///
/// A source that reads from somewhere else (another process's memory, a file) makes a
/// value cost one copy, where copying the bytes into a buffer and decoding it costs two.
///
/// ```
/// use proc_wire::{ByteBuf, Source};
///
/// /// Gives an encoding that arrived in chunks, without joining them first.
/// struct Chunks(std::collections::VecDeque<Vec<u8>>);
///
/// impl Source for Chunks {
///     type Error = std::convert::Infallible;
///     fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
///         let Some(chunk) = self.0.front_mut() else { return Ok(0) };
///         let n = at_most.min(chunk.len());
///         buf.extend(chunk.drain(..n));
///         if chunk.is_empty() {
///             self.0.pop_front();
///         }
///         Ok(n)
///     }
///     fn left_at_most(&self) -> usize {
///         self.0.iter().map(Vec::len).sum()
///     }
/// }
///
/// let value = (7u32, ByteBuf::from(vec![1u8; 100_000]));
/// let bytes = proc_wire::encode(&value).unwrap();
/// let mut chunks = Chunks(bytes.chunks(4096).map(<[u8]>::to_vec).collect());
/// let back: (u32, ByteBuf) = proc_wire::decode_from(&mut chunks, 1 << 20).unwrap();
/// assert_eq!(back, value);
/// ```
pub trait Source {
    /// Why the source gave no more bytes.
    type Error;

    /// Appends the next bytes of the encoding to `buf`: at least one and at most
    /// `at_most` (which is at least 1), and returns how many; `Ok(0)` only at the end of
    /// the encoding. An error ends the decoding: [`decode_from`](crate::decode_from)
    /// returns it as [`StreamError::Stopped`](crate::StreamError::Stopped). A source that
    /// returns more than `at_most`, or a count that is not what it appended, makes the
    /// decoding fail ([`CodecError::Decode`](crate::CodecError::Decode)).
    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error>;

    /// At most how many bytes are left; `usize::MAX` when unknown. A length the bytes
    /// announce past this is an error at once. Within it, a long string or byte buffer is
    /// given all its room before its bytes arrive (one allocation, not one for each
    /// doubling): a source that is told how long its encoding is by someone it does not
    /// trust should say no more than it is willing to have set aside.
    fn left_at_most(&self) -> usize;
}

/// A slice, consumed as it is read: after [`decode_from`](crate::decode_from) it holds the
/// bytes not read.
impl Source for &[u8] {
    type Error = std::convert::Infallible;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
        let (now, rest) = self.split_at(at_most.min(self.len()));
        buf.extend_from_slice(now);
        *self = rest;
        Ok(now.len())
    }

    fn left_at_most(&self) -> usize {
        self.len()
    }
}

/// Why a [`Streaming`] input stopped for good: once set, it reads nothing more, and the
/// decode fails with this whatever the value made of the error it was given.
pub(crate) enum Fault<E> {
    /// The source failed, with this error.
    Source(E),
    /// The source gave more than the limit: `len` bytes so far.
    TooLarge { len: usize },
    /// The source did not keep the [`Source::read`] contract.
    Broken(String),
}

/// Takes bytes from a [`Source`], counting them against a limit.
struct Reader<'s, S: Source + ?Sized> {
    source: &'s mut S,
    /// How many bytes the source has given.
    read: usize,
    limit: usize,
    fault: Option<Fault<S::Error>>,
}

impl<S: Source + ?Sized> Reader<'_, S> {
    /// Appends at most `at_most` (at least 1) bytes to `dest` and returns how many; 0 at
    /// the end of the encoding. It asks the source for no more than one byte past the
    /// limit: that byte is the proof that the input is over it.
    fn pull(&mut self, dest: &mut Vec<u8>, at_most: usize) -> Result<usize, WireError> {
        if self.fault.is_some() {
            return Err(Self::stopped());
        }
        let at_most = at_most.min(self.limit.saturating_sub(self.read).saturating_add(1));
        let before = dest.len();
        let fault = match self.source.read(dest, at_most) {
            Err(e) => Fault::Source(e),
            Ok(n) if n > at_most => Fault::Broken(format!(
                "the source gave {n} bytes where at most {at_most} were asked for"
            )),
            Ok(n) if before.checked_add(n) != Some(dest.len()) => Fault::Broken(format!(
                "the source said it gave {n} bytes, but the buffer went from {before} to {} bytes",
                dest.len()
            )),
            Ok(n) => {
                self.read = self.read.saturating_add(n);
                if self.read <= self.limit {
                    return Ok(n);
                }
                Fault::TooLarge { len: self.read }
            }
        };
        // Keep what the input holds as it was; nothing is read after a fault.
        dest.truncate(before);
        let err = Self::stopped();
        self.fault = Some(fault);
        Err(err)
    }

    /// The error the decoder unwinds with: `decode_from` reports the fault kept here
    /// instead, whatever the value made of this one.
    #[cold]
    fn stopped() -> WireError {
        WireError("the source stopped".into())
    }
}

/// Reads from a [`Source`]: the small parts of a value (numbers, markers,
/// lengths) through a stage of a few KiB, a long string or byte buffer straight into the
/// vector that becomes its value, so that it is copied once, by the source.
pub(crate) struct Streaming<'s, S: Source + ?Sized> {
    reader: Reader<'s, S>,
    /// Bytes read from the source; those before `at` are used.
    stage: Vec<u8>,
    at: usize,
    /// Where a run longer than the stage is copied, for a visitor that only borrows it.
    scratch: Vec<u8>,
}

impl<'s, S: Source + ?Sized> Streaming<'s, S> {
    /// Reads from `source`, at most `limit` bytes.
    pub(crate) fn new(source: &'s mut S, limit: usize) -> Self {
        Streaming {
            reader: Reader {
                source,
                read: 0,
                limit,
                fault: None,
            },
            stage: Vec::with_capacity(STAGE_BYTES),
            at: 0,
            scratch: Vec::new(),
        }
    }

    /// The bytes staged and not yet used.
    #[inline]
    fn unread(&self) -> &[u8] {
        self.stage.get(self.at..).unwrap_or_default()
    }

    /// Reads until at least `need` (at most [`STAGE_BYTES`]) bytes are staged and unused.
    #[inline(never)]
    fn fill(&mut self, need: usize) -> Result<(), WireError> {
        self.stage.drain(..self.at.min(self.stage.len()));
        self.at = 0;
        while self.stage.len() < need {
            let room = STAGE_BYTES.saturating_sub(self.stage.len());
            if self.reader.pull(&mut self.stage, room)? == 0 {
                return Err(short());
            }
        }
        Ok(())
    }

    /// An error unless the source may have `len` bytes left, counting those staged. (Not
    /// the limit: a run past it fails as too large when the limit is crossed, as
    /// [`decode`](fn@crate::decode) fails for input past it.)
    #[inline]
    fn check_len(&self, len: usize) -> Result<(), WireError> {
        let left = self
            .unread()
            .len()
            .saturating_add(self.reader.source.left_at_most());
        if len > left {
            return Err(too_long(len, left));
        }
        Ok(())
    }

    /// Appends the next `len` bytes to the empty `dest`: the staged ones, then the rest
    /// straight from the source. `dest` gets its room at once from a source that knows
    /// how much it has left (`check_len` held `len` to that), else as the bytes arrive (see
    /// [`GROW_FLOOR`]): growing a heap block copies it, half the run again over the
    /// doublings.
    fn take_into(&mut self, dest: &mut Vec<u8>, len: usize) -> Result<(), WireError> {
        dest.reserve_exact(self.room_for(len));
        let staged = len.min(self.unread().len());
        dest.extend_from_slice(self.unread().get(..staged).unwrap_or_default());
        self.at += staged;
        while dest.len() < len {
            if dest.len() == dest.capacity() {
                let room = len.min(dest.len().saturating_mul(2).max(GROW_FLOOR));
                dest.reserve_exact(room - dest.len());
            }
            let at_most = (dest.capacity() - dest.len()).min(len - dest.len());
            if self.reader.pull(dest, at_most)? == 0 {
                return Err(short());
            }
        }
        Ok(())
    }

    /// After the value: how many bytes are left over. The staged ones if there are any,
    /// else 1 if the source gives one more byte when asked for it, else 0. No more is read:
    /// the count is at least one byte when there are any, not all of them.
    pub(crate) fn extra(&mut self) -> Result<usize, WireError> {
        if self.unread().is_empty() {
            self.stage.clear();
            self.at = 0;
            self.reader.pull(&mut self.stage, 1)?;
        }
        Ok(self.unread().len())
    }

    /// Why the input stopped for good, if it did.
    pub(crate) fn into_fault(self) -> Option<Fault<S::Error>> {
        self.reader.fault
    }
}

impl<'de, S: Source + ?Sized> Input<'de> for Streaming<'_, S> {
    #[inline]
    fn byte(&mut self) -> Result<u8, WireError> {
        if let Some(&byte) = self.stage.get(self.at) {
            self.at += 1;
            return Ok(byte);
        }
        self.fill(1)?;
        let byte = *self.unread().first().ok_or_else(short)?;
        self.at += 1;
        Ok(byte)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        if self.unread().len() < N {
            self.fill(N)?;
        }
        let bytes = *self.unread().first_chunk::<N>().ok_or_else(short)?;
        self.at += N;
        Ok(bytes)
    }

    /// The bytes staged, and what the source may have left, up to the limit: no more can
    /// be read.
    #[inline]
    fn left(&self) -> usize {
        let reader = &self.reader;
        let more = reader
            .source
            .left_at_most()
            .min(reader.limit.saturating_sub(reader.read));
        self.unread().len().saturating_add(more)
    }

    fn run(&mut self, len: usize) -> Result<Run<'de, '_>, WireError> {
        if len > self.unread().len() {
            self.check_len(len)?;
            if len > STAGE_BYTES {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let taken = self.take_into(&mut scratch, len);
                self.scratch = scratch;
                taken?;
                return Ok(Run::Copied(&self.scratch));
            }
            self.fill(len)?;
        }
        let start = self.at;
        self.at += len;
        let bytes = self.stage.get(start..self.at).ok_or_else(short)?;
        Ok(Run::Copied(bytes))
    }

    fn owned(&mut self, len: usize) -> Result<Vec<u8>, WireError> {
        self.check_len(len)?;
        let mut dest = Vec::new();
        self.take_into(&mut dest, len)?;
        Ok(dest)
    }

    /// All of them when the source says how much it has left (which bounds `len`), else
    /// [`GROW_FLOOR`] at most: a length prefix alone sets nothing more aside.
    fn room_for(&self, len: usize) -> usize {
        let room = len.min(Input::left(self));
        if self.reader.source.left_at_most() == usize::MAX {
            room.min(GROW_FLOOR)
        } else {
            room
        }
    }

    /// What the stage holds: a longer run would be copied aside first.
    fn piece(&self) -> usize {
        STAGE_BYTES
    }
}
