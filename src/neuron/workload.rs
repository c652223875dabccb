//! The benchmark population shared by `circsnn bench` and the criterion
//! benches: heterogeneous, seeded input currents.

/// How the inputs are drawn, for reports.
pub const INPUT_DISTRIBUTION: &str =
    "50 % silent U(0, 1.5) nA, 30 % slow U(1.9, 2.3) nA, 20 % fast U(2.3, 3.0) nA; constant, seed 42";

/// `n` input currents (A) following [`INPUT_DISTRIBUTION`]: every block of
/// ten neurons has five silent, three slow and two fast ones.
pub fn heterogeneous_inputs(n: usize) -> Vec<f64> {
    // SplitMix64: tiny, seeded, identical on every platform.
    let mut rng = crate::train::rng::SplitMix64::new(42);
    let mut uniform = move || rng.next_u64() as f64 / u64::MAX as f64;
    (0..n)
        .map(|i| {
            let (lo, hi) = match i % 10 {
                0..=4 => (0.0, 1.5e-9),
                5..=7 => (1.9e-9, 2.3e-9),
                _ => (2.3e-9, 3.0e-9),
            };
            lo + (hi - lo) * uniform()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_follows_the_stated_distribution() {
        let x = heterogeneous_inputs(10_000);
        let silent = x.iter().filter(|&&i| i < 1.5e-9).count();
        let fast = x.iter().filter(|&&i| i >= 2.3e-9).count();
        assert_eq!(silent, 5_000);
        assert_eq!(fast, 2_000);
        assert_eq!(x, heterogeneous_inputs(10_000));
    }
}
