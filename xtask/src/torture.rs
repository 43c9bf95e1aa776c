//! `cargo xtask torture [--seconds N] [--seed S] [--only NAME,NAME]`: the fault and load
//! suite. Builds the `torture` program (package `multiproc-scenarios`) in release, runs each
//! of its scenarios in a fresh process for an equal share of the time, with a deadline of
//! its own, and prints one table: what each scenario did, what was lost, duplicated,
//! damaged, wedged or leaked. Fails if anything was.
//!
//! The seed (from the clock unless given) is printed with the command that replays the
//! run's random choices. Each scenario runs in its own process group: a run that overruns
//! its deadline is described (every process of the group: state, wait channel, system
//! call) and killed, and counted as a deadlock; processes of the group still alive after
//! the scenario ended are counted as leaks.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::run::{cargo, step, workspace_root};

/// The default length of a run, in seconds.
const DEFAULT_SECONDS: f64 = 60.0;

/// No progress for this long is a deadlock (the `torture` program's own watchdog).
const STALL_SECONDS: u64 = 30;

/// `cargo xtask torture`'s command line.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds for the whole run, shared equally by the scenarios (1 to 3600).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SECONDS, value_parser = seconds)]
    pub(crate) seconds: f64,
    /// The seed of the run's random choices (default: from the clock), to replay a run.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Only these scenarios.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    only: Option<Vec<String>>,
}

impl Options {
    /// Every scenario for `seconds` in all, with a seed from the clock, as CI runs them.
    pub fn for_seconds(seconds: f64) -> Options {
        Options {
            seconds,
            seed: None,
            only: None,
        }
    }

    /// The seed given, or one from the clock.
    fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000_000)
        })
    }
}

/// `--seconds`: a number of seconds from 1 to 3600.
fn seconds(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| (1.0..=3600.0).contains(s))
        .ok_or_else(|| format!("{value:?} is not a number of seconds from 1 to 3600"))
}

/// The figures of one scenario, as its `RESULT` line gave them.
#[derive(Debug, Default)]
struct Row {
    scenario: String,
    figures: Vec<(String, String)>,
    details: String,
    /// Why the run failed outside of its figures (crash, deadline).
    trouble: Vec<String>,
    passed: bool,
    wall: f64,
}

impl Row {
    fn get(&self, key: &str) -> &str {
        self.figures
            .iter()
            .find(|(k, _)| k == key)
            .map_or("?", |(_, v)| v.as_str())
    }

    fn parse(scenario: &str, stdout: &str) -> Row {
        let mut row = Row {
            scenario: scenario.to_string(),
            ..Row::default()
        };
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            row.trouble.push("printed no RESULT line".to_string());
            return row;
        };
        let (figures, details) = line.split_once(" details=").unwrap_or((line, ""));
        row.details = details.to_string();
        for pair in figures.split_whitespace() {
            if let Some((k, v)) = pair.split_once('=') {
                row.figures.push((k.to_string(), v.to_string()));
            }
        }
        row.passed = row.get("passed") == "true";
        row
    }
}

pub fn run(options: &Options) -> Result<(), String> {
    let seed = options.seed();
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "multiproc-scenarios",
        "--bin",
        "torture",
    ]);
    step(
        "cargo build --release -p multiproc-scenarios --bin torture",
        build,
    )?;
    let binary = target_dir().join("release").join("torture");
    let listed = Command::new(&binary)
        .arg("list")
        .output()
        .map_err(|e| format!("running {} list: {e}", binary.display()))?;
    let mut scenarios: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next().map(String::from))
        .collect();
    if let Some(only) = &options.only {
        if let Some(unknown) = only.iter().find(|o| !scenarios.contains(o)) {
            return Err(format!("no scenario {unknown:?}; there are {scenarios:?}"));
        }
        scenarios.retain(|s| only.contains(s));
    }
    if scenarios.is_empty() {
        return Err("the torture program lists no scenario".to_string());
    }
    let share = (options.seconds / scenarios.len() as f64).max(1.0);
    let logs = target_dir().join("torture");
    let _ = std::fs::create_dir_all(&logs);
    println!(
        "\n==> torture: {} scenarios, {share:.1} s each, seed {}\n    replay: cargo xtask torture \
         --seconds {} --seed {}{}",
        scenarios.len(),
        seed,
        options.seconds,
        seed,
        options
            .only
            .as_ref()
            .map(|o| format!(" --only {}", o.join(",")))
            .unwrap_or_default(),
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let row = run_scenario(&binary, scenario, share, seed, &logs);
        println!(
            "    {:<9} {} in {:.1} s",
            row.scenario,
            if row.passed && row.trouble.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
            row.wall
        );
        rows.push(row);
    }
    print_table(&rows);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.passed || !r.trouble.is_empty())
        .map(|r| r.scenario.as_str())
        .collect();
    println!(
        "\ntorture: {} scenarios in {:.0} s, seed {}; the programs' stderr is in {}",
        rows.len(),
        started.elapsed().as_secs_f64(),
        seed,
        logs.display()
    );
    if failed.is_empty() {
        println!("torture: nothing lost, duplicated, damaged, wedged or leaked");
        Ok(())
    } else {
        Err(format!(
            "torture: {} failed (seed {}): {}",
            failed.len(),
            seed,
            failed.join(", ")
        ))
    }
}

/// Where cargo builds: `CARGO_TARGET_DIR` (relative to the workspace root, where the
/// build runs) or `target/`.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

/// Runs one scenario in a process group of its own and reads its row.
fn run_scenario(binary: &Path, scenario: &str, seconds: f64, seed: u64, logs: &Path) -> Row {
    let started = Instant::now();
    // The program's own watchdog ends it within its time, the wind-down and the checks;
    // this deadline is for a program so wedged that its watchdog cannot act.
    let limit = Duration::from_secs_f64(seconds) + Duration::from_secs(5 * STALL_SECONDS + 90);
    let spawned = Command::new(binary)
        .args(["run", scenario, "--seconds", &format!("{seconds:.2}")])
        .args(["--seed", &seed.to_string()])
        .args(["--stall-seconds", &STALL_SECONDS.to_string()])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let mut row = Row::parse(scenario, "");
            row.trouble = vec![format!("could not start {}: {e}", binary.display())];
            return row;
        }
    };
    let group = child.id();
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let mut trouble = Vec::new();
    let status = wait_until(&mut child, started + limit);
    if status.is_none() {
        let mut what = format!(
            "still running after {} s: deadlock. Its processes:",
            limit.as_secs()
        );
        for pid in group_members(group) {
            what.push_str(&format!("\n      {}", describe(pid)));
        }
        trouble.push(what);
        kill_group(group);
        let _ = child.wait();
    }
    // Daemons die with the program (their lifeline); give them a moment, then count.
    let settle = Instant::now() + Duration::from_secs(3);
    while !group_members(group).is_empty() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
    }
    let strays = group_members(group);
    if !strays.is_empty() {
        trouble.push(format!(
            "{} of its processes outlived it: {}",
            strays.len(),
            strays
                .iter()
                .map(|&pid| describe(pid))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        kill_group(group);
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let log = logs.join(format!("{scenario}.stderr"));
    let _ = std::fs::write(&log, &stderr);
    let mut row = Row::parse(scenario, &stdout);
    if let Some(status) = status
        && !status.success()
        && row.passed
    {
        trouble.push(format!("exited with {status} although its figures passed"));
    }
    row.trouble.extend(trouble);
    if !row.passed || !row.trouble.is_empty() {
        // The lines that say what went wrong; the whole of it is in the log.
        let interesting: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("multiproc: warning: process"))
            .take(40)
            .collect();
        if !interesting.is_empty() {
            row.trouble.push(format!(
                "stderr ({}):\n      {}",
                log.display(),
                interesting.join("\n      ")
            ));
        }
    }
    row.wall = started.elapsed().as_secs_f64();
    row
}

fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
}

/// `(state, process group)` of `pid`, from `/proc/<pid>/stat`.
fn state_and_group(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

/// The live (not zombie) processes of process group `group`.
fn group_members(group: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| state_and_group(pid).is_some_and(|(state, g)| g == group && state != 'Z'))
        .collect()
}

/// Where `pid` and its threads stand.
fn describe(pid: u32) -> String {
    let read = |path: String| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let mut out = format!("pid {pid}");
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for tid in tasks {
        let base = format!("/proc/{pid}/task/{tid}");
        let stat = read(format!("{base}/stat"));
        let state = stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let syscall = read(format!("{base}/syscall"));
        out.push_str(&format!(
            "; thread {tid} state {state} wchan {} syscall {}",
            read(format!("{base}/wchan")),
            syscall.split_whitespace().next().unwrap_or("?")
        ));
    }
    out
}

/// SIGKILL to every process of the group (with the system's `kill`, which takes a group).
fn kill_group(group: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The table, then each scenario's details and troubles.
fn print_table(rows: &[Row]) {
    const COLUMNS: &[(&str, &str)] = &[
        ("seconds", "secs"),
        ("operations", "operations"),
        ("killed", "killed"),
        ("acknowledged", "acked"),
        ("delivered", "delivered"),
        ("duplicates", "dup"),
        ("lost", "lost"),
        ("taken", "taken by dead"),
        ("deadlocks", "deadlocks"),
        ("corrupt", "corrupt"),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.scenario.clone()];
            cells.extend(COLUMNS.iter().map(|(key, _)| row.get(key).to_string()));
            cells.push(format!(
                "{}/{}/{}",
                row.get("leaked_fds"),
                row.get("zombies"),
                row.get("leaked_regions")
            ));
            let ok = row.passed && row.trouble.is_empty();
            cells.push(if ok { "ok" } else { "FAILED" }.to_string());
            cells
        })
        .collect();
    let mut titles = vec!["scenario"];
    titles.extend(COLUMNS.iter().map(|(_, title)| *title));
    titles.extend(["leaked fd/zombie/shm", "result"]);
    let widths: Vec<usize> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[&str]| {
        let mut out = String::new();
        for (i, value) in values.iter().enumerate() {
            if i == 0 || i == values.len() - 1 {
                out.push_str(&format!("{value:<w$}  ", w = widths[i]));
            } else {
                out.push_str(&format!("{value:>w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let header = line(&titles);
    println!("\n{header}");
    println!("{}", "-".repeat(header.len()));
    for row in &cells {
        let values: Vec<&str> = row.iter().map(String::as_str).collect();
        println!("{}", line(&values));
    }
    println!();
    for row in rows {
        println!("{}:", row.scenario);
        for detail in row.details.split(" | ").filter(|d| !d.is_empty()) {
            println!("    {detail}");
        }
        let strays = row.get("strays");
        if strays != "0" && strays != "?" {
            println!("    {strays} children still running after the scenario");
        }
        for trouble in &row.trouble {
            println!("    FAILED: {trouble}");
        }
    }
}
