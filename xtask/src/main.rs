//! `cargo xtask …`: the project's own commands (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask examples [--start-method fork|spawn|forkserver]`: builds every example of
//!   the workspace, runs each one under the start method (default fork) and checks what it
//!   printed against the story its seed-tour section tells. Fails when an example is wrong,
//!   or when an example has no check.
//! - `cargo xtask ci`: what CI runs: format check, clippy with `-D warnings` (and the
//!   workspace's lints), no import cycle between files (`cargo xtask modules`), the whole test
//!   suite with its doctests (under `cargo test`, and under `cargo nextest` where it is
//!   installed), the suites that run under every start method again under Spawn and
//!   ForkServer, the docs without warnings, the examples under every start method, a smoke
//!   run of `cargo xtask bench --quick`, 10 s of each fuzz target and a 30 s pass of
//!   `cargo xtask torture`.
//! - `cargo xtask bench`: multiproc against Python's `multiprocessing` and the kernel's
//!   limit, workload by workload, in one run (see `bench/mod.rs`).
//! - `cargo xtask torture [--seconds N] [--seed S]`: the fault and load suite (see
//!   `torture.rs`).
//! - `cargo xtask fuzz [--seconds N] [--only NAME,NAME]`: the fuzz targets under `fuzz/`,
//!   coverage-guided, for a bounded time each (see `fuzz.rs`).

mod bench;
mod ci;
mod examples;
mod fuzz;
mod modules;
mod run;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  examples   build, run and check every example (the seed tour);
             --start-method fork|spawn|forkserver (default fork)
  ci         fmt check, clippy -D warnings, module graph, tests + doctests (also under spawn and
             forkserver), docs, examples under every start method, bench --quick,
             10 s of each fuzz target, 30 s of torture
  bench      multiproc against Python's multiprocessing and the kernel's limit
             [--quick] [--json FILE] [--plot FILE.svg] [--rounds N] [--only NAME,…]
  fuzz       [--seconds N] [--only NAME,NAME]: every fuzz target under fuzz/, N s
             each (default 60; ci runs 10), coverage-guided, on the stable toolchain
  modules    [--print]: each crate's module graph; fails on an import cycle between files
  torture    [--seconds N] [--seed S] [--only NAME,NAME]: the fault and load suite
             (default 60 s; ci runs 30 s); prints a table, fails on any loss,
             duplicate, corruption, deadlock or leak
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("examples") => examples::run(&args[1..]),
        Some("ci") => ci::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("torture") => torture::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("modules") => modules::run(&args[1..]),
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
