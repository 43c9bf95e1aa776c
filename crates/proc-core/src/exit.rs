//! [`exit`]: end the calling process with an exit code, Python's `sys.exit(n)` in a child.

use crate::global_state;
use crate::start::finish::{finish, flush_stdio};

/// Ends the calling process with `code`, after flushing stdout and stderr.
///
/// In a child started by multiproc it first terminates its daemon children and joins the
/// others, then ends with `_exit(code)` without running the parent's destructors or atexit
/// handlers; its parent sees exit code `code`. In the main process it is
/// `std::process::exit(code)`, and the normal exit hook joins the children.
///
/// ```
/// let mut p = proc_core::Process::new(|| {
///     print!("no newline, still printed");
///     proc_core::exit(42);
/// });
/// p.start()?;
/// assert_eq!(p.join()?, 42);
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn exit(code: i32) -> ! {
    let managed = global_state::lock().me.managed;
    if managed {
        finish(code)
    }
    flush_stdio();
    std::process::exit(code)
}
