//! The queue rig: producer processes put sequence-numbered items into a [`Queue`] (or a
//! [`JoinableQueue`]), consumer processes take them, and the books in shared memory say
//! what happened to every item, whoever was killed.
//!
//! ## The books
//! - Each producer incarnation owns a range of item indices, given by the parent. After
//!   each `put` that returned `Ok` it stores how many it has had acknowledged (`acked`),
//!   and it marks the put in progress (`putting`).
//! - A consumer, as soon as `get` returns an item, writes its index into its `in_hand`
//!   slot, then checks the item's bytes and the order of its producer's items, marks it in
//!   the tally (a `fetch_or`: a second delivery is seen), calls `task_done` for a joinable
//!   queue, and clears `in_hand`. It sets `in_get` for the duration of the `get` call.
//!
//! ## What is checked, exactly
//! After the run (every process joined, the queue closed and drained):
//! - no item was marked twice (duplicates), damaged, or out of its producer's order;
//! - every acknowledged item (`seq < acked`) is marked (delivered), or is *taken*: it was in
//!   the hand of a consumer that died (identified by `in_hand`), or it is one of at most
//!   one item per consumer that died inside `get` (`in_get` set, `in_hand` empty). That
//!   last case is the window the queue's docs name: between the queue removing an item and
//!   `get` returning it, an item dies with its consumer, and nobody can say which; only the
//!   number of such items is bounded, by the number of such deaths. Anything beyond the
//!   bound is lost, and fails the run;
//! - no item past what its producer had acknowledged was delivered, except the one put a
//!   killed producer had in progress (its put may have completed before it died).
//!
//! For a joinable queue, the books also bound how many items can never be marked done:
//! at least one per dead consumer that held an unrecorded item, at most one per dead
//! consumer caught in or after `get` and per dead producer caught inside `put`.
//!
//! The books are [`Books`], apart from the items: the `fdlimit` scenario's rig
//! (`limit_rig`) moves items of its own and keeps the same books.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use multiproc::{ByteBuf, GetError, JoinableQueue, Process, PutError, Queue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fleet::QueueWorkers;
use crate::report::Report;
use crate::rng::Rng;
use crate::shared::{Board, Counters, MAX_INCARNATIONS, Slots, TALLY_ITEMS, Tally};
use crate::signals;
use crate::{Sabotage, spawn_worker};

/// What moves through the queue: (producer incarnation, item index, payload).
pub type Item = (u32, u64, ByteBuf);

/// The queue under test: a [`Queue`] or a [`JoinableQueue`] of items `I`, seen the same way.
pub trait Channel<I>: Clone + Send + Sync + 'static {
    fn put(&self, item: I) -> Result<(), PutError<I>>;
    fn put_timeout(&self, item: I, timeout: Duration) -> Result<(), PutError<I>>;
    fn try_put(&self, item: I) -> Result<(), PutError<I>>;
    fn get(&self) -> Result<I, GetError>;
    fn get_timeout(&self, timeout: Duration) -> Result<I, GetError>;
    fn try_get(&self) -> Result<I, GetError>;
    fn close(&self);
    fn is_empty(&self) -> bool;
    /// Marks an item done (a joinable queue); nothing for a plain queue.
    fn task_done(&self) -> Result<(), String>;
}

impl<I: Serialize + DeserializeOwned + Send + 'static> Channel<I> for Queue<I> {
    fn put(&self, item: I) -> Result<(), PutError<I>> {
        Queue::put(self, item)
    }
    fn put_timeout(&self, item: I, timeout: Duration) -> Result<(), PutError<I>> {
        Queue::put_timeout(self, item, timeout)
    }
    fn try_put(&self, item: I) -> Result<(), PutError<I>> {
        Queue::try_put(self, item)
    }
    fn get(&self) -> Result<I, GetError> {
        Queue::get(self)
    }
    fn get_timeout(&self, timeout: Duration) -> Result<I, GetError> {
        Queue::get_timeout(self, timeout)
    }
    fn try_get(&self) -> Result<I, GetError> {
        Queue::try_get(self)
    }
    fn close(&self) {
        Queue::close(self);
    }
    fn is_empty(&self) -> bool {
        Queue::is_empty(self)
    }
    fn task_done(&self) -> Result<(), String> {
        Ok(())
    }
}

impl<I: Serialize + DeserializeOwned + Send + 'static> Channel<I> for JoinableQueue<I> {
    fn put(&self, item: I) -> Result<(), PutError<I>> {
        JoinableQueue::put(self, item)
    }
    fn put_timeout(&self, item: I, timeout: Duration) -> Result<(), PutError<I>> {
        JoinableQueue::put_timeout(self, item, timeout)
    }
    fn try_put(&self, item: I) -> Result<(), PutError<I>> {
        JoinableQueue::try_put(self, item)
    }
    fn get(&self) -> Result<I, GetError> {
        JoinableQueue::get(self)
    }
    fn get_timeout(&self, timeout: Duration) -> Result<I, GetError> {
        JoinableQueue::get_timeout(self, timeout)
    }
    fn try_get(&self) -> Result<I, GetError> {
        JoinableQueue::try_get(self)
    }
    fn close(&self) {
        JoinableQueue::close(self);
    }
    fn is_empty(&self) -> bool {
        JoinableQueue::is_empty(self)
    }
    fn task_done(&self) -> Result<(), String> {
        JoinableQueue::task_done(self).map_err(|e| e.to_string())
    }
}

/// How the workers use the queue.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Items each producer incarnation puts before it ends by itself.
    pub quota: u64,
    /// Mix blocking, timed and try forms of put and get (else: blocking only).
    pub mixed_calls: bool,
    /// Every `large_every`-th item is `large_len` bytes or more: larger than a quarter of
    /// the ring, it is handed over as a memory file.
    pub large_every: u64,
    pub large_len: usize,
}

/// The bytes of item `index`: a function of the index alone, so any consumer can check
/// them.
fn payload(index: u64, style: &Style) -> Vec<u8> {
    let len = if index % style.large_every == style.large_every - 1 {
        style.large_len + (index % 977) as usize
    } else {
        (index % 41) as usize
    };
    let seed = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|j| (seed >> (8 * (j % 8))) as u8 ^ j as u8)
        .collect()
}

/// A producer incarnation, as the parent knows it.
#[derive(Debug, Clone, Copy)]
struct Producer {
    incarnation: u32,
    base: u64,
    quota: u64,
    /// `Some(true)`: died of a signal; `Some(false)`: ended normally.
    killed: Option<bool>,
}

/// The books of a queue rig, whatever its items are: the shared tally, slots and counters
/// that the workers write (see the module's docs), and what the parent knows of each
/// incarnation and of each death. A rig with items of its own (`limit_rig`) keeps the same
/// books, so that its figures mean what the queue rig's mean.
pub struct Books {
    pub tally: Tally,
    pub slots: Slots,
    pub board: Board,
    next_incarnation: u32,
    next_index: u64,
    producers: Vec<Producer>,
    /// Items in the hand of consumers that died.
    held_by_dead: Vec<u64>,
    /// Consumers that died inside `get` with nothing in hand.
    windows: u64,
    /// Bounds of the items a joinable queue can never see done (see the module's docs).
    pub owed_min: u64,
    pub owed_max: u64,
    consumers_ended: u64,
    puts_from_here: u64,
}

impl Books {
    pub fn new() -> Result<Books, String> {
        Ok(Books {
            tally: Tally::new()?,
            slots: Slots::new()?,
            board: Board::new()?,
            next_incarnation: 0,
            next_index: 0,
            producers: Vec::new(),
            held_by_dead: Vec::new(),
            windows: 0,
            owed_min: 0,
            owed_max: 0,
            consumers_ended: 0,
            puts_from_here: 0,
        })
    }

    /// The progress counter the watchdog watches: puts acknowledged and gets recorded.
    pub fn progress(&self) -> impl Fn() -> u64 + Send + 'static {
        let board = self.board.clone();
        move || Board::read(&board.get().ops)
    }

    /// Whether another incarnation with `quota` items can be recorded, among the first
    /// `items` indices (at most [`TALLY_ITEMS`]).
    pub fn has_room(&self, quota: u64, items: u64) -> bool {
        (self.next_incarnation as usize) < MAX_INCARNATIONS
            && self.next_index + quota <= items.min(TALLY_ITEMS)
    }

    /// The number of a new consumer incarnation.
    pub fn next_incarnation(&mut self) -> u32 {
        let me = self.next_incarnation;
        self.next_incarnation += 1;
        me
    }

    /// A new producer incarnation with `quota` items: its number and its first index. One
    /// that never dies (this process) is `from_here`.
    pub fn enrol_producer(&mut self, quota: u64, from_here: bool) -> (u32, u64) {
        let me = self.next_incarnation();
        let base = self.next_index;
        self.next_index += quota;
        self.producers.push(Producer {
            incarnation: me,
            base,
            quota,
            killed: from_here.then_some(false),
        });
        (me, base)
    }

    /// Counts a put made by this process.
    pub fn put_from_here(&mut self) {
        self.puts_from_here += 1;
    }

    /// The indices given out so far.
    pub fn indices(&self) -> std::ops::Range<u64> {
        0..self.next_index
    }

    /// The items found in the hand of a consumer that died.
    pub fn held_by_dead(&self) -> &[u64] {
        &self.held_by_dead
    }

    /// Whether incarnation `incarnation` runs its body (its signal handlers are in place).
    pub fn running(&self, incarnation: u32) -> bool {
        self.slots.at(incarnation).running.load(Ordering::Acquire) != 0
    }

    fn check_code(what: &str, code: i32, allowed: &[i32], report: &mut Report) {
        if !allowed.contains(&code) {
            report.corrupt(format!(
                "{what} ended with exit code {code}, expected one of {allowed:?}"
            ));
        }
    }

    /// Producer `incarnation` ended with `code`.
    pub fn producer_ended(&mut self, incarnation: u32, code: i32, allowed: &[i32], r: &mut Report) {
        Self::check_code(&format!("producer {incarnation}"), code, allowed, r);
        let died = code < 0;
        if died && self.slots.at(incarnation).putting.load(Ordering::Acquire) != 0 {
            // Reserved in a joinable queue's count, maybe never published.
            self.owed_max += 1;
        }
        if let Some(p) = self
            .producers
            .iter_mut()
            .rev()
            .find(|p| p.incarnation == incarnation)
        {
            p.killed = Some(died);
        }
    }

    /// Consumer `incarnation` ended with `code`.
    pub fn consumer_ended(&mut self, incarnation: u32, code: i32, allowed: &[i32], r: &mut Report) {
        Self::check_code(&format!("consumer {incarnation}"), code, allowed, r);
        self.consumers_ended += 1;
        if code >= 0 {
            return;
        }
        let slot = self.slots.at(incarnation);
        let in_hand = slot.in_hand.load(Ordering::Acquire);
        if in_hand != 0 {
            let index = in_hand - 1;
            self.held_by_dead.push(index);
            self.owed_max += 1;
            if !self.tally.is_marked(index) {
                self.owed_min += 1;
            }
        } else if slot.in_get.load(Ordering::Acquire) != 0 {
            self.windows += 1;
            self.owed_max += 1;
        }
    }

    /// Tells the producers to finish their put and end.
    pub fn stop(&self) {
        self.board.get().stop.store(1, Ordering::Release);
    }

    /// The figures, once every process has ended and the queue is drained.
    pub fn finish(&self, report: &mut Report) {
        let counters = self.board.get();
        let mut acknowledged = 0u64;
        let mut delivered = 0u64;
        let mut missing = Vec::new();
        let mut unacknowledged_delivered = 0u64;
        for p in &self.producers {
            let acked = self
                .slots
                .at(p.incarnation)
                .acked
                .load(Ordering::Acquire)
                .min(p.quota);
            acknowledged += acked;
            let range = p.base..p.base + p.quota;
            delivered += self.tally.count(range);
            missing.extend(self.tally.unmarked(p.base..p.base + acked));
            // Past the acknowledged ones, only the put in progress at a death may be there.
            for index in self.tally.marked(p.base + acked..p.base + p.quota) {
                if index == p.base + acked && p.killed == Some(true) {
                    unacknowledged_delivered += 1;
                } else {
                    report.corrupt(format!(
                        "item {index} of producer {} was delivered, but its producer had only \
                         {acked} puts acknowledged",
                        p.incarnation
                    ));
                }
            }
            if p.killed.is_none() {
                report.corrupt(format!("producer {} was never seen to end", p.incarnation));
            }
        }
        let held: HashSet<u64> = self.held_by_dead.iter().copied().collect();
        let identified = missing.iter().filter(|i| held.contains(i)).count() as u64;
        let unexplained = missing.len() as u64 - identified;
        let in_window = unexplained.min(self.windows);
        let lost = unexplained - in_window;
        if lost > 0 {
            let first: Vec<u64> = missing
                .iter()
                .filter(|i| !held.contains(i))
                .take(10)
                .copied()
                .collect();
            report.note(format!(
                "{lost} acknowledged items lost (beyond {} deaths inside get), such as {first:?}",
                self.windows
            ));
            eprintln!(
                "torture: {}: lost items, such as {first:?}",
                report.scenario
            );
        }
        let duplicates = Board::read(&counters.duplicates);
        let damaged = Board::read(&counters.damaged);
        let out_of_order = Board::read(&counters.out_of_order);
        let errors = Board::read(&counters.errors);
        for (count, what) in [
            (damaged, "items were damaged"),
            (out_of_order, "items came out of their producer's order"),
            (errors, "worker calls failed where none may"),
        ] {
            if count > 0 {
                report.corrupt(format!("{count} {what}"));
            }
        }
        // Puts acknowledged and gets recorded by the workers, and the puts of this process.
        report.operations += Board::read(&counters.ops) + self.puts_from_here;
        report.acknowledged += acknowledged;
        report.delivered += delivered;
        report.duplicates += duplicates;
        report.lost += lost;
        report.taken += identified + in_window;
        report.note(format!(
            "queue: {} producer and {} consumer incarnations; {acknowledged} acknowledged, \
             {delivered} delivered ({unacknowledged_delivered} of them put by a producer killed \
             before its put returned); taken by killed consumers: {identified} identified in \
             hand, {in_window} within {} deaths inside get",
            self.producers.len(),
            self.consumers_ended,
            self.windows,
        ));
    }
}

/// The queue's own checks once its consumers have drained it and ended: empty, and a get
/// says it is closed.
pub fn check_drained<I, C: Channel<I>>(channel: &C, report: &mut Report) {
    if !channel.is_empty() {
        report.corrupt("the queue is not empty after its consumers drained it");
    }
    if !matches!(channel.try_get(), Err(GetError::Closed)) {
        report.corrupt("a get from the closed, drained queue did not say Closed");
    }
}

/// The shared objects of the rig and what the parent knows.
pub struct QueueRig<C: Channel<Item>> {
    channel: C,
    pub books: Books,
    style: Style,
    sabotage: Sabotage,
}

impl<C: Channel<Item>> QueueRig<C> {
    pub fn new(channel: C, style: Style, sabotage: Sabotage) -> Result<QueueRig<C>, String> {
        Ok(QueueRig {
            channel,
            books: Books::new()?,
            style,
            sabotage,
        })
    }

    /// Puts `count` items from this process, as a producer that never dies, and returns
    /// their indices.
    pub fn put_from_here(&mut self, count: u64) -> Result<std::ops::Range<u64>, String> {
        let (me, base) = self.books.enrol_producer(count, true);
        let slots = self.books.slots.clone();
        let slot = slots.at(me);
        for seq in 0..count {
            let index = base + seq;
            let item = (me, index, ByteBuf::from(payload(index, &self.style)));
            self.channel
                .put(item)
                .map_err(|e| format!("a put from the parent failed: {e:?}"))?;
            slot.acked.store(seq + 1, Ordering::Release);
            self.books.put_from_here();
        }
        Ok(base..base + count)
    }

    /// Whether every index of `range` is marked delivered.
    pub fn all_delivered(&self, range: std::ops::Range<u64>) -> bool {
        self.books.tally.count(range.clone()) == range.end - range.start
    }
}

impl<C: Channel<Item>> QueueWorkers for QueueRig<C> {
    fn progress(&self) -> impl Fn() -> u64 + Send + 'static {
        self.books.progress()
    }

    fn has_room(&self) -> bool {
        self.books.has_room(self.style.quota, TALLY_ITEMS)
    }

    fn spawn_producer(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String> {
        let quota = self.style.quota;
        let (me, base) = self.books.enrol_producer(quota, false);
        let (channel, slots, board, style, sabotage) = (
            self.channel.clone(),
            self.books.slots.clone(),
            self.books.board.clone(),
            self.style,
            self.sabotage,
        );
        let process = spawn_worker(format!("producer-{me}"), move || {
            signals::take_term_and_int(graceful);
            let slot = slots.at(me);
            slot.running.store(1, Ordering::Release);
            let counters = board.get();
            let mut rng = Rng::new(seed);
            for seq in 0..quota {
                if board.stopping() || signals::stop_requested() {
                    return;
                }
                let index = base + seq;
                let item = (me, index, ByteBuf::from(payload(index, &style)));
                slot.putting.store(seq + 1, Ordering::Release);
                let copies = if sabotage == Sabotage::Duplicate && seq == 5 {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    if !put_one(&channel, item.clone(), style.mixed_calls, &mut rng) {
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
        let (channel, slots, board, tally, style, sabotage) = (
            self.channel.clone(),
            self.books.slots.clone(),
            self.books.board.clone(),
            self.books.tally.clone(),
            self.style,
            self.sabotage,
        );
        let process = spawn_worker(format!("consumer-{me}"), move || {
            signals::take_term_and_int(graceful);
            let slot = slots.at(me);
            slot.running.store(1, Ordering::Release);
            let counters = board.get();
            let mut rng = Rng::new(seed);
            let mut deliveries = Deliveries::new(me, &tally, sabotage, counters);
            let mut done = 0u64;
            loop {
                if signals::stop_requested() {
                    return;
                }
                slot.in_get.store(1, Ordering::SeqCst);
                let got = if graceful {
                    channel.get_timeout(Duration::from_millis(20))
                } else if style.mixed_calls {
                    match rng.below(10) {
                        0..=6 => channel.get(),
                        7 | 8 => channel.get_timeout(rng.duration_below(Duration::from_millis(3))),
                        _ => channel.try_get(),
                    }
                } else {
                    channel.get()
                };
                let (producer, index, bytes) = match got {
                    Ok(item) => item,
                    Err(GetError::Empty) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        continue;
                    }
                    Err(GetError::Closed) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        slot.in_get.store(0, Ordering::SeqCst);
                        Board::bump(&counters.errors);
                        eprintln!("torture: consumer {me}: get failed: {e}");
                        continue;
                    }
                };
                slot.in_hand.store(index + 1, Ordering::SeqCst);
                slot.in_get.store(0, Ordering::SeqCst);
                if bytes.as_slice() != payload(index, &style).as_slice() {
                    Board::bump(&counters.damaged);
                    eprintln!("torture: consumer {me}: item {index} is damaged");
                }
                deliveries.record(producer, index, &channel);
                done += 1;
                slot.done.store(done, Ordering::Release);
                Board::bump(&counters.ops);
                slot.in_hand.store(0, Ordering::SeqCst);
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
    }
}

/// What a consumer keeps to record the items it gets, the same way in every queue rig.
pub struct Deliveries<'a> {
    me: u32,
    tally: &'a Tally,
    sabotage: Sabotage,
    counters: &'a Counters,
    /// The last item index each producer's items came with.
    last_of_producer: HashMap<u32, u64>,
}

impl<'a> Deliveries<'a> {
    pub fn new(me: u32, tally: &'a Tally, sabotage: Sabotage, counters: &'a Counters) -> Self {
        Deliveries {
            me,
            tally,
            sabotage,
            counters,
            last_of_producer: HashMap::new(),
        }
    }

    /// Records item `index` of `producer`, once its contents were checked: that it came
    /// after that producer's earlier items, its mark in the tally (a second mark is a
    /// duplicate; the `lose` sabotage skips every fourth), and the queue's `task_done`.
    pub fn record<I>(&mut self, producer: u32, index: u64, channel: &impl Channel<I>) {
        let (me, counters) = (self.me, self.counters);
        if let Some(last) = self.last_of_producer.insert(producer, index)
            && last >= index
        {
            Board::bump(&counters.out_of_order);
            eprintln!(
                "torture: consumer {me}: producer {producer}'s item {index} came after {last}"
            );
        }
        let lose = self.sabotage == Sabotage::Lose && index.is_multiple_of(4);
        if !lose {
            match self.tally.mark(index) {
                Some(false) => {}
                Some(true) => {
                    Board::bump(&counters.duplicates);
                    eprintln!("torture: consumer {me}: item {index} delivered twice");
                }
                None => {
                    Board::bump(&counters.damaged);
                    eprintln!("torture: consumer {me}: item index {index} cannot be");
                }
            }
        }
        if let Err(e) = channel.task_done() {
            Board::bump(&counters.errors);
            eprintln!("torture: consumer {me}: task_done failed: {e}");
        }
    }
}

/// Puts `item` with a blocking, timed or try call (`mixed`; else blocking); false on an
/// error that may not happen.
pub fn put_one<I, C: Channel<I>>(channel: &C, mut item: I, mixed: bool, rng: &mut Rng) -> bool {
    let form = if mixed { rng.below(10) } else { 0 };
    loop {
        let result = match form {
            0..=6 => channel.put(item),
            7 | 8 => channel.put_timeout(item, rng.duration_below(Duration::from_millis(3))),
            _ => channel.try_put(item),
        };
        match result {
            Ok(()) => return true,
            Err(PutError::Full(back)) => {
                item = back;
                if form == 9 {
                    std::thread::yield_now();
                }
            }
            Err(e) => {
                eprintln!("torture: a put failed: {e:?}");
                return false;
            }
        }
    }
}
