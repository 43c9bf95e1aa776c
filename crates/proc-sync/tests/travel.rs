//! Every handle of proc-sync travels: passed as an argument of `Process::target`, it refers
//! to the same object in the child, under every start method (each test here goes through
//! all three itself); captured by a closure, it is the same object in a forked child.

use std::time::Duration;

use proc_core::{Process, StartMethod};
use proc_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Error, Event, Lock, RLock, Semaphore, Value,
};

fn run<F, Args>(method: StartMethod, target: F, args: Args) -> i32
where
    F: proc_core::Target<Args>,
    Args: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut p = Process::target(target, args).with_start_method(method);
    p.start().expect("start");
    p.join().expect("join")
}

fn add_under_lock(counter: Value<u64>, lock: Lock, rlock: RLock, times: u64) {
    for _ in 0..times {
        let _outer = rlock.acquire();
        let _inner = rlock.acquire();
        let _guard = lock.acquire();
        counter.set(counter.get() + 1);
    }
}

#[test]
fn locks_and_values_are_the_same_objects_in_the_child() {
    for method in StartMethod::ALL {
        let counter = Value::new(0u64).unwrap();
        let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
        let mut children: Vec<Process> = (0..2)
            .map(|_| {
                let mut p = Process::target(
                    add_under_lock,
                    (counter.clone(), lock.clone(), rlock.clone(), 500),
                )
                .with_start_method(method);
                p.start().unwrap();
                p
            })
            .collect();
        add_under_lock(counter.clone(), lock.clone(), rlock.clone(), 500);
        for p in &mut children {
            assert_eq!(p.join().unwrap(), 0, "{method}");
        }
        assert_eq!(counter.get(), 1500, "{method}");
    }
}

// Pinned to Fork: the subject is what a closure captures, and only a copy of this process
// can run a closure (under Spawn or ForkServer, `start()` refuses it with ClosureNeedsFork).
#[test]
fn handles_captured_by_a_forked_closure_are_the_same_objects() {
    let counter = Value::new(0u64).unwrap();
    let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
    let mut child = Process::new({
        let (counter, lock, rlock) = (counter.clone(), lock.clone(), rlock.clone());
        move || add_under_lock(counter, lock, rlock, 500)
    })
    .with_start_method(StartMethod::Fork);
    child.start().unwrap();
    add_under_lock(counter.clone(), lock.clone(), rlock.clone(), 500);
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(counter.get(), 1000);
}

fn die_holding(lock: Lock) {
    std::mem::forget(lock.acquire());
    proc_core::exit(3);
}

#[test]
fn a_lock_whose_holder_died_in_a_spawned_child_is_taken_over() {
    for method in StartMethod::ALL {
        let lock = Lock::new().unwrap();
        assert_eq!(run(method, die_holding, (lock.clone(),)), 3, "{method}");
        let guard = lock
            .acquire_timeout(Duration::from_secs(10))
            .expect("taken over");
        assert!(guard.previous_owner_died(), "{method}");
    }
}

fn fill(squares: Array<u32>) {
    for (i, x) in squares.lock().iter_mut().enumerate() {
        *x = (i * i) as u32;
    }
}

#[test]
fn an_array_keeps_its_length_and_contents() {
    for method in StartMethod::ALL {
        let squares = Array::<u32>::new(5).unwrap();
        assert_eq!(run(method, fill, (squares.clone(),)), 0, "{method}");
        assert_eq!(squares.to_vec(), [0, 1, 4, 9, 16], "{method}");
    }
}

fn signal_back(go: Event, done: Event, permits: Semaphore, bounded: BoundedSemaphore) {
    assert!(go.wait_timeout(Duration::from_secs(10)));
    permits.release().unwrap();
    permits.release().unwrap();
    // The bound travelled too: one release above the initial value is refused.
    bounded.acquire();
    bounded.release().unwrap();
    assert!(matches!(
        bounded.release(),
        Err(Error::SemaphoreOverRelease { limit: 1 })
    ));
    done.set();
}

#[test]
fn events_and_semaphores_cross_both_ways() {
    for method in StartMethod::ALL {
        let (go, done) = (Event::new().unwrap(), Event::new().unwrap());
        let permits = Semaphore::new(0).unwrap();
        let bounded = BoundedSemaphore::new(1).unwrap();
        let mut p = Process::target(
            signal_back,
            (go.clone(), done.clone(), permits.clone(), bounded.clone()),
        )
        .with_start_method(method);
        p.start().unwrap();
        go.set();
        assert!(done.wait_timeout(Duration::from_secs(10)), "{method}");
        assert!(permits.acquire_timeout(Duration::from_secs(10)));
        assert!(permits.acquire_timeout(Duration::from_secs(10)));
        assert_eq!(p.join().unwrap(), 0, "{method}");
    }
}

fn meet_and_count(barrier: Barrier, ready: Condition<u32>) {
    barrier.wait().unwrap();
    *ready.lock() += 1;
    ready.notify_all();
}

#[test]
fn barriers_and_conditions_reach_the_child() {
    for method in StartMethod::ALL {
        let barrier = Barrier::new(3).unwrap();
        let ready = Condition::with_value(0u32).unwrap();
        let children: Vec<Process> = (0..2)
            .map(|_| {
                let mut p = Process::target(meet_and_count, (barrier.clone(), ready.clone()))
                    .with_start_method(method);
                p.start().unwrap();
                p
            })
            .collect();
        barrier.wait().unwrap();
        let (guard, timeout) =
            ready.wait_timeout_while(ready.lock(), Duration::from_secs(10), |n| *n < 2);
        assert!(!timeout.timed_out(), "{method}");
        assert_eq!(*guard, 2);
        drop(guard);
        for p in children {
            assert_eq!(p.join().unwrap(), 0, "{method}");
        }
    }
}

#[test]
fn a_handle_serialized_outside_multiproc_says_where_it_can_go() {
    let lock = Lock::new().unwrap();
    let err = proc_core::codec::encode(&lock).unwrap_err();
    assert!(err.to_string().contains("Process::target"), "{err}");
}
