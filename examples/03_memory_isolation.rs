//! Seed tour, section 3: processes do not share memory.
//!
//! Python sets a global `n = 100`; the child's `task` sets `global n; n = 0`; after `join`
//! the parent still prints `100`. A child works on its own copy of every global: a forked
//! child on a copy of the parent's, a spawned one on a fresh run of the program's.
//!
//! ```text
//! cargo run --example 03_memory_isolation
//! ```

use std::sync::atomic::{AtomicI32, Ordering};

use multiproc::prelude::*;

/// The global `n` of the tutorial.
static N: AtomicI32 = AtomicI32::new(100);

fn task() {
    // Changes the child's copy of the global; the parent's stays as it was.
    N.store(0, Ordering::SeqCst);
    println!("child: n = {}", N.load(Ordering::SeqCst));
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let mut p = Process::target(task, ());
    p.start()?;
    p.join()?;
    println!("main: n = {}", N.load(Ordering::SeqCst));
    Ok(())
}
