//! The MNA system of a circuit and its Newton solver. Integration methods
//! reach the devices only through the pair (α, c): Newton solves
//! **F(x) + α·Q(x) + c = 0**, where α·Q + c is the method's approximation of
//! dQ/dt (α = c = 0 for a DC operating point).

pub mod dense;
pub mod integrator;
pub mod linear;

use crate::circuit::Circuit;
use crate::devices::{EvalCtx, Stamp, UnknownKind};
use linear::{LinearError, PatternBuilder, SparseLu};

/// Counters reported in run summaries.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub newton_iterations: u64,
    pub factorizations: u64,
}

/// Why a Newton solve failed, with the unknown that was furthest from
/// converging.
#[derive(Clone, Debug)]
pub struct NewtonFailure {
    pub reason: FailureReason,
    pub worst_unknown: usize,
    /// The last update of that unknown, and its tolerance.
    pub update: f64,
    pub tolerance: f64,
    pub iterations: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FailureReason {
    IterationLimit,
    Singular,
    NotFinite,
}

impl NewtonFailure {
    /// "worst: node 'mem' (last update 3.2e-2, tolerance 5.0e-5)".
    pub fn describe(&self, circuit: &Circuit) -> String {
        let what = circuit.describe_unknown(self.worst_unknown);
        match self.reason {
            FailureReason::IterationLimit => format!(
                "Newton did not converge in {} iterations; worst: {what} (last update {:.3e}, tolerance {:.3e})",
                self.iterations, self.update, self.tolerance
            ),
            FailureReason::Singular => format!("singular matrix at {what} (check for floating parts of the circuit)"),
            FailureReason::NotFinite => format!("the solution became infinite or NaN at {what}"),
        }
    }
}

/// One nonlinear system to solve: residual F(x) + α·Q(x) + c.
pub struct System<'a> {
    pub time: f64,
    pub alpha: f64,
    /// History term c (length n); empty means zero.
    pub history: &'a [f64],
    pub source_scale: f64,
    /// Conductance from every node to ground (gmin stepping).
    pub gmin: f64,
    pub dc_analysis: bool,
    pub max_iterations: usize,
    /// Extra conductance pulling node i to a value (`.ic` during `.op`).
    pub pins: &'a [(usize, f64)],
    /// Unknowns whose equation is replaced by x_i = value (device states
    /// held at their initial value while the nodes settle).
    pub holds: &'a [(usize, f64)],
}

/// The assembled MNA system for one circuit: pattern, LU and work arrays.
pub struct Mna {
    pub n: usize,
    lu: SparseLu,
    pub f: Vec<f64>,
    pub q: Vec<f64>,
    jf: Vec<f64>,
    jq: Vec<f64>,
    rhs: Vec<f64>,
    /// Absolute tolerance of each unknown (vntol, abstol or xtol).
    pub atol: Vec<f64>,
    pub reltol: f64,
    is_voltage: Vec<bool>,
    linear: bool,
    slot_cols: Vec<usize>,
    slot_rows: Vec<usize>,
    pub stats: Stats,
}

/// Largest change of a node voltage in one Newton iteration (V).
const MAX_VOLTAGE_STEP: f64 = 0.5;

/// Strength of an `.ic` pin during the operating point (S).
const PIN_CONDUCTANCE: f64 = 1.0;

impl Mna {
    /// Let every device reserve its Jacobian slots and build the LU pattern.
    pub fn new(circuit: &mut Circuit) -> Result<Self, LinearError> {
        let n = circuit.unknowns.len();
        let mut pattern = PatternBuilder::default();
        for d in circuit.devices.iter_mut() {
            d.setup(&mut pattern);
        }
        let slots = pattern.len();
        let slot_cols = pattern.columns();
        let slot_rows = pattern.rows();
        let lu = SparseLu::new(n, pattern)?;
        let o = &circuit.options;
        let atol = circuit
            .unknowns
            .iter()
            .map(|u| match u.kind {
                UnknownKind::Voltage => o.vntol,
                UnknownKind::Current => o.abstol,
                UnknownKind::State => o.xtol,
            })
            .collect();
        Ok(Mna {
            n,
            lu,
            f: vec![0.0; n],
            q: vec![0.0; n],
            jf: vec![0.0; slots],
            jq: vec![0.0; slots],
            rhs: vec![0.0; n],
            atol,
            reltol: o.reltol,
            is_voltage: circuit
                .unknowns
                .iter()
                .map(|u| u.kind == UnknownKind::Voltage)
                .collect(),
            linear: circuit.is_linear(),
            slot_cols,
            slot_rows,
            stats: Stats::default(),
        })
    }

    /// Evaluate every device at x into f, q and the Jacobian slots.
    pub fn evaluate(
        &mut self,
        circuit: &Circuit,
        x: &[f64],
        time: f64,
        source_scale: f64,
        dc_analysis: bool,
    ) {
        for v in [&mut self.f, &mut self.q, &mut self.jf, &mut self.jq] {
            v.iter_mut().for_each(|e| *e = 0.0);
        }
        let ctx = EvalCtx {
            x,
            time,
            source_scale,
            dc_analysis,
        };
        let mut stamp = Stamp {
            f: &mut self.f,
            q: &mut self.q,
            jf: &mut self.jf,
            jq: &mut self.jq,
        };
        for d in &circuit.devices {
            d.eval(&ctx, &mut stamp);
        }
    }

    /// Which unknowns carry a charge or flux (have a dQ/dx column) at the
    /// last evaluation; only these take part in truncation-error control.
    pub fn differential_unknowns(&self) -> Vec<bool> {
        let mut d = vec![false; self.n];
        for (&c, &v) in self.slot_cols.iter().zip(&self.jq) {
            if v != 0.0 {
                d[c] = true;
            }
        }
        d
    }

    /// Tolerance of unknown i at values a, b.
    #[inline]
    pub fn tolerance(&self, i: usize, a: f64, b: f64) -> f64 {
        self.reltol * a.abs().max(b.abs()) + self.atol[i]
    }

    /// Newton's method on `sys`, starting from and updating `x`. Returns
    /// the number of iterations.
    pub fn newton(
        &mut self,
        circuit: &Circuit,
        x: &mut [f64],
        sys: &System,
    ) -> Result<usize, NewtonFailure> {
        let n = self.n;
        let mut dx = vec![0.0; n];
        let mut worst = (0usize, 0.0f64, 1.0f64);
        for iter in 1..=sys.max_iterations {
            self.evaluate(circuit, x, sys.time, sys.source_scale, sys.dc_analysis);
            self.stats.newton_iterations += 1;
            if !sys.holds.is_empty() {
                for &(i, v) in sys.holds {
                    self.f[i] = x[i] - v;
                    self.q[i] = 0.0;
                }
                for (s, &r) in self.slot_rows.iter().enumerate() {
                    if sys.holds.iter().any(|h| h.0 == r) {
                        self.jf[s] = 0.0;
                        self.jq[s] = 0.0;
                    }
                }
            }
            for i in 0..n {
                let c = sys.history.get(i).copied().unwrap_or(0.0);
                let mut r = self.f[i] + sys.alpha * self.q[i] + c;
                if self.is_voltage[i] {
                    r += sys.gmin * x[i];
                }
                self.rhs[i] = -r;
            }
            for &(i, v) in sys.pins {
                self.rhs[i] -= PIN_CONDUCTANCE * (x[i] - v);
            }
            if let Some(bad) = self.rhs.iter().position(|r| !r.is_finite()) {
                return Err(NewtonFailure {
                    reason: FailureReason::NotFinite,
                    worst_unknown: bad,
                    update: f64::NAN,
                    tolerance: 0.0,
                    iterations: iter,
                });
            }
            self.lu
                .assemble(&self.jf, &self.jq, sys.alpha, sys.gmin, &self.is_voltage);
            for &(i, _) in sys.pins {
                self.lu.add_diagonal(i, PIN_CONDUCTANCE);
            }
            for &(i, _) in sys.holds {
                self.lu.add_diagonal(i, 1.0);
            }
            self.stats.factorizations += 1;
            dx.copy_from_slice(&self.rhs);
            if let Err(e) = self.lu.factor_solve(&mut dx) {
                let at = match e {
                    LinearError::Singular(i) => i.min(n.saturating_sub(1)),
                    LinearError::Other(_) => 0,
                };
                return Err(NewtonFailure {
                    reason: FailureReason::Singular,
                    worst_unknown: at,
                    update: f64::NAN,
                    tolerance: 0.0,
                    iterations: iter,
                });
            }
            for d in &circuit.devices {
                d.limit(x, &mut dx);
            }
            // Damping: a nonlinear circuit never moves a node by more than
            // MAX_VOLTAGE_STEP in one iteration; the whole update is scaled so
            // its direction is kept.
            if !self.linear {
                let largest = (0..n)
                    .filter(|&i| self.is_voltage[i])
                    .map(|i| dx[i].abs())
                    .fold(0.0, f64::max);
                if largest > MAX_VOLTAGE_STEP {
                    let k = MAX_VOLTAGE_STEP / largest;
                    dx.iter_mut().for_each(|d| *d *= k);
                }
            }
            let mut converged = true;
            worst = (0, 0.0, 1.0);
            let mut worst_ratio = 0.0;
            for i in 0..n {
                let new = x[i] + dx[i];
                let tol = self.tolerance(i, x[i], new);
                let ratio = dx[i].abs() / tol;
                if ratio > 1.0 {
                    converged = false;
                }
                if ratio > worst_ratio {
                    worst_ratio = ratio;
                    worst = (i, dx[i], tol);
                }
                x[i] = new;
            }
            if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
                return Err(NewtonFailure {
                    reason: FailureReason::NotFinite,
                    worst_unknown: bad,
                    update: f64::NAN,
                    tolerance: 0.0,
                    iterations: iter,
                });
            }
            // A linear system is solved exactly by one step (pins and gmin are linear too).
            if converged || self.linear {
                return Ok(iter);
            }
        }
        Err(NewtonFailure {
            reason: FailureReason::IterationLimit,
            worst_unknown: worst.0,
            update: worst.1,
            tolerance: worst.2,
            iterations: sys.max_iterations,
        })
    }
}
