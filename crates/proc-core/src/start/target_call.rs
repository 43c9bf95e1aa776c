//! A target as the start methods carry it: [`TargetBody`], a function and its arguments that
//! run here (forked) or travel (spawned, served) as an [`Entry`]: the code address of
//! [`call_encoded`] instantiated for the target's type, and the encoded arguments.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::code_address::CodeAddress;
use crate::codec::CodecError;
use crate::error::{Error, Result};
use crate::handle_wire::{self, Descriptor, Parcel};
use crate::outcome;
use crate::start_method::StartMethod;
use crate::target::Target;

/// The largest task message (the arguments, mostly) a child accepts: 1 GiB.
pub(crate) const TASK_LIMIT: usize = 1 << 30;

/// The function a spawned child calls: decodes the arguments from the bytes and the
/// descriptors, calls `accepted`, then the target. `Err` when the arguments do not decode.
pub(crate) type EntryFn = fn(&[u8], Vec<OwnedFd>, &mut dyn FnMut()) -> Result<(), CodecError>;

/// A target ready to travel: its entry point and its encoded arguments.
pub(crate) struct Entry {
    pub(crate) address: CodeAddress,
    pub(crate) args: Parcel,
}

/// A target that can run here (forked) or be sent (spawned, served).
pub(crate) trait TargetBody: Send {
    /// Calls the function with the arguments, in this process.
    fn run(self: Box<Self>);

    /// The entry point and encoded arguments, for a child started by `method`. An error
    /// when the target cannot be named in another process, or the arguments do not encode.
    fn entry(&self, name: &str, method: StartMethod) -> Result<Entry>;
}

/// A function and its arguments, as `Process::target` takes them.
pub(crate) struct TargetCall<F, Args> {
    pub(crate) function: F,
    pub(crate) args: Args,
}

impl<F, Args> TargetBody for TargetCall<F, Args>
where
    F: Target<Args>,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    fn run(self: Box<Self>) {
        let TargetCall { function, args } = *self;
        // A process's target returns nothing anyone asked for, as in Python.
        drop(function.call(args));
    }

    fn entry(&self, name: &str, method: StartMethod) -> Result<Entry> {
        refuse_unless_zero_sized::<F>(name, method)?;
        let entry: EntryFn = call_encoded::<F, Args>;
        Ok(Entry {
            address: CodeAddress::of(entry as usize)?,
            args: handle_wire::encode(&self.args)?,
        })
    }
}

/// A function item or a closure that captures nothing is zero-sized: its type alone says
/// what to call, so the child can make the value from nothing. Anything else carries data
/// (captures, or a function pointer's address) that cannot travel.
fn refuse_unless_zero_sized<F>(name: &str, method: StartMethod) -> Result<()> {
    if size_of::<F>() != 0 {
        return Err(Error::TargetCannotTravel {
            name: name.to_string(),
            method,
            function: std::any::type_name::<F>(),
        });
    }
    Ok(())
}

/// A function, its arguments, and the child's end of the socket its return value is
/// handed back on: what `spawn_target` starts.
pub(crate) struct ReturningCall<F, Args> {
    pub(crate) function: F,
    pub(crate) args: Args,
    pub(crate) socket: Descriptor,
}

impl<F, Args> TargetBody for ReturningCall<F, Args>
where
    F: Target<Args>,
    F::Output: Serialize,
    Args: Serialize + DeserializeOwned + Send + 'static,
{
    fn run(self: Box<Self>) {
        let ReturningCall {
            function,
            args,
            socket,
        } = *self;
        outcome::deliver(socket.as_fd(), || function.call(args));
    }

    fn entry(&self, name: &str, method: StartMethod) -> Result<Entry> {
        refuse_unless_zero_sized::<F>(name, method)?;
        let entry: EntryFn = call_encoded_returning::<F, Args>;
        Ok(Entry {
            address: CodeAddress::of(entry as usize)?,
            // The socket travels first, as a descriptor, then the arguments.
            args: handle_wire::encode(&(&self.socket, &self.args))?,
        })
    }
}

/// The entry point of a spawned child for targets of type `F` with arguments `Args`.
fn call_encoded<F, Args>(
    args: &[u8],
    fds: Vec<OwnedFd>,
    accepted: &mut dyn FnMut(),
) -> Result<(), CodecError>
where
    F: Target<Args>,
    Args: DeserializeOwned,
{
    let args: Args = handle_wire::decode(args, TASK_LIMIT, fds)?;
    let function = conjure::<F>()?;
    accepted();
    // A process's target returns nothing anyone asked for, as in Python.
    drop(function.call(args));
    Ok(())
}

/// The entry point of a spawned child of `spawn_target` for targets of type `F` with
/// arguments `Args`: as [`call_encoded`], then the function's value is handed back on the
/// socket that came first among the arguments.
fn call_encoded_returning<F, Args>(
    args: &[u8],
    fds: Vec<OwnedFd>,
    accepted: &mut dyn FnMut(),
) -> Result<(), CodecError>
where
    F: Target<Args>,
    F::Output: Serialize,
    Args: DeserializeOwned,
{
    let (socket, args): (Descriptor, Args) = handle_wire::decode(args, TASK_LIMIT, fds)?;
    let function = conjure::<F>()?;
    accepted();
    outcome::deliver(socket.as_fd(), || function.call(args));
    Ok(())
}

/// The value of the zero-sized type `F`, made in this process.
fn conjure<F>() -> Result<F, CodecError> {
    if size_of::<F>() != 0 {
        return Err(CodecError::Decode(format!(
            "{} is not zero-sized and cannot be made in this process",
            std::any::type_name::<F>()
        )));
    }
    // SAFETY: F is zero-sized (checked above, and by the parent before it named the entry
    // function): a read of it through a dangling but well-aligned pointer reads no bytes.
    // The only such values are function items and closures that capture nothing (or only
    // zero-sized values), which the parent held one of: making one here is what calling
    // the same function in another run of the program means.
    Ok(unsafe { std::ptr::read(NonNull::<F>::dangling().as_ptr()) })
}
