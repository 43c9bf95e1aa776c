//! The end an encoding streams into: the [`Sink`] trait, and [`Streamed`], the
//! serializer's output that gathers the small parts of a value a few KiB at a time and
//! passes long runs on straight from the value.

use crate::error::WireError;
use crate::limits::{PASS_THROUGH, STAGE_BYTES};
use crate::output::Out;

/// Takes an encoding piece by piece, in order, as [`encode_to`](crate::encode_to) produces
/// it: small parts gathered a few KiB at a time, a long string or byte buffer straight from
/// the value. The pieces joined are exactly what [`encode`](fn@crate::encode) returns.
///
/// A sink that writes somewhere else (another process's memory, a file) makes a value
/// cost one copy, where encoding into a buffer and copying the buffer costs two.
///
/// ```
/// use proc_wire::Sink;
///
/// /// Counts the bytes it is given, and keeps none.
/// struct Count(usize);
/// impl Sink for Count {
///     type Error = std::convert::Infallible;
///     fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
///         self.0 += bytes.len();
///         Ok(())
///     }
/// }
///
/// let value = ("a name", vec![1u64, 2, 3]);
/// let mut count = Count(0);
/// proc_wire::encode_to(&value, &mut count).unwrap();
/// assert_eq!(count.0, proc_wire::encode(&value).unwrap().len());
/// ```
pub trait Sink {
    /// Why the sink took no more bytes.
    type Error;

    /// Takes the next piece of the encoding. An error ends the encoding:
    /// [`encode_to`](crate::encode_to) returns it as
    /// [`StreamError::Stopped`](crate::StreamError::Stopped).
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// Passes an encoding on to a [`Sink`] in pieces: small parts through a buffer of a few
/// KiB, long runs straight from the value, so that a large byte buffer is copied once, by
/// the sink. `stopped` holds the sink's error once it refused a piece.
pub(crate) struct Streamed<'s, S: Sink + ?Sized> {
    stage: Vec<u8>,
    sink: &'s mut S,
    pub(crate) stopped: Option<S::Error>,
}

impl<'s, S: Sink + ?Sized> Streamed<'s, S> {
    pub(crate) fn new(sink: &'s mut S) -> Self {
        Streamed {
            stage: Vec::with_capacity(STAGE_BYTES + 64),
            sink,
            stopped: None,
        }
    }

    fn pass(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let passed = self.sink.write(bytes);
        self.stopped_on(passed)
    }

    /// What the sink's answer means to the encoder: go on, or stop (keeping the reason).
    fn stopped_on(&mut self, passed: Result<(), S::Error>) -> Result<(), WireError> {
        passed.map_err(|e| {
            self.stopped = Some(e);
            WireError("the sink took no more bytes".into())
        })
    }

    /// Passes the staged bytes on.
    pub(crate) fn flush(&mut self) -> Result<(), WireError> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let passed = self.sink.write(&self.stage);
        self.stage.clear();
        self.stopped_on(passed)
    }
}

impl<S: Sink + ?Sized> Out for Streamed<'_, S> {
    #[inline]
    fn staged(&mut self) -> &mut Vec<u8> {
        &mut self.stage
    }

    fn run(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if bytes.len() >= PASS_THROUGH {
            self.flush()?;
            return self.pass(bytes);
        }
        // So that a run never takes the stage past its room.
        if self.stage.len() + bytes.len() > STAGE_BYTES {
            self.flush()?;
        }
        self.stage.extend_from_slice(bytes);
        self.checkpoint()
    }

    #[inline]
    fn checkpoint(&mut self) -> Result<(), WireError> {
        if self.stage.len() >= STAGE_BYTES {
            return self.flush();
        }
        Ok(())
    }
}
