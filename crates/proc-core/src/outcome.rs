//! What a child that returns a value sends back, and how: [`deliver`] runs the child's body
//! and hands its outcome (its value, or its panic with the panic's message and place) over
//! through `value_handover`; [`receive`] is the parent's side, once the child has ended.
//! Both [`spawn`](crate::spawn) (a closure, forked) and
//! [`spawn_target`](crate::spawn_target) (a target, under every start method) use them.

use std::os::fd::BorrowedFd;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Mutex, Once, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::error::{JoinError, panic_message};
use crate::value_handover;

/// The largest value a child may return: 1 GiB. A child whose value encodes longer ends
/// with [`JoinError::Codec`]; the parent checks the length another process announces before
/// it allocates or maps anything for it.
pub const RESULT_LIMIT: usize = 1 << 30;

/// What the child sends back.
#[derive(Serialize, Deserialize)]
enum Outcome<T> {
    Returned(T),
    Panicked {
        message: String,
        location: Option<String>,
    },
    Unencodable(String),
}

/// In the child: runs `body` and hands its value, or its panic, over on `socket`. A panic
/// (of the body, or of the value's `Serialize` impl) goes on once it has been reported, so
/// the child still ends as a panicking child does (exit code 1).
pub(crate) fn deliver<T: Serialize>(socket: BorrowedFd<'_>, body: impl FnOnce() -> T) {
    record_panic_locations();
    let caught = catch_unwind(AssertUnwindSafe(body));
    let (outcome, mut panic) = match caught {
        Ok(value) => (Outcome::Returned(value), None),
        Err(payload) => (panicked(payload.as_ref()), Some(payload)),
    };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| send(socket, &outcome))) {
        // The value's Serialize panicked (the hook printed it): for the parent, a panic
        // of the child like one in the body, with its message. Nothing was sent yet.
        send(socket, &panicked::<T>(payload.as_ref()));
        panic = panic.or(Some(payload));
    }
    // Dropped here, not while unwinding below, where a panicking Drop would abort.
    drop(outcome);
    if let Some(payload) = panic {
        // Ends the child with exit code 1, as any panic; the hook already printed it.
        resume_unwind(payload);
    }
}

fn panicked<T>(payload: &(dyn std::any::Any + Send)) -> Outcome<T> {
    Outcome::Panicked {
        message: panic_message(payload),
        location: LAST_PANIC_AT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
    }
}

/// Hands `outcome` over to the parent; one that cannot be (it does not encode, is over the
/// limit, or no memory file could be made for it) is replaced by the reason. When even that
/// cannot be sent, the parent is gone or its socket is broken: nobody wants the value.
fn send<T: Serialize>(socket: BorrowedFd<'_>, outcome: &Outcome<T>) {
    if let Err(e) = value_handover::hand_over(socket, outcome, RESULT_LIMIT) {
        let reason = Outcome::<T>::Unencodable(e.to_string());
        let _ = value_handover::hand_over(socket, &reason, RESULT_LIMIT);
    }
}

/// Where the last panic of this process happened, `file:line:col`, as the panic hook saw it.
static LAST_PANIC_AT: Mutex<Option<String>> = Mutex::new(None);

/// In the child: a panic hook that notes where a panic happened, then does what the hook
/// in place did (print the message), installed once.
fn record_panic_locations() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(at) = info.location() {
                *LAST_PANIC_AT.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("{}:{}:{}", at.file(), at.line(), at.column()));
            }
            previous(info);
        }));
    });
}

/// In the parent, once the child has ended with `code`: its value, or how it failed to
/// give one.
pub(crate) fn receive<T: DeserializeOwned>(
    socket: BorrowedFd<'_>,
    code: i32,
) -> Result<T, JoinError> {
    match value_handover::take(socket, RESULT_LIMIT)? {
        Some(bytes) => match codec::decode::<Outcome<T>>(&bytes, RESULT_LIMIT)? {
            Outcome::Returned(value) => Ok(value),
            Outcome::Panicked { message, location } => {
                Err(JoinError::Panicked { message, location })
            }
            Outcome::Unencodable(message) => Err(JoinError::Codec(CodecError::Encode(message))),
        },
        None if code < 0 => Err(JoinError::Signaled(-code)),
        None => Err(JoinError::Exited(code)),
    }
}
