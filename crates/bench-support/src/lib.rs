//! What the benchmarks under each layer crate's `benches/` share: running their Python twin
//! (a script beside them, doing the same work with `multiprocessing`) in the same run, so
//! that both figures meet the same machine state, and printing the two side by side.
//!
//! A twin prints either plain lines (shown as they are, [`print_twin`]) or one JSON object
//! per workload, `{"workload": …, "value": …, "unit": …}` ([`twin_figures`], [`print_table`]).
//! Without `python3` on the machine the benchmark says so and prints its own column.

use std::path::Path;
use std::process::Command;

/// Runs `python3 script args…` and returns what it printed.
pub fn run_twin(script: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run python3 ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a twin that prints plain lines and prints them, or why there are none.
pub fn print_twin(script: &Path) {
    match run_twin(script, &[]) {
        Ok(lines) => print!("{lines}"),
        Err(why) => println!("python baseline skipped: {why}"),
    }
}

/// A twin's figures by workload name, from its JSON lines.
pub fn twin_figures(script: &Path, args: &[&str]) -> Result<Vec<(String, f64)>, String> {
    run_twin(script, args)?
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            Ok((
                v["workload"].as_str().unwrap_or_default().to_string(),
                v["value"].as_f64().unwrap_or(f64::NAN),
            ))
        })
        .collect()
}

/// One of our figures.
pub struct Figure {
    /// The workload's name, as the twin names it.
    pub workload: String,
    pub value: f64,
    pub unit: &'static str,
    /// Rates (items/s) are better higher, times (µs per round trip) lower.
    pub more_is_better: bool,
}

/// Prints our figures beside the twin's (or beside "-" when it could not run), with the
/// speed-up: how many times better ours is.
pub fn print_table(ours: &[Figure], theirs: &Result<Vec<(String, f64)>, String>) {
    if let Err(why) = theirs {
        println!("python baseline skipped: {why}");
    }
    println!(
        "{:<32} {:>14} {:>14} {:>10}  unit",
        "workload", "multiproc", "python", "speed-up"
    );
    for figure in ours {
        let python = theirs.as_ref().ok().and_then(|t| {
            t.iter()
                .find(|(w, _)| *w == figure.workload)
                .map(|&(_, v)| v)
        });
        let (python, ratio) = match python {
            Some(p) if figure.more_is_better => {
                (format!("{p:.1}"), format!("{:.1}x", figure.value / p))
            }
            Some(p) => (format!("{p:.1}"), format!("{:.1}x", p / figure.value)),
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "{:<32} {:>14.1} {python:>14} {ratio:>10}  {}",
            figure.workload, figure.value, figure.unit
        );
    }
}
