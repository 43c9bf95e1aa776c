//! Seed tour, section 4: every process has its own pid.
//!
//! Python prints `current_process().pid` in the child, and the main process's pid in main.
//! The two differ: the child is another process, with an id of its own.
//!
//! ```text
//! cargo run --example 04_pid
//! ```

use std::time::Duration;

use multiproc::prelude::*;

fn task() {
    println!("{} is running", current_process().pid());
    std::thread::sleep(Duration::from_secs(3));
    println!("{} is done", current_process().pid());
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p = Process::target(task, ());
    p.start()?;
    println!("主 (main) {}", current_process().pid());
    Ok(())
}
