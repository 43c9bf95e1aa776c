//! The workloads' shapes, as benches/README.md defines them, shared by every peer: what an
//! item is and how it is checked, and what is timed. Each peer supplies only how it puts
//! and gets.

use std::time::{Duration, Instant};

use crate::sys::{Child, Fallible, Gate, Report};

/// One run of a workload: `count` operations; the time of its timed part.
pub type Workload = fn(u64) -> Fallible<Duration>;

/// The 16 bytes of a small item's string.
pub const TEXT: &str = "sixteen bytes!!!";

/// The size of a large item.
pub const MIB: usize = 1 << 20;

/// The small item number `i`: `(i, "sixteen bytes!!!")`, made at each put as multiproc's
/// producer makes it.
pub fn small(i: u64) -> (u64, String) {
    (i, TEXT.to_string())
}

/// The check of the `n`-th small item got (one producer: they come in order).
pub fn check_small(n: u64, (i, text): &(u64, String)) -> Fallible<()> {
    if *i != n || text != TEXT {
        return Err(format!("item {n} came as ({i}, {text:?})").into());
    }
    Ok(())
}

/// The check of a large item got: 1 MiB of zeros (its first and last bytes are looked at).
pub fn check_mib(bytes: &[u8]) -> Fallible<()> {
    if bytes.len() != MIB || bytes.first() != Some(&0) || bytes.last() != Some(&0) {
        return Err(format!("a 1 MiB item came with {} bytes", bytes.len()).into());
    }
    Ok(())
}

/// A 1→1 queue workload: one producer and one consumer process, forked in set-up; the
/// producer waits for the start signal, the consumer counts what it gets until the stream
/// ends and reports the count. Timed from the signal until both are joined.
pub struct Transfer {
    gate: Gate,
    report: Report,
}

impl Transfer {
    pub fn new() -> Fallible<Transfer> {
        Ok(Transfer {
            gate: Gate::new()?,
            report: Report::new()?,
        })
    }

    /// In the producer: waits for the start, then puts items `0..count` with `put`.
    pub fn produce(&self, count: u64, mut put: impl FnMut(u64) -> Fallible<()>) -> Fallible<()> {
        self.gate.wait()?;
        for i in 0..count {
            put(i)?;
        }
        Ok(())
    }

    /// In the consumer: gets items with `get` until it says the stream ended (`None`),
    /// checks the `n`-th with `check(n, &item)`, and reports how many came.
    pub fn consume<T>(
        &self,
        mut get: impl FnMut() -> Fallible<Option<T>>,
        check: impl Fn(u64, &T) -> Fallible<()>,
    ) -> Fallible<()> {
        let mut n = 0;
        while let Some(item) = get()? {
            check(n, &item)?;
            n += 1;
        }
        Ok(self.report.send(n)?)
    }

    /// In main: gives the start signal, joins both, and checks that `count` items arrived.
    pub fn run(self, count: u64, producer: Child, consumer: Child) -> Fallible<Duration> {
        let start = Instant::now();
        self.gate.open(1)?;
        producer.join()?;
        consumer.join()?;
        let elapsed = start.elapsed();
        match self.report.recv()? {
            n if n == count => Ok(elapsed),
            n => Err(format!("{n} items arrived of {count}").into()),
        }
    }
}

/// A ping-pong workload's timed part: main sends `i` and gets it back with `round_trip`,
/// checked, for i in 0..count (the echoing child was started before); then the child is
/// joined.
pub fn pingpong(
    count: u64,
    echo: Child,
    mut round_trip: impl FnMut(u64) -> Fallible<u64>,
) -> Fallible<Duration> {
    let start = Instant::now();
    for i in 0..count {
        let back = round_trip(i)?;
        if back != i {
            return Err(format!("sent {i}, the echo sent back {back}").into());
        }
    }
    let elapsed = start.elapsed();
    echo.join()?;
    Ok(elapsed)
}
