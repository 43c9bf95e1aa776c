//! A small seeded generator (splitmix64): every random choice of a run comes from the seed
//! the run prints, so that the same choices can be replayed (the timings, which the machine
//! decides, cannot).

use std::time::Duration;

/// splitmix64: tiny, fast, and good enough to pick victims and moments.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One of `choices`, picked uniformly.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }

    /// A seed for a generator of its own (a worker's), drawn from this one.
    pub fn seed(&mut self) -> u64 {
        self.next()
    }

    /// A duration in `0..max`, to the microsecond.
    pub fn duration_below(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64))
    }

    /// Spins for a random number of turns below `n`: a random moment, never a sleep.
    pub fn spin(&mut self, n: u64) {
        for _ in 0..self.below(n) {
            std::hint::spin_loop();
        }
    }
}

/// The seed of scenario `name` in a run started with `seed`: each scenario gets its own
/// stream, so that running one scenario alone replays the choices it made in the full run.
pub fn scenario_seed(seed: u64, name: &str) -> u64 {
    let mut rng = Rng::new(seed);
    for byte in name.bytes() {
        rng.state ^= u64::from(byte);
        rng.next();
    }
    rng.next()
}
