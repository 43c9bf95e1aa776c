//! `bench-limits`: the bare kernel path of each workload of `cargo xtask bench`, with none
//! of multiproc's code: the physical limit that multiproc and Python are measured against.
//! `benches/README.md` defines the workloads; this program follows those definitions.
//!
//! ```text
//! bench-limits --list             # the workloads it runs, one a line
//! bench-limits WORKLOAD COUNT     # runs one, prints one JSON line
//! ```

mod lock;
mod ring;
mod sys;
mod workloads;

use std::process::ExitCode;
use std::time::Duration;

/// What this program is called with to end at once: the child of `spawn_join:spawn`, a
/// fresh run of this executable.
pub const EXIT_AT_ONCE: &str = "--exit-at-once";

const USAGE: &str = "usage: bench-limits --list | bench-limits WORKLOAD COUNT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        // SAFETY: ends this fresh process at once; nothing was started that needs an end.
        [EXIT_AT_ONCE] => unsafe { libc::_exit(0) },
        ["--list"] => {
            for (name, _) in workloads::ALL {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [name, count] => match count_of(count).and_then(|count| Ok((count, run(name, count)?))) {
            Ok((count, elapsed)) => {
                println!(
                    "{{\"workload\": \"{name}\", \"impl\": \"limit\", \"count\": {count}, \"seconds\": {}}}",
                    elapsed.as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("bench-limits {name} {count}: {message}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// COUNT, a whole number of at least 1.
fn count_of(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!(
            "COUNT must be a whole number of at least 1, got {text:?}"
        )),
    }
}

/// One run of the workload called `name`; an unknown name is an error. The name goes into
/// the JSON line as it is, so only known (plain) names get that far.
fn run(name: &str, count: u64) -> Result<Duration, String> {
    let (_, workload) = workloads::ALL
        .iter()
        .find(|(known, _)| *known == name)
        .ok_or_else(|| format!("unknown workload (known: see --list)\n{USAGE}"))?;
    workload(count).map_err(|e| e.to_string())
}
