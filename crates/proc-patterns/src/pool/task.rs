//! What travels between the pool and its workers, and the type-erased call that lets a
//! worker run any `fn(A) -> R` the pool was given.
//!
//! A task function is a plain `fn` pointer. Workers run the same executable as the pool
//! (forked from it, spawned from it, or forked by its fork server), so the pool names the
//! function by its offset in that executable ([`CodeAddress`]), together with the offset of
//! [`call_chunk::<A, R>`], the one function that knows `A` and `R` and turns the address
//! back into a `fn(A) -> R`. Both are written only by the pool, into a connection that only
//! the pool and that worker hold.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_core::codec::{self, ByteBuf};
use proc_core::{CodeAddress, panic_message};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest message between the pool and a worker: a chunk of arguments or of results.
pub(crate) const MESSAGE_LIMIT: usize = 1 << 30;

/// The type-erased form of [`call_chunk`]: the function's address and the encoded
/// arguments in, the encoded results (or why the arguments did not decode) out.
pub(crate) type Call = fn(usize, &[u8]) -> Result<Vec<u8>, String>;

/// From the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run `func` over the encoded `Vec<A>` in `inputs`, through the `Call` at `call`.
    Chunk {
        id: u64,
        call: CodeAddress,
        func: CodeAddress,
        inputs: ByteBuf,
    },
    /// No more work: end.
    Stop,
}

/// From a worker to the pool: the results of chunk `id`, encoded [`Outputs<R>`], or why the
/// chunk as a whole failed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FromWorker {
    pub(crate) id: u64,
    pub(crate) outcome: Result<ByteBuf, String>,
}

/// The results of one chunk, one per argument. A chunk whose tasks all returned is sent as
/// the bare values: a `Result` around each would cost a tag to encode and decode per task,
/// which is most of the cost of a trivial task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outputs<R> {
    /// Every task returned.
    Values(Vec<R>),
    /// Some task panicked: `Err` holds its message.
    Mixed(Vec<Result<R, String>>),
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
/// `catch_unwind`, and encodes the results.
///
/// Monomorphised by the pool for the `A` and `R` of the function it sends along with this
/// call's address, so the pair always matches.
pub(crate) fn call_chunk<A, R>(func: usize, inputs: &[u8]) -> Result<Vec<u8>, String>
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
    let inputs: Vec<A> = codec::decode(inputs, MESSAGE_LIMIT)
        .map_err(|e| format!("the chunk's arguments did not decode: {e}"))?;
    IN_TASK.with(|t| t.set(true));
    let mut values = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter();
    let mut outputs = Outputs::Values(Vec::new());
    for a in inputs.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| func(a))) {
            Ok(r) => values.push(r),
            Err(payload) => {
                // From the first panic on, every result carries its own outcome.
                let mut mixed: Vec<Result<R, String>> = values.drain(..).map(Ok).collect();
                mixed.push(Err(panic_message(&*payload)));
                mixed.extend(inputs.by_ref().map(|a| {
                    catch_unwind(AssertUnwindSafe(|| func(a))).map_err(|p| panic_message(&*p))
                }));
                outputs = Outputs::Mixed(mixed);
                break;
            }
        }
    }
    IN_TASK.with(|t| t.set(false));
    if let Outputs::Values(v) = &mut outputs {
        *v = values;
    }
    codec::encode(&outputs).map_err(|e| format!("the chunk's results did not encode: {e}"))
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

    #[test]
    fn a_chunk_call_returns_each_result_and_each_panic_message_in_order() {
        let call: Call = call_chunk::<u32, u32>;
        let inputs = codec::encode(&[1u32, 3, 5][..]).unwrap();
        let out = call(double as fn(u32) -> u32 as usize, &inputs).unwrap();
        match codec::decode::<Outputs<u32>>(&out, 1 << 20).unwrap() {
            Outputs::Mixed(results) => assert_eq!(
                results,
                [Ok(2), Err("three is not welcome".to_string()), Ok(10)]
            ),
            other => panic!("expected mixed outputs, got {other:?}"),
        }
        let out = call(
            double as fn(u32) -> u32 as usize,
            &codec::encode(&[1u32, 2][..]).unwrap(),
        );
        match codec::decode::<Outputs<u32>>(&out.unwrap(), 1 << 20).unwrap() {
            Outputs::Values(values) => assert_eq!(values, [2, 4]),
            other => panic!("expected bare values, got {other:?}"),
        }
    }

    #[test]
    fn arguments_that_do_not_decode_fail_the_chunk_without_calling_the_function() {
        fn length(s: String) -> usize {
            s.len()
        }
        let call: Call = call_chunk::<String, usize>;
        let err = call(length as fn(String) -> usize as usize, &[0xFF, 0xFF]).unwrap_err();
        assert!(err.contains("did not decode"), "{err}");
    }
}
