//! The value of a `spawn` child on its way back: the child hands it over and ends on its
//! own, whatever its size, and `join` gets it whole after the child has ended; a panic in
//! the value's `Serialize` is a panic of the child, as one in its body.
//!
//! `spawn` runs a closure, which only the Fork start method can run: every test here makes
//! Fork the default first (under `MULTIPROC_START_METHOD=spawn` or `forkserver` the
//! binary's default is another), which changes nothing else: no test here uses another.

use std::time::{Duration, Instant};

use proc_core::{JoinError, JoinHandle, StartMethod, set_start_method, spawn};
use serde::{Deserialize, Serialize, Serializer};

/// Long enough never to be reached by a correct run: a child that has not ended by then
/// is taken as one that never will.
const PATIENCE: Duration = Duration::from_secs(60);

fn spawned<T, F>(body: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Serialize + serde::de::DeserializeOwned,
{
    set_start_method(StartMethod::Fork).unwrap();
    spawn(body).expect("spawn")
}

/// A value that shows a byte out of place: `len` bytes of a pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Waits, without joining, until the child has ended by itself; fails if it does not.
fn wait_until_it_ends<T>(h: &JoinHandle<T>) {
    let deadline = Instant::now() + PATIENCE;
    while h.is_alive() {
        assert!(
            Instant::now() < deadline,
            "the child did not end by itself within {PATIENCE:?}: it waits for its parent"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_child_returning_ten_mib_ends_before_join_and_join_gets_the_value_whole() {
    let h = spawned(|| pattern(10 << 20));
    wait_until_it_ends(&h);
    assert_eq!(h.process().exitcode(), Some(0));
    let value = h.join().expect("the value");
    assert!(value == pattern(10 << 20), "the value arrived changed");
}

#[test]
fn a_join_timeout_loop_sees_a_child_returning_ten_mib_end() {
    let h = spawned(|| pattern(10 << 20));
    let deadline = Instant::now() + PATIENCE;
    let code = loop {
        if let Some(code) = h.process().join_timeout(Duration::from_millis(20)).unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "join_timeout never saw the child end within {PATIENCE:?}"
        );
    };
    assert_eq!(code, 0);
    assert!(h.join().unwrap() == pattern(10 << 20));
}

#[test]
fn values_on_both_sides_of_the_inline_limit_arrive_whole() {
    // A returned Vec<u8> of n bytes encodes as a tag (1 byte), a length prefix (3 bytes
    // here) and the n bytes: at 32 KiB - 3 the value moves from the socket record to a
    // memory file.
    for len in [
        0,
        1,
        (32 << 10) - 4,
        (32 << 10) - 3,
        (32 << 10) - 2,
        64 << 10,
        1 << 20,
    ] {
        let h = spawned(move || pattern(len));
        wait_until_it_ends(&h);
        assert!(h.join().unwrap() == pattern(len), "a value of {len} bytes");
    }
}

#[test]
fn many_children_with_large_values_all_end_before_any_is_joined() {
    let handles: Vec<JoinHandle<Vec<u8>>> = (0..8)
        .map(|i| spawned(move || pattern((100 << 10) + i)))
        .collect();
    for h in &handles {
        wait_until_it_ends(h);
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert!(h.join().unwrap() == pattern((100 << 10) + i));
    }
}

/// Encodes by panicking with a known message; `LARGE` first counts as a value longer than
/// any inline record, so that the panic comes while the value is written to a memory file.
#[derive(Debug)]
struct PanicsWhenEncoded<const LARGE: bool> {
    calls: std::cell::Cell<u32>,
}

impl<const LARGE: bool> PanicsWhenEncoded<LARGE> {
    fn new() -> Self {
        PanicsWhenEncoded {
            calls: std::cell::Cell::new(0),
        }
    }
}

impl<const LARGE: bool> Serialize for PanicsWhenEncoded<LARGE> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let call = self.calls.get() + 1;
        self.calls.set(call);
        if LARGE && call == 1 {
            // The first encoding measures; the second streams it: that one panics.
            return serde_bytes::Bytes::new(&[0u8; 64 << 10]).serialize(serializer);
        }
        panic!("this value refuses to be encoded (call {call})");
    }
}

impl<'de, const LARGE: bool> Deserialize<'de> for PanicsWhenEncoded<LARGE> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_bytes::ByteBuf::deserialize(deserializer)?;
        Ok(PanicsWhenEncoded::new())
    }
}

fn a_panicking_serialize_is_a_panic_of_the_child<const LARGE: bool>(expected: &str) {
    let h = spawned(PanicsWhenEncoded::<LARGE>::new);
    wait_until_it_ends(&h);
    assert_eq!(
        h.process().exitcode(),
        Some(1),
        "a panic ends the child with 1"
    );
    match h.join() {
        Err(JoinError::Panicked { message, .. }) => assert_eq!(message, expected),
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[test]
fn a_value_whose_serialize_panics_is_panicked_with_the_message() {
    a_panicking_serialize_is_a_panic_of_the_child::<false>(
        "this value refuses to be encoded (call 1)",
    );
}

#[test]
fn a_large_value_whose_serialize_panics_while_it_is_written_is_panicked_too() {
    a_panicking_serialize_is_a_panic_of_the_child::<true>(
        "this value refuses to be encoded (call 2)",
    );
}

#[test]
fn a_panic_in_the_body_is_still_panicked_and_an_exit_still_exited() {
    let h = spawned(|| -> Vec<u8> { panic!("in the body") });
    assert!(
        matches!(h.join(), Err(JoinError::Panicked { message, .. }) if message == "in the body")
    );
    let h = spawned(|| -> Vec<u8> { proc_core::exit(3) });
    assert!(matches!(h.join(), Err(JoinError::Exited(3))));
}
