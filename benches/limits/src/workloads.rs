//! Each workload of `benches/README.md`, done the bare way: [`ALL`] by name.

mod shm;

use std::ffi::CString;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::lock::{lock, unlock};
use crate::ring::Ring;
use crate::sys::{self, Child, Shared, SharedZeroed, futex_wake, store_and_wake, wait_until};

/// One workload: runs `count` operations and returns the time of its timed part.
pub type Workload = fn(u64) -> io::Result<Duration>;

/// Every workload, by the name `benches/workloads.txt` gives it.
pub const ALL: &[(&str, Workload)] = &[
    ("spawn_join:fork", spawn_join_fork),
    ("spawn_join:spawn", spawn_join_spawn),
    ("spawn_join:forkserver", spawn_join_forkserver),
    ("queue_small_1to1", |count| queue_small(1, count)),
    ("queue_small_2to2", |count| queue_small(2, count)),
    ("queue_1mib_1to1", memcpy_1mib),
    ("queue_1mib_vec_u8", memcpy_1mib),
    ("queue_1mib_string", memcpy_1mib),
    ("queue_1mib_vec_f64", memcpy_1mib),
    ("queue_1mib_vec_u32", memcpy_1mib),
    ("pingpong_pipe", pingpong_socket),
    ("pingpong_queues", pingpong_futex),
    ("lock_uncontended", lock_uncontended),
    ("lock_contended", lock_contended),
    ("joinable_pipeline", joinable_pipeline),
    ("pool_map", pool_map),
    ("pool_map_reused", pool_map_reused),
    ("pool_map_steady", pool_map_steady),
    ("shm_attach_read_1mib", shm::shm_attach_read_1mib),
    ("shm_create_unlink", shm::shm_create_unlink),
    // A pair is two words to the bare pool: its limit is pool_map's (see the README).
    ("pool_starmap", pool_map),
    // A task's round trip, at bottom, is a ping-pong with a waiting worker.
    ("executor_submit_result", pingpong_futex),
];

const MIB: usize = 1 << 20;

/// The 16 bytes of a small item's text, as two words of a ring slot.
fn sixteen_bytes() -> [u64; 2] {
    let text = b"sixteen bytes!!!";
    let word = |half: &[u8]| u64::from_ne_bytes(half.try_into().unwrap_or_default());
    [word(&text[..8]), word(&text[8..])]
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// `count` split evenly in `parts`, or an error saying why not.
fn split(count: u64, parts: u64) -> io::Result<u64> {
    if count.is_multiple_of(parts) {
        Ok(count / parts)
    } else {
        Err(invalid(format!("COUNT must be a multiple of {parts}")))
    }
}

/// `count` as a futex word's value, or an error saying it is too large.
fn fits_u32(count: u64) -> io::Result<u32> {
    u32::try_from(count).map_err(|_| invalid(format!("COUNT {count} is too large")))
}

/// Times `count` calls of `one` after one untimed call.
fn timed_each(count: u64, mut one: impl FnMut() -> io::Result<()>) -> io::Result<Duration> {
    one()?;
    let start = Instant::now();
    for _ in 0..count {
        one()?;
    }
    Ok(start.elapsed())
}

fn wait_all(children: Vec<Child>) -> io::Result<()> {
    children.into_iter().try_for_each(Child::wait)
}

/// The start signal of the workloads whose processes start before the clock does: a word
/// that goes from 0 to 1, and the count of its sleepers.
struct Go(Shared<AtomicU32>);

impl Go {
    fn new() -> io::Result<Go> {
        Ok(Go(Shared::new(2)?))
    }

    fn wait(&self) {
        wait_until(&self.0[0], &self.0[1], |v| v == 1);
    }

    fn set(&self) {
        store_and_wake(&self.0[0], &self.0[1], 1);
    }
}

/// fork + `_exit(0)` in the child + waitpid.
fn spawn_join_fork(count: u64) -> io::Result<Duration> {
    timed_each(count, || sys::fork(|| {})?.wait())
}

/// fork + exec of this same executable, which ends at once, + waitpid: a fresh program
/// image, the least a spawned child costs.
fn spawn_join_spawn(count: u64) -> io::Result<Duration> {
    let exe = CString::new("/proc/self/exe").map_err(io::Error::other)?;
    let flag = CString::new(crate::EXIT_AT_ONCE).map_err(io::Error::other)?;
    let argv = [exe.as_ptr(), flag.as_ptr(), std::ptr::null()];
    timed_each(count, || {
        sys::fork(|| {
            // SAFETY: a NUL-terminated path and a null-terminated argument vector, built
            // before the fork; if exec fails the child ends with 127.
            unsafe {
                libc::execv(exe.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        })?
        .wait()
    })
}

/// A server process, forked beforehand, forks each child: a request byte over a socket
/// pair, fork + `_exit(0)` + waitpid in the server, the wait status back.
fn spawn_join_forkserver(count: u64) -> io::Result<Duration> {
    let (mut client, mut server_end) = UnixStream::pair()?;
    let client_fd = client.as_raw_fd();
    let server = sys::fork(move || {
        // The server's copy of the client's end would keep the pair open after the client
        // closes it.
        // SAFETY: closes this process's copy of an fd it does not otherwise use.
        unsafe { libc::close(client_fd) };
        let mut request = [0u8; 1];
        while let Ok(1) = server_end.read(&mut request) {
            // -1 is no exit status: the client reports it as a failed start.
            let status = sys::fork(|| {})
                .and_then(|child| sys::reap(child.pid()))
                .unwrap_or(-1);
            if server_end.write_all(&status.to_ne_bytes()).is_err() {
                break;
            }
        }
    })?;
    let elapsed = timed_each(count, || {
        client.write_all(&[1])?;
        let mut status = [0u8; 4];
        client.read_exact(&mut status)?;
        sys::check_exit(server.pid(), i32::from_ne_bytes(status))
    });
    drop(client);
    server.wait()?;
    elapsed
}

/// `producers` single-producer rings of 1024 slots (u64, 16 bytes), each with its own
/// consumer process: producer k puts `count / producers` items into ring k.
fn queue_small(producers: u64, count: u64) -> io::Result<Duration> {
    let per = split(count, producers)?;
    let go = Go::new()?;
    let text = sixteen_bytes();
    let mut children = Vec::new();
    let mut rings = Vec::new();
    for _ in 0..producers {
        let ring: Shared<Ring<3>> = Shared::new(1)?;
        children.push(sys::fork(|| {
            let mut consumer = ring[0].consumer();
            let mut sum = 0u64;
            for _ in 0..per {
                let [n, a, b] = consumer.pop();
                assert_eq!([a, b], text, "a corrupt item");
                sum += n;
            }
            assert_eq!(sum, per * (per - 1) / 2, "items lost");
        })?);
        rings.push(ring);
    }
    for ring in &rings {
        children.push(sys::fork(|| {
            let mut producer = ring[0].producer();
            go.wait();
            for i in 0..per {
                producer.push([i, text[0], text[1]]);
            }
        })?);
    }
    let start = Instant::now();
    go.set();
    wait_all(children)?;
    Ok(start.elapsed())
}

/// One copy of each 1 MiB item, from one buffer to another in one process.
fn memcpy_1mib(count: u64) -> io::Result<Duration> {
    let from = vec![1u8; MIB];
    let mut to = vec![0u8; MIB];
    to.copy_from_slice(&from); // touches every page of `to` before the clock starts
    let start = Instant::now();
    for _ in 0..count {
        to.copy_from_slice(black_box(&from));
        black_box(&mut to);
    }
    Ok(start.elapsed())
}

/// A u64 there and back over a bare Unix socket pair, with an echoing child.
fn pingpong_socket(count: u64) -> io::Result<Duration> {
    let (mut here, mut there) = UnixStream::pair()?;
    let echo = sys::fork(move || {
        let mut word = [0u8; 8];
        for _ in 0..count {
            there.read_exact(&mut word).expect("read");
            there.write_all(&word).expect("write");
        }
    })?;
    let start = Instant::now();
    let mut word = [0u8; 8];
    for i in 0..count {
        here.write_all(&i.to_ne_bytes())?;
        here.read_exact(&mut word)?;
        if u64::from_ne_bytes(word) != i {
            return Err(io::Error::other("the echo sent back another value"));
        }
    }
    let elapsed = start.elapsed();
    echo.wait()?;
    Ok(elapsed)
}

/// A shared word that the parent sets odd and the echoing child even, each waiting for the
/// other's value (watching, then asleep on the futex).
fn pingpong_futex(count: u64) -> io::Result<Duration> {
    let count = fits_u32(count.saturating_mul(2))? / 2;
    // The word, the parent's sleepers, the child's.
    let words: Shared<AtomicU32> = Shared::new(3)?;
    let (word, parent_sleeping, child_sleeping) = (&words[0], &words[1], &words[2]);
    let echo = sys::fork(|| {
        for i in 0..count {
            wait_until(word, child_sleeping, |v| v == 2 * i + 1);
            store_and_wake(word, parent_sleeping, 2 * i + 2);
        }
    })?;
    let start = Instant::now();
    for i in 0..count {
        store_and_wake(word, child_sleeping, 2 * i + 1);
        wait_until(word, parent_sleeping, |v| v == 2 * i + 2);
    }
    let elapsed = start.elapsed();
    echo.wait()?;
    Ok(elapsed)
}

/// Lock and unlock of the compare-and-swap lock, in one process.
fn lock_uncontended(count: u64) -> io::Result<Duration> {
    let state: Shared<AtomicU32> = Shared::new(1)?;
    let start = Instant::now();
    for _ in 0..count {
        lock(black_box(&state[0]));
        unlock(&state[0]);
    }
    Ok(start.elapsed())
}

/// Two processes add 1 to a shared u64 `count / 2` times each, under the lock.
fn lock_contended(count: u64) -> io::Result<Duration> {
    let per = split(count, 2)?;
    let go = Go::new()?;
    let state: Shared<AtomicU32> = Shared::new(1)?;
    let counter: Shared<AtomicU64> = Shared::new(1)?;
    let children = (0..2)
        .map(|_| {
            sys::fork(|| {
                go.wait();
                for _ in 0..per {
                    lock(&state[0]);
                    // A plain read-modify-write: the lock is what makes it safe.
                    let value = counter[0].load(Ordering::Relaxed);
                    counter[0].store(value + 1, Ordering::Relaxed);
                    unlock(&state[0]);
                }
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let start = Instant::now();
    go.set();
    wait_all(children)?;
    let elapsed = start.elapsed();
    let total = counter[0].load(Ordering::Relaxed);
    if total != count {
        return Err(io::Error::other(format!(
            "the counter is {total}, not {count}"
        )));
    }
    Ok(elapsed)
}

/// Main puts u64s alternately into two rings, one per consumer process, and counts them in
/// a shared word; consumers count each item off; main waits for the count to reach zero.
fn joinable_pipeline(count: u64) -> io::Result<Duration> {
    let per = split(count, 2)?;
    fits_u32(count)?;
    // Unfinished items, and main's sleepers on that count.
    let words: Shared<AtomicU32> = Shared::new(2)?;
    let (unfinished, main_sleeping) = (&words[0], &words[1]);
    let rings = [Shared::<Ring<1>>::new(1)?, Shared::<Ring<1>>::new(1)?];
    let consumers = rings
        .iter()
        .map(|ring| {
            sys::fork(|| {
                let mut consumer = ring[0].consumer();
                for _ in 0..per {
                    black_box(consumer.pop());
                    if unfinished.fetch_sub(1, Ordering::SeqCst) == 1
                        && main_sleeping.load(Ordering::SeqCst) != 0
                    {
                        futex_wake(unfinished, 1);
                    }
                }
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut producers = [rings[0][0].producer(), rings[1][0].producer()];
    let start = Instant::now();
    for i in 0..count {
        unfinished.fetch_add(1, Ordering::Relaxed);
        producers[(i % 2) as usize].push([i]);
    }
    wait_until(unfinished, main_sleeping, |v| v == 0);
    let elapsed = start.elapsed();
    wait_all(consumers)?;
    Ok(elapsed)
}

/// The shared state of the bare pool of [`pool_map`].
#[repr(C)]
struct PoolControl {
    /// Bumped by main to start a map; [`QUIT`] ends the workers.
    generation: AtomicU32,
    workers_sleeping: AtomicU32,
    /// Inputs done in the current map; main waits for it to reach `len`.
    finished: AtomicU32,
    main_sleeping: AtomicU32,
    /// Workers done claiming chunks of the current map.
    idle: AtomicU32,
    len: AtomicU64,
    chunk: AtomicU64,
    /// The first input not yet claimed.
    next: AtomicU64,
}

// SAFETY: made only of atomics; all-zero is "no map yet".
unsafe impl SharedZeroed for PoolControl {}

const QUIT: u32 = u32::MAX;
const POOL_WORKERS: u64 = 2;

fn double(x: u64) -> u64 {
    x * 2
}

/// Two worker processes, forked beforehand, claim chunks of a shared input array (chunks
/// of Python's default size for 2 workers: a quarter of an even share) and write the
/// results into a shared output array; main copies the results into a `Vec`.
fn pool_map(count: u64) -> io::Result<Duration> {
    pool_map_after(&[1_000.min(count)], count)
}

/// As [`pool_map`], after a warm-up map over as many inputs as the timed one.
fn pool_map_reused(count: u64) -> io::Result<Duration> {
    pool_map_after(&[count], count)
}

/// As [`pool_map`], after three warm-up maps over as many inputs as the timed one.
fn pool_map_steady(count: u64) -> io::Result<Duration> {
    pool_map_after(&[count; 3], count)
}

fn pool_map_after(warm_ups: &[u64], count: u64) -> io::Result<Duration> {
    fits_u32(count)?;
    let control: Shared<PoolControl> = Shared::new(1)?;
    let control = &control[0];
    let inputs: Shared<AtomicU64> = Shared::new(count as usize)?;
    let outputs: Shared<AtomicU64> = Shared::new(count as usize)?;
    let workers = (0..POOL_WORKERS)
        .map(|_| sys::fork(|| pool_worker(control, &inputs, &outputs)))
        .collect::<io::Result<Vec<_>>>()?;
    let map = |n: u64| -> Vec<u64> {
        for (i, input) in inputs[..n as usize].iter().enumerate() {
            input.store(i as u64, Ordering::Relaxed);
        }
        control.len.store(n, Ordering::Relaxed);
        control
            .chunk
            .store(n.div_ceil(4 * POOL_WORKERS), Ordering::Relaxed);
        control.next.store(0, Ordering::Relaxed);
        control.finished.store(0, Ordering::Relaxed);
        control.idle.store(0, Ordering::Relaxed);
        let generation = control.generation.load(Ordering::Relaxed) + 1;
        store_and_wake(&control.generation, &control.workers_sleeping, generation);
        wait_until(&control.finished, &control.main_sleeping, |v| {
            u64::from(v) == n
        });
        outputs[..n as usize]
            .iter()
            .map(|output| output.load(Ordering::Relaxed))
            .collect()
    };
    // Warm-up maps, as in the other programs; after each, every worker must be done with
    // it before the next map resets the shared state.
    for &warm_up in warm_ups {
        map(warm_up);
        wait_until(&control.idle, &control.main_sleeping, |v| {
            u64::from(v) == POOL_WORKERS
        });
    }
    let start = Instant::now();
    let results = map(count);
    let elapsed = start.elapsed();
    store_and_wake(&control.generation, &control.workers_sleeping, QUIT);
    wait_all(workers)?;
    if results.len() as u64 != count || results.last() != Some(&double(count - 1)) {
        return Err(io::Error::other("the map's results are wrong"));
    }
    Ok(elapsed)
}

fn pool_worker(control: &PoolControl, inputs: &[AtomicU64], outputs: &[AtomicU64]) {
    let mut seen = 0;
    loop {
        seen = wait_until(&control.generation, &control.workers_sleeping, |g| {
            g != seen
        });
        if seen == QUIT {
            return;
        }
        let (len, chunk) = (
            control.len.load(Ordering::Relaxed),
            control.chunk.load(Ordering::Relaxed),
        );
        loop {
            let first = control.next.fetch_add(chunk, Ordering::Relaxed);
            if first >= len {
                break;
            }
            let end = (first + chunk).min(len);
            for i in first as usize..end as usize {
                outputs[i].store(double(inputs[i].load(Ordering::Relaxed)), Ordering::Relaxed);
            }
            // Fits: `len` was checked to fit in u32.
            let done = (end - first) as u32;
            let finished = control.finished.fetch_add(done, Ordering::SeqCst) + done;
            if u64::from(finished) == len && control.main_sleeping.load(Ordering::SeqCst) != 0 {
                futex_wake(&control.finished, 1);
            }
        }
        let idle = control.idle.fetch_add(1, Ordering::SeqCst) + 1;
        if u64::from(idle) == POOL_WORKERS && control.main_sleeping.load(Ordering::SeqCst) != 0 {
            futex_wake(&control.idle, 1);
        }
    }
}
