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
}
