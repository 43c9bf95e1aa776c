//! How a connection marks where one message ends and the next begins: the header in front
//! of each message, in one of two forms.
//!
//! - [`Framing::Native`], the ends of [`pipe`](crate::pipe): 8 bytes little-endian, the
//!   payload length in the low 48 bits and the count of file descriptors that travel with
//!   the message in the high 16.
//! - [`Framing::Python`], the connections of a [`Listener`](crate::Listener) or
//!   [`Client`](crate::Client), as Python's `multiprocessing.connection` writes them: a
//!   4-byte big-endian signed length; a length that does not fit in it is sent as -1
//!   followed by an 8-byte big-endian length. No descriptors travel.
//!
//! The header comes from another process: [`Framing::parse`] checks it, never trusting it.

/// The longest header of either form.
pub(crate) const MAX_HEADER: usize = 12;

/// The header's bits that hold a native frame's length; the bits above hold the descriptor
/// count.
const LENGTH_BITS: u32 = 48;

/// The longest payload a Python frame announces in its short form; longer ones use the
/// long form.
const PYTHON_SHORT_MAX: usize = 0x7fff_ffff;

/// The form of a connection's frame headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// multiproc's own: lengths and descriptor counts, for the ends of a pipe.
    Native,
    /// Python's `multiprocessing.connection` protocol: lengths only.
    Python,
}

/// A header read from the front of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The payload's length, as announced (not yet checked against any limit).
    pub(crate) len: u64,
    /// The descriptors the frame announces (always 0 for Python framing).
    pub(crate) fds: usize,
    /// The bytes the header itself takes.
    pub(crate) size: usize,
}

/// What the bytes at the front of a frame say so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole header.
    Header(Header),
    /// The header is not complete: it takes at least this many bytes.
    Need(usize),
    /// The bytes cannot start a frame (a negative Python length other than -1).
    Invalid(String),
}

impl Framing {
    /// Reads the header at the front of `bytes`.
    #[inline]
    pub(crate) fn parse(self, bytes: &[u8]) -> Parsed {
        match self {
            Framing::Native => {
                let Some(header) = bytes.first_chunk::<8>() else {
                    return Parsed::Need(8);
                };
                let header = u64::from_le_bytes(*header);
                Parsed::Header(Header {
                    len: header & ((1 << LENGTH_BITS) - 1),
                    fds: (header >> LENGTH_BITS) as usize,
                    size: 8,
                })
            }
            Framing::Python => {
                let Some(short) = bytes.first_chunk::<4>() else {
                    return Parsed::Need(4);
                };
                match i32::from_be_bytes(*short) {
                    -1 => match bytes.get(4..).and_then(<[u8]>::first_chunk::<8>) {
                        Some(long) => Parsed::Header(Header {
                            len: u64::from_be_bytes(*long),
                            fds: 0,
                            size: 12,
                        }),
                        None => Parsed::Need(12),
                    },
                    len if len < 0 => Parsed::Invalid(format!(
                        "a frame header announces the negative length {len}"
                    )),
                    len => Parsed::Header(Header {
                        len: len.unsigned_abs().into(),
                        fds: 0,
                        size: 4,
                    }),
                }
            }
        }
    }

    /// Writes the header of a frame of `len` bytes carrying `fds` descriptors at the end
    /// of `out`; returns how many bytes it takes there.
    #[inline]
    pub(crate) fn encode(self, len: usize, fds: usize, out: &mut [u8; MAX_HEADER]) -> usize {
        match self {
            Framing::Native => {
                let header = (len as u64) | ((fds as u64) << LENGTH_BITS);
                out[MAX_HEADER - 8..].copy_from_slice(&header.to_le_bytes());
                8
            }
            Framing::Python if len <= PYTHON_SHORT_MAX => {
                out[MAX_HEADER - 4..].copy_from_slice(&(len as u32).to_be_bytes());
                4
            }
            Framing::Python => {
                out[..4].copy_from_slice(&(-1i32).to_be_bytes());
                out[4..].copy_from_slice(&(len as u64).to_be_bytes());
                12
            }
        }
    }

    /// The largest payload a header of this form can announce.
    pub(crate) fn max_len(self) -> usize {
        match self {
            Framing::Native => (1 << LENGTH_BITS) - 1,
            Framing::Python => usize::MAX,
        }
    }

    /// Whether descriptors travel with messages.
    pub(crate) fn carries_fds(self) -> bool {
        self == Framing::Native
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(framing: Framing, len: usize, fds: usize) -> (Parsed, usize) {
        let mut out = [0u8; MAX_HEADER];
        let size = framing.encode(len, fds, &mut out);
        (framing.parse(&out[MAX_HEADER - size..]), size)
    }

    #[test]
    fn native_headers_carry_length_and_descriptor_count() {
        let (parsed, size) = round_trip(Framing::Native, 1 << 40, 3);
        assert_eq!(size, 8);
        assert_eq!(
            parsed,
            Parsed::Header(Header {
                len: 1 << 40,
                fds: 3,
                size: 8
            })
        );
    }

    #[test]
    fn python_headers_are_big_endian_and_switch_to_the_long_form_past_i32() {
        let mut out = [0u8; MAX_HEADER];
        assert_eq!(Framing::Python.encode(0x0102_0304, 0, &mut out), 4);
        assert_eq!(out[8..], [1, 2, 3, 4]);
        let (parsed, size) = round_trip(Framing::Python, PYTHON_SHORT_MAX, 0);
        assert_eq!(size, 4);
        assert!(matches!(parsed, Parsed::Header(Header { len, .. }) if len == 0x7fff_ffff));
        let (parsed, size) = round_trip(Framing::Python, PYTHON_SHORT_MAX + 1, 0);
        assert_eq!(size, 12);
        assert_eq!(
            parsed,
            Parsed::Header(Header {
                len: 0x8000_0000,
                fds: 0,
                size: 12
            })
        );
    }

    #[test]
    fn incomplete_headers_say_how_many_bytes_they_need() {
        assert_eq!(Framing::Native.parse(&[0; 7]), Parsed::Need(8));
        assert_eq!(Framing::Python.parse(&[0; 3]), Parsed::Need(4));
        assert_eq!(Framing::Python.parse(&[0xFF; 11]), Parsed::Need(12));
    }

    #[test]
    fn a_negative_python_length_other_than_minus_one_is_invalid() {
        assert!(matches!(
            Framing::Python.parse(&(-2i32).to_be_bytes()),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            Framing::Python.parse(&i32::MIN.to_be_bytes()),
            Parsed::Invalid(_)
        ));
    }
}
