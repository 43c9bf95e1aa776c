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
    package()?;

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

/// `cargo package` of every publishable crate: each packs and builds from its package
/// alone (no path-only dependency, no file outside it that it needs).
///
/// It builds in a target dir of its own, emptied first: cargo takes a registry crate for
/// immutable, so an earlier verification's build of our crates (same name, same version)
/// would be reused however they changed since.
pub fn package() -> Result<(), String> {
    let publishable = publishable_packages()?;
    forget_unpacked_packages(&publishable)?;
    let dir = crate::run::target_directory()?.join("package-verify");
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("emptying {}: {e}", dir.display()));
        }
        _ => {}
    }
    let mut package = cargo();
    package.args(["package", "--allow-dirty", "--target-dir"]);
    package.arg(&dir);
    for name in &publishable {
        package.args(["--package", name]);
    }
    step(
        &format!("cargo package ({})", publishable.join(", ")),
        package,
    )?;
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

/// Removes the copies of our own packages that an earlier `cargo package` unpacked.
///
/// `cargo package` verifies each crate against the others through a local registry under
/// the target dir, whose crates it unpacks into `$CARGO_HOME/registry/src/-HASH/` (the
/// hash is of the registry's path). For a version it has unpacked before it reuses the old
/// copy, so a later run from the same folder would build against our crates as they were
/// then, and fail or pass for the wrong reason. Only folders that hold one of `names` are
/// removed: they are cargo package's, and ours.
fn forget_unpacked_packages(names: &[String]) -> Result<(), String> {
    let Some(src) = crate::run::cargo_home().map(|home| home.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        let local = registry.file_name().to_string_lossy().starts_with('-');
        let ours = std::fs::read_dir(registry.path()).is_ok_and(|crates| {
            crates.flatten().any(|c| {
                let name = c.file_name().to_string_lossy().into_owned();
                names.iter().any(|n| name.starts_with(&format!("{n}-")))
            })
        });
        if local && ours {
            std::fs::remove_dir_all(registry.path())
                .map_err(|e| format!("removing {}: {e}", registry.path().display()))?;
        }
    }
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
