//! What travels between the pool and its workers: the messages, their headers, and how a
//! header is sealed onto a message and read back.
//!
//! ## Messages
//! Each message is one frame of the connection (`send_bytes`), laid out as its *body* (the
//! encoded arguments of a chunk, or its encoded results), then a small encoded *header*
//! ([`ToWorker`] or [`FromWorker`]), then the header's length as a little-endian `u32`.
//! The header goes last because its writer knows it only once the body is written (a
//! worker learns whether every task returned as it runs them), and so the body is encoded
//! once, straight into the buffer that is sent: no copy into a second message, and none out
//! of it on the other side, where the body is decoded in place.
//!
//! A message that fits in the receiver's mailbox is written there, and what goes through
//! the connection is a notice: a message with an empty body whose header
//! ([`ToWorker::InInbox`], [`FromWorker::InOutbox`]) gives the length of the one in the
//! mailbox.

use proc_core::codec::{self, CodecError, Layout};
use proc_core::internal::CodeAddress;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest message between the pool and a worker: a chunk of arguments or of results.
pub(crate) const MESSAGE_LIMIT: usize = 1 << 30;

/// The largest message buffer kept for the next message, by the pool or a worker; a larger
/// one is let go once used, rather than held by an idle pool.
pub(crate) const KEEP_BUFFER: usize = 16 << 20;

/// The layout of a message's body: integers at their full width. A chunk's bulk is its
/// tasks' arguments and results, encoded once and decoded once on each side; fixed-width
/// integers cost a third to a quarter of compact ones to encode and decode, which for a
/// trivial task is most of its cost, and the bytes they add never leave this machine.
pub(crate) const BODY: Layout = Layout::Fixed;

/// Bytes of the trailer that gives a message's header length.
const TRAILER: usize = 4;

/// The largest header a message may carry (an error message at most, in practice).
const HEADER_LIMIT: usize = 1 << 20;

/// The header of a message from the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run `func` over the arguments in the body (an encoded sequence of `A`), through the
    /// `Call` at `call`.
    Chunk {
        id: u64,
        call: CodeAddress,
        func: CodeAddress,
    },
    /// No more work: end. The body is empty.
    Stop,
    /// The message is the first `len` bytes of the worker's inbox (see the mailbox
    /// module). The body is empty.
    InInbox { len: u64 },
}

/// The header of a message from a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// Which chunk the results in the body are for and their shape, or why the chunk as a
    /// whole failed (the body is then empty).
    Results {
        id: u64,
        outcome: Result<Shape, String>,
    },
    /// The message is the first `len` bytes of the worker's outbox. The body is empty.
    InOutbox { len: u64 },
    /// The worker's initializer returned: it takes chunks now. The body is empty.
    Ready,
    /// The worker's initializer failed (its panic's message); the worker ends. The body is
    /// empty.
    InitializerFailed { message: String },
}

/// How a chunk's results are encoded, one per argument, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Shape {
    /// Every task returned: a `Vec<R>`. Most chunks: a `Result` around each value would
    /// cost a tag to encode and decode per task, a large part of a trivial task's cost.
    Values,
    /// Some task panicked: a `Vec<Result<R, String>>`, `Err` holding the panic's message;
    /// `failed` of them are `Err` (for the pool's counters; the worker's word, so not
    /// trusted beyond the chunk's length).
    Mixed { failed: u64 },
}

/// Appends `header` to the body in `message`, as the message's last bytes.
pub(crate) fn seal<H: Serialize>(message: &mut Vec<u8>, header: &H) -> Result<(), CodecError> {
    let body = message.len();
    codec::encode_into(header, message)?;
    match u32::try_from(message.len() - body) {
        Ok(len) if len as usize <= HEADER_LIMIT => {
            message.extend_from_slice(&len.to_le_bytes());
            Ok(())
        }
        _ => {
            let len = message.len() - body;
            message.truncate(body);
            Err(CodecError::TooLarge {
                len,
                limit: HEADER_LIMIT,
            })
        }
    }
}

/// Reads the header of a received message; returns it and the length of the body, which
/// is the message's beginning. The bytes came from another process: a message too short
/// for what its trailer says is an error, never a panic.
pub(crate) fn open<H: DeserializeOwned>(message: &[u8]) -> Result<(H, usize), CodecError> {
    let short = || CodecError::Decode(format!("a message of {} bytes is cut short", message.len()));
    let trailer = message.len().checked_sub(TRAILER).ok_or_else(short)?;
    let mut len = [0u8; TRAILER];
    len.copy_from_slice(&message[trailer..]);
    let body = usize::try_from(u32::from_le_bytes(len))
        .ok()
        .and_then(|len| trailer.checked_sub(len))
        .ok_or_else(short)?;
    let header = codec::decode(&message[body..trailer], HEADER_LIMIT)?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_to_its_header_and_body() {
        let mut message = b"body".to_vec();
        seal(
            &mut message,
            &FromWorker::Results {
                id: 7,
                outcome: Ok(Shape::Values),
            },
        )
        .unwrap();
        let (header, body) = open::<FromWorker>(&message).unwrap();
        assert!(matches!(
            header,
            FromWorker::Results {
                id: 7,
                outcome: Ok(Shape::Values)
            }
        ));
        assert_eq!(&message[..body], b"body");
    }

    #[test]
    fn a_message_too_short_for_its_trailer_is_an_error_not_a_panic() {
        for message in [
            &[][..],
            &[1, 2, 3],
            &[0xFF, 0xFF, 0xFF, 0xFF],
            &[9, 1, 0, 0, 0],
            &[0, 0, 0, 0],
        ] {
            assert!(open::<FromWorker>(message).is_err(), "{message:?}");
        }
    }
}
