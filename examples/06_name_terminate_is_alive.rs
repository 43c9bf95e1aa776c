//! Seed tour, section 6: a process's name, `terminate` and `is_alive`.
//!
//! Python prints `p.name` (`Process-1`: children are numbered per parent), kills the child
//! with `p.terminate()`, waits 0.1 s ("it takes time") and prints `p.is_alive()`: `False`.
//! The child would have slept 30 s; it is ended by SIGTERM, so its exit code is -15.
//!
//! ```text
//! cargo run --example 06_name_terminate_is_alive
//! ```

use std::time::Duration;

use multiproc::prelude::*;

fn task() {
    let me = current_process();
    println!("{} is running, parent is {}", me.pid(), me.ppid());
    std::thread::sleep(Duration::from_secs(30));
    println!("{} is done, parent is {}", me.pid(), me.ppid());
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p = Process::target(task, ());
    p.start()?;
    println!("name: {}", p.name());
    p.terminate()?;
    // Delivering the signal and ending the child takes a moment.
    std::thread::sleep(Duration::from_millis(100));
    println!("is_alive: {}", p.is_alive());
    println!(
        "exitcode: {}",
        p.exitcode().map_or("none".to_string(), |c| c.to_string())
    );
    let me = current_process();
    println!("主 (main) {}, parent is {}", me.pid(), me.ppid());
    Ok(())
}
