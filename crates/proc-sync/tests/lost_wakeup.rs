//! A robust mutex can lose a wake-up when a process dies at the wrong moment, and a lock
//! must not strand its sleepers when that happens. (Found by `cargo xtask torture`: after
//! about 6,000 SIGKILLs among four processes taking a `Lock`, two of them slept on a free
//! lock forever.)
//!
//! glibc's unlock clears the lock word, and if the word said "waiters", wakes one sleeper,
//! which inherits the duty of setting "waiters" again when it takes the lock. If that
//! sleeper is killed after it was woken, and after a third process took the free lock
//! (which it does without "waiters", as a fresh locker), the kernel's clean-up of the dead
//! sleeper finds the lock owned and wakes nobody, and the third process's unlock sees no
//! waiters and wakes nobody either: the remaining sleepers sleep on a free lock. The
//! interleaving needs a kill within microseconds, so this test recreates its aftermath
//! instead: a sleeper waiting on a word that no longer says "waiters".

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{EVENTUALLY, Words, join, start};
use proc_sync::{Event, Lock};

/// glibc's bit in a mutex word: a thread may be asleep waiting for it.
const FUTEX_WAITERS: u32 = 0x8000_0000;

/// The memory files of multiproc locks this process holds, by descriptor path.
fn lock_files() -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read_link(p)
                .is_ok_and(|l| l.to_string_lossy() == "/memfd:multiproc-lock (deleted)")
        })
        .collect()
}

/// Whether `pid` is asleep in the futex system call.
fn asleep_on_a_futex(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(&libc::SYS_futex.to_string()))
}

/// A child: holds `lock` until `release` is set.
fn hold_until_released(lock: Lock, held: Event, release: Event) {
    let _guard = lock.acquire();
    held.set();
    release.wait();
}

/// A child: takes `lock` (sleeping until it can), lets go, and says so in `got`.
fn take_and_say_so(lock: Lock, got: Words) {
    drop(lock.acquire());
    got.at(0).store(1, Ordering::Release);
}

#[test]
fn a_sleeper_whose_wake_up_was_lost_still_gets_the_lock_once_it_is_free() {
    let before = lock_files();
    let lock = Lock::new().unwrap();
    let file = lock_files()
        .into_iter()
        .find(|p| !before.contains(p))
        .expect("the new lock's memory file");
    // The lock word is the first 4 bytes of the pthread mutex, at the file's start.
    let word = File::options().read(true).write(true).open(file).unwrap();
    let read_word = || {
        let mut bytes = [0u8; 4];
        word.read_exact_at(&mut bytes, 0).unwrap();
        u32::from_ne_bytes(bytes)
    };

    // A holder, which lets go when told to.
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let holder = start(
        hold_until_released,
        (lock.clone(), held.clone(), release.clone()),
    );
    assert!(held.wait_timeout(EVENTUALLY));

    // A sleeper, which says when it has the lock.
    let got = Words::new(1);
    let sleeper = start(take_and_say_so, (lock.clone(), got.clone()));
    let pid = sleeper.pid().unwrap();
    let deadline = Instant::now() + EVENTUALLY;
    while !(asleep_on_a_futex(pid) && read_word() & FUTEX_WAITERS != 0) {
        assert!(Instant::now() < deadline, "the sleeper never went to sleep");
        std::thread::sleep(Duration::from_millis(1));
    }

    // The aftermath of the race: the word no longer says that anyone waits.
    let owned = read_word();
    word.write_all_at(&(owned & !FUTEX_WAITERS).to_ne_bytes(), 0)
        .unwrap();
    // The holder lets go; its unlock sees no waiters and wakes nobody.
    release.set();
    assert_eq!(join(&holder), 0);
    assert_eq!(read_word(), 0, "the lock is free");

    let deadline = Instant::now() + EVENTUALLY;
    while got.at(0).load(Ordering::Acquire) == 0 {
        assert!(
            Instant::now() < deadline,
            "the sleeper still sleeps on a free lock after {EVENTUALLY:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(join(&sleeper), 0);
}
