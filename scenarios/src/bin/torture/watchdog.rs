//! The watchdog: a thread that watches the progress counters of the scenario running and
//! declares a deadlock when none of them has moved for the stall time, or when the
//! scenario overruns its hard deadline. It then prints where every process of the run
//! stands (state, kernel wait channel, system call, per thread), prints the scenario's
//! `RESULT` line with the deadlock counted, kills the children and ends this process.
//!
//! The scenarios also bound every wait of their own (joins with timeouts), so that most
//! wedges are reported by the scenario itself with its figures; the watchdog is for the
//! waits that cannot be bounded, such as a `Pool::map` that never returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::procfs;
use crate::report::Report;

type Source = Box<dyn Fn() -> u64 + Send>;

struct State {
    scenario: String,
    phase: String,
    sources: Vec<Source>,
    hard_deadline: Option<Instant>,
    /// Counted by the scenario's own code, for the sources-less stretches (setup, checks).
    beat: Arc<AtomicU64>,
    /// The scenario is over: the thread ends.
    done: bool,
}

/// The watchdog of this process; see the module's docs.
#[derive(Clone)]
pub struct Watchdog {
    state: Arc<Mutex<State>>,
    beat: Arc<AtomicU64>,
}

impl Watchdog {
    /// Starts the watchdog thread: no progress for `stall` is a deadlock.
    pub fn start(scenario: &str, stall: Duration) -> Watchdog {
        let beat = Arc::new(AtomicU64::new(0));
        let state = Arc::new(Mutex::new(State {
            scenario: scenario.to_string(),
            phase: "starting".to_string(),
            sources: Vec::new(),
            hard_deadline: None,
            beat: Arc::clone(&beat),
            done: false,
        }));
        let watched = Arc::clone(&state);
        std::thread::Builder::new()
            .name("torture-watchdog".into())
            .spawn(move || watch(&watched, stall))
            .map(drop)
            .unwrap_or_else(|e| eprintln!("torture: no watchdog thread ({e}): stalls go unseen"));
        Watchdog { state, beat }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a progress counter to watch (it must keep growing while work is done).
    pub fn watch(&self, source: impl Fn() -> u64 + Send + 'static) {
        self.lock().sources.push(Box::new(source));
    }

    /// Says what the scenario is doing now, for the report of a deadlock.
    pub fn phase(&self, phase: impl Into<String>) {
        self.lock().phase = phase.into();
        self.beat();
    }

    /// Counts progress made by the scenario's own process.
    pub fn beat(&self) {
        self.beat.fetch_add(1, Ordering::Relaxed);
    }

    /// The scenario must be over by `deadline`, whatever its progress.
    pub fn deadline(&self, deadline: Instant) {
        self.lock().hard_deadline = Some(deadline);
    }

    /// Forgets the sources (they hold shared memory that the leak check must see freed).
    pub fn forget_sources(&self) {
        let sources = std::mem::take(&mut self.lock().sources);
        drop(sources);
        self.beat();
    }

    /// The scenario is over: the watchdog stops watching and its thread ends.
    pub fn stand_down(&self) {
        self.forget_sources();
        self.lock().done = true;
    }
}

fn watch(state: &Mutex<State>, stall: Duration) {
    let mut last = None;
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.done {
            return;
        }
        let progress: u64 = state
            .sources
            .iter()
            .map(|source| source())
            .fold(state.beat.load(Ordering::Relaxed), u64::wrapping_add);
        if last != Some(progress) {
            last = Some(progress);
            since = Instant::now();
        }
        let why = if since.elapsed() >= stall {
            format!("no progress for {} s", since.elapsed().as_secs())
        } else if state.hard_deadline.is_some_and(|d| Instant::now() >= d) {
            "past the scenario's hard deadline".to_string()
        } else {
            continue;
        };
        fire(&state, &why);
    }
}

/// Reports the deadlock and ends the run: nothing it waits for will come.
fn fire(state: &State, why: &str) -> ! {
    let me = std::process::id();
    eprintln!(
        "torture: watchdog: {}: {why} while {}: deadlock. Where every process stands:",
        state.scenario, state.phase
    );
    eprintln!("  {}", procfs::describe(me));
    let descendants = procfs::descendants(me);
    for p in &descendants {
        eprintln!("  {}", procfs::describe(p.pid));
    }
    let mut report = Report::new(&state.scenario);
    report.deadlocks = 1;
    report.note(format!(
        "watchdog: {why} while {}; {} processes stuck (their states are on stderr)",
        state.phase,
        descendants.len()
    ));
    println!("{}", report.line());
    // The daemons die with this process (their lifeline); end the others too.
    for p in descendants {
        // SAFETY: kill(2) with a pid and a signal; no memory is involved. These pids are
        // descendants of this process that have not been reaped, so they are not recycled.
        unsafe { libc::kill(p.pid as libc::pid_t, libc::SIGKILL) };
    }
    // SAFETY: _exit ends the process at once; nothing of it is needed any more.
    unsafe { libc::_exit(3) }
}
