//! Joinable queues that are not what they claim: received as another kind, or with a count
//! that is not a count's file. Each is a decode error for that value; nothing is mapped
//! that could be read past its end.

use std::os::fd::OwnedFd;

use proc_core::codec;
use proc_core::internal::handle_wire;
use proc_ipc::Queue;
use proc_patterns::JoinableQueue;

#[test]
fn a_joinable_queue_received_as_a_queue_or_the_reverse_is_refused_naming_both() {
    let joinable: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    let parcel = handle_wire::encode(&joinable).unwrap();
    let err = handle_wire::decode::<Queue<u32>>(&parcel.bytes, 1 << 10, parcel.fds).unwrap_err();
    assert!(
        err.to_string()
            .contains("received a JoinableQueue where a Queue was expected"),
        "{err}"
    );
    let queue: Queue<u32> = Queue::new(0).unwrap();
    let parcel = handle_wire::encode(&queue).unwrap();
    let err =
        handle_wire::decode::<JoinableQueue<u32>>(&parcel.bytes, 1 << 10, parcel.fds).unwrap_err();
    assert!(
        err.to_string()
            .contains("received a Queue where a JoinableQueue was expected"),
        "{err}"
    );
}

/// A joinable queue's wire form with its count's descriptor replaced by `count`.
fn with_count(count: OwnedFd) -> Result<JoinableQueue<u32>, codec::CodecError> {
    let joinable: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    let mut parcel = handle_wire::encode(&joinable).unwrap();
    // The count's descriptor is the last one (after the queue's four).
    *parcel.fds.last_mut().unwrap() = count;
    handle_wire::decode::<JoinableQueue<u32>>(&parcel.bytes, 1 << 10, parcel.fds)
}

#[test]
fn a_joinable_queue_whose_count_is_not_a_count_s_file_is_refused() {
    // The joinable queue's own count, as a control.
    let joinable: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    let own = handle_wire::encode(&joinable).unwrap().fds.pop().unwrap();
    assert!(with_count(own).is_ok());
    // Its queue's ring: a sealed memory file, larger than a count.
    let queue: Queue<u32> = Queue::new(0).unwrap();
    let ring = handle_wire::encode(&queue).unwrap().fds.remove(0);
    let err = with_count(ring).err().unwrap();
    assert!(
        err.to_string().contains("where exactly 12 are needed"),
        "{err}"
    );
    // A pipe.
    let (read, _write) = std::io::pipe().unwrap();
    assert!(with_count(OwnedFd::from(read)).is_err());
}
