//! Hostile peers of the process layer: what crosses into a parent from a child that does not
//! play by the rules. A child of `spawn` hands its value back as one record on a socket (the
//! value inline, or a sealed memory file's descriptor; see `src/value_handover.rs`). Each test
//! here runs a child that writes a crafted record on that socket itself, then exits, and
//! checks what the parent's `join` makes of it: a clear error that says what was wrong (or
//! the value, for the controls that craft a correct record), never a panic, never a wait,
//! and nothing kept: every descriptor that came is closed, no memory file stays mapped.
//!
//! The other crossings have their own hostile tests: a spawned or served child's task
//! message and its descriptors, and a fork server's requests, in `task_input.rs`; the codec
//! on random bytes in `bad_input.rs`.
//!
//! The crafting child finds its end of the value channel the way a stray program would: it
//! sends on every `SOCK_SEQPACKET` socket it holds. It holds two, its own end and (inherited
//! by fork) a copy of the parent's, where the record goes back to itself and is dropped
//! with it. So the tests of this binary take turns: a sibling test's sockets, inherited by a
//! child forked meanwhile, would get the record too.

mod common;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use multiproc_test_support::fds::one_at_a_time;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{SockType, getsockopt, sockopt};
use proc_core::codec::{self, CodecError};
use proc_core::{JoinError, JoinHandle, RESULT_LIMIT, StartMethod, exit, set_start_method, spawn};
use serde::Serialize;

/// The kind byte of a record whose value follows inline.
const INLINE: u8 = b'v';
/// The kind byte of a record whose value is in the memory file that comes with it.
const IN_FILE: u8 = b'f';

/// What a `spawn` child sends back, as it encodes it: the value is `Returned`.
#[derive(Serialize)]
enum Outcome<T> {
    Returned(T),
}

/// The value the controls send, and its encoding.
const VALUE: u64 = 0x5eed_5eed;

fn encoded_value() -> Vec<u8> {
    codec::encode(&Outcome::Returned(VALUE)).unwrap()
}

/// A record: the kind, the announced length (u64, little-endian), then `body`.
fn record(kind: u8, announced: u64, body: &[u8]) -> Vec<u8> {
    let mut record = vec![kind];
    record.extend_from_slice(&announced.to_le_bytes());
    record.extend_from_slice(body);
    record
}

/// A memory file holding `bytes`, with `seals`.
fn memory_file(bytes: &[u8], seals: SealFlag) -> OwnedFd {
    let fd = memfd_create(
        c"hostile",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd_create");
    let mut written = 0;
    while written < bytes.len() {
        written += nix::unistd::write(&fd, &bytes[written..]).expect("write the memory file");
    }
    if !seals.is_empty() {
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("seal the memory file");
    }
    fd
}

/// The seals a memory file of a value carries.
fn all_seals() -> SealFlag {
    SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL
}

/// A file that is no memory file: this test binary.
fn not_a_memory_file() -> OwnedFd {
    std::fs::File::open(std::env::current_exe().unwrap())
        .unwrap()
        .into()
}

/// In a child: sends `record` with `fds` on every `SOCK_SEQPACKET` socket it holds, its end
/// of the value channel among them.
fn send_on_the_value_channel(record: &[u8], fds: &[OwnedFd]) {
    let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut sent = 0;
    for number in multiproc_test_support::fds::open_fd_numbers() {
        // SAFETY: borrowed for this iteration only; the descriptor is open and not closed
        // meanwhile, this thread being the child's only one doing anything.
        let fd = unsafe { BorrowedFd::borrow_raw(number) };
        if getsockopt(&fd, sockopt::SockType) == Ok(SockType::SeqPacket)
            && proc_core::internal::fd_passing::send_with_fds(fd, record, &fds).is_ok()
        {
            sent += 1;
        }
    }
    assert_eq!(
        sent, 2,
        "the child's end of the value channel, and its copy of the parent's"
    );
}

/// What the crafting child makes: a record and its descriptors.
type Craft = fn() -> (Vec<u8>, Vec<OwnedFd>);

/// Open descriptors of this process (the listing's own left out), and whether a memory file
/// is mapped.
fn what_this_process_holds() -> (usize, bool) {
    let mapped = multiproc_test_support::maps::memfd_mappings("") > 0;
    (common::open_fds(), mapped)
}

/// Waits, without joining, until the child has ended by itself; fails if it does not.
fn wait_until_it_ends<T>(h: &JoinHandle<T>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.is_alive() {
        assert!(Instant::now() < deadline, "the crafting child did not end");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a child that sends what `craft` makes on the value channel and exits with 0; what
/// `join` gives. Checks that the parent kept nothing of it.
fn join_of_a_child_that_sends(craft: Craft) -> Result<u64, JoinError> {
    let _turn = one_at_a_time();
    // A closure runs only under Fork, whatever the binary's default.
    set_start_method(StartMethod::Fork).unwrap();
    let before = what_this_process_holds();
    let h = spawn(move || -> u64 {
        let (record, fds) = craft();
        send_on_the_value_channel(&record, &fds);
        exit(0)
    })
    .expect("spawn");
    wait_until_it_ends(&h);
    let joined = h.join();
    assert_eq!(
        what_this_process_holds(),
        before,
        "descriptors open and a memory file mapped, before and after {joined:?}"
    );
    joined
}

#[track_caller]
fn refused_because(joined: Result<u64, JoinError>, why: &str) {
    match joined {
        Err(JoinError::Malformed { reason }) => {
            assert!(reason.contains(why), "expected {why:?} in: {reason}")
        }
        other => panic!("expected Malformed ({why}), got {other:?}"),
    }
}

// Controls: records crafted by hand that are right are taken, so the refusals below are
// refusals of what is wrong in them, not of hand-made records.

#[test]
fn a_correct_inline_record_sent_by_hand_is_taken() {
    let joined = join_of_a_child_that_sends(|| {
        let value = encoded_value();
        (record(INLINE, value.len() as u64, &value), Vec::new())
    });
    assert_eq!(joined.unwrap(), VALUE);
}

#[test]
fn a_correct_memory_file_sent_by_hand_is_taken() {
    let joined = join_of_a_child_that_sends(|| {
        let value = encoded_value();
        let file = memory_file(&value, all_seals());
        (record(IN_FILE, value.len() as u64, &[]), vec![file])
    });
    assert_eq!(joined.unwrap(), VALUE);
}

// Records that lie about their length.

#[test]
fn an_inline_record_announcing_more_than_the_result_limit_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(INLINE, RESULT_LIMIT as u64 + 1, b"tiny"), vec![])),
        "over the limit of 1073741824",
    );
    refused_because(
        join_of_a_child_that_sends(|| (record(INLINE, u64::MAX, b"tiny"), vec![])),
        "announces a value of 18446744073709551615 bytes, over the limit",
    );
}

#[test]
fn an_inline_record_announcing_more_than_it_carries_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(INLINE, 100, &[0; 10]), vec![])),
        "announces a value of 100 bytes and carries 10",
    );
}

#[test]
fn an_inline_record_announcing_less_than_it_carries_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(INLINE, 5, &[0; 10]), vec![])),
        "announces a value of 5 bytes and carries 10",
    );
}

#[test]
fn a_record_longer_than_any_record_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(INLINE, 40 << 10, &[0; 40 << 10]), vec![])),
        "longer than the longest there is",
    );
}

#[test]
fn a_record_shorter_than_its_header_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (vec![INLINE, 1, 2], vec![])),
        "record of 3 bytes is shorter than a record's 9-byte header",
    );
}

#[test]
fn a_memory_file_announced_over_the_result_limit_is_refused_unmapped() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let file = memory_file(&encoded_value(), all_seals());
            (record(IN_FILE, 1 << 40, &[]), vec![file])
        }),
        "over the limit of 1073741824",
    );
}

// Records that are not what they claim.

#[test]
fn a_record_of_an_unknown_kind_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(b'x', 1, &[0]), vec![])),
        "of kind 0x78",
    );
}

#[test]
fn garbage_in_place_of_an_outcome_is_a_decode_error() {
    match join_of_a_child_that_sends(|| (record(INLINE, 8, &[0xFF; 8]), vec![])) {
        Err(JoinError::Codec(CodecError::Decode(_))) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn garbage_in_a_correct_memory_file_is_a_decode_error() {
    let joined = join_of_a_child_that_sends(|| {
        let file = memory_file(&[0xFF; 100], all_seals());
        (record(IN_FILE, 100, &[]), vec![file])
    });
    match joined {
        Err(JoinError::Codec(CodecError::Decode(_))) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn an_empty_record_is_no_value() {
    let joined = join_of_a_child_that_sends(|| (Vec::new(), Vec::new()));
    assert!(matches!(joined, Err(JoinError::Exited(0))), "{joined:?}");
}

// Descriptors where none belong, or not the one that belongs.

#[test]
fn an_inline_record_with_a_descriptor_is_refused_and_the_descriptor_closed() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let value = encoded_value();
            let (read, _write) = std::io::pipe().unwrap();
            (
                record(INLINE, value.len() as u64, &value),
                vec![read.into()],
            )
        }),
        "its inline value came with 1 descriptors, where none belong",
    );
}

#[test]
fn a_memory_file_record_without_its_descriptor_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(IN_FILE, 8, &[]), vec![])),
        "came with 0 descriptors, not 1",
    );
}

#[test]
fn a_memory_file_record_with_two_files_is_refused_and_both_closed() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let value = encoded_value();
            let files = vec![
                memory_file(&value, all_seals()),
                memory_file(&value, all_seals()),
            ];
            (record(IN_FILE, value.len() as u64, &[]), files)
        }),
        "came with 2 descriptors, not 1",
    );
}

#[test]
fn a_memory_file_record_with_two_hundred_descriptors_is_refused_and_all_closed() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let null = std::fs::File::open("/dev/null").unwrap();
            let fds = (0..200).map(|_| null.try_clone().unwrap().into()).collect();
            (record(IN_FILE, 8, &[]), fds)
        }),
        "came with 200 descriptors, not 1",
    );
}

#[test]
fn a_memory_file_record_with_bytes_after_its_header_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let value = encoded_value();
            let file = memory_file(&value, all_seals());
            (record(IN_FILE, value.len() as u64, &[1, 2, 3]), vec![file])
        }),
        "has 3 bytes after the header",
    );
}

// Memory files that are not safe to map, or not memory files.

#[test]
fn an_unsealed_memory_file_is_refused_unmapped() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let value = encoded_value();
            let file = memory_file(&value, SealFlag::empty());
            (record(IN_FILE, value.len() as u64, &[]), vec![file])
        }),
        "not sealed against shrinking, growing and writing",
    );
}

#[test]
fn a_memory_file_that_can_still_be_written_is_refused_unmapped() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let value = encoded_value();
            let file = memory_file(&value, SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW);
            (record(IN_FILE, value.len() as u64, &[]), vec![file])
        }),
        "not sealed against shrinking, growing and writing",
    );
}

#[test]
fn a_memory_file_smaller_than_announced_is_refused_unmapped() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let file = memory_file(&[0; 10], all_seals());
            (record(IN_FILE, 100, &[]), vec![file])
        }),
        "holds 10 bytes where it announces 100",
    );
}

#[test]
fn a_memory_file_larger_than_announced_is_refused_unmapped() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let file = memory_file(&[0; 200], all_seals());
            (record(IN_FILE, 100, &[]), vec![file])
        }),
        "holds 200 bytes where it announces 100",
    );
}

#[test]
fn a_pipe_in_place_of_a_memory_file_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| {
            let (read, _write) = std::io::pipe().unwrap();
            (record(IN_FILE, 8, &[]), vec![read.into()])
        }),
        "is a pipe, not a memory file",
    );
}

#[test]
fn a_file_on_disk_in_place_of_a_memory_file_is_refused() {
    refused_because(
        join_of_a_child_that_sends(|| (record(IN_FILE, 8, &[]), vec![not_a_memory_file()])),
        "not a sealable memory file",
    );
}

// The parent at its limit of open files.

#[test]
fn a_parent_that_cannot_open_the_memory_file_gets_a_clear_error_and_keeps_nothing() {
    let _turn = one_at_a_time();
    set_start_method(StartMethod::Fork).unwrap();
    let before = what_this_process_holds();
    let h = spawn(|| vec![7u8; 100 << 10]).expect("spawn");
    wait_until_it_ends(&h);
    // The lowest free descriptor number becomes the limit: no new descriptor can be opened.
    let lowest_free = nix::unistd::dup(std::io::stdin()).expect("dup");
    let limit = lowest_free.as_raw_fd() as libc::rlim_t;
    drop(lowest_free);
    let mut saved = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the rlimit values given, on the stack.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved), 0);
        let lowered = libc::rlimit {
            rlim_cur: limit,
            rlim_max: saved.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
    }
    let joined = h.join();
    // SAFETY: as above; the limit before is put back.
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &saved), 0) };
    match joined {
        Err(JoinError::Malformed { reason }) => {
            assert!(reason.contains("could not take"), "{reason}")
        }
        other => panic!("expected Malformed, got {:?}", other.map(|v| v.len())),
    }
    assert_eq!(what_this_process_holds(), before);
}
