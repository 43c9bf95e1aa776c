//! `SharedMemoryManager`: its blocks are unlinked together when it shuts down, wherever
//! they were made, and when its owner dies without shutting it down.

mod common;

use common::{EVENTUALLY, eventually_gone, join, run, shm_exists, start};
use proc_ipc::Queue;
use proc_shared::{Error, Item, SharedMemoryManager};

#[test]
fn shutdown_unlinks_every_block_the_manager_handed_out() {
    let mut smm = SharedMemoryManager::start().unwrap();
    let blocks: Vec<String> = (0..3)
        .map(|_| smm.shared_memory(64).unwrap().name().to_string())
        .collect();
    let list = smm.shareable_list(&[Item::Int(1), Item::None]).unwrap();
    for name in blocks.iter().chain([&list.name().to_string()]) {
        assert!(shm_exists(name));
    }
    smm.shutdown().unwrap();
    for name in blocks.iter().chain([&list.name().to_string()]) {
        assert!(!shm_exists(name), "{name} outlived its manager");
    }
    // What was mapped stays usable here.
    assert_eq!(list.get(0).unwrap(), Item::Int(1));
}

#[test]
fn dropping_the_manager_shuts_it_down() {
    let smm = SharedMemoryManager::start().unwrap();
    let name = smm.shared_memory(8).unwrap().name().to_string();
    drop(smm);
    assert!(!shm_exists(&name));
}

#[test]
fn a_shut_down_manager_refuses_with_a_clear_error() {
    let mut smm = SharedMemoryManager::start().unwrap();
    smm.shutdown().unwrap();
    assert!(matches!(smm.shared_memory(8), Err(Error::ManagerShutDown)));
    assert!(matches!(
        smm.shareable_list(&[]),
        Err(Error::ManagerShutDown)
    ));
    smm.shutdown().unwrap();
}

#[test]
fn a_block_unlinked_before_shutdown_is_no_trouble() {
    let mut smm = SharedMemoryManager::start().unwrap();
    let shm = smm.shared_memory(8).unwrap();
    let kept = smm.shared_memory(8).unwrap();
    shm.unlink().unwrap();
    smm.shutdown().unwrap();
    assert!(!shm_exists(kept.name()));
}

fn make_blocks(smm: SharedMemoryManager, names: Queue<String>) {
    let shm = smm.shared_memory(16).unwrap();
    names.put(shm.name().to_string()).unwrap();
    let list = smm.shareable_list(&[Item::Str("child".into())]).unwrap();
    names.put(list.name().to_string()).unwrap();
    // Dropping this copy of the manager does not shut it down.
}

#[test]
fn blocks_made_by_a_child_through_the_manager_live_until_the_manager_shuts_down() {
    let mut smm = SharedMemoryManager::start().unwrap();
    let names = Queue::<String>::new(0).unwrap();
    let copy = smm.try_clone().unwrap();
    drop(copy);
    assert!(
        smm.shared_memory(1).is_ok(),
        "a dropped copy left it running"
    );
    assert_eq!(
        run(make_blocks, (smm.try_clone().unwrap(), names.clone())),
        0
    );
    let (shm, list) = (names.get().unwrap(), names.get().unwrap());
    assert!(shm_exists(&shm) && shm_exists(&list));
    smm.shutdown().unwrap();
    assert!(!shm_exists(&shm) && !shm_exists(&list));
}

fn own_a_manager(names: Queue<String>) {
    let smm = SharedMemoryManager::start().unwrap();
    let shm = smm.shared_memory(8).unwrap();
    names.put(shm.name().to_string()).unwrap();
    std::thread::sleep(EVENTUALLY);
}

#[test]
fn a_manager_travels_through_a_queue() {
    let smm = SharedMemoryManager::start().unwrap();
    let queue = Queue::<SharedMemoryManager>::new(0).unwrap();
    queue.put(smm.try_clone().unwrap()).unwrap();
    let mut received = queue.get().unwrap();
    let name = received.shared_memory(8).unwrap().name().to_string();
    received.shutdown().unwrap();
    assert!(
        !shm_exists(&name),
        "a copy's shutdown shuts the manager down"
    );
    assert!(matches!(smm.shared_memory(8), Err(Error::ManagerShutDown)));
}

#[test]
fn the_blocks_of_a_manager_whose_owner_is_killed_are_unlinked() {
    let names = Queue::<String>::new(0).unwrap();
    let child = start(own_a_manager, (names.clone(),));
    let name = names.get().unwrap();
    assert!(shm_exists(&name));
    child.kill().unwrap();
    assert_eq!(join(&child), -9);
    assert!(
        eventually_gone(&name),
        "{name} outlived its manager's owner"
    );
}
