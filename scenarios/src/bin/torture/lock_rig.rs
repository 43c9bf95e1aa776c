//! The lock rig: worker processes hammer a counter protected by a [`Lock`], and every
//! increment is also written, in the same critical section, into the worker's own line of
//! a ledger. Both live in one shared [`Array`] (whose own lock is taken inside the `Lock`,
//! so a holder killed inside holds two robust mutexes).
//!
//! ## The invariant, and how a dead holder is repaired
//! Outside the critical section, `counter == Σ ledger[w]`: the counter equals the
//! increments of the processes that completed them. A worker makes its change in steps,
//! each a volatile store ordered by a fence:
//!
//! 1. journal: which worker, and the counter's and its ledger line's values before;
//! 2. `active = 1`;
//! 3. `counter += 1`, some random work, `ledger[w] += 1`;
//! 4. `active = 0`.
//!
//! A worker killed before step 2 changed nothing; after step 4 its change is whole. In
//! between, the next acquirer finds `active == 1` and must have been told
//! (`previous_owner_died`) that the holder died: it restores both values from the journal.
//! So a half-done increment is undone, never counted half. `active == 1` without
//! `previous_owner_died` is counted as corruption (the lock passed on while the holder was
//! inside, or the dead holder was not reported).
//!
//! Each worker also writes, after each release, how many increments it finished into its
//! slot (lock-free): a worker that ended normally must have exactly that many in its
//! ledger line, one killed may have one more (killed between the release and that store).

use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use multiproc::{Array, Lock, LockGuard, Process, ValueGuard};

use crate::report::Report;
use crate::rng::Rng;
use crate::shared::{Board, MAX_INCARNATIONS, Slots};
use crate::signals;
use crate::{Sabotage, spawn_worker};

/// Words of the book before the ledger.
const COUNTER: usize = 0;
const ACTIVE: usize = 1;
const WORKER: usize = 2;
const COUNTER_BEFORE: usize = 3;
const LEDGER_BEFORE: usize = 4;
const LEDGER: usize = 8;

/// One worker incarnation, as the parent knows it.
struct Record {
    /// How it ended: `Some(true)` killed by a signal, `Some(false)` ended normally.
    killed: Option<bool>,
}

/// The shared objects of the rig and what the parent knows of its workers.
pub struct LockRig {
    lock: Lock,
    book: Array<u64>,
    slots: Slots,
    board: Board,
    records: Vec<Record>,
    /// The most turns of random work inside the critical section.
    spin: u64,
    sabotage: Sabotage,
}

/// Volatile access to the book's words through the guard's pointer: the order of the
/// stores is what a killed holder leaves behind, so the compiler must keep it.
struct Words(*mut u64);

impl Words {
    fn of(guard: &mut ValueGuard<'_, [u64]>) -> Words {
        Words(guard.as_mut_ptr())
    }

    fn get(&self, i: usize) -> u64 {
        // SAFETY: `i` is in the book (callers index below LEDGER + MAX_INCARNATIONS, its
        // length), and this thread holds the book's lock for as long as `self` is used.
        unsafe { self.0.add(i).read_volatile() }
    }

    fn set(&self, i: usize, value: u64) {
        // SAFETY: as in `get`.
        unsafe { self.0.add(i).write_volatile(value) }
        fence(Ordering::SeqCst);
    }
}

/// Holds the `Lock` and the book's lock; repairs what a dead holder left half done.
struct Held<'a> {
    _lock: LockGuard<'a>,
    book: ValueGuard<'a, [u64]>,
}

/// Takes both locks (the `Lock` waiting at most `wait`, or without limit) and repairs the
/// book if its last holder died inside the update. `None` when the wait ran out.
fn enter<'a>(
    lock: &'a Lock,
    book: &'a Array<u64>,
    board: &Board,
    wait: Option<Duration>,
    sabotage: Sabotage,
) -> Option<Held<'a>> {
    let outer = match wait {
        Some(wait) => lock.acquire_timeout(wait)?,
        None => lock.acquire(),
    };
    let mut inner = book.lock();
    let died = outer.previous_owner_died() || inner.previous_owner_died();
    let counters = board.get();
    if died {
        Board::bump(&counters.takeovers);
    }
    let words = Words::of(&mut inner);
    if words.get(ACTIVE) != 0 && sabotage != Sabotage::SkipRollback {
        if !died {
            Board::bump(&counters.undetected);
            eprintln!(
                "torture: lock: the book was left mid-update and previous_owner_died() was false"
            );
        }
        let worker = words.get(WORKER) as usize;
        if worker < MAX_INCARNATIONS {
            words.set(COUNTER, words.get(COUNTER_BEFORE));
            words.set(LEDGER + worker, words.get(LEDGER_BEFORE));
        } else {
            Board::bump(&counters.errors);
            eprintln!("torture: lock: the journal names worker {worker}, which cannot be");
        }
        words.set(ACTIVE, 0);
        Board::bump(&counters.rollbacks);
    }
    Some(Held {
        _lock: outer,
        book: inner,
    })
}

impl LockRig {
    /// A rig whose critical section does up to `spin` turns of work.
    pub fn new(spin: u64, sabotage: Sabotage) -> Result<LockRig, String> {
        Ok(LockRig {
            lock: Lock::new().map_err(|e| format!("Lock::new: {e}"))?,
            book: Array::new(LEDGER + MAX_INCARNATIONS).map_err(|e| format!("Array::new: {e}"))?,
            slots: Slots::new()?,
            board: Board::new()?,
            records: Vec::new(),
            spin,
            sabotage,
        })
    }

    /// The progress counter the watchdog watches.
    pub fn progress(&self) -> impl Fn() -> u64 + Send + 'static {
        let board = self.board.clone();
        move || Board::read(&board.get().ops)
    }

    /// The pid inside the critical section now (0: none).
    pub fn holder(&self) -> u32 {
        Board::read(&self.board.get().holder) as u32
    }

    /// Whether another worker incarnation can be recorded.
    pub fn has_room(&self) -> bool {
        self.records.len() < MAX_INCARNATIONS
    }

    /// Starts a worker incarnation; returns its number.
    pub fn spawn(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String> {
        let me = self.records.len() as u32;
        let (lock, book, slots, board) = (
            self.lock.clone(),
            self.book.clone(),
            self.slots.clone(),
            self.board.clone(),
        );
        let (spin, sabotage) = (self.spin, self.sabotage);
        let process = spawn_worker(format!("locker-{me}"), move || {
            signals::take_term_and_int(graceful);
            let slot = slots.at(me);
            slot.running.store(1, Ordering::Release);
            let counters = board.get();
            let mut rng = Rng::new(seed);
            let mut done = 0u64;
            let pid = u64::from(std::process::id());
            while !board.stopping() && !signals::stop_requested() {
                let Some(mut held) = enter(&lock, &book, &board, None, sabotage) else {
                    continue;
                };
                counters.holder.store(pid, Ordering::Release);
                let words = Words::of(&mut held.book);
                let w = me as usize;
                words.set(WORKER, u64::from(me));
                words.set(COUNTER_BEFORE, words.get(COUNTER));
                words.set(LEDGER_BEFORE, words.get(LEDGER + w));
                words.set(ACTIVE, 1);
                let step = if sabotage == Sabotage::DoubleCount && done == 2 {
                    2
                } else {
                    1
                };
                words.set(COUNTER, words.get(COUNTER) + step);
                rng.spin(spin);
                words.set(LEDGER + w, words.get(LEDGER + w) + 1);
                words.set(ACTIVE, 0);
                if sabotage == Sabotage::Wedge && me == 0 && done == 100 {
                    // Stopped while holding the lock, and nothing will continue it.
                    // SAFETY: raise(2) with a signal number; no memory is involved.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
                counters.holder.store(0, Ordering::Release);
                drop(held);
                done += 1;
                slot.done.store(done, Ordering::Release);
                Board::bump(&counters.ops);
            }
        })?;
        self.records.push(Record { killed: None });
        Ok((me, process))
    }

    /// Whether incarnation `incarnation` runs its body (its signal handlers are in place).
    pub fn running(&self, incarnation: u32) -> bool {
        self.slots.at(incarnation).running.load(Ordering::Acquire) != 0
    }

    /// Worker `incarnation` ended with `code`; `allowed` are the codes it may have.
    pub fn ended(&mut self, incarnation: u32, code: i32, allowed: &[i32], report: &mut Report) {
        if !allowed.contains(&code) {
            report.corrupt(format!(
                "lock worker {incarnation} ended with exit code {code}, expected one of {allowed:?}"
            ));
        }
        if let Some(record) = self.records.get_mut(incarnation as usize) {
            record.killed = Some(code < 0);
        }
    }

    /// Takes the lock as a third party (at most `wait`), repairs if needed, and checks the
    /// invariant. Returns whether the lock was taken.
    pub fn check(&self, wait: Duration, report: &mut Report) -> bool {
        let Some(mut held) = enter(
            &self.lock,
            &self.book,
            &self.board,
            Some(wait),
            self.sabotage,
        ) else {
            return false;
        };
        let words = Words::of(&mut held.book);
        let counter = words.get(COUNTER);
        let ledger: u64 = (0..self.records.len()).map(|w| words.get(LEDGER + w)).sum();
        if counter != ledger {
            report.corrupt(format!(
                "the counter is {counter} while the ledgers of the workers add up to {ledger}"
            ));
            // Align them, so that one fault is reported once.
            words.set(COUNTER, ledger);
        }
        true
    }

    /// Tells the workers to finish their increment and end.
    pub fn stop(&self) {
        self.board.get().stop.store(1, Ordering::Release);
    }

    /// The figures, once every worker has ended.
    pub fn finish(&self, report: &mut Report) {
        let counters = self.board.get();
        let Some(mut held) = enter(
            &self.lock,
            &self.book,
            &self.board,
            Some(Duration::from_secs(10)),
            self.sabotage,
        ) else {
            report.deadlock("the lock stayed held after every worker had ended");
            return;
        };
        let words = Words::of(&mut held.book);
        let counter = words.get(COUNTER);
        let mut ledger_total = 0u64;
        for (w, record) in self.records.iter().enumerate() {
            let ledger = words.get(LEDGER + w);
            ledger_total += ledger;
            let done = self.slots.at(w as u32).done.load(Ordering::Acquire);
            let agrees = match record.killed {
                Some(false) => ledger == done,
                Some(true) => ledger == done || ledger == done + 1,
                None => {
                    report.corrupt(format!("lock worker {w} was never seen to end"));
                    true
                }
            };
            if !agrees {
                report.corrupt(format!(
                    "lock worker {w} finished {done} increments but its ledger holds {ledger}"
                ));
            }
        }
        drop(held);
        report.operations += counter;
        report.acknowledged += ledger_total;
        report.delivered += counter;
        report.duplicates += counter.saturating_sub(ledger_total);
        report.lost += ledger_total.saturating_sub(counter);
        let undetected = Board::read(&counters.undetected);
        if undetected > 0 {
            report.corrupt(format!(
                "{undetected} times the lock passed on from a holder that died mid-update \
                 without previous_owner_died()"
            ));
        }
        let errors = Board::read(&counters.errors);
        if errors > 0 {
            report.corrupt(format!("{errors} impossible journal entries"));
        }
        report.note(format!(
            "lock: {} workers, counter {counter} = sum of ledgers {ledger_total}; {} takeovers \
             from a dead holder, {} half-done increments rolled back",
            self.records.len(),
            Board::read(&counters.takeovers),
            Board::read(&counters.rollbacks),
        ));
    }
}
