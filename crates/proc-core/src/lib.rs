//! # proc-core: processes for multiproc
//!
//! The process layer of [multiproc](https://docs.rs/multiproc): Python's
//! `multiprocessing.Process` for Rust, with the lifecycle exactly right.
//!
//! - [`Process`]: start a child running a closure ([`Process::new`]) or a function with
//!   arguments ([`Process::target`]); name it, make it a daemon, join it (with or without a
//!   timeout), read its exit code, terminate, kill or interrupt it, poll its
//!   [`sentinel`](Process::sentinel), [`close`](Process::close) it.
//! - [`spawn`] (a closure) or [`spawn_target`] (a function and its arguments, under every
//!   start method) → [`JoinHandle<T>`]: `std::thread::spawn` across processes; `join` returns the
//!   child's value (any serde type) or a [`JoinError`] saying how it ended instead.
//! - [`current_process`], [`parent_process`] (with a [`sentinel`](ProcessInfo::sentinel) that
//!   tells a child when its parent has ended), [`active_children`], [`cpu_count`],
//!   [`process_cpu_count`], [`exit`].
//! - Start methods: [`set_start_method`], [`get_start_method`], [`get_all_start_methods`],
//!   [`get_context`] (a [`Context`] starts processes with its method, leaving the default
//!   alone), [`set_executable`] (the file Spawn and ForkServer run).
//! - [`wait`] for the first of several [`Waitable`]s to be ready: processes that end,
//!   descriptors, and the ipc layer's connections and queues.
//!
//! ```
//! use proc_core::{current_process, spawn, Process};
//!
//! // A child that computes a value and hands it back.
//! let h = spawn(|| format!("{} says hi", current_process().name()))?;
//! assert_eq!(h.join().unwrap(), "Process-1 says hi");
//!
//! // A child whose memory is its own: the parent's copy is untouched.
//! let mut n = 100;
//! let mut p = Process::new(move || {
//!     n = 0;
//!     assert_eq!(n, 0);
//! });
//! p.start()?;
//! assert_eq!(p.join()?, 0);
//! assert_eq!(n, 100);
//! # Ok::<(), proc_core::Error>(())
//! ```
//!
//! ## Guarantees
//! - Exit codes as Python: 0 when the body returns; 1 when it panics (the message goes to
//!   the child's stderr); `n` for [`exit(n)`](exit); `-signum` when a signal ended it.
//! - Output: stdio is flushed before a child starts (nothing prints twice or out of order)
//!   and when the child ends (nothing is lost, even without a trailing newline).
//! - No zombies, no leaked file descriptors: every child is reaped, by `join`,
//!   `is_alive`, `exitcode`, [`active_children`], the next `start`, or at exit; a child whose
//!   handle was dropped is reaped in the same ways.
//! - A child of [`spawn`] never waits for its parent: it leaves its value with the kernel
//!   (inline in a socket record, or in a sealed memory file) and ends, whatever the size of
//!   the value (up to [`RESULT_LIMIT`]); `join` takes it afterwards. What comes back is
//!   checked before it is used: a malformed record is a [`JoinError::Malformed`].
//! - Signals go through a pidfd, so a recycled pid is never hit.
//! - At normal exit, daemon children are terminated and the others joined. A daemon child
//!   dies with its parent even when the parent is SIGKILLed (see the `lifeline` module's
//!   notes in the source), and may not start children of its own.
//!
//! ## Start methods
//! How a child comes to be, as Python's start methods ([`StartMethod`]). The `Process` API,
//! the exit codes, the child's stdout and stderr (its parent's), [`current_process`] (whose
//! `ppid()` is the process that started it), daemons, and the no-zombie, no-leaked-fd
//! guarantees are the same under all three.
//!
//! - **Fork**, the default: the child is a copy of this process made by `fork(2)`. The
//!   cheapest (about 0.25 ms to start and join), and the only method that runs closures
//!   ([`Process::new`], [`spawn`]). Risky from a process that runs threads (see below).
//! - **Spawn**: the child is a new run of this executable, taken over before `main`, that
//!   runs a target ([`Process::target`]): the function is named by its place in the
//!   executable, the arguments travel encoded, and the file descriptors of handles among
//!   them (locks, queues, …) travel with them. Nothing of the parent's memory, threads or
//!   locks comes along, so it is safe from any thread; with no interpreter to boot it costs
//!   about 1.2 ms.
//! - **ForkServer**: a single-threaded server process, spawned when first needed, forks
//!   the children on request (each then runs its target as a spawned child does). As safe
//!   as Spawn and nearly as cheap as Fork: the choice for many children from a threaded
//!   program. The server is one more child process and one more descriptor for the life of
//!   the program.
//!
//! A child inherits the method that started it: [`get_start_method`] in it returns that
//! method, and its own children start the same way unless it sets another, as under
//! Python's contexts.
//!
//! Use Fork for closures and for programs that start their children before any thread;
//! Spawn or ForkServer in a program that runs threads (a server, a thread pool, a test
//! harness). A forked child starts from a copy of its parent's memory, a spawned or served
//! one from the program's initial state. Choose the method per process with
//! [`Process::with_start_method`], for the program with [`set_start_method`], or from
//! outside with `MULTIPROC_START_METHOD=spawn` (or `forkserver`), which is applied before
//! `main`: a whole program, or a whole test suite, runs under another method unchanged.
//!
//! Under Spawn and ForkServer the target must be a function item or a closure that
//! captures nothing ([`Error::TargetCannotTravel`] otherwise), a closure cannot run at all
//! ([`Error::ClosureNeedsFork`], at `start()`), and a child that cannot decode its
//! arguments ends with [`TASK_ERROR_EXIT_CODE`] and makes `join` an [`Error::TaskFailed`]
//! that says why.
//!
//! ### `init()`, and Spawn under `cargo test`
//! A spawned child is a new run of the program and must run its task, not `main`. multiproc
//! takes it over before `main` runs, from an ELF constructor, so this holds where `main` is
//! not yours: under `cargo test` (and `cargo nextest`) the program is the test binary, and
//! a spawned child never runs the test harness. There is nothing to do in tests, doctests
//! or benchmarks: start children under any method. In a program, [`init`] as the first line
//! of `main` is the documented entry that makes sure of the same. To run a test suite under
//! another method, set `MULTIPROC_START_METHOD`; tests about closures then pin
//! `.with_start_method(StartMethod::Fork)`.
//!
//! ```
//! use proc_core::{current_process, Error, Process, StartMethod};
//!
//! fn greet(name: String, parent: u32) {
//!     assert_eq!(current_process().ppid(), parent);
//!     println!("{name} runs in process {}", current_process().pid());
//! }
//!
//! // No set-up, in a test as in a program that begins with proc_core::init().
//! for method in StartMethod::ALL {
//!     let mut p = Process::target(greet, ("小王".to_string(), std::process::id()))
//!         .with_start_method(method);
//!     p.start()?;
//!     assert_eq!(p.join()?, 0);
//! }
//!
//! // A closure cannot travel to a new run of the program: start() says what to do instead.
//! let mut p = Process::new(|| {}).with_start_method(StartMethod::Spawn);
//! assert!(matches!(p.start(), Err(Error::ClosureNeedsFork { .. })));
//! # Ok::<(), proc_core::Error>(())
//! ```
//!
//! ## Threads and fork
//! Forking a process that runs several threads is risky: only the forking thread exists in
//! the child, so a lock another thread held at that moment stays locked there. multiproc
//! holds its own locks (and stdout's and stderr's) across the fork so that they are usable
//! in the child, and prints one warning per process when it forks with more than one thread
//! running. Start child processes before creating threads, or use Spawn or ForkServer.
//!
//! ## Modules
//! Top to bottom: each module uses only modules below it.
//!
//! - `internal`: plumbing for the other layers and the fuzz targets (hidden from these docs).
//! - `wait`: [`wait`] for the first of several [`Waitable`]s: processes, descriptors, and
//!   (from the ipc layer) connections and queues, which a thread per queue watches.
//! - `context`: [`Context`], [`get_context`]: a start method for some processes, not all.
//! - `join_handle`: [`spawn`] and [`JoinHandle`], a `process` and a `value_handover`.
//! - `exit`: [`exit`], which ends a child through `start`.
//! - `process`: [`Process`]: configure a child, start it through `start`, watch it, join it.
//! - `start/`: how a child comes to be: one module per start method (`mod.rs` maps them), [`init`].
//! - `current`: [`current_process`], [`parent_process`], [`active_children`].
//! - `executable`: [`set_executable`], the file that Spawn and ForkServer run.
//! - `global_state`: the one mutex over who this process is, its children, its lifeline.
//! - `child`: what a parent knows about one child: its pidfd, its end, its task's answer.
//! - `lifeline`: the pipe that kills a daemon child when its parent dies.
//! - `method_choice`: the start method in force ([`set_start_method`], [`get_start_method`]).
//! - `code_address`: a function named by its offset in the executable, for another run of it.
//! - `outcome`: what a child that returns a value sends back: its value or its panic.
//! - `value_handover`: how a child leaves its value with the kernel for `join` to take.
//! - `handle_wire`: handles that travel: a value encoded with the descriptors it holds.
//! - `error`: [`Error`], [`JoinError`], and how a panic is reported.
//! - `cpus` ([`cpu_count`], [`process_cpu_count`]), `start_method` ([`StartMethod`]),
//!   `process_info` ([`ProcessInfo`]), `target` ([`Target`]),
//!   `pidfd`, `wait_readable`, `random`, `fd_passing` (descriptors over Unix sockets), [`codec`]: leaves.

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod child;
mod code_address;
pub mod codec;
mod context;
mod cpus;
mod current;
mod error;
mod executable;
mod exit;
mod fd_passing;
mod global_state;
mod handle_wire;
#[doc(hidden)]
pub mod internal;
mod join_handle;
mod kernel;
mod lifeline;
mod memory_file;
mod method_choice;
mod outcome;
mod pidfd;
mod process;
mod process_info;
mod random;
mod start;
mod start_method;
mod target;
mod value_handover;
mod wait;
mod wait_readable;

pub use codec::CodecError;
pub use context::{Context, get_context};
pub use cpus::{cpu_count, process_cpu_count};
pub use current::{active_children, current_process, parent_process};
pub use error::{Error, JoinError, Result};
pub use executable::set_executable;
pub use exit::exit;
pub use join_handle::{JoinHandle, RESULT_LIMIT, spawn, spawn_target};
pub use kernel::KernelFeature;
pub use method_choice::{
    START_METHOD_ENV, get_all_start_methods, get_start_method, set_start_method,
};
pub use process::Process;
pub use process_info::ProcessInfo;
pub use start::takeover::init;
pub use start::task::TASK_ERROR_EXIT_CODE;
pub use start_method::StartMethod;
pub use target::Target;
pub use wait::{WaitSource, Waitable, Watch, wait};
