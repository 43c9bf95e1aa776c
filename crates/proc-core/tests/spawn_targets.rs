//! `spawn_target(function, args)`: a function's return value handed back to `join`, under
//! every start method, as `spawn` does for a closure under Fork; `JoinHandle::join_timeout`;
//! and a panic's message and place in `JoinError::Panicked`.

#[macro_use]
mod common;

use std::os::fd::OwnedFd;
use std::time::Duration;

use proc_core::internal::handle_wire::Descriptor;
use proc_core::{Error, JoinError, StartMethod, exit, get_context};

every_start_method![
    a_targets_return_value_comes_back_from_join,
    a_value_larger_than_a_socket_buffer_comes_back_whole,
    a_panicking_target_is_panicked_with_its_message_and_where,
    an_exit_is_exited_and_a_signal_is_signaled,
    join_timeout_is_none_while_the_child_runs_then_the_value_once,
    a_capturing_closure_target_returns_only_under_fork,
];

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn greet(name: String, times: usize) -> Vec<String> {
    vec![format!("hello, {name}"); times]
}

fn big(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn refuse(n: u32) -> u32 {
    panic!("refused {n}")
}

fn exit_seven() -> u8 {
    exit(7)
}

fn sleep_then_one() -> u8 {
    std::thread::sleep(Duration::from_secs(60));
    1
}

/// Returns `value` once the test writes to (or closes) the other end of `gate`: until
/// then it runs, however slow the machine.
fn when_let_through(gate: Descriptor, value: String) -> String {
    let mut byte = [0u8; 1];
    nix::unistd::read(OwnedFd::from(gate), &mut byte).expect("read the gate");
    value
}

fn a_targets_return_value_comes_back_from_join(method: StartMethod) {
    let ctx = get_context(method).unwrap();
    assert_eq!(ctx.spawn_target(add, (40, 2)).unwrap().join().unwrap(), 42);
    let h = ctx.spawn_target(greet, ("小王".to_string(), 2)).unwrap();
    assert_eq!(h.process().start_method(), method);
    assert_eq!(h.join().unwrap(), vec!["hello, 小王", "hello, 小王"]);
}

fn a_value_larger_than_a_socket_buffer_comes_back_whole(method: StartMethod) {
    let h = get_context(method)
        .unwrap()
        .spawn_target(big, (3 << 20,))
        .unwrap();
    assert_eq!(h.join().unwrap(), big(3 << 20));
}

fn a_panicking_target_is_panicked_with_its_message_and_where(method: StartMethod) {
    let h = get_context(method)
        .unwrap()
        .spawn_target(refuse, (5,))
        .unwrap();
    let e = h.join().expect_err("the target panicked");
    let JoinError::Panicked {
        message, location, ..
    } = &e
    else {
        panic!("expected a panic, got {e:?}");
    };
    assert_eq!(message, "refused 5");
    let at = location.as_deref().expect("a location");
    assert!(at.starts_with(file!()), "{at}");
    let line = at.split(':').nth(1).and_then(|l| l.parse::<u32>().ok());
    assert!(line.is_some_and(|l| l > 0), "{at}");
    assert!(
        e.to_string().contains(at),
        "the message names the place: {e}"
    );
}

fn an_exit_is_exited_and_a_signal_is_signaled(method: StartMethod) {
    let ctx = get_context(method).unwrap();
    let h = ctx.spawn_target(exit_seven, ()).unwrap();
    assert!(matches!(h.join(), Err(JoinError::Exited(7))));
    let h = ctx.spawn_target(sleep_then_one, ()).unwrap();
    h.kill().unwrap();
    assert!(matches!(h.join(), Err(JoinError::Signaled(9))));
}

fn join_timeout_is_none_while_the_child_runs_then_the_value_once(method: StartMethod) {
    let (gate, opener) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut h = get_context(method)
        .unwrap()
        .spawn_target(
            when_let_through,
            (Descriptor::from(gate), "done".to_string()),
        )
        .unwrap();
    assert_eq!(h.join_timeout(Duration::ZERO).unwrap(), None);
    assert!(h.is_alive());
    nix::unistd::write(&opener, b"!").unwrap();
    assert_eq!(
        h.join_timeout(Duration::from_secs(120)).unwrap(),
        Some("done".to_string())
    );
    assert!(matches!(
        h.join_timeout(Duration::ZERO),
        Err(JoinError::AlreadyJoined)
    ));
    assert!(matches!(h.join(), Err(JoinError::AlreadyJoined)));
}

fn a_capturing_closure_target_returns_only_under_fork(method: StartMethod) {
    let offset = 100u64;
    let result = get_context(method)
        .unwrap()
        .spawn_target(move |n: u64| n + offset, (1,));
    match method {
        StartMethod::Fork => assert_eq!(result.unwrap().join().unwrap(), 101),
        _ => assert!(
            matches!(result, Err(Error::TargetCannotTravel { method: m, .. }) if m == method)
        ),
    }
}
