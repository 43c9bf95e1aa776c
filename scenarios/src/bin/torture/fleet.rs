//! The fleet: the worker processes of a lock rig and a queue rig, and the loop that strikes
//! them with faults (SIGKILL, SIGTERM, SIGINT, SIGSTOP then SIGCONT) at random moments and
//! replaces each one that dies, until the time is up; then the wind-down, in which every
//! process must end by itself within the stall time (or it is reported as a deadlock).

use std::time::{Duration, Instant};

use multiproc::Process;

use crate::Config;
use crate::lock_rig::LockRig;
use crate::queue_rig::Books;
use crate::report::Report;
use crate::rng::Rng;
use crate::signals;

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Locker,
    Producer,
    Consumer,
}

/// What the fault loop can do to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL to a random worker.
    Kill,
    /// SIGKILL to the worker inside the lock's critical section, if any.
    KillHolder,
    /// SIGTERM: a graceful worker finishes and ends with 0, another dies.
    Term,
    /// SIGINT: as SIGTERM.
    Int,
    /// SIGSTOP, a random pause, SIGCONT: the worker must go on as if nothing happened.
    StopCont,
}

/// The faults of a scenario and how often they come.
#[derive(Debug, Clone)]
pub struct Faults {
    /// The pause before each fault is random, below this.
    pub pace: Duration,
    pub mix: Vec<(Fault, u64)>,
}

impl Faults {
    /// No faults: the workers run at full speed until the time is up.
    pub fn none() -> Faults {
        Faults {
            pace: Duration::from_millis(20),
            mix: Vec::new(),
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<Fault> {
        let total: u64 = self.mix.iter().map(|(_, w)| w).sum();
        let mut at = rng.below(total);
        for &(fault, weight) in &self.mix {
            if at < weight {
                return Some(fault);
            }
            at -= weight;
        }
        None
    }
}

/// The producers and consumers of a queue rig, as the fleet drives them: the rig starts
/// them, and books how each one ended.
pub trait QueueWorkers {
    /// The progress counter the watchdog watches.
    fn progress(&self) -> impl Fn() -> u64 + Send + 'static;
    /// Whether another producer incarnation can be recorded.
    fn has_room(&self) -> bool;
    fn spawn_producer(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String>;
    fn spawn_consumer(&mut self, seed: u64, graceful: bool) -> Result<(u32, Process), String>;
    /// The books of puts and gets the rig keeps (the queue rig's, shared by every rig).
    fn books(&self) -> &Books;
    /// The same, to record an ending.
    fn books_mut(&mut self) -> &mut Books;
    /// Whether incarnation `incarnation` runs its body (its signal handlers are in place).
    fn running(&self, incarnation: u32) -> bool {
        self.books().running(incarnation)
    }
    /// Producer `incarnation` ended with `code`; `allowed` are the codes it may have.
    fn producer_ended(&mut self, incarnation: u32, code: i32, allowed: &[i32], r: &mut Report) {
        self.books_mut()
            .producer_ended(incarnation, code, allowed, r);
    }
    /// Consumer `incarnation` ended with `code`; `allowed` are the codes it may have.
    fn consumer_ended(&mut self, incarnation: u32, code: i32, allowed: &[i32], r: &mut Report) {
        self.books_mut()
            .consumer_ended(incarnation, code, allowed, r);
    }
    /// Tells the producers to finish their put and end.
    fn stop(&self) {
        self.books().stop();
    }
    /// Closes the queue: consumers drain it and end.
    fn close(&self);
    /// The figures, once every process has ended and the queue is drained.
    fn finish(&self, report: &mut Report);
}

struct Member {
    role: Role,
    incarnation: u32,
    process: Process,
    graceful: bool,
}

/// The rigs, their workers and the fault loop.
pub struct Fleet<Q: QueueWorkers> {
    pub lock: Option<LockRig>,
    pub queue: Option<Q>,
    members: Vec<Member>,
    rng: Rng,
    stall: Duration,
    graceful: (u64, u64),
    /// Fatal signals that ended a worker (SIGKILL, or SIGTERM/SIGINT with the default
    /// action), stops-and-continues, and graceful ends on a signal.
    pub killed: u64,
    pub stopped: u64,
    pub graceful_ends: u64,
    pub report: Report,
}

impl<Q: QueueWorkers> Fleet<Q> {
    pub fn new(config: &Config, report: Report) -> Fleet<Q> {
        Fleet {
            lock: None,
            queue: None,
            members: Vec::new(),
            rng: Rng::new(config.seed),
            stall: config.stall,
            graceful: (0, 1),
            killed: 0,
            stopped: 0,
            graceful_ends: 0,
            report,
        }
    }

    /// From now on, `share.0` in `share.1` of the worker incarnations stop gracefully on
    /// SIGTERM/SIGINT (finish what they are doing, end with 0) instead of dying.
    pub fn graceful(&mut self, share: (u64, u64)) {
        self.graceful = share;
    }

    /// Starts `count` workers of `role`.
    pub fn enlist(&mut self, role: Role, count: usize) -> Result<(), String> {
        for _ in 0..count {
            if let Some(member) = self.start(role)? {
                self.members.push(member);
            }
        }
        Ok(())
    }

    /// A new worker of `role`; `None` when its rig has no room left for it.
    fn start(&mut self, role: Role) -> Result<Option<Member>, String> {
        let seed = self.rng.seed();
        let graceful = self.rng.chance(self.graceful.0, self.graceful.1);
        let started = match role {
            Role::Locker => match &mut self.lock {
                Some(lock) if lock.has_room() => Some(lock.spawn(seed, graceful)?),
                _ => None,
            },
            Role::Producer => match &mut self.queue {
                Some(queue) if queue.has_room() => Some(queue.spawn_producer(seed, graceful)?),
                _ => None,
            },
            Role::Consumer => match &mut self.queue {
                Some(queue) => Some(queue.spawn_consumer(seed, graceful)?),
                None => None,
            },
        };
        Ok(started.map(|(incarnation, process)| Member {
            role,
            incarnation,
            process,
            graceful,
        }))
    }

    /// Whether `member` runs its body.
    fn running(&self, member: &Member) -> bool {
        match member.role {
            Role::Locker => self
                .lock
                .as_ref()
                .is_some_and(|l| l.running(member.incarnation)),
            Role::Producer | Role::Consumer => self
                .queue
                .as_ref()
                .is_some_and(|q| q.running(member.incarnation)),
        }
    }

    /// Tells the rig of `member` how it ended.
    fn account(&mut self, member: &Member, code: i32, allowed: &[i32]) {
        let report = &mut self.report;
        match member.role {
            Role::Locker => {
                if let Some(lock) = &mut self.lock {
                    lock.ended(member.incarnation, code, allowed, report);
                }
            }
            Role::Producer => {
                if let Some(queue) = &mut self.queue {
                    queue.producer_ended(member.incarnation, code, allowed, report);
                }
            }
            Role::Consumer => {
                if let Some(queue) = &mut self.queue {
                    queue.consumer_ended(member.incarnation, code, allowed, report);
                }
            }
        }
    }

    /// Waits for `member` to end, at most the stall time; a deadlock otherwise (the member
    /// is described, killed and reaped).
    fn join(&mut self, member: &Member, while_doing: &str) -> i32 {
        let who = format!("{:?} {}", member.role, member.incarnation);
        self.report
            .join_within(&member.process, self.stall, who, while_doing)
    }

    /// Strikes the workers with `faults` until `until`, replacing the dead. `tick` runs
    /// about every 200 ms (periodic checks, a beat for the watchdog).
    pub fn storm(&mut self, until: Instant, faults: &Faults, mut tick: impl FnMut(&mut Self)) {
        let mut next_tick = Instant::now();
        while Instant::now() < until && self.report.deadlocks == 0 {
            self.replace_ended();
            if Instant::now() >= next_tick {
                tick(self);
                next_tick = Instant::now() + Duration::from_millis(200);
            }
            if self.members.is_empty() {
                break;
            }
            let Some(fault) = faults.pick(&mut self.rng) else {
                std::thread::sleep(faults.pace);
                continue;
            };
            std::thread::sleep(self.rng.duration_below(faults.pace));
            self.strike(fault);
        }
    }

    /// Replaces the workers that ended by themselves (producers at the end of their quota).
    fn replace_ended(&mut self) {
        let mut i = 0;
        while i < self.members.len() {
            let Some(code) = self.members[i].process.exitcode() else {
                i += 1;
                continue;
            };
            let member = self.members.swap_remove(i);
            // Only a producer ends by itself while the storm lasts.
            let allowed: &[i32] = if member.role == Role::Producer {
                &[0]
            } else {
                &[]
            };
            self.account(&member, code, allowed);
            self.replace(member.role);
        }
    }

    fn replace(&mut self, role: Role) {
        match self.start(role) {
            Ok(Some(member)) => self.members.push(member),
            Ok(None) => {}
            Err(e) => self
                .report
                .corrupt(format!("starting a replacement failed: {e}")),
        }
    }

    fn strike(&mut self, fault: Fault) {
        let victim = match fault {
            Fault::KillHolder => {
                let holder = self.lock.as_ref().map_or(0, LockRig::holder);
                self.members
                    .iter()
                    .position(|m| m.role == Role::Locker && m.process.pid() == Some(holder))
            }
            _ => None,
        };
        let i = victim.unwrap_or_else(|| self.rng.below(self.members.len() as u64) as usize);
        let signal = match fault {
            Fault::Kill | Fault::KillHolder => libc::SIGKILL,
            Fault::Term => libc::SIGTERM,
            Fault::Int => libc::SIGINT,
            Fault::StopCont => {
                let process = &self.members[i].process;
                if matches!(signals::send(process, libc::SIGSTOP), Ok(true)) {
                    self.stopped += 1;
                    std::thread::sleep(self.rng.duration_below(Duration::from_millis(20)));
                }
                if let Err(e) = signals::send(process, libc::SIGCONT) {
                    self.report
                        .corrupt(format!("SIGCONT could not be sent: {e}"));
                }
                return;
            }
        };
        // A worker takes SIGTERM/SIGINT as it should once its body runs and has set up its
        // handling: strike then, so that the outcome is known. (SIGKILL may come at once.)
        if signal != libc::SIGKILL {
            let settle = Instant::now() + self.stall;
            while !self.running(&self.members[i]) && Instant::now() < settle {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let handles_it = self.members[i].graceful && self.running(&self.members[i]);
        if let Err(e) = signals::send(&self.members[i].process, signal) {
            self.report
                .corrupt(format!("{} could not be sent: {e}", signals::name(signal)));
            return;
        }
        let member = self.members.swap_remove(i);
        let code = self.join(&member, &format!("after {}", signals::name(signal)));
        let graceful = handles_it && signal != libc::SIGKILL;
        // 0 as well: it may have ended by itself just before the signal (a producer), or
        // handled it (a graceful one that was starting as it came).
        let allowed = if graceful { vec![0] } else { vec![-signal, 0] };
        if code < 0 {
            self.killed += 1;
        } else if graceful {
            self.graceful_ends += 1;
        }
        self.account(&member, code, &allowed);
        self.replace(member.role);
    }

    /// The end: lock workers and producers finish what they are doing and end, then the
    /// queue is closed and the consumers drain it and end. Every one must end within the
    /// stall time.
    pub fn wind_down(&mut self) {
        if let Some(lock) = &self.lock {
            lock.stop();
        }
        if let Some(queue) = &self.queue {
            queue.stop();
        }
        let members = std::mem::take(&mut self.members);
        let (consumers, others): (Vec<Member>, Vec<Member>) =
            members.into_iter().partition(|m| m.role == Role::Consumer);
        for member in others {
            let code = self.join(&member, "after being told to stop");
            self.account(&member, code, &[0]);
        }
        if let Some(queue) = &self.queue {
            queue.close();
        }
        for member in consumers {
            let code = self.join(&member, "after the queue was closed");
            self.account(&member, code, &[0]);
        }
    }

    /// The figures of both rigs, into the report.
    pub fn finish(mut self) -> Report {
        if let Some(lock) = &self.lock {
            lock.finish(&mut self.report);
        }
        if let Some(queue) = &self.queue {
            queue.finish(&mut self.report);
        }
        self.report.killed += self.killed;
        if self.stopped + self.graceful_ends > 0 {
            self.report.note(format!(
                "signals: {} stopped and continued, {} ended gracefully on SIGTERM/SIGINT",
                self.stopped, self.graceful_ends
            ));
        }
        self.report
    }
}
