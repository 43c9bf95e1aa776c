//! The few system services the limits are made of: memory shared with forked children,
//! futex waits and wake-ups, and `fork` + `waitpid`.

use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How many turns a waiter watches a word before it sleeps on it: a few microseconds,
/// long enough for the other process to answer when it is running.
pub const SPINS: u32 = 200;

/// Types that may live in [`Shared`] memory: valid when all their bytes are zero, and safe to
/// use from several processes at once (atomics, and structures made only of them).
///
/// # Safety
/// All-zero bytes must be a valid value, and every access must go through atomics.
pub unsafe trait SharedZeroed: Sync {}

// SAFETY: a zero atomic is a valid one, and every access to it is atomic.
unsafe impl SharedZeroed for AtomicU32 {}
// SAFETY: as above.
unsafe impl SharedZeroed for AtomicU64 {}

/// `len` values of `T`, zeroed, in an anonymous `MAP_SHARED` mapping: a forked child sees
/// the same memory as its parent (writes of either are seen by the other).
pub struct Shared<T: SharedZeroed> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
    _owns: PhantomData<T>,
}

impl<T: SharedZeroed> Shared<T> {
    /// Maps `len` zeroed values of `T`.
    pub fn new(len: usize) -> io::Result<Self> {
        let bytes = (len * size_of::<T>()).max(1);
        // SAFETY: a fresh anonymous mapping, asked of the kernel with no address hint.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<T>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Shared {
            ptr,
            len,
            bytes,
            _owns: PhantomData,
        })
    }
}

impl<T: SharedZeroed> Deref for Shared<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds `len` values of `T`, page-aligned, zeroed (a valid `T`
        // by `SharedZeroed`), and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: SharedZeroed> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

/// Sleeps while `word` holds `expected` (or until a wake-up, or a signal: callers look again).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a valid, aligned word, without a timeout. Not FUTEX_PRIVATE:
    // the word is shared between processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes up to `count` processes asleep on `word`.
pub fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned word.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
}

/// Waits until `word` holds a value for which `done` is true, and returns it: watches the
/// word for [`SPINS`] turns, then sleeps on it, counted in `sleeping`.
///
/// Whoever changes `word` must store with `SeqCst`, then load `sleeping` with `SeqCst` and
/// call [`futex_wake`] when it is not zero: either the change comes first in the single order
/// of `SeqCst` operations and the look below sees it, or the count does and the changer wakes
/// the sleeper (a wake-up before the sleep makes the sleep return at once, as the word no
/// longer holds the value it expects).
pub fn wait_until(word: &AtomicU32, sleeping: &AtomicU32, done: impl Fn(u32) -> bool) -> u32 {
    for _ in 0..SPINS {
        let now = word.load(Ordering::Acquire);
        if done(now) {
            return now;
        }
        std::hint::spin_loop();
    }
    loop {
        sleeping.fetch_add(1, Ordering::SeqCst);
        let now = word.load(Ordering::SeqCst);
        if !done(now) {
            futex_wait(word, now);
        }
        sleeping.fetch_sub(1, Ordering::SeqCst);
        let now = word.load(Ordering::Acquire);
        if done(now) {
            return now;
        }
    }
}

/// Stores `value` in `word` and wakes its sleepers, as [`wait_until`] asks.
pub fn store_and_wake(word: &AtomicU32, sleeping: &AtomicU32, value: u32) {
    word.store(value, Ordering::SeqCst);
    if sleeping.load(Ordering::SeqCst) != 0 {
        futex_wake(word, i32::MAX);
    }
}

/// A forked child process, to be reaped with [`Child::wait`].
#[must_use = "a child must be waited for"]
pub struct Child(libc::pid_t);

/// Forks a child that runs `body` and ends with `_exit`: 0 when `body` returns, 1 when it
/// panics. The caller is single-threaded, so the child may do anything its parent could.
pub fn fork(body: impl FnOnce()) -> io::Result<Child> {
    // SAFETY: this program runs one thread; the child runs `body` and leaves through _exit,
    // never returning into the parent's code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the child at once, without the parent's destructors or atexit.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Child(pid)),
    }
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.0
    }

    /// Waits for the child to end; an error unless it exited with status 0.
    pub fn wait(self) -> io::Result<()> {
        check_exit(self.0, reap(self.0)?)
    }
}

/// `waitpid` through EINTR; the raw status.
pub fn reap(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid place for the result.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// An error unless `status` says that the child exited with code 0.
pub fn check_exit(pid: libc::pid_t, status: libc::c_int) -> io::Result<()> {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "child {pid} ended with wait status {status:#x}"
        )))
    }
}
