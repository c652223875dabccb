//! Integration formulas on the charges Q, shared by the general transient
//! engine and the batched neuron engine: dQ/dt at the new point is
//! approximated as α·Q(x_new) + c, with c from the history.

use crate::circuit::Method;

/// Fill `c` and return α for a step of size `h` (the previous step was
/// `h_prev`): backward Euler at order 1, the trapezoidal rule or
/// variable-step BDF2 at order 2. `q0`/`q1` are Q at the last two accepted
/// points (`q1` only needed by BDF2), `qdot0` is dQ/dt at the last point
/// (only needed by TRAP).
#[allow(clippy::too_many_arguments)]
pub fn integration_coefficients(
    method: Method,
    order: usize,
    h: f64,
    h_prev: f64,
    q0: &[f64],
    q1: Option<&[f64]>,
    qdot0: &[f64],
    c: &mut [f64],
) -> f64 {
    match (method, order, q1) {
        (Method::Trap, 2, _) => {
            for i in 0..c.len() {
                c[i] = -2.0 * q0[i] / h - qdot0[i];
            }
            2.0 / h
        }
        (Method::Bdf2, 2, Some(q1)) => {
            let w = h / h_prev;
            for i in 0..c.len() {
                c[i] = (-(1.0 + w) * q0[i] + w * w / (1.0 + w) * q1[i]) / h;
            }
            (1.0 + 2.0 * w) / ((1.0 + w) * h)
        }
        _ => {
            for i in 0..c.len() {
                c[i] = -q0[i] / h;
            }
            1.0 / h
        }
    }
}

/// The highest BDF order either engine takes (`.options maxord`).
pub const MAX_BDF_ORDER: usize = 5;

/// j!·β_j with β_j = 1/(1 + 1/2 + … + 1/j): BDF-j's local truncation error
/// is this factor times h^(j+1) times the (j+1)-th divided difference of
/// the solution (for constant steps, β_j/(j+1)·h^(j+1)·x^(j+1)).
const BDF_ERROR: [f64; MAX_BDF_ORDER + 1] = [
    0.0,
    1.0,
    4.0 / 3.0,
    36.0 / 11.0,
    288.0 / 25.0,
    7200.0 / 137.0,
];

/// Variable-step BDF of order k = `times.len()`: dQ/dt at `t_new` is the
/// derivative there of the polynomial through Q_new and the k accepted
/// points (`times[j]`, `q(j)`), newest first. Fills `c` and returns α, the
/// Lagrange basis derivatives at `t_new` (for k = 1, 2 the same formulas as
/// [`integration_coefficients`], in another rounding).
pub fn bdf_coefficients<'a>(
    t_new: f64,
    times: &[f64],
    q: impl Fn(usize) -> &'a [f64],
    c: &mut [f64],
) -> f64 {
    let k = times.len();
    c.fill(0.0);
    for j in 0..k {
        let (mut num, mut den) = (1.0, times[j] - t_new);
        for m in (0..k).filter(|&m| m != j) {
            num *= t_new - times[m];
            den *= times[j] - times[m];
        }
        let w = num / den;
        for (ci, qi) in c.iter_mut().zip(q(j)) {
            *ci += w * qi;
        }
    }
    times.iter().map(|&tj| 1.0 / (t_new - tj)).sum()
}

/// The polynomial through the points (`times[j]`, `x(j)`) evaluated at t:
/// the predictor, Newton's starting point.
pub fn extrapolate<'a>(t: f64, times: &[f64], x: impl Fn(usize) -> &'a [f64], out: &mut [f64]) {
    out.fill(0.0);
    for j in 0..times.len() {
        let (mut num, mut den) = (1.0, 1.0);
        for m in (0..times.len()).filter(|&m| m != j) {
            num *= t - times[m];
            den *= times[j] - times[m];
        }
        let w = num / den;
        for (o, xj) in out.iter_mut().zip(x(j)) {
            *o += w * xj;
        }
    }
}

/// The estimated local truncation errors of one BDF step, as if taken at
/// orders k − 1, k and k + 1: order j's is j!·β_j·h^(j+1) times the
/// (j+1)-th divided difference of the solution through the new point and
/// the history. What depends on the times alone (the reciprocal
/// differences, the powers of h) is computed once per step; each unknown
/// then costs multiplications only.
pub struct ErrorEstimate {
    levels: usize,
    k: usize,
    /// 1/(t_a − t_{a+l}) for the a that lead to the top level's first
    /// difference, level by level (levels, levels − 1, …, 1 entries).
    reciprocals: [f64; TRIANGLE],
    /// The factor on the divided difference at each level (0: unused).
    factors: [f64; MAX_BDF_ORDER + 3],
}

/// Points an estimate may use: the new one and the history.
pub const ESTIMATE_POINTS: usize = MAX_BDF_ORDER + 2;
const TRIANGLE: usize = ESTIMATE_POINTS * (ESTIMATE_POINTS - 1) / 2;

impl ErrorEstimate {
    /// For a step to `ts[0]` from `ts[1]` (the history follows, newest
    /// first) taken at order k; order k + 1 is estimated only where it
    /// is within `limit` (its level is the costliest).
    #[inline]
    pub fn new(ts: &[f64], k: usize, limit: usize) -> Self {
        let points = ts.len().min(ESTIMATE_POINTS);
        let top = if k < limit { k + 2 } else { k + 1 };
        let levels = (points - 1).min(top);
        let h = ts[0] - ts[1];
        let mut e = ErrorEstimate {
            levels,
            k,
            reciprocals: [0.0; TRIANGLE],
            factors: [0.0; MAX_BDF_ORDER + 3],
        };
        let mut at = 0;
        let mut h_power = 1.0;
        for level in 1..=levels {
            for a in 0..=levels - level {
                e.reciprocals[at] = 1.0 / (ts[a] - ts[a + level]);
                at += 1;
            }
            h_power *= h;
            let j = level - 1;
            if j >= 1 && j + 1 >= k && j <= k + 1 {
                e.factors[level] = BDF_ERROR[j] * h_power;
            }
        }
        e
    }

    /// One unknown's errors at orders k − 1, k, k + 1 from its values `xs`
    /// at the step's times (overwritten by the divided differences); NaN
    /// where the points do not suffice (order j needs j + 2 of them) or
    /// the order is beyond the limit.
    #[inline]
    pub fn errors(&self, xs: &mut [f64; ESTIMATE_POINTS]) -> [f64; 3] {
        let mut out = [f64::NAN; 3];
        let mut at = 0;
        for level in 1..=self.levels {
            for a in 0..=self.levels - level {
                xs[a] = (xs[a] - xs[a + 1]) * self.reciprocals[at + a];
            }
            at += self.levels - level + 1;
            if self.factors[level] != 0.0 {
                out[level - self.k] = self.factors[level] * xs[0];
            }
        }
        out
    }
}

/// The order for the next step after one accepted at order k, from its
/// error ratios at orders k − 1, k, k + 1 (error over tolerance; NaN where
/// unknown): the one that allows the longest step, r_j^(−1/(j+1)),
/// changing only for a gain of more than 20 %, within `limit`. Without an estimate for k + 1
/// an order-1 step still climbs to 2, as a start from order 1 always has.
pub fn choose_order(k: usize, ratios: [f64; 3], limit: usize) -> usize {
    if ratios[2].is_nan() && k < 2 {
        return (k + 1).min(limit);
    }
    // Whether order a's step factor beats order b's by the gain:
    // r_a^(−1/(a+1)) > G·r_b^(−1/(b+1)) ⟺ r_b^(a+1) > G^((a+1)(b+1))·r_a^(b+1),
    // in products only (the ratios clamped so that no power overflows).
    let beats = |a: usize, ra: f64, b: usize, rb: f64| {
        if ra.is_nan() {
            return false;
        }
        let (ra, rb) = (ra.clamp(1e-40, 1e40), rb.clamp(1e-40, 1e40));
        let (pa, pb) = (a as i32 + 1, b as i32 + 1);
        rb.powi(pa) > ORDER_CHANGE_GAIN.powi(pa * pb) * ra.powi(pb)
    };
    let mut best = (k, ratios[1]);
    if k >= 2 && beats(k - 1, ratios[0], k, ratios[1]) {
        best = (k - 1, ratios[0]);
    }
    if k < limit && beats(k + 1, ratios[2], best.0, best.1) {
        best = (k + 1, ratios[2]);
    }
    best.0.min(limit)
}

/// r^(−1/(order+1)) for r > 0 (∞ for r = 0): the step change that brings
/// an error ratio r to 1 at that order. Roots by square roots and Newton
/// steps from a bit-level guess, to 1e-12 (order 4: 1e-4): `powf` took 14 % of a CIFAR
/// network's time, Rust's software `cbrt` more still, and an inlined
/// exp(ln(r)/k) 3 % of a MIF2 network's.
#[inline]
pub fn step_factor(r: f64, order: usize) -> f64 {
    if !(1e-300..=1e300).contains(&r) {
        return if r > 0.0 {
            r.powf(-1.0 / (order as f64 + 1.0))
        } else {
            f64::INFINITY
        };
    }
    match order {
        1 => 1.0 / r.sqrt(),
        2 => 1.0 / cube_root(r),
        3 => 1.0 / r.sqrt().sqrt(),
        4 => {
            // Dividing the exponent bits by 5 is a fifth root within 5 %;
            // two Newton steps take it to 1e-4, plenty for a step size.
            let mut c = f64::from_bits(r.to_bits() / 5 + 0x3326_6666_6666_6666);
            for _ in 0..2 {
                let c2 = c * c;
                c -= (c2 * c2 * c - r) / (5.0 * c2 * c2);
            }
            1.0 / c
        }
        5 => 1.0 / cube_root(r).sqrt(),
        _ => r.powf(-1.0 / (order as f64 + 1.0)),
    }
}

/// r^(1/3) for normal r > 0: dividing the exponent bits by 3 is a cube
/// root within 4 %, and three Newton steps take it to 1e-12.
#[inline]
fn cube_root(r: f64) -> f64 {
    let mut c = f64::from_bits(r.to_bits() / 3 + 0x2A9F_7893_782D_A1CE);
    for _ in 0..3 {
        c -= (c * c * c - r) / (3.0 * c * c);
    }
    c
}

/// The next order and the error ratio its step factor is to use: the
/// order [`choose_order`] picks, with that order's ratio, or order k's
/// where the new order's is unknown (the climb from order 1 to 2).
pub fn next_order(k: usize, ratios: [f64; 3], limit: usize) -> (usize, f64) {
    let next = choose_order(k, ratios, limit);
    match ratios[next + 1 - k] {
        r if r.is_nan() => (next, ratios[1]),
        r => (next, r),
    }
}

/// The order for the step after one accepted at `order`, and the error
/// ratio its step factor is to use. `estimate` is (k, the ratios at
/// k − 1, k, k + 1, whether the order has settled): a settled order is
/// chosen by [`next_order`], an unsettled one is kept with order k's
/// ratio. Without an estimate (too short a history) the order climbs by
/// one, with `fallback`, the step's own ratio if it has one.
pub fn order_after_step(
    order: usize,
    estimate: Option<(usize, [f64; 3], bool)>,
    fallback: Option<f64>,
    limit: usize,
) -> (usize, Option<f64>) {
    match estimate {
        Some((k, ratios, true)) => {
            let (next, r) = next_order(k, ratios, limit);
            (next, Some(r))
        }
        Some((_, ratios, false)) => (order.min(limit), Some(ratios[1])),
        None => ((order + 1).min(limit), fallback),
    }
}

/// Whether an order k held for `steps_at_order` accepted steps before this
/// one may now change: after k + 1 steps, as CVODE waits. Until then only
/// order k's error is estimated; the estimates at k ± 1 cost more than the
/// step's own, and an order that changes at every step gains little (in a
/// MIF2 network, 27 % fewer rejected steps and 5 % fewer Newton iterations).
pub fn order_settled(steps_at_order: usize, k: usize) -> bool {
    steps_at_order >= k
}

/// The safety factor on a step grown from an error estimate. Orders
/// above 2 keep a wider margin: at 0.9, order 4 had 2.5 times the
/// rejections in a MIF2 network.
pub fn step_safety(order: usize) -> f64 {
    if order > 2 {
        0.8
    } else {
        0.9
    }
}

/// The step-factor gain an order change must promise (going down at
/// the highest order on any gain cost 25 % more rejections in a MIF2
/// network).
const ORDER_CHANGE_GAIN: f64 = 1.2;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each formula is exact for Q(t) = t² at order 2 (t for BE).
    #[test]
    fn formulas_differentiate_polynomials_exactly() {
        let (t0, t1, h) = (1.0f64, 0.7f64, 0.2f64);
        let t_new = t0 + h;
        let mut c = [0.0];
        let a = integration_coefficients(Method::Be, 1, h, t0 - t1, &[t0], None, &[0.0], &mut c);
        assert!((a * t_new + c[0] - 1.0).abs() < 1e-12);
        let a = integration_coefficients(
            Method::Bdf2,
            2,
            h,
            t0 - t1,
            &[t0 * t0],
            Some(&[t1 * t1]),
            &[0.0],
            &mut c,
        );
        assert!((a * t_new * t_new + c[0] - 2.0 * t_new).abs() < 1e-9);
        // TRAP: (dQ/dt)_new = 2(Q_new − Q_0)/h − (dQ/dt)_0, exact for t².
        let a = integration_coefficients(
            Method::Trap,
            2,
            h,
            t0 - t1,
            &[t0 * t0],
            None,
            &[2.0 * t0],
            &mut c,
        );
        assert!((a * t_new * t_new + c[0] - 2.0 * t_new).abs() < 1e-9);
    }

    /// p(t) = 1 + t + … + t^k at uneven points, newest first.
    fn uneven(k: usize) -> (Vec<f64>, impl Fn(f64) -> f64, impl Fn(f64) -> f64) {
        let times: Vec<f64> = [1.0, 0.93, 0.81, 0.74, 0.6, 0.51][..k].to_vec();
        let p = move |t: f64| (0..=k).map(|m| t.powi(m as i32)).sum::<f64>();
        let dp = move |t: f64| {
            (1..=k)
                .map(|m| m as f64 * t.powi(m as i32 - 1))
                .sum::<f64>()
        };
        (times, p, dp)
    }

    #[test]
    fn bdf_of_order_k_differentiates_degree_k_exactly() {
        for k in 1..=MAX_BDF_ORDER {
            let (times, p, dp) = uneven(k);
            let t_new = 1.12;
            let q: Vec<[f64; 1]> = times.iter().map(|&t| [p(t)]).collect();
            let mut c = [0.0];
            let a = bdf_coefficients(t_new, &times, |j| &q[j][..], &mut c);
            let got = a * p(t_new) + c[0];
            assert!(
                (got - dp(t_new)).abs() < 1e-8,
                "order {k}: {got} against {}",
                dp(t_new)
            );
        }
        // Orders 1 and 2 are the fixed formulas.
        let (t0, t1, h) = (1.0f64, 0.7f64, 0.2f64);
        let q = [[t0 * t0], [t1 * t1]];
        let (mut c, mut c2) = ([0.0], [0.0]);
        let a = bdf_coefficients(t0 + h, &[t0, t1], |j| &q[j][..], &mut c);
        let a2 = integration_coefficients(
            Method::Bdf2,
            2,
            h,
            t0 - t1,
            &q[0],
            Some(&q[1]),
            &[0.0],
            &mut c2,
        );
        assert!((a - a2).abs() < 1e-12 * a2 && (c[0] - c2[0]).abs() < 1e-12 * c2[0].abs());
    }

    #[test]
    fn extrapolation_is_exact_for_its_degree() {
        for k in 1..=MAX_BDF_ORDER {
            let (mut times, p, _) = uneven(k);
            times.push(0.4);
            let x: Vec<[f64; 1]> = times.iter().map(|&t| [p(t)]).collect();
            let mut out = [0.0];
            extrapolate(1.2, &times, |j| &x[j][..], &mut out);
            assert!(
                (out[0] - p(1.2)).abs() < 1e-9,
                "degree {k}: {} against {}",
                out[0],
                p(1.2)
            );
        }
    }

    /// For x = t^(j+1) the (j+1)-th divided difference is 1, so order j's
    /// estimate is its constant times h^(j+1); lower powers vanish from it.
    #[test]
    fn error_estimates_follow_the_error_constants() {
        let ts: [f64; 7] = [1.0, 0.9, 0.75, 0.7, 0.55, 0.5, 0.4];
        let h: f64 = 0.1;
        for k in 1..=4 {
            for (slot, j) in [(0, k - 1), (1, k), (2, k + 1)] {
                if j == 0 {
                    continue;
                }
                let mut xs = [0.0; ESTIMATE_POINTS];
                for (x, &t) in xs.iter_mut().zip(&ts) {
                    *x = t.powi(j as i32 + 1) + 3.0 * t;
                }
                let e = ErrorEstimate::new(&ts, k, 5).errors(&mut xs)[slot];
                let want = BDF_ERROR[j] * h.powi(j as i32 + 1);
                assert!(
                    (e - want).abs() < 1e-9 * want.abs().max(1e-6),
                    "k {k}, order {j}: {e} against {want}"
                );
            }
        }
        // Too few points for order k + 1: NaN.
        let mut xs = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0];
        let e = ErrorEstimate::new(&ts[..3], 1, 5).errors(&mut xs);
        assert!(e[1].is_finite() && e[2].is_nan());
        // Order k + 1 beyond the limit: NaN.
        let mut xs = [1.0, 2.0, 3.0, 5.0, 0.0, 0.0, 0.0];
        let e = ErrorEstimate::new(&ts[..4], 1, 1).errors(&mut xs);
        assert!(e[1].is_finite() && e[2].is_nan());
    }

    #[test]
    fn step_factor_is_the_root() {
        for r in [1e-320f64, 1e-300, 1e-12, 0.37, 1.0, 2.5, 1e6, 1e300, 1e305] {
            for order in 1..=MAX_BDF_ORDER {
                let want = r.powf(-1.0 / (order as f64 + 1.0));
                let got = step_factor(r, order);
                let tol = if order == 4 { 1e-4 } else { 1e-12 };
                assert!(
                    (got - want).abs() <= tol * want,
                    "{r} {order}: {got} against {want}"
                );
            }
        }
        assert_eq!(step_factor(0.0, 2), f64::INFINITY);
    }

    #[test]
    fn order_changes_need_a_clear_gain() {
        // Order 1 climbs to 2 before anything is known of order 3.
        assert_eq!(choose_order(1, [f64::NAN, 0.5, f64::NAN], 4), 2);
        // Order 3's step factor 0.5^(-1/4) = 1.19 against order 2's
        // 0.5^(-1/3) = 1.26: stay.
        assert_eq!(choose_order(2, [0.9, 0.5, 0.5], 4), 2);
        // Order 3 allows 3× the step: go up, but not past the limit.
        assert_eq!(choose_order(2, [0.9, 0.5, 1e-3], 4), 3);
        assert_eq!(choose_order(2, [0.9, 0.5, 1e-3], 2), 2);
        // Order 2 allows far more than order 3 does: go down.
        assert_eq!(choose_order(3, [1e-4, 0.9, f64::NAN], 3), 2);
        assert_eq!(choose_order(3, [0.5, 0.45, f64::NAN], 3), 3);
    }
}
