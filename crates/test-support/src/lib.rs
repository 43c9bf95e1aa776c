//! # multiproc-test-support: looking at a process from outside, for tests
//!
//! The tests of every multiproc crate check the same things from outside the code under
//! test: how many descriptors a process has open, which children it has and in what state,
//! how many mappings of multiproc's memory files it holds, and what happens at its limit of
//! open descriptors. Those helpers live here, once, as a dev-dependency of each crate.
//!
//! It depends on no multiproc crate (a crate under test that reached this one through a
//! copy of itself would see two of each of its types), only on `nix` and `libc`.
//!
//! ```
//! use multiproc_test_support::{fds, procs};
//!
//! let before = fds::open_fds();
//! let (read, write) = std::io::pipe()?;
//! assert_eq!(fds::open_fds(), before + 2);
//! drop((read, write));
//! assert_eq!(fds::open_fds(), before);
//! assert!(procs::stat_of(std::process::id()).is_some());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Modules, none of which uses another: [`fds`] (descriptors: counting them, running a
//! test alone while it counts, a process at its limit), [`maps`] (mappings of memory
//! files), [`procs`] (children, fork servers, zombies), [`rng`] (a seeded generator).

pub mod fds;
pub mod maps;
pub mod procs;
pub mod rng;
