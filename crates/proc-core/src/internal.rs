//! The process layer's plumbing for the other layers of multiproc (proc-sync, proc-ipc,
//! proc-patterns) and for the fuzz targets: not part of the API, hidden from the docs, free
//! to change with those layers.

pub use crate::code_address::CodeAddress;
pub use crate::error::panic_message;
pub use crate::random::fill_random;
pub use crate::wait_readable::wait_readable;

/// Handles that travel: a value's bytes and the descriptors it holds, encoded together; the
/// kind a handle announces. See `handle_wire.rs`.
pub mod handle_wire {
    pub use crate::handle_wire::*;
}

/// Descriptors sent with bytes over a Unix socket (`SCM_RIGHTS`). See `fd_passing.rs`.
pub mod fd_passing {
    pub use crate::fd_passing::*;
}

/// Memory files made and received: creating, sealing, and looking at a received one before
/// trusting it. See `memory_file.rs`.
pub mod memory_file {
    pub use crate::memory_file::*;
}

/// The kernel features asked of the running kernel. See `kernel.rs`.
pub mod kernel {
    /// From here on this process answers as if the kernel lacked `feature`: for tests of
    /// the error a kernel without it gives (run them in a process of their own).
    pub fn pretend_missing(feature: crate::KernelFeature) {
        crate::kernel::pretend_missing(feature);
    }
}

/// Entry points for the fuzz targets under `fuzz/`; not part of the API.
pub mod fuzzing {
    use std::os::fd::{BorrowedFd, OwnedFd};

    /// A socket pair of the kind a spawned child hands its value over on: (the parent's
    /// end, the child's end).
    pub fn value_channel() -> std::io::Result<(OwnedFd, OwnedFd)> {
        crate::value_handover::channel()
    }

    /// What `JoinHandle::join` takes from the parent's end: the value's length, or why it
    /// was refused.
    pub fn take_value(
        socket: BorrowedFd<'_>,
        limit: usize,
    ) -> Result<Option<usize>, crate::JoinError> {
        crate::value_handover::take(socket, limit).map(|value| value.map(|bytes| bytes.len()))
    }
}
