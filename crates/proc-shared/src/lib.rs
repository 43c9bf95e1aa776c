//! # proc-shared: named shared memory, interoperable with Python
//!
//! The named-shared-memory layer of [multiproc](https://docs.rs/multiproc): Python's
//! `multiprocessing.shared_memory` for Rust.
//!
//! - [`SharedMemory`]: a block of memory by name, created with
//!   [`create`](SharedMemory::create) (a random `psm_…` name, as Python's) or
//!   [`create_named`](SharedMemory::create_named), and opened by name with
//!   [`open`](SharedMemory::open) in any process, a Python one included. Reads and writes
//!   are bounds-checked: plain-data values ([`Pod`]) at any offset, or byte slices.
//! - [`ShareableList`]: [`Item`]s (int, float, bool, str, bytes, None) in a block, in
//!   Python's exact layout: Python's `ShareableList(name=...)` opens a list made here, and
//!   [`ShareableList::open`] opens one made by Python.
//! - [`SharedMemoryManager`]: blocks and lists that are unlinked together when the manager
//!   shuts down, as Python's `SharedMemoryManager`.
//! - A block travels to a child process: captured by a
//!   [`Process::new`](proc_core::Process::new) closure, as an argument of
//!   [`Process::target`](proc_core::Process::target) under every start method, or through
//!   a multiproc `Queue` or `Connection`. Or the child opens it by name.
//!
//! ```
//! use proc_core::Process;
//! use proc_shared::{Item, ShareableList, SharedMemory};
//!
//! let shm = SharedMemory::create(1024)?;
//! let list = ShareableList::create(&[Item::Int(0), Item::Str("waiting".into())])?;
//! let (shm_name, list_name) = (shm.name().to_string(), list.name().to_string());
//!
//! // A child opens both by name and writes into them.
//! let mut child = Process::new(move || {
//!     let shm = SharedMemory::open(&shm_name).unwrap();
//!     shm.write_bytes(0, b"from the child").unwrap();
//!     let list = ShareableList::open(&list_name).unwrap();
//!     list.set(0, Item::Int(42)).unwrap();
//!     list.set(1, Item::Str("done".into())).unwrap();
//! });
//! child.start()?;
//! assert_eq!(child.join()?, 0);
//!
//! let mut text = [0u8; 14];
//! shm.read_bytes(0, &mut text)?;
//! assert_eq!(&text, b"from the child");
//! assert_eq!(list.to_vec()?, [Item::Int(42), Item::Str("done".into())]);
//!
//! // Blocks outlive their processes until unlinked, as in Python.
//! shm.unlink()?;
//! list.shm().unlink()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The resource tracker
//! As in Python, a block lives until someone unlinks it, and a program that forgets to (or
//! is killed first) would leave it in `/dev/shm` until the machine restarts. So the first
//! block a process tree creates starts a small tracker process, which every creation
//! registers with and every [`unlink`](SharedMemory::unlink) unregisters from. When the
//! tree has ended (every process that can reach the tracker is gone, normally or by
//! SIGKILL), the tracker unlinks the blocks still registered and writes a warning naming
//! each to stderr:
//!
//! ```text
//! proc_shared resource tracker: leaked shared_memory block 'psm_1a2b3c4d' unlinked: ...
//! ```
//!
//! Forked children share their parent's tracker; a spawned or served child shares the
//! tracker of the first block it receives (the tracker travels with it), and otherwise
//! starts its own when it creates a block. A block that is unlinked normally is never
//! warned about. Only blocks *created* here are tracked: opening a block (Python's too)
//! registers nothing.
//!
//! Python's tracker differs on one point: Python 3.11 and 3.12 (and 3.13+ unless
//! `track=False`) also register the blocks a Python process merely *opens*, and unlink them
//! when that process ends. A Python script that opens a block made here should unregister
//! it (`resource_tracker.unregister(shm._name, "shared_memory")`), or pass `track=False`
//! on 3.13 and later; see `examples/shared_memory_python.rs`.
//!
//! The tracker is a copy of the first creating process made with `fork` (twice, so that
//! nobody has to reap it), which does only async-signal-safe work, so it starts correctly
//! from a process that runs threads; the fork costs a copy of the creator's page tables once
//! per process tree.
//!
//! ## Modules
//! - `manager`: [`SharedMemoryManager`].
//! - `shared_memory`: [`SharedMemory`] and how it travels.
//! - `shareable_list`: [`ShareableList`], [`Item`], and Python's layout (`layout.rs`).
//! - `tracker`: the resource tracker: the creators' side, and the tracker process.
//! - `name`: names as Python spells them. `error`: [`Error`].

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod error;
mod manager;
mod name;
mod shareable_list;
mod shared_memory;
mod tracker;

pub use bytemuck::{self, Pod, Zeroable};
pub use error::{Error, Result};
pub use manager::SharedMemoryManager;
pub use shareable_list::{Item, ShareableList};
pub use shared_memory::SharedMemory;
