//! The patterns under every start method: a joinable queue passed to spawned consumers, a
//! pool whose workers are spawned or served (map, imap_unordered, apply_async, panics, an
//! initializer, maxtasksperchild, a worker killed from outside), and the producer/consumer
//! helper.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proc_core::{Process, StartMethod};
use proc_patterns::{Error, JoinableQueue, Pool, Producer, ProducerConsumer};

fn mark_done(queue: JoinableQueue<u32>, done: proc_sync::Value<u64>) {
    for item in queue.iter() {
        *done.lock() += u64::from(item);
        queue.task_done().unwrap();
    }
}

#[test]
fn a_joinable_queue_passed_to_children_joins_across_them() {
    for method in StartMethod::ALL {
        let queue = JoinableQueue::<u32>::new(8).unwrap();
        let done = proc_sync::Value::new(0u64).unwrap();
        let consumers: Vec<Process> = (0..2)
            .map(|_| {
                let mut p = Process::target(mark_done, (queue.clone(), done.clone()))
                    .with_start_method(method);
                p.start().unwrap();
                p
            })
            .collect();
        for item in 1..=100 {
            queue.put(item).unwrap();
        }
        assert!(queue.join_timeout(Duration::from_secs(60)), "{method}");
        assert_eq!(queue.unfinished(), 0);
        assert_eq!(done.get(), 5050, "{method}");
        queue.close();
        for p in consumers {
            assert_eq!(p.join().unwrap(), 0, "{method}");
        }
    }
}

fn square(x: u64) -> u64 {
    x * x
}

fn fail_on_seven(x: u32) -> u32 {
    assert_ne!(x, 7, "seven is not allowed");
    x
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

static INITIALIZED: AtomicBool = AtomicBool::new(false);

fn initialize() {
    INITIALIZED.store(true, Ordering::Relaxed);
}

fn was_initialized(_: u32) -> bool {
    INITIALIZED.load(Ordering::Relaxed)
}

/// Creates the file at `started` (so the test knows the task runs), then sleeps.
fn announce_then_sleep((started, seconds): (String, u64)) -> u64 {
    std::fs::write(&started, b"running").unwrap();
    std::thread::sleep(Duration::from_secs(seconds));
    seconds
}

#[test]
fn a_pool_maps_under_every_start_method() {
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        assert_eq!(
            pool.map(square, 0..1000u64).unwrap(),
            (0..1000u64).map(square).collect::<Vec<_>>(),
            "{method}"
        );
        let mut unordered: Vec<u64> = pool
            .imap_unordered(square, 0..50u64)
            .map(Result::unwrap)
            .collect();
        unordered.sort_unstable();
        assert_eq!(unordered, (0..50u64).map(square).collect::<Vec<_>>());
        assert_eq!(pool.apply_async(square, 12).get().unwrap(), 144);
        // A panicking task is that task's error; the pool goes on.
        let results: Vec<_> = pool
            .imap(fail_on_seven, 0..10u32)
            .collect::<Vec<Result<u32, Error>>>();
        assert!(
            matches!(&results[7], Err(Error::TaskPanicked { message }) if message.contains("seven"))
        );
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 9);
        pool.close();
        pool.join().unwrap();
    }
}

#[test]
fn pool_workers_run_the_initializer_and_are_replaced_after_maxtasksperchild() {
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(2)
            .initializer(initialize)
            .maxtasksperchild(1)
            .chunksize(1)
            .start_method(method)
            .build()
            .unwrap();
        assert!(
            pool.map(was_initialized, 0..4)
                .unwrap()
                .into_iter()
                .all(|b| b),
            "{method}"
        );
        let pids: HashSet<u32> = pool.map(pid, 0..4).unwrap().into_iter().collect();
        assert_eq!(
            pids.len(),
            4,
            "{method}: one task per worker, then a new worker"
        );
    }
}

#[test]
fn a_pool_worker_killed_from_outside_fails_its_task_and_is_replaced() {
    for method in StartMethod::ALL {
        let pool = Pool::builder()
            .processes(1)
            .start_method(method)
            .build()
            .unwrap();
        let victim = pool.pids()[0];
        let started = std::env::temp_dir().join(format!(
            "multiproc-pool-test-{}-{method}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&started);
        let slow = pool.apply_async(
            announce_then_sleep,
            (started.to_string_lossy().into_owned(), 60),
        );
        while !started.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = std::fs::remove_file(&started);
        // The only worker now holds the slow task: end it from outside.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        match slow.get() {
            Err(Error::WorkerDied { pid, exitcode }) => {
                assert_eq!((pid, exitcode), (victim, -9), "{method}");
            }
            other => panic!("{method}: expected WorkerDied, got {other:?}"),
        }
        assert_eq!(
            pool.apply(square, 3).unwrap(),
            9,
            "{method}: a new worker took over"
        );
        assert_ne!(pool.pids()[0], victim);
    }
}

fn bake(out: &Producer<String>) -> Result<(), proc_patterns::BoxError> {
    for i in 0..10 {
        out.put(format!("bun {i}"))?;
    }
    Ok(())
}

#[test]
fn producer_consumer_runs_under_every_start_method() {
    for method in StartMethod::ALL {
        let report = ProducerConsumer::new()
            .start_method(method)
            .maxsize(3)
            .producer("baker", bake)
            .producer("other baker", bake)
            .consumers(2, |bun: String| assert!(bun.starts_with("bun")))
            .run()
            .unwrap();
        assert!(report.is_success(), "{method}: {report:?}");
        assert_eq!((report.produced, report.consumed), (20, 20), "{method}");
    }
}

#[test]
fn a_producer_closure_that_captures_needs_fork() {
    let label = String::from("captured");
    let started = ProducerConsumer::new()
        .start_method(StartMethod::Spawn)
        .producer("capturing", move |out: &Producer<String>| {
            out.put(label.clone())?;
            Ok(())
        })
        .consumer("eater", |_: String| {})
        .run();
    assert!(
        matches!(
            started,
            Err(Error::Process(proc_core::Error::TargetCannotTravel { .. }))
        ),
        "{started:?}"
    );
}
