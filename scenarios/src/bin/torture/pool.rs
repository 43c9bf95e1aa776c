//! The pool scenario: batch after batch of tasks through `Pool::map`, `map_chunked`,
//! `imap` and `imap_unordered`, while a killer thread SIGKILLs random workers.
//!
//! Each task marks its input in a shared tally as it runs (a `fetch_or`: a second run of
//! the same input is seen) and returns `(input, f(input))`. Checked, for every input:
//! - it got its result, right, from a task that ran (its mark is there), or the error
//!   [`Error::WorkerDied`] naming a worker the killer killed, with exit code -9 (for `map`,
//!   one such error fails the whole call: all its inputs count as failed with it);
//! - no input ran twice, and no result came twice (`imap_unordered`);
//! - no call hung (the watchdog), and the pool still has all its workers at the end.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use multiproc::Pool;
use multiproc::proc_patterns::Error;

use crate::procfs::is_running_child;
use crate::report::Report;
use crate::rng::Rng;
use crate::shared::{Board, TALLY_ITEMS, Tally};
use crate::signals;
use crate::watchdog::Watchdog;
use crate::{Config, Sabotage};

/// The books of the tasks, set before the pool forks its workers (which inherit them) and
/// cleared after the pool is gone, so that the leak check sees the memory freed.
struct Books {
    ran: Tally,
    board: Board,
    /// Sabotage: the task of input 100 never returns.
    hang: bool,
}

static BOOKS: Mutex<Option<Books>> = Mutex::new(None);

fn f(input: u64) -> u64 {
    input.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5bd1_e995
}

/// The task: marks its input as run, works a little (a few microseconds, so that kills
/// land in the middle of tasks), returns `(input, f(input))`.
fn task(input: u64) -> (u64, u64) {
    if let Some(books) = BOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        let counters = books.board.get();
        match books.ran.mark(input) {
            Some(false) => {}
            Some(true) => {
                Board::bump(&counters.duplicates);
                eprintln!("torture: pool: input {input} ran twice");
            }
            None => Board::bump(&counters.errors),
        }
        Board::bump(&counters.executed);
        Board::bump(&counters.ops);
        if books.hang && input == 100 {
            loop {
                std::thread::park();
            }
        }
    }
    let mut x = input;
    for _ in 0..(input % 64) * 16 {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    (input, f(input))
}

/// What the killer killed, for telling its kills from other deaths.
struct Killer {
    pids: Mutex<HashSet<u32>>,
    kills: AtomicU64,
    stop: AtomicBool,
}

impl Killer {
    /// Kills a random worker every 1-12 ms until told to stop; each victim has ended
    /// (is a zombie, or reaped) before the next one is chosen, and when this returns.
    fn run(&self, pool: &Pool, seed: u64, stall: Duration) {
        let mut rng = Rng::new(seed);
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(rng.between(1_000, 12_000)));
            let workers = pool.pids();
            if workers.is_empty() {
                continue;
            }
            let pid = rng.pick(&workers);
            // Known before the signal, so that the error it causes is recognised. The list
            // of workers may still name one killed before and not yet replaced: its pid
            // stays known, whatever this second signal does.
            let new = self.lock().insert(pid);
            match signals::kill_child(pid, stall) {
                Ok(true) => {
                    self.kills.fetch_add(1, Ordering::AcqRel);
                }
                _ if new => {
                    self.lock().remove(&pid);
                }
                _ => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.pids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `error` is the death of a worker this killer killed.
    fn killed(&self, error: &Error) -> bool {
        matches!(error, Error::WorkerDied { pid, exitcode: -9 } if self.lock().contains(pid))
    }
}

/// The figures of the batches.
#[derive(Default)]
struct Figures {
    submitted: u64,
    /// Right results.
    returned: u64,
    failed_with_killed_worker: u64,
    /// Wrong results and unexpected errors (each also reported as corruption).
    bad: u64,
    /// Results that came twice.
    repeated: u64,
    calls: [u64; 4],
}

impl Figures {
    /// Inputs that got neither a result nor an error.
    fn lost(&self) -> u64 {
        self.submitted
            .saturating_sub(self.returned + self.failed_with_killed_worker + self.bad)
    }

    fn count(&mut self, ok: bool) {
        if ok {
            self.returned += 1;
        } else {
            self.bad += 1;
        }
    }
}

fn check_result(input: u64, result: (u64, u64), ran: &Tally, report: &mut Report) -> bool {
    if result != (input, f(input)) {
        report.corrupt(format!("input {input} returned {result:?}"));
        return false;
    }
    if !ran.is_marked(input) {
        report.corrupt(format!("input {input} returned a result but never ran"));
        return false;
    }
    true
}

/// One batch over `inputs` with a call chosen by `rng`.
fn batch(
    pool: &Pool,
    inputs: Range<u64>,
    rng: &mut Rng,
    ran: &Tally,
    killer: &Killer,
    figures: &mut Figures,
    report: &mut Report,
) {
    let n = inputs.end - inputs.start;
    figures.submitted += n;
    let chunksize = rng.pick(&[1, 3, 16, 64]) as usize;
    let call = rng.below(4) as usize;
    figures.calls[call] += 1;
    match call {
        0 | 1 => {
            let result = if call == 0 {
                pool.map(task, inputs.clone())
            } else {
                pool.map_chunked(task, inputs.clone(), chunksize)
            };
            match result {
                Ok(values) => {
                    if values.len() as u64 != n {
                        report.corrupt(format!("map of {n} inputs gave {} results", values.len()));
                    }
                    for (input, value) in inputs.zip(values) {
                        figures.count(check_result(input, value, ran, report));
                    }
                }
                Err(e) if killer.killed(&e) => figures.failed_with_killed_worker += n,
                Err(e) => {
                    figures.bad += n;
                    report.corrupt(format!("map failed: {e}"));
                }
            }
        }
        2 => {
            let results: Vec<_> = pool.imap_chunked(task, inputs.clone(), chunksize).collect();
            if results.len() as u64 > n {
                report.corrupt(format!("imap of {n} inputs gave {} results", results.len()));
            }
            for (input, result) in inputs.zip(results) {
                match result {
                    Ok(value) => figures.count(check_result(input, value, ran, report)),
                    Err(e) if killer.killed(&e) => figures.failed_with_killed_worker += 1,
                    Err(e) => {
                        figures.bad += 1;
                        report.corrupt(format!("imap: input {input} failed: {e}"));
                    }
                }
            }
        }
        _ => {
            let mut seen = vec![false; n as usize];
            let mut answered = 0u64;
            for result in pool.imap_unordered_chunked(task, inputs.clone(), chunksize) {
                answered += 1;
                match result {
                    Ok((input, value)) => {
                        let Some(slot) = input
                            .checked_sub(inputs.start)
                            .and_then(|i| seen.get_mut(i as usize))
                        else {
                            report.corrupt(format!(
                                "imap_unordered returned a foreign input {input}"
                            ));
                            continue;
                        };
                        if std::mem::replace(slot, true) {
                            figures.repeated += 1;
                            eprintln!("torture: pool: input {input}'s result came twice");
                        } else {
                            figures.count(check_result(input, (input, value), ran, report));
                        }
                    }
                    Err(e) if killer.killed(&e) => figures.failed_with_killed_worker += 1,
                    Err(e) => {
                        figures.bad += 1;
                        report.corrupt(format!("imap_unordered: a task failed: {e}"));
                    }
                }
            }
            if answered > n {
                report.corrupt(format!(
                    "imap_unordered of {n} inputs gave {answered} results"
                ));
            }
        }
    }
}

/// Waits at most `wait` for the pool to list `processes` workers, all running.
fn at_full_strength(pool: &Pool, processes: usize, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let workers = pool.pids();
        if workers.len() == processes && workers.iter().all(|&pid| is_running_child(pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn run(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let until = config.until(started);
    let mut rng = Rng::new(config.seed);
    let mut report = Report::new("pool");
    let ran = Tally::new()?;
    let board = Board::new()?;
    let hang = config.sabotage == Sabotage::Hang;
    *BOOKS.lock().unwrap_or_else(PoisonError::into_inner) = Some(Books {
        ran: ran.clone(),
        board: board.clone(),
        hang,
    });
    let processes = 3;
    let mut builder = Pool::builder().processes(processes);
    let max_tasks = rng.chance(1, 2).then(|| rng.between(10, 100) as usize);
    if let Some(max) = max_tasks {
        builder = builder.maxtasksperchild(max);
    }
    let pool = builder.build().map_err(|e| format!("Pool: {e}"))?;
    report.note(format!(
        "{processes} workers, maxtasksperchild {max_tasks:?}"
    ));
    let beat = Arc::new(AtomicU64::new(0));
    watchdog.watch({
        let board = board.clone();
        move || Board::read(&board.get().ops)
    });
    watchdog.watch({
        let beat = Arc::clone(&beat);
        move || beat.load(Ordering::Relaxed)
    });
    watchdog.phase("mapping while workers are killed");
    let killer = Killer {
        pids: Mutex::new(HashSet::new()),
        kills: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let mut figures = Figures::default();
    let mut next = 0u64;
    let killer_seed = rng.seed();
    std::thread::scope(|scope| {
        if !hang {
            scope.spawn(|| killer.run(&pool, killer_seed, config.stall));
        }
        while Instant::now() < until && next + 1_000 < TALLY_ITEMS {
            let n = rng.between(20, 600);
            batch(
                &pool,
                next..next + n,
                &mut rng,
                &ran,
                &killer,
                &mut figures,
                &mut report,
            );
            next += n;
            beat.fetch_add(1, Ordering::Relaxed);
        }
        killer.stop.store(true, Ordering::Release);
    });

    // Every worker killed has ended; the pool must replace each one.
    watchdog.phase("waiting for the killed workers to be replaced");
    if !at_full_strength(&pool, processes, config.stall) {
        report.corrupt(format!(
            "the pool's workers are {:?}, not {processes} running ones, {} s after the last \
             kill: killed ones were not replaced",
            pool.pids(),
            config.stall.as_secs()
        ));
    }
    // Without kills, a last map must come back whole.
    watchdog.phase("a last map without kills");
    let last = next..next + 500;
    figures.submitted += 500;
    match pool.map(task, last.clone()) {
        Ok(values) => {
            for (input, value) in last.zip(values) {
                figures.count(check_result(input, value, &ran, &mut report));
            }
        }
        Err(e) => {
            figures.bad += 500;
            report.corrupt(format!("the last map, without kills, failed: {e}"));
        }
    }
    // Workers that retired after their last task (maxtasksperchild) are replaced too.
    if !at_full_strength(&pool, processes, config.stall) {
        report.corrupt(format!(
            "the pool's workers are {:?}, not {processes} running ones, after the last map",
            pool.pids()
        ));
    }
    watchdog.phase("closing the pool");
    pool.close();
    if let Err(e) = pool.join() {
        report.corrupt(format!("Pool::join: {e}"));
    }
    drop(pool);
    *BOOKS.lock().unwrap_or_else(PoisonError::into_inner) = None;

    let counters = board.get();
    let executed = Board::read(&counters.executed);
    let errors = Board::read(&counters.errors);
    if errors > 0 {
        report.corrupt(format!("{errors} tasks got an input past the tally"));
    }
    if figures.returned > executed {
        report.corrupt(format!(
            "{} results came back from {executed} task runs",
            figures.returned
        ));
    }
    let kills = killer.kills.load(Ordering::Acquire);
    report.operations = figures.submitted;
    report.killed = kills;
    report.acknowledged = figures.submitted;
    report.delivered = figures.returned;
    report.duplicates = Board::read(&counters.duplicates) + figures.repeated;
    report.lost = figures.lost();
    report.taken = figures.failed_with_killed_worker;
    report.note(format!(
        "pool: {} inputs in {} map, {} map_chunked, {} imap, {} imap_unordered calls; {} \
         returned, {} failed with a killed worker, {executed} task runs",
        figures.submitted,
        figures.calls[0],
        figures.calls[1],
        figures.calls[2],
        figures.calls[3],
        figures.returned,
        figures.failed_with_killed_worker,
    ));
    Ok(report)
}
