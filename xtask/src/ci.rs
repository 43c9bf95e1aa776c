//! `cargo xtask ci`: every check CI makes, in the order that fails fastest.

use std::process::Stdio;
use std::time::Instant;

use crate::run::{cargo, step};

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("ci takes no arguments, got {arg:?}"));
    }
    let started = Instant::now();

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --all -- --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        clippy,
    )?;

    // Unit, integration and doc tests.
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    step("cargo test --workspace", test)?;

    // The suite must pass under nextest too, which runs each test in its own process.
    if nextest_installed() {
        let mut nextest = cargo();
        nextest.args(["nextest", "run", "--workspace"]);
        step("cargo nextest run --workspace", nextest)?;
    } else {
        println!("\n==> cargo nextest run: skipped, cargo-nextest is not installed");
    }

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    step("cargo doc --workspace --no-deps (warnings denied)", doc)?;

    println!("\n==> cargo xtask examples");
    crate::examples::run(&[])?;

    // A short pass of the fault and load suite, with a fresh seed each time (printed, so
    // that a failure can be replayed).
    println!("\n==> cargo xtask torture --seconds 30");
    crate::torture::run(&["--seconds".to_string(), "30".to_string()])?;

    println!(
        "\nci: every check passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn nextest_installed() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
