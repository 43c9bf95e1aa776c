//! A process pool: a CPU-bound function mapped over many inputs, first in this one process,
//! then by a `Pool` of one worker per CPU, with a progress bar fed by `imap_unordered`.
//!
//! The function counts the steps of the Collatz sequences of a block of numbers: pure
//! computation, so a pool of N workers on N free CPUs is close to N times faster. The
//! progress bar draws on the terminal only; when the output is captured (a pipe or a file)
//! only the result lines are printed.
//!
//! ```text
//! cargo run --release --example pool
//! ```

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use multiproc::prelude::*;

/// Blocks of numbers to work on, and numbers per block.
const BLOCKS: u64 = 400;
const BLOCK: u64 = 15_000;

/// The total number of Collatz steps of the numbers in block `block`.
fn collatz_steps(block: u64) -> u64 {
    (block * BLOCK + 1..=(block + 1) * BLOCK)
        .map(|mut n| {
            let mut steps = 0;
            while n != 1 {
                n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
                steps += 1;
            }
            steps
        })
        .sum()
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    // The pool first: under the Fork start method its workers are forked while this is the
    // only thread.
    let processes = cpu_count();
    let pool = Pool::new(processes)?;

    let started = Instant::now();
    let serial: Vec<u64> = (0..BLOCKS).map(collatz_steps).collect();
    let serial_time = started.elapsed();
    println!(
        "one process: {} blocks in {:.2} s",
        BLOCKS,
        serial_time.as_secs_f64()
    );

    let bar = ProgressBar::new(BLOCKS);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} blocks, {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let mut unordered = Vec::with_capacity(BLOCKS as usize);
    // One block at a time, so that the bar moves at every block that finishes.
    for steps in pool.imap_unordered_chunked(collatz_steps, 0..BLOCKS, 1) {
        unordered.push(steps?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let pool_time = started.elapsed();
    println!(
        "pool of {processes} processes (imap_unordered): {} blocks in {:.2} s",
        BLOCKS,
        pool_time.as_secs_f64()
    );

    let started = Instant::now();
    let mapped = pool.map(collatz_steps, 0..BLOCKS)?;
    println!(
        "pool of {processes} processes (map): {} blocks in {:.2} s",
        BLOCKS,
        started.elapsed().as_secs_f64()
    );
    println!(
        "speed-up of the pool: {:.2}x",
        serial_time.as_secs_f64() / pool_time.as_secs_f64()
    );

    unordered.sort_unstable();
    let mut sorted_serial = serial.clone();
    sorted_serial.sort_unstable();
    println!(
        "results match: {} (map in order: {}, imap_unordered as a set: {})",
        mapped == serial && unordered == sorted_serial,
        mapped == serial,
        unordered == sorted_serial
    );
    println!("total steps: {}", serial.iter().sum::<u64>());
    pool.close();
    pool.join()?;
    Ok(())
}
