//! The torture program itself: every scenario passes a short run in which its faults land,
//! and every check it makes can fail: each deliberate fault (`--sabotage`, a hidden option
//! for these tests) must make the run fail, in the figure that check owns.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_torture");

/// A run's exit code, its `RESULT` figures, and its stderr.
struct Run {
    code: Option<i32>,
    figures: HashMap<String, String>,
    line: String,
    stderr: String,
}

impl Run {
    fn number(&self, key: &str) -> u64 {
        self.figures
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure {key} in {:?}\n{}", self.line, self.stderr))
    }

    fn passed(&self) -> bool {
        self.figures.get("passed").map(String::as_str) == Some("true")
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn torture(scenario: &str, extra: &[&str]) -> Run {
    let seed = seed().to_string();
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(["run", scenario, "--seconds", "2", "--seed", &seed])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run torture");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line (seed {seed}): {stdout}\n{stderr}"))
        .to_string();
    let figures = line
        .split(" details=")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    eprintln!("seed {seed}: {line}");
    Run {
        code: status.code(),
        figures,
        line,
        stderr,
    }
}

/// A short run of `scenario` passes, did work, and (unless `calm`) ended processes.
fn passes(scenario: &str, calm: bool) {
    let run = torture(scenario, &[]);
    assert!(
        run.passed() && run.code == Some(0),
        "{scenario} failed: {}\n{}",
        run.line,
        run.stderr
    );
    assert!(run.number("operations") > 0);
    if calm {
        assert_eq!(run.number("killed"), 0);
    } else {
        assert!(run.number("killed") > 0, "no fault landed: {}", run.line);
    }
}

/// A sabotaged run fails, and `check` holds of its figures.
fn fails(scenario: &str, sabotage: &str, extra: &[&str], check: impl FnOnce(&Run) -> bool) {
    let mut args = vec!["--sabotage", sabotage];
    args.extend_from_slice(extra);
    let run = torture(scenario, &args);
    assert!(
        !run.passed(),
        "sabotage {sabotage} went unnoticed: {}",
        run.line
    );
    assert_ne!(run.code, Some(0), "sabotage {sabotage}: exit code 0");
    assert!(check(&run), "sabotage {sabotage}: {}", run.line);
}

#[test]
fn the_lock_scenario_passes_with_holders_killed() {
    passes("lock", false);
}

#[test]
fn the_queue_scenario_passes_with_producers_and_consumers_killed() {
    passes("queue", false);
}

#[test]
fn the_joinable_scenario_passes_with_producers_and_consumers_killed() {
    passes("joinable", false);
}

#[test]
fn the_fdlimit_scenario_passes_with_consumers_at_their_descriptor_limit() {
    // The scenario itself fails if no get was refused for want of descriptors.
    passes("fdlimit", false);
}

#[test]
fn the_pool_scenario_passes_with_workers_killed() {
    passes("pool", false);
}

#[test]
fn the_shm_scenario_passes_with_creators_killed_and_leaves_no_block_behind() {
    let run = torture("shm", &[]);
    assert!(
        run.passed() && run.code == Some(0),
        "shm failed: {}\n{}",
        run.line,
        run.stderr
    );
    assert!(run.number("killed") > 0, "no kill landed: {}", run.line);
    assert!(
        run.number("acknowledged") > 0,
        "no block was created: {}",
        run.line
    );
    assert_eq!(run.number("leaked_regions"), 0);
}

#[test]
fn the_churn_scenario_passes_and_leaves_nothing_behind() {
    passes("churn", false);
}

#[test]
fn the_signals_scenario_passes_with_workers_signalled() {
    passes("signals", false);
}

#[test]
fn the_load_scenario_passes_at_full_speed_without_faults() {
    passes("load", true);
}

#[test]
fn items_a_consumer_drops_without_recording_are_reported_lost() {
    fails("queue", "lose", &[], |run| run.number("lost") > 0);
}

#[test]
fn an_item_put_twice_is_reported_as_a_duplicate() {
    fails("queue", "duplicate", &[], |run| {
        run.number("duplicates") > 0
    });
}

#[test]
fn items_a_consumer_at_its_descriptor_limit_drops_are_reported_lost() {
    fails("fdlimit", "lose", &[], |run| run.number("lost") > 0);
}

#[test]
fn a_descriptor_a_consumer_at_its_limit_keeps_open_is_counted_as_leaked() {
    fails("fdlimit", "keep-fd", &[], |run| {
        run.number("leaked_fds") > 0 && run.stderr.contains("left open")
    });
}

#[test]
fn a_counter_ahead_of_the_ledgers_is_reported() {
    fails("lock", "double-count", &[], |run| {
        run.number("duplicates") + run.number("corrupt") > 0
    });
}

#[test]
fn a_half_done_increment_of_a_killed_holder_left_in_place_is_reported() {
    fails("lock", "skip-rollback", &[], |run| {
        run.number("duplicates") + run.number("lost") + run.number("corrupt") > 0
    });
}

#[test]
fn a_holder_that_stops_forever_is_reported_as_a_deadlock_with_its_state() {
    fails("lock", "wedge", &["--stall-seconds", "3"], |run| {
        // The stopped holder is described, by the scenario or by its watchdog.
        run.number("deadlocks") > 0
            && (run.line.contains("state T") || run.stderr.contains("state T"))
    });
}

#[test]
fn a_pool_call_that_never_returns_is_caught_by_the_watchdog() {
    fails("pool", "hang", &["--stall-seconds", "3"], |run| {
        run.code == Some(3)
            && run.number("deadlocks") == 1
            && run.stderr.contains("watchdog")
            && run.stderr.contains("wchan")
    });
}

#[test]
fn leaked_shared_memory_is_counted_as_a_leaked_fd_and_mapping() {
    fails("churn", "leak", &[], |run| {
        run.number("leaked_fds") > 0 && run.number("leaked_regions") > 0
    });
}

#[test]
fn an_unreaped_child_is_counted_as_a_zombie() {
    fails("churn", "zombie", &[], |run| run.number("zombies") > 0);
}

#[test]
fn list_names_the_nine_scenarios_in_order() {
    let out = Command::new(BIN).arg("list").output().expect("run torture");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(String::from))
        .collect();
    assert_eq!(
        names,
        [
            "lock", "queue", "joinable", "fdlimit", "pool", "shm", "churn", "signals", "load"
        ]
    );
}

#[test]
fn an_unknown_scenario_or_option_is_refused_with_the_usage() {
    for args in [
        &["run", "nothing"][..],
        &["run", "lock", "--seconds", "soon"],
        &["run", "lock", "--sabotage", "everything"],
        &["frobnicate"],
    ] {
        let out = Command::new(BIN).args(args).output().expect("run torture");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    }
}
