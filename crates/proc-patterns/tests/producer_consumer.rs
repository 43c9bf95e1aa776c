//! ProducerConsumer: producers and consumers as processes, task_done done for them, the
//! queue closed when producers are finished, and failures reported by name.

use proc_core::{current_process, exit};
use proc_patterns::producer_consumer::{FailureKind, Role};
use proc_patterns::{Error, ProducerConsumer};
use proc_sync::Array;

#[test]
fn every_item_of_every_producer_is_consumed_exactly_once() {
    let seen = Array::<u32>::new(300).unwrap();
    let report = ProducerConsumer::new()
        .producers(3, |out| {
            let me: u32 = current_process().name()["Producer-".len()..].parse()?;
            for i in 0..100 {
                out.put((me - 1) * 100 + i)?;
            }
            Ok(())
        })
        .consumers(2, {
            let seen = seen.clone();
            move |item: u32| seen.lock()[item as usize] += 1
        })
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        (report.produced, report.consumed, report.unfinished),
        (300, 300, 0)
    );
    assert!(seen.lock().iter().all(|&n| n == 1));
}

#[test]
fn processes_carry_the_names_they_were_given() {
    let names = Array::<u8>::new(2).unwrap();
    let report = ProducerConsumer::new()
        .producer("小王", |out| {
            assert_eq!(current_process().name(), "小王");
            out.put(0u8)?;
            out.put(1u8)?;
            Ok(())
        })
        .consumer("小戴", {
            let names = names.clone();
            move |i: u8| {
                if current_process().name() == "小戴" {
                    names.lock()[i as usize] = 1;
                }
            }
        })
        .run()
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(&*names.lock(), &[1, 1]);
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
