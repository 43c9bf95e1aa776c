//! Shared regions are freed: creating and dropping many objects leaves no file descriptor
//! and no mapping behind. This binary holds only these tests, run one after another, so
//! that no other test's objects blur the counts. (The regions are memory files, which have
//! no name in /dev/shm: a leak shows as a descriptor or a mapping. /dev/shm itself is shared
//! with the tests of other crates running at the same time, proc-shared's among them.)

use proc_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RawArray, RawValue, Semaphore,
    Value,
};

use multiproc_test_support::fds::{one_at_a_time, open_fds};
use multiproc_test_support::maps::multiproc_mappings as shared_memory_mappings;

fn nothing() {}

#[test]
fn creating_and_dropping_thousands_of_objects_leaves_no_fd_or_mapping() {
    let _one = one_at_a_time();
    // Warm up: the first objects may allocate lazily.
    drop(Lock::new().unwrap());
    let (fds, maps) = (open_fds(), shared_memory_mappings());
    for i in 0..1_000u32 {
        let lock = Lock::new().unwrap();
        let rlock = RLock::new().unwrap();
        let semaphore = Semaphore::new(1).unwrap();
        let bounded = BoundedSemaphore::new(1).unwrap();
        let event = Event::new().unwrap();
        let condition = Condition::new().unwrap();
        let barrier = Barrier::new(1).unwrap();
        let value = Value::new(i).unwrap();
        let array = Array::<u8>::new(100_000).unwrap();
        let raw_value = RawValue::new(i).unwrap();
        let raw_array = RawArray::<u8>::new(4096).unwrap();
        let shared = Value::with_lock(i, &lock).unwrap();
        let over_lock = Condition::with_lock(&lock).unwrap();
        let over_rlock = Condition::with_rlock(&rlock).unwrap();
        let with_action = Barrier::builder(1).action(nothing).build().unwrap();
        // Use each once, clones included, so that nothing is dropped unused.
        drop(lock.clone().acquire());
        drop(rlock.acquire());
        semaphore.acquire();
        bounded.acquire();
        event.set();
        drop(condition.lock());
        barrier.wait().unwrap();
        assert_eq!(value.clone().get(), i);
        array.lock()[99_999] = 1;
        assert_eq!(raw_value.clone().get(), i);
        raw_array.set(4095, 1).unwrap();
        assert_eq!(shared.get(), i);
        drop(over_lock.lock());
        drop(over_rlock.lock());
        with_action.wait().unwrap();
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    assert_eq!(shared_memory_mappings(), maps, "mappings leaked");
}

fn set_seven(value: Value<u32>) {
    value.set(7);
}

/// Starts a child that sets `value` to 7, joins it and checks it did.
fn run_set_seven(value: &Value<u32>) {
    let mut child = proc_core::Process::target(set_seven, (value.clone(),));
    child.start().unwrap();
    assert_eq!(child.join().unwrap(), 0);
    assert_eq!(value.get(), 7);
}

#[test]
fn a_child_that_used_objects_leaves_nothing_behind_in_the_parent() {
    let _one = one_at_a_time();
    // A first child sets up what lives as long as this process: under ForkServer, the fork
    // server and this process's connection to it (one descriptor).
    run_set_seven(&Value::new(0u32).unwrap());
    let (fds, maps) = (open_fds(), shared_memory_mappings());
    {
        let value = Value::new(0u32).unwrap();
        run_set_seven(&value);
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    assert_eq!(shared_memory_mappings(), maps, "mappings leaked");
}

#[test]
fn dropping_the_last_handle_of_a_lock_held_through_a_forgotten_guard_is_sound() {
    let _one = one_at_a_time();
    // A thread forgets a guard and drops the last handle: the mapping must stay, because
    // the thread's robust list still links the mutex, and glibc and the kernel write to
    // it later (here: when the thread locks another robust mutex, and when it exits).
    let before = shared_memory_mappings();
    std::thread::spawn(|| {
        let lock = Lock::new().unwrap();
        std::mem::forget(lock.acquire());
        drop(lock);
        let value = Value::new([0u8; 4]).unwrap();
        let other = Lock::new().unwrap();
        for _ in 0..100 {
            let _a = other.acquire();
            value.lock()[0] += 1;
        }
    })
    .join()
    .unwrap();
    // The forgotten lock's mapping was deliberately leaked; everything else was freed.
    assert_eq!(shared_memory_mappings(), before + 1);

    // A released lock unmaps normally even if its guard was leaked earlier.
    let lock = Lock::new().unwrap();
    lock.acquire().leak();
    lock.release().unwrap();
    drop(lock);
    assert_eq!(shared_memory_mappings(), before + 1);
}
