//! Lock acquire+release, uncontended and contended, against the limit of a bare atomic
//! compare-and-swap pair and Python's `multiprocessing.Lock` (`lock.py` beside this file,
//! run at the end when `python3` is on the PATH), all in the same run:
//!
//! ```text
//! cargo bench -p proc-sync --bench lock
//! ```
//! Prints one line per variant: median and best of several rounds.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proc_core::Process;
use proc_sync::{Event, Lock, Value};

const ROUNDS: usize = 7;
const PAIRS: u32 = 5_000_000;
const CONTENDED_EACH: u64 = 1_000_000;

/// Median and best of `ROUNDS` runs of `one_round`, which returns its own duration per
/// operation.
fn report(name: &str, unit: &str, mut one_round: impl FnMut() -> f64) {
    one_round(); // warm up
    let mut results: Vec<f64> = (0..ROUNDS).map(|_| one_round()).collect();
    results.sort_by(f64::total_cmp);
    let (median, best) = if unit == "ns" {
        (results[ROUNDS / 2], results[0])
    } else {
        (results[ROUNDS / 2], results[ROUNDS - 1])
    };
    println!(
        "{name:<44} median {median:>12.1} {unit}   best {best:>12.1} {unit}   ({ROUNDS} rounds)"
    );
}

fn per_pair(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e9 / f64::from(PAIRS)
}

/// A process-shared pthread mutex (robust or not) on the heap: the floor under `Lock`, as
/// glibc implements it.
fn bare_pthread_mutex(robust: bool) -> Box<std::cell::UnsafeCell<libc::pthread_mutex_t>> {
    // SAFETY: a zeroed pthread_mutex_t is a valid target for pthread_mutex_init, and the
    // attribute object is initialised before use and destroyed after.
    unsafe {
        let mutex = Box::new(std::cell::UnsafeCell::new(std::mem::zeroed()));
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        if robust {
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK);
        }
        assert_eq!(libc::pthread_mutex_init(mutex.get(), &attr), 0);
        libc::pthread_mutexattr_destroy(&mut attr);
        mutex
    }
}

fn main() {
    let word = AtomicU32::new(0);
    report("bare AtomicU32 CAS acquire+release (limit)", "ns", || {
        let start = Instant::now();
        for _ in 0..PAIRS {
            let word = black_box(&word);
            while word
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {}
            word.store(0, Ordering::Release);
        }
        per_pair(start.elapsed())
    });

    for (name, robust) in [
        ("bare pthread mutex, pshared (no robustness)", false),
        ("bare pthread mutex, pshared+robust (floor)", true),
    ] {
        let mutex = bare_pthread_mutex(robust);
        report(name, "ns", || {
            let start = Instant::now();
            for _ in 0..PAIRS {
                // SAFETY: the mutex was initialised and lives (boxed, never moved) until
                // the end of this block; it is locked and unlocked by this thread only.
                unsafe {
                    libc::pthread_mutex_lock(black_box(mutex.get()));
                    libc::pthread_mutex_unlock(mutex.get());
                }
            }
            per_pair(start.elapsed())
        });
    }

    let lock = Lock::new().expect("Lock::new");
    report("multiproc Lock acquire+release", "ns", || {
        let start = Instant::now();
        for _ in 0..PAIRS {
            drop(black_box(&lock).acquire());
        }
        per_pair(start.elapsed())
    });

    let value = Value::new(0u64).expect("Value::new");
    report("multiproc Value lock + increment", "ns", || {
        let start = Instant::now();
        for _ in 0..PAIRS {
            *black_box(&value).lock() += 1;
        }
        per_pair(start.elapsed())
    });

    report("multiproc 2-process contended counter", "incr/s", || {
        let counter = Value::new(0u64).expect("Value::new");
        let go = Event::new().expect("Event::new");
        let children: Vec<Process> = (0..2)
            .map(|_| {
                let (lock, counter, go) = (lock.clone(), counter.clone(), go.clone());
                let mut p = Process::new(move || {
                    go.wait();
                    for _ in 0..CONTENDED_EACH {
                        let _guard = lock.acquire();
                        // The shared counter is read and written under `lock`.
                        let mut value = counter.lock();
                        *value += 1;
                    }
                });
                p.start().expect("start");
                p
            })
            .collect();
        let start = Instant::now();
        go.set();
        for p in &children {
            assert_eq!(p.join().expect("join"), 0);
        }
        let elapsed = start.elapsed();
        assert_eq!(counter.get(), 2 * CONTENDED_EACH);
        (2 * CONTENDED_EACH) as f64 / elapsed.as_secs_f64()
    });
    // The Python twin, in the same run.
    bench_support::print_twin(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lock.py"),
    );
}
