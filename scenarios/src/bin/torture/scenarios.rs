//! The scenarios of a torture run, in order. Each takes the run's configuration (its time,
//! its seed) and returns its figures; the leak census and the `RESULT` line are `main`'s.

use std::time::{Duration, Instant};

use multiproc::{JoinableQueue, Queue};

use crate::fleet::{Fault, Faults, Fleet, QueueWorkers, Role};
use crate::limit_rig::{LimitRig, Parcel};
use crate::lock_rig::LockRig;
use crate::queue_rig::{Channel, Item, QueueRig, Style};
use crate::report::Report;
use crate::rng::Rng;
use crate::watchdog::Watchdog;
use crate::{Config, Sabotage};

/// A scenario: its name, what it shows, and its body.
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    pub run: fn(&Config, &Watchdog) -> Result<Report, String>,
}

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "lock",
        what: "4 processes hammer a Lock-protected counter while random holders are \
               SIGKILLed; the counter equals the increments of the processes that completed them",
        run: lock,
    },
    Scenario {
        name: "queue",
        what: "2-4 producers and 2-4 consumers move numbered items through a Queue while \
               random ones are SIGKILLed; every acknowledged put is delivered once or taken by a \
               killed consumer",
        run: queue,
    },
    Scenario {
        name: "joinable",
        what: "the same through a JoinableQueue, phase after phase, with join() checked before \
               the kills and the items owed by the dead bounded after them",
        run: joinable,
    },
    Scenario {
        name: "fdlimit",
        what: "consumers run at their descriptor limit while items holding handles (Value, \
               Array, Event, Connection, Queue) go through a Queue or JoinableQueue and random \
               producers and consumers are SIGKILLed; a get refused for want of descriptors \
               keeps the item, and no descriptor is left open",
        run: fdlimit,
    },
    Scenario {
        name: "pool",
        what: "Pool.map, imap and imap_unordered while workers are SIGKILLed: every input gets \
               its result or the error of its killed worker, and runs at most once",
        run: crate::pool::run,
    },
    Scenario {
        name: "shm",
        what: "workers create named shared memory blocks and ShareableLists, write, unlink, \
               abandon and read each other's, while they are SIGKILLed mid-create, mid-write, \
               mid-unlink and mid-read; no block is damaged, and the resource trackers leave \
               none of the run's blocks in /dev/shm",
        run: crate::shm::run,
    },
    Scenario {
        name: "churn",
        what: "thousands of short-lived processes started and joined, terminated, killed, \
               dropped without join: no zombie, no fd, no mapping left",
        run: crate::churn::run,
    },
    Scenario {
        name: "signals",
        what: "lock and queue workers receive SIGTERM, SIGINT and SIGSTOP+SIGCONT mid-operation; \
               half of them stop gracefully on SIGTERM/SIGINT",
        run: signals,
    },
    Scenario {
        name: "load",
        what: "queue and lock traffic at full speed, 10 processes on the machine's cores, no \
               faults: nothing lost, duplicated or out of order",
        run: load,
    },
];

/// The queue style of the fault scenarios: small items, every 50th-odd one large, a small
/// ring so that it fills, wraps and hands large items over as memory files.
fn fault_style(rng: &mut Rng) -> (usize, usize, Style) {
    let ring_bytes = rng.pick(&[8 << 10, 16 << 10, 64 << 10]);
    let maxsize = rng.pick(&[0, 1, 2, 16, 256]);
    let style = Style {
        quota: 20_000,
        mixed_calls: true,
        large_every: 53,
        large_len: ring_bytes / 4 + 64,
    };
    (ring_bytes, maxsize, style)
}

/// Watches the fleet's progress counters.
fn watch<Q: QueueWorkers>(watchdog: &Watchdog, fleet: &Fleet<Q>) {
    if let Some(lock) = &fleet.lock {
        watchdog.watch(lock.progress());
    }
    if let Some(queue) = &fleet.queue {
        watchdog.watch(queue.progress());
    }
}

/// The check the fault loop runs every 200 ms: the lock's invariant, from outside.
fn check_lock<Q: QueueWorkers>(fleet: &mut Fleet<Q>) {
    if let Some(lock) = &fleet.lock {
        lock.check(Duration::from_millis(100), &mut fleet.report);
    }
}

fn lock(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let mut fleet: Fleet<QueueRig<Queue<Item>>> = Fleet::new(config, Report::new("lock"));
    fleet.lock = Some(LockRig::new(3_000, config.sabotage)?);
    fleet.enlist(Role::Locker, 4)?;
    watch(watchdog, &fleet);
    watchdog.phase("killing lock holders");
    let faults = if config.sabotage == Sabotage::Wedge {
        Faults::none()
    } else {
        Faults {
            pace: Duration::from_millis(6),
            mix: vec![(Fault::KillHolder, 1), (Fault::Kill, 1)],
        }
    };
    fleet.storm(config.until(started), &faults, check_lock);
    watchdog.phase("winding down");
    fleet.wind_down();
    Ok(fleet.finish())
}

fn queue(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let (ring_bytes, maxsize, style) = fault_style(&mut rng);
    let (producers, consumers) = (rng.between(2, 4), rng.between(2, 4));
    let queue = Queue::builder()
        .maxsize(maxsize)
        .ring_bytes(ring_bytes)
        .build()
        .map_err(|e| format!("Queue: {e}"))?;
    let mut report = Report::new("queue");
    report.note(format!(
        "{producers} producers, {consumers} consumers, maxsize {maxsize}, ring {ring_bytes} bytes"
    ));
    let mut fleet = Fleet::new(config, report);
    fleet.queue = Some(QueueRig::new(queue, style, config.sabotage)?);
    fleet.enlist(Role::Producer, producers as usize)?;
    fleet.enlist(Role::Consumer, consumers as usize)?;
    watch(watchdog, &fleet);
    watchdog.phase("killing producers and consumers");
    let faults = Faults {
        pace: Duration::from_millis(6),
        mix: vec![(Fault::Kill, 1)],
    };
    fleet.storm(config.until(started), &faults, |_| {});
    watchdog.phase("winding down");
    fleet.wind_down();
    Ok(fleet.finish())
}

fn fdlimit(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let mut rng = Rng::new(config.seed);
    let maxsize = rng.pick(&[0, 1, 4, 16]);
    let ring_bytes = rng.pick(&[4 << 10, 64 << 10]);
    let joinable = rng.chance(1, 2);
    let (producers, consumers) = (rng.between(2, 3) as usize, rng.between(2, 3) as usize);
    let mut report = Report::new("fdlimit");
    report.note(format!(
        "{producers} producers, {consumers} consumers, a {} with maxsize {maxsize}, ring \
         {ring_bytes} bytes",
        if joinable { "JoinableQueue" } else { "Queue" }
    ));
    if joinable {
        let queue = JoinableQueue::<Parcel>::builder()
            .maxsize(maxsize)
            .ring_bytes(ring_bytes)
            .build()
            .map_err(|e| format!("JoinableQueue: {e}"))?;
        let channel = queue.clone();
        let counts = (producers, consumers);
        fdlimit_with(config, watchdog, channel, counts, report, Some(&queue))
    } else {
        let queue = Queue::<Parcel>::builder()
            .maxsize(maxsize)
            .ring_bytes(ring_bytes)
            .build()
            .map_err(|e| format!("Queue: {e}"))?;
        fdlimit_with(
            config,
            watchdog,
            queue,
            (producers, consumers),
            report,
            None,
        )
    }
}

/// The `fdlimit` scenario through `channel`; `joinable` is the same queue when it is a
/// joinable one, whose count of unfinished items is then settled as in `joinable`.
fn fdlimit_with<C: Channel<Parcel>>(
    config: &Config,
    watchdog: &Watchdog,
    channel: C,
    (producers, consumers): (usize, usize),
    report: Report,
    joinable: Option<&JoinableQueue<Parcel>>,
) -> Result<Report, String> {
    let started = Instant::now();
    let mut fleet = Fleet::new(config, report);
    fleet.queue = Some(LimitRig::new(channel, config.sabotage)?);
    fleet.enlist(Role::Producer, producers)?;
    fleet.enlist(Role::Consumer, consumers)?;
    watch(watchdog, &fleet);
    watchdog.phase("killing producers and consumers at their descriptor limit");
    let faults = Faults {
        pace: Duration::from_millis(8),
        mix: vec![(Fault::Kill, 1)],
    };
    fleet.storm(config.until(started), &faults, |_| {});
    watchdog.phase("winding down");
    fleet.wind_down();
    if let Some(queue) = joinable
        && fleet.report.deadlocks == 0
    {
        let rig = fleet.queue.as_ref().ok_or("no queue rig")?;
        let bounds = (rig.books.owed_min, rig.books.owed_max);
        let owed = settle_owed(queue, bounds, "", &mut fleet.report);
        fleet.report.note(format!(
            "joinable: {owed} items owed by killed workers after the run (within the bounds \
             their deaths allow), marked done by the parent, after which join() returned"
        ));
    }
    Ok(fleet.finish())
}

/// Items the parent puts before each phase's kills, then waits for with `join()`.
const JOIN_BATCH: u64 = 2_000;

fn joinable(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let until = config.until(started);
    let mut rng = Rng::new(config.seed);
    let phases = ((config.seconds / 3.0) as u32).clamp(1, 40);
    let phase_time = Duration::from_secs_f64(config.seconds / f64::from(phases));
    let mut total = Report::new("joinable");
    let mut settled = 0u64;
    let mut done = 0;
    for phase in 0..phases {
        done += 1;
        let (ring_bytes, maxsize, style) = fault_style(&mut rng);
        let queue = JoinableQueue::<Item>::builder()
            .maxsize(maxsize)
            .ring_bytes(ring_bytes)
            .build()
            .map_err(|e| format!("JoinableQueue: {e}"))?;
        let phase_config = Config {
            seed: rng.seed(),
            ..config.clone()
        };
        let mut fleet = Fleet::new(&phase_config, Report::new("joinable"));
        fleet.queue = Some(QueueRig::new(queue.clone(), style, config.sabotage)?);
        let consumers = rng.between(2, 4) as usize;
        fleet.enlist(Role::Consumer, consumers)?;
        watch(watchdog, &fleet);

        // Before any kill: join() returns once every item put is done, not before.
        watchdog.phase(format!("phase {phase}: join() on {JOIN_BATCH} items"));
        let rig = fleet.queue.as_mut().ok_or("no queue rig")?;
        let batch = rig.put_from_here(JOIN_BATCH)?;
        if queue.join_timeout(config.stall) {
            if !rig.all_delivered(batch) {
                fleet.report.corrupt(format!(
                    "phase {phase}: join() returned before every item was done"
                ));
            }
        } else {
            fleet.report.deadlock(format!(
                "phase {phase}: join() did not return within {} s; {} items unfinished",
                config.stall.as_secs(),
                queue.unfinished()
            ));
        }

        watchdog.phase(format!("phase {phase}: killing producers and consumers"));
        fleet.enlist(Role::Producer, rng.between(2, 4) as usize)?;
        let faults = Faults {
            pace: Duration::from_millis(6),
            mix: vec![(Fault::Kill, 1)],
        };
        let phase_end = (Instant::now() + phase_time).min(until);
        fleet.storm(phase_end, &faults, |_| {});
        watchdog.phase(format!("phase {phase}: winding down"));
        fleet.wind_down();

        // Every process has ended: what is still unfinished is owed by the dead.
        if fleet.report.deadlocks == 0 {
            let rig = fleet.queue.as_ref().ok_or("no queue rig")?;
            let bounds = (rig.books.owed_min, rig.books.owed_max);
            settled += settle_owed(
                &queue,
                bounds,
                &format!("phase {phase}: "),
                &mut fleet.report,
            );
        }
        let report = fleet.finish();
        merge(&mut total, report);
        watchdog.forget_sources();
        if Instant::now() >= until || total.deadlocks > 0 {
            break;
        }
    }
    total.note(format!(
        "joinable: {done} phases of {:.1} s; in each, join() returned once the {JOIN_BATCH} \
         items put before the kills were all done, and after the kills {settled} items in all \
         were owed by killed workers (each phase within the bounds its deaths allow), marked \
         done by the parent, after which join() returned",
        phase_time.as_secs_f64()
    ));
    Ok(total)
}

/// After a run with kills, once every process has ended: the items of joinable `queue`
/// still unfinished are owed by the dead, and must be within `bounds` (what the deaths
/// allow, from the books). Marks them done, then checks that `join()` returns and that
/// `task_done()` refuses one more. Returns how many were owed. `label` starts each
/// failure's words.
pub fn settle_owed<T>(
    queue: &JoinableQueue<T>,
    (min, max): (u64, u64),
    label: &str,
    report: &mut Report,
) -> u64 {
    let owed = queue.unfinished() as u64;
    if owed < min || owed > max {
        report.corrupt(format!(
            "{label}{owed} items unfinished after the run; the deaths account for {min} to {max}"
        ));
    }
    if owed > 0 && queue.join_timeout(Duration::ZERO) {
        report.corrupt(format!(
            "{label}join() returned with {owed} items unfinished"
        ));
    }
    for _ in 0..owed {
        if let Err(e) = queue.task_done() {
            report.corrupt(format!("{label}task_done failed: {e}"));
        }
    }
    if !queue.join_timeout(Duration::ZERO) {
        report.corrupt(format!("{label}join() did not return once all was done"));
    }
    if queue.task_done().is_ok() {
        report.corrupt(format!("{label}task_done() accepted more than was put"));
    }
    owed
}

/// Adds `part`'s figures to `total`; its details only if it failed (the figures of the
/// phases add up in the table).
fn merge(total: &mut Report, part: Report) {
    let failed = !part.passed();
    total.operations += part.operations;
    total.killed += part.killed;
    total.acknowledged += part.acknowledged;
    total.delivered += part.delivered;
    total.duplicates += part.duplicates;
    total.lost += part.lost;
    total.taken += part.taken;
    total.deadlocks += part.deadlocks;
    total.corrupt += part.corrupt;
    if failed {
        for detail in part.details {
            total.note(detail);
        }
    }
}

fn signals(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let (ring_bytes, maxsize, style) = fault_style(&mut rng);
    let queue = Queue::builder()
        .maxsize(maxsize)
        .ring_bytes(ring_bytes)
        .build()
        .map_err(|e| format!("Queue: {e}"))?;
    let mut fleet = Fleet::new(config, Report::new("signals"));
    fleet.lock = Some(LockRig::new(3_000, config.sabotage)?);
    fleet.queue = Some(QueueRig::new(queue, style, config.sabotage)?);
    let faults = Faults {
        pace: Duration::from_millis(8),
        mix: vec![(Fault::StopCont, 2), (Fault::Term, 1), (Fault::Int, 1)],
    };
    fleet.graceful((1, 2));
    fleet.enlist(Role::Locker, 2)?;
    fleet.enlist(Role::Producer, 2)?;
    fleet.enlist(Role::Consumer, 2)?;
    watch(watchdog, &fleet);
    watchdog.phase("signalling workers");
    fleet.storm(config.until(started), &faults, check_lock);
    watchdog.phase("winding down");
    fleet.wind_down();
    Ok(fleet.finish())
}

fn load(config: &Config, watchdog: &Watchdog) -> Result<Report, String> {
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let maxsize = rng.pick(&[0, 1024]);
    let queue = Queue::new(maxsize).map_err(|e| format!("Queue: {e}"))?;
    let style = Style {
        quota: crate::shared::TALLY_ITEMS / 4,
        mixed_calls: false,
        large_every: 10_000,
        large_len: multiproc::proc_ipc::DEFAULT_RING_BYTES / 4 + 64,
    };
    let mut report = Report::new("load");
    report.note(format!(
        "3 producers, 3 consumers, 4 lock workers on {} cores; maxsize {maxsize}",
        multiproc::cpu_count()
    ));
    let mut fleet = Fleet::new(config, report);
    fleet.lock = Some(LockRig::new(0, config.sabotage)?);
    fleet.queue = Some(QueueRig::new(queue, style, config.sabotage)?);
    fleet.enlist(Role::Locker, 4)?;
    fleet.enlist(Role::Producer, 3)?;
    fleet.enlist(Role::Consumer, 3)?;
    watch(watchdog, &fleet);
    watchdog.phase("full speed");
    fleet.storm(config.until(started), &Faults::none(), check_lock);
    watchdog.phase("winding down");
    fleet.wind_down();
    Ok(fleet.finish())
}
