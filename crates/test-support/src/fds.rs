//! Descriptors: how many a process has open, running a test alone while it counts them, and
//! bringing a process to its limit of open descriptors.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The descriptors this process has open now. (The directory's own descriptor is counted
/// while it is read; it is in every count, so counts compare.)
///
/// ```
/// let before = multiproc_test_support::fds::open_fds();
/// let file = std::fs::File::open("/dev/null")?;
/// assert_eq!(multiproc_test_support::fds::open_fds(), before + 1);
/// # drop(file);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// The numbers of the descriptors this process has open now, but for the directory's own.
pub fn open_fd_numbers() -> Vec<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    // The directory is closed now: its number, listed, is no longer open.
    let mut numbers: Vec<i32> = listed
        .into_iter()
        .filter(|&fd| nix::fcntl::fcntl(fd_ref(fd), nix::fcntl::FcntlArg::F_GETFD).is_ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

fn fd_ref(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for an F_GETFD probe, which fails harmlessly (EBADF) on a number
    // that is not open (the directory's own, closed by the time it is probed).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held by every test of a binary that counts this process's descriptors (or mappings):
/// another test running at the same time would change the count. A test that failed while
/// holding it does not stop the others.
///
/// ```
/// let _alone = multiproc_test_support::fds::one_at_a_time();
/// let n = multiproc_test_support::fds::open_fds();
/// assert_eq!(multiproc_test_support::fds::open_fds(), n);
/// ```
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Brings this process to its limit of open descriptors: lowers the soft `RLIMIT_NOFILE`
/// to a little above the highest descriptor open now, then opens copies of stdin until no
/// more can be opened. Dropping `k` of the returned copies leaves room for `k` descriptors.
///
/// The limit is the whole process's: only for a child process of a test.
pub fn exhaust_descriptors() -> Vec<OwnedFd> {
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(2);
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, highest + 8, hard).expect("setrlimit");
    let mut copies = Vec::new();
    loop {
        match std::io::stdin().as_fd().try_clone_to_owned() {
            Ok(copy) => copies.push(copy),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return copies,
            Err(e) => panic!("duplicating stdin: {e}"),
        }
        assert!(
            copies.len() as u64 <= highest + 8,
            "the limit does not hold"
        );
    }
}
