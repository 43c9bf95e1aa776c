//! `multiproc-bench`: multiproc's side of `cargo xtask bench`. Runs one workload of
//! `benches/README.md` once and prints one JSON line; `benches/python/baseline.py` and
//! `benches/limits` do the same work, item for item, with Python's `multiprocessing` and
//! with bare system calls.
//!
//! ```text
//! multiproc-bench --list             # the workloads it runs, one a line
//! multiproc-bench WORKLOAD COUNT     # runs one, prints one JSON line
//! ```

use std::error::Error;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use multiproc::{
    ByteBuf, Event, Executor, JoinableQueue, Lock, Pool, Process, Queue, SharedMemory, StartMethod,
    Value, pipe,
};

type Outcome = Result<Duration, Box<dyn Error>>;

/// One workload: runs `count` operations and returns the time of its timed part.
type Workload = fn(u64) -> Outcome;

/// The start methods of this build of multiproc, by Python's names: `spawn_join:METHOD`
/// runs under each.
const START_METHODS: [&str; 3] = ["fork", "spawn", "forkserver"];

/// The workloads other than `spawn_join:METHOD`, by name.
const WORKLOADS: &[(&str, Workload)] = &[
    ("queue_small_1to1", |count| queue_small(1, count)),
    ("queue_small_2to2", |count| queue_small(2, count)),
    ("queue_1mib_1to1", queue_1mib),
    ("queue_1mib_vec_u8", |count| {
        queue_1mib_of(count, vec![0u8; MIB], |v| assert_eq!(v.len(), MIB))
    }),
    ("queue_1mib_string", |count| {
        queue_1mib_of(count, "x".repeat(MIB), |s| assert_eq!(s.len(), MIB))
    }),
    ("queue_1mib_vec_f64", |count| {
        queue_1mib_of(count, vec![0.5f64; MIB / 8], |v| {
            assert_eq!(v.len(), MIB / 8)
        })
    }),
    ("queue_1mib_vec_u32", |count| {
        let values = (0..MIB as u32 / 4)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        queue_1mib_of(count, values, |v: &Vec<u32>| assert_eq!(v.len(), MIB / 4))
    }),
    ("pingpong_pipe", pingpong_pipe),
    ("pingpong_queues", pingpong_queues),
    ("lock_uncontended", lock_uncontended),
    ("lock_contended", lock_contended),
    ("joinable_pipeline", joinable_pipeline),
    ("pool_map", pool_map),
    ("pool_map_reused", pool_map_reused),
    ("pool_map_steady", pool_map_steady),
    ("shm_attach_read_1mib", shm_attach_read_1mib),
    ("shm_create_unlink", shm_create_unlink),
    ("pool_starmap", pool_starmap),
    ("executor_submit_result", executor_submit_result),
];

const USAGE: &str = "usage: multiproc-bench --list | multiproc-bench WORKLOAD COUNT";

fn main() -> ExitCode {
    // A spawned or served child of this program becomes its task here, not a benchmark.
    multiproc::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--list"] => {
            for method in START_METHODS {
                println!("spawn_join:{method}");
            }
            for (name, _) in WORKLOADS {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [name, count] => match count_of(count).and_then(|count| Ok((count, run(name, count)?))) {
            Ok((count, elapsed)) => {
                let line = serde_json::json!({
                    "workload": name,
                    "impl": "multiproc",
                    "count": count,
                    "seconds": elapsed.as_secs_f64(),
                });
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("multiproc-bench {name} {count}: {message}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// COUNT, a whole number of at least 1.
fn count_of(text: &str) -> Result<u64, Box<dyn Error>> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("COUNT must be a whole number of at least 1, got {text:?}").into()),
    }
}

fn run(name: &str, count: u64) -> Outcome {
    if let Some(method) = name.strip_prefix("spawn_join:") {
        if !START_METHODS.contains(&method) {
            return Err(format!(
                "this build of multiproc has no start method {method:?} (it has {START_METHODS:?})"
            )
            .into());
        }
        let method: StartMethod = method.parse()?;
        return spawn_join(method, count);
    }
    let (_, workload) = WORKLOADS
        .iter()
        .find(|(known, _)| *known == name)
        .ok_or_else(|| format!("unknown workload (known: see --list)\n{USAGE}"))?;
    workload(count)
}

fn noop() {}

/// `count` no-op processes started by `method` and joined one after the other, after one
/// untimed (which, under ForkServer, starts the fork server).
fn spawn_join(method: StartMethod, count: u64) -> Outcome {
    let one = || -> Result<(), Box<dyn Error>> {
        let mut p = Process::target(noop, ()).with_start_method(method);
        p.start()?;
        match p.join()? {
            0 => Ok(()),
            code => Err(format!("a no-op child exited with {code}").into()),
        }
    };
    one()?;
    let start = Instant::now();
    for _ in 0..count {
        one()?;
    }
    Ok(start.elapsed())
}

fn started(body: impl FnOnce() + Send + 'static) -> Result<Process, Box<dyn Error>> {
    let mut p = Process::new(body);
    p.start()?;
    Ok(p)
}

/// Joins every process; an error unless each exited with 0.
fn join_all(processes: &[Process]) -> Result<(), Box<dyn Error>> {
    for p in processes {
        let code = p.join()?;
        if code != 0 {
            return Err(format!("{} exited with {code}", p.name()).into());
        }
    }
    Ok(())
}

/// `producers` processes put `count` items in all (`item(i)` for i in 0..count/producers
/// each) into a queue of `maxsize`; `consumers` processes get them until the queue is
/// closed and drained. Timed from the producers' start signal to the last join.
fn queue_transfer<T>(
    producers: u64,
    consumers: u64,
    maxsize: usize,
    count: u64,
    put: impl Fn(&Queue<T>, u64) -> bool + Clone + Send + 'static,
    check: fn(&T),
) -> Outcome
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    if !count.is_multiple_of(producers) {
        return Err(format!("COUNT must be a multiple of {producers}").into());
    }
    let per = count / producers;
    let q: Queue<T> = Queue::new(maxsize)?;
    let go = Event::new()?;
    let received = Value::new(0u64)?;
    let consuming = (0..consumers)
        .map(|_| {
            let (q, received) = (q.clone(), received.clone());
            started(move || {
                let mut n = 0;
                for item in q.iter() {
                    check(&item);
                    n += 1;
                }
                *received.lock() += n;
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let producing = (0..producers)
        .map(|_| {
            let (q, go, put) = (q.clone(), go.clone(), put.clone());
            started(move || {
                go.wait();
                for i in 0..per {
                    if !put(&q, i) {
                        panic!("put failed");
                    }
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    go.set();
    join_all(&producing)?;
    q.close();
    join_all(&consuming)?;
    let elapsed = start.elapsed();
    match received.get() {
        n if n == count => Ok(elapsed),
        n => Err(format!("{n} items arrived of {count}").into()),
    }
}

fn queue_small(producers: u64, count: u64) -> Outcome {
    queue_transfer(
        producers,
        producers,
        1024,
        count,
        |q, i| q.put((i, "sixteen bytes!!!".to_string())).is_ok(),
        |(_, text)| assert_eq!(text.len(), 16),
    )
}

const MIB: usize = 1 << 20;

fn queue_1mib(count: u64) -> Outcome {
    // One buffer, put again and again, as Python's `put(buf)` does: `put_ref` copies it
    // into the queue and leaves it with the caller.
    let buf = ByteBuf::from(vec![0u8; MIB]);
    queue_transfer(
        1,
        1,
        16,
        count,
        move |q, _| q.put_ref(&buf).is_ok(),
        |buf| assert_eq!(buf.len(), MIB),
    )
}

/// As `queue_1mib`, with 1 MiB of a natural type (`Vec<u8>`, `String`, `Vec<f64>`,
/// `Vec<u32>`) where a new user would put it, instead of a `ByteBuf`.
fn queue_1mib_of<T>(count: u64, item: T, check: fn(&T)) -> Outcome
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let item = std::sync::Arc::new(item);
    queue_transfer(
        1,
        1,
        16,
        count,
        move |q, _| q.put_ref(&*item).is_ok(),
        check,
    )
}

/// A u64 there and back over a duplex pipe, `count` times, with an echoing child.
fn pingpong_pipe(count: u64) -> Outcome {
    let (here, there) = pipe()?;
    let echo = started(move || {
        for _ in 0..count {
            let v: u64 = there.recv().expect("recv");
            there.send(&v).expect("send");
        }
    })?;
    let start = Instant::now();
    for i in 0..count {
        here.send(&i)?;
        if here.recv::<u64>()? != i {
            return Err("the echo sent back another value".into());
        }
    }
    let elapsed = start.elapsed();
    join_all(&[echo])?;
    Ok(elapsed)
}

/// A u64 there and back over two queues of maxsize 1, `count` times, with an echoing child.
fn pingpong_queues(count: u64) -> Outcome {
    let there: Queue<u64> = Queue::new(1)?;
    let back: Queue<u64> = Queue::new(1)?;
    let echo = {
        let (there, back) = (there.clone(), back.clone());
        started(move || {
            for _ in 0..count {
                if back.put(there.get().expect("get")).is_err() {
                    panic!("put failed");
                }
            }
        })?
    };
    let start = Instant::now();
    for i in 0..count {
        there.put(i)?;
        if back.get()? != i {
            return Err("the echo sent back another value".into());
        }
    }
    let elapsed = start.elapsed();
    join_all(&[echo])?;
    Ok(elapsed)
}

fn lock_uncontended(count: u64) -> Outcome {
    let lock = Lock::new()?;
    let start = Instant::now();
    for _ in 0..count {
        drop(black_box(&lock).acquire());
    }
    Ok(start.elapsed())
}

/// Two processes add 1 to a shared `Value<u64>` under its lock, `count / 2` times each.
fn lock_contended(count: u64) -> Outcome {
    if !count.is_multiple_of(2) {
        return Err("COUNT must be even".into());
    }
    let counter = Value::new(0u64)?;
    let go = Event::new()?;
    let children = (0..2)
        .map(|_| {
            let (counter, go) = (counter.clone(), go.clone());
            started(move || {
                go.wait();
                for _ in 0..count / 2 {
                    *counter.lock() += 1;
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    go.set();
    join_all(&children)?;
    let elapsed = start.elapsed();
    match counter.get() {
        n if n == count => Ok(elapsed),
        n => Err(format!("the counter is {n}, not {count}").into()),
    }
}

/// Main puts `count` u64s into an unbounded JoinableQueue, two consumer processes get and
/// `task_done` each, main joins. Timed from the first put to the end of `join`.
fn joinable_pipeline(count: u64) -> Outcome {
    let q: JoinableQueue<u64> = JoinableQueue::new(0)?;
    let consumers = (0..2)
        .map(|_| {
            let q = q.clone();
            started(move || {
                while q.get().is_ok() {
                    q.task_done().expect("task_done");
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    for i in 0..count {
        q.put(i)?;
    }
    q.join();
    let elapsed = start.elapsed();
    q.close();
    join_all(&consumers)?;
    Ok(elapsed)
}

fn double(x: u64) -> u64 {
    x * 2
}

/// `Pool.map` of `double` over 0..count on a pool of 2 workers made (and warmed up by a map
/// over 1,000 inputs) beforehand, with the default chunksize.
fn pool_map(count: u64) -> Outcome {
    pool_map_after(&[1_000], count)
}

fn pool_map_reused(count: u64) -> Outcome {
    pool_map_after(&[count], count)
}

fn pool_map_steady(count: u64) -> Outcome {
    pool_map_after(&[count; 3], count)
}

/// `Pool.map` of `double` over `0..count`, timed, on a pool of 2 made and warmed up
/// beforehand by a map over `0..n` for each `n` of `warm_ups`.
fn pool_map_after(warm_ups: &[u64], count: u64) -> Outcome {
    let pool = Pool::new(2)?;
    for &warm_up in warm_ups {
        pool.map(double, 0..warm_up)?;
    }
    let start = Instant::now();
    let results = pool.map(double, 0..count)?;
    let elapsed = start.elapsed();
    if results.len() as u64 != count || results.last() != Some(&double(count - 1)) {
        return Err("the map's results are wrong".into());
    }
    Ok(elapsed)
}

/// Opens a 1 MiB block by name, copies all of it into a reused buffer and closes it,
/// `count` times (after one untimed), in one process. The block is made and filled in
/// set-up and unlinked after, whatever the outcome.
fn shm_attach_read_1mib(count: u64) -> Outcome {
    let block = SharedMemory::create(MIB)?;
    let outcome = attach_read(&block, count);
    block.unlink()?;
    outcome
}

fn attach_read(block: &SharedMemory, count: u64) -> Outcome {
    // No page of the block is all zeros.
    let expected: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    block.write_bytes(0, &expected)?;
    let mut buf = vec![0u8; MIB];
    let mut one = || -> Result<(), Box<dyn Error>> {
        let attached = SharedMemory::open(block.name())?;
        attached.read_bytes(0, black_box(&mut buf))?;
        drop(attached); // unmaps and closes
        Ok(())
    };
    one()?; // and `buf`'s pages are touched
    let start = Instant::now();
    for _ in 0..count {
        one()?;
    }
    let elapsed = start.elapsed();
    if buf != expected {
        return Err("the bytes read are not those written".into());
    }
    Ok(elapsed)
}

/// Creates a 4 KiB block under a fresh name, writes 8 bytes into it, unlinks and closes it,
/// `count` times after one untimed (which starts the resource tracker).
fn shm_create_unlink(count: u64) -> Outcome {
    let one = |i: u64| -> Result<(), Box<dyn Error>> {
        let block = SharedMemory::create(4096)?;
        block.write(0, &i)?;
        block.unlink()?;
        drop(block); // unmaps and closes
        Ok(())
    };
    one(0)?;
    let start = Instant::now();
    for i in 0..count {
        one(i)?;
    }
    Ok(start.elapsed())
}

fn add(x: u64, y: u64) -> u64 {
    x + y
}

/// `Pool.starmap` of `add` over the pairs `(i, i)` of `0..count`, timed, on a pool of 2
/// made and warmed up beforehand by a starmap over 1,000 pairs.
fn pool_starmap(count: u64) -> Outcome {
    let pairs = |n: u64| (0..n).map(|i| (i, i));
    let pool = Pool::new(2)?;
    pool.starmap(add, pairs(1_000))?;
    let start = Instant::now();
    let results = pool.starmap(add, pairs(count))?;
    let elapsed = start.elapsed();
    if results.len() as u64 != count || results.last() != Some(&double(count - 1)) {
        return Err("the starmap's results are wrong".into());
    }
    Ok(elapsed)
}

/// `count` round trips of `submit(double, i)` then `result()`, one at a time, timed, on an
/// executor of 2 workers made and warmed up beforehand by 100 round trips.
fn executor_submit_result(count: u64) -> Outcome {
    let ex = Executor::new(2)?;
    for i in 0..100 {
        ex.submit(double, i)?.result()?;
    }
    let start = Instant::now();
    for i in 0..count {
        if ex.submit(double, i)?.result()? != double(i) {
            return Err("a task's result is wrong".into());
        }
    }
    Ok(start.elapsed())
}
