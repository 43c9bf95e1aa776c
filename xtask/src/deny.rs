//! The dependency tree against `deny.toml` (licences, sources, bans and security
//! advisories), with cargo-deny, which `ci` installs when it is missing.

use std::process::{Command, Stdio};

use crate::run::{cargo, step};

/// The cargo-deny release `ci` installs when none is there.
const CARGO_DENY: &str = "0.20.2";

/// Checks the tree; an advisory database that cannot be fetched is said loudly, and the
/// copy on disk is used when there is one.
pub fn check() -> Result<(), String> {
    if !installed() {
        let mut install = cargo();
        install.args(["install", "--locked", "cargo-deny", "--version", CARGO_DENY]);
        step(&format!("cargo install cargo-deny {CARGO_DENY}"), install)?;
    }
    let mut offline_checks = cargo();
    offline_checks.args(["deny", "check", "licenses", "bans", "sources"]);
    step("cargo deny check licenses bans sources", offline_checks)?;

    let fetched = cargo()
        .args(["deny", "fetch", "db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut advisories = cargo();
    advisories.args(["deny", "check", "advisories"]);
    if !fetched {
        if !database_on_disk() {
            println!(
                "\n==> cargo deny check advisories: NOT CHECKED: the advisory database \
                 (github.com/RustSec/advisory-db) cannot be fetched from this machine and \
                 there is no copy on disk"
            );
            return Ok(());
        }
        println!(
            "\n==> the advisory database cannot be fetched now: checking against the copy on disk"
        );
        advisories.arg("--disable-fetch");
    }
    step("cargo deny check advisories", advisories)
}

fn installed() -> bool {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether an advisory database was fetched here before (cargo-deny keeps each under
/// `$CARGO_HOME/advisory-dbs/NAME`, with one folder per crate under `crates/`).
fn database_on_disk() -> bool {
    crate::run::cargo_home()
        .map(|home| home.join("advisory-dbs"))
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .is_some_and(|entries| entries.flatten().any(|e| e.path().join("crates").is_dir()))
}
