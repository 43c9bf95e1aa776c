//! `SharedMemory`: names, sizes and modes as Python's; bounds-checked access; the same
//! memory in every process that opens a block or receives it.

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;

use common::{run, shm_exists, shm_path, unique_name};
use proc_core::internal::handle_wire::{self, FdRef, HandleKind};
use proc_ipc::Queue;
use proc_shared::{Error, SharedMemory};

#[test]
fn a_created_block_is_a_file_in_dev_shm_readable_by_its_user_only() {
    let shm = SharedMemory::create(100).unwrap();
    let meta = std::fs::metadata(shm_path(shm.name())).unwrap();
    assert_eq!(meta.len(), 100);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    shm.unlink().unwrap();
    assert!(!shm_exists(shm.name()));
}

#[test]
fn random_names_are_pythons_psm_and_8_hex_digits() {
    let shm = SharedMemory::create(1).unwrap();
    let hex = shm.name().strip_prefix("psm_").expect("psm_ prefix");
    assert_eq!(hex.len(), 8, "{}", shm.name());
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    shm.unlink().unwrap();
}

#[test]
fn a_new_block_is_zeroed() {
    let shm = SharedMemory::create(4096).unwrap();
    let mut all = vec![1u8; 4096];
    shm.read_bytes(0, &mut all).unwrap();
    assert!(all.iter().all(|&b| b == 0));
    shm.unlink().unwrap();
}

#[test]
fn create_named_refuses_a_name_that_exists() {
    let name = unique_name("exists");
    let shm = SharedMemory::create_named(&name, 8).unwrap();
    shm.write(0, &7u64).unwrap();
    match SharedMemory::create_named(&name, 16) {
        Err(Error::AlreadyExists { name: n }) => assert_eq!(n, name),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The existing block is untouched.
    assert_eq!(
        SharedMemory::open(&name).unwrap().read::<u64>(0).unwrap(),
        7
    );
    shm.unlink().unwrap();
}

#[test]
fn a_size_of_zero_is_refused_at_creation() {
    let name = unique_name("zero");
    assert!(matches!(SharedMemory::create(0), Err(Error::ZeroSize)));
    assert!(matches!(
        SharedMemory::create_named(&name, 0),
        Err(Error::ZeroSize)
    ));
    assert!(!shm_exists(&name), "a refused create leaves nothing behind");
}

#[test]
fn names_take_an_optional_leading_slash_as_in_python() {
    let name = unique_name("slash");
    let shm = SharedMemory::create_named(&format!("/{name}"), 8).unwrap();
    assert_eq!(shm.name(), name);
    let again = SharedMemory::open(&name).unwrap();
    let with_slash = SharedMemory::open(&format!("/{name}")).unwrap();
    shm.write(0, &3u8).unwrap();
    assert_eq!(again.read::<u8>(0).unwrap(), 3);
    assert_eq!(with_slash.read::<u8>(0).unwrap(), 3);
    shm.unlink().unwrap();
}

#[test]
fn names_that_are_not_one_file_are_refused_with_the_reason() {
    for bad in ["", "/", "a/b", "..", "a\0b"] {
        match SharedMemory::create_named(bad, 8) {
            Err(Error::InvalidName { name, reason }) => {
                assert_eq!(name, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
        }
        assert!(matches!(
            SharedMemory::open(bad),
            Err(Error::InvalidName { .. })
        ));
    }
    let long = "x".repeat(256);
    let err = SharedMemory::create_named(&long, 8).unwrap_err();
    assert!(err.to_string().contains("255"), "{err}");
}

#[test]
fn open_takes_the_size_of_the_file_and_fails_clearly_without_one() {
    let shm = SharedMemory::create(12345).unwrap();
    assert_eq!(SharedMemory::open(shm.name()).unwrap().size(), 12345);
    shm.unlink().unwrap();
    match SharedMemory::open(shm.name()) {
        Err(Error::NotFound { name }) => assert_eq!(name, shm.name()),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn an_empty_block_cannot_be_opened() {
    let name = unique_name("empty");
    std::fs::File::create(shm_path(&name)).unwrap();
    let result = SharedMemory::open(&name);
    std::fs::remove_file(shm_path(&name)).unwrap();
    assert!(matches!(result, Err(Error::Empty { .. })), "{result:?}");
}

#[test]
fn a_name_that_is_not_a_file_is_not_a_block() {
    let name = unique_name("fifo");
    nix::unistd::mkfifo(&shm_path(&name), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let result = SharedMemory::open(&name);
    std::fs::remove_file(shm_path(&name)).unwrap();
    assert!(matches!(result, Err(Error::NotAFile { .. })), "{result:?}");
}

#[test]
fn accesses_past_the_end_are_refused() {
    let shm = SharedMemory::create(16).unwrap();
    assert!(shm.write(8, &1u64).is_ok());
    assert!(matches!(
        shm.write(9, &1u64),
        Err(Error::OutOfBounds {
            offset: 9,
            len: 8,
            size: 16
        })
    ));
    assert!(shm.read::<u64>(9).is_err());
    assert!(shm.read::<u8>(16).is_err());
    assert!(shm.read::<u8>(usize::MAX).is_err());
    assert!(shm.write_bytes(usize::MAX, &[1]).is_err());
    let mut seventeen = [0u8; 17];
    assert!(shm.read_bytes(0, &mut seventeen).is_err());
    // An empty access at the very end is in bounds.
    assert!(shm.read_bytes(16, &mut []).is_ok());
    // Nothing was written by the refused accesses.
    assert_eq!(shm.read::<[u64; 2]>(0).unwrap(), [0, 1]);
    shm.unlink().unwrap();
}

#[test]
fn values_need_no_alignment() {
    let shm = SharedMemory::create(64).unwrap();
    for offset in 0..8 {
        shm.write(offset, &(offset as f64 + 0.5)).unwrap();
        assert_eq!(shm.read::<f64>(offset).unwrap(), offset as f64 + 0.5);
    }
    shm.unlink().unwrap();
}

#[test]
fn a_closed_block_refuses_access_and_can_still_be_unlinked() {
    let mut shm = SharedMemory::create(8).unwrap();
    shm.close();
    assert!(matches!(shm.read::<u8>(0), Err(Error::Closed { .. })));
    assert!(matches!(shm.write(0, &1u8), Err(Error::Closed { .. })));
    assert!(shm.as_ptr().is_null());
    assert!(shm_exists(shm.name()), "close does not unlink");
    shm.unlink().unwrap();
    assert!(!shm_exists(shm.name()));
}

#[test]
fn a_mapping_outlives_unlink() {
    let shm = SharedMemory::create(8).unwrap();
    shm.unlink().unwrap();
    shm.write(0, &5u32).unwrap();
    assert_eq!(shm.read::<u32>(0).unwrap(), 5);
    assert!(matches!(shm.unlink(), Err(Error::NotFound { .. })));
}

#[test]
fn a_block_shrunk_by_another_process_is_refused_for_bulk_copies() {
    let shm = SharedMemory::create(1 << 20).unwrap();
    // What a hostile or careless peer can do to a file of the same user.
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(shm.name()))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let mut big = vec![0u8; 1 << 20];
    match shm.read_bytes(0, &mut big) {
        Err(Error::Shrunk { mapped, now, .. }) => assert_eq!((mapped, now), (1 << 20, 4096)),
        other => panic!("expected Shrunk, got {other:?}"),
    }
    assert!(matches!(
        shm.write_bytes(0, &big),
        Err(Error::Shrunk { .. })
    ));
    // Within the file's new size, small accesses still work.
    shm.write(0, &1u8).unwrap();
    shm.unlink().unwrap();
}

fn write_marks(shm: SharedMemory, value: u64) {
    shm.write(0, &value).unwrap();
    shm.write_bytes(8, b"child").unwrap();
}

#[test]
fn a_block_passed_to_a_child_is_the_same_memory() {
    let shm = SharedMemory::create(64).unwrap();
    let copy = SharedMemory::open(shm.name()).unwrap();
    assert_eq!(run(write_marks, (copy, 0xfeed_u64)), 0);
    assert_eq!(shm.read::<u64>(0).unwrap(), 0xfeed);
    let mut word = [0u8; 5];
    shm.read_bytes(8, &mut word).unwrap();
    assert_eq!(&word, b"child");
    shm.unlink().unwrap();
}

fn open_by_name_and_write(name: String) {
    let shm = SharedMemory::open(&name).unwrap();
    shm.write(0, &u64::MAX).unwrap();
}

#[test]
fn a_child_opens_a_block_by_name() {
    let shm = SharedMemory::create(8).unwrap();
    assert_eq!(run(open_by_name_and_write, (shm.name().to_string(),)), 0);
    assert_eq!(shm.read::<u64>(0).unwrap(), u64::MAX);
    shm.unlink().unwrap();
}

fn create_and_send(queue: Queue<SharedMemory>) {
    let shm = SharedMemory::create(32).unwrap();
    shm.write(0, &42u32).unwrap();
    queue.put(shm).unwrap();
}

#[test]
fn a_block_created_by_a_child_travels_through_a_queue_and_outlives_the_child() {
    let queue = Queue::<SharedMemory>::new(0).unwrap();
    assert_eq!(run(create_and_send, (queue.clone(),)), 0);
    let shm = queue.get().unwrap();
    assert_eq!(shm.read::<u32>(0).unwrap(), 42);
    assert_eq!(shm.size(), 32);
    // The child has ended; the block is still there while its receiver holds it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(shm_exists(shm.name()));
    shm.unlink().unwrap();
}

#[test]
fn a_closed_block_cannot_be_sent() {
    let queue = Queue::<SharedMemory>::new(0).unwrap();
    let mut shm = SharedMemory::create(8).unwrap();
    let name = shm.name().to_string();
    shm.close();
    let err = queue.put(shm).unwrap_err();
    assert!(format!("{err:?}").contains("closed"), "{err:?}");
    SharedMemory::open(&name).unwrap().unlink().unwrap();
}

/// Encodes what a sender could claim a block is, for the receiver to judge.
fn forged(
    fd: std::os::fd::BorrowedFd<'_>,
    name: &str,
    size: u64,
    tracker: Option<std::os::fd::BorrowedFd<'_>>,
) -> handle_wire::Parcel {
    handle_wire::encode(&(
        HandleKind::new("SharedMemory"),
        (FdRef::new(fd), name, size, tracker.map(FdRef::new)),
    ))
    .unwrap()
}

fn decode_block(parcel: handle_wire::Parcel) -> Result<SharedMemory, String> {
    handle_wire::decode::<SharedMemory>(&parcel.bytes, 1 << 16, parcel.fds)
        .map_err(|e| e.to_string())
}

#[test]
fn a_received_block_that_is_not_what_it_claims_is_refused() {
    let shm = SharedMemory::create(10).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(shm.name()))
        .unwrap();

    let as_announced = decode_block(forged(file.as_fd(), shm.name(), 10, None));
    assert!(as_announced.is_ok(), "{as_announced:?}");

    let err = decode_block(forged(file.as_fd(), shm.name(), 99, None)).unwrap_err();
    assert!(err.contains("announced as 99 bytes"), "{err}");

    // Another block's file under this block's name: unlink would remove the wrong one.
    let other = SharedMemory::create(10).unwrap();
    let err = decode_block(forged(file.as_fd(), other.name(), 10, None)).unwrap_err();
    assert!(
        err.contains("another file than the block of that name"),
        "{err}"
    );
    other.unlink().unwrap();

    let err = decode_block(forged(file.as_fd(), "a/b", 10, None)).unwrap_err();
    assert!(err.contains("invalid shared memory name"), "{err}");

    let (read, _write) = std::io::pipe().unwrap();
    let err = decode_block(forged(read.as_fd(), shm.name(), 10, None)).unwrap_err();
    assert!(err.contains("is not a regular file"), "{err}");

    let err = decode_block(forged(file.as_fd(), shm.name(), 10, Some(read.as_fd()))).unwrap_err();
    assert!(err.contains("not a socket"), "{err}");

    let lock =
        handle_wire::encode(&(HandleKind::new("Lock"), (FdRef::new(file.as_fd()),))).unwrap();
    let err = decode_block(lock).unwrap_err();
    assert!(
        err.contains("received a Lock where a SharedMemory was expected"),
        "{err}"
    );
    shm.unlink().unwrap();
}

// Pinned to Fork: the subject is what a closure captures, and only a copy of this process
// can run a closure.
#[test]
fn a_block_captured_by_a_forked_closure_is_the_same_memory() {
    let shm = SharedMemory::create(8).unwrap();
    let name = shm.name().to_string();
    let mut child = proc_core::Process::new(move || shm.write(0, &77u64).unwrap())
        .with_start_method(proc_core::StartMethod::Fork);
    child.start().unwrap();
    assert_eq!(child.join().unwrap(), 0);
    let shm = SharedMemory::open(&name).unwrap();
    assert_eq!(shm.read::<u64>(0).unwrap(), 77);
    shm.unlink().unwrap();
}
