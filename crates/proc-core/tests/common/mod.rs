//! What the start-method tests share: a report pipe whose write end travels to a child as an
//! argument of its target (inherited by a forked child, attached to the task message of a
//! spawned or served one), so that a child started by any method can tell the test what it
//! saw; and a look at this process's children in `/proc`.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use proc_core::codec;
use proc_core::internal::handle_wire::Descriptor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long a test waits for a child's report before it fails instead of hanging. Not a
/// timing assertion: a report comes in milliseconds, or never.
const REPORT_PATIENCE: Duration = Duration::from_secs(120);

/// One test per start method from a specification that takes the method:
/// `every_start_method![spec, …]` makes `fork::spec`, `spawn::spec` and `forkserver::spec`.
#[allow(unused_macros, reason = "each test binary uses a different subset")]
macro_rules! every_start_method {
    ($($spec:ident),* $(,)?) => {
        mod fork {
            $( #[test] fn $spec() { super::$spec(proc_core::StartMethod::Fork) } )*
        }
        mod spawn {
            $( #[test] fn $spec() { super::$spec(proc_core::StartMethod::Spawn) } )*
        }
        mod forkserver {
            $( #[test] fn $spec() { super::$spec(proc_core::StartMethod::ForkServer) } )*
        }
    };
}

/// The write end of a report pipe: give it to a child as an argument of its target.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Reporter(Descriptor);

impl Reporter {
    /// Sends `value` as one frame (a `u32` length, then the codec's bytes) in one write,
    /// which a pipe keeps whole for frames up to `PIPE_BUF` bytes. Panics on failure: in a
    /// child, that is exit code 1, which the test sees.
    pub(crate) fn send<T: Serialize>(&self, value: &T) {
        let bytes = codec::encode(value).expect("encode a report");
        let mut frame = (bytes.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        let mut sent = 0;
        while sent < frame.len() {
            match nix::unistd::write(&self.0, &frame[sent..]) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("writing a report: {e}"),
            }
        }
    }
}

/// The read end of a report pipe.
#[derive(Debug)]
pub(crate) struct Reports(OwnedFd);

impl Reports {
    /// The next report; panics when the pipe ends first (every writer gone without a word)
    /// or when nothing came for two minutes.
    pub(crate) fn recv<T: DeserializeOwned>(&self) -> T {
        let mut len = [0u8; 4];
        self.read_exact(&mut len);
        let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
        self.read_exact(&mut bytes);
        codec::decode(&bytes, 1 << 20).expect("decode a report")
    }

    /// Whether a report (or the end of the pipe) is waiting right now.
    pub(crate) fn ready(&self) -> bool {
        proc_core::internal::wait_readable(self.0.as_fd(), Some(Instant::now())).expect("poll")
    }

    fn read_exact(&self, buf: &mut [u8]) {
        let deadline = Instant::now() + REPORT_PATIENCE;
        let mut filled = 0;
        while filled < buf.len() {
            assert!(
                proc_core::internal::wait_readable(self.0.as_fd(), Some(deadline)).expect("poll"),
                "no report from the child within {REPORT_PATIENCE:?}"
            );
            match nix::unistd::read(&self.0, &mut buf[filled..]) {
                Ok(0) => panic!("the report pipe ended before a whole report came"),
                Ok(n) => filled += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("reading a report: {e}"),
            }
        }
    }
}

/// A new report pipe: keep the [`Reports`], give the [`Reporter`] to a child.
pub(crate) fn report_pipe() -> (Reports, Reporter) {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    (Reports(read), Reporter(write.into()))
}

#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use multiproc_test_support::fds::open_fds;
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use multiproc_test_support::procs::{
    ProcStat, children_of, is_fork_server, my_fork_servers, stat_of, zombies,
};

/// Encodes as a byte; when decoded, refuses with an error (`PANICS` false) or panics.
#[derive(Debug)]
pub(crate) struct BadToDecode<const PANICS: bool>;

/// Encodes as a byte; refuses to decode.
pub(crate) type RefusesToDecode = BadToDecode<false>;

/// Encodes as a byte; panics when decoded.
pub(crate) type PanicsWhenDecoded = BadToDecode<true>;

impl<const PANICS: bool> Serialize for BadToDecode<PANICS> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(0)
    }
}

impl<'de, const PANICS: bool> Deserialize<'de> for BadToDecode<PANICS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer)?;
        if PANICS {
            panic!("a Deserialize impl that panics");
        }
        Err(serde::de::Error::custom("refused on purpose"))
    }
}

/// A target that takes one argument of any type and does nothing with it.
pub(crate) fn takes<T>(_: T) {}
