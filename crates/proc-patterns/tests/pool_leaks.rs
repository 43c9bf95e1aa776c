//! Pool: nothing is left behind, neither zombies nor file descriptors. One test in its own
//! binary, so that other tests' descriptors do not come and go while it counts. The
//! workers are forked, spawned or served as `MULTIPROC_START_METHOD` says.

use std::time::Duration;

use multiproc_test_support::fds::open_fds;
use proc_patterns::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn nap(_: ()) {
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn pools_closed_terminated_or_dropped_leave_no_descriptor_and_no_child_behind() {
    // A first pool sets up what lives for the whole process: the daemon lifeline pipe and,
    // when the workers are served (MULTIPROC_START_METHOD=forkserver), the fork server, a
    // child process that is not in active_children, and this process's connection to it.
    drop(Pool::new(1).unwrap());
    let before = open_fds();
    let mut workers = Vec::new();

    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..100).unwrap().len(), 100);
    workers.extend(pool.pids());
    pool.close();
    pool.join().unwrap();
    drop(pool);

    let pool = Pool::new(2).unwrap();
    let _pending = pool.apply_async(nap, ());
    workers.extend(pool.pids());
    pool.terminate();
    drop(pool);

    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .chunksize(1)
        .build()
        .unwrap();
    assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
    workers.extend(pool.pids());
    drop(pool);

    assert_eq!(open_fds(), before);
    for pid in workers {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} left behind"
        );
    }
    assert!(proc_core::active_children().is_empty());
}
