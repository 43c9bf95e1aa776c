//! Seed tour, section 8: a mutex (互斥锁) around ticket booking.
//!
//! Processes share no memory, but they share the file system: the tutorial keeps the ticket
//! count in `db.json`. Every buyer first *searches* (reads the file and prints what it
//! sees: all buyers at once), then *buys*: reads the count, waits for the "network", and
//! writes the count minus one. Two buyers that read the same count both "buy" the same
//! ticket and one write is lost, so the purchase is made one buyer at a time under a
//! [`Lock`]: `join` would serialise whole processes, the lock only the critical part.
//!
//! ```text
//! cargo run --example 08_ticket_booking                          # 1 ticket, 10 buyers
//! cargo run --example 08_ticket_booking -- --tickets 3 --buyers 5
//! cargo run --example 08_ticket_booking -- --tickets 10 --buyers 12 --no-lock   # oversold
//! cargo run --example 08_ticket_booking -- --db /tmp/db.json     # keep the file
//! ```
//!
//! The last line is for programs to read:
//! `summary: tickets=T buyers=B successes=S remaining=R lock=true|false`. With the lock,
//! `S = min(T, B)` and `R = T - S`; without it, lost updates show as `S > T - R`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use multiproc::prelude::*;

/// Searching takes a moment (the tutorial sleeps 1 s; shorter here, same story).
const SEARCH_TIME: Duration = Duration::from_millis(100);

#[derive(serde::Serialize, serde::Deserialize)]
struct Db {
    count: u32,
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn read_db(path: &Path) -> Result<Db, AnyError> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Replaces the file in one step (write a temporary file, rename it over the old one), so
/// that a concurrent reader sees the old or the new count, never half a file; the lock is
/// about the read-modify-write, which this cannot make safe on its own.
fn write_db(path: &Path, db: &Db) -> Result<(), AnyError> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, serde_json::to_string(db)?)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// "Network delay" between reading and writing: 50 to 150 ms, different for each buyer.
fn network_delay() -> Duration {
    let seed = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Duration::from_millis(50 + (seed >> 32) % 101)
}

fn search(name: &str, db: &Path) -> Result<(), AnyError> {
    let count = read_db(db)?.count;
    std::thread::sleep(SEARCH_TIME);
    println!("{name} sees {count} ticket(s) left");
    Ok(())
}

/// Buys one ticket if there is one left: `true` if this buyer got it.
fn buy(name: &str, db: &Path) -> Result<bool, AnyError> {
    let mut state = read_db(db)?;
    if state.count == 0 {
        println!("{name} found no ticket left");
        return Ok(false);
    }
    state.count -= 1;
    std::thread::sleep(network_delay());
    write_db(db, &state)?;
    println!("{name} bought a ticket");
    Ok(true)
}

/// One buyer: search at once with everybody, then buy, one at a time if locked.
fn buyer(name: &str, db: &Path, lock: Option<&Lock>) -> Result<bool, String> {
    search(name, db).map_err(|e| e.to_string())?;
    let _guard = lock.map(Lock::acquire); // None: everybody at once
    buy(name, db).map_err(|e| e.to_string())
}

/// A buyer's process. The lock and the queue are arguments: under every start method they
/// are the same lock and the same queue as main's. The outcome goes back through the queue.
fn buyer_process(
    name: String,
    db: PathBuf,
    lock: Option<Lock>,
    outcomes: Queue<Result<bool, String>>,
) {
    let outcome = buyer(&name, &db, lock.as_ref());
    outcomes
        .put(outcome)
        .expect("the outcome queue has no item limit");
}

struct Options {
    tickets: u32,
    buyers: u32,
    lock: bool,
    db: Option<PathBuf>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        tickets: 1,
        buyers: 10,
        lock: true,
        db: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<u32, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a whole number"))
        };
        match arg.as_str() {
            "--tickets" => options.tickets = number("--tickets")?,
            "--buyers" => options.buyers = number("--buyers")?,
            "--no-lock" => options.lock = false,
            "--db" => options.db = Some(args.next().ok_or("--db needs a path")?.into()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn main() -> Result<(), AnyError> {
    multiproc::init();
    let options = parse_options().map_err(|e| {
        format!("{e}\nusage: 08_ticket_booking [--tickets N] [--buyers N] [--no-lock] [--db PATH]")
    })?;
    // The file lives in a fresh temporary directory unless --db names one to keep.
    let temporary_dir = match options.db {
        Some(_) => None,
        None => {
            let dir =
                std::env::temp_dir().join(format!("multiproc-tickets-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Some(dir)
        }
    };
    let db = match (&options.db, &temporary_dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join("db.json"),
        (None, None) => unreachable!("a temporary directory is made when --db is absent"),
    };
    write_db(
        &db,
        &Db {
            count: options.tickets,
        },
    )?;
    println!(
        "db: {} holds {} ticket(s); {} buyers; lock: {}",
        db.display(),
        options.tickets,
        options.buyers,
        if options.lock { "on" } else { "off" }
    );

    let lock = Lock::new()?;
    let outcomes: Queue<Result<bool, String>> = Queue::new(0)?;
    let mut buyers = Vec::new();
    for i in 0..options.buyers {
        let name = format!("路人{i} (passer-by {i})");
        let lock = options.lock.then(|| lock.clone());
        let mut p = Process::target(buyer_process, (name, db.clone(), lock, outcomes.clone()));
        p.start()?;
        buyers.push(p);
    }
    for p in &buyers {
        let code = p.join()?;
        if code != 0 {
            return Err(format!("buyer {} ended with exit code {code}", p.name()).into());
        }
    }
    // Every buyer put its outcome before it ended: they are all in the queue now.
    let mut successes = 0;
    for _ in 0..options.buyers {
        match outcomes.try_get()? {
            Ok(true) => successes += 1,
            Ok(false) => {}
            Err(e) => return Err(format!("a buyer failed: {e}").into()),
        }
    }

    let remaining = read_db(&db)?.count;
    if let Some(dir) = temporary_dir {
        std::fs::remove_dir_all(dir)?;
    }
    println!(
        "summary: tickets={} buyers={} successes={successes} remaining={remaining} lock={}",
        options.tickets, options.buyers, options.lock
    );
    Ok(())
}
