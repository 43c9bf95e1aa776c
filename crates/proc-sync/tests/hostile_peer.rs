//! A peer that forges handles: wire bytes written by hand (`codec::encode` of tuples), with
//! descriptors of every sort (the memory of another kind of handle, pipes, sockets, devices,
//! memory files unsealed, too small, too large, not writable, full of zeros or garbage, or
//! copies of a real handle's memory with header words changed). Whatever it sends, the
//! receiver gets a decode error for that item that says what was wrong, never a handle
//! that would misbehave, and never a panic, a hang or an access out of bounds.
//!
//! The layouts the forgeries patch are this crate's (see each primitive's header struct);
//! `layout_of_each_primitive_is_where_these_tests_patch_it` checks the offsets used here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, socketpair};
use nix::sys::stat::Mode;
use proc_core::codec;
use proc_core::internal::handle_wire::{self, HandleKind, Parcel};
use proc_sync::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RawArray, RawValue, Semaphore,
    Value,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

const LIMIT: usize = 1 << 16;

/// Every kind of handle, as its wire form names it.
const KINDS: [&str; 11] = [
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Event",
    "Condition",
    "Barrier",
    "Value",
    "Array",
    "RawValue",
    "RawArray",
];

/// The size of a pthread mutex: the first field of every header that has one.
const M: usize = size_of::<libc::pthread_mutex_t>();

/// A real handle of `kind`, encoded as a well-behaved sender does. Its numbers are those
/// [`wire`] writes: a `BoundedSemaphore` and a `Barrier` of 2, a `Value<u64>`, a
/// `Condition<u64>`, an `Array<u64>` of 3, a `RawValue<u64>` and a `RawArray<u64>` of 3.
/// A `Value` or `Array` carries its lock as a second descriptor.
fn real(kind: &str) -> Parcel {
    let parcel = match kind {
        "Lock" => handle_wire::encode(&Lock::new().unwrap()),
        "RLock" => handle_wire::encode(&RLock::new().unwrap()),
        "Semaphore" => handle_wire::encode(&Semaphore::new(1).unwrap()),
        "BoundedSemaphore" => handle_wire::encode(&BoundedSemaphore::new(2).unwrap()),
        "Event" => handle_wire::encode(&Event::new().unwrap()),
        "Condition" => handle_wire::encode(&Condition::with_value(5u64).unwrap()),
        "Barrier" => handle_wire::encode(&Barrier::new(2).unwrap()),
        "Value" => handle_wire::encode(&Value::new(7u64).unwrap()),
        "Array" => handle_wire::encode(&Array::from_slice(&[1u64, 2, 3]).unwrap()),
        "RawValue" => handle_wire::encode(&RawValue::new(7u64).unwrap()),
        "RawArray" => handle_wire::encode(&RawArray::from_slice(&[1u64, 2, 3]).unwrap()),
        other => unreachable!("{other}"),
    };
    parcel.unwrap()
}

/// The wire form of a handle of `kind` whose memory file is descriptor 0 of its message,
/// with the numbers that [`real`]'s handles travel with (and, for a `Value` or an `Array`,
/// its lock as descriptor 1).
fn wire(kind: &'static str) -> Vec<u8> {
    let head = (HandleKind::new(kind), 0u32);
    let encoded = match kind {
        "Lock" | "RLock" | "Event" => codec::encode(&(head, ())),
        "Semaphore" => codec::encode(&(head, u32::MAX)),
        "BoundedSemaphore" => codec::encode(&(head, 2u32)),
        "Barrier" => codec::encode(&(head, (2u32, NO_ACTION))),
        "Condition" => codec::encode(&(head, ((8u64, 8u64), OWN_LOCK))),
        "RawValue" => codec::encode(&(head, (8u64, 8u64))),
        "RawArray" => codec::encode(&(head, ((8u64, 8u64), 3u64))),
        "Value" => codec::encode(&(head, ((8u64, 8u64), lock_wire()))),
        "Array" => codec::encode(&(head, (((8u64, 8u64), 3u64), lock_wire()))),
        other => unreachable!("{other}"),
    };
    encoded.unwrap()
}

/// A condition's shared lock on the wire when it has its own.
const OWN_LOCK: Option<u64> = None;

/// A barrier's action on the wire when it has none.
const NO_ACTION: Option<u64> = None;

/// The wire form of the lock a `Value` or `Array` travels with: a `Lock` handle whose memory
/// file is descriptor 1 of the message.
fn lock_wire() -> (HandleKind, u32, ()) {
    (HandleKind::new("Lock"), 1u32, ())
}

/// The wire form of a handle of `kind` with `numbers` after its descriptor.
fn wire_with(kind: &'static str, numbers: impl Serialize) -> Vec<u8> {
    codec::encode(&(HandleKind::new(kind), 0u32, numbers)).unwrap()
}

fn decode<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), String> {
    handle_wire::decode::<T>(bytes, LIMIT, fds)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Decodes `bytes` and `fds` as the handle type named `kind`: `Ok`, or the error's text.
/// A `Value` or `Array` given only its (forged) memory gets a real lock as descriptor 1.
fn decode_as(kind: &str, bytes: &[u8], mut fds: Vec<OwnedFd>) -> Result<(), String> {
    if matches!(kind, "Value" | "Array") && fds.len() == 1 {
        fds.push(real_lock_fd());
    }
    match kind {
        "Lock" => decode::<Lock>(bytes, fds),
        "RLock" => decode::<RLock>(bytes, fds),
        "Semaphore" => decode::<Semaphore>(bytes, fds),
        "BoundedSemaphore" => decode::<BoundedSemaphore>(bytes, fds),
        "Event" => decode::<Event>(bytes, fds),
        "Condition" => decode::<Condition<u64>>(bytes, fds),
        "Barrier" => decode::<Barrier>(bytes, fds),
        "Value" => decode::<Value<u64>>(bytes, fds),
        "Array" => decode::<Array<u64>>(bytes, fds),
        "RawValue" => decode::<RawValue<u64>>(bytes, fds),
        "RawArray" => decode::<RawArray<u64>>(bytes, fds),
        other => unreachable!("{other}"),
    }
}

/// The memory file of a new, real `Lock`.
fn real_lock_fd() -> OwnedFd {
    real("Lock").fds.remove(0)
}

/// Asserts that `got` is an error whose text contains `expected`.
#[track_caller]
fn refused(got: Result<(), String>, expected: &str) {
    match got {
        Err(text) if text.contains(expected) => {}
        Err(text) => panic!("refused, but not for {expected:?}: {text}"),
        Ok(()) => panic!("accepted; expected a refusal for {expected:?}"),
    }
}

/// The bytes of a memory file.
fn contents(fd: BorrowedFd<'_>) -> Vec<u8> {
    let file = std::fs::File::from(fd.try_clone_to_owned().unwrap());
    let len = file.metadata().unwrap().len() as usize;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

/// A new memory file holding `bytes`, sealed with `seals`.
fn memory_file(bytes: &[u8], seals: SealFlag) -> OwnedFd {
    let fd = memfd_create(
        c"forged",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .unwrap();
    let file = std::fs::File::from(fd);
    file.set_len(bytes.len() as u64).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    let fd = OwnedFd::from(file);
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).unwrap();
    fd
}

/// The seals every handle's memory file carries.
fn fixed_size() -> SealFlag {
    SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW
}

/// A copy of the memory of a real handle of `kind`, changed by `patch`, sealed as a real one.
fn patched(kind: &str, patch: impl FnOnce(&mut Vec<u8>)) -> OwnedFd {
    let parcel = real(kind);
    let mut bytes = contents(parcel.fds[0].as_fd());
    patch(&mut bytes);
    memory_file(&bytes, fixed_size())
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

/// Where the stamp ("mps1", then the primitive's number) of `bytes` is.
fn stamp_at(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"mps1")
        .expect("a stamp")
}

// Offsets of the header words patched below (all headers are repr(C)).
const LOCK_STAMP: usize = M;
const SEMAPHORE_COUNT: usize = 0;
const SEMAPHORE_LIMIT: usize = 8;
const SEMAPHORE_STAMP: usize = 16;
const EVENT_STAMP: usize = 8;
/// Values and arrays (raw or not) share one header: the element count, then the stamp.
const VALUE_STAMP: usize = 8;
const ARRAY_LEN: usize = 0;
const ARRAY_STAMP: usize = 8;
const BARRIER_ARRIVED: usize = M;
const BARRIER_PARTIES: usize = M + 20;
const BARRIER_STAMP: usize = M + 24;
/// After the stamp (24 bytes) and the default timeout (8).
const BARRIER_HAS_ACTION: usize = M + 56;
const CONDITION_USED: usize = M + 4;
const CONDITION_STAMP: usize = M + 24;
/// The first waiter slot of a condition (a mutex, a state word, a ticket), and its size.
const CONDITION_SLOTS: usize = M + 48;
const SLOT: usize = M + 8;
/// The element size and alignment in a stamp.
const STAMP_ELEMENT_SIZE: usize = 8;
const STAMP_ELEMENT_ALIGN: usize = 16;

#[test]
fn layout_of_each_primitive_is_where_these_tests_patch_it() {
    for (kind, stamp) in [
        ("Lock", LOCK_STAMP),
        ("RLock", LOCK_STAMP),
        ("Semaphore", SEMAPHORE_STAMP),
        ("BoundedSemaphore", SEMAPHORE_STAMP),
        ("Event", EVENT_STAMP),
        ("Value", VALUE_STAMP),
        ("Array", ARRAY_STAMP),
        ("RawValue", VALUE_STAMP),
        ("RawArray", ARRAY_STAMP),
        ("Barrier", BARRIER_STAMP),
        ("Condition", CONDITION_STAMP),
    ] {
        let bytes = contents(real(kind).fds[0].as_fd());
        assert_eq!(stamp_at(&bytes), stamp, "{kind}");
    }
    let semaphore = contents(real("BoundedSemaphore").fds[0].as_fd());
    assert_eq!(semaphore[SEMAPHORE_COUNT], 2);
    assert_eq!(semaphore[SEMAPHORE_LIMIT], 2);
    assert_eq!(contents(real("Array").fds[0].as_fd())[ARRAY_LEN], 3);
    assert_eq!(contents(real("RawArray").fds[0].as_fd())[ARRAY_LEN], 3);
    assert_eq!(contents(real("Barrier").fds[0].as_fd())[BARRIER_PARTIES], 2);
}

/// The forged wire forms are right: with the memory of a real handle of the same kind,
/// each decodes (so the refusals below are for what was changed, nothing else).
#[test]
fn a_forged_wire_form_with_the_memory_of_its_own_kind_is_accepted() {
    for kind in KINDS {
        let parcel = real(kind);
        assert_eq!(decode_as(kind, &wire(kind), parcel.fds), Ok(()), "{kind}");
        // An untouched copy of the memory too: the checks look at contents, not origins.
        assert_eq!(
            decode_as(kind, &wire(kind), vec![patched(kind, |_| {})]),
            Ok(()),
            "{kind}"
        );
    }
}

#[test]
fn a_handle_received_as_any_other_kind_is_refused_naming_both() {
    for sent in KINDS {
        for received in KINDS.into_iter().filter(|&k| k != sent) {
            let parcel = real(sent);
            let got = decode_as(received, &parcel.bytes, parcel.fds);
            refused(got, &format!("received a{} {sent} where a", article(sent)));
        }
    }
}

/// What makes "a" the article of `kind` in an error: "n" for "an Event", "an RLock".
fn article(kind: &str) -> &'static str {
    match kind {
        "Event" | "Array" | "RLock" => "n",
        _ => "",
    }
}

/// The sender writes the receiver's kind, but the memory is another primitive's: for each
/// pair whose files can have the same size (the ones a size check alone would let by) and
/// every other pair too.
#[test]
fn the_memory_of_another_primitive_under_a_forged_kind_is_refused() {
    for memory in KINDS {
        for claimed in KINDS.into_iter().filter(|&k| k != memory) {
            let got = decode_as(claimed, &wire(claimed), real(memory).fds);
            let text = got.expect_err(&format!("{memory} memory taken as {claimed}"));
            assert!(
                text.contains(&format!(
                    "holds the state of a{} {memory}, not of a",
                    article(memory)
                )) || text.contains("bytes where exactly")
                    || text.contains("its mutex is")
                    || text.contains("lacks the stamp"),
                "{memory} as {claimed}: {text}"
            );
        }
    }
}

#[test]
fn a_lock_sent_through_a_socket_and_received_as_an_rlock_is_refused() {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let lock = Lock::new().unwrap();
    for _ in 0..2 {
        let parcel = handle_wire::encode(&lock).unwrap();
        let fds: Vec<BorrowedFd<'_>> = parcel.fds.iter().map(AsFd::as_fd).collect();
        proc_core::internal::fd_passing::send_with_fds(theirs.as_fd(), &parcel.bytes, &fds)
            .unwrap();
    }
    let receive = || {
        let mut buf = vec![0u8; real("Lock").bytes.len()];
        let mut fds = Vec::new();
        let got = proc_core::internal::fd_passing::recv_with_fds(
            ours.as_fd(),
            &mut buf,
            &mut fds,
            MsgFlags::empty(),
        )
        .unwrap();
        assert_eq!((got.bytes, fds.len()), (buf.len(), 1));
        (buf, fds)
    };
    let (bytes, fds) = receive();
    let err = handle_wire::decode::<RLock>(&bytes, LIMIT, fds).unwrap_err();
    assert!(
        err.to_string()
            .contains("received a Lock where an RLock was expected"),
        "{err}"
    );
    // The same message received as what it is: the same lock.
    let (bytes, fds) = receive();
    let same: Lock = handle_wire::decode(&bytes, LIMIT, fds).unwrap();
    let guard = lock.acquire();
    assert!(same.try_acquire().is_none());
    drop(guard);
}

#[test]
fn a_value_or_array_or_condition_received_with_another_element_type_is_refused() {
    let value = handle_wire::encode(&Value::new(7u64).unwrap()).unwrap();
    refused(
        decode::<Value<u32>>(&value.bytes, value.fds),
        "a Value of 8-byte elements aligned to 8 received as one of 4-byte elements aligned to 4",
    );
    let value = handle_wire::encode(&Value::new(7u64).unwrap()).unwrap();
    refused(
        decode::<Value<[u8; 8]>>(&value.bytes, value.fds),
        "aligned to 8 received as one of 8-byte elements aligned to 1",
    );
    let array = handle_wire::encode(&Array::from_slice(&[1u64, 2]).unwrap()).unwrap();
    refused(
        decode::<Array<u16>>(&array.bytes, array.fds),
        "an Array of 8-byte elements",
    );
    let condition = handle_wire::encode(&Condition::with_value(1u64).unwrap()).unwrap();
    refused(
        decode::<Condition<u32>>(&condition.bytes, condition.fds),
        "a Condition of 8-byte elements",
    );
    let condition = handle_wire::encode(&Condition::new().unwrap()).unwrap();
    refused(
        decode::<Condition<u64>>(&condition.bytes, condition.fds),
        "a Condition of 0-byte elements",
    );
}

/// The sender lies about the element so that it matches the receiver's: the memory says
/// otherwise. A `Value<[u8; 8]>` has the size of a `Value<u64>`, so only the stamp tells.
#[test]
fn an_element_the_sender_lies_about_is_refused_by_what_the_memory_says() {
    let bytes = wire_with("Value", ((8u64, 8u64), lock_wire()));
    let memory = handle_wire::encode(&Value::new([7u8; 8]).unwrap()).unwrap();
    refused(
        decode::<Value<u64>>(&bytes, memory.fds),
        "holds a Value of 8-byte elements aligned to 1, not of 8-byte elements aligned to 8",
    );
    let memory = handle_wire::encode(&Value::new(7u32).unwrap()).unwrap();
    refused(
        decode::<Value<u64>>(&bytes, memory.fds),
        "bytes where exactly",
    );
    // The element words of the stamp changed to match: the file's size still tells.
    let forged = patched("Value", |b| {
        put_u64(b, VALUE_STAMP + STAMP_ELEMENT_SIZE, 4);
        put_u64(b, VALUE_STAMP + STAMP_ELEMENT_ALIGN, 4);
    });
    let bytes = wire_with("Value", ((4u64, 4u64), lock_wire()));
    refused(
        decode::<Value<u32>>(&bytes, vec![forged, real_lock_fd()]),
        "bytes where exactly",
    );
}

#[test]
fn an_array_whose_length_is_a_lie_is_refused() {
    // Longer than the file: refused before the file is mapped.
    let bytes = wire_with("Array", (((8u64, 8u64), 1000u64), lock_wire()));
    refused(
        decode::<Array<u64>>(&bytes, real("Array").fds),
        "bytes where exactly",
    );
    // Shorter than the file.
    let bytes = wire_with("Array", (((8u64, 8u64), 2u64), lock_wire()));
    refused(
        decode::<Array<u64>>(&bytes, real("Array").fds),
        "bytes where exactly",
    );
    // Larger than any address space.
    let bytes = wire_with("Array", (((8u64, 8u64), u64::MAX), lock_wire()));
    refused(
        decode::<Array<u64>>(&bytes, real("Array").fds),
        "larger than the address space",
    );
    // The file's size fits the wire, the length recorded in the memory does not.
    let forged = patched("Array", |b| put_u64(b, ARRAY_LEN, 2));
    refused(
        decode::<Array<u64>>(&wire("Array"), vec![forged, real_lock_fd()]),
        "an array of 2 elements announced as 3",
    );
}

#[test]
fn a_value_or_array_whose_lock_is_not_a_lock_is_refused() {
    // The lock's place holds an RLock handle; then a Lock handle over an Event's memory.
    for kind in ["Value", "Array"] {
        let numbers = if kind == "Value" {
            codec::encode(&((8u64, 8u64), (HandleKind::new("RLock"), 1u32, ())))
        } else {
            codec::encode(&(((8u64, 8u64), 3u64), (HandleKind::new("RLock"), 1u32, ())))
        };
        let mut bytes = codec::encode(&(HandleKind::new(kind), 0u32)).unwrap();
        bytes.extend(numbers.unwrap());
        let memory = real(kind).fds.remove(0);
        refused(
            decode_as(kind, &bytes, vec![memory, real("RLock").fds.remove(0)]),
            "received an RLock where a Lock was expected",
        );
        let memory = real(kind).fds.remove(0);
        refused(
            decode_as(kind, &wire(kind), vec![memory, real("Event").fds.remove(0)]),
            "bytes where exactly",
        );
        // No descriptor for the lock at all.
        let memory = real(kind).fds.remove(0);
        let got = if kind == "Value" {
            decode::<Value<u64>>(&wire(kind), vec![memory])
        } else {
            decode::<Array<u64>>(&wire(kind), vec![memory])
        };
        assert!(got.is_err(), "{kind}");
    }
}

#[test]
fn numbers_that_disagree_with_the_memory_are_refused() {
    // A bounded semaphore of 2 sent as one of 100: its releases would go past its bound.
    let bytes = wire_with("BoundedSemaphore", 100u32);
    refused(
        decode::<BoundedSemaphore>(&bytes, real("BoundedSemaphore").fds),
        "a BoundedSemaphore whose limit is 2 was sent as one whose limit is 100",
    );
    // A plain semaphore sent with a limit.
    let bytes = wire_with("Semaphore", 5u32);
    refused(
        decode::<Semaphore>(&bytes, real("Semaphore").fds),
        "whose limit is 4294967295 was sent as one whose limit is 5",
    );
    let forged = patched("Semaphore", |b| put_u32(b, SEMAPHORE_LIMIT, 5));
    refused(
        decode::<Semaphore>(&wire_with("Semaphore", 5u32), vec![forged]),
        "a Semaphore with a limit (5)",
    );
    // A count above the limit.
    let forged = patched("BoundedSemaphore", |b| put_u32(b, SEMAPHORE_COUNT, 5));
    refused(
        decode::<BoundedSemaphore>(&wire("BoundedSemaphore"), vec![forged]),
        "a BoundedSemaphore whose count 5 is above its limit 2",
    );
    // A barrier for 2 sent as one for 3, and one for 0.
    let bytes = wire_with("Barrier", (3u32, NO_ACTION));
    refused(
        decode::<Barrier>(&bytes, real("Barrier").fds),
        "a barrier for 2 parties sent as one for 3",
    );
    let bytes = wire_with("Barrier", (0u32, NO_ACTION));
    refused(
        decode::<Barrier>(&bytes, real("Barrier").fds),
        "a barrier for zero parties",
    );
    // As many arrived as it has parties: it would have tripped.
    let forged = patched("Barrier", |b| put_u32(b, BARRIER_ARRIVED, 2));
    refused(
        decode::<Barrier>(&wire("Barrier"), vec![forged]),
        "a barrier for 2 parties at which 2 are said to wait",
    );
    let forged = patched("Barrier", |b| put_u32(b, BARRIER_ARRIVED, u32::MAX));
    refused(
        decode::<Barrier>(&wire("Barrier"), vec![forged]),
        "are said to wait",
    );
}

fn an_action() {}

#[test]
fn a_barrier_action_that_disagrees_with_the_memory_or_is_no_code_is_refused() {
    // A barrier without an action sent as one with (an address the sender chose), and one
    // with an action sent as one without.
    let with = handle_wire::encode(&Barrier::builder(2).action(an_action).build().unwrap());
    let with = with.unwrap();
    refused(
        decode::<Barrier>(
            &wire_with("Barrier", (2u32, Some(0u64))),
            real("Barrier").fds,
        ),
        "a barrier without an action sent as one with one",
    );
    refused(
        decode::<Barrier>(&wire("Barrier"), with.fds),
        "a barrier with an action sent as one without one",
    );
    // An action flag no barrier writes.
    let forged = patched("Barrier", |b| put_u32(b, BARRIER_HAS_ACTION, 7));
    refused(
        decode::<Barrier>(&wire("Barrier"), vec![forged]),
        "a barrier whose action flag is 7",
    );
    // An action outside this executable's code.
    let with = handle_wire::encode(&Barrier::builder(2).action(an_action).build().unwrap());
    refused(
        decode::<Barrier>(
            &wire_with("Barrier", (2u32, Some(u64::MAX))),
            with.unwrap().fds,
        ),
        "a Barrier's action",
    );
    // The real thing is accepted.
    let with = handle_wire::encode(&Barrier::builder(2).action(an_action).build().unwrap());
    let with = with.unwrap();
    assert_eq!(decode::<Barrier>(&with.bytes, with.fds), Ok(()));
}

#[test]
fn a_condition_whose_lock_disagrees_with_its_memory_is_refused() {
    let lock = Lock::new().unwrap();
    let over_lock = handle_wire::encode(&Condition::with_lock(&lock).unwrap()).unwrap();
    // Sent as a condition with a lock of its own: its waiters would not share the lock.
    let own = codec::encode(&(HandleKind::new("Condition"), 0u32, ((0u64, 1u64), OWN_LOCK)));
    refused(
        decode::<Condition>(&own.unwrap(), over_lock.fds),
        "a condition under a shared Lock sent as one under its own lock",
    );
    // A condition with its own lock sent as one over a shared RLock.
    let mine = handle_wire::encode(&Condition::new().unwrap()).unwrap();
    let mut fds = mine.fds;
    fds.push(real("RLock").fds.remove(0));
    // Option::Some, variant 1 (RLock) of the shared lock, then the RLock's handle.
    let over_rlock = codec::encode(&(
        HandleKind::new("Condition"),
        0u32,
        (
            (0u64, 1u64),
            Some((1u32, (HandleKind::new("RLock"), 1u32, ()))),
        ),
    ));
    refused(
        decode::<Condition>(&over_rlock.unwrap(), fds),
        "a condition under its own lock sent as one under a shared RLock",
    );
    // A lock number no condition records.
    let forged = patched("Condition", |b| {
        let at = b.len() - 8 - 8; // the lock number, the value (u64) after it
        put_u32(b, at, 9);
    });
    refused(
        decode::<Condition<u64>>(&wire("Condition"), vec![forged]),
        "lock number 9, which does not exist",
    );
}

#[test]
fn descriptors_that_are_not_memory_files_are_refused_for_every_kind() {
    for kind in KINDS {
        let (pipe, _write) = std::io::pipe().unwrap();
        refused(
            decode_as(kind, &wire(kind), vec![pipe.into()]),
            "is a pipe, not a memory file",
        );
        let (socket, _other) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        refused(
            decode_as(kind, &wire(kind), vec![socket]),
            "is a socket, not a memory file",
        );
        let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        refused(
            decode_as(kind, &wire(kind), vec![null]),
            "is a character device",
        );
        let root = open("/", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        refused(decode_as(kind, &wire(kind), vec![root]), "is a directory");
        // A regular file that is not a memory file: this test's own executable.
        let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        refused(
            decode_as(kind, &wire(kind), vec![exe.into()]),
            "memory file",
        );
    }
}

#[test]
fn memory_files_unsealed_or_of_the_wrong_size_are_refused_for_every_kind() {
    for kind in KINDS {
        let good = contents(real(kind).fds[0].as_fd());
        // The right contents, but another process could shrink it under us.
        let unsealed = memory_file(&good, SealFlag::empty());
        refused(decode_as(kind, &wire(kind), vec![unsealed]), "not sealed");
        let only_shrink = memory_file(&good, SealFlag::F_SEAL_SHRINK);
        refused(
            decode_as(kind, &wire(kind), vec![only_shrink]),
            "not sealed",
        );
        // Sealed, but too small (a byte short, and empty) or too large.
        let short = memory_file(&good[..good.len() - 1], fixed_size());
        refused(
            decode_as(kind, &wire(kind), vec![short]),
            "bytes where exactly",
        );
        let empty = memory_file(&[], fixed_size());
        refused(decode_as(kind, &wire(kind), vec![empty]), "holds 0 bytes");
        let mut long = good.clone();
        long.resize(good.len() + 4096, 0);
        let long = memory_file(&long, fixed_size());
        refused(
            decode_as(kind, &wire(kind), vec![long]),
            "bytes where exactly",
        );
    }
}

#[test]
fn memory_files_that_cannot_be_written_are_refused_for_every_kind() {
    for kind in KINDS {
        let good = contents(real(kind).fds[0].as_fd());
        let sealed_against_writes = memory_file(&good, fixed_size() | SealFlag::F_SEAL_WRITE);
        refused(
            decode_as(kind, &wire(kind), vec![sealed_against_writes]),
            "cannot be mapped for reading and writing",
        );
        // The real file, opened again for reading only.
        let real = real(kind);
        let path = format!("/proc/self/fd/{}", real.fds[0].as_raw_fd());
        let read_only = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        refused(
            decode_as(kind, &wire(kind), vec![read_only]),
            "cannot be mapped for reading and writing",
        );
    }
}

#[test]
fn memory_files_of_the_right_size_holding_zeros_or_garbage_are_refused_for_every_kind() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for kind in KINDS {
        let len = contents(real(kind).fds[0].as_fd()).len();
        let zeros = memory_file(&vec![0u8; len], fixed_size());
        let got = decode_as(kind, &wire(kind), vec![zeros]);
        let text = got.expect_err(kind);
        assert!(
            text.contains("lacks the stamp") || text.contains("kind word is 0x0"),
            "{kind}: {text}"
        );
        for _ in 0..20 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let garbage = memory_file(&garbage, fixed_size());
            let text = decode_as(kind, &wire(kind), vec![garbage]).expect_err(kind);
            assert!(
                text.contains("lacks the stamp") || text.contains("its mutex is not"),
                "{kind}: {text}"
            );
        }
    }
}

#[test]
fn a_stamp_changed_by_hand_is_refused() {
    // The memory of a Lock, stamped as an RLock's (whose mutex it is not), received as an
    // RLock.
    let rlock_code = contents(real("RLock").fds[0].as_fd())[LOCK_STAMP + 4];
    let forged = patched("Lock", |b| b[LOCK_STAMP + 4] = rlock_code);
    refused(
        decode::<RLock>(&wire("RLock"), vec![forged]),
        "its mutex is not re-entrant (a Lock's), where re-entrant (an RLock's) is expected",
    );
    // A primitive number that does not exist.
    let forged = patched("Event", |b| put_u32(b, EVENT_STAMP + 4, 99));
    refused(
        decode::<Event>(&wire("Event"), vec![forged]),
        "primitive number 99",
    );
    // Another layout version.
    let forged = patched("Semaphore", |b| b[SEMAPHORE_STAMP + 3] = b'9');
    refused(
        decode::<Semaphore>(&wire("Semaphore"), vec![forged]),
        "lacks the stamp",
    );
}

#[test]
fn a_mutex_of_another_kind_or_garbage_is_refused() {
    // A Lock's memory whose mutex is an RLock's (re-entrant): its owner could lock it
    // twice, where a Lock refuses.
    let rlock = contents(real("RLock").fds[0].as_fd());
    let forged = patched("Lock", |b| b[..M].copy_from_slice(&rlock[..M]));
    refused(
        decode::<Lock>(&wire("Lock"), vec![forged]),
        "its mutex is re-entrant (an RLock's), where not re-entrant (a Lock's) is expected",
    );
    let lock = contents(real("Lock").fds[0].as_fd());
    let forged = patched("RLock", |b| b[..M].copy_from_slice(&lock[..M]));
    refused(
        decode::<RLock>(&wire("RLock"), vec![forged]),
        "where re-entrant",
    );
    // A mutex that was never initialised (all zeros: a normal, unshared mutex) or garbage,
    // in every kind that has one.
    for kind in ["Lock", "RLock", "Condition", "Barrier"] {
        let forged = patched(kind, |b| b[..M].fill(0));
        refused(
            decode_as(kind, &wire(kind), vec![forged]),
            "kind word is 0x0",
        );
        let forged = patched(kind, |b| b[..M].fill(0xa5));
        refused(
            decode_as(kind, &wire(kind), vec![forged]),
            "its mutex is not a robust",
        );
    }
}

/// A mutex's lock word is its holder's thread id (the kernel's robust-futex ABI).
fn with_holder(kind: &str, tid: i32) -> OwnedFd {
    patched(kind, |b| put_u32(b, 0, tid as u32))
}

#[test]
fn a_mutex_said_to_be_held_by_a_thread_of_the_receiver_is_refused() {
    // glibc would let this thread unlock it, following list pointers the sender wrote.
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    for kind in ["Lock", "RLock", "Condition", "Barrier"] {
        refused(
            decode_as(kind, &wire(kind), vec![with_holder(kind, me)]),
            "says a thread of this process holds it",
        );
    }
}

#[test]
fn a_mutex_said_to_be_held_by_a_thread_that_does_not_exist_is_refused() {
    // Above any pid_max: no thread has it, so nobody would ever release the mutex.
    let nobody = 0x3fff_fff0;
    for kind in ["Lock", "RLock", "Condition", "Barrier"] {
        refused(
            decode_as(kind, &wire(kind), vec![with_holder(kind, nobody)]),
            "there is no such thread",
        );
    }
}

#[test]
fn a_mutex_said_to_be_held_by_a_process_that_does_not_map_it_is_refused() {
    // A live process of this user (so its maps can be read) that has never seen the file.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let tid = stranger.id() as i32;
    for kind in ["Lock", "RLock", "Condition", "Barrier"] {
        refused(
            decode_as(kind, &wire(kind), vec![with_holder(kind, tid)]),
            "that thread's process does not map the memory file",
        );
    }
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

/// Holds `lock` until `release` is set, saying so with `held`.
fn hold(lock: Lock, held: Event, release: Event) {
    let _guard = lock.acquire();
    held.set();
    release.wait();
}

#[test]
fn a_lock_that_another_process_holds_is_received_as_held() {
    let lock = Lock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let mut holder =
        proc_core::Process::target(hold, (lock.clone(), held.clone(), release.clone()))
            .with_daemon(true);
    holder.start().unwrap();
    assert!(held.wait_timeout(std::time::Duration::from_secs(60)));
    let parcel = handle_wire::encode(&lock).unwrap();
    let received: Lock = handle_wire::decode(&parcel.bytes, LIMIT, parcel.fds).unwrap();
    assert!(received.try_acquire().is_none());
    release.set();
    assert_eq!(holder.join().unwrap(), 0);
    assert!(received.try_acquire().is_some());
}

#[test]
fn condition_slots_in_states_no_condition_can_be_in_are_refused() {
    let forged = patched("Condition", |b| put_u32(b, CONDITION_USED, 1000));
    refused(
        decode::<Condition<u64>>(&wire("Condition"), vec![forged]),
        "said to have used 1000 waiter slots",
    );
    // A slot in state 7; a slot beyond those used said to be waiting.
    let state = |slot: usize| CONDITION_SLOTS + slot * SLOT + M;
    let forged = patched("Condition", |b| put_u32(b, state(0), 7));
    refused(
        decode::<Condition<u64>>(&wire("Condition"), vec![forged]),
        "waiter slot 0 is in state 7",
    );
    let forged = patched("Condition", |b| put_u32(b, state(5), 1));
    refused(
        decode::<Condition<u64>>(&wire("Condition"), vec![forged]),
        "waiter slot 5 is in state 1",
    );
    // A slot whose mutex is garbage.
    let forged = patched("Condition", |b| {
        b[CONDITION_SLOTS + 3 * SLOT..CONDITION_SLOTS + 3 * SLOT + M].fill(0x5a)
    });
    refused(
        decode::<Condition<u64>>(&wire("Condition"), vec![forged]),
        "waiter slot 3: its mutex is not a robust",
    );
}
