//! Seed tour, section 1: start a process.
//!
//! Python: `p = Process(target=task, args=('小王',)); p.start(); print('主')`.
//!
//! `start()` only asks the operating system for a new process (it allocates memory and
//! copies the parent's data, which is why starting a process is costly) and returns, so
//! main goes on at once and its line normally comes first. From then on both processes run
//! in parallel: now and then the child's first line wins the race. main never calls `join`,
//! yet the program does not end before the child is done: at normal exit, as in Python,
//! non-daemon children are joined.
//!
//! `multiproc::init()` opens `main`: under the Spawn and ForkServer start methods a child is
//! a new run of this program, and must run `task`, not `main`. (multiproc takes such a run
//! over before `main` already; `init()` is the documented entry that makes sure.) The start
//! method is Fork unless `MULTIPROC_START_METHOD` names another:
//!
//! ```text
//! cargo run --example 01_start_process
//! MULTIPROC_START_METHOD=spawn cargo run --example 01_start_process
//! ```

use std::time::Duration;

use multiproc::prelude::*;

fn task(name: String) {
    println!("{name} is running");
    std::thread::sleep(Duration::from_secs(3));
    println!("{name} is done");
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p = Process::target(task, ("小王".to_string(),));
    p.start()?;
    println!(
        "主 (main) started {} and goes on (start method: {})",
        p.name(),
        get_start_method()
    );
    Ok(())
}
