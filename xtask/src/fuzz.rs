//! `cargo xtask fuzz [--seconds N] [--only NAME,NAME]`: the fuzz targets under `fuzz/`,
//! each run for N seconds (default 60) by libFuzzer, coverage-guided, on the stable
//! toolchain: every decode path that takes bytes or descriptors from another process.
//!
//! The targets are built with the compiler's coverage instrumentation (`sancov`, the
//! flags `cargo fuzz` passes, which stable rustc takes) for this machine's own target, so
//! that build scripts and proc macros are built plainly. Each target keeps its corpus in
//! `target/fuzz/corpus/NAME`, so that later runs start where earlier ones got to; a crash
//! or a hang (an input that runs over 10 s) fails the run and leaves the input in
//! `target/fuzz/artifacts/NAME/`, to be replayed with the target's binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::run::{cargo, step, workspace_root};

/// `cargo xtask fuzz`'s command line.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds of fuzzing for each target (1 to 86400).
    #[arg(long, value_name = "N", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) seconds: u64,
    /// Only these targets.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub(crate) only: Option<Vec<String>>,
}

impl Options {
    /// Every target for `seconds` each, as CI runs them.
    pub fn for_seconds(seconds: u64) -> Options {
        Options {
            seconds,
            only: None,
        }
    }
}

/// The targets, as `fuzz/Cargo.toml` names them.
const TARGETS: &[&str] = &[
    "codec",
    "ring_decoder",
    "connection_stream",
    "handle_receipt",
    "spawn_value",
];

/// What `cargo fuzz` asks of the compiler, less what only nightly takes (sanitizers).
const INSTRUMENTATION: &str = "--cfg fuzzing -Cpasses=sancov-module \
     -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
     -Cllvm-args=-sanitizer-coverage-pc-table \
     -Cllvm-args=-sanitizer-coverage-trace-compares \
     -Cdebug-assertions -Coverflow-checks";

pub fn run(options: &Options) -> Result<(), String> {
    let seconds = options.seconds;
    let targets: Vec<&str> = match &options.only {
        None => TARGETS.to_vec(),
        Some(names) => {
            if let Some(unknown) = names.iter().find(|n| !TARGETS.contains(&n.as_str())) {
                return Err(format!("no fuzz target {unknown:?}; they are {TARGETS:?}"));
            }
            TARGETS
                .iter()
                .copied()
                .filter(|t| names.iter().any(|n| n == t))
                .collect()
        }
    };

    let root = workspace_root();
    let host = host_triple()?;
    let target_dir = root.join("target").join("fuzz");
    let mut build = cargo();
    build
        .args([
            "build",
            "--release",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
        ])
        .args(["--target", &host])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", INSTRUMENTATION)
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    step(
        "build the fuzz targets (coverage-instrumented, release)",
        build,
    )?;

    for name in targets {
        let binary = target_dir.join(&host).join("release").join(name);
        let corpus = target_dir.join("corpus").join(name);
        let artifacts = target_dir.join("artifacts").join(name);
        for dir in [&corpus, &artifacts] {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fuzz_one(name, &binary, &corpus, &artifacts, seconds)?;
    }
    Ok(())
}

/// Runs one target for `seconds`; prints libFuzzer's closing line, or all it said when it
/// found something.
fn fuzz_one(
    name: &str,
    binary: &Path,
    corpus: &Path,
    artifacts: &Path,
    seconds: u64,
) -> Result<(), String> {
    println!("\n==> fuzz {name} for {seconds} s");
    let started = Instant::now();
    let mut artifact_prefix = std::ffi::OsString::from("-artifact_prefix=");
    artifact_prefix.push(artifacts);
    artifact_prefix.push("/");
    let output = Command::new(binary)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(artifact_prefix)
        .arg(corpus)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("fuzz {name}: could not run {}: {e}", binary.display()))?;
    let said = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = said.lines().rev().take(60).collect();
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        return Err(format!(
            "fuzz {name}: found an input that fails ({}); it is in {}",
            output.status,
            artifacts.display()
        ));
    }
    let runs = said
        .lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .map_or("?", str::trim);
    let corpus_size = std::fs::read_dir(corpus).map_or(0, Iterator::count);
    println!(
        "==> fuzz {name}: ok, {runs} inputs in {:.0} s, nothing failed; corpus {corpus_size} inputs",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// This machine's target triple, as rustc names it.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV named no host".to_string())
}
