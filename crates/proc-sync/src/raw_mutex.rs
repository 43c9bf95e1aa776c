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

use crate::deadline::{Deadline, How};
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

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::ErrorCheck => "not re-entrant (a Lock's)",
            Kind::Recursive => "re-entrant (an RLock's)",
        }
    }
}

/// Who holds a mutex, by its lock word: [`RawMutex::holder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Free (or its holder died and the kernel released it).
    Nobody,
    /// A thread of this process.
    ThisProcess,
    /// A live thread of another process: this thread id.
    Other(i32),
    /// A thread id that no thread has: a holder that died is released by the kernel, so
    /// only a word written by hand says this.
    Gone(i32),
}

/// Checks that received mutexes were initialised as this crate initialises its mutexes
/// (robust, process-shared, of a given kind): a mutex of another kind, or garbage, would
/// make every lock call fail or behave as another lock would.
///
/// glibc keeps the kind in one word of the mutex that `pthread_mutex_init` writes and
/// nothing changes afterwards (robust mutexes are never elided). Which word, and what our
/// kinds look like in it, is found out by initialising one mutex of each kind, rather than
/// written into this crate as glibc's layout on one architecture. If that finds no single
/// word, no check is made (glibc refuses a kind it does not know with EINVAL, it does not
/// misbehave). Found again for each receipt (microseconds) rather than once in a static,
/// whose lazy initialisation a forked child could find half done by another thread of its
/// parent.
pub(crate) struct KindCheck(Option<KindWord>);

impl KindCheck {
    pub(crate) fn new() -> KindCheck {
        KindCheck(KindWord::find())
    }

    /// `Ok` when `mutex` is one of ours, of kind `expected` if given; otherwise what it is.
    pub(crate) fn check(
        &self,
        mutex: &RawMutex,
        expected: Option<Kind>,
    ) -> std::result::Result<(), String> {
        let Some(word) = &self.0 else {
            return Ok(());
        };
        // SAFETY: `word.offset` is a 4-aligned offset within `pthread_mutex_t` (found in
        // one), so within this mutex, which is aligned for it; glibc writes the word only
        // when it initialises the mutex, and an atomic load reads it whatever another
        // process does meanwhile.
        let found = unsafe {
            AtomicI32::from_ptr(mutex.get().cast::<u8>().add(word.offset).cast::<i32>())
                .load(Ordering::Relaxed)
        };
        let kind = match found {
            k if k == word.error_check => Kind::ErrorCheck,
            k if k == word.recursive => Kind::Recursive,
            k => {
                return Err(format!(
                    "its mutex is not a robust, process-shared one that proc-sync made (its \
                     kind word is {k:#x})"
                ));
            }
        };
        match expected {
            Some(expected) if expected != kind => Err(format!(
                "its mutex is {}, where {} is expected",
                kind.describe(),
                expected.describe()
            )),
            _ => Ok(()),
        }
    }
}

/// Where glibc keeps a mutex's kind, and what this crate's two kinds look like there.
struct KindWord {
    offset: usize,
    error_check: i32,
    recursive: i32,
}

impl KindWord {
    /// Initialises one mutex of each kind in zeroed memory and looks for the one word that
    /// is not zero afterwards, at the same place in both.
    fn find() -> Option<KindWord> {
        let (offset, error_check) = Self::only_word_set(Kind::ErrorCheck)?;
        let (other, recursive) = Self::only_word_set(Kind::Recursive)?;
        (offset == other && error_check != recursive).then_some(KindWord {
            offset,
            error_check,
            recursive,
        })
    }

    fn only_word_set(kind: Kind) -> Option<(usize, i32)> {
        let mut mutex = MaybeUninit::<RawMutex>::zeroed();
        // SAFETY: zeroed, aligned memory of our own that nothing else uses; the mutex is
        // never locked, so it is in no robust list, and it is destroyed before it goes.
        unsafe { RawMutex::init(mutex.as_mut_ptr(), kind) }.ok()?;
        let words = size_of::<RawMutex>() / size_of::<i32>();
        let base = mutex.as_ptr().cast::<i32>();
        let mut set = (0..words)
            // SAFETY: within the mutex (`words` whole i32s), aligned (RawMutex is at least
            // 4-aligned), initialised (zeroed, then written by pthread_mutex_init).
            .map(|i| (i * size_of::<i32>(), unsafe { base.add(i).read() }))
            .filter(|&(_, value)| value != 0);
        let only = set.next();
        let more = set.next().is_some();
        // SAFETY: initialised above, never locked, destroyed once.
        unsafe {
            libc::pthread_mutex_destroy(UnsafeCell::raw_get(&raw const (*mutex.as_ptr()).inner))
        };
        if more { None } else { only }
    }
}

/// A robust, process-shared pthread mutex that lives in shared memory.
///
/// It is only ever used in place (a pthread mutex must not move), through a shared
/// reference into a shared region.
#[repr(C)]
pub struct RawMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

impl std::fmt::Debug for RawMutex {
    /// The mutex's bytes are another process's to change at any moment: only its place.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMutex")
            .field("at", &self.inner.get())
            .finish_non_exhaustive()
    }
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
    pub(crate) fn owner(&self) -> i32 {
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

    /// Locks with the blocking, try or timed form; `Ok(None)` when not acquired.
    #[inline]
    pub(crate) fn lock_with(&self, how: How, what: &'static str) -> Result<Option<bool>> {
        match how {
            How::Block => self.lock(what).map(Some),
            How::Try => self.try_lock(what),
            How::Until(deadline) => self.lock_until(&deadline, what),
        }
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

    /// Whether the calling thread holds the mutex right now.
    pub(crate) fn is_held_by_this_thread(&self) -> bool {
        let owner = self.owner();
        // SAFETY: gettid has no preconditions and cannot fail.
        owner != 0 && owner == unsafe { libc::gettid() }
    }

    /// Who holds the mutex, as its lock word says: for a mutex received from another
    /// process, before anything is done with it.
    pub(crate) fn holder(&self) -> Holder {
        let mut owner = self.owner();
        // A word that keeps changing is someone else's to be holding: a few looks suffice.
        for _ in 0..4 {
            if owner == 0 {
                return Holder::Nobody;
            }
            if self.is_held_by_this_process() {
                return Holder::ThisProcess;
            }
            // Signal 0 only asks whether thread `owner` exists (any thread id is a valid
            // target of kill); EPERM means it exists but is not ours to signal.
            // SAFETY: sends nothing.
            let r = unsafe { libc::kill(owner, 0) };
            if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
                return Holder::Other(owner);
            }
            // The kernel releases a dying thread's robust mutexes before its id goes: if
            // the holder just ended, the word has changed by now, and is looked at again.
            match self.owner() {
                now if now == owner => return Holder::Gone(owner),
                now => owner = now,
            }
        }
        if self.is_held_by_this_process() {
            Holder::ThisProcess
        } else {
            Holder::Other(owner)
        }
    }

    /// Whether the mutex was initialised as this crate initialises its mutexes (robust,
    /// process-shared) and, if `expected` says so, as that kind: see [`KindCheck`].
    pub(crate) fn check_kind(&self, expected: Option<Kind>) -> std::result::Result<(), String> {
        KindCheck::new().check(self, expected)
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
    fn the_kind_word_is_found_and_tells_the_two_kinds_apart() {
        // Without it, received mutexes would go unchecked on this platform.
        assert!(KindWord::find().is_some());
        let (_lock, lock) = mutex(Kind::ErrorCheck);
        let (_rlock, rlock) = mutex(Kind::Recursive);
        // SAFETY: the regions outlive these uses.
        let (lock, rlock) = unsafe { (&*lock, &*rlock) };
        assert_eq!(lock.check_kind(Some(Kind::ErrorCheck)), Ok(()));
        assert_eq!(rlock.check_kind(Some(Kind::Recursive)), Ok(()));
        assert!(lock.check_kind(Some(Kind::Recursive)).is_err());
        assert!(rlock.check_kind(Some(Kind::ErrorCheck)).is_err());
        // Held, or taken over from a dead holder, a mutex keeps its kind word.
        lock.lock("Lock").unwrap();
        assert_eq!(lock.check_kind(Some(Kind::ErrorCheck)), Ok(()));
        lock.unlock("Lock").unwrap();
    }

    #[test]
    fn the_holder_of_a_mutex_is_told_by_its_lock_word() {
        let (_region, m) = mutex(Kind::ErrorCheck);
        // SAFETY: the region outlives these uses.
        let m = unsafe { &*m };
        assert_eq!(m.holder(), Holder::Nobody);
        m.lock("Lock").unwrap();
        assert_eq!(m.holder(), Holder::ThisProcess);
        assert!(m.is_held_by_this_thread());
        let addr = m as *const RawMutex as usize;
        std::thread::spawn(move || {
            // SAFETY: the region outlives the thread, which is joined here.
            let m = unsafe { &*(addr as *const RawMutex) };
            assert!(!m.is_held_by_this_thread());
            assert_eq!(m.holder(), Holder::ThisProcess);
        })
        .join()
        .unwrap();
        m.unlock("Lock").unwrap();
        // A word written by hand: a thread id no thread has.
        // SAFETY: the lock word is the mutex's first i32, changed only atomically.
        let word = unsafe { AtomicI32::from_ptr(m.get().cast::<i32>()) };
        word.store(0x3fff_fff0, Ordering::Relaxed);
        assert_eq!(m.holder(), Holder::Gone(0x3fff_fff0));
        word.store(0, Ordering::Relaxed);
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
