//! Named shared memory between a Rust process and a Python one.
//!
//! Rust creates a block and a `ShareableList`; a Python script (run beside this process
//! when `python3` is present) opens both by name, reads them, and writes back; Rust sees
//! Python's writes. Without `python3`, a child process of this program plays Python's part.
//!
//! ```text
//! cargo run --example shared_memory_python
//! ```

use std::process::Command;

use multiproc::{Item, Process, ShareableList, SharedMemory, StartMethod};

/// What the Python side does: the same as `rust_side` below.
const PYTHON: &str = r#"
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory, ShareableList

sl = ShareableList(name=sys.argv[1])
shm = SharedMemory(name=sys.argv[2])
# Python 3.11 and 3.12 track blocks they only open: the creator (Rust) unlinks these.
resource_tracker.unregister(sl.shm._name, "shared_memory")
resource_tracker.unregister(shm._name, "shared_memory")

print(f"python sees {list(sl)} and {bytes(shm.buf[:10]).decode()!r}")
sl[0] += 1
sl[2] = "python"
shm.buf[10:16] = b"python"
sl.shm.close()
shm.close()
"#;

/// Python's part, in Rust, for machines without python3.
fn rust_side(list_name: &str, shm_name: &str) -> multiproc::Result<()> {
    let list = ShareableList::open(list_name)?;
    let shm = SharedMemory::open(shm_name)?;
    let mut greeting = [0u8; 10];
    shm.read_bytes(0, &mut greeting)?;
    println!(
        "a child sees {:?} and {:?}",
        list.to_vec()?,
        String::from_utf8_lossy(&greeting)
    );
    if let Item::Int(n) = list.get(0)? {
        list.set(0, Item::Int(n + 1))?;
    }
    list.set(2, Item::Str("child!".into()))?;
    shm.write_bytes(10, b"child!")?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    multiproc::init();
    let list =
        ShareableList::create(&[Item::Int(41), Item::Float(0.5), Item::Str("rust..".into())])?;
    let shm = SharedMemory::create(64)?;
    shm.write_bytes(0, b"hello from")?;
    println!("rust made {} and {}", list.name(), shm.name());

    match Command::new("python3")
        .args(["-c", PYTHON, list.name(), shm.name()])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(format!("the Python side failed: {status}").into()),
        Err(_) => {
            println!("(python3 not found: a child process plays its part)");
            let (list_name, shm_name) = (list.name().to_string(), shm.name().to_string());
            // A closure: the fork start method runs it, whatever the default is.
            let mut child = Process::new(move || {
                rust_side(&list_name, &shm_name).expect("the child's part");
            })
            .with_start_method(StartMethod::Fork);
            child.start()?;
            child.join()?;
        }
    }

    let mut reply = [0u8; 16];
    shm.read_bytes(0, &mut reply)?;
    println!(
        "rust sees {:?} and {:?}",
        list.to_vec()?,
        String::from_utf8_lossy(&reply)
    );
    // Created here, unlinked here: the resource tracker has nothing to warn about.
    list.shm().unlink()?;
    shm.unlink()?;
    Ok(())
}
