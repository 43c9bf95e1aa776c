//! Taking a spawned process over before `main`.
//!
//! A process started by the Spawn method, and the fork server, are new runs of the program.
//! They must not run its `main`: not the user's (which would start the program over), and
//! not a test harness's (under `cargo test` the program is the test binary). So this module
//! puts a constructor in the executable's `.init_array`, which the dynamic loader runs
//! before `main` in every process of the program; it returns at once unless the environment
//! says the process was started by multiproc, and then never returns: the process becomes
//! its task (or the fork server) and ends through `_exit`.
//!
//! In the program's first process the constructor also applies `MULTIPROC_START_METHOD`, so
//! that a whole program, or a whole test suite, can be run under another start method
//! without a change. [`init`](crate::init) does both again from `main`, for a program in
//! which the constructor did not run.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::task::TASK_ERROR_EXIT_CODE;
use super::{forkserver, spawn, task};

/// The constructor, as glibc calls `.init_array` entries: with `argc`, `argv` and `envp`.
type Constructor =
    extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char);

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: Constructor = constructor;

extern "C" fn constructor(
    _argc: libc::c_int,
    _argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    // Nothing may unwind out of a constructor; a task's own panics are caught inside it.
    let _ = std::panic::catch_unwind(|| {
        crate::code_address::find_before_threads();
        take_over_if_child();
        crate::method_choice::apply_environment();
    });
}

/// The first line of `main` in a program that uses the Spawn or ForkServer start method.
///
/// A process started by Spawn (or the fork server itself) is a new run of the program; it
/// must run its task, not `main`. multiproc takes such a process over before `main` runs,
/// from an ELF constructor, so that this also holds where `main` is not yours (the test
/// harness under `cargo test`: a spawned child never runs the harness). `init()` is the
/// documented, belt-and-braces entry: it takes the process over if the constructor did not,
/// and it applies the `MULTIPROC_START_METHOD` environment variable when set (an unknown
/// value is reported on stderr and ignored). In the main process it returns at once.
///
/// ```
/// fn main() {
///     proc_core::init();
///     // … the program
/// }
/// # main();
/// ```
pub fn init() {
    take_over_if_child();
    crate::method_choice::apply_environment();
}

/// Becomes the task (or the fork server) this process was started for, if it was started
/// by multiproc's Spawn or ForkServer method; returns at once otherwise.
pub(crate) fn take_over_if_child() {
    if let Some(socket) = take_descriptor(spawn::TASK_FD_ENV) {
        take_the_programs_name();
        task::run(socket)
    }
    if let Some(control) = take_descriptor(forkserver::SERVER_FD_ENV) {
        take_the_programs_name();
        forkserver::serve(control)
    }
}

/// The kernel names a process after the file it runs, which for a spawned process (and the
/// fork server, and so the children it forks) is `/proc/self/exe`: `ps`, `top`, `pgrep` and
/// `killall` would see "exe". A forked child keeps its parent's name; so do these, from the
/// `argv[0]` the parent gave them (its own), cut to the kernel's 15 bytes as `exec` does.
fn take_the_programs_name() {
    let Ok(cmdline) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if base.is_empty() {
        return;
    }
    // TASK_COMM_LEN: at most 15 bytes and a NUL.
    let mut name = [0u8; 16];
    let len = base.len().min(15);
    name[..len].copy_from_slice(&base[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes at the pointer,
    // which `name` is; it renames this thread, the process's only one.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// The descriptor the environment variable `name` names, removed from the environment so
/// that programs this process runs do not inherit it. A value that names no open descriptor
/// ends the process: it was not started by multiproc as it claims.
fn take_descriptor(name: &str) -> Option<OwnedFd> {
    let value = std::env::var_os(name)?;
    // SAFETY: this runs from the constructor, before `main`, or from `init()`, documented
    // as the first line of `main`: the process has one thread, so nothing reads the
    // environment at the same time.
    unsafe { std::env::remove_var(name) };
    let fd = value
        .to_str()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2)
        // SAFETY: F_GETFD only reads the descriptor's flags; an fd that is not open fails.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1);
    match fd {
        // SAFETY: the parent left this descriptor open in this new process for this purpose
        // alone; nothing else here refers to it.
        Some(fd) => Some(unsafe { OwnedFd::from_raw_fd(fd) }),
        None => {
            eprintln!(
                "multiproc: {name}={value:?} does not name an open file descriptor: this \
                 process was not started by multiproc"
            );
            // SAFETY: ends the process at once; it never ran anything of its own.
            unsafe { libc::_exit(TASK_ERROR_EXIT_CODE) }
        }
    }
}
