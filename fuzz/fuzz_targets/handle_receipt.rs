//! Receiving handles that another process forged: arbitrary wire bytes with descriptors
//! of every sort (the real files and sockets of other handles, pipes, sockets, memory files
//! sealed or not, of any size, full of arbitrary bytes), decoded as each kind of handle,
//! as a `Connection` or a `Queue` receiver does. Decoding may refuse, never panic, and a
//! handle it accepts is safe to use (only calls that cannot wait are made here).
//!
//! ```text
//! cargo xtask fuzz --only handle_receipt --seconds 300
//! ```

#![no_main]

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use proc_core::internal::handle_wire;
use proc_ipc::{Connection, Queue};
use proc_patterns::JoinableQueue;
use proc_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Value,
};

/// The descriptors of real handles of every kind, made once: a forger may send any of them.
fn real_fds() -> &'static [OwnedFd] {
    static FDS: OnceLock<Vec<OwnedFd>> = OnceLock::new();
    FDS.get_or_init(|| {
        let (a, _b) = proc_ipc::pipe().unwrap();
        let queue: Queue<u8> = Queue::builder().ring_bytes(256).build().unwrap();
        let joinable: JoinableQueue<u8> = JoinableQueue::new(0).unwrap();
        let handles = (
            (Lock::new().unwrap(), RLock::new().unwrap()),
            (
                Semaphore::new(2).unwrap(),
                BoundedSemaphore::new(2).unwrap(),
            ),
            (
                Event::new().unwrap(),
                Condition::new().unwrap(),
                Barrier::new(2).unwrap(),
            ),
            (
                Value::new(7u64).unwrap(),
                Array::<u32>::from_slice(&[1, 2, 3]).unwrap(),
            ),
            (queue, joinable, a),
        );
        handle_wire::encode(&handles).unwrap().fds
    })
}

/// A descriptor made to `recipe` (and, for memory files, filled from `bytes`).
fn forged_fd(recipe: u8, bytes: &[u8]) -> Option<OwnedFd> {
    let real = real_fds();
    let fd = match recipe % 8 {
        0..=3 => real[usize::from(recipe / 8) % real.len()]
            .try_clone()
            .ok()?,
        4 => OwnedFd::from(std::io::pipe().ok()?.0),
        5 => {
            socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::empty(),
            )
            .ok()?
            .0
        }
        6 => {
            socketpair(
                AddressFamily::Unix,
                SockType::Datagram,
                None,
                SockFlag::empty(),
            )
            .ok()?
            .0
        }
        _ => {
            // A memory file of some size, holding the input's bytes, sealed or not.
            let fd = memfd_create(c"forged", MFdFlags::MFD_ALLOW_SEALING).ok()?;
            let mut file = std::fs::File::from(fd);
            let size = 64 * u64::from(recipe / 8);
            file.set_len(size).ok()?;
            file.write_all(&bytes[..bytes.len().min(size as usize)])
                .ok()?;
            if recipe & 0x80 != 0 {
                let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
                fcntl(file.as_fd(), FcntlArg::F_ADD_SEALS(seals)).ok()?;
            }
            OwnedFd::from(file)
        }
    };
    Some(fd)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (kind, recipes, wire) = (data[0], &data[1..6], &data[6..]);
    let count = usize::from(recipes[0] % 5);
    let fds: Vec<OwnedFd> = recipes[1..=count.min(4)]
        .iter()
        .filter_map(|&recipe| forged_fd(recipe, wire))
        .collect();
    let limit = 1 << 12;
    match kind % 14 {
        0 => use_lock(handle_wire::decode::<Lock>(wire, limit, fds).ok()),
        1 => use_rlock(handle_wire::decode::<RLock>(wire, limit, fds).ok()),
        2 => {
            if let Ok(s) = handle_wire::decode::<Semaphore>(wire, limit, fds) {
                let _ = (s.value(), s.try_acquire());
            }
        }
        3 => {
            if let Ok(s) = handle_wire::decode::<BoundedSemaphore>(wire, limit, fds) {
                let _ = (s.value(), s.try_acquire());
            }
        }
        4 => {
            if let Ok(e) = handle_wire::decode::<Event>(wire, limit, fds) {
                let _ = e.is_set();
            }
        }
        5 => {
            if let Ok(c) = handle_wire::decode::<Condition>(wire, limit, fds) {
                drop(c.try_lock());
            }
        }
        6 => {
            if let Ok(b) = handle_wire::decode::<Barrier>(wire, limit, fds) {
                let _ = (b.parties(), b.n_waiting(), b.is_broken());
            }
        }
        7 => {
            if let Ok(v) = handle_wire::decode::<Value<u64>>(wire, limit, fds) {
                let _ = v.try_lock().map(|g| *g);
            }
        }
        8 => {
            if let Ok(a) = handle_wire::decode::<Array<u32>>(wire, limit, fds) {
                let _ = a.try_lock().map(|g| g.iter().sum::<u32>());
            }
        }
        9 => {
            if let Ok(q) = handle_wire::decode::<Queue<u8>>(wire, limit, fds) {
                let _ = (q.len(), q.is_empty(), q.maxsize(), q.is_closed());
            }
        }
        10 => {
            if let Ok(q) = handle_wire::decode::<JoinableQueue<u8>>(wire, limit, fds) {
                let _ = q.len();
            }
        }
        11 => {
            if let Ok(c) = handle_wire::decode::<Connection>(wire, limit, fds) {
                let _ = c.poll(Some(std::time::Duration::ZERO));
            }
        }
        12 => drop(handle_wire::decode::<(Lock, Event)>(wire, limit, fds)),
        _ => drop(handle_wire::decode::<Vec<Value<u8>>>(wire, limit, fds)),
    }
});

fn use_lock(lock: Option<Lock>) {
    if let Some(lock) = lock {
        drop(lock.try_acquire());
    }
}

fn use_rlock(lock: Option<RLock>) {
    if let Some(lock) = lock {
        drop(lock.try_acquire());
    }
}
