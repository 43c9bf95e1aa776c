//! The books the suite keeps in shared memory, outside the primitives under test, so that
//! they survive the SIGKILL of the process that wrote them: a bitmap of delivered items, a
//! slot of words per worker incarnation, and a board of counters.
//!
//! Every field is an atomic in a block of [`SharedAtomics`], the library's lock-free shared
//! memory: a worker killed at any instruction leaves each word before or after its store.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use multiproc::proc_sync::internal::{AtomicBlock, SharedAtomics};

/// Items a [`Tally`] can tell apart: 2^29 bits, a 64 MiB shared file of which only the
/// pages that items actually reach take memory.
pub const TALLY_ITEMS: u64 = 1 << 29;

const TALLY_WORDS: usize = (TALLY_ITEMS / 64) as usize;

#[repr(C)]
pub struct TallyWords([AtomicU64; TALLY_WORDS]);

// SAFETY: an array of atomics; all-zero (no item marked) is a valid value.
unsafe impl AtomicBlock for TallyWords {}

/// One bit per item, set when the item is delivered (or a pool task runs). Setting is a
/// `fetch_or`, which returns the old bit: a second delivery of the same item is seen by
/// the very consumer that makes it.
#[derive(Clone)]
pub struct Tally {
    words: SharedAtomics<TallyWords>,
}

impl Tally {
    pub fn new() -> Result<Tally, String> {
        let words = SharedAtomics::new(c"multiproc-torture-tally")
            .map_err(|e| format!("the tally's shared memory: {e}"))?;
        Ok(Tally { words })
    }

    fn word(&self, index: u64) -> Option<(&AtomicU64, u64)> {
        let word = self.words.get().0.get(usize::try_from(index / 64).ok()?)?;
        Some((word, 1u64 << (index % 64)))
    }

    /// Marks `index`. `Some(true)` when it was marked already: a duplicate. `None` for an
    /// index past the tally (which only damaged bytes could name).
    pub fn mark(&self, index: u64) -> Option<bool> {
        let (word, bit) = self.word(index)?;
        Some(word.fetch_or(bit, Ordering::AcqRel) & bit != 0)
    }

    /// Whether `index` is marked.
    pub fn is_marked(&self, index: u64) -> bool {
        self.word(index)
            .is_some_and(|(word, bit)| word.load(Ordering::Acquire) & bit != 0)
    }

    /// How many indices of `range` are marked.
    pub fn count(&self, range: Range<u64>) -> u64 {
        let mut count = 0;
        let mut i = range.start;
        while i < range.end {
            if i.is_multiple_of(64) && i + 64 <= range.end {
                if let Some((word, _)) = self.word(i) {
                    count += u64::from(word.load(Ordering::Acquire).count_ones());
                }
                i += 64;
            } else {
                count += u64::from(self.is_marked(i));
                i += 1;
            }
        }
        count
    }

    /// The indices of `range` that are marked, in order.
    pub fn marked(&self, range: Range<u64>) -> Vec<u64> {
        let mut found = Vec::new();
        let mut i = range.start;
        while i < range.end {
            if i.is_multiple_of(64) && i + 64 <= range.end {
                let empty = self
                    .word(i)
                    .is_none_or(|(word, _)| word.load(Ordering::Acquire) == 0);
                if empty {
                    i += 64;
                    continue;
                }
            }
            if self.is_marked(i) {
                found.push(i);
            }
            i += 1;
        }
        found
    }

    /// The indices of `range` that are not marked, in order.
    pub fn unmarked(&self, range: Range<u64>) -> Vec<u64> {
        let mut missing = Vec::new();
        let mut i = range.start;
        while i < range.end {
            if i.is_multiple_of(64) && i + 64 <= range.end {
                let full = self
                    .word(i)
                    .is_some_and(|(word, _)| word.load(Ordering::Acquire) == u64::MAX);
                if full {
                    i += 64;
                    continue;
                }
            }
            if !self.is_marked(i) {
                missing.push(i);
            }
            i += 1;
        }
        missing
    }
}

/// The most worker incarnations one set of [`Slots`] records (per rig, per run): far more
/// than a run of several minutes starts.
pub const MAX_INCARNATIONS: usize = 1 << 17;

/// What one worker incarnation writes about itself, for the parent to read after it died.
#[repr(C)]
pub struct Slot {
    /// Producer: how many of its puts returned `Ok` (its items `0..acked` are acknowledged).
    pub acked: AtomicU64,
    /// Producer: 1 + the sequence number of the put in progress; 0 between puts.
    pub putting: AtomicU64,
    /// Consumer: 1 + the index of the item `get` returned, until it is recorded; 0 else.
    pub in_hand: AtomicU64,
    /// Items this incarnation finished: deliveries recorded (consumer), increments whose
    /// critical section it left (lock worker, written after the release).
    pub done: AtomicU64,
    /// Consumer: 1 while inside `get` (from the call until the item is in `in_hand`).
    pub in_get: AtomicU32,
    /// 1 once the incarnation's body runs.
    pub running: AtomicU32,
}

#[repr(C)]
pub struct SlotBlock([Slot; MAX_INCARNATIONS]);

// SAFETY: atomics only; all-zero (nothing done, nothing in flight) is a valid value.
unsafe impl AtomicBlock for SlotBlock {}

/// A [`Slot`] per worker incarnation.
#[derive(Clone)]
pub struct Slots {
    block: SharedAtomics<SlotBlock>,
}

impl Slots {
    pub fn new() -> Result<Slots, String> {
        let block = SharedAtomics::new(c"multiproc-torture-slots")
            .map_err(|e| format!("the worker slots' shared memory: {e}"))?;
        Ok(Slots { block })
    }

    /// The slot of incarnation `incarnation` (< [`MAX_INCARNATIONS`], which the parent
    /// checks before it starts one).
    pub fn at(&self, incarnation: u32) -> &Slot {
        &self.block.get().0[incarnation as usize % MAX_INCARNATIONS]
    }
}

/// Counters of one rig, written by its workers and read by the parent.
#[repr(C)]
pub struct Counters {
    /// Set by the parent: workers finish what they are doing and end.
    pub stop: AtomicU64,
    /// Operations completed (increments, puts, recorded gets, tasks): the progress the
    /// watchdog watches.
    pub ops: AtomicU64,
    /// The pid of the lock worker inside the critical section now (0: none).
    pub holder: AtomicU64,
    /// Items delivered a second time, pool tasks run a second time.
    pub duplicates: AtomicU64,
    /// Items whose bytes were not those their producer put.
    pub damaged: AtomicU64,
    /// Items of one producer that reached a consumer out of order.
    pub out_of_order: AtomicU64,
    /// Errors a worker got where none may occur.
    pub errors: AtomicU64,
    /// The lock passed from a holder that died inside the update, and nobody was told.
    pub undetected: AtomicU64,
    /// The lock was taken over from a dead holder (`previous_owner_died`).
    pub takeovers: AtomicU64,
    /// Updates half done by a dead holder and rolled back by the next one.
    pub rollbacks: AtomicU64,
    /// Pool tasks run.
    pub executed: AtomicU64,
}

// SAFETY: atomics only; all-zero is a valid value.
unsafe impl AtomicBlock for Counters {}

/// A rig's [`Counters`] in shared memory.
#[derive(Clone)]
pub struct Board {
    block: SharedAtomics<Counters>,
}

impl Board {
    pub fn new() -> Result<Board, String> {
        let block = SharedAtomics::new(c"multiproc-torture-board")
            .map_err(|e| format!("the counters' shared memory: {e}"))?;
        Ok(Board { block })
    }

    pub fn get(&self) -> &Counters {
        self.block.get()
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::AcqRel);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Acquire)
    }

    pub fn stopping(&self) -> bool {
        self.get().stop.load(Ordering::Acquire) != 0
    }
}
