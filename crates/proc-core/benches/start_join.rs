//! Start+join of a no-op process, per process, against the bare kernel path (fork +
//! waitpid) and Python's `multiprocessing.Process` with the fork start method
//! (`start_join.py` beside this file, run by this benchmark when `python3` is on the PATH),
//! all measured in the same run:
//!
//! ```text
//! cargo bench -p proc-core --bench start_join
//! ```
//! Prints one line per variant: median and best of several rounds, microseconds per process.

use std::time::{Duration, Instant};

use proc_core::{Process, spawn};

const ROUNDS: usize = 7;
const PER_ROUND: usize = 300;

fn measure(name: &str, mut one: impl FnMut()) {
    one(); // warm up
    let mut per_process: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                one();
            }
            start.elapsed() / PER_ROUND as u32
        })
        .collect();
    per_process.sort();
    println!(
        "{name:<34} median {:>8.1} us   best {:>8.1} us   ({ROUNDS} rounds x {PER_ROUND})",
        per_process[ROUNDS / 2].as_secs_f64() * 1e6,
        per_process[0].as_secs_f64() * 1e6,
    );
}

fn main() {
    measure("bare fork + waitpid (limit)", || {
        // SAFETY: the child calls only _exit, which is async-signal-safe.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(0) },
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).expect("waitpid");
            }
        }
    });
    measure("multiproc Process start+join", || {
        let mut p = Process::new(|| {});
        p.start().expect("start");
        assert_eq!(p.join().expect("join"), 0);
    });
    measure("multiproc spawn+join (returns u64)", || {
        assert_eq!(spawn(|| 7u64).expect("spawn").join().expect("join"), 7);
    });
    // The Python twin, in the same run.
    bench_support::print_twin(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/start_join.py"),
    );
}
