//! The type-erased call that lets a worker run any `fn(A) -> R` (or `fn(A, B) -> R`, for
//! `starmap`) the pool was given.
//!
//! A task function is a plain `fn` pointer. Workers run the same executable as the pool
//! (forked from it, spawned from it, or forked by its fork server), so the pool names the
//! function by its offset in that executable ([`CodeAddress`]), together with the offset of
//! [`call_chunk::<A, R>`], the one function that knows `A` and `R` and turns the address
//! back into a `fn(A) -> R`. Both are written only by the pool, into a connection that only
//! the pool and that worker hold.
//!
//! [`CodeAddress`]: proc_core::internal::CodeAddress

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_core::internal::panic_message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::message::{BODY, MESSAGE_LIMIT, Shape};

/// A task function the pool can name by address and a worker can call: `fn(A) -> R`, or
/// `fn(A, B) -> R`, whose arguments travel as the tuple `(A, B)`. Every call of the pool
/// (`map`, `starmap`, `apply`, …) goes through [`call_chunk`] with one of these.
pub(crate) trait TaskFn: Copy {
    /// The arguments of one task, as they travel.
    type Args: Serialize + DeserializeOwned;
    /// What one task returns.
    type Output: Serialize + DeserializeOwned;

    /// The function's address in this process.
    fn address(self) -> usize;

    /// Calls the function at `address` with `args` spread out.
    ///
    /// # Safety
    /// `address` is the address, in this process, of a function of type `Self`.
    unsafe fn call_at(address: usize, args: Self::Args) -> Self::Output;
}

impl<A, R> TaskFn for fn(A) -> R
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    type Args = A;
    type Output = R;

    fn address(self) -> usize {
        self as usize
    }

    unsafe fn call_at(address: usize, args: A) -> R {
        // SAFETY: the caller promises that `address` is a `fn(A) -> R` of this process.
        let func = unsafe { std::mem::transmute::<usize, fn(A) -> R>(address) };
        func(args)
    }
}

impl<A, B, R> TaskFn for fn(A, B) -> R
where
    A: Serialize + DeserializeOwned,
    B: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    type Args = (A, B);
    type Output = R;

    fn address(self) -> usize {
        self as usize
    }

    unsafe fn call_at(address: usize, (a, b): (A, B)) -> R {
        // SAFETY: the caller promises that `address` is a `fn(A, B) -> R` of this process.
        let func = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(address) };
        func(a, b)
    }
}

/// The type-erased form of [`call_chunk`]: the function's address and the encoded
/// arguments in; the encoded results appended to the buffer and their [`Shape`] out, or why
/// the chunk as a whole failed (then nothing is appended).
pub(crate) type Call = fn(usize, &[u8], &mut Vec<u8>) -> Result<Shape, String>;

thread_local! {
    /// Set while a worker runs tasks: the panic hook stays quiet, since the panic's message
    /// is handed back to the pool as that task's error.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Whether a task is running on this thread (for the worker's panic hook).
pub(crate) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// Runs `func` (a function of type `F`) over the arguments encoded in `inputs`, each under
/// `catch_unwind`, and appends the encoded results to `out`.
///
/// The arguments are all decoded before the first call, so that a chunk whose arguments do
/// not decode runs none of its tasks.
///
/// Monomorphised by the pool for the type `F` of the function it sends along with this
/// call's address, so the pair always matches.
pub(crate) fn call_chunk<F: TaskFn>(
    func: usize,
    inputs: &[u8],
    out: &mut Vec<u8>,
) -> Result<Shape, String> {
    // SAFETY: `func` is the address of a function of exactly the type `F`: the pool takes it
    // from a value of that type when it submits, next to the address of this very instance
    // of `call_chunk`, and sends both through a connection only it writes to. The worker
    // runs the pool's executable, and the offsets were resolved to this process's addresses
    // (inside its code) before this call.
    let func = |args: F::Args| unsafe { F::call_at(func, args) };
    let inputs: Vec<F::Args> = BODY
        .decode(inputs, MESSAGE_LIMIT)
        .map_err(|e| format!("the chunk's arguments did not decode: {e}"))?;
    IN_TASK.with(|t| t.set(true));
    let mut values = Vec::with_capacity(inputs.len());
    let mut inputs = inputs.into_iter();
    let mut mixed: Option<Vec<Result<F::Output, String>>> = None;
    for a in inputs.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| func(a))) {
            Ok(r) => values.push(r),
            Err(payload) => {
                // From the first panic on, every result carries its own outcome.
                let mut results: Vec<Result<F::Output, String>> =
                    values.drain(..).map(Ok).collect();
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
        Some(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count() as u64;
            BODY.encode_into(results, out)
                .map(|()| Shape::Mixed { failed })
        }
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
        let call: Call = call_chunk::<fn(u32) -> u32>;
        let func = double as fn(u32) -> u32 as usize;
        let mut out = vec![0xAA];
        let shape = call(func, &body(&[1, 3, 5]), &mut out).unwrap();
        assert_eq!(shape, Shape::Mixed { failed: 1 });
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
        let call: Call = call_chunk::<fn(String) -> usize>;
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
}
