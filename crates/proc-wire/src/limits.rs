//! Every bound the codec keeps, in one place: how long an input may be by default, how
//! deep a value may nest, and how much a streamed encode or decode holds at a time.
//!
//! The other bound, on what a decode sets aside for lengths that its bytes announce, is no
//! constant: it is the input's own length (see the crate docs, "What a decode may
//! allocate"). The input checks a string's or byte buffer's length against what is left
//! ([`input`](crate::input), [`source`](crate::source)), and a sequence or map tells its
//! visitor at most as many elements as there are bytes left
//! ([`deserializer`](crate::deserializer)).

/// The largest encoded value decoded by default: 64 MiB.
///
/// ```
/// let bytes = proc_wire::encode(&vec![0u8; 1000]).unwrap();
/// let back: Vec<u8> = proc_wire::decode(&bytes, proc_wire::DEFAULT_LIMIT).unwrap();
/// assert_eq!(back.len(), 1000);
/// ```
pub const DEFAULT_LIMIT: usize = 64 << 20;

/// How deep a value may be nested. Each level is a call on the stack, and bytes from
/// another process can nest as deep as they are long (one byte a level, for an enum that
/// holds itself): without a bound, a few megabytes would overflow the stack, which aborts
/// the process. serde_json bounds it at 128 as well.
pub(crate) const MAX_DEPTH: u32 = 128;

/// Staged bytes are passed on to the sink once there are this many: few enough that the
/// buffer stays in the core's first-level cache. A source is read through a stage of the
/// same size.
pub(crate) const STAGE_BYTES: usize = 8 << 10;

/// A run at least this long goes to the sink from the value itself, not through the stage.
pub(crate) const PASS_THROUGH: usize = 2 << 10;

/// A string or byte buffer read from a [`Streaming`](crate::source::Streaming) input is
/// given room for at most this many bytes before any arrive, and then room for at most
/// twice what has arrived: a length prefix that announces more than comes costs at most
/// this, or twice what came.
pub(crate) const GROW_FLOOR: usize = 64 << 10;
