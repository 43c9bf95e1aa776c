//! [`StartMethod`]: how a child process comes to be, as Python's start methods;
//! [`set_start_method`], [`get_start_method`] and [`init`].

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a child process is started. The same `Process` API works under all three; what
/// differs is what the child starts from.
///
/// | method | the child is | runs | cost |
/// |---|---|---|---|
/// | [`Fork`](StartMethod::Fork) | a copy of the parent (`fork(2)`) | a closure or a target | cheapest |
/// | [`Spawn`](StartMethod::Spawn) | a fresh run of the same executable | a target only | an `exec` |
/// | [`ForkServer`](StartMethod::ForkServer) | a fork of a small single-threaded server process | a target only | between the two |
///
/// Fork copies the whole parent, threads excepted: from a multi-threaded parent a lock that
/// another thread held stays locked in the child forever. Spawn and ForkServer are safe
/// there. Under them the child runs the function and arguments of
/// [`Process::target`](crate::Process::target), which travel as a code offset in the
/// executable and encoded arguments (handles such as locks and queues travel as their file
/// descriptors); a closure cannot travel, and `start()` says so.
///
/// ```
/// use proc_core::{Process, StartMethod};
///
/// fn greet(name: String) {
///     println!("hello, {name}");
/// }
///
/// for method in StartMethod::ALL {
///     let mut p = Process::target(greet, ("小王".to_string(),)).with_start_method(method);
///     p.start()?;
///     assert_eq!(p.join()?, 0);
/// }
/// # Ok::<(), proc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum StartMethod {
    /// `fork(2)`: the child is a copy of the parent. The default on Linux, as in Python up
    /// to 3.13.
    #[default]
    Fork,
    /// The child is a new run of the current executable (`/proc/self/exe`), which takes
    /// over before `main` and runs the target.
    Spawn,
    /// The children are forked by a single-threaded server process, itself spawned the
    /// first time it is needed.
    ForkServer,
}

impl StartMethod {
    /// Every start method, in the order Fork, Spawn, ForkServer.
    pub const ALL: [StartMethod; 3] = [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::ForkServer,
    ];

    /// Python's name for the method: `"fork"`, `"spawn"` or `"forkserver"`.
    ///
    /// ```
    /// assert_eq!(proc_core::StartMethod::ForkServer.name(), "forkserver");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    fn from_index(index: u8) -> StartMethod {
        match index {
            1 => StartMethod::Spawn,
            2 => StartMethod::ForkServer,
            _ => StartMethod::Fork,
        }
    }

    fn index(self) -> u8 {
        match self {
            StartMethod::Fork => 0,
            StartMethod::Spawn => 1,
            StartMethod::ForkServer => 2,
        }
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StartMethod {
    type Err = Error;

    /// Parses Python's names.
    ///
    /// ```
    /// use proc_core::StartMethod;
    /// assert_eq!("spawn".parse::<StartMethod>()?, StartMethod::Spawn);
    /// assert!("vfork".parse::<StartMethod>().is_err());
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        StartMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::UnknownStartMethod {
                given: s.to_string(),
            })
    }
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Makes `method` the default without checking it can work (in a child, which was started
/// by it or by a parent that checked).
pub(crate) fn set_default(method: StartMethod) {
    DEFAULT.store(method.index(), Ordering::Relaxed);
}

/// Sets the start method that processes use unless they were given one with
/// [`Process::with_start_method`](crate::Process::with_start_method). Processes already
/// started are not affected. An error when the method cannot work in this program: Spawn
/// and ForkServer need to find the program's own code (they name functions by their offset
/// in it).
///
/// ```
/// use proc_core::{get_start_method, set_start_method, StartMethod};
///
/// set_start_method(StartMethod::Spawn)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<()> {
    if method != StartMethod::Fork {
        crate::CodeAddress::of(crate::code::anchor())?;
    }
    set_default(method);
    Ok(())
}

/// The start method in force: [`StartMethod::Fork`] unless changed by [`set_start_method`]
/// or by the `MULTIPROC_START_METHOD` environment variable read by [`init`].
///
/// In a child started by multiproc it is the method that started the child, as under
/// Python's contexts: the child's own children start the same way, unless the child sets
/// another method.
///
/// ```
/// use proc_core::{Process, StartMethod, get_start_method};
///
/// /// Exits with the index of the method in force here.
/// fn exit_with_my_start_method() {
///     let index = StartMethod::ALL.iter().position(|&m| m == get_start_method());
///     proc_core::exit(index.map_or(-1, |i| i as i32));
/// }
///
/// let mut p = Process::target(exit_with_my_start_method, ()).with_start_method(StartMethod::Spawn);
/// p.start()?;
/// assert_eq!(p.join()?, 1, "the child was started by Spawn");
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn get_start_method() -> StartMethod {
    StartMethod::from_index(DEFAULT.load(Ordering::Relaxed))
}

/// The environment variable that [`init`] reads to choose the start method
/// (`fork`, `spawn` or `forkserver`), so that one build can be run under each.
pub const START_METHOD_ENV: &str = "MULTIPROC_START_METHOD";

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
    crate::start::takeover::take_over_if_child();
    apply_environment();
}

/// Applies `MULTIPROC_START_METHOD` when it is set; an unusable value is reported on stderr
/// and ignored.
pub(crate) fn apply_environment() {
    let Some(value) = std::env::var_os(START_METHOD_ENV) else {
        return;
    };
    let chosen = value
        .to_str()
        .ok_or_else(|| Error::UnknownStartMethod {
            given: value.to_string_lossy().into_owned(),
        })
        .and_then(str::parse)
        .and_then(set_start_method);
    if let Err(e) = chosen {
        eprintln!("multiproc: {START_METHOD_ENV} ignored: {e}");
    }
}
