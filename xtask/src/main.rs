//! `cargo xtask …`: the project's own commands (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask examples`: builds every example of the workspace, runs each one and
//!   checks what it printed against the story its seed-tour section tells. Fails when an
//!   example is wrong, or when an example has no check.
//! - `cargo xtask ci`: what CI runs: format check, clippy with `-D warnings`, the whole test
//!   suite with its doctests (under `cargo test`, and under `cargo nextest` where it is
//!   installed), the docs without warnings, and `cargo xtask examples`.
//! - `cargo xtask torture [--seconds N] [--seed S]`: the fault and load suite (see
//!   `torture.rs`); `cargo xtask ci` ends with a 30 s pass of it.

mod ci;
mod examples;
mod run;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  examples   build, run and check every example (the seed tour)
  ci         fmt check, clippy -D warnings, tests + doctests, docs, examples
  torture    [--seconds N] [--seed S] [--only NAME,NAME]: the fault and load suite
             (default 60 s; ci runs 30 s); prints a table, fails on any loss,
             duplicate, corruption, deadlock or leak
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("examples") => examples::run(&args[1..]),
        Some("ci") => ci::run(&args[1..]),
        Some("torture") => torture::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
