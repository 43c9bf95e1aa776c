//! Pool: a callback that panics, alone in its test binary. Its panic holds the process's
//! panic-hook lock for a moment on the pool's driver thread; a worker forked by another
//! test at that moment would inherit the lock held and hang in its own `take_hook`. (A
//! hazard of forking from a process where threads may panic; see the report of issue 21.)

use proc_patterns::{Callbacks, Pool};

/// Long enough never to be reached by a correct run.
const NEVER: std::time::Duration = std::time::Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

fn panic_in_callback(_: &u64) {
    panic!("a callback that panics");
}

#[test]
fn a_panicking_callback_does_not_stop_the_pool_or_lose_the_result() {
    let pool = Pool::new(1).unwrap();
    let callbacks = Callbacks::new().on_success(panic_in_callback);
    let pending = pool.apply_async_with(square, 3, callbacks);
    assert_eq!(pending.get_timeout(NEVER).unwrap(), 9);
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
}
