//! Seed tour, section 5: a child's parent pid is its creator's pid.
//!
//! Python prints `os.getpid()` and `os.getppid()` in the child and in main. The child's
//! parent is main; main's parent is whatever started the program (a shell, cargo, an IDE).
//! Under the ForkServer start method the fork server is what forks the child, yet
//! `current_process().ppid()` still names main, the process that asked for it (where
//! Python's `os.getppid()` would name the server).
//!
//! ```text
//! cargo run --example 05_parent_pid
//! ```

use std::time::Duration;

use multiproc::prelude::*;

fn task() {
    let me = current_process();
    println!("{} is running, parent is {}", me.pid(), me.ppid());
    std::thread::sleep(Duration::from_secs(3));
    let me = current_process();
    println!("{} is done, parent is {}", me.pid(), me.ppid());
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p = Process::target(task, ());
    p.start()?;
    let me = current_process();
    println!("主 (main) {}, parent is {}", me.pid(), me.ppid());
    Ok(())
}
