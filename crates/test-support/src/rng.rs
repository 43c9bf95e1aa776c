//! [`Rng`]: splitmix64, a small seeded generator for the random inputs and random moments
//! of tests, so that a failing case can be replayed from its seed.

/// splitmix64: the same seed gives the same numbers.
///
/// ```
/// use multiproc_test_support::rng::Rng;
///
/// let (mut a, mut b) = (Rng::seeded(7), Rng::seeded(7));
/// assert_eq!(a.next(), b.next());
/// assert!(a.below(10) < 10);
/// assert_eq!(a.bytes(5).len(), 5);
/// ```
#[derive(Debug)]
pub struct Rng {
    state: u64,
    seed: u64,
    /// The environment variable that replays this seed, said when a test fails.
    replay: Option<&'static str>,
}

impl Rng {
    /// A generator from `seed`.
    pub fn seeded(seed: u64) -> Rng {
        Rng {
            state: seed,
            seed,
            replay: None,
        }
    }

    /// A generator seeded from the environment variable `var` if it holds a number, else
    /// from the clock and the pid. When a test fails while it lives, it prints the seed
    /// and how to run again with it.
    pub fn from_env(var: &'static str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    ^ u64::from(std::process::id())
            });
        Rng {
            replay: Some(var),
            ..Rng::seeded(seed)
        }
    }

    /// The next number.
    #[allow(
        clippy::should_implement_trait,
        reason = "an endless generator, not an iterator"
    )]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes, fewer than `max` of them.
    pub fn bytes_below(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max) as usize;
        self.bytes(len)
    }

    /// Spins for a random number of iterations below `n`: a random moment, not a sleep.
    pub fn spin(&mut self, n: u64) {
        for _ in 0..self.below(n) {
            std::hint::spin_loop();
        }
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if let Some(var) = self.replay
            && std::thread::panicking()
        {
            eprintln!(
                "the random choices came from seed {0}; rerun with {var}={0}",
                self.seed
            );
        }
    }
}
