//! Feature `python`: pickled values between us and a real `python3`, through a Listener and
//! Client speaking Python's protocol. Run with `cargo test -p proc-ipc --features python`.

#![cfg(feature = "python")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use proc_ipc::{Error, Listener, pipe};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// What the Python side sends as a dict: strings, numbers, a list, bytes and None.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    count: i64,
    ratio: f64,
    tags: Vec<String>,
    blob: ByteBuf,
    missing: Option<i64>,
}

/// Connects to our listener at argv[1], receives a Record with `recv()`, sends it back
/// changed with `send()` (the default protocol) and as protocol 5 and 0 pickles, then
/// checks what we sent it.
const PYTHON_PEER: &str = "\
import pickle, signal, sys
signal.alarm(60)
from multiprocessing.connection import Client
c = Client(sys.argv[1], authkey=b'pickles')
record = {'name': 'h\\u00e9llo', 'count': 3, 'ratio': 0.5, 'tags': ['a', 'b'],
          'blob': b'\\x00\\xff', 'missing': None}
c.send(record)
c.send_bytes(pickle.dumps(record, protocol=5))
c.send_bytes(pickle.dumps(record, protocol=0))
c.send([1, 2, {'nested': [None, True]}])
back = c.recv()
expected = dict(record, count=4, missing=7)
assert back == expected, back
assert type(back['blob']) is bytes, type(back['blob'])
print('python got it back', flush=True)
";

#[test]
fn pickled_dicts_lists_numbers_strings_bytes_and_none_cross_to_python_and_back() {
    let path = std::env::temp_dir().join(format!("proc-ipc-pickle-{}.sock", std::process::id()));
    let listener = Listener::bind(path.as_path(), Some(b"pickles")).unwrap();
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_PEER)
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let conn = listener.accept().unwrap();
    let expected = Record {
        name: "héllo".into(),
        count: 3,
        ratio: 0.5,
        tags: vec!["a".into(), "b".into()],
        blob: ByteBuf::from(vec![0, 255]),
        missing: None,
    };
    for protocol in ["default", "5", "0"] {
        let got: Record = conn.recv_pickle().unwrap();
        assert_eq!(got, expected, "protocol {protocol}");
    }
    type Nested = (i64, i64, BTreeMap<String, Vec<Option<bool>>>);
    let nested: Nested = conn.recv_pickle().unwrap();
    assert_eq!(
        nested,
        (
            1,
            2,
            BTreeMap::from([("nested".into(), vec![None, Some(true)])])
        )
    );
    conn.send_pickle(&Record {
        count: 4,
        missing: Some(7),
        ..expected
    })
    .unwrap();
    let mut said = String::new();
    BufReader::new(python.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said.trim(), "python got it back");
    assert!(python.wait().unwrap().success());
}

#[test]
fn bytes_that_are_not_a_pickle_of_the_type_are_an_error_for_that_message_only() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(b"not a pickle").unwrap();
    a.send_pickle(&"a string").unwrap();
    a.send_pickle(&vec![1u8, 2]).unwrap();
    assert!(matches!(b.recv_pickle::<String>(), Err(Error::Pickle(_))));
    assert!(matches!(b.recv_pickle::<u32>(), Err(Error::Pickle(_))));
    assert_eq!(b.recv_pickle::<Vec<u8>>().unwrap(), [1, 2]);
}
