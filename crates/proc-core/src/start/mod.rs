//! How a child process comes to be: one module per start method behind one entry point,
//! [`start`].
//!
//! - [`fork`]: the child is a copy of the parent made by `fork(2)`; it runs a closure or a
//!   target in place.
//! - [`spawn`]: the child is a new run of this executable (`/proc/self/exe`); it is taken
//!   over before `main` ([`takeover`]) and runs the [`task`] it reads from a socket.
//! - [`forkserver`]: a single-threaded server process, itself spawned, forks the children on
//!   request; each reads its task from a socket as a spawned child does.
//! - [`task`]: what a spawned or served child receives (who it is, which function, the
//!   encoded arguments and their descriptors), how the parent sends it and how the child
//!   runs it and reports a task it cannot run.
//! - [`takeover`]: the ELF constructor that turns a spawned process into its task, or into
//!   the fork server, before `main` (also before a test harness's `main`), and
//!   [`init`](crate::init), the same from `main`.
//!
//! What the methods share, below them:
//! - [`spec`]: what the parent decided about a child: who it is and what it runs (a closure,
//!   or a target).
//! - [`target_call`]: a target as it travels: its entry point named by a code address, its
//!   arguments encoded with their descriptors.
//! - [`finish`]: how every child ends, and the stdio steps around a start.
//!
//! Every child, whatever its start method, ends through [`finish()`](finish::finish): it
//! terminates its daemon children, joins the others, flushes stdio and calls `_exit`, never
//! returning into code that belongs to its parent's copy of the program.

pub(crate) mod finish;
pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod spawn;
pub(crate) mod spec;
pub(crate) mod takeover;
pub(crate) mod target_call;
pub(crate) mod task;

use std::panic::catch_unwind;
use std::sync::{Arc, Once};

use crate::child::Child;
use crate::error::{Error, Result};
use crate::global_state;
use crate::start_method::StartMethod;

use spec::{Body, Spec};

/// Starts a child that runs `body` with `spec.method`. On success the body has been taken
/// (and, in the parent, dropped); on failure it is left in place so that `start()` can be
/// retried.
pub(crate) fn start(spec: &Spec<'_>, body: &mut Option<Body>) -> Result<Arc<Child>> {
    // A child this kernel cannot manage is never made.
    crate::kernel::require(crate::kernel::KernelFeature::Pidfds)
        .map_err(|feature| Error::KernelFeatureMissing { feature })?;
    install_exit_hook();
    let method = spec.method;
    let Some(held) = body.as_ref() else {
        return Err(Error::AlreadyStarted {
            name: spec.name.to_string(),
        });
    };
    match (method, held) {
        (StartMethod::Fork, _) => fork::start(spec, body),
        (_, Body::Closure(_)) => Err(Error::ClosureNeedsFork {
            name: spec.name.to_string(),
            method,
        }),
        (_, Body::Target(target)) => {
            let entry = target.entry(spec.name, method)?;
            let launch: task::Launch = match method {
                StartMethod::ForkServer => forkserver::launch,
                _ => spawn::launch,
            };
            let child = task::start(spec, launch, entry)?;
            // The parent's copy of the arguments (and of the handles among them) is not
            // needed here any more.
            *body = None;
            Ok(child)
        }
    }
}

/// At normal exit of a process that started children: terminate the daemon children, join
/// the others.
fn install_exit_hook() {
    static INSTALL: Once = Once::new();
    extern "C" fn at_exit() {
        // A panic must not cross the C boundary; there is nothing to report it to.
        let _ = catch_unwind(global_state::finish_children);
    }
    INSTALL.call_once(|| {
        // SAFETY: at_exit is an extern "C" fn with no arguments that never unwinds.
        unsafe { libc::atexit(at_exit) };
    });
}
