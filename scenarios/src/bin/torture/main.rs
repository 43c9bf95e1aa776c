//! `torture`: the fault and load suite behind `cargo xtask torture`.
//!
//! ```text
//! torture list                                   the scenarios, in the order of a run
//! torture run <scenario> [--seconds N] [--seed S] [--stall-seconds N]
//! ```
//!
//! `run` plays one scenario for about `N` seconds (default 10) in this process, then prints
//! one `RESULT key=value …` line: what it did, what was lost, duplicated, damaged or wedged,
//! and what leaked (file descriptors, zombies, shared memory mappings of this process,
//! counted before and after). It exits with 0 only if nothing went wrong. `cargo xtask
//! torture` runs every scenario this way, each in a fresh process, with a watchdog of its
//! own around it, and prints the table.
//!
//! The scenarios (see `scenarios.rs`): `lock`, `queue`, `joinable`, `fdlimit`, `pool`,
//! `shm`, `churn`, `signals`, `load`. Every random choice comes from the seed, which is printed; a wedge is
//! reported by the watchdog (`watchdog.rs`) with where every process stands.

mod churn;
mod fleet;
mod limit_rig;
mod lock_rig;
mod pool;
mod procfs;
mod queue_rig;
mod report;
mod rng;
mod scenarios;
mod shared;
mod shm;
mod shm_warnings;
mod shm_worker;
mod signals;
mod watchdog;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use multiproc::Process;

use report::Report;
use watchdog::Watchdog;

/// A deliberate fault, for the suite's own tests: each must make the run fail, which shows
/// that the check it targets can fail. Never used by `cargo xtask torture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    None,
    /// queue: consumers drop every fourth item without recording it.
    Lose,
    /// queue: producers put their sixth item twice.
    Duplicate,
    /// fdlimit: a consumer keeps a descriptor open after its first refused get, without
    /// saying so.
    KeepFd,
    /// lock: each worker's third increment adds 2 to the counter.
    DoubleCount,
    /// lock: a half-done increment of a dead holder is not rolled back.
    SkipRollback,
    /// lock: the first worker stops itself (SIGSTOP) while holding the lock; no faults.
    Wedge,
    /// pool: the task of one input never returns, and no worker is killed: only the
    /// watchdog can see it.
    Hang,
    /// any: a lock's shared memory is leaked (its descriptor and its mapping).
    Leak,
    /// any: a child is forked around the library and never reaped: a zombie.
    Zombie,
}

impl Sabotage {
    fn parse(name: &str) -> Option<Sabotage> {
        Some(match name {
            "lose" => Sabotage::Lose,
            "duplicate" => Sabotage::Duplicate,
            "keep-fd" => Sabotage::KeepFd,
            "double-count" => Sabotage::DoubleCount,
            "skip-rollback" => Sabotage::SkipRollback,
            "wedge" => Sabotage::Wedge,
            "hang" => Sabotage::Hang,
            "leak" => Sabotage::Leak,
            "zombie" => Sabotage::Zombie,
            _ => return None,
        })
    }
}

/// How a scenario is to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub scenario: String,
    pub seconds: f64,
    pub seed: u64,
    /// No progress for this long is a deadlock.
    pub stall: Duration,
    pub sabotage: Sabotage,
}

impl Config {
    /// When the scenario's busy part must end.
    pub fn until(&self, started: Instant) -> Instant {
        started + Duration::from_secs_f64(self.seconds)
    }
}

/// Starts a worker process running `body`: a daemon, so that it dies with this process if
/// the run itself is killed, and named for the reports.
pub fn spawn_worker(name: String, body: impl FnOnce() + Send + 'static) -> Result<Process, String> {
    let mut process = Process::new(body).with_name(name).with_daemon(true);
    process
        .start()
        .map_err(|e| format!("starting {}: {e}", process.name()))?;
    Ok(process)
}

const USAGE: &str = "usage: torture list | torture run <scenario> [--seconds N] [--seed S] \
                     [--stall-seconds N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for scenario in scenarios::ALL {
                println!("{}\t{}", scenario.name, scenario.what);
            }
            ExitCode::SUCCESS
        }
        Some("run") => match parse(&args[1..]) {
            Ok(config) => run(&config),
            Err(e) => {
                eprintln!("torture: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut config = Config {
        scenario: args.first().cloned().ok_or("which scenario?")?,
        seconds: 10.0,
        seed: 1,
        stall: Duration::from_secs(30),
        sabotage: Sabotage::None,
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: {value:?} is not a number of seconds"))
        };
        match flag.as_str() {
            "--seconds" => config.seconds = number()?,
            "--stall-seconds" => config.stall = Duration::from_secs_f64(number()?.max(1.0)),
            "--seed" => {
                config.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: {value:?} is not a 64-bit number"))?;
            }
            "--sabotage" => {
                config.sabotage = Sabotage::parse(value)
                    .ok_or_else(|| format!("--sabotage: no such sabotage {value:?}"))?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if !scenarios::ALL.iter().any(|s| s.name == config.scenario) {
        return Err(format!("no scenario {:?}", config.scenario));
    }
    Ok(config)
}

/// What leaks are counted in: this process's descriptors, shared memory mappings and
/// children.
struct Census {
    fds: usize,
    regions: usize,
    zombies: usize,
    alive: usize,
}

impl Census {
    fn take() -> Census {
        let children = procfs::children();
        let zombies = children.iter().filter(|c| c.state == 'Z').count();
        Census {
            fds: procfs::open_fds(),
            regions: procfs::shared_regions(),
            zombies,
            alive: children.len() - zombies,
        }
    }
}

/// Things made once per process and kept (the exit hook, the daemons' lifeline pipe), so
/// that the census before the scenario already holds them.
fn warm_up() -> Result<(), String> {
    for daemon in [false, true] {
        let mut p = Process::new(|| {}).with_daemon(daemon);
        p.start().map_err(|e| format!("warm-up start: {e}"))?;
        p.join().map_err(|e| format!("warm-up join: {e}"))?;
    }
    Ok(())
}

fn run(config: &Config) -> ExitCode {
    let Some(scenario) = scenarios::ALL.iter().find(|s| s.name == config.scenario) else {
        return ExitCode::from(2);
    };
    let config = Config {
        seed: rng::scenario_seed(config.seed, scenario.name),
        ..config.clone()
    };
    // Workers inherit these; a shell may have started this program with SIGINT ignored.
    signals::take_term_and_int(false);
    let watchdog = Watchdog::start(scenario.name, config.stall);
    if let Err(e) = warm_up() {
        eprintln!("torture: {e}");
        return ExitCode::from(2);
    }
    let before = Census::take();
    let started = Instant::now();
    // The busy part, the wind-down (the stall time per step at most) and the checks.
    watchdog.deadline(config.until(started) + 4 * config.stall + Duration::from_secs(60));
    let mut report = match (scenario.run)(&config, &watchdog) {
        Ok(report) => report,
        Err(e) => {
            let mut report = Report::new(scenario.name);
            report.corrupt(format!("the scenario could not run: {e}"));
            report
        }
    };
    report.seconds = started.elapsed().as_secs_f64();
    watchdog.stand_down();
    match config.sabotage {
        Sabotage::Leak => {
            if let Ok(lock) = multiproc::Lock::new() {
                std::mem::forget(lock);
            }
        }
        Sabotage::Zombie => {
            // SAFETY: the child only calls _exit, which is async-signal-safe.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            if pid > 0 {
                // Wait until the child has exited, without reaping it (WNOWAIT): from then
                // on it is a zombie, for the census below to find.
                loop {
                    // SAFETY: zeroed is a valid siginfo_t (plain data), which waitid fills.
                    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                    // SAFETY: P_PID with our own child's pid and a valid out-pointer.
                    let rc = unsafe {
                        libc::waitid(
                            libc::P_PID,
                            pid as libc::id_t,
                            &mut info,
                            libc::WEXITED | libc::WNOWAIT,
                        )
                    };
                    if rc == 0
                        || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)
                    {
                        break;
                    }
                }
            }
        }
        _ => {}
    }
    let after = Census::take();
    report.leaked_fds += after.fds.saturating_sub(before.fds) as u64;
    report.leaked_regions += after.regions.saturating_sub(before.regions) as u64;
    report.zombies += after.zombies.saturating_sub(before.zombies) as u64;
    report.strays += after.alive.saturating_sub(before.alive) as u64;
    if report.leaked_fds + report.leaked_regions + report.zombies + report.strays > 0 {
        report.note(format!(
            "census before/after: fds {}/{}, shared mappings {}/{}, zombies {}/{}, \
             running children {}/{}",
            before.fds,
            after.fds,
            before.regions,
            after.regions,
            before.zombies,
            after.zombies,
            before.alive,
            after.alive
        ));
        for child in procfs::children() {
            eprintln!("torture: left behind: {}", procfs::describe(child.pid));
        }
    }
    println!("{}", report.line());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
