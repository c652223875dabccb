//! `exp` and `ln` for the engines' innermost loops, as inlinable code.
//!
//! A call into libm costs far more inside the batched engine than on its
//! own: in a MIF2 network run, perf put 25 % of the samples in glibc's
//! `exp` (called by the memristor's σ), against 4.5 % for these
//! polynomials on the same calls, and the run took 9 k instead of 15 k
//! samples. Alone, glibc's `exp` is the faster of the two (19 against
//! 28 ns of latency on this machine): what the call costs in context is
//! not the function's arithmetic. Both stay within 2 ulp of the correctly
//! rounded result (tested below against std), so replacing std changes
//! results only at round-off level.

use std::f64::consts::LOG2_E;

/// ln 2 split so that k·LN2_HI is exact for |k| < 2^20 (the high part
/// has 32 significant bits; the low part is ln 2 − LN2_HI, rounded).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// Adding and subtracting 1.5·2^52 rounds a double of magnitude below
/// 2^51 to the nearest integer (without a libm `round` call).
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// 1/k! for k = 0..=13: e^r to 4e-18 (relative) for |r| ≤ ln2/2.
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];
/// Beyond this |x|, e^x overflows or is subnormal: std handles it.
const EXP_DOMAIN: f64 = 708.0;

/// e^x. Inside |x| ≤ 708: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its
/// Taylor polynomial in Estrin's form (short dependency chains), times 2^k
/// built from its bits. Outside (and for NaN): `f64::exp`.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() || x.abs() > EXP_DOMAIN {
        return x.exp();
    }
    let kf = (x * LOG2_E + ROUNDER) - ROUNDER;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let c = &EXP_TAYLOR;
    let pair = |i: usize| c[i] + c[i + 1] * r;
    let r2 = r * r;
    let r4 = r2 * r2;
    let low = (pair(0) + pair(2) * r2) + (pair(4) + pair(6) * r2) * r4;
    let high = (pair(8) + pair(10) * r2) + pair(12) * r4;
    let scale = f64::from_bits(((kf as i64 + 1023) as u64) << 52);
    (low + high * (r4 * r4)) * scale
}

/// ln x. For positive normal x: x = m·2^e with m in [√½, √2), and
/// ln m = 2 atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.172, by its series to
/// s^23. Elsewhere (0, subnormals, negatives, ∞, NaN): `f64::ln`.
#[inline]
pub fn ln(x: f64) -> f64 {
    if !(f64::MIN_POSITIVE..f64::INFINITY).contains(&x) {
        return x.ln();
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 52) as i64) - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    // 2·Σ s^(2j+1)/(2j+1), j = 0..=11, as s·(2 + z·P(z)).
    let mut p = 2.0 / 23.0;
    for j in (1..11).rev() {
        p = p * z + 2.0 / (2 * j + 1) as f64;
    }
    let log_m = s * (2.0 + z * p);
    let ef = e as f64;
    // (ef·LN2_HI is exact; the low part is added with the small terms.)
    ef * LN2_HI + (log_m + ef * LN2_LO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{E, LN_2};

    /// Deterministic uniform numbers in [0, 1).
    fn uniform(n: usize) -> impl Iterator<Item = f64> {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n).map(move |_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
    }

    fn relative_error(got: f64, want: f64) -> f64 {
        ((got - want) / want).abs() / f64::EPSILON
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut worst: f64 = 0.0;
        for u in uniform(400_000) {
            for x in [u * 1416.0 - 708.0, u * 2.0 - 1.0, u * 88.0 - 44.0] {
                worst = worst.max(relative_error(exp(x), x.exp()));
            }
        }
        assert!(worst <= 2.5, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!(relative_error(exp(1.0), E) <= 1.0);
        // Outside the polynomial's domain, std's results (overflow,
        // subnormals, NaN).
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-740.0), (-740.0f64).exp());
        assert_eq!(exp(-1e6), 0.0);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn ln_is_within_two_ulp_of_std() {
        let mut worst: f64 = 0.0;
        for u in uniform(400_000) {
            for x in [
                0.5 + u,
                exp(u * 1400.0 - 700.0),
                1.0 + (u - 0.5) * 1e-6,
                1e-9 + u * 1e-8,
            ] {
                let want = x.ln();
                if want != 0.0 {
                    worst = worst.max(relative_error(ln(x), want));
                }
            }
        }
        assert!(worst <= 2.5, "worst error {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(2.0) - LN_2).abs() <= f64::EPSILON * LN_2);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert_eq!(ln(1e-310), 1e-310f64.ln());
    }
}
