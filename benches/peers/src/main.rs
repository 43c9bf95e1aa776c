//! `bench-peers`: the Rust peers' side of `cargo xtask bench`. Runs one workload of
//! `benches/README.md` once with one peer (ipc-channel, interprocess, ipmpsc, procspawn)
//! and prints one JSON line, as `benches/multiproc` does with multiproc. A peer runs only
//! the workloads where it does the same job; the README says what each one does.
//!
//! ```text
//! bench-peers --peers                  # the peers, one a line
//! bench-peers PEER --list              # the workloads PEER runs, one a line
//! bench-peers PEER WORKLOAD COUNT      # one run: one JSON line, "impl" is PEER
//! ```

mod peer;
mod shape;
mod sys;

use std::process::ExitCode;

use shape::Workload;
use sys::Fallible;

const USAGE: &str =
    "usage: bench-peers --peers | bench-peers PEER --list | bench-peers PEER WORKLOAD COUNT";

fn main() -> ExitCode {
    // procspawn's children start this executable again: here they become its runner.
    procspawn::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--peers"] => {
            for (name, _) in peer::ALL {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [name, "--list"] => match workloads_of(name) {
            Ok(workloads) => {
                for (workload, _) in workloads {
                    println!("{workload}");
                }
                ExitCode::SUCCESS
            }
            Err(message) => fail(&args, &message),
        },
        [name, workload, count] => match run(name, workload, count) {
            Ok(count_and_seconds) => {
                let (count, seconds) = count_and_seconds;
                let line = serde_json::json!({
                    "workload": workload,
                    "impl": name,
                    "count": count,
                    "seconds": seconds,
                });
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(message) => fail(&args, &message.to_string()),
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn fail(args: &[String], message: &str) -> ExitCode {
    eprintln!("bench-peers {}: {message}", args.join(" "));
    ExitCode::FAILURE
}

/// The workloads of the peer called `name`.
fn workloads_of(name: &str) -> Result<&'static [(&'static str, Workload)], String> {
    peer::ALL
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, workloads)| *workloads)
        .ok_or_else(|| format!("no peer {name:?} (see --peers)\n{USAGE}"))
}

/// One run of `workload` with the peer `name`: the count, and the seconds of its timed part.
fn run(name: &str, workload: &str, count: &str) -> Fallible<(u64, f64)> {
    let count = match count.parse::<u64>() {
        Ok(count) if count > 0 => count,
        _ => {
            return Err(
                format!("COUNT must be a whole number of at least 1, got {count:?}").into(),
            );
        }
    };
    let (_, run) = workloads_of(name)?
        .iter()
        .find(|(known, _)| *known == workload)
        .ok_or_else(|| format!("{name} does not run {workload:?} (see {name} --list)"))?;
    Ok((count, run(count)?.as_secs_f64()))
}
