//! The Fork start method: the child is a copy of the parent made by `fork(2)`, runs its
//! body, and ends with `_exit` without ever returning into the parent's code.
//!
//! The rules it keeps (each has a test):
//! - stdout and stderr are flushed, and their locks held, across the fork: nothing buffered
//!   before `start()` prints twice, and the child never inherits a stdio lock held by
//!   another thread;
//! - the child's exit code is 0 when the body returns, 1 when it panics (the panic hook has
//!   printed the message to stderr), `n` for [`exit(n)`](crate::exit);
//! - before `_exit` the child terminates its daemon children, joins the others, and
//!   flushes stdio, so text without a trailing newline is not lost;
//! - forking from a multi-threaded process prints one warning.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::unistd::{ForkResult, fork};

use crate::child::{Child, Ending};
use crate::error::{Error, Result};
use crate::global_state::{self, Me};
use crate::lifeline::{self, Lifeline};
use crate::method_choice;
use crate::pidfd::Pidfd;
use crate::start_method::StartMethod;

use super::finish::{finish, flush_stdio, redirect_stdin_to_null};
use super::forkserver;
use super::spec::{Body, Spec};

/// Forks a child that runs `body`. On success the body has been taken (and, in the parent,
/// dropped); on failure it is left in place so that `start()` can be retried.
pub(crate) fn start(spec: &Spec<'_>, body: &mut Option<Body>) -> Result<Arc<Child>> {
    warn_if_threaded();

    // Lock order: stdout, stderr, the fork server's connection, then the global state;
    // nothing that holds a later one ever takes an earlier one.
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    // The locks are re-entrant: this thread may flush through them while it holds them.
    flush_stdio();

    // Held across the fork like the global state, so that the child's copy of the fork
    // server's connection is in a known state (no request half made by another thread).
    let mut forkserver_client = forkserver::lock_client();
    let mut global = global_state::lock();
    let parent = global.prepare_start(spec.daemon)?;

    // SAFETY: fork's contract is that the child of a multi-threaded parent calls only
    // async-signal-safe functions until exec. Here the child goes on to run arbitrary Rust
    // code, which is safe only as far as no lock held by another thread at the fork is
    // needed in the child: the locks this crate uses (stdio, the global state) are held by
    // this very thread across the fork, the one static it sets lazily (the code image, see
    // `code_address::find_before_threads`) is set before `main`, glibc's allocator re-initialises
    // its locks in the child, and for everything else the user is warned once (see
    // warn_if_threaded) and pointed at starting processes before threads.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let body = body.take();
            let me = Me {
                name: spec.name.to_string().into(),
                identity: spec.identity.to_vec(),
                daemon: spec.daemon,
                parent: Some(parent),
                managed: true,
            };
            let siblings = std::mem::take(&mut global.children);
            let lifeline = global.lifeline.take();
            // The parent's fork server serves the parent: our copy of its connection must
            // not keep it alive, and a fork server we need is our own.
            drop(forkserver_client.take());
            drop(forkserver_client);
            global.me = me;
            // The copy of the parent's default says nothing about this child: it was
            // started by Fork, and its own children fork too unless it says otherwise.
            method_choice::set_default(StartMethod::Fork);
            global_state::reset_child_numbering();
            drop(global);
            drop(stderr);
            drop(stdout);
            run_child(body, spec.daemon, siblings, lifeline)
        }
        Ok(ForkResult::Parent { child }) => {
            let pidfd = match Pidfd::open(child.as_raw()) {
                Ok(pidfd) => pidfd,
                Err(e) => {
                    // Without a pidfd the child cannot be managed safely: end it now.
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::io("pidfd_open of the new child", e));
                }
            };
            let record = Arc::new(Child::new(
                child.as_raw() as u32,
                spec.name.to_string(),
                spec.daemon,
                pidfd,
                Ending::Own,
                None,
            ));
            global.children.push(Arc::clone(&record));
            drop(global);
            drop(forkserver_client);
            drop(stderr);
            drop(stdout);
            // The parent's copy of the body (and what it captured) is not needed here.
            drop(body.take());
            Ok(record)
        }
        Err(e) => Err(Error::io("fork", e.into())),
    }
}

/// The child's side: set up, run the body, finish. Never returns.
fn run_child(
    body: Option<Body>,
    daemon: bool,
    siblings: Vec<Arc<Child>>,
    lifeline: Option<Lifeline>,
) -> ! {
    // The siblings are the parent's children, not ours: close their pidfds here.
    drop(siblings);
    if let Some(Lifeline { read, write }) = lifeline {
        // Our copy of the parent's write end must not keep the parent's lifeline alive.
        drop(write);
        if daemon {
            lifeline::watch(read);
        }
    }
    redirect_stdin_to_null();
    let code = match body {
        Some(body) => match catch_unwind(AssertUnwindSafe(|| body.run())) {
            Ok(()) => 0,
            // The panic hook has already printed the message on stderr.
            Err(_) => 1,
        },
        None => 0,
    };
    finish(code)
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Python 3.12 warns when a multi-threaded process forks; so do we, once per process.
fn warn_if_threaded() {
    // Once warned, there is nothing more to say: spare the read of /proc at every start.
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    let Some(threads) = thread_count() else {
        return;
    };
    if threads > 1 && !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "multiproc: warning: process {pid} has {threads} threads and is forking a child \
             process. Only the forking thread exists in the child: a lock that another thread \
             held at that moment (in a library, in the allocator, in your own code) stays locked \
             there forever, and the child can deadlock on it. Start child processes before \
             creating threads, or keep the children's work away from locks other threads use.",
            pid = std::process::id(),
        );
    }
}

/// The number of threads of this process, from `/proc/self/stat` (field 20).
pub(crate) fn thread_count() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(17)?.parse().ok()
}
