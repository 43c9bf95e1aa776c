//! A kernel that lacks a feature multiproc needs gives an error that names it, before
//! anything is made. The kernel under the tests has everything, so the probe's answer is
//! faked, for this whole test process (hence one test, in a file of its own).

use multiproc_test_support::fds::open_fd_numbers;
use proc_core::internal::kernel::pretend_missing;
use proc_core::internal::memory_file;
use proc_core::{Error, KernelFeature, Process, StartMethod, active_children};

#[test]
fn a_kernel_without_pidfds_or_sealable_memory_files_is_named_and_nothing_is_made() {
    // Before: this kernel has both, and a child starts (which leaves what the process
    // keeps for all its children open, such as its lifeline).
    let mut p = Process::new(|| {}).with_start_method(StartMethod::Fork);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 0);
    let before = open_fd_numbers();

    pretend_missing(KernelFeature::Pidfds);
    let mut p = Process::new(|| {}).with_start_method(StartMethod::Fork);
    let err = p.start().unwrap_err();
    assert!(
        matches!(
            err,
            Error::KernelFeatureMissing {
                feature: KernelFeature::Pidfds
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("pidfd_open") && message.contains("5.4"),
        "{message}"
    );
    assert!(active_children().is_empty());
    assert!(!p.is_alive());

    pretend_missing(KernelFeature::SealedMemoryFiles);
    let err = memory_file::create(c"test").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("memfd_create"), "{err}");

    assert_eq!(
        open_fd_numbers(),
        before,
        "a refused start leaves nothing open"
    );
}
