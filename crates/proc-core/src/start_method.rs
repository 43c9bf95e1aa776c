//! [`StartMethod`]: how a child process comes to be, as Python's start methods.

use std::fmt;

use serde::{Deserialize, Serialize};

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

    pub(crate) fn from_index(index: u8) -> StartMethod {
        match index {
            1 => StartMethod::Spawn,
            2 => StartMethod::ForkServer,
            _ => StartMethod::Fork,
        }
    }

    pub(crate) fn index(self) -> u8 {
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
