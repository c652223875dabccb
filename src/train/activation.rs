//! Activations: ReLU, Nengo's soft-LIF, and the measured rate curve of a
//! neuron circuit, each with its derivative, applied over slices.
//!
//! Scalars are evaluated in f64 (the rate formulas take logarithms and
//! exponentials near their limits) and stored as f32.

use super::{Result, TrainError};
use serde::{Deserialize, Serialize};

/// The nonlinearity applied after each hidden layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    SoftLif(SoftLif),
    RateCurve(RateCurve),
}

impl Activation {
    /// Value and derivative at one pre-activation `z`.
    pub fn eval(&self, z: f64) -> (f64, f64) {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    (z, 1.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Activation::SoftLif(s) => s.eval(z),
            Activation::RateCurve(c) => c.eval(z),
        }
    }

    /// `out[i] = f(z[i])`, and `deriv[i] = f'(z[i])` when asked.
    pub fn forward_slice(&self, z: &[f32], out: &mut [f32], deriv: Option<&mut [f32]>) {
        assert_eq!(z.len(), out.len());
        match (self, deriv) {
            // ReLU is the common case: keep it a tight loop the compiler vectorises.
            (Activation::Relu, None) => {
                for (o, &x) in out.iter_mut().zip(z) {
                    *o = x.max(0.0);
                }
            }
            (Activation::Relu, Some(d)) => {
                assert_eq!(d.len(), z.len());
                for ((o, g), &x) in out.iter_mut().zip(d.iter_mut()).zip(z) {
                    let on = x > 0.0;
                    *o = if on { x } else { 0.0 };
                    *g = if on { 1.0 } else { 0.0 };
                }
            }
            (_, None) => {
                for (o, &x) in out.iter_mut().zip(z) {
                    *o = self.eval(x as f64).0 as f32;
                }
            }
            (_, Some(d)) => {
                assert_eq!(d.len(), z.len());
                for ((o, g), &x) in out.iter_mut().zip(d.iter_mut()).zip(z) {
                    let (v, dv) = self.eval(x as f64);
                    *o = v as f32;
                    *g = dv as f32;
                }
            }
        }
    }

    /// Check the parameters (a deserialised model may carry anything).
    pub fn validate(&self) -> Result<()> {
        match self {
            Activation::Relu => Ok(()),
            Activation::SoftLif(s) => s.validate(),
            Activation::RateCurve(_) => Ok(()), // validated on construction
        }
    }
}

/// The activation as the training layers apply it: ReLU directly; soft-LIF
/// and rate curves through a [`Lut`] when the table reproduces the exact
/// function to 1e-4 of its range (else exactly, in f64).
#[derive(Clone, Debug)]
pub struct ActivationKernel {
    pub activation: Activation,
    lut: Option<Lut>,
}

impl ActivationKernel {
    pub fn new(activation: Activation) -> Self {
        let lut = match activation {
            Activation::Relu => None,
            _ => Lut::build(&activation),
        };
        Self { activation, lut }
    }

    /// Whether the tabulated path is used.
    pub fn is_tabulated(&self) -> bool {
        self.lut.is_some()
    }

    /// `x[i] = f(x[i])`, and `deriv[i] = f'(x[i])` when asked.
    pub fn apply_in_place(&self, x: &mut [f32], deriv: Option<&mut [f32]>) {
        match (&self.activation, &self.lut, deriv) {
            (Activation::Relu, _, None) => {
                for v in x.iter_mut() {
                    *v = v.max(0.0);
                }
            }
            (Activation::Relu, _, Some(d)) => {
                assert_eq!(d.len(), x.len());
                for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                    let on = *v > 0.0;
                    *g = if on { 1.0 } else { 0.0 };
                    *v = if on { *v } else { 0.0 };
                }
            }
            (a, lut, deriv) => {
                let exact = |z: f32| {
                    let (v, dv) = a.eval(z as f64);
                    (v as f32, dv as f32)
                };
                match (lut, deriv) {
                    (Some(t), Some(d)) => {
                        assert_eq!(d.len(), x.len());
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            (*v, *g) = t.eval(*v).unwrap_or_else(|| exact(*v));
                        }
                    }
                    (Some(t), None) => {
                        for v in x.iter_mut() {
                            *v = t.eval(*v).unwrap_or_else(|| exact(*v)).0;
                        }
                    }
                    (None, Some(d)) => {
                        assert_eq!(d.len(), x.len());
                        for (v, g) in x.iter_mut().zip(d.iter_mut()) {
                            (*v, *g) = exact(*v);
                        }
                    }
                    (None, None) => {
                        for v in x.iter_mut() {
                            *v = exact(*v).0;
                        }
                    }
                }
            }
        }
    }
}

/// A smooth activation tabulated on a uniform grid in z: cubic Hermite
/// interpolation of the exact values and slopes at the nodes. The value and
/// derivative returned are those of the interpolant itself, so they stay
/// consistent (finite differences of the value match the derivative).
/// Outside the grid the caller evaluates exactly.
#[derive(Clone, Debug)]
pub struct Lut {
    z_min: f32,
    inv_h: f32,
    intervals: usize,
    /// Per node: value, and slope times the node spacing (adjacent in memory).
    nodes: Vec<[f32; 2]>,
}

impl Lut {
    const Z_MIN: f64 = -8.0;
    const Z_MAX: f64 = 8.0;
    /// Grid sizes tried in turn: the coarse one (16 KiB) stays in L1 cache
    /// next to the GEMM working set; the fine one serves steep curves.
    const INTERVALS: [usize; 2] = [2 * 1024, 16 * 1024];

    /// The smallest table for `a` that is accurate to 1e-4 of the
    /// activation's range (checked at every interval midpoint), if any.
    pub fn build(a: &Activation) -> Option<Self> {
        Self::INTERVALS.iter().find_map(|&n| Self::build_with(a, n))
    }

    fn build_with(a: &Activation, n: usize) -> Option<Self> {
        let h = (Self::Z_MAX - Self::Z_MIN) / n as f64;
        let nodes: Vec<(f64, f64)> = (0..=n)
            .map(|k| a.eval(Self::Z_MIN + k as f64 * h))
            .collect();
        let lut = Self {
            z_min: Self::Z_MIN as f32,
            inv_h: (1.0 / h) as f32,
            intervals: n,
            nodes: nodes
                .iter()
                .map(|p| [p.0 as f32, (p.1 * h) as f32])
                .collect(),
        };
        let range = nodes
            .iter()
            .map(|p| p.0.abs())
            .fold(0.0, f64::max)
            .max(1e-30);
        let worst = (0..n)
            .map(|k| {
                let z = Self::Z_MIN + (k as f64 + 0.5) * h;
                let exact = a.eval(z).0;
                let approx = lut.hermite(k, 0.5).0 as f64;
                (exact - approx).abs()
            })
            .fold(0.0, f64::max);
        (worst <= 1e-4 * range).then_some(lut)
    }

    #[inline(always)]
    fn hermite(&self, k: usize, t: f32) -> (f32, f32) {
        let [[y0, m0], [y1, m1]] = [self.nodes[k], self.nodes[k + 1]];
        let (t2, t3) = (t * t, t * t * t);
        let value = (2.0 * t3 - 3.0 * t2 + 1.0) * y0
            + (t3 - 2.0 * t2 + t) * m0
            + (3.0 * t2 - 2.0 * t3) * y1
            + (t3 - t2) * m1;
        let slope = (6.0 * t2 - 6.0 * t) * (y0 - y1)
            + (3.0 * t2 - 4.0 * t + 1.0) * m0
            + (3.0 * t2 - 2.0 * t) * m1;
        (value, slope * self.inv_h)
    }

    /// Value and derivative at `z`, or `None` outside the table.
    #[inline(always)]
    pub fn eval(&self, z: f32) -> Option<(f32, f32)> {
        let u = (z - self.z_min) * self.inv_h;
        if !(u >= 0.0 && u < self.intervals as f32) {
            return None;
        }
        let k = (u as usize).min(self.intervals - 1);
        Some(self.hermite(k, u - k as f32))
    }
}

/// `ln(1 + e^u)` without overflow.
fn softplus(u: f64) -> f64 {
    if u > 35.0 {
        u
    } else if u < -35.0 {
        u.exp()
    } else {
        u.exp().ln_1p()
    }
}

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// Soft-LIF (Hunsberger & Eliasmith 2015; Nengo's `SoftLIFRate`): the LIF
/// steady-state rate `r = amplitude / (τ_ref + τ_rc · ln(1 + 1/j))`, with
/// the excess current over threshold smoothed as `j = σ · softplus((J − 1)/σ)`.
/// Currents are normalised to the threshold current (v_th = 1) and the input
/// current is `J = 1 + z`, so `z = 0` is the firing threshold, as ReLU's kink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoftLif {
    /// Membrane time constant (s).
    pub tau_rc_s: f64,
    /// Refractory period (s).
    pub tau_ref_s: f64,
    /// Smoothing width, in units of the threshold current.
    pub sigma: f64,
    /// Output per hertz: keeps activations O(1).
    pub amplitude: f64,
}

impl Default for SoftLif {
    /// τ_rc = 20 ms, τ_ref = 2 ms, σ = 0.05, and an amplitude that makes the
    /// hard LIF rate at z = 1 (63 Hz) equal 1.
    fn default() -> Self {
        let (tau_rc_s, tau_ref_s) = (0.02, 0.002);
        Self::new(tau_rc_s, tau_ref_s, 0.05)
    }
}

impl SoftLif {
    /// Soft-LIF with the amplitude chosen so that the hard LIF rate at z = 1 is 1.
    pub fn new(tau_rc_s: f64, tau_ref_s: f64, sigma: f64) -> Self {
        let rate_at_one = 1.0 / (tau_ref_s + tau_rc_s * 2f64.ln());
        Self {
            tau_rc_s,
            tau_ref_s,
            sigma,
            amplitude: 1.0 / rate_at_one,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !(ok(self.tau_rc_s) && self.tau_ref_s.is_finite() && self.tau_ref_s >= 0.0)
            || !ok(self.sigma)
            || !ok(self.amplitude)
        {
            return Err(TrainError::Activation(format!(
                "soft-LIF needs tau_rc_s > 0, tau_ref_s >= 0, sigma > 0 and amplitude > 0, got {self:?}"
            )));
        }
        Ok(())
    }

    /// Value and derivative at `z`.
    pub fn eval(&self, z: f64) -> (f64, f64) {
        let u = z / self.sigma;
        let j = self.sigma * softplus(u);
        if j <= 0.0 || !j.is_finite() {
            return (0.0, 0.0);
        }
        let log_term = (1.0 / j).ln_1p();
        let den = self.tau_ref_s + self.tau_rc_s * log_term;
        let rate = self.amplitude / den;
        // d/dj ln(1 + 1/j) = −1/(j(j+1)); dj/dz = sigmoid(u).
        let d_rate = self.amplitude * self.tau_rc_s / (den * den) * sigmoid(u) / (j * (1.0 + j));
        (rate, d_rate)
    }
}

/// What the rate curve does beyond its last measured current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Extrapolation {
    /// Hold the last measured rate (the circuit is not trusted beyond the data).
    #[default]
    Saturate,
    /// Continue along the slope of the last measured interval.
    Linear,
}

/// The stored, serialised description of a rate curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateCurveSpec {
    /// Input current of each sample (A), strictly increasing.
    pub current_a: Vec<f64>,
    /// Firing rate of each sample (Hz), non-decreasing, starting at 0.
    pub rate_hz: Vec<f64>,
    /// Current map: `I = gain_a · z + offset_a`.
    pub gain_a: f64,
    pub offset_a: f64,
    /// Activation per hertz.
    pub output_scale: f64,
    /// Softplus width of the onset (A); 0 keeps the hard onset.
    pub smoothing_a: f64,
    #[serde(default)]
    pub extrapolation: Extrapolation,
}

/// A measured f–I curve used as an activation.
///
/// Pre-activation `z` maps to current `I = gain_a · z + offset_a`. With the
/// rheobase `I_rh` (the last zero-rate sample before the rate leaves 0) and
/// `s = smoothing_a`, the onset is smoothed as soft-LIF does:
/// `I_eff = I_rh + s · softplus((I − I_rh)/s)`. The rate `r(I_eff)` is the
/// monotone piecewise-cubic Hermite interpolant (Fritsch–Carlson, with
/// Fritsch–Butland weighted harmonic-mean slopes, as SciPy's `PchipInterpolator`;
/// end slopes are the end secants) through the samples from the rheobase up.
/// It is C¹ and never overshoots the data. Beyond the last sample it saturates
/// (a kink where the slope drops to 0, like ReLU's) or continues linearly, C¹
/// ([`Extrapolation`]). The output is
/// `output_scale · r(I_eff)`; its derivative is exact (chain rule through the
/// softplus and the Hermite cubic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RateCurveSpec", into = "RateCurveSpec")]
pub struct RateCurve {
    spec: RateCurveSpec,
    /// Samples from the rheobase up (the first one has rate 0).
    knots_a: Vec<f64>,
    knots_hz: Vec<f64>,
    /// Hermite slopes at the knots (Hz/A).
    slopes: Vec<f64>,
}

/// Options for [`RateCurve::fit`], which picks the current map.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveFit {
    /// z = 1 maps to the current where the rate first reaches this fraction of
    /// the highest measured rate.
    pub top_fraction: f64,
    /// Onset smoothing width as a fraction of the span from rheobase to that current.
    pub smoothing_fraction: f64,
    pub extrapolation: Extrapolation,
    /// Place z = 1 using only the samples up to this current (A); the
    /// samples above extend the curve without moving the current map.
    /// None uses every sample.
    pub anchor_max_a: Option<f64>,
}

impl Default for CurveFit {
    fn default() -> Self {
        Self {
            top_fraction: 0.9,
            smoothing_fraction: 0.02,
            extrapolation: Extrapolation::Saturate,
            anchor_max_a: None,
        }
    }
}

impl TryFrom<RateCurveSpec> for RateCurve {
    type Error = TrainError;

    fn try_from(spec: RateCurveSpec) -> Result<Self> {
        let err = |m: String| Err(TrainError::RateCurve(m));
        let (i, r) = (&spec.current_a, &spec.rate_hz);
        if i.len() != r.len() {
            return err(format!("{} currents but {} rates", i.len(), r.len()));
        }
        if i.len() < 2 {
            return err("needs at least 2 samples".into());
        }
        if i.iter().chain(r).any(|x| !x.is_finite()) {
            return err("samples must be finite".into());
        }
        if let Some(k) = (1..i.len()).find(|&k| i[k] <= i[k - 1]) {
            return err(format!(
                "currents must increase strictly: sample {k} ({} A) is not above sample {} ({} A)",
                i[k],
                k - 1,
                i[k - 1]
            ));
        }
        if let Some(k) = (1..r.len()).find(|&k| r[k] < r[k - 1]) {
            return err(format!(
                "rates must not decrease: sample {k} ({} Hz) is below sample {} ({} Hz)",
                r[k],
                k - 1,
                r[k - 1]
            ));
        }
        if r[0] != 0.0 {
            return err(format!(
                "the first sample must lie below rheobase (rate 0 Hz), got {} Hz at {} A",
                r[0], i[0]
            ));
        }
        let Some(first_firing) = r.iter().position(|&x| x > 0.0) else {
            return err("the rate never leaves 0 Hz".into());
        };
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if !ok(spec.gain_a) || !spec.offset_a.is_finite() || !ok(spec.output_scale) {
            return err(format!(
                "needs gain_a > 0, finite offset_a and output_scale > 0, got {}, {}, {}",
                spec.gain_a, spec.offset_a, spec.output_scale
            ));
        }
        if !(spec.smoothing_a.is_finite() && spec.smoothing_a >= 0.0) {
            return err(format!("needs smoothing_a >= 0, got {}", spec.smoothing_a));
        }
        let knots_a = i[first_firing - 1..].to_vec();
        let knots_hz = r[first_firing - 1..].to_vec();
        let slopes = pchip_slopes(&knots_a, &knots_hz);
        Ok(Self {
            spec,
            knots_a,
            knots_hz,
            slopes,
        })
    }
}

impl From<RateCurve> for RateCurveSpec {
    fn from(c: RateCurve) -> Self {
        c.spec
    }
}

/// Fritsch–Carlson monotone slopes (Fritsch–Butland harmonic mean inside,
/// end secants at the ends).
fn pchip_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let h: Vec<f64> = (0..n - 1).map(|k| x[k + 1] - x[k]).collect();
    let d: Vec<f64> = (0..n - 1).map(|k| (y[k + 1] - y[k]) / h[k]).collect();
    let mut m = vec![0.0; n];
    m[0] = d[0];
    m[n - 1] = d[n - 2];
    for k in 1..n - 1 {
        if d[k - 1] > 0.0 && d[k] > 0.0 {
            let w1 = 2.0 * h[k] + h[k - 1];
            let w2 = h[k] + 2.0 * h[k - 1];
            m[k] = (w1 + w2) / (w1 / d[k - 1] + w2 / d[k]);
        }
    }
    m
}

impl RateCurve {
    /// A curve with an explicit current map and smoothing.
    pub fn new(spec: RateCurveSpec) -> Result<Self> {
        Self::try_from(spec)
    }

    /// A curve whose current map uses its measured range: z = 0 lies one
    /// smoothing width below the rheobase, z = 1 where the rate first reaches
    /// `top_fraction` of its maximum (up to `anchor_max_a`), and
    /// `output_scale` makes the activation at z = 1 equal 1.
    pub fn fit(current_a: Vec<f64>, rate_hz: Vec<f64>, fit: &CurveFit) -> Result<Self> {
        if !(fit.top_fraction > 0.0 && fit.top_fraction <= 1.0) {
            return Err(TrainError::RateCurve(format!(
                "top_fraction must lie in (0, 1], got {}",
                fit.top_fraction
            )));
        }
        if !(fit.smoothing_fraction.is_finite() && fit.smoothing_fraction >= 0.0) {
            return Err(TrainError::RateCurve(format!(
                "smoothing_fraction must be >= 0, got {}",
                fit.smoothing_fraction
            )));
        }
        // Validate the samples with a provisional map, then place the real one.
        let probe = Self::new(RateCurveSpec {
            current_a,
            rate_hz,
            gain_a: 1.0,
            offset_a: 0.0,
            output_scale: 1.0,
            smoothing_a: 0.0,
            extrapolation: fit.extrapolation,
        })?;
        let rheobase = probe.rheobase_a();
        let (x, y) = (&probe.knots_a, &probe.knots_hz);
        let anchored = match fit.anchor_max_a {
            Some(limit) => x.partition_point(|&i| i <= limit).max(2),
            None => x.len(),
        };
        let (x, y) = (&x[..anchored], &y[..anchored]);
        let target = fit.top_fraction * y[y.len() - 1];
        let k = y
            .iter()
            .position(|&r| r >= target)
            .expect("last knot reaches the target");
        // Linear interpolation between the samples that bracket the target rate.
        let top = if y[k] == y[k - 1] {
            x[k]
        } else {
            x[k - 1] + (x[k] - x[k - 1]) * (target - y[k - 1]) / (y[k] - y[k - 1])
        };
        let smoothing_a = fit.smoothing_fraction * (top - rheobase);
        let offset_a = rheobase - smoothing_a;
        let mut spec = probe.spec;
        spec.gain_a = top - offset_a;
        spec.offset_a = offset_a;
        spec.smoothing_a = smoothing_a;
        let curve = Self::new(spec)?;
        let rate_at_one = curve.rate_hz_at(curve.spec.gain_a + offset_a).0;
        let mut spec = curve.spec;
        spec.output_scale = 1.0 / rate_at_one;
        Self::new(spec)
    }

    pub fn spec(&self) -> &RateCurveSpec {
        &self.spec
    }

    /// Current where the rate leaves 0 (A).
    pub fn rheobase_a(&self) -> f64 {
        self.knots_a[0]
    }

    /// Smoothed rate (Hz) and its derivative (Hz/A) at input current `i_a`.
    pub fn rate_hz_at(&self, i_a: f64) -> (f64, f64) {
        let rh = self.knots_a[0];
        let s = self.spec.smoothing_a;
        let (i_eff, d_eff) = if s > 0.0 {
            let u = (i_a - rh) / s;
            (rh + s * softplus(u), sigmoid(u))
        } else if i_a > rh {
            (i_a, 1.0)
        } else {
            (rh, 0.0)
        };
        let (r, dr) = self.hermite(i_eff);
        (r, dr * d_eff)
    }

    /// The rate alone (Hz) at current `i_a` (A): [`RateCurve::rate_hz_at`]
    /// without the derivative, for the spiking network's per-step drive.
    pub fn rate_hz(&self, i_a: f64) -> f64 {
        let rh = self.knots_a[0];
        let s = self.spec.smoothing_a;
        let i_eff = if s > 0.0 {
            rh + s * softplus((i_a - rh) / s)
        } else {
            i_a.max(rh)
        };
        self.hermite(i_eff).0
    }

    /// The unsmoothed interpolant and its derivative, for `i >= rheobase`.
    fn hermite(&self, i: f64) -> (f64, f64) {
        let (x, y, m) = (&self.knots_a, &self.knots_hz, &self.slopes);
        let n = x.len();
        if i.is_nan() {
            // (No interval holds it: let it propagate, as arithmetic would.)
            return (f64::NAN, f64::NAN);
        }
        if i <= x[0] {
            return (y[0], 0.0);
        }
        if i >= x[n - 1] {
            return match self.spec.extrapolation {
                Extrapolation::Saturate => (y[n - 1], 0.0),
                Extrapolation::Linear => (y[n - 1] + m[n - 1] * (i - x[n - 1]), m[n - 1]),
            };
        }
        let k = self.interval(i);
        let h = x[k + 1] - x[k];
        let t = (i - x[k]) / h;
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        let value = h00 * y[k] + h10 * h * m[k] + h01 * y[k + 1] + h11 * h * m[k + 1];
        let d00 = 6.0 * t2 - 6.0 * t;
        let d10 = 3.0 * t2 - 4.0 * t + 1.0;
        let d11 = 3.0 * t2 - 2.0 * t;
        let slope = (d00 * (y[k] - y[k + 1])) / h + d10 * m[k] + d11 * m[k + 1];
        (value, slope)
    }

    /// The k with x[k] <= i < x[k+1], for x[0] < i < x[n-1]. Measured
    /// curves are sampled evenly, so the even-spacing guess is tried first;
    /// a binary search settles any other spacing (the same k either way).
    #[inline]
    fn interval(&self, i: f64) -> usize {
        let x = &self.knots_a;
        let last = x.len() - 1;
        let spacing = (x[last] - x[0]) / last as f64;
        let guess = (((i - x[0]) / spacing) as usize).min(last - 1);
        for k in [guess, guess.saturating_sub(1), (guess + 1).min(last - 1)] {
            if x[k] <= i && i < x[k + 1] {
                return k;
            }
        }
        x.partition_point(|&xk| xk <= i) - 1
    }

    /// Activation and derivative at pre-activation `z`.
    pub fn eval(&self, z: f64) -> (f64, f64) {
        let i = self.spec.gain_a * z + self.spec.offset_a;
        let (r, dr) = self.rate_hz_at(i);
        (
            self.spec.output_scale * r,
            self.spec.output_scale * dr * self.spec.gain_a,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LIF-like measured curve: 0 below 1 nA, then rising and bending.
    fn lif_like_samples() -> (Vec<f64>, Vec<f64>) {
        let current: Vec<f64> = (0..=20).map(|k| k as f64 * 0.25e-9).collect();
        let rate = current
            .iter()
            .map(|&i: &f64| {
                if i <= 1e-9 {
                    0.0
                } else {
                    1.0 / (2e-3 + 20e-3 * (1.0 / (1.0 - 1e-9 / i)).ln())
                }
            })
            .collect();
        (current, rate)
    }

    /// The samples as a curve without onset smoothing, z = 1 at 1 nA.
    fn unsmoothed_curve(current: &[f64], rate: &[f64]) -> RateCurve {
        RateCurve::new(RateCurveSpec {
            current_a: current.to_vec(),
            rate_hz: rate.to_vec(),
            gain_a: 1e-9,
            offset_a: 0.0,
            output_scale: 0.01,
            smoothing_a: 0.0,
            extrapolation: Extrapolation::Saturate,
        })
        .unwrap()
    }

    fn check_derivative(f: &Activation, zs: impl Iterator<Item = f64>) {
        for z in zs {
            let h = 1e-6;
            let fd = (f.eval(z + h).0 - f.eval(z - h).0) / (2.0 * h);
            let an = f.eval(z).1;
            assert!(
                (fd - an).abs() <= 1e-5 * (1.0 + an.abs()),
                "{f:?} at z = {z}: analytic {an}, finite difference {fd}"
            );
        }
    }

    #[test]
    fn relu_values() {
        let a = Activation::Relu;
        let z = [-1.0f32, 0.0, 2.5];
        let mut out = [0.0f32; 3];
        let mut d = [0.0f32; 3];
        a.forward_slice(&z, &mut out, Some(&mut d));
        assert_eq!(out, [0.0, 0.0, 2.5]);
        assert_eq!(d, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn soft_lif_matches_lif_far_from_threshold_and_has_right_derivative() {
        let s = SoftLif::default();
        // Far above threshold the smoothing vanishes: hard LIF rate at J = 1 + z.
        let z: f64 = 2.0;
        let hard = s.amplitude / (s.tau_ref_s + s.tau_rc_s * (1.0 / z).ln_1p());
        assert!((s.eval(z).0 - hard).abs() < 1e-9);
        assert!((s.eval(1.0).0 - 1.0).abs() < 1e-3);
        // Below threshold: positive, small, and decaying (only logarithmically,
        // as the rate formula's ln(1 + 1/j) grows).
        let (below, at, above) = (s.eval(-0.5).0, s.eval(0.0).0, s.eval(1.0).0);
        assert!(
            below > 0.0 && below < at && at < 0.3 * above,
            "{below} {at} {above}"
        );
        assert_eq!(s.eval(-1e6), (0.0, 0.0));
        check_derivative(
            &Activation::SoftLif(s),
            (-40..=60).map(|k| k as f64 * 0.05 + 0.0123),
        );
    }

    #[test]
    fn rate_curve_interpolates_samples_monotonically() {
        let (i, r) = lif_like_samples();
        let c = unsmoothed_curve(&i, &r);
        assert_eq!(c.rheobase_a(), 1e-9);
        for (ik, rk) in i.iter().zip(&r) {
            assert!((c.rate_hz_at(*ik).0 - rk).abs() < 1e-9 * (1.0 + rk));
        }
        let mut last = -1.0;
        for k in 0..=1000 {
            let (v, d) = c.rate_hz_at(k as f64 * 6e-12);
            assert!(v >= last && d >= 0.0);
            last = v;
        }
        // Saturation beyond the last sample.
        assert_eq!(c.rate_hz_at(1e-6), (r[r.len() - 1], 0.0));
    }

    #[test]
    fn interval_guess_agrees_with_binary_search() {
        let (i, r) = lif_like_samples();
        // Even samples, and the same squeezed unevenly (i² spacing).
        let uneven: Vec<f64> = i.iter().map(|&x| x * x / 5e-9).collect();
        for current in [i, uneven] {
            let c = unsmoothed_curve(&current, &r);
            let x = &c.knots_a;
            let (lo, hi) = (x[0], x[x.len() - 1]);
            for k in 1..4000 {
                let at = lo + (hi - lo) * k as f64 / 4000.0;
                let want = x.partition_point(|&xk| xk <= at) - 1;
                assert_eq!(c.interval(at), want, "at {at} A");
            }
            for &knot in &x[1..x.len() - 1] {
                let want = x.partition_point(|&xk| xk <= knot) - 1;
                assert_eq!(c.interval(knot), want, "at knot {knot} A");
            }
        }
    }

    #[test]
    fn rate_curve_derivative_matches_finite_differences() {
        let (i, r) = lif_like_samples();
        for extrapolation in [Extrapolation::Saturate, Extrapolation::Linear] {
            let fit = CurveFit {
                extrapolation,
                ..CurveFit::default()
            };
            let c = RateCurve::fit(i.clone(), r.clone(), &fit).unwrap();
            // Skip exact knot positions, where the cubic's second derivative jumps.
            check_derivative(
                &Activation::RateCurve(c),
                (-30..=90).map(|k| k as f64 * 0.025 + 0.00371),
            );
        }
    }

    #[test]
    fn rate_curve_fit_uses_the_measured_range() {
        let (i, r) = lif_like_samples();
        let c = RateCurve::fit(i, r, &CurveFit::default()).unwrap();
        let s = c.spec();
        assert!(s.offset_a < c.rheobase_a() && s.offset_a > 0.9e-9);
        assert!((c.eval(1.0).0 - 1.0).abs() < 1e-12);
        assert!(c.eval(-1.0).0 < 1e-6);
        assert!(c.eval(0.0).0 < 0.1);
        // z = 1 reaches 90% of the top rate.
        let top = 0.9 * c.spec().rate_hz[20];
        assert!((c.rate_hz_at(s.gain_a + s.offset_a).0 / top - 1.0).abs() < 0.02);
        // A NaN drive propagates (it once indexed out of bounds).
        assert!(c.rate_hz(f64::NAN).is_nan() && c.rate_hz_at(f64::NAN).0.is_nan());
        // The value-only path is the same function.
        for k in -40..=200 {
            let i_a = k as f64 * 3e-11;
            assert_eq!(c.rate_hz(i_a), c.rate_hz_at(i_a).0, "at {i_a} A");
        }
    }

    #[test]
    fn samples_beyond_the_anchor_extend_the_curve_without_moving_z_one() {
        let (i, r) = lif_like_samples();
        // The first 13 samples (up to 3 nA) alone, then all 21 anchored at 3 nA.
        let short =
            RateCurve::fit(i[..13].to_vec(), r[..13].to_vec(), &CurveFit::default()).unwrap();
        let fit = CurveFit {
            anchor_max_a: Some(i[12]),
            extrapolation: Extrapolation::Linear,
            ..CurveFit::default()
        };
        let long = RateCurve::fit(i.clone(), r.clone(), &fit).unwrap();
        let (a, b) = (short.spec(), long.spec());
        assert!((a.gain_a - b.gain_a).abs() < 1e-21 && (a.offset_a - b.offset_a).abs() < 1e-21);
        assert!((long.eval(1.0).0 - 1.0).abs() < 1e-9);
        // The short curve saturates at its last sample; the long one follows
        // the samples beyond it and then continues linearly.
        assert_eq!(short.rate_hz_at(i[20]).0, r[12]);
        assert!((long.rate_hz_at(i[20]).0 - r[20]).abs() < 1e-9 * r[20]);
        let (v, d) = long.rate_hz_at(2.0 * i[20]);
        assert!(d > 0.0 && (v - (r[20] + d * i[20])).abs() < 1e-6 * v);
    }

    #[test]
    fn rate_curve_rejects_bad_samples() {
        let bad = |current_a: Vec<f64>, rate_hz: Vec<f64>| {
            RateCurve::fit(current_a, rate_hz, &CurveFit::default())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(vec![0.0, 1.0], vec![0.0]).contains("2 currents but 1 rates"));
        assert!(bad(vec![0.0, 1.0, 1.0], vec![0.0, 1.0, 2.0]).contains("increase strictly"));
        assert!(bad(vec![0.0, 1.0, 2.0], vec![0.0, 2.0, 1.0]).contains("must not decrease"));
        assert!(bad(vec![0.0, 1.0], vec![1.0, 2.0]).contains("below rheobase"));
        assert!(bad(vec![0.0, 1.0], vec![0.0, 0.0]).contains("never leaves"));
        assert!(bad(vec![0.0, f64::NAN], vec![0.0, 1.0]).contains("finite"));
    }

    #[test]
    fn rate_curve_serde_round_trip_validates() {
        let (i, r) = lif_like_samples();
        let a = Activation::RateCurve(RateCurve::fit(i, r, &CurveFit::default()).unwrap());
        let json = serde_json::to_string(&a).unwrap();
        let back: Activation = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
        let broken = json.replace("\"gain_a\":", "\"gain_a\":-");
        let e = serde_json::from_str::<Activation>(&broken)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gain_a > 0"), "{e}");
    }

    #[test]
    fn tabulated_kernel_matches_exact_activation() {
        let (i, r) = lif_like_samples();
        let curve = RateCurve::fit(i, r, &CurveFit::default()).unwrap();
        for a in [
            Activation::SoftLif(SoftLif::default()),
            Activation::RateCurve(curve),
        ] {
            let k = ActivationKernel::new(a.clone());
            assert!(k.is_tabulated(), "{a:?}");
            let mut x: Vec<f32> = (-1200..1200).map(|j| j as f32 * 0.00731).collect();
            x.push(20.0); // beyond the table: exact path
            let z = x.clone();
            let mut d = vec![0.0; x.len()];
            k.apply_in_place(&mut x, Some(&mut d));
            for j in 0..z.len() {
                let (v, dv) = a.eval(z[j] as f64);
                assert!(
                    (x[j] as f64 - v).abs() < 2e-5 * (1.0 + v.abs()),
                    "{a:?} at {}: {} vs {v}",
                    z[j],
                    x[j]
                );
                assert!(
                    (d[j] as f64 - dv).abs() < 2e-3 * (1.0 + dv.abs()),
                    "{a:?} at {}: {} vs {dv}",
                    z[j],
                    d[j]
                );
            }
        }
        // A curve too steep for the grid is evaluated exactly instead.
        let steep = RateCurve::new(RateCurveSpec {
            current_a: vec![0.0, 1.0, 1.000001, 2.0],
            rate_hz: vec![0.0, 0.0, 1000.0, 1001.0],
            gain_a: 1.0,
            offset_a: 0.0,
            output_scale: 1e-3,
            smoothing_a: 0.0,
            extrapolation: Extrapolation::Saturate,
        })
        .unwrap();
        assert!(!ActivationKernel::new(Activation::RateCurve(steep)).is_tabulated());
    }

    #[test]
    fn slice_forward_matches_scalar() {
        let a = Activation::SoftLif(SoftLif::default());
        let z: Vec<f32> = (-10..10).map(|k| k as f32 * 0.2).collect();
        let mut out = vec![0.0; z.len()];
        let mut d = vec![0.0; z.len()];
        a.forward_slice(&z, &mut out, Some(&mut d));
        for k in 0..z.len() {
            let (v, dv) = a.eval(z[k] as f64);
            assert_eq!(out[k], v as f32);
            assert_eq!(d[k], dv as f32);
        }
    }
}
