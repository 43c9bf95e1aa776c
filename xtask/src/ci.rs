//! `cargo xtask ci`: every check CI makes, in the order that fails fastest. The test suites
//! of [`UNDER_EVERY_START_METHOD`] and the examples run under every start method.

use std::process::Stdio;
use std::time::Instant;

use crate::run::{cargo, step};

/// The packages whose tests also run under the Spawn and ForkServer start methods (given
/// as `MULTIPROC_START_METHOD`): add a package once its handles travel. Doctests are left
/// to the default run: they show closures, which need Fork.
const UNDER_EVERY_START_METHOD: &[&str] = &[
    "proc-core",
    "proc-sync",
    "proc-ipc",
    "proc-shared",
    "proc-patterns",
];

/// How long `ci` fuzzes each target.
const FUZZ_SECONDS: u64 = 10;

/// The start methods besides the default, Fork.
const OTHER_START_METHODS: [&str; 2] = ["spawn", "forkserver"];

pub fn run() -> Result<(), String> {
    let started = Instant::now();

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --all -- --check", fmt)?;

    let mut clippy = cargo();
    // Every feature (python: the pickle interop), so that no feature-gated code goes unread.
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    step(
        "cargo clippy --workspace --all-targets --all-features -- -D warnings",
        clippy,
    )?;

    // Licences, sources and advisories of every dependency (deny.toml).
    crate::deny::check()?;

    // Files import one way within each crate.
    println!("\n==> cargo xtask modules");
    crate::modules::run(&crate::modules::Options::default())?;

    // Unit, integration and doc tests, with every feature (the python feature's tests talk
    // to a real python3), under the default start method whatever the caller's environment
    // says.
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"])
        .env_remove("MULTIPROC_START_METHOD");
    step("cargo test --workspace --all-features", test)?;

    // The suite must pass under nextest too, which runs each test in its own process.
    let nextest_installed = nextest_installed();
    if nextest_installed {
        let mut nextest = cargo();
        nextest
            .args(["nextest", "run", "--workspace"])
            .env_remove("MULTIPROC_START_METHOD");
        step("cargo nextest run --workspace", nextest)?;
    } else {
        println!("\n==> cargo nextest run: skipped, cargo-nextest is not installed");
    }

    let packages: Vec<&str> = UNDER_EVERY_START_METHOD
        .iter()
        .flat_map(|package| ["-p", package])
        .collect();
    for method in OTHER_START_METHODS {
        let mut test = cargo();
        test.args(["test", "--tests"])
            .args(&packages)
            .env("MULTIPROC_START_METHOD", method);
        step(
            &format!(
                "MULTIPROC_START_METHOD={method} cargo test --tests {}",
                packages.join(" ")
            ),
            test,
        )?;
        if nextest_installed {
            let mut nextest = cargo();
            nextest
                .args(["nextest", "run"])
                .args(&packages)
                .env("MULTIPROC_START_METHOD", method);
            step(
                &format!(
                    "MULTIPROC_START_METHOD={method} cargo nextest run {}",
                    packages.join(" ")
                ),
                nextest,
            )?;
        }
    }

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    step(
        "cargo doc --workspace --no-deps --all-features (warnings denied)",
        doc,
    )?;

    // Every crate meant for crates.io packs and builds from its package alone: no path-only
    // dependency, no file outside it that it needs.
    let publishable = publishable_packages()?;
    let mut package = cargo();
    package.args(["package", "--allow-dirty"]);
    for name in &publishable {
        package.args(["--package", name]);
    }
    step(
        &format!("cargo package ({})", publishable.join(", ")),
        package,
    )?;

    for method in ["fork", "spawn", "forkserver"] {
        println!("\n==> cargo xtask examples --start-method {method}");
        crate::examples::run(&crate::examples::Options::under(method))?;
    }

    // Benchmarks report and never judge: this smoke run fails only when a workload does.
    println!("\n==> cargo xtask bench --quick");
    crate::bench::run(&crate::bench::Options::quick())?;

    // Every decode path that takes bytes or descriptors from another process, fuzzed for a
    // bounded time (coverage-guided, from the corpus earlier runs here left).
    println!("\n==> cargo xtask fuzz --seconds {FUZZ_SECONDS}");
    crate::fuzz::run(&crate::fuzz::Options::for_seconds(FUZZ_SECONDS))?;

    // A short pass of the fault and load suite, with a fresh seed each time (printed, so
    // that a failure can be replayed).
    println!("\n==> cargo xtask torture --seconds 30");
    crate::torture::run(&crate::torture::Options::for_seconds(30.0))?;

    println!(
        "\nci: every check passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The workspace's packages that may be published: those without `publish = false`.
fn publishable_packages() -> Result<Vec<String>, String> {
    let metadata = crate::run::metadata()?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or_else(|| "cargo metadata lists no packages".to_string())?;
    let names: Vec<String> = packages
        .iter()
        .filter(|p| {
            p["publish"]
                .as_array()
                .is_none_or(|registries| !registries.is_empty())
        })
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    if names.is_empty() {
        return Err("no package of the workspace is publishable".to_string());
    }
    Ok(names)
}

fn nextest_installed() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
