//! Seed tour, section 2: `join`.
//!
//! Python starts three processes that sleep 1, 2 and 3 seconds, then joins them all and
//! prints the elapsed time. The children run in parallel, so the time is the longest of
//! them (about 3 s), not the sum (6 s). `join` makes the *caller* wait; it does not make the
//! children take turns.
//!
//! ```text
//! cargo run --example 02_join
//! ```

use std::time::{Duration, Instant};

use multiproc::prelude::*;

fn task(name: String, seconds: u64) {
    println!("{name} is running");
    std::thread::sleep(Duration::from_secs(seconds));
    println!("{name} is done");
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let start = Instant::now();
    let mut processes = Vec::new();
    for i in 1..=3u64 {
        let mut p = Process::target(task, (format!("小王{i}"), i));
        p.start()?;
        processes.push(p);
    }
    // The main process waits for each child in turn; they all run meanwhile.
    for p in &processes {
        p.join()?;
    }
    println!(
        "主 (main) joined all 3 after {:.2} s (the longest child, not the sum)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
