//! The exact linear step of the batched engine.
//!
//! Where every device of an instance is quiescent (see
//! [`Device::quiescent`](crate::devices::Device::quiescent)), the neuron is
//! the linear circuit it is at rest, C·x' + G·(x − x_r) + F_r = I·e_in, and
//! under a constant input its solution is a sum of exponentials:
//!
//! ```text
//! x(t) = x∞(I) + Σ_k e^{−t/τ_k} v_k (w_k · (x(0) − x∞(I))),
//! x∞(I) = x_r − G⁻¹F_r + I·G⁻¹e_in
//! ```
//!
//! with (τ_k, v_k) the eigenpairs of K = G⁻¹C that have τ_k ≠ 0 and w_k
//! the matching rows of the inverse eigenvector matrix. (Eigenvalues 0 of
//! K belong to algebraic unknowns, whose components are dropped: that is
//! the consistent state after an input change, with every charge kept.)
//! The decomposition is done once per circuit; a step then costs a few
//! dozen flops and exponentials per instance, whatever its length. This is
//! what makes silent and slowly charging neurons cheap: a memristive
//! neuron between spikes, or an LIF circuit between resets, crosses a whole
//! network step in one exact step.
//!
//! The step ends early where a device's bound reaches its `leave` level:
//! the instance then hands over to the integrator (a memristor nearing its
//! switching fold, an LIF reaching its threshold). Bounds are checked in
//! closed form: at the end of the step, and where more than one mode moves
//! a bound, at `SAMPLES` points in between (a sum of r exponentials turns
//! at most r − 1 times).
//!
//! Circuits whose K has complex or negative eigenvalues (oscillatory or
//! unstable rest states), or a singular G, get no exact step.

use crate::devices::QuiescentBound;

/// Points at which a bound moved by several modes is checked within a step.
const SAMPLES: usize = 16;
/// Eigenvalues below this fraction of the largest are algebraic (τ = 0).
const ALGEBRAIC_FRACTION: f64 = 1e-9;

/// `body` with the model's sizes n (unknowns) and r (modes) bound as
/// constants for the neuron circuits (LIF, MIF, MIF2): each arm gets its
/// own copy of an `#[inline(always)]` body, whose short loops unroll.
macro_rules! sized {
    ($model:expr, |$n:ident, $r:ident| $body:expr) => {
        match ($model.n, $model.tau.len()) {
            (2, 1) => {
                let ($n, $r) = (2, 1);
                $body
            }
            (3, 1) => {
                let ($n, $r) = (3, 1);
                $body
            }
            (4, 2) => {
                let ($n, $r) = (4, 2);
                $body
            }
            (7, 3) => {
                let ($n, $r) = (7, 3);
                $body
            }
            ($n, $r) => $body,
        }
    };
}

/// The rest linearisation of one neuron circuit, decomposed into modes.
#[derive(Clone, Debug)]
pub struct QuiescentModel {
    n: usize,
    /// x∞ at zero input, and its change per ampere of input.
    x_inf0: Vec<f64>,
    x_inf_per_amp: Vec<f64>,
    /// Time constants τ_k (s) of the dynamic modes.
    tau: Vec<f64>,
    /// Mode shapes v_k, row k of r×n.
    shapes: Vec<f64>,
    /// Projections w_k, row k of r×n.
    projections: Vec<f64>,
    /// Charges are Q_r + C·(x − x_r) in the quiescent region.
    x_ref: Vec<f64>,
    q_ref: Vec<f64>,
    /// dQ/dx, row-major n×n.
    c: Vec<f64>,
}

/// Per-chunk scratch space of [`QuiescentModel::advance`].
#[derive(Clone, Debug, Default)]
pub struct QuiescentScratch {
    x_inf: Vec<f64>,
    coefficients: Vec<f64>,
    decay: Vec<f64>,
    /// The time `decay` belongs to: most exact steps cross a whole network
    /// step, so consecutive instances share it and skip the exponentials.
    /// (A scratch therefore serves one model.)
    decay_time: f64,
    /// The decays of the length before.
    spare: Vec<f64>,
    spare_time: f64,
}

/// e^(−z) for z ≥ 0, taken as 0 beyond z = 40 (e^(−40) = 4e-18, far below
/// any tolerance on the mode amplitudes it multiplies, which the quiescent
/// region keeps small): a memristor state mode (τ = 1 µs) has decayed
/// after 40 µs, so most exact steps need one exponential, not two.
#[inline]
fn decay(z: f64) -> f64 {
    if z > 40.0 {
        0.0
    } else {
        crate::math::exp(-z)
    }
}

impl QuiescentModel {
    /// Decompose the linearisation at x_r: residual F_r, charges Q_r, and
    /// the Jacobians dF/dx, dQ/dx (row-major n×n). `input` is the KCL row
    /// the input current enters. Err says why there is no exact step.
    pub fn build(
        x_ref: &[f64],
        f_ref: &[f64],
        q_ref: &[f64],
        jf: &[f64],
        jq: &[f64],
        input: usize,
    ) -> Result<Self, String> {
        let n = x_ref.len();
        let solve_g = |rhs: &[f64]| -> Result<Vec<f64>, String> {
            let mut a = jf.to_vec();
            let mut b = rhs.to_vec();
            crate::solver::dense::dense_solve(n, &mut a, &mut b)
                .map_err(|k| format!("the rest conductance matrix is singular (column {k})"))?;
            Ok(b)
        };
        let mut e_in = vec![0.0; n];
        e_in[input] = 1.0;
        let x_inf_per_amp = solve_g(&e_in)?;
        let neg_f: Vec<f64> = f_ref.iter().map(|v| -v).collect();
        let shift = solve_g(&neg_f)?;
        let x_inf0: Vec<f64> = x_ref.iter().zip(&shift).map(|(a, b)| a + b).collect();

        // K = G⁻¹C, column by column.
        let mut k = faer::Mat::<f64>::zeros(n, n);
        for j in 0..n {
            let col: Vec<f64> = (0..n).map(|i| jq[i * n + j]).collect();
            let y = solve_g(&col)?;
            for i in 0..n {
                k[(i, j)] = y[i];
            }
        }
        let eig = k
            .eigen()
            .map_err(|e| format!("eigendecomposition failed: {e:?}"))?;
        let (s, u) = (eig.S(), eig.U());
        let mu: Vec<f64> = (0..n).map(|i| s[i].re).collect();
        let scale = mu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if !(scale > 0.0) {
            return Err("the circuit has no charges".into());
        }
        for i in 0..n {
            if s[i].im.abs() > 1e-9 * scale {
                return Err("the rest state is oscillatory (complex modes)".into());
            }
            if mu[i] < -ALGEBRAIC_FRACTION * scale {
                return Err("the rest state is unstable (a negative time constant)".into());
            }
        }
        let mut v = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                if u[(i, j)].im.abs() > 1e-9 * u[(i, j)].norm() + 1e-300 {
                    return Err("complex mode shapes".into());
                }
                v[i * n + j] = u[(i, j)].re;
            }
        }
        // W = V⁻¹, row by row through columns of the identity.
        let mut w = vec![0.0; n * n];
        for j in 0..n {
            let mut a = v.clone();
            let mut b = vec![0.0; n];
            b[j] = 1.0;
            crate::solver::dense::dense_solve(n, &mut a, &mut b)
                .map_err(|_| "the modes are not independent (defective K)".to_string())?;
            for i in 0..n {
                w[i * n + j] = b[i];
            }
        }
        // The decomposition must reproduce K.
        let kmax = (0..n * n).fold(0.0f64, |m, p| m.max(k[(p / n, p % n)].abs()));
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n).map(|m| v[i * n + m] * mu[m] * w[m * n + j]).sum();
                if (r - k[(i, j)]).abs() > 1e-8 * kmax {
                    return Err("the eigendecomposition is ill-conditioned".into());
                }
            }
        }
        let dynamic: Vec<usize> = (0..n)
            .filter(|&m| mu[m] > ALGEBRAIC_FRACTION * scale)
            .collect();
        let mut shapes = Vec::new();
        let mut projections = Vec::new();
        for &m in &dynamic {
            shapes.extend((0..n).map(|i| v[i * n + m]));
            projections.extend_from_slice(&w[m * n..(m + 1) * n]);
        }
        Ok(QuiescentModel {
            n,
            x_inf0,
            x_inf_per_amp,
            tau: dynamic.iter().map(|&m| mu[m]).collect(),
            shapes,
            projections,
            x_ref: x_ref.to_vec(),
            q_ref: q_ref.to_vec(),
            c: jq.to_vec(),
        })
    }

    /// Time constants of the dynamic modes (s).
    pub fn time_constants(&self) -> &[f64] {
        &self.tau
    }

    pub fn scratch(&self) -> QuiescentScratch {
        let r = self.tau.len();
        QuiescentScratch {
            x_inf: vec![0.0; self.n],
            coefficients: vec![0.0; r],
            decay: vec![0.0; r],
            decay_time: f64::NAN,
            spare: vec![0.0; r],
            spare_time: f64::NAN,
        }
    }

    /// Size `s` for this model (allocates only the first time).
    pub fn fit_scratch(&self, s: &mut QuiescentScratch) {
        if s.x_inf.len() != self.n || s.decay.len() != self.tau.len() {
            *s = self.scratch();
        }
    }

    /// Advance x (and its charges q) at constant `input` by `h`, or less
    /// where a bound reaches its leave level first. Returns the time
    /// advanced and whether it stopped at a bound.
    pub fn advance(
        &self,
        x: &mut [f64],
        q: &mut [f64],
        input: f64,
        h: f64,
        bounds: &[QuiescentBound],
        s: &mut QuiescentScratch,
    ) -> (f64, bool) {
        sized!(self, |n, r| self
            .advance_sized(n, r, x, q, input, h, bounds, s))
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn advance_sized(
        &self,
        n: usize,
        r: usize,
        x: &mut [f64],
        q: &mut [f64],
        input: f64,
        h: f64,
        bounds: &[QuiescentBound],
        s: &mut QuiescentScratch,
    ) -> (f64, bool) {
        let (x, q) = (&mut x[..n], &mut q[..n]);
        let x_inf = |i: usize| self.x_inf0[i] + input * self.x_inf_per_amp[i];
        for i in 0..n {
            s.x_inf[i] = x_inf(i);
        }
        // (From x_inf(i) again, not from s.x_inf: reading back what was
        // just stored, a value at a time, stalls the vector loads.)
        // (Sums as plain loops, here and below: with n and r constant they
        // unroll, where `Iterator::sum` stayed a call per sum.)
        for k in 0..r {
            let w = &self.projections[k * n..(k + 1) * n];
            let mut c = 0.0;
            for i in 0..n {
                c += w[i] * (x[i] - x_inf(i));
            }
            s.coefficients[k] = c;
        }
        // e^{−t_end/τ_k}: the bounds' check at the end of the step and the
        // new state share it; it is recomputed only where a bound stops
        // the step early.
        let mut t_end = h;
        let mut stopped = false;
        self.decay_to(t_end, s);
        for b in bounds {
            if let Some(t) = self.crossing(r, b, t_end, s) {
                t_end = t;
                stopped = true;
                self.decay_to(t_end, s);
            }
        }
        for i in 0..n {
            let mut modes = 0.0;
            for k in 0..r {
                modes += s.coefficients[k] * s.decay[k] * self.shapes[k * n + i];
            }
            x[i] = s.x_inf[i] + modes;
        }
        for i in 0..n {
            let row = &self.c[i * n..(i + 1) * n];
            let mut charge = 0.0;
            for j in 0..n {
                charge += row[j] * (x[j] - self.x_ref[j]);
            }
            q[i] = self.q_ref[i] + charge;
        }
        (t_end, stopped)
    }

    /// Whether x lies within `within(i, x_i)` of the steady state x∞ of the
    /// input of the last [`QuiescentModel::advance`] (in `s`) in every unknown.
    pub fn at_rest(
        &self,
        x: &[f64],
        s: &QuiescentScratch,
        within: impl Fn(usize, f64) -> f64,
    ) -> bool {
        x.iter()
            .zip(&s.x_inf)
            .enumerate()
            .all(|(i, (&x, &x_inf))| (x - x_inf).abs() <= within(i, x_inf))
    }

    /// a·x∞ for the input of the last [`QuiescentModel::advance`] (in `s`).
    #[inline(always)]
    pub fn steady_value(&self, a: &[f64], s: &QuiescentScratch) -> f64 {
        // (A plain loop: it unrolls where `a` has the model's constant size.)
        let mut sum = 0.0;
        for (a, x) in a.iter().zip(&s.x_inf) {
            sum += a * x;
        }
        sum
    }

    /// ∫ a·x dt over the step `advance` just took (length `t_end`, with its
    /// coefficients and decays still in `s`): a·x∞·T + Σ_k c_k (a·v_k)
    /// τ_k (1 − e^{−T/τ_k}). The energy the sources deliver is such a
    /// linear functional of the state.
    pub fn integral(&self, a: &[f64], t_end: f64, s: &QuiescentScratch) -> f64 {
        sized!(self, |n, r| self.integral_sized(n, r, a, t_end, s))
    }

    #[inline(always)]
    fn integral_sized(
        &self,
        n: usize,
        r: usize,
        a: &[f64],
        t_end: f64,
        s: &QuiescentScratch,
    ) -> f64 {
        let a = &a[..n];
        let steady = self.steady_value(a, s);
        let mut modes = 0.0;
        for k in 0..r {
            let v = &self.shapes[k * n..(k + 1) * n];
            let mut av = 0.0;
            for i in 0..n {
                av += a[i] * v[i];
            }
            modes += s.coefficients[k] * av * self.tau[k] * (1.0 - s.decay[k]);
        }
        steady * t_end + modes
    }

    /// `s.decay[k] = e^{−t/τ_k}`.
    fn decay_to(&self, t: f64, s: &mut QuiescentScratch) {
        if t == s.decay_time {
            return;
        }
        if t == s.spare_time {
            // Steps of two lengths alternate (whole network steps, and the
            // rest of a step after a replay): keep both.
            std::mem::swap(&mut s.decay, &mut s.spare);
            std::mem::swap(&mut s.decay_time, &mut s.spare_time);
            return;
        }
        std::mem::swap(&mut s.decay, &mut s.spare);
        s.spare_time = s.decay_time;
        s.decay_time = t;
        for (d, tau) in s.decay.iter_mut().zip(&self.tau) {
            *d = decay(t / tau);
        }
    }

    /// The bound's difference at mode k: (v_k[plus] − v_k[minus]).
    #[inline]
    fn shape_of(&self, b: &QuiescentBound, k: usize) -> f64 {
        let v = &self.shapes[k * self.n..(k + 1) * self.n];
        b.plus.map_or(0.0, |i| v[i]) - b.minus.map_or(0.0, |i| v[i])
    }

    /// The earliest time in (0, h] where the bound exceeds its leave level
    /// (`s.decay` holds the decay factors at h).
    #[inline(always)]
    fn crossing(&self, r: usize, b: &QuiescentBound, h: f64, s: &QuiescentScratch) -> Option<f64> {
        let steady = b.value(&s.x_inf);
        let level = b.leave;
        let value = |t: f64| -> f64 {
            steady
                + (0..r)
                    .map(|k| s.coefficients[k] * self.shape_of(b, k) * decay(t / self.tau[k]))
                    .sum::<f64>()
        };
        // The modes that move this bound (no allocation: count them).
        // Terms below 1e-12 of the bound's scale are round-off couplings.
        let negligible = 1e-12 * level.abs().max(steady.abs());
        let mut moving = 0;
        let mut single = (0.0, 1.0);
        let mut at_h = steady;
        // Each term a·e^{−t/τ} is monotone, so its largest value over
        // [0, h] is at an end: their sum bounds b(t) from above.
        let mut ceiling = steady;
        for k in 0..r {
            let a = s.coefficients[k] * self.shape_of(b, k);
            at_h += a * s.decay[k];
            ceiling += a.max(a * s.decay[k]);
            if a.abs() > negligible {
                moving += 1;
                single = (a, self.tau[k]);
            }
        }
        match moving {
            0 => None,
            _ if ceiling <= level => None,
            // One mode: b(t) = steady + a·e^{−t/τ}, monotone.
            1 => {
                if at_h <= level {
                    return None;
                }
                let (a, tau) = single;
                let ratio = (level - steady) / a;
                if ratio > 0.0 {
                    Some((-tau * crate::math::ln(ratio)).clamp(0.0, h))
                } else {
                    Some(0.0)
                }
            }
            _ => {
                let mut lo = 0.0;
                let mut hi = None;
                for i in 1..=SAMPLES {
                    let t = h * i as f64 / SAMPLES as f64;
                    if value(t) > level {
                        hi = Some(t);
                        break;
                    }
                    lo = t;
                }
                let mut hi = hi?;
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if value(mid) > level {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                Some(lo)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RC low-pass at node 0 (C = 1 nF, R = 1 MΩ to ground): τ = 1 ms.
    fn rc() -> QuiescentModel {
        QuiescentModel::build(&[0.0], &[0.0], &[0.0], &[1e-6], &[1e-9], 0).unwrap()
    }

    #[test]
    fn rc_step_is_exact() {
        let m = rc();
        assert!((m.time_constants()[0] - 1e-3).abs() < 1e-15);
        let mut s = m.scratch();
        let (mut x, mut q) = (vec![0.0], vec![0.0]);
        let (t, stopped) = m.advance(&mut x, &mut q, 2e-6, 1e-3, &[], &mut s);
        assert_eq!((t, stopped), (1e-3, false));
        let want = 2.0 * (1.0 - (-1.0f64).exp());
        assert!((x[0] - want).abs() < 1e-12, "{} vs {want}", x[0]);
        assert!((q[0] - 1e-9 * want).abs() < 1e-21);
    }

    #[test]
    fn stops_where_a_bound_is_reached() {
        let m = rc();
        let mut s = m.scratch();
        let (mut x, mut q) = (vec![0.0], vec![0.0]);
        let bound = QuiescentBound {
            plus: Some(0),
            minus: None,
            enter: 0.9,
            leave: 1.0,
        };
        let (t, stopped) = m.advance(&mut x, &mut q, 2e-6, 5e-3, &[bound], &mut s);
        // 2(1 − e^{−t/τ}) = 1 at t = τ ln 2.
        assert!(stopped);
        assert!((t - 1e-3 * 2f64.ln()).abs() < 1e-15);
        assert!((x[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn oscillatory_circuits_are_refused() {
        // Unknowns: node voltage v, inductor current i (L = 1 mH, C = 1 µF).
        let jf = [0.0, 1.0, -1.0, 0.0];
        let jq = [1e-6, 0.0, 0.0, 1e-3];
        let err = QuiescentModel::build(&[0.0; 2], &[0.0; 2], &[0.0; 2], &jf, &jq, 0);
        assert!(err.is_err());
    }
}
