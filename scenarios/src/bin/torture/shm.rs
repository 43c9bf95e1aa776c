//! The `shm` scenario: creators of named shared memory blocks are SIGKILLed, and the
//! resource trackers must leave nothing behind.
//!
//! Three or four worker processes at a time (replaced as they die) create named blocks and
//! `ShareableList`s of random sizes under the run's own prefix, write each one's pattern,
//! unlink some themselves, abandon others (close them without unlinking: their tracker's
//! to remove when the worker's tree ends) and offer some to the others, which open them by
//! name, check them against their spec, hold them open a moment and close them. A worker
//! that has abandoned enough blocks ends by itself. Meanwhile the parent SIGKILLs a worker
//! every 0-6 ms, two times in three one caught inside a chosen step: in `create`, while
//! writing, in `unlink`, or while it has another's block open.
//!
//! The books (`shm_worker.rs`) hold every block number any worker took and how far its
//! life went. At the end, once every worker has ended, the parent polls `/dev/shm` until no
//! file with the run's prefix is left, the stall time at most. Checked:
//! - leaked: the blocks with the run's prefix still in `/dev/shm` then (counted by
//!   its state in the books, the first few with how their creator ended); they are then
//!   removed;
//! - the trackers' warnings (`shm_warnings.rs`): one per block a tracker unlinked, only for
//!   blocks their creator did not unlink, and for every whole block its creator did not
//!   unlink and that is gone; every tracker must end (a deadlock otherwise);
//! - corrupt: a reader that found a block with other bytes or items than its spec; a file
//!   with the run's prefix that the books never recorded; any error of create, write,
//!   unlink or open other than a block found gone; a worker that ended with another exit
//!   code than its ending allows;
//! - deadlocks: a worker that did not end within the stall time.

use std::collections::HashSet;
use std::io::PipeWriter;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use multiproc::Process;

use crate::report::Report;
use crate::rng::Rng;
use crate::shm_warnings::{Warnings, redirect_stderr};
use crate::shm_worker::{
    ABANDONED, CREATED, CREATING, FAILED, IDLE, IN_CREATE, IN_READ, IN_UNLINK, IN_WRITE, Ledger,
    MAX_BLOCKS, MAX_WORKERS, Run, UNLINKED, UNLINKING, UNUSED, WRITTEN, work,
};
use crate::signals;
use crate::watchdog::Watchdog;
use crate::{Config, spawn_worker};

/// The phases a kill can catch a worker in, for the figures.
const PHASES: [(u32, &str); 5] = [
    (IN_CREATE, "in create"),
    (IN_WRITE, "writing"),
    (IN_UNLINK, "in unlink"),
    (IN_READ, "with another's block open"),
    (IDLE, "between steps"),
];

struct Member {
    incarnation: u32,
    process: Process,
}

/// How each incarnation ended: `None` running, `Some(code)`.
struct Crew<'a> {
    run: Run,
    /// The workers' stderr (see `shm_warnings.rs`), until the wind-down.
    stderr: Option<Arc<PipeWriter>>,
    members: Vec<Member>,
    endings: Vec<Option<i32>>,
    /// The phase each killed incarnation was seen in just before the signal.
    seen_at_kill: Vec<Option<u32>>,
    rng: Rng,
    stall: Duration,
    kills: [u64; PHASES.len()],
    report: &'a mut Report,
}

impl Crew<'_> {
    fn start(&mut self) {
        if self.endings.len() >= MAX_WORKERS {
            return;
        }
        let me = self.endings.len() as u32;
        let seed = self.rng.seed();
        let run = self.run.clone();
        let stderr = self.stderr.clone();
        match spawn_worker(format!("shm-{me}"), move || {
            // Only SIGKILL ends these workers from outside.
            signals::take_term_and_int(false);
            if let Some(stderr) = stderr {
                redirect_stderr(&stderr);
            }
            work(&run, me, seed);
        }) {
            Ok(process) => {
                self.endings.push(None);
                self.seen_at_kill.push(None);
                self.members.push(Member {
                    incarnation: me,
                    process,
                });
            }
            Err(e) => self.report.corrupt(e),
        }
    }

    /// Waits for `member` to end, at most the stall time, and books its exit code, which
    /// must be one of `allowed`.
    fn join(&mut self, member: &Member, allowed: &[i32], while_doing: &str) -> i32 {
        let who = format!("shm worker {}", member.incarnation);
        let code = self
            .report
            .join_within(&member.process, self.stall, who, while_doing);
        if !allowed.contains(&code) {
            self.report.corrupt(format!(
                "shm worker {} ended with exit code {code} {while_doing}, expected one of \
                 {allowed:?}",
                member.incarnation
            ));
        }
        if let Some(ending) = self.endings.get_mut(member.incarnation as usize) {
            *ending = Some(code);
        }
        code
    }

    /// Replaces the workers that ended by themselves (their quota of abandoned blocks).
    fn replace_ended(&mut self) {
        let mut i = 0;
        while i < self.members.len() {
            if self.members[i].process.exitcode().is_none() {
                i += 1;
                continue;
            }
            let member = self.members.swap_remove(i);
            self.join(&member, &[0], "by itself");
            self.start();
        }
    }

    /// A victim: two times in three the first worker seen in a phase picked at random
    /// (looked for during 3 ms at most), else a random one.
    fn victim(&mut self) -> usize {
        if self.rng.chance(2, 3) {
            let (wanted, _) = PHASES[self.rng.below(4) as usize];
            let until = Instant::now() + Duration::from_millis(3);
            while Instant::now() < until {
                let ledger = &self.run.ledger;
                if let Some(i) = self.members.iter().position(|m| {
                    ledger.worker(m.incarnation).phase.load(Ordering::Acquire) == wanted
                }) {
                    return i;
                }
                std::hint::spin_loop();
            }
        }
        self.rng.below(self.members.len() as u64) as usize
    }

    /// SIGKILLs workers every 0-6 ms until `until`, replacing the dead.
    fn storm(&mut self, until: Instant) {
        while Instant::now() < until && self.report.deadlocks == 0 {
            if self.run.ledger.get().next.load(Ordering::Acquire) >= MAX_BLOCKS as u64 {
                self.report
                    .note("shm: the run used all its block numbers: the kills ended early");
                break;
            }
            self.replace_ended();
            if self.members.is_empty() {
                break;
            }
            std::thread::sleep(self.rng.duration_below(Duration::from_millis(6)));
            let i = self.victim();
            let incarnation = self.members[i].incarnation;
            let phase = self
                .run
                .ledger
                .worker(incarnation)
                .phase
                .load(Ordering::Acquire);
            if let Err(e) = signals::send(&self.members[i].process, libc::SIGKILL) {
                self.report
                    .corrupt(format!("SIGKILL could not be sent: {e}"));
                return;
            }
            let member = self.members.swap_remove(i);
            // 0 too: it may have ended by itself just before the signal.
            if self.join(&member, &[-9, 0], "after SIGKILL") == -9 {
                if let Some(k) = PHASES.iter().position(|&(p, _)| p == phase) {
                    self.kills[k] += 1;
                }
                if let Some(seen) = self.seen_at_kill.get_mut(incarnation as usize) {
                    *seen = Some(phase);
                }
            }
            self.start();
        }
    }

    /// Tells the workers to stop; each must end with 0 within the stall time.
    fn wind_down(&mut self) {
        self.run.ledger.get().stop.store(1, Ordering::Release);
        for member in std::mem::take(&mut self.members) {
            self.join(&member, &[0], "after being told to stop");
        }
    }
}

/// How incarnation `who` ended, in words, from its exit code and the phase it was seen
/// in when it was killed.
fn ending(endings: &[Option<i32>], seen_at_kill: &[Option<u32>], who: u32) -> String {
    match endings.get(who as usize).copied().flatten() {
        Some(-9) => {
            let phase = seen_at_kill.get(who as usize).copied().flatten();
            let what = PHASES
                .iter()
                .find(|&&(p, _)| Some(p) == phase)
                .map_or("?", |&(_, w)| w);
            format!("killed {what}")
        }
        Some(code) => format!("ended with {code}"),
        None => "never seen to end".to_string(),
    }
}

/// The files of `/dev/shm` whose names start with `prefix`.
fn files_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| name.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Leaked blocks described one by one in the details (the rest are counted).
const DESCRIBED: usize = 5;

const STATE_NAMES: [&str; 8] = [
    "never used",
    "in create",
    "created, being written",
    "written",
    "being unlinked",
    "unlinked by its creator",
    "abandoned to the tracker",
    "create failed",
];

pub fn run(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let until = config.until(started);
    let mut rng = Rng::new(config.seed);
    let mut report = Report::new("shm");
    // This process and this moment: no other run, and nobody else, has these names.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let prefix = format!("mpt_shm_{}_{nanos:x}_", std::process::id());
    if !files_with(&prefix).is_empty() {
        return Err(format!("/dev/shm holds files named {prefix}… already"));
    }
    let run = Run {
        ledger: Ledger::new()?,
        prefix: prefix.clone(),
        seed: rng.seed(),
    };
    let warnings = Warnings::start(&prefix)?;
    watchdog.watch({
        let ledger = run.ledger.clone();
        move || ledger.get().ops.load(Ordering::Acquire)
    });
    let width = rng.between(3, 4) as usize;
    let mut crew = Crew {
        run,
        stderr: Some(warnings.writer()),
        members: Vec::new(),
        endings: Vec::new(),
        seen_at_kill: Vec::new(),
        rng,
        stall: config.stall,
        kills: [0; PHASES.len()],
        report: &mut report,
    };
    for _ in 0..width {
        crew.start();
    }
    watchdog.phase("killing creators and readers of shared memory blocks");
    crew.storm(until);
    watchdog.phase("winding down");
    crew.wind_down();

    // Every worker has ended: each tree's tracker removes what its tree left.
    watchdog.phase("waiting for the trackers to remove the blocks left behind");
    let ended = Instant::now();
    let deadline = ended + config.stall;
    let mut left = files_with(&prefix);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        watchdog.beat();
        left = files_with(&prefix);
    }
    let swept_in = ended.elapsed();
    // The trackers end once they have unlinked and warned: then the workers' stderr ends.
    watchdog.phase("waiting for the trackers to end");
    crew.stderr = None;
    let warned = warnings.collect(config.stall);
    settle(&mut crew, &left, swept_in, warned.as_deref());
    let kills = crew.kills;
    let incarnations = crew.endings.len();
    drop(crew);
    report.killed = kills.iter().sum();
    report.note(format!(
        "shm: {width} workers at a time, {incarnations} in all; SIGKILLed {}",
        PHASES
            .iter()
            .zip(kills)
            .map(|(&(_, what), n)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(report)
}

/// The checks and figures, from the books, what `/dev/shm` still holds (`left`, `swept_in`
/// after the last worker ended) and the numbers of the blocks the trackers warned about
/// (`None`: some tracker did not end); removes what is left.
fn settle(crew: &mut Crew<'_>, left: &[String], swept_in: Duration, warned: Option<&[u64]>) {
    let ledger = &crew.run.ledger;
    let books = ledger.get();
    let numbers = books.next.load(Ordering::Acquire).min(MAX_BLOCKS as u64);
    let mut by_state = [0u64; STATE_NAMES.len()];
    for id in 0..numbers {
        if let Some(n) = by_state.get_mut(usize::from(ledger.state(id))) {
            *n += 1;
        }
    }
    let created: u64 = [CREATED, WRITTEN, UNLINKING, UNLINKED, ABANDONED]
        .iter()
        .map(|&s| by_state[usize::from(s)])
        .sum();
    let report = &mut *crew.report;
    let mut leaked_by_state = [0u64; STATE_NAMES.len()];
    let mut described = 0;
    for name in left {
        let id = name
            .strip_prefix(&crew.run.prefix)
            .and_then(|n| n.parse::<u64>().ok());
        let state = id.map_or(UNUSED, |id| ledger.state(id));
        leaked_by_state[usize::from(state)] += 1;
        if state == UNUSED {
            report.corrupt(format!(
                "/dev/shm/{name} has the run's prefix but no worker ever recorded it"
            ));
        } else if let Some(id) = id
            && described < DESCRIBED
        {
            described += 1;
            let creator = books.creators[id as usize].load(Ordering::Acquire);
            report.note(format!(
                "leaked: /dev/shm/{name} ({}), whose creator, worker {}, was {}",
                STATE_NAMES[usize::from(state)],
                creator.saturating_sub(1),
                ending(&crew.endings, &crew.seen_at_kill, creator.saturating_sub(1))
            ));
        }
        // Leave the machine clean for the next run.
        let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
    }
    if !left.is_empty() {
        report.note(format!(
            "leaked: {} blocks with the run's prefix left in /dev/shm, by their state in the \
             books: {}",
            left.len(),
            STATE_NAMES
                .iter()
                .zip(leaked_by_state)
                .filter(|&(_, n)| n > 0)
                .map(|(what, n)| format!("{n} {what}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    report.leaked_regions += left.len() as u64;
    let left_numbers: HashSet<u64> = left
        .iter()
        .filter_map(|name| name.strip_prefix(&crew.run.prefix)?.parse().ok())
        .collect();
    let by_trackers = check_warnings(ledger, numbers, &left_numbers, warned, crew.stall, report);
    let damaged = books.damaged.load(Ordering::Acquire);
    if damaged > 0 {
        report.corrupt(format!(
            "{damaged} blocks were found by a reader with other bytes or items than their creator wrote"
        ));
    }
    let errors = books.errors.load(Ordering::Acquire);
    if errors > 0 {
        report.corrupt(format!(
            "{errors} creates, writes, unlinks or opens failed (see stderr)"
        ));
    }
    let unlinked = books.unlinked.load(Ordering::Acquire);
    let verified = books.verified.load(Ordering::Acquire);
    let gone = books.gone.load(Ordering::Acquire);
    report.operations += books.ops.load(Ordering::Acquire);
    report.acknowledged += created;
    report.delivered += verified;
    report.taken += by_trackers;
    report.note(format!(
        "shm: {numbers} block names taken: {} killed in create, {} killed while being \
         written, {} written, {} killed in unlink, {unlinked} unlinked by their creator, {} \
         abandoned, {} failed to create; {by_trackers} unlinked by the trackers (each named in a warning), {} left in \
         /dev/shm {:.1} s after the last worker ended; {} reads: {verified} whole, {gone} \
         found gone, {damaged} damaged",
        by_state[usize::from(CREATING)],
        by_state[usize::from(CREATED)],
        by_state[usize::from(WRITTEN)],
        by_state[usize::from(UNLINKING)],
        by_state[usize::from(ABANDONED)],
        by_state[usize::from(FAILED)],
        left.len(),
        swept_in.as_secs_f64(),
        verified + gone + damaged,
    ));
}

/// Checks the trackers' warnings (`warned`: the block numbers they named) against the
/// books: each names a block of the run, once, that its creator did not unlink; each block
/// that was whole and that its creator did not unlink was warned about, unless it is still
/// in /dev/shm (`left`). Returns how many blocks the trackers unlinked.
fn check_warnings(
    ledger: &Ledger,
    numbers: u64,
    left: &HashSet<u64>,
    warned: Option<&[u64]>,
    stall: Duration,
    report: &mut Report,
) -> u64 {
    let Some(warned) = warned else {
        report.deadlock(format!(
            "{} s after the blocks were swept, some process still held the workers' stderr: a \
             resource tracker (or a worker) had not ended",
            stall.as_secs()
        ));
        return 0;
    };
    let mut seen = HashSet::new();
    let (mut twice, mut wrong) = (0u64, 0u64);
    for &id in warned {
        if !seen.insert(id) {
            twice += 1;
        } else if id >= numbers
            || ![CREATING, CREATED, WRITTEN, UNLINKING, ABANDONED].contains(&ledger.state(id))
        {
            wrong += 1;
            eprintln!(
                "torture: shm: a tracker warned about block {id}, {}",
                STATE_NAMES[usize::from(ledger.state(id))]
            );
        }
    }
    let unwarned = (0..numbers)
        .filter(|id| {
            [CREATED, WRITTEN, ABANDONED].contains(&ledger.state(*id))
                && !seen.contains(id)
                && !left.contains(id)
        })
        .count();
    if twice > 0 {
        report.corrupt(format!(
            "{twice} blocks were warned about twice by the trackers"
        ));
    }
    if wrong > 0 {
        report.corrupt(format!(
            "the trackers warned about {wrong} blocks that were no leaks (unlinked by their \
             creator, never created, or no block of the run)"
        ));
    }
    if unwarned > 0 {
        report.corrupt(format!(
            "{unwarned} blocks their creator had not unlinked are gone without a tracker's \
             warning"
        ));
    }
    seen.len() as u64
}
