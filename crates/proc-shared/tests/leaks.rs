//! Nothing is left behind: a block closed or dropped holds no descriptor and no mapping, a
//! tracker or manager is nobody's child (no zombie, nothing to join), and a process keeps
//! one descriptor for its tree's tracker, whatever it creates.
//!
//! Every test counts this process's descriptors or children, so each runs alone
//! (`one_at_a_time`).

mod common;

use multiproc_test_support::fds::{one_at_a_time, open_fds};
use multiproc_test_support::procs::children_of;
use proc_shared::{Item, ShareableList, SharedMemory, SharedMemoryManager};

/// The mappings of blocks in this process.
fn shm_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains("/dev/shm/"))
        .count()
}

#[test]
fn blocks_closed_or_dropped_hold_no_descriptor_and_no_mapping() {
    let _alone = one_at_a_time();
    // The first block starts this tree's tracker: one descriptor for the process's life.
    SharedMemory::create(1).unwrap().unlink().unwrap();
    let (fds, maps) = (open_fds(), shm_mappings());
    for _ in 0..20 {
        let shm = SharedMemory::create(4096).unwrap();
        let again = SharedMemory::open(shm.name()).unwrap();
        let list = ShareableList::create(&[Item::Int(1)]).unwrap();
        let list_again = ShareableList::open(list.name()).unwrap();
        assert_eq!(shm_mappings(), maps + 4);
        shm.unlink().unwrap();
        list.shm().unlink().unwrap();
        drop((shm, again, list, list_again));
    }
    let mut closed = SharedMemory::create(8).unwrap();
    closed.close();
    assert_eq!(open_fds(), fds);
    assert_eq!(shm_mappings(), maps);
    closed.unlink().unwrap();
}

#[test]
fn trackers_and_managers_are_nobodys_children() {
    let _alone = one_at_a_time();
    let me = std::process::id();
    let before = children_of(me).len();
    let shm = SharedMemory::create(8).unwrap();
    let mut smm = SharedMemoryManager::start().unwrap();
    let managed = smm.shared_memory(8).unwrap();
    assert_eq!(children_of(me).len(), before, "no child to reap or join");
    smm.shutdown().unwrap();
    assert!(!common::shm_exists(managed.name()));
    shm.unlink().unwrap();
    assert_eq!(children_of(me).len(), before);
}

#[test]
fn a_manager_shut_down_holds_no_descriptor() {
    let _alone = one_at_a_time();
    SharedMemory::create(1).unwrap().unlink().unwrap();
    let fds = open_fds();
    for _ in 0..5 {
        let smm = SharedMemoryManager::start().unwrap();
        let list = smm.shareable_list(&[Item::None]).unwrap();
        drop(list);
        drop(smm);
    }
    assert_eq!(open_fds(), fds);
}
