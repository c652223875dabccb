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
        let mut w = 1.0 / (times[j] - t_new);
        for m in (0..k).filter(|&m| m != j) {
            w *= (t_new - times[m]) / (times[j] - times[m]);
        }
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
        let mut w = 1.0;
        for m in (0..times.len()).filter(|&m| m != j) {
            w *= (t - times[m]) / (times[j] - times[m]);
        }
        for (o, xj) in out.iter_mut().zip(x(j)) {
            *o += w * xj;
        }
    }
}

/// One unknown's estimated local truncation errors of the BDF step to
/// `ts[0]` (from `ts[1]`), as if taken at orders k − 1, k and k + 1, from
/// its values `xs` at `ts` (the new point first, then the history, newest
/// first; `xs` is overwritten by the divided differences). NaN where the
/// points do not suffice: order j needs j + 2 of them.
pub fn bdf_errors(ts: &[f64], xs: &mut [f64], k: usize) -> [f64; 3] {
    let points = ts.len().min(xs.len());
    let h = ts[0] - ts[1];
    let mut out = [f64::NAN; 3];
    let mut h_power = 1.0;
    for level in 1..points.min(k + 3) {
        for a in 0..points - level {
            xs[a] = (xs[a] - xs[a + 1]) / (ts[a] - ts[a + level]);
        }
        h_power *= h;
        // Level l is order l − 1's estimate.
        let j = level - 1;
        if j >= 1 && j + 1 >= k && j <= k + 1 {
            out[j + 1 - k] = BDF_ERROR[j] * h_power * xs[0];
        }
    }
    out
}

/// The order for the next step after one accepted at order k, from its
/// error ratios at orders k − 1, k, k + 1 (error over tolerance; NaN where
/// unknown): the one that allows the longest step, r_j^(−1/(j+1)),
/// changing only for a gain of more than 20 %, within `limit`. Without an estimate for k + 1
/// an order-1 step still climbs to 2, as a start from order 1 always has.
pub fn choose_order(k: usize, ratios: [f64; 3], limit: usize) -> usize {
    // ln of the step factor: −ln(r)/(j + 1).
    let log_factor = |j: usize, r: f64| {
        if r.is_nan() {
            f64::NEG_INFINITY
        } else if r > 0.0 {
            -crate::math::ln(r) / (j as f64 + 1.0)
        } else {
            f64::INFINITY
        }
    };
    if ratios[2].is_nan() && k < 2 {
        return (k + 1).min(limit);
    }
    let mut best = (k, log_factor(k, ratios[1]));
    if k >= 2 && log_factor(k - 1, ratios[0]) > best.1 + ORDER_CHANGE_GAIN.ln() {
        best = (k - 1, log_factor(k - 1, ratios[0]));
    }
    if k < limit && log_factor(k + 1, ratios[2]) > best.1 + ORDER_CHANGE_GAIN.ln() {
        best = (k + 1, 0.0);
    }
    best.0.min(limit)
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
        let dp = move |t: f64| (1..=k).map(|m| m as f64 * t.powi(m as i32 - 1)).sum::<f64>();
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
            assert!((got - dp(t_new)).abs() < 1e-8, "order {k}: {got} against {}", dp(t_new));
        }
        // Orders 1 and 2 are the fixed formulas.
        let (t0, t1, h) = (1.0f64, 0.7f64, 0.2f64);
        let q = [[t0 * t0], [t1 * t1]];
        let (mut c, mut c2) = ([0.0], [0.0]);
        let a = bdf_coefficients(t0 + h, &[t0, t1], |j| &q[j][..], &mut c);
        let a2 = integration_coefficients(Method::Bdf2, 2, h, t0 - t1, &q[0], Some(&q[1]), &[0.0], &mut c2);
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
            assert!((out[0] - p(1.2)).abs() < 1e-9, "degree {k}: {} against {}", out[0], p(1.2));
        }
    }

    /// For x = t^(j+1) the (j+1)-th divided difference is 1, so order j's
    /// estimate is its constant times h^(j+1); lower powers vanish from it.
    #[test]
    fn error_estimates_follow_the_error_constants() {
        let ts = [1.0, 0.9, 0.75, 0.7, 0.55, 0.5, 0.4];
        let h: f64 = 0.1;
        for k in 1..=4 {
            for (slot, j) in [(0, k - 1), (1, k), (2, k + 1)] {
                if j == 0 {
                    continue;
                }
                let mut xs: Vec<f64> = ts.iter().map(|&t: &f64| t.powi(j as i32 + 1) + 3.0 * t).collect();
                let e = bdf_errors(&ts, &mut xs, k)[slot];
                let want = BDF_ERROR[j] * h.powi(j as i32 + 1);
                assert!((e - want).abs() < 1e-9 * want.abs().max(1e-6), "k {k}, order {j}: {e} against {want}");
            }
        }
        // Too few points for order k + 1: NaN.
        let mut xs = [1.0, 2.0, 3.0];
        let e = bdf_errors(&ts[..3], &mut xs, 1);
        assert!(e[1].is_finite() && e[2].is_nan());
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
