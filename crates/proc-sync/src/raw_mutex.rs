//! [`RawMutex`]: a robust, process-shared pthread mutex placed in shared memory. The safe
//! lock types ([`Lock`](crate::Lock), [`Value`](crate::Value), …) wrap it in guards, the
//! way `lock_api` splits a raw lock from its guard.
//!
//! Why a pthread mutex and not a hand-made futex lock: glibc links every robust mutex a
//! thread holds into that thread's *robust list*, which it registered with the kernel
//! (`set_robust_list`). When the thread dies for any reason, SIGKILL included, the kernel
//! walks the list, sets `FUTEX_OWNER_DIED` in each held mutex word and wakes a waiter. The
//! next `pthread_mutex_lock` then returns `EOWNERDEAD` and owns the mutex; we mark it
//! consistent at once and tell the caller through `previous_owner_died`. Uncontended
//! lock and unlock are one atomic compare-and-swap each, no system call.
//!
//! glibc ≥ 2.30 has `pthread_mutex_clocklock` (timed lock against `CLOCK_MONOTONIC`), but
//! the `libc` crate does not declare it yet, so it is declared here.
//!
//! ## A sleeper looks again now and then
//! A robust mutex can lose a wake-up when a process dies at the wrong moment. glibc's unlock
//! clears the lock word and, if the word said "waiters", wakes one sleeper, which inherits
//! the duty of setting "waiters" again when it takes the mutex. If that sleeper is killed
//! after it was woken, and after another thread took the free mutex (as a fresh locker
//! does, without "waiters"), the kernel's clean-up of the dead sleeper finds the mutex owned
//! and wakes nobody; the new owner's unlock sees no waiters and wakes nobody either. The
//! other sleepers would sleep on a free mutex forever. So a sleeper never sleeps longer
//! than [`RECHECK`] at a time: it then looks at the mutex again, and takes it if it is free.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::deadline::Deadline;
use crate::error::{Error, Result};

unsafe extern "C" {
    /// glibc ≥ 2.30: `pthread_mutex_timedlock` against a chosen clock.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How many turns a contended `lock` watches the mutex before it sleeps: a few
/// microseconds, the length of a short critical section in another process.
const SPINS: u32 = 100;

/// The longest a waiter sleeps before it looks at the mutex again by itself: what a lost
/// wake-up (see the module's docs) costs at most. Sleepers normally wake at once on an
/// unlock; only a mutex held for long makes them look more often than they need to.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// The bits of a robust mutex word that hold the owner's thread id (the kernel's
/// `FUTEX_TID_MASK`).
const FUTEX_TID_MASK: i32 = 0x3fff_ffff;

/// Whether the mutex counts re-entries of its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not re-entrant: the owner locking again gets `EDEADLK` instead of hanging.
    ErrorCheck,
    /// Re-entrant: the owner may lock again; it is released after as many unlocks.
    Recursive,
}

/// A robust, process-shared pthread mutex that lives in shared memory.
///
/// It is only ever used in place (a pthread mutex must not move), through a shared
/// reference into a shared region.
#[repr(C)]
pub struct RawMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: a process-shared pthread mutex is made to be operated on concurrently by
// threads of any process; every access goes through the pthread functions (or, for the
// owner check, an atomic load of its lock word).
unsafe impl Sync for RawMutex {}

impl RawMutex {
    /// Initialises a robust, process-shared mutex of `kind` at `this`.
    ///
    /// # Safety
    /// `this` must point to writable memory, aligned for `RawMutex`, that nothing uses yet,
    /// and the mutex must stay at that address for as long as any process uses it.
    pub(crate) unsafe fn init(this: *mut RawMutex, kind: Kind) -> Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is writable; pthread_mutexattr_init initialises it.
        let r = unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) };
        if r != 0 {
            return Err(Error::errno("pthread_mutexattr_init", r));
        }
        let kind = match kind {
            Kind::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
            Kind::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
        };
        // SAFETY: `attr` was initialised above and is destroyed below, exactly once; `this`
        // is valid for writes by the caller's contract.
        let r = unsafe {
            let attr = attr.as_mut_ptr();
            let mut r = libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED);
            if r == 0 {
                r = libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if r == 0 {
                r = libc::pthread_mutexattr_settype(attr, kind);
            }
            if r == 0 {
                r = libc::pthread_mutex_init(UnsafeCell::raw_get(&raw const (*this).inner), attr);
            }
            libc::pthread_mutexattr_destroy(attr);
            r
        };
        if r != 0 {
            return Err(Error::errno(
                "pthread_mutex_init (robust, process-shared)",
                r,
            ));
        }
        Ok(())
    }

    #[inline]
    fn get(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }

    /// Blocks until this thread owns the mutex. `Ok(true)` when the previous owner died
    /// holding it (the mutex has been marked consistent again).
    ///
    /// A mutex held by another process is usually held for a short critical section, so it
    /// is watched for a moment (a few microseconds) before this thread sleeps on it: glibc's
    /// robust mutexes go to the kernel at once when contended, and a sleeper costs the
    /// unlocking process a wake-up call too.
    #[inline]
    pub fn lock(&self, what: &'static str) -> Result<bool> {
        // SAFETY: the mutex was initialised by `init` and stays in place while `self` lives.
        let r = unsafe { libc::pthread_mutex_trylock(self.get()) };
        if r != libc::EBUSY {
            return self
                .acquired(r, what, "pthread_mutex_trylock")
                .map(|died| died.unwrap_or(false));
        }
        self.lock_contended(what)
    }

    #[cold]
    fn lock_contended(&self, what: &'static str) -> Result<bool> {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            // Read-only until the owner is gone, so that waiting does not pull the cache
            // line away from the owner at every turn.
            if self.owner() != 0 {
                continue;
            }
            // SAFETY: as in `lock`.
            let r = unsafe { libc::pthread_mutex_trylock(self.get()) };
            if r != libc::EBUSY {
                return self
                    .acquired(r, what, "pthread_mutex_trylock")
                    .map(|died| died.unwrap_or(false));
            }
        }
        loop {
            if let Some(died) = self.lock_until_or_recheck(None, what)? {
                return Ok(died);
            }
        }
    }

    /// The thread id that holds the mutex, 0 when free (or when its owner died and the
    /// kernel cleared it).
    fn owner(&self) -> i32 {
        // SAFETY: the lock word is the first, 4-byte aligned i32 of pthread_mutex_t; other
        // threads and processes change it only atomically, so an atomic load is the right
        // way to read it.
        let word = unsafe { AtomicI32::from_ptr(self.get().cast::<i32>()) };
        word.load(Ordering::Relaxed) & FUTEX_TID_MASK
    }

    /// Whether a live thread (of any process) holds the mutex right now. A mutex whose
    /// holder died counts as free: the kernel cleared the owner when the holder's thread
    /// ended, and the next `lock` takes it over.
    ///
    /// A snapshot that may change at once; meant for deciding whether to keep waiting for
    /// what a holder is doing (a process that holds the lock is alive, so its work will
    /// either finish or be abandoned by its death).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.owner() != 0
    }

    /// Takes the mutex if nobody holds it: `Ok(None)` when it is held (by anyone,
    /// including, for a non-re-entrant mutex, this thread: see `lock`'s errors).
    pub fn try_lock(&self, what: &'static str) -> Result<Option<bool>> {
        // SAFETY: as in `lock`.
        let r = unsafe { libc::pthread_mutex_trylock(self.get()) };
        self.acquired(r, what, "pthread_mutex_trylock")
    }

    /// Blocks until this thread owns the mutex or `deadline` passes (`Ok(None)`).
    pub fn lock_until(&self, deadline: &Deadline, what: &'static str) -> Result<Option<bool>> {
        loop {
            if let Some(died) = self.lock_until_or_recheck(Some(deadline), what)? {
                return Ok(Some(died));
            }
            if deadline.has_passed() {
                return Ok(None);
            }
        }
    }

    /// Waits for the mutex until `deadline` (none: forever) or [`RECHECK`] from now,
    /// whichever comes first: `Ok(None)` when that time came without it.
    fn lock_until_or_recheck(
        &self,
        deadline: Option<&Deadline>,
        what: &'static str,
    ) -> Result<Option<bool>> {
        let recheck = Deadline::after(RECHECK);
        let until = match deadline {
            Some(deadline) => recheck.earliest(deadline),
            None => recheck,
        };
        // SAFETY: as in `lock`; the deadline is a valid timespec (nanoseconds < 1e9).
        let r = unsafe {
            pthread_mutex_clocklock(self.get(), libc::CLOCK_MONOTONIC, until.as_timespec())
        };
        self.acquired(r, what, "pthread_mutex_clocklock")
    }

    /// Turns a lock call's result into "acquired (owner died?)", "not acquired" or an error.
    #[inline]
    fn acquired(
        &self,
        r: libc::c_int,
        what: &'static str,
        call: &'static str,
    ) -> Result<Option<bool>> {
        match r {
            0 => Ok(Some(false)),
            libc::EOWNERDEAD => {
                // We own the mutex, but its previous owner died holding it. Mark it
                // consistent now: if we left it inconsistent and unlocked it, every later
                // lock would fail with ENOTRECOVERABLE. (Should we die before this line, the
                // kernel marks it owner-died again and the next acquirer lands here.)
                // SAFETY: this thread owns the mutex (EOWNERDEAD hands it over).
                let r = unsafe { libc::pthread_mutex_consistent(self.get()) };
                if r != 0 {
                    let _ = self.unlock(what);
                    return Err(Error::errno("pthread_mutex_consistent", r));
                }
                Ok(Some(true))
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            libc::EDEADLK => Err(Error::WouldDeadlock { what }),
            libc::EAGAIN => Err(Error::TooManyReentries),
            libc::ENOTRECOVERABLE => Err(Error::NotRecoverable { what }),
            r => Err(Error::errno(call, r)),
        }
    }

    /// Releases the mutex once. `Err(NotOwner)` when this thread does not hold it: glibc
    /// checks the owner of a robust mutex, so a wrong release is refused, never undefined.
    #[inline]
    pub fn unlock(&self, what: &'static str) -> Result<()> {
        // SAFETY: the mutex is initialised and in place; unlocking a robust mutex we do not
        // own is checked by glibc and returns EPERM.
        match unsafe { libc::pthread_mutex_unlock(self.get()) } {
            0 => Ok(()),
            libc::EPERM => Err(Error::NotOwner { what }),
            r => Err(Error::errno("pthread_mutex_unlock", r)),
        }
    }

    /// Whether a thread of this process holds the mutex right now.
    ///
    /// For a robust mutex, glibc keeps the owner's thread id in the first word (`__lock`,
    /// the futex word the kernel's robust-list handling also reads), and the kernel clears
    /// it when the owner dies. Thread ids are unique system-wide, so the owner is ours iff
    /// `tgkill(our pid, owner, 0)` finds it.
    pub(crate) fn is_held_by_this_process(&self) -> bool {
        let owner = self.owner();
        if owner == 0 {
            return false;
        }
        // SAFETY: signal 0 sends nothing; it only checks that thread `owner` exists in our
        // thread group.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), owner, 0) == 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;

    fn mutex(kind: Kind) -> (Region, *const RawMutex) {
        let region = Region::new(
            c"test",
            size_of::<RawMutex>(),
            align_of::<RawMutex>(),
            Some(0),
        )
        .unwrap();
        let m = region.base().cast::<RawMutex>();
        // SAFETY: fresh, aligned, zeroed memory that nothing else uses.
        unsafe { RawMutex::init(m, kind) }.unwrap();
        (region, m)
    }

    #[test]
    fn a_held_mutex_is_held_by_this_process_and_a_free_one_is_not() {
        let (_region, m) = mutex(Kind::ErrorCheck);
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        assert!(!m.is_held_by_this_process());
        assert!(!m.lock("Lock").unwrap());
        assert!(m.is_held_by_this_process());
        m.unlock("Lock").unwrap();
        assert!(!m.is_held_by_this_process());
    }

    #[test]
    fn is_locked_follows_lock_unlock_and_the_death_of_the_holder() {
        let (_region, m) = mutex(Kind::ErrorCheck);
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        assert!(!m.is_locked());
        m.lock("Lock").unwrap();
        assert!(m.is_locked());
        m.unlock("Lock").unwrap();
        assert!(!m.is_locked());
        let addr = m as *const RawMutex as usize;
        std::thread::spawn(move || {
            // SAFETY: the region outlives the thread, which is joined below.
            let m = unsafe { &*(addr as *const RawMutex) };
            m.lock("Lock").unwrap();
            // The thread ends holding the mutex: the kernel clears the owner.
        })
        .join()
        .unwrap();
        assert!(!m.is_locked());
        assert!(m.lock("Lock").unwrap());
        m.unlock("Lock").unwrap();
    }

    #[test]
    fn an_error_checking_mutex_refuses_a_second_lock_by_its_owner() {
        let (_region, m) = mutex(Kind::ErrorCheck);
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        m.lock("Lock").unwrap();
        assert!(matches!(m.lock("Lock"), Err(Error::WouldDeadlock { .. })));
        m.unlock("Lock").unwrap();
    }

    #[test]
    fn unlocking_a_mutex_nobody_holds_is_refused() {
        let (_region, m) = mutex(Kind::Recursive);
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        assert!(matches!(m.unlock("RLock"), Err(Error::NotOwner { .. })));
    }

    #[test]
    fn a_mutex_held_by_a_thread_that_exited_passes_on_with_owner_died() {
        let (_region, m) = mutex(Kind::ErrorCheck);
        let addr = m as usize;
        std::thread::spawn(move || {
            // SAFETY: the region outlives the thread, which is joined below.
            let m = unsafe { &*(addr as *const RawMutex) };
            m.lock("Lock").unwrap();
            // The thread ends holding the mutex.
        })
        .join()
        .unwrap();
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        assert!(!m.is_held_by_this_process());
        assert!(m.lock("Lock").unwrap());
        m.unlock("Lock").unwrap();
        assert!(!m.lock("Lock").unwrap());
        m.unlock("Lock").unwrap();
    }
}
