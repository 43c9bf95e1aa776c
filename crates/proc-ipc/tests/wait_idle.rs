//! What a wait costs while nothing happens: no CPU time, and no thread left behind. Alone
//! in their binary (and run one at a time), since they measure the whole process.

use std::sync::Mutex;
use std::time::Duration;

use proc_core::{Waitable, wait};
use proc_ipc::{Queue, pipe};

/// The tests of this binary measure the whole process: one at a time.
static ALONE: Mutex<()> = Mutex::new(());

/// CPU time of this process so far, its threads' included.
fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn a_wait_over_idle_queues_and_a_connection_uses_no_cpu_time() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let queues: Vec<Queue<u32>> = (0..3).map(|_| Queue::new(0).unwrap()).collect();
    let (end, _peer) = pipe().unwrap();
    let objects: Vec<&dyn Waitable> = queues
        .iter()
        .map(|q| q as &dyn Waitable)
        .chain([&end as &dyn Waitable])
        .collect();
    let before = cpu_time();
    let ready = wait(&objects, Some(Duration::from_secs(2))).unwrap();
    let used = cpu_time() - before;
    assert!(ready.is_empty());
    assert!(
        used < Duration::from_millis(50),
        "an idle wait of 2 s used {used:?} of CPU time"
    );
}

#[test]
fn a_wait_leaves_no_thread_behind() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let q: Queue<u32> = Queue::new(0).unwrap();
    let writer = std::thread::spawn({
        let q = q.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            q.put(1).unwrap();
        }
    });
    assert_eq!(
        wait(&[&q as &dyn Waitable], Some(Duration::from_secs(60))).unwrap(),
        [0]
    );
    assert!(wait(&[&q as &dyn Waitable, &q], Some(Duration::ZERO)).unwrap() == [0, 1]);
    q.get().unwrap();
    assert!(
        wait(&[&q as &dyn Waitable], Some(Duration::from_millis(20)))
            .unwrap()
            .is_empty()
    );
    let bridges = thread_names()
        .into_iter()
        .filter(|n| n == "multiproc-wait")
        .count();
    assert_eq!(bridges, 0, "a bridge thread outlived its wait");
    writer.join().unwrap();
}
