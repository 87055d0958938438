//! One small seeded random number generator (splitmix64), so that a random workload can be
//! replayed from the seed it prints.
//!
//! It may not be used where unpredictability matters: it is for tests only.

/// A seeded splitmix64 generator: the same seed gives the same numbers.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_replays_the_same_splitmix64_numbers() {
        // splitmix64's first output for seed 0.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let draws: Vec<usize> = (0..100).map(|_| a.below(7)).collect();
        assert_eq!(draws, (0..100).map(|_| b.below(7)).collect::<Vec<_>>());
        assert!(draws.iter().all(|&d| d < 7));
    }
}
