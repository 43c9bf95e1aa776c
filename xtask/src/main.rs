//! `cargo xtask …`: the project's own commands (the alias is in `.cargo/config.toml`).
//! `cargo xtask --help` lists them, and `cargo xtask <command> --help` explains each one's
//! options.
//!
//! - `cargo xtask examples [--start-method fork|spawn|forkserver]`: builds every example of
//!   the workspace, runs each one under the start method (default fork) and checks what it
//!   printed against the story its seed-tour section tells. Fails when an example is wrong,
//!   or when an example has no check.
//! - `cargo xtask ci`: what CI runs: format check, clippy with `-D warnings` (and the
//!   workspace's lints), the dependency tree against `deny.toml`, no import cycle between files (`cargo xtask modules`), the whole test
//!   suite with its doctests (under `cargo test`, and under `cargo nextest` where it is
//!   installed), the suites that run under every start method again under Spawn and
//!   ForkServer, the docs without warnings, the examples under every start method, a smoke
//!   run of `cargo xtask bench --quick`, 10 s of each fuzz target and a 30 s pass of
//!   `cargo xtask torture`.
//! - `cargo xtask bench`: multiproc against Python's `multiprocessing` and the kernel's
//!   limit, workload by workload, in one run (see `bench/mod.rs`).
//! - `cargo xtask deny`: the dependency tree against `deny.toml` (see `deny.rs`).
//! - `cargo xtask torture [--seconds N] [--seed S]`: the fault and load suite (see
//!   `torture.rs`).
//! - `cargo xtask fuzz [--seconds N] [--only NAME,NAME]`: the fuzz targets under `fuzz/`,
//!   coverage-guided, for a bounded time each (see `fuzz.rs`).

mod bench;
mod ci;
mod deny;
mod examples;
mod fuzz;
mod modules;
mod run;
mod torture;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The project's own commands.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build, run and check every example (the seed tour).
    Examples(examples::Options),
    /// What CI runs: fmt check, clippy -D warnings, cargo deny, module graph, tests and doctests (also
    /// under spawn and forkserver), docs, examples under every start method, bench --quick,
    /// 10 s of each fuzz target, 30 s of torture.
    Ci,
    /// multiproc against Python's multiprocessing and the kernel's limit, in one run.
    Bench(bench::Options),
    /// Packs every publishable crate and builds each from its package alone.
    Package,
    /// The dependency tree against deny.toml: licences, sources, bans, security advisories
    /// (installs cargo-deny when it is missing).
    Deny,
    /// Every fuzz target under fuzz/, coverage-guided, on the stable toolchain.
    Fuzz(fuzz::Options),
    /// Each crate's module graph; fails on an import cycle between files.
    Modules(modules::Options),
    /// The fault and load suite: prints a table, fails on any loss, duplicate, corruption,
    /// deadlock or leak.
    Torture(torture::Options),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Examples(options) => examples::run(&options),
        Command::Ci => ci::run(),
        Command::Bench(options) => bench::run(&options),
        Command::Deny => deny::check(),
        Command::Package => ci::package(),
        Command::Fuzz(options) => fuzz::run(&options),
        Command::Modules(options) => modules::run(&options),
        Command::Torture(options) => torture::run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    #[test]
    fn every_command_answers_help_and_a_bad_flag_is_named() {
        for command in [
            "examples", "ci", "bench", "deny", "fuzz", "modules", "torture",
        ] {
            let help = parse(&format!("{command} --help")).unwrap_err();
            assert_eq!(
                help.kind(),
                clap::error::ErrorKind::DisplayHelp,
                "{command}"
            );
            assert_eq!(help.exit_code(), 0, "{command}");
            let bad = parse(&format!("{command} --no-such-flag")).unwrap_err();
            assert_ne!(bad.exit_code(), 0, "{command}");
            assert!(
                bad.to_string().contains("--no-such-flag"),
                "{command}: {bad}"
            );
        }
    }

    #[test]
    fn a_value_follows_its_flag_with_a_space_or_an_equals_sign() {
        for line in ["torture --seconds 30", "torture --seconds=30"] {
            match parse(line).unwrap() {
                Command::Torture(options) => assert_eq!(options.seconds, 30.0, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in ["fuzz --seconds=5 --only a,b", "fuzz --seconds 5 --only=a,b"] {
            match parse(line).unwrap() {
                Command::Fuzz(options) => {
                    assert_eq!(options.seconds, 5, "{line}");
                    assert_eq!(
                        options.only.as_deref(),
                        Some(&["a".to_string(), "b".to_string()][..])
                    );
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
