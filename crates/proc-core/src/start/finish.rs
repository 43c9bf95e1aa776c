//! How every child ends, whatever started it ([`finish`]), and the stdio steps around a
//! start: stdout and stderr flushed before it, stdin from `/dev/null` in the child.

use std::io::{self, Write};
use std::panic::catch_unwind;

use crate::global_state;

/// Ends a child started by multiproc: terminate its daemon children, join the rest, flush
/// stdio, `_exit`.
pub(crate) fn finish(code: i32) -> ! {
    let _ = catch_unwind(global_state::finish_children);
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
