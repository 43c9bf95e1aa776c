//! A pool's initializer: a `fn()`, or a `fn(A)` with its argument encoded, named by address
//! as task functions are (see the `call` module), and how a worker runs it and tells the
//! pool how it went.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_core::internal::{CodeAddress, panic_message};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::message::MESSAGE_LIMIT;

/// The type-erased call of an initializer: the function's address and its encoded
/// argument in; an error when the argument does not decode.
type CallInitializer = fn(usize, &[u8]) -> Result<(), String>;

/// An initializer as it travels to a worker, in its settings.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Initializer {
    call: CodeAddress,
    func: CodeAddress,
    #[serde(with = "serde_bytes")]
    args: Vec<u8>,
}

/// An initializer as the builder holds it: addresses of this process and the encoded
/// argument (or why it did not encode), turned into an [`Initializer`] when the pool is
/// built.
#[derive(Debug, Clone)]
pub(crate) struct InitializerSpec {
    call: usize,
    func: usize,
    args: Result<Vec<u8>, proc_core::CodecError>,
}

impl InitializerSpec {
    /// A `fn()`.
    pub(crate) fn plain(f: fn()) -> Self {
        let call: CallInitializer = call_plain;
        InitializerSpec {
            call: call as usize,
            func: f as usize,
            args: Ok(Vec::new()),
        }
    }

    /// A `fn(A)` and the argument it is called with.
    pub(crate) fn with<A: Serialize + DeserializeOwned>(f: fn(A), args: &A) -> Self {
        let call: CallInitializer = call_with::<A>;
        InitializerSpec {
            call: call as usize,
            func: f as usize,
            args: proc_core::codec::encode(args),
        }
    }

    /// The initializer as it travels: an error when a function is not in the executable or
    /// the argument did not encode.
    pub(crate) fn named(&self) -> crate::Result<Initializer> {
        Ok(Initializer {
            call: CodeAddress::of(self.call)?,
            func: CodeAddress::of(self.func)?,
            args: self.args.clone()?,
        })
    }
}

impl Initializer {
    /// In a worker: runs the initializer. An error, with the panic's message, when it
    /// panicked, could not be found or its argument did not decode.
    pub(crate) fn run(&self) -> Result<(), String> {
        let (call, func) = match (self.call.resolve(), self.func.resolve()) {
            (Ok(call), Ok(func)) => (call, func),
            (Err(e), _) | (_, Err(e)) => return Err(format!("the initializer was not found: {e}")),
        };
        // SAFETY: `call` names a `CallInitializer` of the pool's executable, which this
        // process runs, taken by `InitializerSpec` from a value of that type and sent by the
        // pool in this worker's settings; `resolve` checked that it lands in this
        // executable's code.
        let call = unsafe { std::mem::transmute::<usize, CallInitializer>(call) };
        match catch_unwind(AssertUnwindSafe(|| call(func, &self.args))) {
            Ok(outcome) => outcome,
            Err(payload) => Err(panic_message(&*payload)),
        }
    }
}

fn call_plain(func: usize, _: &[u8]) -> Result<(), String> {
    // SAFETY: `func` is the address of a `fn()`: `InitializerSpec::plain` took it from one,
    // next to the address of this function, and the worker resolved it in its own code.
    let f = unsafe { std::mem::transmute::<usize, fn()>(func) };
    f();
    Ok(())
}

fn call_with<A: DeserializeOwned>(func: usize, args: &[u8]) -> Result<(), String> {
    let args: A = proc_core::codec::decode(args, MESSAGE_LIMIT)
        .map_err(|e| format!("the initializer's argument did not decode: {e}"))?;
    // SAFETY: `func` is the address of a `fn(A)` with exactly this `A`:
    // `InitializerSpec::with` took it from one, next to the address of this instance of
    // `call_with`, and the worker resolved it in its own code.
    let f = unsafe { std::mem::transmute::<usize, fn(A)>(func) };
    f(args);
    Ok(())
}
