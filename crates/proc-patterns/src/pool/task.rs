//! What travels between the pool and its workers, and the type-erased call that lets a
//! worker run any `fn(A) -> R` the pool was given.
//!
//! A task function is a plain `fn` pointer. Workers run the same executable as the pool
//! (forked from it, spawned from it, or forked by its fork server), so the pool names the
//! function by its offset in that executable ([`CodeAddress`]), together with the offset of
//! [`call_chunk::<A, R>`], the one function that knows `A` and `R` and turns the address
//! back into a `fn(A) -> R`. Both are written only by the pool, into a connection that only
//! the pool and that worker hold.
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

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_core::codec::{self, CodecError, Layout};
use proc_core::{CodeAddress, panic_message};
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

/// The type-erased form of [`call_chunk`]: the function's address and the encoded
/// arguments in; the encoded results appended to the buffer and their [`Shape`] out, or why
/// the chunk as a whole failed (then nothing is appended).
pub(crate) type Call = fn(usize, &[u8], &mut Vec<u8>) -> Result<Shape, String>;

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
}

/// How a chunk's results are encoded, one per argument, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Shape {
    /// Every task returned: a `Vec<R>`. Most chunks: a `Result` around each value would
    /// cost a tag to encode and decode per task, a large part of a trivial task's cost.
    Values,
    /// Some task panicked: a `Vec<Result<R, String>>`, `Err` holding the panic's message.
    Mixed,
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

thread_local! {
    /// Set while a worker runs tasks: the panic hook stays quiet, since the panic's message
    /// is handed back to the pool as that task's error.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Whether a task is running on this thread (for the worker's panic hook).
pub(crate) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// Runs `func` (a `fn(A) -> R`) over the arguments encoded in `inputs`, each under
/// `catch_unwind`, and appends the encoded results to `out`.
///
/// The arguments are all decoded before the first call, so that a chunk whose arguments do
/// not decode runs none of its tasks.
///
/// Monomorphised by the pool for the `A` and `R` of the function it sends along with this
/// call's address, so the pair always matches.
pub(crate) fn call_chunk<A, R>(
    func: usize,
    inputs: &[u8],
    out: &mut Vec<u8>,
) -> Result<Shape, String>
where
    A: DeserializeOwned,
    R: Serialize,
{
    // SAFETY: `func` is the address of a `fn(A) -> R` with exactly this A and R: the pool
    // takes it from a value of that type in `Pool::submit`, next to the address of this very
    // instance of `call_chunk`, and sends both through a connection only it writes to. The
    // worker runs the pool's executable, and the offsets were resolved to this process's
    // addresses (inside its code) before this call.
    let func = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let inputs: Vec<A> = BODY
        .decode(inputs, MESSAGE_LIMIT)
        .map_err(|e| format!("the chunk's arguments did not decode: {e}"))?;
    IN_TASK.with(|t| t.set(true));
    let mut values = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter();
    let mut mixed: Option<Vec<Result<R, String>>> = None;
    for a in inputs.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| func(a))) {
            Ok(r) => values.push(r),
            Err(payload) => {
                // From the first panic on, every result carries its own outcome.
                let mut results: Vec<Result<R, String>> = values.drain(..).map(Ok).collect();
                results.push(Err(panic_message(&*payload)));
                results.extend(inputs.by_ref().map(|a| {
                    catch_unwind(AssertUnwindSafe(|| func(a))).map_err(|p| panic_message(&*p))
                }));
                mixed = Some(results);
                break;
            }
        }
    }
    IN_TASK.with(|t| t.set(false));
    let encoded = match &mixed {
        None => BODY.encode_into(&values, out).map(|()| Shape::Values),
        Some(results) => BODY.encode_into(results, out).map(|()| Shape::Mixed),
    };
    encoded.map_err(|e| format!("the chunk's results did not encode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        if x == 3 {
            panic!("three is not welcome");
        }
        x * 2
    }

    fn body(inputs: &[u32]) -> Vec<u8> {
        let mut body = Vec::new();
        BODY.encode_into(inputs, &mut body).unwrap();
        body
    }

    #[test]
    fn a_chunk_call_returns_each_result_and_each_panic_message_in_order() {
        let call: Call = call_chunk::<u32, u32>;
        let func = double as fn(u32) -> u32 as usize;
        let mut out = vec![0xAA];
        let shape = call(func, &body(&[1, 3, 5]), &mut out).unwrap();
        assert_eq!(shape, Shape::Mixed);
        assert_eq!(out[0], 0xAA, "results are appended");
        assert_eq!(
            BODY.decode::<Vec<Result<u32, String>>>(&out[1..], 1 << 20)
                .unwrap(),
            [Ok(2), Err("three is not welcome".to_string()), Ok(10)]
        );
        out.clear();
        let shape = call(func, &body(&[1, 2]), &mut out).unwrap();
        assert_eq!(shape, Shape::Values);
        assert_eq!(BODY.decode::<Vec<u32>>(&out, 1 << 20).unwrap(), [2, 4]);
    }

    #[test]
    fn arguments_that_do_not_decode_fail_the_chunk_without_calling_the_function() {
        fn length(s: String) -> usize {
            s.len()
        }
        let call: Call = call_chunk::<String, usize>;
        let mut out = Vec::new();
        let err = call(
            length as fn(String) -> usize as usize,
            &[0xFF, 0xFF],
            &mut out,
        )
        .unwrap_err();
        assert!(err.contains("did not decode"), "{err}");
        assert!(out.is_empty());
    }

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
