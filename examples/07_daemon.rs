//! Seed tour, section 7: daemon processes.
//!
//! A daemon is a child whose life ends with its parent's: "the emperor and the eunuch are
//! not born together, but they die together". The daemon child sleeps 3 s; main ends after
//! 1 s, so the daemon is terminated and never prints that it died a natural death.
//!
//! ```text
//! cargo run --example 07_daemon
//! ```

use std::time::Duration;

use multiproc::prelude::*;

fn task(name: String) {
    println!("{name} is alive");
    std::thread::sleep(Duration::from_secs(3));
    println!("{name} died a natural death");
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p1 = Process::target(task, ("老太监 (the old eunuch)".to_string(),)).with_daemon(true);
    p1.start()?;
    std::thread::sleep(Duration::from_secs(1));
    println!("皇帝 (the emperor) is dying");
    Ok(())
}
