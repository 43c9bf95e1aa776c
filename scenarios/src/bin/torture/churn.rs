//! The churn scenario: thousands of short-lived processes, started and joined, made to
//! exit with a code, returning a value, terminated, killed, polled, dropped without a join
//! (daemons and not), started in bursts and joined in random order, using shared objects
//! made for them, starting grandchildren they never join. Each outcome that is known is
//! checked (exit code, returned value, shared value); at the end every dropped child must
//! have been reaped, and the census of `main` finds no zombie, no descriptor and no mapping
//! left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use multiproc::{JoinError, Process, Queue, Value, active_children, exit, spawn};

use crate::Config;
use crate::report::Report;
use crate::rng::Rng;
use crate::watchdog::Watchdog;

/// What the scenario did.
#[derive(Default)]
struct Counts {
    started: u64,
    checked: u64,
    terminated: u64,
    killed: u64,
    dropped: u64,
    grandchildren: u64,
}

/// A child that sleeps long: it only ends by a signal.
fn sleeper() -> Process {
    Process::new(|| std::thread::sleep(Duration::from_secs(60)))
}

struct Churn<'a> {
    rng: Rng,
    counts: Counts,
    report: &'a mut Report,
    stall: Duration,
}

impl Churn<'_> {
    fn start(&mut self, mut p: Process) -> Option<Process> {
        match p.start() {
            Ok(()) => {
                self.counts.started += 1;
                Some(p)
            }
            Err(e) => {
                self.report.corrupt(format!("start failed: {e}"));
                None
            }
        }
    }

    /// Joins `p` (at most the stall time) and checks its exit code.
    fn expect(&mut self, p: &Process, what: &str, allowed: &[i32]) {
        match p.join_timeout(self.stall) {
            Ok(Some(code)) if allowed.contains(&code) => self.counts.checked += 1,
            Ok(Some(code)) => self.report.corrupt(format!(
                "{what}: exit code {code}, expected one of {allowed:?}"
            )),
            Ok(None) => {
                self.report.deadlock(format!(
                    "{what}: still running after {} s",
                    self.stall.as_secs()
                ));
                let _ = p.kill();
                let _ = p.join();
            }
            Err(e) => self.report.corrupt(format!("{what}: join failed: {e}")),
        }
    }

    fn one(&mut self) {
        match self.rng.below(14) {
            0 => {
                if let Some(p) = self.start(Process::new(|| {})) {
                    self.expect(&p, "an empty child", &[0]);
                }
            }
            1 => {
                let code = self.rng.between(1, 120) as i32;
                if let Some(p) = self.start(Process::new(move || exit(code))) {
                    self.expect(&p, "a child calling exit", &[code]);
                }
            }
            2 => {
                let x = self.rng.next() >> 2;
                self.counts.started += 1;
                match spawn(move || x * 3).map(|h| h.join()) {
                    Ok(Ok(y)) if y == x * 3 => self.counts.checked += 1,
                    other => self.report.corrupt(format!("spawn returned {other:?}")),
                }
            }
            3 => {
                self.counts.started += 1;
                match spawn(|| -> u8 { exit(7) }).map(|h| h.join()) {
                    Ok(Err(JoinError::Exited(7))) => self.counts.checked += 1,
                    other => self
                        .report
                        .corrupt(format!("a spawn that exits gave {other:?}")),
                }
            }
            4 => {
                if let Some(p) = self.start(sleeper()) {
                    self.counts.terminated += 1;
                    if let Err(e) = p.terminate() {
                        self.report.corrupt(format!("terminate failed: {e}"));
                    }
                    self.expect(&p, "a terminated child", &[-15]);
                }
            }
            5 => {
                if let Some(p) = self.start(sleeper()) {
                    self.counts.killed += 1;
                    if let Err(e) = p.kill() {
                        self.report.corrupt(format!("kill failed: {e}"));
                    }
                    self.expect(&p, "a killed child", &[-9]);
                }
            }
            6 | 7 => {
                // Dropped while it runs: reaped later by a start or active_children().
                let nap = Duration::from_micros(self.rng.below(3_000));
                let daemon = self.rng.chance(1, 2);
                let p = Process::new(move || std::thread::sleep(nap)).with_daemon(daemon);
                if self.start(p).is_some() {
                    self.counts.dropped += 1;
                }
            }
            8 => {
                let Ok(value) = Value::new(0u64) else {
                    self.report.corrupt("Value::new failed");
                    return;
                };
                let shared = value.clone();
                if let Some(p) = self.start(Process::new(move || *shared.lock() += 1)) {
                    self.expect(&p, "a child adding to a Value", &[0]);
                    if value.get() != 1 {
                        self.report
                            .corrupt(format!("the Value is {}, not 1", value.get()));
                    }
                }
            }
            9 => {
                let Ok(queue) = Queue::<u64>::new(1) else {
                    self.report.corrupt("Queue::new failed");
                    return;
                };
                let x = self.rng.next();
                let q = queue.clone();
                let body = move || {
                    if q.put(x).is_err() {
                        exit(2);
                    }
                };
                if let Some(p) = self.start(Process::new(body)) {
                    match queue.get_timeout(self.stall) {
                        Ok(y) if y == x => {}
                        other => self
                            .report
                            .corrupt(format!("a child's item came as {other:?}")),
                    }
                    self.expect(&p, "a child putting an item", &[0]);
                }
            }
            10 => {
                // The child returns without joining its own child: its exit routine does.
                let body = || {
                    let mut grandchild = Process::new(|| {});
                    if grandchild.start().is_err() {
                        exit(3);
                    }
                };
                if let Some(p) = self.start(Process::new(body)) {
                    self.counts.grandchildren += 1;
                    self.expect(&p, "a child with an unjoined grandchild", &[0]);
                }
            }
            11 => {
                // A burst, joined in random order, some ended by a signal first.
                let k = self.rng.between(2, 6);
                let mut burst = Vec::new();
                for _ in 0..k {
                    let signal = self.rng.below(3);
                    let p = if signal == 0 {
                        Process::new(|| {})
                    } else {
                        sleeper()
                    };
                    if let Some(p) = self.start(p) {
                        burst.push((p, signal));
                    }
                }
                while !burst.is_empty() {
                    let i = self.rng.below(burst.len() as u64) as usize;
                    let (p, signal) = burst.swap_remove(i);
                    let (sent, code) = match signal {
                        0 => (Ok(()), 0),
                        1 => {
                            self.counts.terminated += 1;
                            (p.terminate(), -15)
                        }
                        _ => {
                            self.counts.killed += 1;
                            (p.kill(), -9)
                        }
                    };
                    if let Err(e) = sent {
                        self.report.corrupt(format!("a signal failed: {e}"));
                    }
                    self.expect(&p, "a child of a burst", &[code]);
                }
            }
            12 => {
                // Reaped by polling, then signals to the reaped child do nothing.
                if let Some(p) = self.start(Process::new(|| {})) {
                    let deadline = Instant::now() + self.stall;
                    while p.is_alive() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    match p.exitcode() {
                        Some(0) => self.counts.checked += 1,
                        other => self.report.corrupt(format!("a polled child: {other:?}")),
                    }
                    if p.terminate().is_err() || p.kill().is_err() {
                        self.report
                            .corrupt("a signal to a reaped child was an error");
                    }
                }
            }
            _ => {
                if let Some(p) = self.start(sleeper()) {
                    match p.join_timeout(Duration::ZERO) {
                        Ok(None) => {}
                        other => self
                            .report
                            .corrupt(format!("a running child joined as {other:?}")),
                    }
                    self.counts.killed += 1;
                    if let Err(e) = p.kill() {
                        self.report.corrupt(format!("kill failed: {e}"));
                    }
                    self.expect(&p, "a killed child", &[-9]);
                }
            }
        }
    }
}

pub fn run(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let until = config.until(started);
    let mut report = Report::new("churn");
    let beat = Arc::new(AtomicU64::new(0));
    watchdog.watch({
        let beat = Arc::clone(&beat);
        move || beat.load(Ordering::Relaxed)
    });
    watchdog.phase("starting and ending processes");
    let mut churn = Churn {
        rng: Rng::new(config.seed),
        counts: Counts::default(),
        report: &mut report,
        stall: config.stall,
    };
    let mut round = 0u64;
    while Instant::now() < until && churn.report.deadlocks == 0 {
        churn.one();
        round += 1;
        if round.is_multiple_of(64) {
            active_children();
        }
        beat.fetch_add(1, Ordering::Relaxed);
    }
    let counts = std::mem::take(&mut churn.counts);
    // The dropped children end within milliseconds; active_children() reaps them.
    watchdog.phase("reaping the dropped children");
    let deadline = Instant::now() + config.stall;
    loop {
        let left = active_children();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            report.deadlock(format!("{} dropped children never ended", left.len()));
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    report.operations = counts.started;
    report.killed = counts.terminated + counts.killed;
    // Every child but the dropped ones has an outcome to check.
    report.acknowledged = counts.started - counts.dropped;
    report.delivered = counts.checked;
    report.note(format!(
        "churn: {} processes started (and {} grandchildren), {} outcomes checked, {} \
         terminated, {} killed, {} dropped without join",
        counts.started,
        counts.grandchildren,
        counts.checked,
        counts.terminated,
        counts.killed,
        counts.dropped
    ));
    Ok(report)
}
