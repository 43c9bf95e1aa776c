//! The workers of the `shm` scenario and the books they keep (see `shm.rs`).
//!
//! Every block a worker creates gets a fresh number from a shared counter, and its name is
//! the run's prefix and that number, so that the parent can name every block any worker
//! ever tried to create. What a block is (a plain block of some size or a `ShareableList`,
//! and its bytes or items) follows from the run's seed and its number alone ([`Spec`]):
//! a reader checks a block it never saw being written against the same spec.
//!
//! Each worker writes the life of each of its blocks into the books, lock-free, before and
//! after each step: a worker killed at any instruction leaves the state of the step it was
//! in (`CREATING` until `create` has returned, `CREATED` while the bytes are written, ...).

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use multiproc::proc_sync::internal::{AtomicBlock, SharedAtomics};
use multiproc::{Item, ShareableList, SharedMemory};

use crate::rng::Rng;

/// The most block numbers of one run: some 15 minutes at this machine's pace (about 10,000
/// a second); the parent ends the kills when they run out.
pub const MAX_BLOCKS: usize = 1 << 23;

/// The most worker incarnations of one run.
pub const MAX_WORKERS: usize = 1 << 16;

/// Slots through which creators hand the numbers of their blocks to readers.
const OFFERS: usize = 64;

/// The states of a block number in the books.
pub const UNUSED: u8 = 0;
/// Set before `create_named`: a block of this name may exist from here on.
pub const CREATING: u8 = 1;
/// `create_named` returned: the block exists; its bytes are being written.
pub const CREATED: u8 = 2;
/// Every byte of the block is written (a list is whole once created).
pub const WRITTEN: u8 = 3;
/// Set before the creator's `unlink`.
pub const UNLINKING: u8 = 4;
/// The creator's `unlink` returned `Ok`: the name is gone.
pub const UNLINKED: u8 = 5;
/// The creator closed the block without unlinking it: the tracker's to remove.
pub const ABANDONED: u8 = 6;
/// `create_named` failed: no block was left behind.
pub const FAILED: u8 = 7;

/// What a worker is doing now, for the parent to aim its kills.
pub const IDLE: u32 = 0;
pub const IN_CREATE: u32 = 1;
pub const IN_WRITE: u32 = 2;
pub const IN_UNLINK: u32 = 3;
pub const IN_READ: u32 = 4;

/// What one worker incarnation says about itself.
#[repr(C)]
pub struct WorkerSlot {
    /// One of `IDLE`, `IN_CREATE`, ...
    pub phase: AtomicU32,
}

/// The books of a run, in shared memory that outlives every worker.
#[repr(C)]
pub struct Books {
    /// The next block number.
    pub next: AtomicU64,
    /// Set by the parent: workers finish what they do and end.
    pub stop: AtomicU64,
    /// Blocks created, unlinked or abandoned, and offers read: the progress the watchdog
    /// watches.
    pub ops: AtomicU64,
    /// Blocks a reader opened and found whole.
    pub verified: AtomicU64,
    /// Blocks a reader found gone (unlinked by their creator, or by a tracker).
    pub gone: AtomicU64,
    /// Blocks a reader found with other bytes or items than their spec.
    pub damaged: AtomicU64,
    /// Errors where none may come (each also written to stderr).
    pub errors: AtomicU64,
    /// Blocks their creator unlinked.
    pub unlinked: AtomicU64,
    pub offers: [AtomicU64; OFFERS],
    pub workers: [WorkerSlot; MAX_WORKERS],
    /// The state of each block number (`UNUSED`, `CREATING`, ...).
    pub states: [AtomicU8; MAX_BLOCKS],
    /// 1 + the incarnation that took each block number.
    pub creators: [AtomicU32; MAX_BLOCKS],
}

// SAFETY: atomics only; all-zero (nothing created, nobody running) is a valid value.
unsafe impl AtomicBlock for Books {}

/// A run's [`Books`], shared with its workers.
#[derive(Clone)]
pub struct Ledger {
    block: SharedAtomics<Books>,
}

impl Ledger {
    pub fn new() -> Result<Ledger, String> {
        let block = SharedAtomics::new(c"multiproc-torture-shm-books")
            .map_err(|e| format!("the shm books' shared memory: {e}"))?;
        Ok(Ledger { block })
    }

    pub fn get(&self) -> &Books {
        self.block.get()
    }

    /// The state of block `id`.
    pub fn state(&self, id: u64) -> u8 {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.get().states.get(i))
            .map_or(UNUSED, |s| s.load(Ordering::Acquire))
    }

    /// The slot of incarnation `me` (< [`MAX_WORKERS`], which the parent checks).
    pub fn worker(&self, me: u32) -> &WorkerSlot {
        &self.get().workers[me as usize % MAX_WORKERS]
    }

    fn set_state(&self, id: u64, state: u8) {
        if let Some(s) = self.get().states.get(id as usize) {
            s.store(state, Ordering::Release);
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::AcqRel);
}

/// What block `id` of a run is: all of it follows from the run's seed and the number.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A block of `size` bytes holding the pattern of `key`.
    Block { size: usize, key: u64 },
    /// A `ShareableList` of these items.
    List(Vec<Item>),
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Spec {
    pub fn of(seed: u64, id: u64) -> Spec {
        let key = mix(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if key.is_multiple_of(4) {
            let mut rng = Rng::new(key);
            let items = (0..rng.between(0, 6)).map(|_| item(&mut rng)).collect();
            return Spec::List(items);
        }
        // From 1 byte to 1 MiB, each power of two as likely as the next.
        let bits = 1 + (key >> 8) % 20;
        let size = 1 + ((key >> 16) % (1 << bits)) as usize;
        Spec::Block { size, key }
    }
}

/// A random item that Python's layout holds (no str or bytes ending with NUL).
fn item(rng: &mut Rng) -> Item {
    match rng.below(6) {
        0 => Item::Int(rng.next() as i64),
        1 => Item::Float((rng.next() >> 11) as f64 / 7.0),
        2 => Item::Bool(rng.chance(1, 2)),
        3 => Item::Str(
            (0..rng.below(40))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect(),
        ),
        4 => Item::Bytes(
            (0..rng.below(40))
                .map(|_| rng.between(1, 255) as u8)
                .collect(),
        ),
        _ => Item::None,
    }
}

/// Bytes written or checked at a time.
const CHUNK: usize = 64 << 10;

/// The pattern of `key` for bytes `offset..offset + len` (offset a multiple of 8).
fn pattern(key: u64, offset: usize, len: usize) -> Vec<u8> {
    let first = (offset / 8) as u64;
    (0..len.div_ceil(8) as u64)
        .flat_map(|i| mix(key.wrapping_add(first + i)).to_le_bytes())
        .take(len)
        .collect()
}

/// A block a worker created and holds open.
enum Held {
    Block(SharedMemory),
    List(ShareableList),
}

impl Held {
    fn shm(&self) -> &SharedMemory {
        match self {
            Held::Block(shm) => shm,
            Held::List(list) => list.shm(),
        }
    }
}

/// What a worker needs to know of its run.
#[derive(Clone)]
pub struct Run {
    pub ledger: Ledger,
    pub prefix: String,
    pub seed: u64,
}

impl Run {
    pub fn name(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }
}

/// Blocks a worker leaves to its tracker before it ends by itself: the normal end of a
/// tree with blocks registered, beside the deaths.
const ABANDON_QUOTA: usize = 24;

/// Blocks a worker holds open at most: past that, it unlinks or abandons one first.
const HOLD_AT_MOST: usize = 8;

/// The body of worker incarnation `me`.
pub fn work(run: &Run, me: u32, seed: u64) {
    let books = run.ledger.get();
    let slot = run.ledger.worker(me);
    let mut rng = Rng::new(seed);
    let mut held: Vec<(u64, Held)> = Vec::new();
    let mut abandoned = 0;
    while books.stop.load(Ordering::Acquire) == 0 && abandoned < ABANDON_QUOTA {
        let action = if held.len() >= HOLD_AT_MOST {
            rng.between(5, 8)
        } else {
            rng.below(12)
        };
        let done = match action {
            0..=4 => {
                if !create(run, me, &mut rng, &mut held) {
                    break;
                }
                true
            }
            5..=7 if !held.is_empty() => {
                let (id, block) = held.swap_remove(rng.below(held.len() as u64) as usize);
                if rng.chance(1, 4) {
                    run.ledger.set_state(id, ABANDONED);
                    drop(block);
                    abandoned += 1;
                } else {
                    unlink(run, me, id, &block);
                }
                true
            }
            _ => read(run, me, &mut rng),
        };
        if done {
            bump(&books.ops);
        }
    }
    slot.phase.store(IDLE, Ordering::Release);
    // The blocks still held are left to the tracker, as the abandoned ones.
    for (id, _) in &held {
        run.ledger.set_state(*id, ABANDONED);
    }
}

/// Creates the next block, writes it, and sometimes offers it to readers. False when the
/// run has no block number left.
fn create(run: &Run, me: u32, rng: &mut Rng, held: &mut Vec<(u64, Held)>) -> bool {
    let books = run.ledger.get();
    let slot = run.ledger.worker(me);
    let id = books.next.fetch_add(1, Ordering::AcqRel);
    let Some(index) = usize::try_from(id).ok().filter(|&i| i < MAX_BLOCKS) else {
        return false;
    };
    books.creators[index].store(me + 1, Ordering::Release);
    run.ledger.set_state(id, CREATING);
    slot.phase.store(IN_CREATE, Ordering::Release);
    let name = run.name(id);
    let spec = Spec::of(run.seed, id);
    let made = match &spec {
        Spec::Block { size, .. } => SharedMemory::create_named(&name, *size).map(Held::Block),
        Spec::List(items) => ShareableList::create_named(&name, items).map(Held::List),
    };
    let block = match made {
        Ok(block) => block,
        Err(e) => {
            run.ledger.set_state(id, FAILED);
            slot.phase.store(IDLE, Ordering::Release);
            bump(&books.errors);
            eprintln!("torture: shm: worker {me}: creating {name}: {e}");
            return true;
        }
    };
    run.ledger.set_state(id, CREATED);
    slot.phase.store(IN_WRITE, Ordering::Release);
    if let (Spec::Block { size, key }, Held::Block(shm)) = (&spec, &block) {
        for offset in (0..*size).step_by(CHUNK) {
            let len = CHUNK.min(size - offset);
            if let Err(e) = shm.write_bytes(offset, &pattern(*key, offset, len)) {
                bump(&books.errors);
                eprintln!("torture: shm: worker {me}: writing {name}: {e}");
            }
            rng.spin(2_000);
        }
    }
    run.ledger.set_state(id, WRITTEN);
    slot.phase.store(IDLE, Ordering::Release);
    if rng.chance(1, 2) {
        // A free slot, if one of a few tries finds it; else nobody reads this one.
        for _ in 0..4 {
            let offer = &books.offers[rng.below(OFFERS as u64) as usize];
            if offer
                .compare_exchange(0, id + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
        }
    }
    held.push((id, block));
    true
}

/// Unlinks block `id`, which this worker created: nobody else may have unlinked it (the
/// trackers act only once a tree has ended, and this worker's tree is alive).
fn unlink(run: &Run, me: u32, id: u64, block: &Held) {
    let books = run.ledger.get();
    let slot = run.ledger.worker(me);
    run.ledger.set_state(id, UNLINKING);
    slot.phase.store(IN_UNLINK, Ordering::Release);
    match block.shm().unlink() {
        Ok(()) => {
            run.ledger.set_state(id, UNLINKED);
            bump(&books.unlinked);
        }
        Err(e) => {
            bump(&books.errors);
            eprintln!(
                "torture: shm: worker {me}: unlinking its own {}: {e}",
                run.name(id)
            );
        }
    }
    slot.phase.store(IDLE, Ordering::Release);
}

/// Takes a block another worker offered, opens it by name, checks it against its spec,
/// holds it open a moment and closes it. False when it found no offer to take.
fn read(run: &Run, me: u32, rng: &mut Rng) -> bool {
    let books = run.ledger.get();
    let slot = run.ledger.worker(me);
    let offer = &books.offers[rng.below(OFFERS as u64) as usize];
    let taken = offer.load(Ordering::Acquire);
    let Some(id) = taken.checked_sub(1) else {
        return false;
    };
    let creator = books
        .creators
        .get(id as usize)
        .map_or(0, |c| c.load(Ordering::Acquire));
    if creator == me + 1
        || offer
            .compare_exchange(taken, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return false;
    }
    slot.phase.store(IN_READ, Ordering::Release);
    let name = run.name(id);
    let spec = Spec::of(run.seed, id);
    let opened = match &spec {
        Spec::Block { .. } => SharedMemory::open(&name).map(Held::Block),
        Spec::List(_) => ShareableList::open(&name).map(Held::List),
    };
    match opened {
        Ok(block) => {
            match check(&spec, &block) {
                Ok(()) => bump(&books.verified),
                Err(what) => {
                    bump(&books.damaged);
                    eprintln!(
                        "torture: shm: worker {me}: block {name} (state {} in the books, still \
                         named: {}) is damaged: {what}",
                        run.ledger.state(id),
                        std::path::Path::new(&format!("/dev/shm/{name}")).exists()
                    );
                }
            }
            // Held open a moment: kills land while a reader has a block open.
            if rng.chance(1, 4) {
                std::thread::sleep(Duration::from_micros(rng.below(2_000)));
            }
            drop(block);
        }
        Err(multiproc::proc_shared::Error::NotFound { .. }) => bump(&books.gone),
        Err(e @ multiproc::proc_shared::Error::CorruptList { .. }) => {
            bump(&books.damaged);
            eprintln!("torture: shm: worker {me}: list {name} is damaged: {e}");
        }
        Err(e) => {
            bump(&books.errors);
            eprintln!("torture: shm: worker {me}: opening {name}: {e}");
        }
    }
    slot.phase.store(IDLE, Ordering::Release);
    true
}

/// Whether `block` holds what `spec` says; else what differs.
fn check(spec: &Spec, block: &Held) -> Result<(), String> {
    match (spec, block) {
        (Spec::Block { size, key }, Held::Block(shm)) => {
            if shm.size() != *size {
                return Err(format!("{} bytes, not {size}", shm.size()));
            }
            let mut buf = vec![0u8; CHUNK.min(*size)];
            for offset in (0..*size).step_by(CHUNK) {
                let len = CHUNK.min(size - offset);
                shm.read_bytes(offset, &mut buf[..len])
                    .map_err(|e| format!("reading at {offset}: {e}"))?;
                if buf[..len] != pattern(*key, offset, len)[..] {
                    return Err(format!("bytes {offset}..{} differ", offset + len));
                }
            }
            Ok(())
        }
        (Spec::List(items), Held::List(list)) => match list.to_vec() {
            Ok(found) if found == *items => Ok(()),
            Ok(found) => Err(format!("items {found:?}, not {items:?}")),
            Err(e) => Err(format!("{e}")),
        },
        _ => Err("opened as the wrong kind".to_string()),
    }
}
