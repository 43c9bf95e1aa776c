//! What a scenario found: one row of the table `cargo xtask torture` prints, written as one
//! `RESULT key=value …` line on stdout so that the xtask can read it back.

use std::fmt::Write as _;
use std::time::Duration;

use multiproc::Process;

use crate::procfs;

/// The figures of one scenario run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub scenario: String,
    pub seconds: f64,
    /// What the scenario did: increments, puts and gets, tasks, processes started.
    pub operations: u64,
    /// Processes ended from outside: SIGKILL, or SIGTERM/SIGINT with the default action.
    pub killed: u64,
    /// Items whose put (or submission) was acknowledged; increments a worker's ledger holds.
    pub acknowledged: u64,
    /// Items delivered (tasks that returned); what the shared counter says.
    pub delivered: u64,
    pub duplicates: u64,
    /// Acknowledged items neither delivered nor accounted for by a death.
    pub lost: u64,
    /// Acknowledged items accounted for by a death: taken by a consumer that was killed
    /// before it could record them, or tasks failed with their killed worker.
    pub taken: u64,
    pub deadlocks: u64,
    /// Damaged or impossible data, broken invariants, unexpected errors and exit codes.
    pub corrupt: u64,
    pub leaked_fds: u64,
    pub zombies: u64,
    pub leaked_regions: u64,
    /// Children still running after the scenario.
    pub strays: u64,
    /// Free text: how the figures came about, and every failure in words.
    pub details: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            ..Report::default()
        }
    }

    /// A failure in words, counted as corruption.
    pub fn corrupt(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("torture: {}: {what}", self.scenario);
        self.corrupt += 1;
        self.note(what);
    }

    /// Waits for `process` to end, at most `stall`, and returns its exit code. A process
    /// still running then is a deadlock (`who`, described from /proc), killed and reaped;
    /// a join that fails is corruption (-1).
    pub fn join_within(
        &mut self,
        process: &Process,
        stall: Duration,
        who: impl std::fmt::Display,
        while_doing: &str,
    ) -> i32 {
        match process.join_timeout(stall) {
            Ok(Some(code)) => code,
            Ok(None) => {
                let pid = process.pid().unwrap_or(0);
                self.deadlock(format!(
                    "{who} did not end within {} s {while_doing}: {}",
                    stall.as_secs(),
                    procfs::describe(pid)
                ));
                let _ = process.kill();
                process.join().unwrap_or(-9)
            }
            Err(e) => {
                self.corrupt(format!("joining a worker failed: {e}"));
                -1
            }
        }
    }

    /// A deadlock in words.
    pub fn deadlock(&mut self, what: impl Into<String>) {
        let what = what.into();
        eprintln!("torture: {}: deadlock: {what}", self.scenario);
        self.deadlocks += 1;
        self.note(format!("deadlock: {what}"));
    }

    /// A line of details (the first few hundred are kept).
    pub fn note(&mut self, what: impl Into<String>) {
        if self.details.len() < 200 {
            self.details.push(what.into());
        }
    }

    /// Whether nothing went wrong, and the scenario did something at all.
    pub fn passed(&self) -> bool {
        self.operations > 0
            && self.duplicates == 0
            && self.lost == 0
            && self.deadlocks == 0
            && self.corrupt == 0
            && self.leaked_fds == 0
            && self.zombies == 0
            && self.leaked_regions == 0
            && self.strays == 0
    }

    /// The `RESULT` line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "RESULT scenario={} seconds={:.1} operations={} killed={} acknowledged={} \
             delivered={} duplicates={} lost={} taken={} deadlocks={} corrupt={} \
             leaked_fds={} zombies={} leaked_regions={} strays={} passed={}",
            self.scenario,
            self.seconds,
            self.operations,
            self.killed,
            self.acknowledged,
            self.delivered,
            self.duplicates,
            self.lost,
            self.taken,
            self.deadlocks,
            self.corrupt,
            self.leaked_fds,
            self.zombies,
            self.leaked_regions,
            self.strays,
            self.passed(),
        );
        // Details last: the rest of the line, `|`-separated, no newlines.
        let _ = write!(line, " details=");
        for (i, detail) in self.details.iter().enumerate() {
            if i > 0 {
                line.push_str(" | ");
            }
            line.push_str(&detail.replace(['\n', '|'], " "));
        }
        line
    }
}
