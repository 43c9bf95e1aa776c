//! [`ProducerConsumer`]: the producer/consumer pattern of Python's tutorials, ready-made.
//! Producers put items into a [`JoinableQueue`], consumers take them; the helper marks each
//! item done for the consumer, closes the queue once every producer has finished so that
//! the consumers drain it and stop, and reports what failed.

use std::os::fd::BorrowedFd;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use proc_core::{Process, StartMethod};
use proc_ipc::Queue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::joinable_queue::JoinableQueue;
use proc_core::internal::panic_message;

/// Any error a producer function may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type ProducerFn<T> = Box<dyn FnOnce(&Producer<T>) -> Result<(), BoxError> + Send + 'static>;
type ConsumerFn<T> = Box<dyn FnMut(T) + Send + 'static>;

/// Makes the (not yet started) process of one producer or consumer, given the queue, the
/// queue of outcomes and its index. The user's function is captured by the process's
/// target, so under Spawn and ForkServer it must capture nothing (see `Process::target`).
type Launch<T> = Box<dyn FnOnce(JoinableQueue<T>, Queue<Outcome>, usize) -> Process + Send>;

/// Runs producers and consumers as processes around one [`JoinableQueue`].
///
/// Each producer is a function given a [`Producer`] to put items with; each consumer is a
/// function called once per item. The helper takes items from the queue for the consumers
/// and marks each one done after the function returns (or panics), so a consumer cannot
/// forget a `task_done`. Once every producer has ended, the queue is closed: the consumers
/// drain what is left and stop. [`run`](Self::run) returns a [`ProducerConsumerReport`]
/// that counts the items and lists every failure: a producer that returned an error or
/// panicked, a consumer function that panicked on an item (the other items go on), a
/// process that died.
///
/// Processes are named as given, so a function can say who it is with
/// [`current_process`](proc_core::current_process). They are started by the
/// [start method](Self::start_method) in force: under Spawn and ForkServer each function
/// must be a function item or a closure that captures nothing (its data comes through the
/// queue), as for [`Process::target`].
///
/// ```
/// use proc_core::current_process;
/// use proc_patterns::ProducerConsumer;
///
/// let report = ProducerConsumer::new()
///     .producer("baker", |out| {
///         for i in 0..5 {
///             out.put(format!("bun {i}"))?;
///         }
///         Ok(())
///     })
///     .consumers(2, |bun: String| println!("{} ate {bun}", current_process().name()))
///     .run()?;
/// assert_eq!((report.produced, report.consumed), (5, 5));
/// assert!(report.is_success());
/// # Ok::<(), proc_patterns::Error>(())
/// ```
#[must_use = "nothing runs until run() is called"]
pub struct ProducerConsumer<T> {
    maxsize: usize,
    start_method: Option<StartMethod>,
    producers: Vec<(String, Launch<T>)>,
    consumers: Vec<(String, Launch<T>)>,
}

impl<T> Default for ProducerConsumer<T> {
    fn default() -> Self {
        ProducerConsumer {
            maxsize: 0,
            start_method: None,
            producers: Vec::new(),
            consumers: Vec::new(),
        }
    }
}

impl<T> std::fmt::Debug for ProducerConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConsumer")
            .field("maxsize", &self.maxsize)
            .field(
                "producers",
                &self.producers.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
            .field(
                "consumers",
                &self.consumers.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A producer's end of the queue: it can only put.
pub struct Producer<T> {
    queue: JoinableQueue<T>,
    put: std::cell::Cell<u64>,
}

impl<T: Serialize + DeserializeOwned> Producer<T> {
    /// Puts an item for the consumers, waiting while the queue is full. An error if the
    /// queue was closed because every consumer has ended.
    pub fn put(&self, item: T) -> Result<()> {
        self.queue.put(item)?;
        self.put.set(self.put.get() + 1);
        Ok(())
    }
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("put", &self.put.get())
            .finish()
    }
}

/// Whether a process was a producer or a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Puts items.
    Producer,
    /// Takes items.
    Consumer,
}

/// How a producer or consumer failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailureKind {
    /// A producer function, or a consumer function on one item, panicked with this message.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// A producer function returned this error.
    Returned {
        /// The error's text.
        message: String,
    },
    /// The process ended with this exit code without reporting (`exit(n)`, or `-signum`
    /// when a signal such as SIGKILL ended it).
    Died {
        /// The exit code, Python's way.
        exitcode: i32,
    },
}

/// One failure of a producer or consumer process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFailure {
    /// Producer or consumer.
    pub role: Role,
    /// The process's name, as given to the helper.
    pub name: String,
    /// What went wrong.
    pub kind: FailureKind,
}

impl std::fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self.role {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        };
        match &self.kind {
            FailureKind::Panicked { message } => {
                write!(f, "{role} {:?} panicked: {message}", self.name)
            }
            FailureKind::Returned { message } => {
                write!(f, "{role} {:?} failed: {message}", self.name)
            }
            FailureKind::Died { exitcode } => {
                write!(f, "{role} {:?} died with exit code {exitcode}", self.name)
            }
        }
    }
}

/// What a [`ProducerConsumer`] run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConsumerReport {
    /// Items the producers put.
    pub produced: u64,
    /// Items the consumers took and handled (a panicking one included).
    pub consumed: u64,
    /// Items put and never marked done: taken by a consumer that died, or left in the queue
    /// when every consumer had died.
    pub unfinished: usize,
    /// Every failure, producers first, in the order they were given.
    pub failures: Vec<ProcessFailure>,
}

impl ProducerConsumerReport {
    /// Whether every item was handled and nothing failed.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty() && self.unfinished == 0 && self.produced == self.consumed
    }
}

/// What each process reports before it ends.
#[derive(Serialize, Deserialize)]
struct Outcome {
    role: Role,
    index: usize,
    items: u64,
    failures: Vec<FailureKind>,
}

impl<T: Serialize + DeserializeOwned + 'static> ProducerConsumer<T> {
    /// An empty setup: add producers and consumers, then [`run`](Self::run).
    pub fn new() -> Self {
        Self::default()
    }

    /// The most items waiting in the queue at a time (default 0: no item limit). Producers
    /// wait while it is full.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// How the producers and consumers are started (default: the start method in force
    /// when [`run`](Self::run) is called).
    ///
    /// ```
    /// use proc_core::StartMethod;
    /// use proc_patterns::ProducerConsumer;
    ///
    /// fn count_to_three(out: &proc_patterns::Producer<u8>) -> Result<(), proc_patterns::BoxError> {
    ///     for i in 1..=3 {
    ///         out.put(i)?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let report = ProducerConsumer::new()
    ///     .start_method(StartMethod::Spawn)
    ///     .producer("counter", count_to_three)
    ///     .consumer("printer", |i: u8| println!("{i}"))
    ///     .run()?;
    /// assert!(report.is_success());
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Adds a producer process named `name` that runs `produce`.
    pub fn producer<F>(mut self, name: impl Into<String>, produce: F) -> Self
    where
        F: FnOnce(&Producer<T>) -> Result<(), BoxError> + Send + 'static,
    {
        let launch = move |queue, outcomes, index| {
            Process::target(
                move |queue, outcomes, index| {
                    produce_all(queue, outcomes, index, Box::new(produce))
                },
                (queue, outcomes, index),
            )
        };
        self.producers.push((name.into(), Box::new(launch)));
        self
    }

    /// Adds `count` producer processes that each run a copy of `produce`, named
    /// `Producer-1`, `Producer-2`, … (numbered across calls).
    pub fn producers<F>(mut self, count: usize, produce: F) -> Self
    where
        F: FnOnce(&Producer<T>) -> Result<(), BoxError> + Clone + Send + 'static,
    {
        for _ in 0..count {
            let name = format!("Producer-{}", self.producers.len() + 1);
            self = self.producer(name, produce.clone());
        }
        self
    }

    /// Adds a consumer process named `name` that calls `consume` on each item it takes.
    pub fn consumer<F>(mut self, name: impl Into<String>, consume: F) -> Self
    where
        F: FnMut(T) + Send + 'static,
    {
        let launch = move |queue, outcomes, index| {
            Process::target(
                move |queue, outcomes, index| {
                    consume_all(queue, outcomes, index, Box::new(consume))
                },
                (queue, outcomes, index),
            )
        };
        self.consumers.push((name.into(), Box::new(launch)));
        self
    }

    /// Adds `count` consumer processes that each call a copy of `consume`, named
    /// `Consumer-1`, `Consumer-2`, … (numbered across calls).
    pub fn consumers<F>(mut self, count: usize, consume: F) -> Self
    where
        F: FnMut(T) + Clone + Send + 'static,
    {
        for _ in 0..count {
            let name = format!("Consumer-{}", self.consumers.len() + 1);
            self = self.consumer(name, consume.clone());
        }
        self
    }

    /// Starts every producer and consumer, waits until all have ended, and reports.
    ///
    /// The queue is closed when the last producer ends (the consumers then drain it and
    /// stop), or earlier if every consumer has ended (then the producers' puts fail, and
    /// they stop too, instead of waiting forever on a full queue). An error only when the
    /// setup cannot work: no consumer, or a process that could not be started (those
    /// already started are then ended).
    ///
    /// ```
    /// use proc_patterns::{FailureKind, ProducerConsumer, Role};
    ///
    /// let report = ProducerConsumer::new()
    ///     .producer("counter", |out| {
    ///         for i in 0..4u32 {
    ///             out.put(i)?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .consumer("picky", |i: u32| assert!(i != 2, "not two"))
    ///     .run()?;
    /// assert_eq!(report.consumed, 4);
    /// assert_eq!(report.unfinished, 0); // the panicking item was marked done too
    /// assert_eq!(report.failures.len(), 1);
    /// assert_eq!(report.failures[0].role, Role::Consumer);
    /// assert_eq!(report.failures[0].kind, FailureKind::Panicked { message: "not two".into() });
    /// # Ok::<(), proc_patterns::Error>(())
    /// ```
    pub fn run(self) -> Result<ProducerConsumerReport> {
        if self.consumers.is_empty() && !self.producers.is_empty() {
            return Err(Error::InvalidArgument {
                reason: "a producer/consumer run needs at least one consumer",
            });
        }
        let method = self
            .start_method
            .unwrap_or_else(proc_core::get_start_method);
        let queue = JoinableQueue::<T>::new(self.maxsize)?;
        let outcomes = Queue::<Outcome>::new(0)?;
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        let mut names = (Vec::new(), Vec::new());
        let started = (|| -> Result<()> {
            for (index, (name, launch)) in self.consumers.into_iter().enumerate() {
                let mut p = launch(queue.clone(), outcomes.clone(), index)
                    .with_name(name.clone())
                    .with_start_method(method);
                p.start()?;
                consumers.push(p);
                names.1.push(name);
            }
            for (index, (name, launch)) in self.producers.into_iter().enumerate() {
                let mut p = launch(queue.clone(), outcomes.clone(), index)
                    .with_name(name.clone())
                    .with_start_method(method);
                p.start()?;
                producers.push(p);
                names.0.push(name);
            }
            Ok(())
        })();
        if let Err(e) = started {
            for p in producers.iter().chain(&consumers) {
                let _ = p.kill();
                let _ = p.join();
            }
            return Err(e);
        }

        let mut producer_codes: Vec<Option<i32>> = vec![None; producers.len()];
        let mut consumer_codes: Vec<Option<i32>> = vec![None; consumers.len()];
        let mut closed = false;
        loop {
            reap(&producers, &mut producer_codes)?;
            reap(&consumers, &mut consumer_codes)?;
            let producers_done = producer_codes.iter().all(Option::is_some);
            let consumers_done = consumer_codes.iter().all(Option::is_some);
            if !closed && (producers_done || consumers_done) {
                queue.close();
                closed = true;
            }
            if producers_done && consumers_done {
                break;
            }
            let running: Vec<BorrowedFd<'_>> = producers
                .iter()
                .zip(&producer_codes)
                .chain(consumers.iter().zip(&consumer_codes))
                .filter(|(_, code)| code.is_none())
                .filter_map(|(p, _)| p.sentinel().ok())
                .collect();
            wait_any(&running)?;
        }

        let mut report = ProducerConsumerReport {
            produced: 0,
            consumed: 0,
            unfinished: queue.unfinished(),
            failures: Vec::new(),
        };
        let mut reported: Vec<Outcome> = std::iter::from_fn(|| outcomes.try_get().ok()).collect();
        reported.sort_by_key(|o| (o.role == Role::Consumer, o.index));
        let mut failures = Vec::new();
        for (role, names, codes) in [
            (Role::Producer, &names.0, &producer_codes),
            (Role::Consumer, &names.1, &consumer_codes),
        ] {
            for (index, name) in names.iter().enumerate() {
                let outcome = reported.iter().find(|o| o.role == role && o.index == index);
                match outcome {
                    Some(outcome) => {
                        match role {
                            Role::Producer => report.produced += outcome.items,
                            Role::Consumer => report.consumed += outcome.items,
                        }
                        failures.extend(outcome.failures.iter().map(|kind| ProcessFailure {
                            role,
                            name: name.clone(),
                            kind: kind.clone(),
                        }));
                    }
                    None => failures.push(ProcessFailure {
                        role,
                        name: name.clone(),
                        kind: FailureKind::Died {
                            exitcode: codes[index].unwrap_or(-1),
                        },
                    }),
                }
            }
        }
        report.failures = failures;
        Ok(report)
    }
}

/// A producer process's body.
fn produce_all<T: Serialize + DeserializeOwned>(
    queue: JoinableQueue<T>,
    outcomes: Queue<Outcome>,
    index: usize,
    produce: ProducerFn<T>,
) {
    let producer = Producer {
        queue,
        put: std::cell::Cell::new(0),
    };
    let result = catch_unwind(AssertUnwindSafe(|| produce(&producer)));
    let (failures, panic) = match result {
        Ok(Ok(())) => (Vec::new(), None),
        Ok(Err(e)) => (
            vec![FailureKind::Returned {
                message: e.to_string(),
            }],
            None,
        ),
        Err(payload) => (
            vec![FailureKind::Panicked {
                message: panic_message(&*payload),
            }],
            Some(payload),
        ),
    };
    let _ = outcomes.put(Outcome {
        role: Role::Producer,
        index,
        items: producer.put.get(),
        failures,
    });
    if let Some(payload) = panic {
        // Ends the process with exit code 1, as any panic (the hook printed it already).
        resume_unwind(payload);
    }
}

/// A consumer process's body: each item is handed to `consume`, then marked done.
fn consume_all<T: Serialize + DeserializeOwned>(
    queue: JoinableQueue<T>,
    outcomes: Queue<Outcome>,
    index: usize,
    mut consume: ConsumerFn<T>,
) {
    let mut items = 0;
    let mut failures = Vec::new();
    loop {
        match queue.get() {
            Ok(item) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| consume(item))) {
                    failures.push(FailureKind::Panicked {
                        message: panic_message(&*payload),
                    });
                }
                items += 1;
                let _ = queue.task_done();
            }
            // Taken but unreadable: it was counted when put, so it is done now.
            Err(proc_ipc::GetError::Failed(e)) if e.is_about_one_item() => {
                let _ = queue.task_done();
                failures.push(FailureKind::Returned {
                    message: e.to_string(),
                });
            }
            Err(_) => break,
        }
    }
    let _ = outcomes.put(Outcome {
        role: Role::Consumer,
        index,
        items,
        failures,
    });
}

/// Notes the exit code of every process that has ended.
fn reap(processes: &[Process], codes: &mut [Option<i32>]) -> Result<()> {
    for (p, code) in processes.iter().zip(codes.iter_mut()) {
        if code.is_none() {
            *code = p.join_timeout(std::time::Duration::ZERO)?;
        }
    }
    Ok(())
}

/// Blocks until one of the pidfds is readable (its process ended).
fn wait_any(sentinels: &[BorrowedFd<'_>]) -> Result<()> {
    if sentinels.is_empty() {
        return Ok(());
    }
    let mut fds: Vec<PollFd<'_>> = sentinels
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(Error::io(
            "poll on the pidfds of producers and consumers",
            e,
        )),
    }
}
