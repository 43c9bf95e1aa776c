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
//!   the fork server, before `main` (also before a test harness's `main`).
//!
//! Every child, whatever its start method, ends through [`finish`]: it terminates its daemon
//! children, joins the others, flushes stdio and calls `_exit`, never returning into code
//! that belongs to its parent's copy of the program.

pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod spawn;
pub(crate) mod takeover;
pub(crate) mod task;

use std::io::{self, Write};
use std::panic::catch_unwind;
use std::sync::{Arc, Once};

use crate::child::Child;
use crate::error::{Error, Result};
use crate::method::StartMethod;
use crate::state;

/// What a child runs.
pub(crate) enum Body {
    /// Any closure: only a forked child, a copy of the parent, can run it.
    Closure(Box<dyn FnOnce() + Send + 'static>),
    /// A function and its arguments: can also travel to a spawned or served child.
    Target(Box<dyn task::TargetBody>),
}

impl Body {
    /// Runs the body in this process (the forked child's way).
    pub(crate) fn run(self) {
        match self {
            Body::Closure(body) => body(),
            Body::Target(target) => target.run(),
        }
    }
}

/// What the parent decided about a child before starting it.
pub(crate) struct Spec<'a> {
    pub(crate) name: &'a str,
    pub(crate) identity: &'a [u64],
    pub(crate) daemon: bool,
    /// The method that starts it, which becomes the child's default: its own children
    /// start the same way unless it says otherwise, as under Python's contexts.
    pub(crate) method: StartMethod,
}

/// Starts a child that runs `body` with `spec.method`. On success the body has been taken
/// (and, in the parent, dropped); on failure it is left in place so that `start()` can be
/// retried.
pub(crate) fn start(spec: &Spec<'_>, body: &mut Option<Body>) -> Result<Arc<Child>> {
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

/// Ends a child started by multiproc: terminate its daemon children, join the rest, flush
/// stdio, `_exit`.
pub(crate) fn finish(code: i32) -> ! {
    let _ = catch_unwind(state::finish_children);
    flush_stdio();
    // SAFETY: _exit ends the process at once, without running atexit handlers or
    // destructors, which belong to the parent's copy of the program (forked) or to a `main`
    // that never ran (spawned).
    unsafe { libc::_exit(code) }
}

/// Flushes Rust's and C's stdout and stderr.
pub(crate) fn flush_stdio() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: fflush(NULL) flushes every C stdio stream; no pointer of ours is passed.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// As Python does: a child does not read the parent's terminal or input pipe by accident.
pub(crate) fn redirect_stdin_to_null() {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
}

/// At normal exit of a process that started children: terminate the daemon children, join
/// the others.
fn install_exit_hook() {
    static INSTALL: Once = Once::new();
    extern "C" fn at_exit() {
        // A panic must not cross the C boundary; there is nothing to report it to.
        let _ = catch_unwind(state::finish_children);
    }
    INSTALL.call_once(|| {
        // SAFETY: at_exit is an extern "C" fn with no arguments that never unwinds.
        unsafe { libc::atexit(at_exit) };
    });
}
