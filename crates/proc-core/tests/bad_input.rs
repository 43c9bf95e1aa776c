//! The process layer's rows of the README's bad-input table: `join_timeout` with zero and
//! with the longest timeout. (The codec's rows, random bytes and a zero limit, are
//! proc-wire's: crates/proc-wire/tests/bad_input.rs.)

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use proc_core::Process;
use proc_core::internal::handle_wire::Descriptor;
use serde::{Deserialize, Serialize};

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
        proc_core::internal::wait_readable(gate.0.as_fd(), Some(deadline)).expect("poll the gate"),
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
