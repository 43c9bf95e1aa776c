//! Interoperability with a real Python (`python3`, 3.11 or newer, standard library only):
//! Python opens by name what Rust made and the other way round, and each sees the other's
//! writes.
//!
//! Python 3.11 and 3.12 register with their resource tracker every block a process merely
//! opens, and unlink it when that process ends; the scripts unregister what they open
//! (`untrack`), which is also right on 3.13+, where opening registers by default too.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use proc_shared::{Item, ShareableList, SharedMemory};

/// What every script starts with.
const PRELUDE: &str = r#"
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory, ShareableList

def untrack(shm):
    # This process only opened the block: its creator decides when it goes.
    resource_tracker.unregister(shm._name, "shared_memory")
"#;

fn python3() -> Command {
    let mut command = Command::new("python3");
    // Python's own warnings would otherwise go unseen in a passing test.
    command.env("PYTHONWARNINGS", "error");
    command.env("PYTHONIOENCODING", "utf-8");
    command
}

/// Runs `script` (after [`PRELUDE`]) with `args`; its stdout, failing the test (with its
/// stderr) if it fails.
fn run_python(script: &str, args: &[&str]) -> String {
    let output = python3()
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .args(args)
        .output()
        .expect("python3 is needed for the interoperability tests (on every machine)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed: {stderr}");
    assert!(stderr.is_empty(), "python warned: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn python_reads_and_writes_a_list_and_a_block_made_here() {
    let list = ShareableList::create(&[
        Item::Int(42),
        Item::Float(1.5),
        Item::Bool(true),
        Item::Str("hello world".into()),
        Item::Bytes(b"\x01\x02".to_vec()),
        Item::None,
    ])
    .unwrap();
    let shm = SharedMemory::create(64).unwrap();
    shm.write_bytes(0, b"rust wrote this").unwrap();

    let out = run_python(
        r#"
sl = ShareableList(name=sys.argv[1]); untrack(sl.shm)
print(repr(list(sl)))
print(sl.format)
sl[0] = sl[0] + 1
sl[1] = sl[1] * 2
sl[2] = False
sl[3] = "hi"
sl[5] = 7
shm = SharedMemory(name=sys.argv[2]); untrack(shm)
print(bytes(shm.buf[:15]).decode(), shm.size >= 64)
shm.buf[16:30] = b"python answers"
sl.shm.close(); shm.close()
"#,
        &[list.name(), shm.name()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r"[42, 1.5, True, 'hello world', b'\x01\x02', None]",
            "qdxxxxxxx?16s8sxxxxxx?x",
            "rust wrote this True",
        ]
    );
    assert_eq!(
        list.to_vec().unwrap(),
        [
            Item::Int(43),
            Item::Float(3.0),
            Item::Bool(false),
            Item::Str("hi".into()),
            Item::Bytes(b"\x01\x02".to_vec()),
            Item::Int(7),
        ]
    );
    let mut answer = [0u8; 14];
    shm.read_bytes(16, &mut answer).unwrap();
    assert_eq!(&answer, b"python answers");
    // Python's process has ended without unlinking anything.
    list.shm().unlink().unwrap();
    shm.unlink().unwrap();
}

#[test]
fn a_list_made_by_python_is_read_and_written_here() {
    let mut python = python3()
        .arg("-c")
        .arg(format!(
            "{PRELUDE}\n{}",
            r#"
sl = ShareableList([1, 2.5, "python", b"by", True, None, "x" * 20])
print(sl.shm.name, flush=True)
sys.stdin.readline()        # Rust has written
print(repr(list(sl)), flush=True)
sl.shm.close()
sl.shm.unlink()
"#
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Python's resource tracker holds it until it ends, a moment after Python.
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the interoperability tests (on every machine)");
    let mut stdout = BufReader::new(python.stdout.take().unwrap());
    let mut name = String::new();
    stdout.read_line(&mut name).unwrap();
    let name = name.trim();

    let list = ShareableList::open(name).unwrap();
    assert_eq!(
        list.to_vec().unwrap(),
        [
            Item::Int(1),
            Item::Float(2.5),
            Item::Str("python".into()),
            Item::Bytes(b"by".to_vec()),
            Item::Bool(true),
            Item::None,
            Item::Str("x".repeat(20)),
        ]
    );
    list.set(0, Item::Int(-1)).unwrap();
    list.set(2, Item::Str("rust".into())).unwrap();
    list.set(5, Item::Float(0.125)).unwrap();
    list.set(6, Item::Str("y".repeat(24))).unwrap(); // Python's slot for 20 chars: 24 bytes
    assert!(list.set(3, Item::Bytes(vec![b'z'; 9])).is_err());

    python.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut seen = String::new();
    stdout.read_line(&mut seen).unwrap();
    assert_eq!(
        seen.trim(),
        format!(
            "[-1, 2.5, 'rust', b'by', True, 0.125, '{}']",
            "y".repeat(24)
        )
    );
    let mut stderr = String::new();
    python
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(python.wait().unwrap().success(), "{stderr}");
    assert!(stderr.is_empty(), "python warned: {stderr}");
    assert!(
        SharedMemory::open(name).is_err(),
        "Python, the creator, unlinked it"
    );
}

#[test]
fn python_reads_edge_values_as_they_were_written() {
    // Slots are sized by UTF-8 bytes here (Python sizes them by characters, which
    // truncates a long non-ASCII str it creates itself): Python reads ours whole.
    let items = [
        Item::Int(i64::MIN),
        Item::Int(i64::MAX),
        Item::Float(-0.0),
        Item::Float(f64::INFINITY),
        Item::Str(String::new()),
        Item::Str("1234567".into()),
        Item::Str("12345678".into()),
        Item::Str("小王小王小王小王".into()),
        Item::Bytes(b"in\0side".to_vec()),
        Item::Bytes(Vec::new()),
        Item::Bool(false),
        Item::None,
    ];
    let list = ShareableList::create(&items).unwrap();
    let out = run_python(
        r#"
sl = ShareableList(name=sys.argv[1]); untrack(sl.shm)
for item in sl:
    print(repr(item))
sl.shm.close()
"#,
        &[list.name()],
    );
    let expected = [
        "-9223372036854775808",
        "9223372036854775807",
        "-0.0",
        "inf",
        "''",
        "'1234567'",
        "'12345678'",
        "'小王小王小王小王'",
        r"b'in\x00side'",
        "b''",
        "False",
        "None",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    list.shm().unlink().unwrap();
}
