//! What a parent takes from a child that returned a value (`JoinHandle::join`): one record
//! on a seqpacket socket, with descriptors or none, forged here from the input: any kind,
//! any announced length, any bytes, and memory files of any size, sealed or not, or pipes,
//! where the value's file belongs. The parent may refuse, never panic, map a file that
//! could shrink under it, or keep a descriptor.
//!
//! ```text
//! cargo xtask fuzz --only spawn_value --seconds 300
//! ```

#![no_main]

use std::io::{IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use libfuzzer_sys::fuzz_target;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// A descriptor made to `recipe`: a memory file of some size holding `bytes`, with some
/// seals, or a pipe.
fn forged_fd(recipe: u8, bytes: &[u8]) -> Option<OwnedFd> {
    if recipe & 0x0f == 0x0f {
        return Some(OwnedFd::from(std::io::pipe().ok()?.0));
    }
    let fd = memfd_create(c"forged", MFdFlags::MFD_ALLOW_SEALING).ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).ok()?;
    let mut seals = SealFlag::empty();
    for (bit, seal) in [
        (0x10, SealFlag::F_SEAL_SHRINK),
        (0x20, SealFlag::F_SEAL_GROW),
        (0x40, SealFlag::F_SEAL_WRITE),
        (0x80, SealFlag::F_SEAL_SEAL),
    ] {
        if recipe & bit != 0 {
            seals |= seal;
        }
    }
    fcntl(file.as_fd(), FcntlArg::F_ADD_SEALS(seals)).ok()?;
    Some(OwnedFd::from(file))
}

fuzz_target!(|data: &[u8]| {
    let Some((&recipe, rest)) = data.split_first() else {
        return;
    };
    // The record: the input's bytes up to a split point the input chooses; the rest fills
    // the memory file.
    let split = rest.first().map_or(0, |&b| usize::from(b)).min(rest.len());
    let (record, contents) = rest.split_at(split);
    let (parent, child) = proc_core::internal::fuzzing::value_channel().unwrap();
    let before = open_fds();
    let count = usize::from(recipe & 0x03);
    let fds: Vec<OwnedFd> = (0..count)
        .filter_map(|_| forged_fd(recipe >> 2, contents))
        .collect();
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let control = [ControlMessage::ScmRights(&raw)];
    let control: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &control };
    let _ = sendmsg::<()>(
        child.as_raw_fd(),
        &[IoSlice::new(record)],
        control,
        MsgFlags::MSG_DONTWAIT,
        None,
    );
    drop(fds);
    drop(child);
    // Whatever came, the parent's answer; then nothing it received stays open.
    let _ = proc_core::internal::fuzzing::take_value(parent.as_fd(), 1 << 20);
    assert_eq!(open_fds() + 1, before, "a received descriptor stayed open");
});
