//! Start+join of a no-op process, per process, under each start method, against Python's
//! `multiprocessing.Process` under the same method (`start_join.py` beside this file, run by
//! this benchmark when `python3` is on the PATH) and against the bare kernel paths, all
//! measured in the same run:
//!
//! ```text
//! cargo bench -p proc-core --bench start_join
//! ```
//!
//! Each figure is the median of 7 rounds, in microseconds per process; the rounds of all
//! variants are taken in turns, so that a change in the machine's load meets them alike.
//! The limits:
//! - `fork + waitpid`: what Fork is built on: `fork(2)`, a child that calls `_exit(0)`,
//!   `waitpid`.
//! - `fork + exec self + waitpid`: what Spawn is built on: `fork(2)`, then `execv` of
//!   this very benchmark binary (`/proc/self/exe`) with an argument that makes its `main`
//!   call `_exit(0)` at once, then `waitpid`. The new run pays what any run of the program
//!   pays (loading, relocation, the runtime's start-up) and nothing of multiproc's.
//! - `posix_spawn self + waitpid`: the same new run, started by glibc's `posix_spawn`
//!   (a `vfork`-style clone), the cheapest way to run a program.
//!
//! ForkServer has no bare limit of its own: once its server runs, each child is a fork of a
//! small process plus two messages, so it lies between the Fork and Spawn limits.

use std::ffi::CString;
use std::time::{Duration, Instant};

use bench_support::{Figure, print_table, twin_figures};
use proc_core::{Process, StartMethod, spawn};

const ROUNDS: usize = 7;

/// The argument that makes this binary end at once: the "program doing nothing".
const EXIT_AT_ONCE: &str = "--start-join-exit-at-once";

/// One thing to measure: `per_round` processes started and joined by `one`.
struct Variant<'a> {
    workload: &'static str,
    per_round: u32,
    one: Box<dyn FnMut() + 'a>,
    rounds: Vec<Duration>,
}

impl<'a> Variant<'a> {
    fn new(workload: &'static str, per_round: u32, one: impl FnMut() + 'a) -> Self {
        Variant {
            workload,
            per_round,
            one: Box::new(one),
            rounds: Vec::new(),
        }
    }

    /// Median and best time per process.
    fn figures(&self) -> (Duration, Duration) {
        let mut rounds = self.rounds.clone();
        rounds.sort();
        (rounds[rounds.len() / 2], rounds[0])
    }
}

/// Runs `ROUNDS` rounds of every variant, one round of each in turn, so that a change in
/// the machine's load meets every variant alike.
fn measure(variants: &mut [Variant<'_>]) {
    for variant in variants.iter_mut() {
        (variant.one)(); // warm up (and, for ForkServer, start the server)
    }
    for _ in 0..ROUNDS {
        for variant in variants.iter_mut() {
            let start = Instant::now();
            for _ in 0..variant.per_round {
                (variant.one)();
            }
            variant.rounds.push(start.elapsed() / variant.per_round);
        }
    }
}

fn noop() {}

fn target_under(method: StartMethod) -> impl FnMut() {
    move || {
        let mut p = Process::target(noop, ()).with_start_method(method);
        p.start().expect("start");
        assert_eq!(p.join().expect("join"), 0);
    }
}

fn bare_fork() {
    // SAFETY: the child calls only _exit, which is async-signal-safe.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        // SAFETY: _exit ends the child at once.
        nix::unistd::ForkResult::Child => unsafe { libc::_exit(0) },
        nix::unistd::ForkResult::Parent { child } => {
            nix::sys::wait::waitpid(child, None).expect("waitpid");
        }
    }
}

/// `/proc/self/exe EXIT_AT_ONCE`, as C strings made before any fork.
struct SelfCommand {
    path: CString,
    argv: Vec<CString>,
}

impl SelfCommand {
    fn new() -> Self {
        let path = CString::new("/proc/self/exe").unwrap();
        let argv = vec![path.clone(), CString::new(EXIT_AT_ONCE).unwrap()];
        SelfCommand { path, argv }
    }

    fn fork_exec_wait(&self) {
        // SAFETY: between fork and exec the child calls only execv and _exit, both
        // async-signal-safe, on strings made before the fork.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let _ = nix::unistd::execv(&self.path, &self.argv);
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(127) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    fn posix_spawn_wait(&self) {
        let mut argv: Vec<*mut libc::c_char> =
            self.argv.iter().map(|a| a.as_ptr() as *mut _).collect();
        argv.push(std::ptr::null_mut());
        let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
        let mut pid: libc::pid_t = 0;
        // SAFETY: path, argv and envp are NUL-terminated strings in null-terminated arrays
        // that outlive the call; no file actions or attributes are passed.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                self.path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                envp.as_ptr(),
            )
        };
        assert_eq!(
            rc,
            0,
            "posix_spawn: {}",
            std::io::Error::from_raw_os_error(rc)
        );
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(EXIT_AT_ONCE) {
        // SAFETY: ends this run at once: it is the bare limit's "program doing nothing".
        unsafe { libc::_exit(0) }
    }
    proc_core::init();

    let exe = SelfCommand::new();
    let mut ours = [
        Variant::new("start+join fork", 300, target_under(StartMethod::Fork)),
        Variant::new("start+join spawn", 100, target_under(StartMethod::Spawn)),
        Variant::new(
            "start+join forkserver",
            200,
            target_under(StartMethod::ForkServer),
        ),
        Variant::new("fork: Process::new (closure)", 300, || {
            let mut p = Process::new(|| {}).with_start_method(StartMethod::Fork);
            p.start().expect("start");
            assert_eq!(p.join().expect("join"), 0);
        }),
        Variant::new("fork: spawn() returning a u64", 300, || {
            assert_eq!(spawn(|| 7u64).expect("spawn").join().expect("join"), 7);
        }),
        Variant::new("limit: fork + waitpid", 300, bare_fork),
        Variant::new("limit: fork + exec self + waitpid", 100, || {
            exe.fork_exec_wait()
        }),
        Variant::new("limit: posix_spawn self + waitpid", 100, || {
            exe.posix_spawn_wait()
        }),
    ];
    measure(&mut ours);

    // The Python twin, in the same run, after ours (its spawn rounds take seconds).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/start_join.py");
    let theirs = twin_figures(&script, &[]);
    let figures: Vec<Figure> = ours
        .iter()
        .map(|variant| Figure {
            workload: variant.workload.to_string(),
            value: variant.figures().0.as_secs_f64() * 1e6,
            unit: "us/process",
            more_is_better: false,
        })
        .collect();
    print_table(&figures, &theirs);
    println!("\nmultiproc: median and best of {ROUNDS} rounds, taken in turns");
    for variant in &ours {
        let (median, best) = variant.figures();
        println!(
            "  {:<34} median {:>8.1} us   best {:>8.1} us   ({} per round)",
            variant.workload,
            median.as_secs_f64() * 1e6,
            best.as_secs_f64() * 1e6,
            variant.per_round,
        );
    }
}
