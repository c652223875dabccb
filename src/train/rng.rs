//! Counter-based randomness: every random stream is a SplitMix64 generator
//! seeded by mixing the run seed with counters (epoch, step, layer, chunk,
//! sample). Nothing depends on thread scheduling, and a checkpoint that stores
//! the seed, the epoch and the step stores the whole random state.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for
/// shuffles, dropout masks, augmentation and weight initialisation.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for the stream named by `seed` and `counters`.
    pub fn derive(seed: u64, counters: &[u64]) -> Self {
        Self::new(mix(seed, counters))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in 0..n (n > 0), by the multiply-high method.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal, by Box–Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: keeps ln finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash a seed and a list of counters into one 64-bit seed.
pub fn mix(seed: u64, counters: &[u64]) -> u64 {
    let mut h = finalize(seed ^ 0x6A09_E667_F3BC_C908);
    for &c in counters {
        h = finalize(h ^ finalize(c.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |counters: &[u64]| {
            let mut r = SplitMix64::derive(7, counters);
            (0..4).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        let (a, b, c) = (draw(&[1, 2]), draw(&[1, 2]), draw(&[2, 1]));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = SplitMix64::new(1);
        let n = 100_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let x = r.normal();
            s += x;
            s2 += x * x;
        }
        assert!((s / n as f64).abs() < 0.02);
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[r.below(4)] += 1;
        }
        for c in counts {
            assert!((c as f64 / n as f64 - 0.25).abs() < 0.01);
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        SplitMix64::new(3).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
