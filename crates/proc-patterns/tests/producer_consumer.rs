//! ProducerConsumer: producers and consumers as processes, task_done done for them, the
//! queue closed when producers are finished, and failures reported by name. The functions
//! capture nothing, so the processes are forked, spawned or served as
//! `MULTIPROC_START_METHOD` says; one test, pinned to Fork, is about a closure that
//! captures.

mod common;

use common::Tally;
use proc_core::{StartMethod, current_process, exit};
use proc_patterns::{BoxError, Error, FailureKind, Producer, ProducerConsumer, Role};
use proc_sync::Array;

/// Producer `Producer-n` puts the hundred items from `(n - 1) * 100`.
fn put_my_hundred(out: &Producer<u32>) -> Result<(), BoxError> {
    let me: u32 = current_process().name()["Producer-".len()..].parse()?;
    for i in 0..100 {
        out.put((me - 1) * 100 + i)?;
    }
    Ok(())
}

const EVERY_ITEM: &str = "every-item-once";

fn record_every_item(item: u32) {
    Tally::record(EVERY_ITEM, item.into());
}

#[test]
fn every_item_of_every_producer_is_consumed_exactly_once() {
    let tally = Tally::new(EVERY_ITEM);
    let report = ProducerConsumer::new()
        .producers(3, put_my_hundred)
        .consumers(2, record_every_item)
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        (report.produced, report.consumed, report.unfinished),
        (300, 300, 0)
    );
    assert_eq!(tally.items(), (0..300).collect::<Vec<u64>>());
}

// Pinned to Fork: the subject is a consumer closure that captures a handle, which only a
// copy of this process can run (under Spawn it is refused, see start_methods.rs).
#[test]
fn a_consumer_closure_that_captures_a_handle_shares_it_under_fork() {
    let seen = Array::<u32>::new(300).unwrap();
    let report = ProducerConsumer::new()
        .start_method(StartMethod::Fork)
        .producers(3, put_my_hundred)
        .consumers(2, {
            let seen = seen.clone();
            move |item: u32| seen.lock()[item as usize] += 1
        })
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!((report.produced, report.consumed), (300, 300));
    assert!(seen.lock().iter().all(|&n| n == 1));
}

#[test]
fn processes_carry_the_names_they_were_given() {
    let report = ProducerConsumer::new()
        .producer("小王", |out| {
            assert_eq!(current_process().name(), "小王");
            out.put(0u8)?;
            out.put(1u8)?;
            Ok(())
        })
        // A panic here would be a failure in the report.
        .consumer("小戴", |_: u8| {
            assert_eq!(current_process().name(), "小戴")
        })
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!((report.produced, report.consumed), (2, 2));
}

#[test]
fn a_bounded_queue_makes_producers_wait_and_still_delivers_everything() {
    let report = ProducerConsumer::new()
        .maxsize(2)
        .producers(2, |out| {
            for i in 0..50u64 {
                out.put(i)?;
            }
            Ok(())
        })
        .consumers(1, |_: u64| {})
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.consumed, 100);
}

#[test]
fn a_consumer_panic_on_one_item_is_reported_and_the_item_still_marked_done() {
    let report = ProducerConsumer::new()
        .producer("p", |out| {
            for i in 0..10u32 {
                out.put(i)?;
            }
            Ok(())
        })
        .consumer("picky", |i: u32| assert!(i != 4, "four is bad"))
        .run()
        .unwrap();
    assert_eq!((report.consumed, report.unfinished), (10, 0));
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!(
        (failure.role, failure.name.as_str()),
        (Role::Consumer, "picky")
    );
    assert_eq!(
        failure.kind,
        FailureKind::Panicked {
            message: "four is bad".into()
        }
    );
    assert!(!report.is_success());
}

#[test]
fn a_producer_that_returns_an_error_or_panics_is_reported_by_name() {
    let report = ProducerConsumer::new()
        .producer("returns", |out| {
            out.put(1u8)?;
            Err("out of flour".into())
        })
        .producer("panics", |_| panic!("burnt the buns"))
        .producer("fine", |out| {
            out.put(2u8)?;
            Ok(())
        })
        .consumer("eater", |_: u8| {})
        .run()
        .unwrap();
    assert_eq!((report.produced, report.consumed), (2, 2));
    assert_eq!(report.failures.len(), 2);
    assert_eq!(report.failures[0].name, "returns");
    assert_eq!(
        report.failures[0].kind,
        FailureKind::Returned {
            message: "out of flour".into()
        }
    );
    assert_eq!(report.failures[1].name, "panics");
    assert_eq!(
        report.failures[1].kind,
        FailureKind::Panicked {
            message: "burnt the buns".into()
        }
    );
}

#[test]
fn a_consumer_that_dies_is_reported_with_its_exit_code_and_its_item_stays_unfinished() {
    let report = ProducerConsumer::new()
        .producer("p", |out| {
            for i in 0..20u32 {
                out.put(i)?;
            }
            Ok(())
        })
        .consumer("dies", |i: u32| {
            if i == 5 {
                exit(3);
            }
        })
        .run()
        .unwrap();
    let died = report
        .failures
        .iter()
        .find(|f| f.name == "dies")
        .expect("the dying consumer is reported");
    assert_eq!(
        (died.role, &died.kind),
        (Role::Consumer, &FailureKind::Died { exitcode: 3 })
    );
    // Items 0 to 4 were marked done; item 5 died with the consumer, the rest were never
    // taken (the queue closed when the last consumer had died, so the producer may have
    // stopped early).
    assert_eq!(report.unfinished as u64, report.produced - 5);
    assert!(!report.is_success());
}

#[test]
fn producers_do_not_wait_forever_when_every_consumer_has_died() {
    let report = ProducerConsumer::new()
        .maxsize(1)
        .producer("p", |out| {
            for i in 0..1000u32 {
                out.put(i)?;
            }
            Ok(())
        })
        .consumer("c", |_: u32| exit(5))
        .run()
        .unwrap();
    let roles: Vec<Role> = report.failures.iter().map(|f| f.role).collect();
    assert!(roles.contains(&Role::Consumer), "{report:?}");
    assert!(report.produced < 1000);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.role == Role::Producer && matches!(f.kind, FailureKind::Returned { .. }))
    );
}

#[test]
fn a_run_without_consumers_is_refused() {
    let run = ProducerConsumer::new()
        .producer("p", |out| {
            out.put(1u8)?;
            Ok(())
        })
        .run();
    assert!(matches!(run, Err(Error::InvalidArgument { .. })));
}
