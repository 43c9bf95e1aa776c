//! # proc-sync: interprocess locks and shared values for multiproc
//!
//! The synchronisation layer of [multiproc](https://docs.rs/multiproc): Python's
//! `multiprocessing` locks, semaphores, events, conditions, barriers and shared values,
//! over shared memory, for processes started with [`proc_core`].
//!
//! | type | Python | what it is for |
//! |---|---|---|
//! | [`Lock`] / [`RLock`] | `Lock` / `RLock` | one process (thread) at a time in a critical section |
//! | [`Semaphore`] / [`BoundedSemaphore`] | same names | at most N at a time; permits any process may hand back |
//! | [`Event`] | `Event` | "go": a flag every waiter wakes on |
//! | [`Condition`] | `Condition` | wait, under a lock, until some state changes |
//! | [`Barrier`] | `Barrier` | N parties meet before any goes on |
//! | [`Value<T>`] / [`Array<T>`] | `Value` / `Array` | plain data shared between processes, with a lock (its own or a shared one) |
//! | [`RawValue<T>`] / [`RawArray<T>`] | `RawValue` / `RawArray` | plain data shared between processes, no lock |
//!
//! Every type is a cheap `Clone` handle (`Send + Sync`): clone it, move the clone into a
//! child's closure (or pass it as an argument, see below), and both processes use the same
//! object.
//!
//! ```
//! use proc_core::Process;
//! use proc_sync::{Event, Lock, Value};
//!
//! let lock = Lock::new()?;
//! let balance = Value::new(100i64)?;
//! let done = Event::new()?;
//!
//! let mut child = Process::new({
//!     let (lock, balance, done) = (lock.clone(), balance.clone(), done.clone());
//!     move || {
//!         let _guard = lock.acquire(); // a critical section across processes
//!         balance.set(balance.get() - 30);
//!         done.set();
//!     }
//! });
//! child.start().unwrap();
//! done.wait();
//! let _guard = lock.acquire();
//! assert_eq!(balance.get(), 70);
//! # drop(_guard);
//! # child.join().unwrap();
//! # Ok::<(), proc_sync::Error>(())
//! ```
//!
//! ## Handles travel
//! Every handle is also `Serialize + Deserialize` in the one way that makes sense between
//! processes: as the descriptor of its memory file, which only a multiproc channel can
//! carry. Pass it as an argument of [`Process::target`](proc_core::Process::target), under
//! any start method (the child maps the same memory), or send it through a multiproc
//! `Queue` or `Connection` to a process that is already running. Serialized anywhere else
//! (JSON, a file) it refuses with an error that says so.
//!
//! A handle travels with its kind, and its receiver checks everything the sender wrote
//! before using it: a `Lock` received as an `RLock`, a `Semaphore` as a `BoundedSemaphore`,
//! a `Value<u64>` as a `Value<u32>` is a decode error, and so is a descriptor that is not a
//! sealed memory file of exactly the right size, or whose contents are not what they claim
//! (each object's memory says what it is; its lock, limit, parties, length are checked
//! against it). Once shared, an object's memory is shared: a process holding it can write
//! into it, as a forked child can.
//!
//! ```
//! use proc_core::{Process, StartMethod};
//! use proc_sync::Value;
//!
//! fn deposit(balance: Value<i64>, amount: i64) {
//!     *balance.lock() += amount;
//! }
//!
//! let balance = Value::new(100i64)?;
//! let mut child = Process::target(deposit, (balance.clone(), 30))
//!     .with_start_method(StartMethod::Spawn); // a fresh run of this program
//! child.start().unwrap();
//! child.join().unwrap();
//! assert_eq!(balance.get(), 130);
//! # Ok::<(), proc_sync::Error>(())
//! ```
//!
//! ## A holder that dies does not deadlock the others
//! The locks ([`Lock`], [`RLock`], and the locks inside [`Value`], [`Array`],
//! [`Condition`] and [`Barrier`]) are robust pthread mutexes: when a process dies holding
//! one, even by SIGKILL, the kernel releases it, and the next acquirer's guard says so with
//! `previous_owner_died()`. Whatever the dead holder was changing may be half done; the
//! new holder decides how to repair it (a [`Barrier`] breaks itself).
//!
//! ```
//! use proc_sync::Value;
//!
//! let account = Value::new([0u32; 2])?; // two halves that must stay equal
//! let mut child = proc_core::Process::new({
//!     let account = account.clone();
//!     move || {
//!         let mut guard = account.lock();
//!         guard[0] = 1; // ... and dies before writing guard[1]
//!         std::mem::forget(guard);
//!         proc_core::exit(1);
//!     }
//! });
//! child.start().unwrap();
//! child.join().unwrap();
//! let mut guard = account.lock();
//! assert!(guard.previous_owner_died());
//! guard[1] = guard[0]; // repair
//! # Ok::<(), proc_sync::Error>(())
//! ```
//!
//! ## Blocking forms, try forms, timeouts
//! Each lock has a blocking form (`acquire`, `lock`), a try form that never waits
//! (`try_acquire`, `try_lock`) and a timed form (`acquire_timeout`, `lock_timeout`);
//! timeouts are absolute deadlines inside, so signals and spurious wake-ups never stretch
//! them. Waits sleep in the kernel (futex); uncontended locking is an atomic operation
//! with no system call. The blocking forms cannot fail in correct use; the `*_checked`
//! forms report misuse such as re-locking a non-re-entrant lock in the thread holding it.
//!
//! ## Memory
//! Each object lives in its own anonymous memory file (`memfd_create`) mapped into every
//! process that holds a handle: nothing appears in `/dev/shm`, nothing can be opened by
//! name, and the memory is freed when the last process holding it ends, however it ends.
//! Shared values are limited to [`bytemuck::Pod`] types: plain data that means the same in
//! every address space.
//!
//! ## Modules
//! Top to bottom, each using only those below it:
//! - `internal`: the building blocks the other layers use (hidden from these docs);
//! - `condition`: [`Condition`], over its own robust lock or a shared [`Lock`] / [`RLock`];
//! - `waiters`: a condition's table of waiter slots, and how a notification finds a waiter;
//! - `condition_lock`: the lock a condition is under, released and taken back by a wait;
//! - `value`: [`Value<T>`] and [`Array<T>`], cells and a [`Lock`];
//! - `barrier`: [`Barrier`];
//! - `lock`: [`Lock`], [`RLock`] and their [`LockGuard`];
//! - `raw_value`: [`RawValue<T>`] and [`RawArray<T>`], cells alone;
//! - `semaphore`: [`Semaphore`] and [`BoundedSemaphore`];
//! - `event`: [`Event`];
//! - `mutex_region`: `MutexRegion`, a header that starts with a robust mutex and the data
//!   it guards, and its [`ValueGuard`];
//! - `shared_atomics`: `SharedAtomics`, a block of atomics with no lock;
//! - `shared_bytes`: `SharedBytes`, plain bytes with no lock;
//! - `cells`: `Cells`, the stamped shared elements of every value and array;
//! - `data_region`: `DataRegion`, a header and plain-data values in one region;
//! - `handle_wire`: how a handle is written for another process and read back (`travels!`);
//! - `stamp`: the words in each object's memory that say which primitive made it;
//! - `region`: `Region`, a sealed memory file mapped shared, checked when received;
//! - `raw_mutex`: `RawMutex`, a robust process-shared pthread mutex;
//! - `doorbell`: `Doorbell`, a futex word to sleep on until something changes;
//! - `futex`: futex waits and wakes on a 32-bit word in shared memory;
//! - `deadline`: `Deadline`, an absolute point on `CLOCK_MONOTONIC`, and `How` a lock waits;
//! - `error`: [`Error`], the one error of this crate.

// multiproc stands on Linux's pidfds, memory-file seals and robust futex lists (see the
// README's Platform section): on any other system, say so once instead of failing on every
// missing name.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc supports Linux only (kernel 5.4 or later): it is built on pidfds, memfd seals \
     and robust futex lists, which other systems lack; see the README's Platform section"
);

mod barrier;
mod cells;
mod condition;
mod condition_lock;
mod data_region;
mod deadline;
mod doorbell;
mod error;
mod event;
mod futex;
mod handle_wire;
mod lock;
mod mutex_region;
mod raw_mutex;
mod raw_value;
mod region;
mod semaphore;
mod shared_atomics;
mod shared_bytes;
mod stamp;
mod value;
mod waiters;

#[doc(hidden)]
pub mod internal;

pub use barrier::{Barrier, BarrierBuilder};
pub use bytemuck::{self, Pod, Zeroable};
pub use condition::{Condition, ConditionGuard, WaitTimeoutResult};
pub use error::{Error, Result};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock};
pub use mutex_region::ValueGuard;
pub use raw_value::{RawArray, RawValue};
pub use semaphore::{BoundedSemaphore, Semaphore};
pub use value::{Array, Value};
