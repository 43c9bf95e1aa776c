//! `cargo xtask bench`: multiproc against Python's `multiprocessing`, against the Rust
//! peers and against the bare kernel path (the physical limit), workload by workload, in
//! one run.
//!
//! Three programs do each workload of `benches/README.md` item for item:
//! `benches/multiproc` (multiproc), `benches/python/baseline.py` (Python) and
//! `benches/limits` (bare system calls, none of our code); a fourth, `benches/peers`, runs
//! the Rust peers (ipc-channel, interprocess, ipmpsc, procspawn) on the workloads where each
//! does the same job. Each is asked for one run of one workload at a time (`PROGRAM
//! WORKLOAD COUNT`, one JSON line back; the peers' program takes the peer first), and the
//! runs are interleaved, multiproc, Python, limit, the peers, multiproc, Python, …, for
//! several rounds, so that whatever else the machine does hits all alike. The table shows
//! each one's median time per operation, the fastest peer's, and three ratios: Python's time
//! over multiproc's (multiproc's speed-up), the best peer's over multiproc's (above 1x,
//! multiproc is ahead of every peer), and multiproc's over the limit's (1x is at the limit).
//!
//! Timings are reported, never judged: the command fails only when a run fails or gives
//! no result. Without `python3` it says so and leaves Python's column empty; a peers'
//! program that does not build or start is reported the same way, and the peer column stays
//! empty where it would have run.

mod peers;
mod plot;
mod report;
mod runner;
mod workloads;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use report::{Impl, Row, number};
use workloads::Workload;

use crate::run::{cargo, step, target_directory, workspace_root};

/// `cargo xtask bench`'s command line.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Fewer operations per run and 3 rounds: a smoke test, under 2 minutes.
    #[arg(long)]
    quick: bool,
    /// Also write every run, the medians and the ratios as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw the table as an SVG bar chart to FILE.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Rounds of runs (default 7, or 3 with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    rounds: Option<u16>,
    /// Only these workloads (names of benches/workloads.txt).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    only: Option<Vec<String>>,
}

impl Options {
    /// `--quick`, as CI runs it.
    pub fn quick() -> Options {
        Options {
            quick: true,
            json: None,
            plot: None,
            rounds: None,
            only: None,
        }
    }

    /// The command that runs the bench with these options.
    fn command_line(&self) -> String {
        let mut line = "cargo xtask bench".to_string();
        if self.quick {
            line.push_str(" --quick");
        }
        for (flag, path) in [("--json", &self.json), ("--plot", &self.plot)] {
            if let Some(path) = path {
                line.push_str(&format!(" {flag} {}", path.display()));
            }
        }
        if let Some(rounds) = self.rounds {
            line.push_str(&format!(" --rounds {rounds}"));
        }
        if let Some(only) = &self.only {
            line.push_str(&format!(" --only {}", only.join(",")));
        }
        line
    }

    /// Rounds of runs.
    fn rounds(&self) -> usize {
        match self.rounds {
            Some(n) => usize::from(n),
            None if self.quick => 3,
            None => 7,
        }
    }

    /// How long one run may take before it is killed and reported.
    fn run_limit(&self) -> Duration {
        Duration::from_secs(if self.quick { 30 } else { 60 })
    }
}

pub fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let mut workloads = workloads::all()?;
    if let Some(only) = &options.only {
        if let Some(unknown) = only
            .iter()
            .find(|n| !workloads.iter().any(|w| &w.name == *n))
        {
            return Err(format!(
                "--only: no workload {unknown:?} in benches/workloads.txt"
            ));
        }
        workloads.retain(|w| only.contains(&w.name));
    }

    let peers_unbuilt = build_programs()?;
    let mut programs = programs(&workloads)?;
    let peers = peers::find(&workloads, peers_unbuilt)?;
    programs.extend(peers.programs);
    let python = python_version();
    if python.is_none() {
        println!("python3 was not found: the python column stays empty");
    }

    println!(
        "\n==> {} rounds of {} workloads, multiproc, python, the limit and the peers in turn{}",
        options.rounds(),
        workloads.len(),
        if options.quick { " (--quick)" } else { "" }
    );
    let mut rows: Vec<Row> = workloads.into_iter().map(Row::new).collect();
    let mut failures = Vec::new();
    for round in 1..=options.rounds() {
        println!("round {round}/{}", options.rounds());
        for row in &mut rows {
            let count = row.workload.count(options.quick);
            let mut line = format!("  {:<22}", row.workload.name);
            for program in &programs {
                let who = program.who.name();
                if !program.runs(&row.workload.name) {
                    // A peer runs only where it does the same job: no need to say where not.
                    if !matches!(program.who, Impl::Peer(_)) {
                        line.push_str(&format!("  {who} -"));
                    }
                    continue;
                }
                match program.run_once(&row.workload, count, options.run_limit()) {
                    Ok(value) => {
                        row.samples_mut(&program.who).push(value);
                        line.push_str(&format!("  {who} {}", number(value)));
                    }
                    Err(why) => {
                        line.push_str(&format!("  {who} FAILED"));
                        failures.push(format!(
                            "{who} {} (round {round}): {why}",
                            row.workload.name
                        ));
                    }
                }
            }
            println!("{line}  {}", row.workload.unit_label());
        }
    }

    let python_label = python.as_deref().unwrap_or("(no python3)");
    println!(
        "\nmedians of {} rounds{}; python {python_label}, {} cores\n",
        options.rounds(),
        if options.quick { ", --quick" } else { "" },
        cores()
    );
    print!("{}", report::table(&rows));
    println!(
        "\npython/mp: Python's time over multiproc's (how many times faster multiproc is)\n\
         best peer: the fastest Rust peer's median, and which (benches/README.md: who does what)\n\
         peer/mp: the best peer's time over multiproc's (above 1.00x multiproc is ahead of every peer)\n\
         mp/limit: multiproc's time over the bare kernel path's (1.00x is at the limit)"
    );
    if let Some(why) = &peers.missing {
        println!("{why}");
    }
    for program in programs.iter().filter(|p| !matches!(p.who, Impl::Peer(_))) {
        let missing: Vec<&str> = rows
            .iter()
            .map(|r| r.workload.name.as_str())
            .filter(|name| !program.runs(name))
            .collect();
        if !missing.is_empty() {
            println!(
                "{} does not run: {} (not in this build)",
                program.who.name(),
                missing.join(", ")
            );
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    if let Some(path) = &options.json {
        let about = serde_json::json!({
            "command": options.command_line(),
            "quick": options.quick,
            "rounds": options.rounds(),
            "python": python,
            "peers": programs
                .iter()
                .filter(|p| matches!(p.who, Impl::Peer(_)))
                .map(|p| p.who.name())
                .collect::<Vec<_>>(),
            "peers_missing": peers.missing,
            "cores": cores(),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .ok(),
            "seconds": elapsed,
        });
        let text = serde_json::to_string_pretty(&report::json(&rows, about))
            .map_err(|e| format!("encoding the JSON: {e}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &options.plot {
        let title = format!(
            "multiproc, Python {python_label} multiprocessing and the best Rust peer against the kernel's limit ({} cores, median of {} rounds)",
            cores(),
            options.rounds()
        );
        plot::draw(&rows, &title, path)?;
        println!("wrote {}", path.display());
    }
    println!("bench: done in {elapsed:.0} s");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} runs failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

/// Builds the Rust programs in release mode. The peers' program builds with the others, so
/// that its crates compile beside multiproc's; when that fails, the others are built alone
/// and the peers are left out: why is returned (only the others' failure is an error).
fn build_programs() -> Result<Option<String>, String> {
    const MAIN: [&str; 4] = ["--package", "multiproc-bench", "--package", "bench-limits"];
    let mut all = cargo();
    all.args(["build", "--release"])
        .args(MAIN)
        .args(["--package", "bench-peers"]);
    let why = match step(
        "cargo build --release -p multiproc-bench -p bench-limits -p bench-peers",
        all,
    ) {
        Ok(()) => return Ok(None),
        Err(why) => why,
    };
    let mut main = cargo();
    main.args(["build", "--release"]).args(MAIN);
    step(
        "cargo build --release -p multiproc-bench -p bench-limits",
        main,
    )?;
    Ok(Some(why))
}

/// How long a program may take to list what it runs.
const LIST_LIMIT: Duration = Duration::from_secs(60);

/// One of the programs (for the peers, one peer of `bench-peers`), and the workloads it runs.
struct Program {
    who: Impl,
    command: PathBuf,
    /// Its arguments before the workload's (the script, for Python).
    args: Vec<String>,
    runs: BTreeSet<String>,
}

impl Program {
    fn new(who: Impl, command: PathBuf, args: Vec<String>) -> Result<Program, String> {
        let mut program = Program {
            who,
            command,
            args,
            runs: BTreeSet::new(),
        };
        let listed = program.capture(&["--list"], LIST_LIMIT)?;
        program.runs = listed
            .stdout
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        Ok(program)
    }

    fn runs(&self, workload: &str) -> bool {
        self.runs.contains(workload)
    }

    /// An error when the program lists a workload that benches/workloads.txt does not.
    fn check_listed(&self) -> Result<(), String> {
        let all = workloads::all()?;
        match self
            .runs
            .iter()
            .find(|n| !all.iter().any(|w| &w.name == *n))
        {
            Some(unknown) => Err(format!(
                "{} runs {unknown}, which benches/workloads.txt does not list",
                self.who.name()
            )),
            None => Ok(()),
        }
    }

    /// Runs the program with `args` after its own; an error unless it exits with 0.
    fn capture(&self, args: &[&str], limit: Duration) -> Result<runner::Output, String> {
        let all: Vec<&str> = self
            .args
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect();
        let out = runner::run(&self.command, &all, &workspace_root(), limit)?;
        if !out.status.success() {
            return Err(format!(
                "{} {} failed ({}): {}",
                self.command.display(),
                all.join(" "),
                out.status,
                out.stderr.trim()
            ));
        }
        Ok(out)
    }

    /// One run of `workload`: its time per operation, checked against what was asked.
    fn run_once(&self, workload: &Workload, count: u64, limit: Duration) -> Result<f64, String> {
        let out = self.capture(&[&workload.name, &count.to_string()], limit)?;
        if !out.stderr.trim().is_empty() {
            println!(
                "    {} said on stderr: {}",
                self.who.name(),
                out.stderr.trim()
            );
        }
        let line = out
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or("it printed no result")?;
        let result: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("its result is not JSON ({e}): {line:?}"))?;
        let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
        if result["workload"] != workload.name.as_str()
            || result["impl"] != self.who.name()
            || result["count"].as_u64() != Some(count)
            || !(seconds.is_finite() && seconds > 0.0)
        {
            return Err(format!(
                "expected workload {}, impl {}, count {count} and a time, got {}",
                workload.name,
                self.who.name(),
                line
            ));
        }
        Ok(workload.per_op(seconds, count))
    }
}

/// The three main programs, in the order of [`Impl::MAIN`] (Python only where `python3` is),
/// checked against the table: the limit and Python run every workload of it; none runs a
/// workload it does not list.
fn programs(workloads: &[Workload]) -> Result<Vec<Program>, String> {
    let release = target_directory()?.join("release");
    let script = workspace_root().join("benches/python/baseline.py");
    let mut programs = vec![Program::new(
        Impl::Multiproc,
        release.join("multiproc-bench"),
        vec![],
    )?];
    if python_version().is_some() {
        programs.push(Program::new(
            Impl::Python,
            PathBuf::from("python3"),
            vec![script.display().to_string()],
        )?);
    }
    programs.push(Program::new(
        Impl::Limit,
        release.join("bench-limits"),
        vec![],
    )?);
    for program in &programs {
        program.check_listed()?;
        // multiproc may lack a workload (a start method it does not have); the others may not.
        let missing = workloads.iter().find(|w| !program.runs(&w.name));
        if let (false, Some(missing)) = (program.who == Impl::Multiproc, missing) {
            return Err(format!(
                "{} does not run {}: every workload needs its {} side",
                program.who.name(),
                missing.name,
                program.who.name()
            ));
        }
    }
    Ok(programs)
}

/// Python's version, when `python3` runs and has `multiprocessing`.
fn python_version() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import multiprocessing, platform; print(platform.python_version())",
        ])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !version.is_empty()).then_some(version)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        options: Options,
    }

    fn parse(text: &str) -> Result<Options, clap::Error> {
        Line::try_parse_from(std::iter::once("bench").chain(text.split_whitespace()))
            .map(|l| l.options)
    }

    #[test]
    fn options_default_to_seven_rounds_and_three_when_quick() {
        assert_eq!(parse("").unwrap().rounds(), 7);
        let quick = parse("--quick --json a.json --plot=b.svg").unwrap();
        assert_eq!(quick.rounds(), 3);
        assert_eq!(quick.json, Some(PathBuf::from("a.json")));
        assert_eq!(quick.plot, Some(PathBuf::from("b.svg")));
        let only = parse("--rounds 2 --only pool_map,lock_contended").unwrap();
        assert_eq!(only.rounds(), 2);
        assert_eq!(
            only.command_line(),
            "cargo xtask bench --rounds 2 --only pool_map,lock_contended"
        );
        assert_eq!(only.only.unwrap(), ["pool_map", "lock_contended"]);
    }

    #[test]
    fn bad_options_are_refused_naming_the_flag() {
        for (bad, flag) in [
            ("--json", "--json"),
            ("--rounds 0", "--rounds"),
            ("--rounds x", "--rounds"),
            ("--fast", "--fast"),
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains(flag), "{bad}: {error}");
        }
    }
}
