//! # proc-ipc: messages between processes
//!
//! The message layer of [multiproc](https://docs.rs/multiproc): Python's
//! `multiprocessing.Pipe` for Rust.
//!
//! - [`pipe`] gives a duplex pair of [`Connection`]s, [`pipe_oneway`] a `(reader, writer)`
//!   pair. Either end goes to a child process with it: captured by a
//!   [`Process::new`](proc_core::Process::new) closure, passed as an argument of
//!   [`Process::target`](proc_core::Process::target) under any start method, or sent
//!   through another connection to a process that is already running.
//! - Handles travel inside messages: a value sent with [`Connection::send`] that holds a
//!   `Lock`, a [`Queue`], a `Connection` or any other multiproc handle carries their file
//!   descriptors with it, and the receiver's copies are the same objects.
//! - [`Connection::send`] / [`Connection::recv`] move any serde value; `send_bytes` /
//!   `recv_bytes` move raw bytes; [`Connection::poll`] waits for a message with a timeout.
//! - [`Queue`] and [`SimpleQueue`]: queues in shared memory, many producers and consumers.
//! - Connections and queues are [`Waitable`](proc_core::Waitable): [`proc_core::wait`]
//!   waits for the first of several (and for processes) to be ready.
//! - [`Listener`] / [`Client`] connect processes that did not start each other, Python
//!   ones included: by a Unix path, an abstract name or a TCP address, authenticated by a
//!   shared key with Python's handshake.
//! - Messages of any size up to a limit per end (default 64 MiB, [`DEFAULT_MESSAGE_LIMIT`]).
//!   What arrives is untrusted: a message over the limit is skipped without being stored,
//!   bytes that do not decode are an error for that message only, and a peer that closed or
//!   died gives an end-of-file error ([`Error::is_eof`]), never a hang or a panic.
//!
//! ```
//! use proc_core::Process;
//! use proc_ipc::pipe;
//!
//! let (parent_end, child_end) = pipe()?;
//! let mut child = Process::new(move || {
//!     // None from the parent means: no more words.
//!     while let Ok(Some(word)) = child_end.recv::<Option<String>>() {
//!         child_end.send(&word.to_uppercase()).unwrap();
//!     }
//! });
//! child.start()?;
//! for word in ["ping", "pong"] {
//!     parent_end.send(&Some(word))?;
//!     println!("{}", parent_end.recv::<String>()?);
//! }
//! parent_end.send(&None::<String>)?;
//! assert_eq!(child.join()?, 0);
//! // The child has ended and the parent's copy of its end went with `start`: end of file.
//! assert!(parent_end.recv::<String>().unwrap_err().is_eof());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Ends inherited through fork
//! A forked child gets a copy of every file descriptor of its parent, including the ends
//! of connections that its closure did not capture. An end of file is seen only once every
//! copy of the other end is closed, so a child never sees end of file from an end its parent
//! still held when it forked: end a conversation with a message (as above), not by closing.
//! The other way round works: `start` closes the parent's copy of what the closure captured,
//! so the parent sees end of file when the child has ended.
//!
//! ## Modules, top to bottom
//! Each uses only those below it; the crate root re-exports what users call.
//! - `internal` (hidden): what the fuzz targets reach inside for.
//! - `queue`: [`Queue`], [`QueueBuilder`]: a ring of frames in shared memory, its put and
//!   get paths, and how a queue travels (`queue/mod.rs` maps its files).
//! - `listener`: [`Listener`], [`Client`]: connections by [`Address`] that speak Python's
//!   `multiprocessing.connection` protocol, with its handshake (`auth`); `pickle` (feature
//!   `python`): `Connection::send_pickle` / `recv_pickle`.
//! - `simple_queue`: [`SimpleQueue`], Python's plain queue, a [`Queue`] without an item limit.
//! - `queue/readiness` and `connection_wait`: how [`proc_core::wait`] waits for a queue (a
//!   thread per queue watches its futex) and for a connection.
//! - `connection`: [`Connection`], [`pipe`], [`pipe_oneway`]: a socket pair, its framing
//!   (`framing`: native or Python's), what it has received (`inbox`), and the descriptors
//!   that travel with a message; `closing`: how `close(&self)` releases a socket.
//! - `chunk`: items streamed through a ring in chunks: a consumer's reassembly of them.
//! - `side_channel`: items handed over as sealed memory files through a datagram socket pair.
//! - `frame`: the frames of a ring in shared bytes, and the decoder that checks them.
//! - `error`: [`Error`], [`PutError`], [`GetError`].
#![cfg_attr(docsrs, feature(doc_cfg))]

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod address;
mod auth;
mod chunk;
mod closing;
mod connection;
mod connection_wait;
mod error;
mod frame;
mod framing;
mod inbox;
mod listener;
#[cfg(feature = "python")]
mod pickle;
mod queue;
mod side_channel;
mod simple_queue;

pub use address::Address;
pub use auth::DEFAULT_HANDSHAKE_TIMEOUT;
pub use connection::{Connection, DEFAULT_MESSAGE_LIMIT, pipe, pipe_oneway};
pub use error::{Error, GetError, PutError, Result};
pub use listener::{Client, Listener};
pub use queue::{DEFAULT_ITEM_LIMIT, DEFAULT_RING_BYTES, Iter, LargeItems, Queue, QueueBuilder};
pub use simple_queue::SimpleQueue;

/// What the fuzz targets under `fuzz/` and this crate's tests reach inside it for; not
/// part of the API.
#[doc(hidden)]
pub mod internal {
    /// Entry points for the fuzz targets.
    pub mod fuzzing {
        pub use crate::chunk::decode_all as decode_ring;
    }
}
