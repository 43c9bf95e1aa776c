//! The process layer's rows of the README's bad-input table: the codec on random bytes and
//! with a zero limit, and `join_timeout` with zero and with the longest timeout.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use proc_core::Process;
use proc_core::codec::{self, CodecError};
use proc_core::travel::Descriptor;
use serde::{Deserialize, Serialize};

/// splitmix64, seeded, so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

type Nested = (
    u8,
    String,
    Vec<u32>,
    Option<(i64, bool)>,
    BTreeMap<u16, Vec<u8>>,
);

#[test]
fn random_bytes_decode_as_a_value_or_an_error_never_a_panic() {
    let mut rng = Rng(0x5eed_c0de);
    for round in 0..50_000 {
        let len = (rng.next() % 48) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Whatever the bytes, each decode returns; errors are of the codec's kinds.
        for result in [
            codec::decode::<Nested>(&bytes, 1 << 10).map(drop),
            codec::decode::<String>(&bytes, 1 << 10).map(drop),
            codec::decode::<Vec<u64>>(&bytes, 1 << 10).map(drop),
        ] {
            match result {
                Ok(()) => {}
                Err(CodecError::Decode(_) | CodecError::TrailingBytes { .. }) => {}
                Err(e) => panic!("round {round}: unexpected {e:?} for {bytes:?}"),
            }
        }
    }
}

#[test]
fn a_limit_of_zero_refuses_every_value_that_has_bytes() {
    let bytes = codec::encode(&7u8).unwrap();
    assert_eq!(
        codec::decode::<u8>(&bytes, 0),
        Err(CodecError::TooLarge { len: 1, limit: 0 })
    );
    // A value of no bytes at all fits a limit of zero.
    assert_eq!(codec::decode::<()>(&[], 0), Ok(()));
}

/// Long enough never to be reached by a correct run: a child that waits this long fails
/// instead of hanging.
const HANG: Duration = Duration::from_secs(60);

/// The read end of a pipe, as an argument of a target: it travels to a child under every
/// start method (inherited by a forked child, attached to the task message otherwise).
#[derive(Debug, Serialize, Deserialize)]
struct Gate(Descriptor);

/// Blocks until the test writes a byte to the gate's pipe; panics (exit code 1) if that
/// does not happen within [`HANG`]. A forked child inherits the write end too, so the end
/// of the pipe is no signal: only the byte is.
fn wait_at(gate: Gate) {
    let deadline = Instant::now() + HANG;
    assert!(
        proc_core::wait_readable(gate.0.as_fd(), Some(deadline)).expect("poll the gate"),
        "the gate did not open within {HANG:?}"
    );
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&gate.0, &mut byte) {
            Ok(1) => return,
            Ok(n) => panic!("read {n} bytes from the gate"),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("reading the gate: {e}"),
        }
    }
}

#[test]
fn join_timeout_zero_polls_and_the_longest_timeout_waits_for_the_end() {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    let mut p = Process::target(wait_at, (Gate(read.into()),));
    p.start().unwrap();
    // The child cannot end before the byte is written below: a zero timeout finds it running.
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), None);
    assert_eq!(nix::unistd::write(&write, &[1]).expect("open the gate"), 1);
    drop(write);
    assert_eq!(p.join_timeout(Duration::MAX).unwrap(), Some(0));
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), Some(0));
}
