//! The descriptor-limit rig, behind the `fdlimit` scenario: items that hold handles travel
//! through a queue to consumers that run at their limit of open descriptors
//! (`RLIMIT_NOFILE`), while producers and consumers are SIGKILLed.
//!
//! An item that holds handles travels through the queue's side channel, as a memory file
//! plus the handles' descriptors. A consumer that cannot open them all gets
//! `DescriptorsExhausted { item_kept: true, .. }`, keeps none of them open, and the item
//! stays first in the queue, whole, for a later get (its own once it has freed descriptors,
//! or another consumer's). That promise is what this rig leans on.
//!
//! ## The items
//! A [`Parcel`] is `(producer, index, stamp, proof, events, reader, queue)`:
//! - `stamp`: a `Value<u64>` the producer makes for this item alone, holding
//!   `stamp_of(producer, index)`; once the put returned, the producer drops its copy, so the
//!   value lives on only in the item's descriptors;
//! - `proof`: one of two `Array<u8>`s the parent made (`index % 2` picks it; its cell 0
//!   says which it is). The consumer adds one to cell `1 + index / 2`, so the parent can see
//!   that every item's handle was the real object and was used exactly once;
//! - `events`: `index % 3` fresh `Event`s, event `j` set if and only if bit `j` of the
//!   stamp is;
//! - `reader`: for one index in 5, the reading end of a fresh one-way pipe, in which the
//!   producer wrote the stamp;
//! - `queue`: for one index in 23, a fresh `Queue<u64>` (four descriptors) holding the stamp.
//!
//! So an item comes with 3 to 10 descriptors ([`descriptors`]): its memory file and those
//! of its handles.
//!
//! ## The consumers
//! A consumer lowers its soft `RLIMIT_NOFILE` to a little above its highest descriptor (a
//! random headroom of at least the 10 an item may need), then fills every free slot with a
//! copy of one of its descriptors (the *fillers*). In a loop it gets (blocking, timed or
//! try); on `DescriptorsExhausted` it closes a random number of fillers, sometimes too few
//! for the item (even none: then it must be refused again), more often enough, and exactly
//! enough after four refusals in a row. After three items in four it fills every free slot
//! again, so that it runs at its limit most of the time.
//!
//! ## What is checked
//! The books are the queue rig's ([`Books`]), kept by the same protocol (`acked` and
//! `putting` around each put, `in_get` and `in_hand` around each get), so `lost`,
//! `duplicates` and `taken by dead` mean exactly what they mean in the `queue` row. Besides:
//! - each item, by its consumer: it holds the handles its index says, its stamp, events,
//!   pipe and queue hold what its producer put there, and its proof array is the right one
//!   (damaged otherwise);
//! - each refused get: the item was kept, and the consumer could open exactly as many
//!   descriptors as it had free slots, fewer than the item carried; each item taken: the
//!   consumer had a free slot for each of its descriptors (otherwise a descriptor came from
//!   somewhere else);
//! - the consumer's descriptors, scanned with one `poll` over every number below its limit
//!   (which needs no descriptor, unlike reading `/proc/self/fd`) after every refused get and
//!   every item: they must be exactly its own from before it reached its limit plus its
//!   fillers. Each one more is a leak, counted in the table's leaked fd column with the
//!   parent's own count; one of its own closed is corruption. At its end (the queue closed
//!   and drained), after closing its fillers, exactly its own are open;
//! - in the parent, every item's proof cell: touched once if the item was delivered (the
//!   consumer touches it before it marks the tally), never if not, except that an item in
//!   the hand of a consumer killed before it could mark it may have been touched once;
//! - the consumers were refused for want of descriptors at least once: the limit was
//!   reached, and the table's figures are about items that went through it.

use std::collections::{BTreeSet, HashSet};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use multiproc::proc_ipc::Error as IpcError;
use multiproc::proc_sync::internal::{AtomicBlock, SharedAtomics};
use multiproc::{Array, Connection, Event, GetError, Process, Queue, Value, pipe_oneway};

use crate::fleet::QueueWorkers;
use crate::queue_rig::{Books, Channel, Deliveries, check_drained, put_one};
use crate::report::Report;
use crate::rng::Rng;
use crate::shared::Board;
use crate::signals;
use crate::{Sabotage, spawn_worker};

/// What moves through the queue: (producer incarnation, item index, its stamp, its proof
/// array, its events, its pipe, its queue). See the module's docs.
pub type Parcel = (
    u32,
    u64,
    Value<u64>,
    Array<u8>,
    Vec<Event>,
    Option<Connection>,
    Option<Queue<u64>>,
);

/// Indices the proof arrays can tell apart: two arrays of 32 MiB, of which only the pages
/// that items reach take memory.
const PROOF_ITEMS: u64 = 1 << 26;

/// What cell 0 of proof array `j` holds.
const IDENTITY: [u8; 2] = [0xa5, 0x5a];

/// The most descriptors an item comes with (its memory file, a stamp, a proof, two events,
/// a pipe, a queue of four).
pub const MOST_DESCRIPTORS: u64 = 10;

/// Items each producer incarnation puts before it ends by itself (then it is replaced).
/// Most are killed long before: a small quota wastes few indices.
const QUOTA: u64 = 500;

/// The handles item `index` holds besides its stamp and proof.
struct Shape {
    events: usize,
    reader: bool,
    queue: bool,
}

impl Shape {
    fn of(index: u64) -> Shape {
        Shape {
            events: (index % 3) as usize,
            reader: index % 5 == 2,
            queue: index % 23 == 7,
        }
    }
}

/// The descriptors item `index` comes with: its memory file and its handles'.
pub fn descriptors(index: u64) -> u64 {
    let shape = Shape::of(index);
    3 + shape.events as u64 + u64::from(shape.reader) + 4 * u64::from(shape.queue)
}

/// The stamp of an item: a function of its producer and index alone.
fn stamp_of(producer: u32, index: u64) -> u64 {
    let mut rng = Rng::new(index ^ (u64::from(producer) << 40) ^ 0x5bd1_e995);
    rng.next() | 1
}

/// Makes item `index` of `producer`, with `proof` (the parent's array for its index).
fn make_parcel(producer: u32, index: u64, proof: &Array<u8>) -> Result<Parcel, String> {
    let stamp = stamp_of(producer, index);
    let shape = Shape::of(index);
    let value = Value::new(stamp).map_err(|e| format!("Value::new: {e}"))?;
    let mut events = Vec::with_capacity(shape.events);
    for j in 0..shape.events {
        let event = Event::new().map_err(|e| format!("Event::new: {e}"))?;
        if stamp >> j & 1 == 1 {
            event.set();
        }
        events.push(event);
    }
    let reader = if shape.reader {
        let (reader, writer) = pipe_oneway().map_err(|e| format!("pipe_oneway: {e}"))?;
        writer
            .send(&stamp)
            .map_err(|e| format!("a send into an item's pipe: {e}"))?;
        Some(reader)
    } else {
        None
    };
    let queue = if shape.queue {
        let queue = Queue::<u64>::builder()
            .ring_bytes(4096)
            .build()
            .map_err(|e| format!("an item's Queue: {e}"))?;
        queue
            .put(stamp)
            .map_err(|e| format!("a put into an item's queue: {e:?}"))?;
        Some(queue)
    } else {
        None
    };
    Ok((producer, index, value, proof.clone(), events, reader, queue))
}

/// What is wrong with a parcel the consumer got, if anything (its proof aside).
fn inspect(parcel: &Parcel) -> Option<String> {
    let (producer, index, value, _, events, reader, queue) = parcel;
    let (producer, index) = (*producer, *index);
    let stamp = stamp_of(producer, index);
    let shape = Shape::of(index);
    if events.len() != shape.events || reader.is_some() != shape.reader {
        return Some(format!(
            "holds {} events and {} pipe, where its index says {} and {}",
            events.len(),
            u8::from(reader.is_some()),
            shape.events,
            u8::from(shape.reader)
        ));
    }
    if queue.is_some() != shape.queue {
        return Some(format!(
            "holds {} queue, where its index says {}",
            u8::from(queue.is_some()),
            u8::from(shape.queue)
        ));
    }
    let held = value.get();
    if held != stamp {
        return Some(format!("its stamp holds {held:#x}, not {stamp:#x}"));
    }
    for (j, event) in events.iter().enumerate() {
        if event.is_set() != (stamp >> j & 1 == 1) {
            return Some(format!("its event {j} is not the one its producer made"));
        }
    }
    if let Some(reader) = reader {
        match reader.poll(Some(Duration::from_secs(1))) {
            Ok(true) => match reader.recv::<u64>() {
                Ok(got) if got == stamp => {}
                other => return Some(format!("its pipe gave {other:?}, not {stamp:#x}")),
            },
            other => return Some(format!("its pipe holds nothing to read ({other:?})")),
        }
    }
    if let Some(queue) = queue {
        match queue.try_get() {
            Ok(got) if got == stamp => {}
            other => return Some(format!("its queue gave {other:?}, not {stamp:#x}")),
        }
    }
    None
}

/// Figures of the consumers at their limit, written by them, read by the parent.
#[repr(C)]
pub struct LimitCounters {
    /// Gets refused with `DescriptorsExhausted`.
    refused: AtomicU64,
    /// Refusals whose figures break the promise: the item not kept, or the consumer could
    /// open another number of descriptors than it had free slots, or as many as it needed.
    wrong_refusals: AtomicU64,
    /// Items taken by a get right after a refusal of the same consumer.
    taken_after_refusal: AtomicU64,
    /// Items taken with fewer free slots than they have descriptors.
    impossible: AtomicU64,
    /// Fillers closed after refusals.
    freed: AtomicU64,
    /// Scans of a consumer's descriptors.
    scans: AtomicU64,
    /// Scans that failed.
    unscanned: AtomicU64,
    /// Descriptors found open that were neither the consumer's own nor its fillers.
    leaked: AtomicU64,
    /// Descriptors of the consumer's own found closed.
    closed: AtomicU64,
    /// Consumers that reached their limit.
    at_limit: AtomicU64,
    /// Consumers that ended (the queue closed and drained) with exactly their own
    /// descriptors open.
    clean_ends: AtomicU64,
}

// SAFETY: atomics only; all-zero (nothing counted) is a valid value.
unsafe impl AtomicBlock for LimitCounters {}

/// The descriptors open below `limit`: one `poll` over every number, which needs no
/// descriptor of its own (unlike reading `/proc/self/fd`) and says `POLLNVAL` for each one
/// that is not open. With no events asked for and no wait, it changes nothing.
fn open_below(limit: u64) -> Result<BTreeSet<RawFd>, String> {
    let mut fds: Vec<libc::pollfd> = (0..limit as RawFd)
        .map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures, which poll fills.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if rc >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("poll over the descriptors: {e}"));
        }
    }
    Ok(fds
        .iter()
        .filter(|p| p.revents & libc::POLLNVAL == 0)
        .map(|p| p.fd)
        .collect())
}

/// A consumer at its limit of open descriptors: the limit, its own descriptors from
/// before, and the fillers that take every other slot it has not freed.
struct AtLimit {
    limit: u64,
    own: BTreeSet<RawFd>,
    fillers: Vec<OwnedFd>,
    /// The descriptor the fillers copy.
    source: RawFd,
}

impl AtLimit {
    /// Lowers this process's soft `RLIMIT_NOFILE` to `headroom` above its highest open
    /// descriptor and fills every free slot.
    fn reach(headroom: u64) -> Result<AtLimit, String> {
        let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
            .map_err(|e| format!("reading /proc/self/fd: {e}"))?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        // The directory's own descriptor was listed too, and is closed now: the scan below
        // sees what is open.
        let highest = listed.iter().copied().max().unwrap_or(2).max(2);
        let limit = highest as u64 + 1 + headroom;
        let mut rlimit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit with a valid resource and a valid struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit) != 0 {
                return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
            }
            if limit > rlimit.rlim_max {
                return Err(format!(
                    "the hard limit of {} descriptors is below the {limit} wanted",
                    rlimit.rlim_max
                ));
            }
            rlimit.rlim_cur = limit;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
            }
        }
        let own = open_below(limit)?;
        let source = if own.contains(&0) {
            0
        } else {
            *own.first().ok_or("no descriptor is open to copy")?
        };
        let mut at = AtLimit {
            limit,
            own,
            fillers: Vec::new(),
            source,
        };
        at.fill()?;
        if at.free_slots() != 0 {
            return Err(format!(
                "{} slots are still free at the limit of {limit}",
                at.free_slots()
            ));
        }
        Ok(at)
    }

    /// Fills every free slot with a copy of `source`.
    fn fill(&mut self) -> Result<(), String> {
        loop {
            // SAFETY: duplicates an open descriptor; the result, if any, is a new
            // descriptor owned by nothing else.
            let fd = unsafe { libc::fcntl(self.source, libc::F_DUPFD_CLOEXEC, 0) };
            if fd >= 0 {
                // SAFETY: just opened, owned by nothing else.
                self.fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
                continue;
            }
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EMFILE) => Ok(()),
                Some(libc::EINTR) => continue,
                _ => Err(format!("copying descriptor {}: {e}", self.source)),
            };
        }
    }

    /// Closes `n` fillers (or all there are), picked at random.
    fn free(&mut self, n: u64, rng: &mut Rng) -> u64 {
        let mut freed = 0;
        while freed < n && !self.fillers.is_empty() {
            let i = rng.below(self.fillers.len() as u64) as usize;
            drop(self.fillers.swap_remove(i));
            freed += 1;
        }
        freed
    }

    fn free_slots(&self) -> u64 {
        self.limit
            .saturating_sub((self.own.len() + self.fillers.len()) as u64)
    }

    /// Scans the open descriptors: exactly its own and the fillers must be open. One more
    /// is counted as leaked (and from then on taken as its own, so that it is counted
    /// once), one of its own closed as closed. Returns how many it found left open.
    fn check(&mut self, counters: &LimitCounters, me: u32, when: &str) -> u64 {
        Board::bump(&counters.scans);
        let mut leaked = 0;
        // No descriptor at or past the limit can be open: none was when it was set, and the
        // kernel opens none there.
        let open = match open_below(self.limit) {
            Ok(open) => open,
            Err(e) => {
                eprintln!("torture: consumer {me}: {e}");
                Board::bump(&counters.unscanned);
                return 0;
            }
        };
        let fillers: HashSet<RawFd> = self
            .fillers
            .iter()
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect();
        for &fd in &open {
            if !self.own.contains(&fd) && !fillers.contains(&fd) {
                let what = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map_or_else(|e| format!("<{e}>"), |p| p.display().to_string());
                eprintln!("torture: consumer {me}: descriptor {fd} ({what}) left open {when}");
                Board::bump(&counters.leaked);
                leaked += 1;
            }
        }
        let gone: Vec<RawFd> = self
            .own
            .iter()
            .chain(&fillers)
            .filter(|fd| !open.contains(fd))
            .copied()
            .collect();
        for fd in gone {
            eprintln!("torture: consumer {me}: descriptor {fd} of its own was closed {when}");
            Board::bump(&counters.closed);
            self.own.remove(&fd);
        }
        self.own
            .extend(open.iter().filter(|fd| !fillers.contains(fd)));
        leaked
    }
}

/// The shared objects of the rig and what the parent knows.
pub struct LimitRig<C: Channel<Parcel>> {
    channel: C,
    pub books: Books,
    proofs: [Array<u8>; 2],
    limits: SharedAtomics<LimitCounters>,
    sabotage: Sabotage,
}

impl<C: Channel<Parcel>> LimitRig<C> {
    pub fn new(channel: C, sabotage: Sabotage) -> Result<LimitRig<C>, String> {
        let sheet = || -> Result<Array<u8>, String> {
            Array::new(1 + PROOF_ITEMS as usize / 2).map_err(|e| format!("Array::new: {e}"))
        };
        let proofs = [sheet()?, sheet()?];
        for (proof, identity) in proofs.iter().zip(IDENTITY) {
            proof.lock()[0] = identity;
        }
        Ok(LimitRig {
            channel,
            books: Books::new()?,
            proofs,
            limits: SharedAtomics::new(c"multiproc-torture-limits")
                .map_err(|e| format!("the limit counters' shared memory: {e}"))?,
            sabotage,
        })
    }

    /// The proof figures: every item's cell against the tally and the dead's hands.
    fn check_proofs(&self, report: &mut Report) -> (u64, u64) {
        let held: HashSet<u64> = self.books.held_by_dead().iter().copied().collect();
        let sheets = [self.proofs[0].lock(), self.proofs[1].lock()];
        for (j, sheet) in sheets.iter().enumerate() {
            if sheet[0] != IDENTITY[j] {
                report.corrupt(format!(
                    "proof array {j} says it is {:#x}, not {:#x}",
                    sheet[0], IDENTITY[j]
                ));
            }
        }
        let (mut once, mut by_dead) = (0u64, 0u64);
        let mut wrong = Vec::new();
        let mut count_wrong = 0u64;
        for index in self.books.indices() {
            let touched = sheets[(index % 2) as usize][1 + (index / 2) as usize];
            let marked = self.books.tally.is_marked(index);
            match (touched, marked) {
                (0, false) => {}
                (1, true) => once += 1,
                (1, false) if held.contains(&index) => by_dead += 1,
                _ => {
                    count_wrong += 1;
                    if wrong.len() < 10 {
                        wrong.push(format!(
                            "item {index} ({} delivered) touched {touched} times",
                            if marked { "recorded" } else { "never recorded" }
                        ));
                    }
                }
            }
        }
        if count_wrong > 0 {
            report.corrupt(format!(
                "{count_wrong} items' proof handles were not touched once per delivery, such \
                 as: {}",
                wrong.join("; ")
            ));
        }
        (once, by_dead)
    }
}

impl<C: Channel<Parcel>> QueueWorkers for LimitRig<C> {
    fn progress(&self) -> impl Fn() -> u64 + Send + 'static {
        self.books.progress()
    }

    fn has_room(&self) -> bool {
        self.books.has_room(QUOTA, PROOF_ITEMS)
    }

    fn spawn_producer(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String> {
        let (me, base) = self.books.enrol_producer(QUOTA, false);
        let (channel, slots, board, proofs, sabotage) = (
            self.channel.clone(),
            self.books.slots.clone(),
            self.books.board.clone(),
            self.proofs.clone(),
            self.sabotage,
        );
        let process = spawn_worker(format!("producer-{me}"), move || {
            signals::take_term_and_int(graceful);
            let slot = slots.at(me);
            slot.running.store(1, Ordering::Release);
            let counters = board.get();
            let mut rng = Rng::new(seed);
            for seq in 0..QUOTA {
                if board.stopping() || signals::stop_requested() {
                    return;
                }
                let index = base + seq;
                let copies = if sabotage == Sabotage::Duplicate && seq == 5 {
                    2
                } else {
                    1
                };
                slot.putting.store(seq + 1, Ordering::Release);
                for _ in 0..copies {
                    let parcel = match make_parcel(me, index, &proofs[(index % 2) as usize]) {
                        Ok(parcel) => parcel,
                        Err(e) => {
                            Board::bump(&counters.errors);
                            eprintln!("torture: producer {me}: making item {index}: {e}");
                            return;
                        }
                    };
                    if !put_one(&channel, parcel, true, &mut rng) {
                        Board::bump(&counters.errors);
                        return;
                    }
                }
                slot.acked.store(seq + 1, Ordering::Release);
                slot.putting.store(0, Ordering::Release);
                Board::bump(&counters.ops);
            }
        })?;
        Ok((me, process))
    }

    fn spawn_consumer(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String> {
        let me = self.books.next_incarnation();
        let (channel, slots, board, tally, limits, sabotage) = (
            self.channel.clone(),
            self.books.slots.clone(),
            self.books.board.clone(),
            self.books.tally.clone(),
            self.limits.clone(),
            self.sabotage,
        );
        let process = spawn_worker(format!("consumer-{me}"), move || {
            signals::take_term_and_int(graceful);
            let slot = slots.at(me);
            slot.running.store(1, Ordering::Release);
            let counters = board.get();
            let limits = limits.get();
            let mut rng = Rng::new(seed);
            let headroom = rng.between(MOST_DESCRIPTORS, MOST_DESCRIPTORS + 6);
            let mut at = match AtLimit::reach(headroom) {
                Ok(at) => at,
                Err(e) => {
                    Board::bump(&counters.errors);
                    eprintln!("torture: consumer {me}: reaching the descriptor limit: {e}");
                    return;
                }
            };
            Board::bump(&limits.at_limit);
            let mut deliveries = Deliveries::new(me, &tally, sabotage, counters);
            let mut done = 0u64;
            let mut refusals_in_a_row = 0u64;
            let mut kept_one = false;
            loop {
                if signals::stop_requested() {
                    return;
                }
                let free = at.free_slots();
                slot.in_get.store(1, Ordering::SeqCst);
                let got = match rng.below(10) {
                    0..=6 => channel.get(),
                    7 | 8 => channel.get_timeout(rng.duration_below(Duration::from_millis(3))),
                    _ => channel.try_get(),
                };
                let parcel = match got {
                    Ok(parcel) => parcel,
                    Err(GetError::Empty) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        continue;
                    }
                    Err(GetError::Closed) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        at.fillers.clear();
                        if at.check(limits, me, "at its end, its fillers closed") == 0 {
                            Board::bump(&limits.clean_ends);
                        }
                        return;
                    }
                    Err(GetError::Failed(IpcError::DescriptorsExhausted {
                        carried,
                        received,
                        item_kept,
                    })) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        Board::bump(&limits.refused);
                        let (carried, received) = (carried as u64, received as u64);
                        if !item_kept || received != free || received >= carried {
                            Board::bump(&limits.wrong_refusals);
                            eprintln!(
                                "torture: consumer {me}: refused with {free} free slots: an \
                                 item of {carried} descriptors, {received} opened, item kept: \
                                 {item_kept}"
                            );
                        }
                        if sabotage == Sabotage::KeepFd && !kept_one {
                            // As if the get had left a descriptor open: the scan must see it.
                            if let Some(filler) = at.fillers.pop() {
                                std::mem::forget(filler);
                                kept_one = true;
                            }
                        }
                        at.check(limits, me, "after a refused get");
                        refusals_in_a_row += 1;
                        let need = carried.saturating_sub(free).max(1);
                        let n = if refusals_in_a_row >= 4 {
                            need
                        } else if rng.chance(1, 3) {
                            rng.below(need)
                        } else {
                            need + rng.below(3)
                        };
                        let freed = at.free(n, &mut rng);
                        limits.freed.fetch_add(freed, Ordering::AcqRel);
                        continue;
                    }
                    Err(e) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        Board::bump(&counters.errors);
                        eprintln!("torture: consumer {me}: get failed: {e}");
                        continue;
                    }
                };
                let (producer, index) = (parcel.0, parcel.1);
                slot.in_hand.store(index + 1, Ordering::SeqCst);
                slot.in_get.store(0, Ordering::SeqCst);
                if refusals_in_a_row > 0 {
                    Board::bump(&limits.taken_after_refusal);
                    refusals_in_a_row = 0;
                }
                if descriptors(index) > free {
                    Board::bump(&limits.impossible);
                    eprintln!(
                        "torture: consumer {me}: item {index} of {} descriptors came with only \
                         {free} free slots",
                        descriptors(index)
                    );
                }
                if let Some(what) = inspect(&parcel) {
                    Board::bump(&counters.damaged);
                    eprintln!("torture: consumer {me}: item {index} is damaged: it {what}");
                }
                // The proof first, then the tally: a delivered item was touched.
                {
                    let mut sheet = parcel.3.lock();
                    let right = sheet.first() == Some(&IDENTITY[(index % 2) as usize]);
                    let cell = usize::try_from(index / 2 + 1).unwrap_or(usize::MAX);
                    match sheet.get_mut(cell) {
                        Some(touched) if right => *touched = touched.saturating_add(1),
                        _ => {
                            Board::bump(&counters.damaged);
                            eprintln!(
                                "torture: consumer {me}: item {index}'s proof array is wrong"
                            );
                        }
                    }
                }
                deliveries.record(producer, index, &channel);
                drop(parcel);
                done += 1;
                slot.done.store(done, Ordering::Release);
                Board::bump(&counters.ops);
                slot.in_hand.store(0, Ordering::SeqCst);
                at.check(limits, me, "after an item");
                if rng.chance(3, 4)
                    && let Err(e) = at.fill()
                {
                    Board::bump(&counters.errors);
                    eprintln!("torture: consumer {me}: filling its free slots: {e}");
                }
            }
        })?;
        Ok((me, process))
    }

    fn books(&self) -> &Books {
        &self.books
    }

    fn books_mut(&mut self) -> &mut Books {
        &mut self.books
    }

    fn close(&self) {
        self.channel.close();
    }

    fn finish(&self, report: &mut Report) {
        check_drained(&self.channel, report);
        self.books.finish(report);
        let (once, by_dead) = self.check_proofs(report);
        let limits = self.limits.get();
        let read = |counter: &AtomicU64| Board::read(counter);
        let refused = read(&limits.refused);
        if refused == 0 {
            report.corrupt(
                "no get was refused for want of descriptors: the consumers never reached their \
                 limit with an item to take",
            );
        }
        for (count, what) in [
            (
                read(&limits.wrong_refusals),
                "refused gets broke the promise (item not kept, or descriptors opened other \
                 than the free slots)",
            ),
            (
                read(&limits.impossible),
                "items came with more descriptors than their consumer had free slots",
            ),
            (
                read(&limits.closed),
                "descriptors of a consumer's own were closed by the queue",
            ),
            (
                read(&limits.unscanned),
                "scans of a consumer's descriptors failed",
            ),
        ] {
            if count > 0 {
                report.corrupt(format!("{count} {what}"));
            }
        }
        let leaked = read(&limits.leaked);
        if leaked > 0 {
            report.leaked_fds += leaked;
            report.note(format!(
                "{leaked} descriptors were left open in consumers (their stderr names them)"
            ));
        }
        report.note(format!(
            "fdlimit: {} consumers at RLIMIT_NOFILE ({}-{} above their highest descriptor, \
             every free slot filled); {refused} gets refused for want of descriptors with the item kept, \
             {} fillers closed after them, {} items taken right after a refusal; {} scans of \
             the consumers' descriptors, {leaked} left open, {} consumers ended with exactly \
             their own; proofs: {once} items' handles touched once, {by_dead} by consumers \
             killed before recording them",
            read(&limits.at_limit),
            MOST_DESCRIPTORS,
            MOST_DESCRIPTORS + 6,
            read(&limits.freed),
            read(&limits.taken_after_refusal),
            read(&limits.scans),
            read(&limits.clean_ends),
        ));
    }
}
