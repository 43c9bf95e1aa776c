//! Pool: an initializer with an argument (Python's `initializer` and `initargs`), and
//! initializers that fail: consecutive failures back off, and after a bounded number the
//! pool fails its work with `InitializerFailed` instead of starting workers forever; one
//! that fails only once recovers. The workers are forked, spawned or served as
//! `MULTIPROC_START_METHOD` says.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::NEVER;
use proc_patterns::{Error, Pool};
use serde::{Deserialize, Serialize, Serializer};

static SETTING: OnceLock<(String, u32)> = OnceLock::new();

fn remember(setting: (String, u32)) {
    SETTING
        .set(setting)
        .expect("the initializer runs once per worker");
}

fn setting(_: ()) -> Option<(String, u32)> {
    SETTING.get().cloned()
}

#[test]
fn every_worker_runs_the_initializer_with_its_argument_before_its_tasks() {
    let pool = Pool::builder()
        .processes(2)
        .chunksize(1)
        .initializer_with(remember, ("小王".to_string(), 42))
        .build()
        .unwrap();
    let seen = pool.map(setting, vec![(); 8]).unwrap();
    assert!(
        seen.iter().all(|s| s == &Some(("小王".to_string(), 42))),
        "{seen:?}"
    );
    assert_eq!(
        setting(()),
        None,
        "the pool's own process is not initialized"
    );
}

#[test]
fn replacement_workers_run_the_initializer_too() {
    let pool = Pool::builder()
        .processes(1)
        .maxtasksperchild(1)
        .chunksize(1)
        .initializer_with(remember, ("again".to_string(), 7))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            pool.apply(setting, ()).unwrap(),
            Some(("again".to_string(), 7))
        );
    }
}

/// An argument whose encoding fails.
#[derive(Deserialize)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

fn take_unencodable(_: Unencodable) {}

#[test]
fn an_initializer_argument_that_does_not_encode_fails_the_build() {
    let built = Pool::builder()
        .processes(1)
        .initializer_with(take_unencodable, Unencodable)
        .build();
    match built {
        Err(Error::Codec(e)) => assert!(e.to_string().contains("refuses"), "{e}"),
        other => panic!("expected a codec error, got {other:?}"),
    }
}

fn always_fails() {
    panic!("the database is not there");
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn an_initializer_that_always_fails_makes_pending_and_later_calls_fail_instead_of_hanging() {
    let start = Instant::now();
    let pool = Pool::builder()
        .processes(2)
        .initializer(always_fails)
        .build()
        .unwrap();
    let pending = pool.apply_async(square, 3);
    match pending.get_timeout(NEVER) {
        Err(Error::InitializerFailed {
            message, attempts, ..
        }) => {
            assert!(message.contains("the database is not there"), "{message}");
            // Bounded: a few per worker, not hundreds a second forever.
            assert!((2..=20).contains(&attempts), "{attempts}");
        }
        other => panic!("expected InitializerFailed, got {other:?}"),
    }
    assert!(start.elapsed() < NEVER);
    let replaced = pool.stats().workers_replaced;
    assert!(
        replaced <= 20,
        "{replaced} workers started in place of failed ones"
    );
    assert!(matches!(
        pool.map(square, 0..10),
        Err(Error::InitializerFailed { .. })
    ));
    let later: Vec<_> = pool.imap(square, 0..3).collect();
    assert!(
        later
            .iter()
            .all(|r| matches!(r, Err(Error::InitializerFailed { .. }))),
        "{later:?}"
    );
    pool.close();
    pool.join().unwrap();
    assert!(pool.pids().is_empty());
}

/// Fails the first time it runs (the first worker creates the file at `marker`), then
/// succeeds: a resource that was not ready yet.
fn fails_the_first_time(marker: String) {
    let first = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok();
    if first {
        panic!("not ready yet");
    }
}

#[test]
fn a_pool_whose_initializer_fails_once_recovers_and_runs_every_task() {
    let marker = std::env::temp_dir().join(format!("multiproc-init-once-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let pool = Pool::builder()
        .processes(2)
        .initializer_with(fails_the_first_time, marker.to_string_lossy().into_owned())
        .build()
        .unwrap();
    let squares = pool.map(square, 0..100);
    let _ = std::fs::remove_file(&marker);
    assert_eq!(squares.unwrap(), (0..100).map(square).collect::<Vec<_>>());
    assert_eq!(pool.pids().len(), 2, "the failed worker was replaced");
    // It keeps working afterwards.
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let waited = Instant::now();
    assert_eq!(pool.apply(square, 2).unwrap(), 4);
    assert!(waited.elapsed() < Duration::from_secs(30));
}
