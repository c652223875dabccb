//! The volatile threshold-switching memristor (TSM, `.MODEL m MEMRISTOR
//! LEVEL=101`), exactly as devices.md §2.2:
//!
//! ```text
//! i     = v G(x),       G(x) = 1/R_off + (1/R_on − 1/R_off) x^P
//! Vt(x) = V_on − (V_on − V_off) x
//! s     = σ((|v| − Vt(x)) / V_s)
//! dx/dt = s (1 − x)/τ_on − (1 − s) x/τ_off
//! ```
//!
//! The state x is an MNA unknown. Its row is scaled by κ = min(τ_on, τ_off)
//! (κ dx/dt − κ f = 0) so that its entries are O(1) next to the KCL rows.

use super::*;

/// Model parameters (SI units).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TsmModel {
    pub ron: f64,
    pub roff: f64,
    pub von: f64,
    pub voff: f64,
    pub ton: f64,
    pub toff: f64,
    pub vs: f64,
    pub p: f64,
}

impl Default for TsmModel {
    /// devices.md §2.3 defaults.
    fn default() -> Self {
        TsmModel {
            ron: 100e3,
            roff: 10e6,
            von: 20e-3,
            voff: 2e-3,
            ton: 1e-6,
            toff: 1e-6,
            vs: 0.25e-3,
            p: 4.0,
        }
    }
}

/// Largest state x of a quiescent device (see `Device::quiescent`): its
/// x^P conductance is then below 1e-12 of the ON conductance, and its
/// threshold has dropped by 0.1 % of V_on − V_off.
pub const QUIESCENT_STATE: f64 = 1e-3;

/// Smoothing of |v| at the origin (V); keeps d|v|/dv continuous for Newton.
pub const ABS_SMOOTHING_V: f64 = 1e-6;

/// Everything the solver needs at one (v, x): current, rates and slopes.
#[derive(Clone, Copy, Debug)]
pub struct TsmEval {
    pub i: f64,
    pub di_dv: f64,
    pub di_dx: f64,
    /// dx/dt
    pub f: f64,
    pub df_dv: f64,
    pub df_dx: f64,
}

/// σ(u) = 1/(1 + e^(−u)) = ½(1 + tanh(u/2)). Beyond |u| = 44 it is 0 or 1
/// in f64 (as glibc's tanh makes it there). Inside, one inlined `exp` (see
/// [`crate::math`]) costs a fraction of `tanh`, which calls `expm1`: a MIF2
/// relaxing after a spike keeps its reset memristor within a few mV of its
/// threshold, where `tanh` and `expm1` took a third of a circuit network's
/// time.
#[inline]
pub fn sigmoid(u: f64) -> f64 {
    if u > 44.0 {
        1.0
    } else if u < -44.0 {
        0.0
    } else {
        1.0 / (1.0 + crate::math::exp(-u))
    }
}

impl TsmModel {
    /// Check the parameters; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("RON", self.ron),
            ("ROFF", self.roff),
            ("TON", self.ton),
            ("TOFF", self.toff),
            ("VS", self.vs),
            ("P", self.p),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("{name} must be positive and finite, got {v}"));
            }
        }
        if !(self.voff >= 0.0 && self.von > self.voff) {
            return Err(format!(
                "need 0 <= VOFF < VON, got VON={} VOFF={}",
                self.von, self.voff
            ));
        }
        Ok(())
    }

    /// Conductance at state x.
    #[inline]
    pub fn conductance(&self, x: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        1.0 / self.roff + (1.0 / self.ron - 1.0 / self.roff) * x.powf(self.p)
    }

    /// Current, state rate and their derivatives at device voltage v, state x.
    #[inline]
    pub fn eval(&self, v: f64, x: f64) -> TsmEval {
        let x = x.clamp(0.0, 1.0);
        let dg = 1.0 / self.ron - 1.0 / self.roff;
        let xp1 = if self.p == 4.0 {
            x * x * x
        } else {
            x.powf(self.p - 1.0)
        };
        let g = 1.0 / self.roff + dg * xp1 * x;
        let dg_dx = self.p * dg * xp1;
        let av = (v * v + ABS_SMOOTHING_V * ABS_SMOOTHING_V).sqrt();
        let vt = self.von - (self.von - self.voff) * x;
        let u = (av - vt) / self.vs;
        let s = sigmoid(u);
        let ds_du = s * (1.0 - s);
        let f = s * (1.0 - x) / self.ton - (1.0 - s) * x / self.toff;
        let df_ds = (1.0 - x) / self.ton + x / self.toff;
        let du_dv = (v / av) / self.vs;
        let du_dx = (self.von - self.voff) / self.vs;
        TsmEval {
            i: v * g,
            di_dv: g,
            di_dx: v * dg_dx,
            f,
            df_dv: df_ds * ds_du * du_dv,
            df_dx: -s / self.ton - (1.0 - s) / self.toff + df_ds * ds_du * du_dx,
        }
    }

    /// The row scale κ of the state equation.
    pub fn state_scale(&self) -> f64 {
        self.ton.min(self.toff)
    }
}

#[derive(Clone, Debug)]
pub struct Memristor {
    pub name: String,
    pub a: Node,
    pub b: Node,
    pub model: TsmModel,
    pub x0: f64,
    pub state: usize,
    slots: Slots2,
    s_ax: Slot,
    s_bx: Slot,
    s_xa: Slot,
    s_xb: Slot,
    s_xx: Slot,
    /// The quiescent region's (enter, leave) levels of the device voltage,
    /// from the model at construction; None where the device has none.
    quiescent_levels: Option<(f64, f64)>,
}

/// How far below its fold (in V_s) a device leaves the quiescent region.
/// There the fast MIF memristor holds x ≈ 0.005 and relaxes at 0.64/τ_on
/// (at the fold, x ≈ 0.014 and the rate is 0). The closer, the fewer
/// neurons driven just below the rheobase leave the exact step for the
/// integrator: 0.3 instead of 1 cut the integrator's steps in the MNIST
/// network by a third, with spike times against the general engine
/// unchanged (tests/neuron_kernel.rs).
const FOLD_MARGIN: f64 = 0.3;

/// Where the OFF state ends: for small x the state follows x ≈ r·s with
/// r = τ_off/τ_on, and with the threshold feedback the fold of that branch
/// lies V_s·(ln(ΔV/V_s) + ln r + 1) below V_on (ΔV = V_on − V_off). The
/// margin below the fold is `FOLD_MARGIN` V_s, plus ln r for a slow
/// device: the quiescent model drops the small state the device holds
/// there, x ≈ (V_s/ΔV)·e^{-1.3}/r, which a slow device remembers; this keeps
/// it near 1.3e-6 for MIF2's M2. A fast device forgets it within a few τ_on
/// once the integrator takes over. The region is entered 2·V_s below where
/// it is left.
fn quiescent_levels(m: &TsmModel) -> Option<(f64, f64)> {
    let dv = m.von - m.voff;
    let memory = (m.toff / m.ton).ln();
    let fold = m.vs * ((dv / m.vs).max(1.0).ln() + memory + 1.0);
    let margin = m.vs * (FOLD_MARGIN + memory.max(0.0));
    let leave = m.von - dv * QUIESCENT_STATE - fold - margin;
    let enter = leave - 2.0 * m.vs;
    (enter > 0.0).then_some((enter, leave))
}

impl Memristor {
    pub fn new(name: String, a: Node, b: Node, model: TsmModel, x0: f64) -> Self {
        Memristor {
            quiescent_levels: quiescent_levels(&model),
            name,
            a,
            b,
            model,
            x0,
            state: 0,
            slots: Slots2::default(),
            s_ax: None,
            s_bx: None,
            s_xa: None,
            s_xb: None,
            s_xx: None,
        }
    }
}

impl Device for Memristor {
    fn name(&self) -> &str {
        &self.name
    }
    fn extra_unknowns(&self) -> Vec<(&'static str, UnknownKind)> {
        vec![("", UnknownKind::State)]
    }
    fn bind_extra(&mut self, first: usize) {
        self.state = first;
    }
    fn setup(&mut self, p: &mut dyn Pattern) {
        let xs = Some(self.state);
        self.slots = Slots2::new(p, self.a, self.b);
        self.s_ax = p.entry(self.a, xs);
        self.s_bx = p.entry(self.b, xs);
        self.s_xa = p.entry(xs, self.a);
        self.s_xb = p.entry(xs, self.b);
        self.s_xx = p.entry(xs, xs);
    }
    fn eval(&self, ctx: &EvalCtx, s: &mut Stamp) {
        let v = ctx.v(self.a) - ctx.v(self.b);
        let x = ctx.x[self.state];
        let e = self.model.eval(v, x);
        s.f(self.a, e.i);
        s.f(self.b, -e.i);
        self.slots.conductance(s, e.di_dv);
        s.jf(self.s_ax, e.di_dx);
        s.jf(self.s_bx, -e.di_dx);
        let k = self.model.state_scale();
        let xs = Some(self.state);
        s.q(xs, k * x);
        s.jq(self.s_xx, k);
        s.f(xs, -k * e.f);
        s.jf(self.s_xa, -k * e.df_dv);
        s.jf(self.s_xb, k * e.df_dv);
        s.jf(self.s_xx, -k * e.df_dx);
    }
    fn is_linear(&self) -> bool {
        false
    }
    fn quiescent(&self, x: &[f64], bounds: &mut Vec<QuiescentBound>) -> bool {
        let Some((enter, leave)) = self.quiescent_levels else {
            return false;
        };
        if x[self.state] > QUIESCENT_STATE {
            return false;
        }
        for (plus, minus) in [(self.a, self.b), (self.b, self.a)] {
            bounds.push(QuiescentBound {
                plus,
                minus,
                enter,
                leave,
            });
        }
        true
    }
    fn limit(&self, x: &[f64], dx: &mut [f64]) {
        // The rates vanish at 0 and 1, so the solution never leaves [0, 1];
        // a Newton iterate that would is pulled back to the bound.
        let i = self.state;
        dx[i] = (x[i] + dx[i]).clamp(0.0, 1.0) - x[i];
    }
    fn power(&self, ctx: &EvalCtx) -> f64 {
        let v = ctx.v(self.a) - ctx.v(self.b);
        v * v * self.model.conductance(ctx.x[self.state])
    }
    fn state_unknown(&self) -> Option<usize> {
        Some(self.state)
    }
    fn initial_condition(&self, x: &mut [f64]) {
        x[self.state] = self.x0;
    }
    fn dc_paths(&self) -> Vec<(Node, Node)> {
        vec![(self.a, self.b)]
    }
    fn terminals(&self) -> Vec<Node> {
        vec![self.a, self.b]
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobian_matches_finite_differences() {
        let m = TsmModel::default();
        for &(v, x) in &[
            (0.0185, 0.01),
            (0.019, 0.3),
            (-0.01, 0.7),
            (0.003, 0.9),
            (0.0201, 0.5),
        ] {
            let e = m.eval(v, x);
            let h = 1e-9;
            let ev = |v, x| m.eval(v, x);
            let num_di_dv = (ev(v + h, x).i - ev(v - h, x).i) / (2.0 * h);
            let num_df_dv = (ev(v + h, x).f - ev(v - h, x).f) / (2.0 * h);
            let num_di_dx = (ev(v, x + h).i - ev(v, x - h).i) / (2.0 * h);
            let num_df_dx = (ev(v, x + h).f - ev(v, x - h).f) / (2.0 * h);
            // Central differences at h = 1e-9 carry a truncation error of
            // ~2e-4 relative where the sigmoid is steepest.
            // Absolute floors: currents are ~1e-7 A, rates ~1e6 /s (whose
            // differences at h = 1e-9 carry ~1e-6 of round-off).
            let close =
                |a: f64, b: f64, floor: f64| (a - b).abs() <= 1e-3 * a.abs().max(b.abs()) + floor;
            assert!(
                close(e.di_dv, num_di_dv, 1e-15),
                "di/dv {} vs {}",
                e.di_dv,
                num_di_dv
            );
            assert!(
                close(e.df_dv, num_df_dv, 1e-3),
                "df/dv {} vs {}",
                e.df_dv,
                num_df_dv
            );
            assert!(
                close(e.di_dx, num_di_dx, 1e-15),
                "di/dx {} vs {}",
                e.di_dx,
                num_di_dx
            );
            assert!(
                close(e.df_dx, num_df_dx, 1e-3),
                "df/dx {} vs {}",
                e.df_dx,
                num_df_dx
            );
        }
    }

    #[test]
    fn sigmoid_is_the_tanh_form() {
        // The tanh form is accurate to a few ulps of 1, not relatively.
        for i in -600..=600 {
            let u = i as f64 * 0.1;
            let want = 0.5 * (1.0 + (0.5 * u).tanh());
            assert!(
                (sigmoid(u) - want).abs() <= 4e-16,
                "σ({u}) = {} vs {want}",
                sigmoid(u)
            );
        }
        assert_eq!((sigmoid(45.0), sigmoid(-45.0)), (1.0, 0.0));
    }

    #[test]
    fn bistable_between_thresholds() {
        let m = TsmModel::default();
        // Between V_off and V_on both x≈0 and x≈1 are attracting.
        assert!(m.eval(0.010, 0.01).f < 0.0);
        assert!(m.eval(0.010, 0.99).f > 0.0);
        // Above V_on only ON, below V_off only OFF.
        assert!(m.eval(0.021, 0.01).f > 0.0);
        assert!(m.eval(0.001, 0.99).f < 0.0);
    }

    #[test]
    fn validate_rejects_bad_thresholds() {
        let m = TsmModel {
            von: 1e-3,
            voff: 2e-3,
            ..TsmModel::default()
        };
        assert!(m.validate().unwrap_err().contains("VOFF"));
    }

    /// The OFF branch's state at device voltage v (the stable fixed point
    /// reached from x = 0) and its relaxation rate −∂f/∂x there; None past
    /// the fold, where the branch no longer exists.
    fn off_branch(m: &TsmModel, v: f64) -> Option<(f64, f64)> {
        let mut x = 0.0;
        for _ in 0..200 {
            let e = m.eval(v, x);
            if e.df_dx >= 0.0 {
                return None;
            }
            let next = x - e.f / e.df_dx;
            if !(0.0..0.5).contains(&next) {
                return None;
            }
            if (next - x).abs() <= 1e-15 {
                return Some((next, -m.eval(v, next).df_dx));
            }
            x = next;
        }
        None
    }

    /// The quiescent region ends just below the fold of the OFF branch
    /// (FOLD_MARGIN V_s, plus ln r for a slow device), where the fast MIF
    /// memristor still relaxes at more than half its rate 1/τ_on and the
    /// slow MIF2 reset memristor holds a state the quiescent model may drop.
    #[test]
    fn quiescent_region_ends_just_below_the_fold() {
        let mif = TsmModel::default();
        let mif2_reset = TsmModel {
            roff: 1e9,
            von: 29.5e-3,
            voff: 5e-3,
            toff: 2e-3,
            ..TsmModel::default()
        };
        for (m, max_state) in [(mif, 0.006), (mif2_reset, 2e-6)] {
            let (enter, leave) = quiescent_levels(&m).unwrap();
            assert!((leave - enter - 2.0 * m.vs).abs() < 1e-15);
            let (x, rate) = off_branch(&m, leave).expect("the OFF branch at the leave level");
            assert!(x <= max_state, "state {x} at the leave level");
            assert!(
                rate >= 0.5 / m.toff.max(m.ton),
                "relaxation rate {rate} /s at the leave level"
            );
            // The fold, found by walking up in steps of V_s/100.
            let fold = (1..)
                .map(|k| leave + k as f64 * m.vs / 100.0)
                .find(|&v| off_branch(&m, v).is_none())
                .unwrap();
            // (The state's bound moves the level down by ΔV·1e-3.)
            let margin = (fold - leave) / m.vs - (m.toff / m.ton).ln().max(0.0);
            assert!(
                (FOLD_MARGIN..FOLD_MARGIN + 0.3).contains(&margin),
                "the fold lies {margin} V_s (plus ln r) above the leave level"
            );
        }
    }
}
