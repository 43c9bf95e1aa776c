//! A counter shared by several processes: each adds to a `Value<u64>` under its lock.
//!
//! `*counter.lock() += 1` is a read-modify-write done while holding the value's lock, so no
//! increment is lost however the processes interleave; the total always equals processes ×
//! increments.
//!
//! ```text
//! cargo run --example shared_counter                       # 4 processes x 10000
//! cargo run --example shared_counter -- --processes 2 --increments 100000
//! ```
//!
//! Prints one line per process as it finishes, then `total=T expected=E`.

use multiproc::prelude::*;

fn number(args: &mut impl Iterator<Item = String>, what: &str) -> Result<u64, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{what} needs a whole number"))
}

/// A child: adds 1 to the shared counter `increments` times, each under its lock.
fn add(counter: Value<u64>, increments: u64) {
    for _ in 0..increments {
        *counter.lock() += 1;
    }
    let me = current_process();
    println!("{} (pid {}) added {increments}", me.name(), me.pid());
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    multiproc::init();
    let (mut processes, mut increments) = (4u64, 10_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--processes" => processes = number(&mut args, "--processes")?,
            "--increments" => increments = number(&mut args, "--increments")?,
            other => {
                return Err(format!(
                    "unknown option {other:?}\nusage: shared_counter [--processes N] [--increments M]"
                )
                .into());
            }
        }
    }

    let counter = Value::new(0u64)?;
    let mut children = Vec::new();
    for _ in 0..processes {
        let mut p = Process::target(add, (counter.clone(), increments));
        p.start()?;
        children.push(p);
    }
    for p in &children {
        let code = p.join()?;
        if code != 0 {
            return Err(format!("{} ended with exit code {code}", p.name()).into());
        }
    }
    println!(
        "total={} expected={}",
        counter.get(),
        processes * increments
    );
    Ok(())
}
