//! What multiproc needs of the kernel, asked of the running one once: a kernel that lacks
//! a feature gives an error that names it ([`Error::KernelFeatureMissing`](crate::Error::KernelFeatureMissing)) where the
//! feature is first needed, before anything is half made, never a crash or a riddle of an
//! `errno` later on.
//!
//! The build refuses other systems (see the crate's `compile_error!`); this catches a Linux
//! that is too old, or a sandbox (seccomp, gVisor) that refuses the calls.

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// A kernel feature multiproc stands on, as
/// [`Error::KernelFeatureMissing`](crate::Error::KernelFeatureMissing) names it.
///
/// ```
/// use proc_core::KernelFeature;
///
/// assert_eq!(KernelFeature::Pidfds.since(), "5.4");
/// assert!(KernelFeature::Pidfds.to_string().contains("pidfd_open"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelFeature {
    /// Process descriptors (`pidfd_open`, Linux 5.3) that `waitid(P_PIDFD)` reaps (5.4):
    /// every child is signalled, waited for and reaped through one, so that a recycled pid
    /// is never hit.
    Pidfds,
    /// Memory files that can be sealed (`memfd_create` with `MFD_ALLOW_SEALING`, Linux
    /// 3.17): the shared memory of every lock, value and queue.
    SealedMemoryFiles,
}

impl KernelFeature {
    /// The oldest Linux release that has it.
    pub fn since(self) -> &'static str {
        match self {
            KernelFeature::Pidfds => "5.4",
            KernelFeature::SealedMemoryFiles => "3.17",
        }
    }

    /// What needs it.
    pub fn needed_for(self) -> &'static str {
        match self {
            KernelFeature::Pidfds => "starting and managing processes",
            KernelFeature::SealedMemoryFiles => "shared memory (locks, values, queues)",
        }
    }

    fn bit(self) -> u8 {
        match self {
            KernelFeature::Pidfds => 1,
            KernelFeature::SealedMemoryFiles => 2,
        }
    }
}

impl fmt::Display for KernelFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelFeature::Pidfds => "process descriptors (pidfd_open and waitid P_PIDFD)",
            KernelFeature::SealedMemoryFiles => "sealable memory files (memfd_create)",
        })
    }
}

/// The features this kernel lacks, as bits; probed once.
static MISSING: OnceLock<u8> = OnceLock::new();

/// Features a test pretends are missing (bits of [`KernelFeature::bit`]).
static PRETENDED: AtomicU8 = AtomicU8::new(0);

/// `Err(feature)` if this kernel lacks it (the callers make it the error of their layer).
pub(crate) fn require(feature: KernelFeature) -> Result<(), KernelFeature> {
    let missing = *MISSING.get_or_init(probe) | PRETENDED.load(Ordering::Relaxed);
    if missing & feature.bit() != 0 {
        return Err(feature);
    }
    Ok(())
}

/// From here on, answers as if the kernel lacked `feature` (tests of the error path; the
/// kernel they run on has everything).
pub(crate) fn pretend_missing(feature: KernelFeature) {
    PRETENDED.fetch_or(feature.bit(), Ordering::Relaxed);
}

/// Asks the kernel for each feature, with calls that change nothing.
fn probe() -> u8 {
    let mut missing = 0;
    if !has_pidfds() {
        missing |= KernelFeature::Pidfds.bit();
    }
    if !has_sealed_memory_files() {
        missing |= KernelFeature::SealedMemoryFiles.bit();
    }
    missing
}

/// A pidfd of this process, which `waitid(P_PIDFD)` must know (`ECHILD`: not a child),
/// not refuse as an unknown id type (`EINVAL` before 5.4).
fn has_pidfds() -> bool {
    // SAFETY: pidfd_open takes a pid and flags, no memory; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    let Ok(fd) = i32::try_from(fd) else {
        return false;
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed is a valid siginfo_t (plain data).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: P_PIDFD with a valid pidfd and a valid out-pointer; WNOHANG never blocks, and
    // this process is not its own child, so nothing is reaped.
    let rc = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
}

/// A memory file that takes a seal.
fn has_sealed_memory_files() -> bool {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    memfd_create(
        c"multiproc-probe",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .and_then(|fd| fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)))
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_has_every_feature() {
        assert_eq!(
            probe(),
            0,
            "the machine that runs the tests is Linux 5.4 or later"
        );
        assert!(require(KernelFeature::Pidfds).is_ok());
        assert!(require(KernelFeature::SealedMemoryFiles).is_ok());
    }

    #[test]
    fn the_error_names_the_feature_its_release_and_what_needs_it() {
        let message = crate::Error::KernelFeatureMissing {
            feature: KernelFeature::Pidfds,
        }
        .to_string();
        for part in ["pidfd_open", "5.4", "starting and managing processes"] {
            assert!(message.contains(part), "{message}");
        }
    }
}
