//! multiproc's queue and pipe against Python's `multiprocessing.Queue` and `Pipe`, doing
//! the same work item for item, in one run (`ipc.py` beside this file is run at the end
//! when `python3` is on the PATH):
//!
//! ```text
//! cargo bench -p proc-ipc --bench ipc            # full
//! cargo bench -p proc-ipc --bench ipc -- --quick # fewer items
//! ```
//!
//! Workloads: small items, a `(u64, 16-byte string)` pair, through a queue of maxsize 1024
//! from 1 producer to 1 consumer and from 2 to 2 (items/s); 1 MiB byte buffers through a
//! queue, 1 to 1 (MiB/s), as `ByteBuf` (Python's `bytes`: one block) and, for comparison,
//! as `Vec<u8>` (serde's byte-by-byte sequence); a round trip of a u64 over a duplex pipe
//! and over two queues (µs per round trip). The consumers and echoers are child processes,
//! as in Python. Two more rows are the kernel's limit for a round trip, measured in the same
//! run with none of our code: a bare socket pair, and a bare futex word (a sleep and a
//! wake-up on every hop). And two for 1 MiB items, which no path between two processes can
//! beat, since every item is copied at least once: `memcpy` of a 1 MiB buffer into another
//! while both stay in the core's cache ("cache-hot", the issue's yardstick), and `memcpy`
//! of 64 MiB buffers, larger than every cache of this machine, so that it runs at the
//! speed of memory.

use std::time::Instant;

use proc_core::Process;
use proc_core::codec::ByteBuf;
use proc_ipc::{Queue, pipe};

struct Sizes {
    small: u64,
    big: u64,
    pings: u64,
}

const MIB: usize = 1 << 20;

fn started(body: impl FnOnce() + Send + 'static) -> Process {
    let mut p = Process::new(body);
    p.start().expect("start");
    p
}

fn small(producers: u64, consumers: u64, n: u64) -> f64 {
    let q: Queue<(u64, String)> = Queue::new(1024).expect("queue");
    let per = n / producers;
    let start = Instant::now();
    let ps: Vec<Process> = (0..producers)
        .map(|_| {
            let q = q.clone();
            started(move || {
                for i in 0..per {
                    q.put((i, "sixteen bytes!!!".to_string())).expect("put");
                }
            })
        })
        .collect();
    let cs: Vec<Process> = (0..consumers)
        .map(|_| {
            let q = q.clone();
            started(move || for _ in q.iter() {})
        })
        .collect();
    for p in &ps {
        p.join().expect("join");
    }
    q.close();
    for c in &cs {
        c.join().expect("join");
    }
    (per * producers) as f64 / start.elapsed().as_secs_f64()
}

/// 1 MiB buffers, 1 to 1, as `ByteBuf` (copied as one block) or as `Vec<u8>` (through
/// serde byte by byte); MiB/s.
fn big<B>(n: u64, make: fn(Vec<u8>) -> B) -> f64
where
    B: serde::Serialize + serde::de::DeserializeOwned + Clone + AsRef<[u8]> + Send + 'static,
{
    let q: Queue<B> = Queue::new(16).expect("queue");
    let start = Instant::now();
    let p = {
        let q = q.clone();
        started(move || {
            let buf = make(vec![0u8; MIB]);
            for _ in 0..n {
                q.put(buf.clone()).expect("put");
            }
        })
    };
    for _ in 0..n {
        assert_eq!(q.get().expect("get").as_ref().len(), MIB);
    }
    p.join().expect("join");
    (n as usize * MIB) as f64 / start.elapsed().as_secs_f64() / MIB as f64
}

fn pipe_ping_pong(n: u64) -> f64 {
    let (a, b) = pipe().expect("pipe");
    let p = started(move || {
        for _ in 0..n {
            let v: u64 = b.recv().expect("recv");
            b.send(&v).expect("send");
        }
    });
    let start = Instant::now();
    for i in 0..n {
        a.send(&i).expect("send");
        let _: u64 = a.recv().expect("recv");
    }
    let per = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    p.join().expect("join");
    per
}

fn queue_ping_pong(n: u64) -> f64 {
    let there: Queue<u64> = Queue::new(1).expect("queue");
    let back: Queue<u64> = Queue::new(1).expect("queue");
    let p = {
        let (there, back) = (there.clone(), back.clone());
        started(move || {
            for _ in 0..n {
                back.put(there.get().expect("get")).expect("put");
            }
        })
    };
    let start = Instant::now();
    for i in 0..n {
        there.put(i).expect("put");
        back.get().expect("get");
    }
    let per = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    p.join().expect("join");
    per
}

/// The limit for moving buffers of `len` bytes: copying one into another, over and over,
/// in one process (MiB/s). With 1 MiB both stay in the core's cache; with 64 MiB neither
/// fits in any cache.
fn bare_memcpy(len: usize, bytes: u64) -> f64 {
    let from = vec![1u8; len];
    let mut to = vec![0u8; len];
    to.copy_from_slice(&from); // touch every page first
    let rounds = (bytes / len as u64).max(1);
    let start = Instant::now();
    for _ in 0..rounds {
        to.copy_from_slice(std::hint::black_box(&from));
        std::hint::black_box(&mut to);
    }
    (rounds as usize * len) as f64 / start.elapsed().as_secs_f64() / MIB as f64
}

/// The kernel's limit for a round trip: a u64 back and forth over a bare Unix socket pair
/// between a forked child and its parent, with none of our code on the way.
fn bare_socket_ping_pong(n: u64) -> f64 {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    // SAFETY: the child only reads, writes and calls _exit (no locks, no allocation).
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let mut word = [0u8; 8];
            for _ in 0..n {
                if b.read_exact(&mut word).is_err() || b.write_all(&word).is_err() {
                    break;
                }
            }
            // SAFETY: ends the child at once, without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let start = Instant::now();
            let mut word = [0u8; 8];
            for i in 0..n {
                a.write_all(&i.to_le_bytes()).expect("write");
                a.read_exact(&mut word).expect("read");
            }
            let per = start.elapsed().as_secs_f64() / n as f64 * 1e6;
            nix::sys::wait::waitpid(child, None).expect("waitpid");
            per
        }
    }
}

/// The kernel's limit for a futex round trip: a word in shared memory, a sleep and a
/// wake-up call on every hop.
fn bare_futex_ping_pong(n: u64) -> f64 {
    use std::sync::atomic::{AtomicU32, Ordering};

    // SAFETY: a fresh shared anonymous page; both processes only touch it atomically.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "mmap");
    // SAFETY: the page is mapped, aligned and outlives both loops.
    let word = unsafe { &*page.cast::<AtomicU32>() };
    let futex = |op: libc::c_int, value: u32| {
        // SAFETY: FUTEX_WAIT/FUTEX_WAKE on a valid shared word, no timeout.
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, value, 0, 0, 0) };
    };
    let wait_for = |target: u32| loop {
        let now = word.load(Ordering::Acquire);
        if now == target {
            return;
        }
        futex(libc::FUTEX_WAIT, now);
    };
    let n = u32::try_from(n).expect("round trips fit in u32");
    // SAFETY: the child only uses atomics and the futex system call, then _exit.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            for i in 0..n {
                wait_for(2 * i + 1);
                word.store(2 * i + 2, Ordering::Release);
                futex(libc::FUTEX_WAKE, 1);
            }
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let start = Instant::now();
            for i in 0..n {
                word.store(2 * i + 1, Ordering::Release);
                futex(libc::FUTEX_WAKE, 1);
                wait_for(2 * i + 2);
            }
            let per = start.elapsed().as_secs_f64() / f64::from(n) * 1e6;
            nix::sys::wait::waitpid(child, None).expect("waitpid");
            // SAFETY: unmapping the page mapped above; nothing refers to it any more.
            unsafe { libc::munmap(page, 4096) };
            per
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            small: 20_000,
            big: 50,
            pings: 2_000,
        }
    } else {
        Sizes {
            small: 500_000,
            big: 200,
            pings: 10_000,
        }
    };
    // (workload, unit, multiproc's figure, whether more is better)
    let ours = [
        (
            "queue small items 1->1",
            "items/s",
            small(1, 1, sizes.small),
            true,
        ),
        (
            "queue small items 2->2",
            "items/s",
            small(2, 2, sizes.small),
            true,
        ),
        (
            "queue 1 MiB items 1->1",
            "MiB/s",
            big(sizes.big, ByteBuf::from),
            true,
        ),
        (
            "queue 1 MiB items 1->1",
            "MiB/s, as Vec<u8>",
            big(sizes.big, |v| v),
            true,
        ),
        (
            "ping-pong over a pipe",
            "us/round trip",
            pipe_ping_pong(sizes.pings),
            false,
        ),
        (
            "ping-pong over two queues",
            "us/round trip",
            queue_ping_pong(sizes.pings),
            false,
        ),
        (
            "limit: memcpy of 1 MiB, cache-hot",
            "MiB/s",
            bare_memcpy(MIB, sizes.big * 20 * MIB as u64),
            true,
        ),
        (
            "limit: memcpy of 64 MiB, past caches",
            "MiB/s",
            bare_memcpy(64 * MIB, sizes.big * 5 * MIB as u64),
            true,
        ),
        (
            "limit: bare socket ping-pong",
            "us/round trip",
            bare_socket_ping_pong(sizes.pings),
            false,
        ),
        (
            "limit: bare futex ping-pong",
            "us/round trip",
            bare_futex_ping_pong(sizes.pings),
            false,
        ),
    ];
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ipc.py");
    let theirs = bench_support::twin_figures(&script, if quick { &["--quick"] } else { &[] });
    let ours: Vec<bench_support::Figure> = ours
        .into_iter()
        .map(
            |(workload, unit, value, more_is_better)| bench_support::Figure {
                workload: workload.to_string(),
                value,
                unit,
                more_is_better,
            },
        )
        .collect();
    bench_support::print_table(&ours, &theirs);
}
