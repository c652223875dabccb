//! The batched neuron engine: N copies of one neuron circuit, each a small
//! *dense* MNA system with its own adaptive time step.
//!
//! Compilation: the circuit's devices are cloned once per instance and set
//! up against a dense pattern (slot = row·n + col, n = number of MNA
//! unknowns, 3–8 for neurons), so every device of the general engine works
//! unchanged through the same [`Device::eval`]. The input current is added
//! to the KCL row of the `.NEURON INPUT` node. Each Newton iteration solves
//! the n×n system with a hand-written LU with partial pivoting.
//!
//! Integration mirrors `analysis::tran`: BE, TRAP or variable-step BDF2 on
//! the Q terms, divided-difference truncation-error control, event location
//! by step rejection to within `event_tol` (LIF reset, switches), and spike
//! detection as the general engine does it (linear interpolation of a state
//! crossing between accepted steps, or the located reset time). An input
//! change at a step boundary restarts the history (order 1); an unchanged
//! input keeps it, so an instance at rest grows its step up to `max_step`
//! and crosses a whole network step in one solve.
//!
//! Memory: per instance one clone of the device set (its discrete state,
//! parameters and slots, boxed, with its name string) and one record of
//! (7n + 3 + E) f64 (three history points of x and Q, their times, dQ/dt,
//! and E event indicators), plus 56 B of step-control scalars and the
//! membrane voltage. For the MIF (n = 4, 3 devices after the input source
//! is dropped) that is about 0.7 kB of devices + 0.25 kB of record ≈ 1 kB
//! per neuron, 35 MB for 34,000 neurons. Keeping one device set per
//! instance is what lets parameters differ between instances.
//!
//! Cost. Three mechanisms keep most of an instance's time out of the
//! integrator:
//! - **Exact linear steps** ([`QuiescentModel`]): where every device is
//!   quiescent ([`Device::quiescent`]: an LIF below its threshold, a
//!   memristor below its switching fold), the instance is the linear
//!   circuit it is at rest, and it crosses the rest of the network step in
//!   one closed-form step (a sum of exponentials over the rest
//!   linearisation's modes), stopping exactly where a device's bound is
//!   reached. A silent or charging neuron costs no Newton iteration, and
//!   one that such a step leaves at its steady state (within 1e-3 of the
//!   local tolerance) skips its next steps while its input is unchanged.
//! - **Integration** with the adaptive method above from that bound on:
//!   the escape from the fold, the switching and the discharge.
//! - **The [`SpikeMap`]** (on by default for `.SPIKE ... MEMRISTOR=` rules)
//!   replays a spike's transient from a table built by this same
//!   integrator. A transient is entered where the instance leaves its
//!   quiescent region (so the replay covers the approach to the fold, the
//!   escape, the switching, the discharge and the reset, up to quiescence
//!   again), else at the state signal's crossing of 0.04 × the `.SPIKE`
//!   level (x = 0.02 for the TSM, just past its fold), else of 0.6 × the
//!   level (MIF2, whose reset memristor is still partly on). A transient
//!   that runs past the network step's end is followed to it and left
//!   *pending*; the next step continues it, under a changed input on the
//!   new input's cells at the phase where their transient passes the
//!   state the instance was left in. Where none does to within 10 local
//!   tolerances (mostly the fast memristor state near its fold, which
//!   interpolation between cells misses), the instance is integrated and
//!   the continuation is tried again 2, 4, 8 µs … later, when that state
//!   has relaxed onto the new transient.
//!
//! Memory, not arithmetic, sets much of the cost of a large population:
//! each instance's devices are boxes of their own, so the devices of the
//! instances two ahead are prefetched, and where no device has events
//! (memristive neurons) quiescence is asked of one shared device copy.
//! Current figures, and where the time goes, are in BENCHMARKS.md
//! (`circsnn bench`: about 0.25 µs per MIF neuron-step on 2 threads,
//! 0.13 µs for the LIF circuit). `KernelStats` counts exact steps,
//! integrator steps, replayed, partly replayed, continued and integrated
//! transients.
//!
//! Work is split into fixed chunks of instances run over rayon; each chunk
//! owns its scratch space, so the step loop does not allocate and the
//! result does not depend on the number of threads.

use super::quiescent::{QuiescentModel, QuiescentScratch};
use super::response::{self, Answers, Response, ResponseTables};
use super::{check_advance_args, NeuronError, NeuronModel};
use crate::analysis::op::initial_guess;
use crate::circuit::{Analysis, Circuit, Method, SpikeDetector};
use crate::devices::{
    capacitor::Capacitor, isource::ISource, memristor::Memristor, reset::Reset, resistor::Resistor,
    switch::Switch, vsource::VSource, Device, EvalCtx, Node, Pattern, QuiescentBound, Slot, Stamp,
    UnknownKind,
};
use crate::solver::dense::{dense_solve, SourceElimination};
use crate::solver::integrator::{
    bdf_coefficients, extrapolate, integration_coefficients, order_after_step, order_settled,
    step_factor, step_safety, ErrorEstimate, ESTIMATE_POINTS, MAX_BDF_ORDER,
};
use rayon::prelude::*;
use std::sync::Arc;

/// Solver settings of the batched engine.
#[derive(Clone, Debug)]
pub struct NeuronOptions {
    pub method: Method,
    pub reltol: f64,
    /// Current tolerance (A).
    pub abstol: f64,
    /// Voltage tolerance (V).
    pub vntol: f64,
    /// Tolerance of dimensionless states (memristor x).
    pub xtol: f64,
    /// Truncation-error tolerance factor.
    pub trtol: f64,
    /// Highest integration order: 1 for BE, 2 for TRAP, and for BDF
    /// (`gear`) `.options maxord`, by default 4. The general engine's
    /// default is ngspice's 2; here each neuron is integrated over
    /// millions of steps, and between switchings its solution is smooth:
    /// orders 3 and 4 took 40 % fewer steps and half the Newton iterations
    /// in a MIF2 network at the same tolerance (BENCHMARKS.md).
    pub max_order: usize,
    pub max_newton_iterations: usize,
    /// Largest time step (s).
    pub max_step: f64,
    /// Smallest time step (s) before an instance is declared failed.
    pub min_step: f64,
    /// How closely event times (resets, switchings) are located (s).
    pub event_tol: f64,
    /// Instances per rayon task.
    pub chunk_size: usize,
    /// Keep independent current sources that drive the input node. By
    /// default they are dropped: the `.NEURON` input replaces the
    /// netlist's own stand-alone drive (`Iin 0 mem DC {iin}`).
    pub keep_input_sources: bool,
    /// Replay spike transients from a table ("spike map") instead of
    /// integrating them: see [`SpikeMap`]. Only for `.SPIKE ... MEMRISTOR=`
    /// rules (state crossings); other rules ignore it.
    pub spike_map: bool,
    /// Relative spacing of the spike map's input grid: cells at
    /// I_k = (1 + ρ)^k, interpolated linearly in between.
    pub spike_map_spacing: f64,
    /// Where a replayed transient starts, as a fraction (0, 1) of the
    /// `.SPIKE` level: the state signal's upward crossing of
    /// `fraction × level`. Below the level, so that the replay also skips
    /// the switch-on and most of the escape from the fold (which the
    /// integrator resolves in ~100 steps at RELTOL=1e-6); high enough that
    /// the start is past the memristor's fold (x ≈ 0.014 for the TSM), so
    /// the spike is committed.
    pub spike_map_entry: f64,
    /// The entry used where the signal is already above the first one
    /// when a spike starts (MIF2: its reset memristor M2, τ_off = 2 ms, is
    /// still partly on), also as a fraction of the level.
    pub spike_map_entry_late: f64,
    /// Advance instances whose devices are all quiescent (at rest, or
    /// charging below a memristor's fold or an LIF's threshold) by the
    /// exact solution of the rest linearisation: see [`QuiescentModel`].
    pub exact_linear_steps: bool,
}

impl NeuronOptions {
    /// Tolerances and method from the circuit's `.options`; the step bound
    /// is `.options maxstep` or 1 ms.
    pub fn from_circuit(circuit: &Circuit) -> Self {
        let o = &circuit.options;
        NeuronOptions {
            method: o.method,
            reltol: o.reltol,
            abstol: o.abstol,
            vntol: o.vntol,
            xtol: o.xtol,
            trtol: o.trtol,
            max_order: o.max_order(DEFAULT_MAX_ORDER),
            max_newton_iterations: o.itl4,
            max_step: o.maxstep.unwrap_or(1e-3),
            min_step: 1e-14,
            event_tol: 1e-9,
            chunk_size: 64,
            keep_input_sources: false,
            spike_map: true,
            spike_map_spacing: 1e-3,
            spike_map_entry: 0.04,
            spike_map_entry_late: 0.6,
            exact_linear_steps: true,
        }
    }

    fn validate(&self) -> Result<(), NeuronError> {
        let positive = [
            ("reltol", self.reltol),
            ("abstol", self.abstol),
            ("vntol", self.vntol),
            ("xtol", self.xtol),
            ("trtol", self.trtol),
            ("max_step", self.max_step),
            ("min_step", self.min_step),
            ("event_tol", self.event_tol),
            ("spike_map_spacing", self.spike_map_spacing),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(NeuronError::InvalidOptions(format!(
                    "{name} must be positive and finite, got {v}"
                )));
            }
        }
        if self.min_step >= self.max_step {
            return Err(NeuronError::InvalidOptions(format!(
                "min_step ({}) must be below max_step ({})",
                self.min_step, self.max_step
            )));
        }
        for (name, v) in [
            ("spike_map_entry", self.spike_map_entry),
            ("spike_map_entry_late", self.spike_map_entry_late),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(NeuronError::InvalidOptions(format!(
                    "{name} must be in (0, 1), got {v}"
                )));
            }
        }
        let orders = match self.method {
            Method::Be => 1..=1,
            Method::Trap => 1..=2,
            Method::Bdf2 => 1..=MAX_BDF_ORDER,
        };
        if !orders.contains(&self.max_order) {
            return Err(NeuronError::InvalidOptions(format!(
                "max_order must be in {orders:?} for {:?}, got {}",
                self.method, self.max_order
            )));
        }
        if self.max_newton_iterations == 0 || self.chunk_size == 0 {
            return Err(NeuronError::InvalidOptions(
                "max_newton_iterations and chunk_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Dense Jacobian layout: slot = row·n + col. It notes the entries the
/// devices use, the structure [`SourceElimination`] looks at.
struct DensePattern {
    n: usize,
    used: Vec<bool>,
}

impl Pattern for DensePattern {
    fn entry(&mut self, row: Node, col: Node) -> Slot {
        let slot = row? * self.n + col?;
        self.used[slot] = true;
        Some(slot)
    }
}

/// The spike rule, with device indices local to one instance's set.
#[derive(Clone, Debug)]
enum SpikeRule {
    States { unknowns: Vec<usize>, level: f64 },
    Threshold { node: usize, level: f64 },
    Reset { device: usize },
}

impl SpikeRule {
    /// The watched signal at x, for rules that watch one.
    #[inline]
    fn signal(&self, x: &[f64]) -> Option<(f64, f64)> {
        match self {
            SpikeRule::States { unknowns, level } => Some((
                unknowns
                    .iter()
                    .map(|&u| x[u])
                    .fold(f64::NEG_INFINITY, f64::max),
                *level,
            )),
            SpikeRule::Threshold { node, level } => Some((x[*node], *level)),
            SpikeRule::Reset { .. } => None,
        }
    }
}

/// Everything shared and read-only during a step: the compiled topology.
struct Plan {
    /// MNA unknowns per instance.
    n: usize,
    input: usize,
    membrane: usize,
    devices_per_instance: usize,
    spike: SpikeRule,
    /// (device, indicator) pairs, in device order.
    event_slots: Vec<(usize, usize)>,
    /// Unknowns with a dQ/dx column: they take part in error control.
    differential: Vec<bool>,
    atol: Vec<f64>,
    /// Node voltages get gmin during the operating point.
    is_voltage: Vec<bool>,
    linear: bool,
    /// Grounded voltage sources solved outside the LU, where there are any.
    elimination: Option<SourceElimination>,
    /// The spike rule watches states, so transients can be replayed.
    map_rule: bool,
    /// Signal levels where a replayed transient starts: the low one, else
    /// (when the signal is already above it) the high one.
    entry_levels: [f64; 2],
    /// The exact linear step, where the circuit admits one.
    quiescent: Option<QuiescentModel>,
    /// Bounds that keep spike-rule crossings out of exact steps.
    spike_bounds: Vec<QuiescentBound>,
    /// One copy of the devices, asked about quiescence instead of each
    /// instance's own where no device has events: their answer then depends
    /// on the state alone (events are the only discrete state), and this
    /// copy stays in cache while the instances' devices are far away in
    /// memory. None where a device's answer depends on its discrete state
    /// (an LIF reset that is clamped).
    quiescence_devices: Option<Vec<Box<dyn Device>>>,
    /// Power the circuit's DC voltage sources deliver, as a linear
    /// functional of the state (W per unit of each unknown); None where the
    /// circuit has a source the energy account cannot follow.
    supply: Option<Vec<f64>>,
    /// No device changes by itself in time (no waveform source), so an
    /// instance at rest under an unchanged input stays there.
    untimed: bool,
    opts: NeuronOptions,
    /// Highest integration order, and the points the record keeps (one
    /// more: the error estimate's divided differences need them).
    max_order: usize,
    history: usize,
    /// Record layout (offsets into one instance's f64 record): the newest
    /// point's x and q, the times of all points, dQ/dt and the event
    /// indicators. The older points' x and q, which only the integrator
    /// reads, are in an array of their own (`older_stride` per instance):
    /// instances are swept in memory order, and the hardware prefetcher
    /// fetches whatever the stride holds. At order 4 a record with them
    /// made the exact-step-bound MIF population 25–40 % slower.
    stride: usize,
}

impl Plan {
    #[inline]
    fn off_q(&self) -> usize {
        self.n
    }
    #[inline]
    fn off_t(&self) -> usize {
        2 * self.n
    }
    #[inline]
    fn off_qdot(&self) -> usize {
        2 * self.n + self.history
    }
    #[inline]
    fn off_g(&self) -> usize {
        3 * self.n + self.history
    }
    /// f64 per instance in the older points' array: their (x, q) pairs.
    #[inline]
    fn older_stride(&self) -> usize {
        (self.history - 1) * 2 * self.n
    }
    fn max_order(&self) -> usize {
        self.max_order
    }
    fn restart_step(&self) -> f64 {
        (self.opts.max_step * 1e-3).max(self.opts.min_step * 100.0)
    }
    /// The functional a with a·x = power delivered by the sources (the
    /// input current and the DC voltage sources) at state x.
    #[inline]
    fn delivered_power(&self, input: f64, a: &mut [f64]) -> bool {
        let Some(supply) = &self.supply else {
            return false;
        };
        a.copy_from_slice(supply);
        a[self.input] += input;
        true
    }

    /// Energy stored in the (linear) capacitors at state x with charges q:
    /// ½ Σ q_i x_i over the node rows.
    fn stored_energy(&self, x: &[f64], q: &[f64]) -> f64 {
        0.5 * (0..self.n)
            .filter(|&i| self.is_voltage[i])
            .map(|i| q[i] * x[i])
            .sum::<f64>()
    }

    /// Local tolerance of unknown i at value x.
    #[inline]
    fn tolerance(&self, i: usize, x: f64) -> f64 {
        self.atol[i] + self.opts.reltol * x.abs()
    }
}

/// Per-instance step-control scalars.
#[derive(Clone, Copy, Debug)]
struct Control {
    /// The step the error control asks for next.
    h_want: f64,
    order: u8,
    /// Steps accepted at `order` since it last changed (see [`order_settled`]).
    steps_at_order: u8,
    /// Points in the history (1–3).
    hist_len: u8,
    /// The input of the last step; a change restarts the history.
    last_input: f64,
    /// A replayed transient that goes on into the next step.
    pending: Option<Pending>,
    /// The last step was exact and did not reach a bound.
    exact: bool,
    /// The last network step was one exact step that left the instance at
    /// its steady state for `last_input` (see [`REST_FRACTION`]).
    at_rest: bool,
    /// The power the sources deliver at rest (W), while `at_rest`.
    rest_power: f64,
    /// Newton's contraction as last measured (see `EARLY_ACCEPT`); 1 where
    /// unknown.
    contraction: f64,
    /// Energy the sources delivered since the reset (J).
    energy: f64,
    /// The record's newest charges are not yet Q(x): a replay left the
    /// state alone, and an exact step (which sets them in closed form)
    /// usually follows. The integrator evaluates them where it takes over.
    q_stale: bool,
    /// The newest point's algebraic unknowns (branch currents) predate a
    /// jump, a timed change or an input change, which can move them at
    /// once (a clamped reset's current follows the input): the power at
    /// that point is unknown, so the next accepted step's energy takes the
    /// power at its end alone.
    branches_stale: bool,
    stats: KernelStats,
}

impl Control {
    /// A fresh start at `order` (a restart, a failed solve).
    fn set_order(&mut self, order: u8) {
        self.order = order;
        self.steps_at_order = 0;
    }

    /// The order for the step after an accepted one.
    fn continue_at(&mut self, order: u8) {
        if order == self.order {
            self.steps_at_order = self.steps_at_order.saturating_add(1);
        } else {
            self.set_order(order);
        }
    }
}

/// Work counters, summed over instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelStats {
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    pub newton_iterations: u64,
    /// Spike transients replayed from the spike map.
    pub mapped_transients: u64,
    /// Spike transients integrated step by step (no usable map cell).
    pub integrated_transients: u64,
    /// Exact linear steps (quiescent instances).
    pub exact_steps: u64,
    /// Replayed transients that went on past the end of a network step.
    pub partial_replays: u64,
    /// Of those, the ones continued under a changed input.
    pub reentries: u64,
    /// Network steps skipped by instances at rest under an unchanged input.
    #[serde(default)]
    pub rest_steps: u64,
    /// Whole runs from rest answered by interpolating the response tables.
    #[serde(default)]
    pub table_interpolated: u64,
    /// Whole runs from rest that the tables simulated on their own.
    #[serde(default)]
    pub table_simulated: u64,
}

impl std::ops::AddAssign for KernelStats {
    fn add_assign(&mut self, o: Self) {
        self.accepted_steps += o.accepted_steps;
        self.rejected_steps += o.rejected_steps;
        self.newton_iterations += o.newton_iterations;
        self.mapped_transients += o.mapped_transients;
        self.integrated_transients += o.integrated_transients;
        self.exact_steps += o.exact_steps;
        self.partial_replays += o.partial_replays;
        self.reentries += o.reentries;
        self.rest_steps += o.rest_steps;
        self.table_interpolated += o.table_interpolated;
        self.table_simulated += o.table_simulated;
    }
}

/// Device evaluation buffers.
struct Work {
    f: Vec<f64>,
    q: Vec<f64>,
    jf: Vec<f64>,
    jq: Vec<f64>,
    jac: Vec<f64>,
    rhs: Vec<f64>,
}

/// One chunk's scratch space, allocated once.
struct Scratch {
    work: Work,
    x_new: Vec<f64>,
    c: Vec<f64>,
    g_new: Vec<f64>,
    spikes: Vec<(usize, f64)>,
    error: Option<NeuronError>,
    /// Spike-map cells that instances of this chunk wanted and did not find.
    missing_cells: Vec<i64>,
    capture: Capture,
    /// State at a located spike crossing, and map outputs.
    entry: Vec<f64>,
    exit: Vec<f64>,
    other: Vec<f64>,
    /// Quiescent bounds of the instance being stepped.
    bounds: Vec<QuiescentBound>,
    quiescent: QuiescentScratch,
    /// The delivered-power functional at this step's input.
    power: Vec<f64>,
    /// x and q (2n) before a device's state jump, for its energy.
    before_jump: Vec<f64>,
}

impl Work {
    fn new(n: usize) -> Self {
        Work {
            f: vec![0.0; n],
            q: vec![0.0; n],
            jf: vec![0.0; n * n],
            jq: vec![0.0; n * n],
            jac: vec![0.0; n * n],
            rhs: vec![0.0; n],
        }
    }
}

impl Scratch {
    fn new(n: usize, events: usize) -> Self {
        Scratch {
            work: Work::new(n),
            x_new: vec![0.0; n],
            c: vec![0.0; n],
            g_new: vec![0.0; events],
            spikes: Vec::with_capacity(64),
            error: None,
            missing_cells: Vec::new(),
            capture: Capture::Off,
            entry: vec![0.0; n],
            exit: vec![0.0; n],
            other: vec![0.0; n],
            bounds: Vec::with_capacity(16),
            quiescent: QuiescentScratch::default(),
            power: vec![0.0; n],
            before_jump: vec![0.0; 2 * n],
        }
    }
}

/// What `advance_instance` records while it builds a spike-map cell.
enum Capture {
    Off,
    /// Stop at the first located spike crossing; keep the state there.
    Entry(Option<Vec<f64>>),
    /// Record every accepted point after the entry.
    Trace(Trace),
}

struct Trace {
    /// Time of the spike (crossing of the `.SPIKE` level) since the entry.
    spike: Option<f64>,
    t_limit: f64,
    /// A spike or device event inside the transient: no cell.
    failed: bool,
    /// A later entry crossed before the spike (time since the entry, state).
    later_entry: Option<(f64, Vec<f64>)>,
    /// Every accepted point since the entry (time since the entry, state).
    times: Vec<f64>,
    states: Vec<f64>,
}

/// Replayed spike transients (the "spike map").
///
/// A spike of a memristive neuron is a fast transient (the device snaps
/// on, discharges the membrane, snaps off: about 50 µs for the MIF) that
/// the adaptive integrator resolves with ~200 steps. Under a constant input
/// the transient is a deterministic function of the state where it starts.
/// The engine locates that start, the upward crossing of the `.SPIKE`
/// level (the spike time itself), to within `event_tol`. There the fast
/// variables sit on the trajectory that leaves the fold, so the entry
/// state is, to integration accuracy, a function of the input current
/// alone.
///
/// Each cell holds, for one input I_k = (1 + ρ)^k, the entry state and the
/// transient integrated by this engine itself (same tolerances, same
/// device code) from there until the instance is quiescent again, or its
/// accepted steps have grown to `max_step`/100 (the fast dynamics are over)
/// and it is not quiescent within `QUIESCENCE_WAIT_S` of that, and as long
/// again. A spike
/// at input I between two cells is replayed: the exit time is the later of
/// the two cells' exits, the state there is interpolated linearly in
/// ln I, and the integrator restarts from it. Replay is refused and the
/// transient integrated when
/// - a neighbouring cell is not built yet (it is built after the step, for
///   later spikes),
/// - the entry state differs from the cells' by more than
///   `ENTRY_TOLERANCE` local tolerances (another history, e.g. a MIF2 that
///   spikes again while its reset memristor is still partly on),
/// - the two cells' exit states differ by more than `CELL_GATE` local
///   tolerances (a steep place in the input, near the rheobase),
/// - or the transient would not end within the current network step (the
///   input may change at the step boundary).
///
/// Cells are built on demand, after the step that missed them; a map
/// built up front over a range of inputs ([`NeuronKernel::prebuild_spike_map`])
/// is *frozen*: it can be shared between kernels, and what an instance
/// does no longer depends on what ran before it (needed where independent
/// runs, e.g. images, share a map). A frozen map still grows upward, up to
/// `MAP_EXTENSION` times its top, but only before a step whose inputs pass
/// the top, and for the kernel that takes that step (a copy of the map's
/// index; cells are shared): every cell a step can look up exists when the
/// step starts, and a cell is a function of its input alone, so the result
/// still does not depend on history. (A network's strongest neurons, such
/// as a CIFAR-10 network's first layer, are otherwise integrated spike by
/// spike.)
#[derive(Clone)]
pub struct SpikeMap {
    log_spacing: f64,
    cells: std::collections::HashMap<i64, Option<Arc<MapCell>>>,
    /// Unknowns per instance of the circuit it belongs to.
    unknowns: usize,
    frozen: bool,
    /// A frozen map's contiguous top key, and the highest it may grow to.
    top_key: i64,
    cap_key: i64,
    /// The cells grown above a frozen map's range, shared by the kernels
    /// that use it.
    grown: GrownCells,
}

type GrownCells = Arc<std::sync::Mutex<std::collections::HashMap<i64, Option<Arc<MapCell>>>>>;

/// How far above its prebuilt range a frozen map may grow (factor on the
/// current). Inputs above that are integrated.
const MAP_EXTENSION: f64 = 8.0;
/// The most integrator steps a cell grown above a frozen map's range may
/// take to build (the build stops there, and the map stops growing): MIF
/// cells take 600–2,400, MIF2 cells at its working inputs about 1,300;
/// integrating one spike takes 100–300.
const GROWTH_STEP_LIMIT: u64 = 20_000;
/// The most cells a frozen map grows by at once.
const GROWTH_BATCH: i64 = 64;

/// The transients of one input: from rest, then the following ones.
#[derive(Clone)]
struct MapCell {
    variants: Vec<Variant>,
    /// Whether the variants are every transient at this input: they
    /// repeat (the periodic orbit) or none follows.
    complete: bool,
}

#[derive(Clone)]
struct Variant {
    entry: Vec<f64>,
    /// Spike time since the entry (s).
    spike: f64,
    /// Every point the integrator accepted, from the entry on (time since
    /// the entry, and the n unknowns).
    times: Vec<f64>,
    states: Vec<f64>,
    t_exit: f64,
    h_exit: f64,
    /// The state at `t_exit`, where most replays end (looked up without a
    /// search through the record, which is mostly out of cache).
    exit_state: Vec<f64>,
    /// At each recorded point, ∫ v_in dt and ∫ supply·x dt since the entry
    /// (the input's and the voltage sources' delivered energy, per ampere
    /// of input and absolute); empty without an energy account.
    integrals: Vec<f64>,
    /// The integrals at the spike and at `t_exit`, where most replays'
    /// energy intervals start or end (no search through the record).
    spike_integral: [f64; 2],
    exit_integral: [f64; 2],
    /// The first recorded point at or after `t_exit` (see [`Variant::locate`]).
    exit_index: usize,
}

/// Cumulative integrals of a record for [`Variant::integrals`]
/// (trapezoidal, over the integrator's own points).
fn cumulative_integrals(plan: &Plan, times: &[f64], states: &[f64]) -> Vec<f64> {
    let Some(supply) = &plan.supply else {
        return Vec::new();
    };
    let n = plan.n;
    let at = |k: usize| {
        let x = &states[k * n..(k + 1) * n];
        [
            x[plan.input],
            supply.iter().zip(x).map(|(a, b)| a * b).sum::<f64>(),
        ]
    };
    let mut out = vec![0.0, 0.0];
    let mut prev = at(0);
    for k in 1..times.len() {
        let now = at(k);
        let h = times[k] - times[k - 1];
        let (a, b) = (out[2 * k - 2], out[2 * k - 1]);
        out.push(a + 0.5 * h * (prev[0] + now[0]));
        out.push(b + 0.5 * h * (prev[1] + now[1]));
        prev = now;
    }
    out
}

/// Entry states may differ from the map's by this many local tolerances
/// (atol + reltol·|x|): enough for the integration error of an approach (a
/// few µV at RELTOL=1e-6, which moves a MIF spike by nanoseconds); at 50 a
/// MIF2 entry whose reset memristor holds another remnant got through and
/// moved a spike by 16 µs.
const ENTRY_TOLERANCE: f64 = 10.0;
/// Neighbouring cells' states (at equal phase) may differ by this many
/// local tolerances.
const CELL_GATE: f64 = 1000.0;
/// A transient continued under a new input must pass the state it was left
/// in to within this many local tolerances.
const REENTRY_TOLERANCE: f64 = 10.0;
/// How many recorded points either side of the old phase the search for
/// the new one looks at.
const PHASE_SEARCH_POINTS: usize = 64;
/// How closely the phase of a continued transient is located (s), in at
/// most this many iterations.
const PHASE_RESOLUTION_S: f64 = 1e-11;
const PHASE_ITERATIONS: usize = 40;
/// Most transients recorded per cell.
const MAX_VARIANTS: usize = 4;
/// Longest simulated search for a cell's entry from the initial state (s).
const CELL_SEARCH_S: f64 = 2.0;
/// Spacing of the recorded points of a cell's transient (s).
const CELL_WINDOW_S: f64 = 10e-6;
/// Longest transient a cell may hold (s).
const CELL_TRANSIENT_S: f64 = 10e-3;
/// How long after its steps have grown a cell's transient waits to become
/// quiescent before it exits on the grown steps (s): a MIF's memristor
/// turns off within tens of µs of that; a MIF2's reset memristor takes
/// milliseconds, which a replay held that long would mostly cross a step
/// boundary for.
const QUIESCENCE_WAIT_S: f64 = 50e-6;

impl Variant {
    fn new(
        entry: Vec<f64>,
        spike: f64,
        times: Vec<f64>,
        states: Vec<f64>,
        t_exit: f64,
        h_exit: f64,
        integrals: Vec<f64>,
    ) -> Self {
        let exit_index = times.partition_point(|&x| x < t_exit);
        let mut v = Variant {
            exit_index,
            exit_state: Vec::new(),
            spike_integral: [0.0; 2],
            exit_integral: [0.0; 2],
            integrals,
            entry,
            spike,
            times,
            states,
            t_exit,
            h_exit,
        };
        let mut exit = vec![0.0; v.entry.len()];
        if v.state_at(t_exit, &mut exit) {
            v.exit_state = exit;
        }
        v.spike_integral = v.search_integral(spike);
        v.exit_integral = v.search_integral(t_exit);
        v
    }

    /// Points and weights that interpolate the record at time t since the
    /// entry: quadratic through three neighbouring accepted points, whose
    /// error is of the order of the integrator's own local error (linear
    /// interpolation between BDF2 steps at RELTOL=1e-6 errs by ~10 local
    /// tolerances). None past the record.
    #[inline]
    fn weights(&self, t: f64) -> Option<([usize; 3], [f64; 3])> {
        let m = self.times.len();
        let k = self.locate(t);
        if k >= m || t < 0.0 {
            return None;
        }
        if k == 0 || self.times[k] == t || m < 3 {
            if k == 0 || self.times[k] == t {
                return Some(([k, k, k], [1.0, 0.0, 0.0]));
            }
            let w = (t - self.times[k - 1]) / (self.times[k] - self.times[k - 1]);
            return Some(([k - 1, k, k], [1.0 - w, w, 0.0]));
        }
        let a = if k + 1 < m { k - 1 } else { k - 2 };
        let (ta, tb, tc) = (self.times[a], self.times[a + 1], self.times[a + 2]);
        Some((
            [a, a + 1, a + 2],
            [
                (t - tb) * (t - tc) / ((ta - tb) * (ta - tc)),
                (t - ta) * (t - tc) / ((tb - ta) * (tb - tc)),
                (t - ta) * (t - tb) / ((tc - ta) * (tc - tb)),
            ],
        ))
    }

    /// The first recorded point at or after t (`times.partition_point(|x|
    /// x < t)`). A pair's exit lies at or just past the exit of its cell
    /// with the shorter tail, so lookups there gallop from `exit_index`
    /// instead of searching the whole record, mostly out of cache.
    #[inline]
    fn locate(&self, t: f64) -> usize {
        let times = &self.times;
        if !(t >= self.t_exit) {
            return times.partition_point(|&x| x < t);
        }
        // Every point before `lo` is below t; find `hi` at or above it.
        let (mut lo, mut step) = (self.exit_index, 1);
        let hi = loop {
            let hi = (lo + step).min(times.len());
            if hi == times.len() || times[hi] >= t {
                break hi;
            }
            lo = hi;
            step *= 2;
        };
        lo + times[lo..hi].partition_point(|&x| x < t)
    }

    /// The state at time t since the entry; false past the record.
    fn state_at(&self, t: f64, out: &mut [f64]) -> bool {
        if t == self.t_exit && !self.exit_state.is_empty() {
            out.copy_from_slice(&self.exit_state);
            return true;
        }
        let n = out.len();
        let Some((k, w)) = self.weights(t) else {
            return false;
        };
        let (a, b, c) = (
            &self.states[k[0] * n..(k[0] + 1) * n],
            &self.states[k[1] * n..(k[1] + 1) * n],
            &self.states[k[2] * n..(k[2] + 1) * n],
        );
        for i in 0..n {
            out[i] = w[0] * a[i] + w[1] * b[i] + w[2] * c[i];
        }
        true
    }

    /// The cumulative integrals at time t since the entry (linear between
    /// recorded points; [0, 0] without an energy account or past the record).
    #[inline]
    fn integral_at(&self, t: f64) -> [f64; 2] {
        if t <= 0.0 {
            // Integrals count from the entry.
            [0.0; 2]
        } else if t == self.spike {
            self.spike_integral
        } else if t == self.t_exit {
            self.exit_integral
        } else {
            self.search_integral(t)
        }
    }

    fn search_integral(&self, t: f64) -> [f64; 2] {
        let m = self.times.len();
        if self.integrals.len() != 2 * m {
            return [0.0; 2];
        }
        let k = self.locate(t).min(m - 1);
        if k == 0 || self.times[k] <= t {
            return [self.integrals[2 * k], self.integrals[2 * k + 1]];
        }
        let w = (t - self.times[k - 1]) / (self.times[k] - self.times[k - 1]);
        let lerp = |i: usize| {
            let (a, b) = (self.integrals[2 * (k - 1) + i], self.integrals[2 * k + i]);
            a + w * (b - a)
        };
        [lerp(0), lerp(1)]
    }

    /// The part of this transient from time `t_c` (where it crossed a later
    /// entry, at state `entry`) on, as a transient of its own.
    fn suffix(&self, t_c: f64, entry: Vec<f64>) -> Variant {
        let n = entry.len();
        let first = self.times.partition_point(|&x| x <= t_c);
        let mut times = vec![0.0];
        let mut states = entry.clone();
        let base = self.integral_at(t_c);
        let mut integrals = if self.integrals.is_empty() {
            Vec::new()
        } else {
            vec![0.0, 0.0]
        };
        for k in first..self.times.len() {
            times.push(self.times[k] - t_c);
            states.extend_from_slice(&self.states[k * n..(k + 1) * n]);
            if !integrals.is_empty() {
                integrals.push(self.integrals[2 * k] - base[0]);
                integrals.push(self.integrals[2 * k + 1] - base[1]);
            }
        }
        Variant::new(
            entry,
            self.spike - t_c,
            times,
            states,
            self.t_exit - t_c,
            self.h_exit,
            integrals,
        )
    }
}

/// One transient interpolated between the variants of two neighbouring
/// cells, at weight w of the upper one.
///
/// The two are compared at the same *phase*, not the same time: up to the
/// spike, time is scaled so that both reach their spikes together (their
/// approaches differ in length), and after it both are shifted to their own
/// spike (the switching and discharge have the same shape). Interpolating
/// at equal times instead mixes a cell that has switched with one that has
/// not yet, wherever the step's end falls inside the fast part.
struct Pair<'m> {
    c0: &'m Variant,
    c1: &'m Variant,
    w: f64,
    /// Spike time since the entry.
    spike: f64,
    /// Where the replay ends (fast dynamics over), and how long after the
    /// spike that is.
    t_exit: f64,
    t_exit_after_spike: f64,
}

impl<'m> Pair<'m> {
    fn new(c0: &'m Variant, c1: &'m Variant, w: f64) -> Self {
        let spike = c0.spike + w * (c1.spike - c0.spike);
        let after = (c0.t_exit - c0.spike).max(c1.t_exit - c1.spike);
        Pair {
            c0,
            c1,
            w,
            spike,
            t_exit: spike + after,
            t_exit_after_spike: after,
        }
    }

    /// The time in `cell` at this pair's phase τ.
    #[inline]
    fn warp(&self, tau: f64, cell: &Variant) -> f64 {
        if tau == self.t_exit && cell.t_exit - cell.spike == self.t_exit_after_spike {
            // The cell's own exit, exactly (its state there is stored).
            return cell.t_exit;
        }
        if tau == self.spike {
            return cell.spike;
        }
        if tau <= self.spike && self.spike > 0.0 {
            tau * cell.spike / self.spike
        } else {
            cell.spike + (tau - self.spike)
        }
    }

    /// The state at phase τ, if both cells have it and they agree to within
    /// `CELL_GATE` local tolerances (else this is a steep place in the
    /// input, where interpolation is not to be trusted).
    fn state_at(&self, plan: &Plan, tau: f64, out: &mut [f64], other: &mut [f64]) -> bool {
        if !(self.c0.state_at(self.warp(tau, self.c0), out)
            && self.c1.state_at(self.warp(tau, self.c1), other))
        {
            return false;
        }
        for i in 0..plan.n {
            if (out[i] - other[i]).abs() > CELL_GATE * plan.tolerance(i, out[i]) {
                return false;
            }
            out[i] += self.w * (other[i] - out[i]);
        }
        true
    }

    /// Energy the sources deliver over phases [τa, τb] under `input`: each
    /// cell's integrals over its own (warped) interval, scaled back to the
    /// pair's time before the spike, interpolated like the states.
    fn energy(&self, ta: f64, tb: f64, input: f64) -> f64 {
        let mut total = 0.0;
        for (cell, weight) in [(self.c0, 1.0 - self.w), (self.c1, self.w)] {
            let mut j = [0.0; 2];
            let pre_end = tb.min(self.spike);
            if ta < pre_end {
                let (a, b) = (
                    cell.integral_at(self.warp(ta, cell)),
                    cell.integral_at(self.warp(pre_end, cell)),
                );
                let scale = if cell.spike > 0.0 {
                    self.spike / cell.spike
                } else {
                    1.0
                };
                for i in 0..2 {
                    j[i] += scale * (b[i] - a[i]);
                }
            }
            let post_start = ta.max(self.spike);
            if post_start < tb {
                let (a, b) = (
                    cell.integral_at(self.warp(post_start, cell)),
                    cell.integral_at(self.warp(tb, cell)),
                );
                for i in 0..2 {
                    j[i] += b[i] - a[i];
                }
            }
            total += weight * (input * j[0] + j[1]);
        }
        total
    }

    /// Largest difference between x and the state at phase τ, in local
    /// tolerances (infinite where the pair has no state there).
    fn residual(
        &self,
        plan: &Plan,
        tau: f64,
        x: &[f64],
        out: &mut [f64],
        other: &mut [f64],
    ) -> f64 {
        if !self.state_at(plan, tau, out, other) {
            return f64::INFINITY;
        }
        (0..plan.n)
            .map(|i| (x[i] - out[i]).abs() / plan.tolerance(i, out[i]))
            .fold(0.0, f64::max)
    }

    /// The phase at which this transient passes state x, searched from
    /// `guess` (the phase x had under the previous input, mapped onto this
    /// pair), with its residual (the largest difference in local
    /// tolerances). Two candidates: the guess itself (the fast switching
    /// hardly depends on the input), and the crossing of x's membrane
    /// voltage nearest to it. The membrane voltage is the slow variable
    /// that carries the phase: matched any other way (say, by least
    /// distance, which lets the fast memristor state set the phase), its
    /// error of a few local tolerances moved spikes by microseconds.
    fn phase_of(
        &self,
        plan: &Plan,
        x: &[f64],
        guess: f64,
        out: &mut [f64],
        other: &mut [f64],
    ) -> Option<(f64, f64)> {
        let guess = guess.clamp(0.0, self.t_exit);
        let at_guess = (guess, self.residual(plan, guess, x, out, other));
        let m = plan.membrane;
        let mut offset = |tau: f64| self.state_at(plan, tau, out, other).then(|| out[m] - x[m]);
        // Walk the lower cell's recorded points outward from the guess
        // until its own membrane voltage crosses x's (cheap: no
        // interpolation), then check that the pair brackets it too.
        let times = &self.c0.times;
        let to_phase = |t: f64| {
            if t <= self.c0.spike && self.c0.spike > 0.0 {
                t * self.spike / self.c0.spike
            } else {
                self.spike + (t - self.c0.spike)
            }
            .clamp(0.0, self.t_exit)
        };
        let n = plan.n;
        let own = |k: usize| self.c0.states[k * n + m] - x[m];
        let k0 = times.partition_point(|&t| to_phase(t) < guess);
        let last = times.len() - 1;
        let mut crossing = None;
        'walk: for d in 0..PHASE_SEARCH_POINTS {
            for k in [k0.checked_add(d), k0.checked_sub(d + 1)]
                .into_iter()
                .flatten()
            {
                if k >= last {
                    continue;
                }
                if own(k) == 0.0 || own(k).signum() != own(k + 1).signum() {
                    crossing = Some(k);
                    break 'walk;
                }
            }
        }
        let Some(k) = crossing else {
            return Some(at_guess);
        };
        let (tb, ta) = (to_phase(times[k]), to_phase(times[k + 1]));
        let (Some(fb), Some(fa)) = (offset(tb), offset(ta)) else {
            return Some(at_guess);
        };
        if fa.signum() == fb.signum() && fa != 0.0 && fb != 0.0 {
            return Some(at_guess);
        }
        // Regula falsi (Illinois) between the guess and the bracketing
        // point: the membrane voltage is smooth there.
        let (mut a, mut f_a, mut b, mut f_b) = (ta, fa, tb, fb);
        let mut lo = b;
        let mut side = 0;
        for _ in 0..PHASE_ITERATIONS {
            if f_b == 0.0 || (b - a).abs() <= PHASE_RESOLUTION_S {
                break;
            }
            let c = (a * f_b - b * f_a) / (f_b - f_a);
            let Some(f_c) = offset(c) else { break };
            lo = c;
            if f_c == 0.0 {
                break;
            }
            if f_c.signum() == f_b.signum() {
                (b, f_b) = (c, f_c);
                if side == -1 {
                    f_a *= 0.5;
                }
                side = -1;
            } else {
                (a, f_a) = (c, f_c);
                if side == 1 {
                    f_b *= 0.5;
                }
                side = 1;
            }
            if (b - a).abs() <= PHASE_RESOLUTION_S {
                break;
            }
        }
        let found = (lo, self.residual(plan, lo, x, out, other));
        Some(if at_guess.1 < found.1 {
            at_guess
        } else {
            found
        })
    }

    /// Phase τ of this pair mapped onto `other` (aligned at the entry and
    /// the spike, as between cells).
    fn phase_in(&self, tau: f64, other: &Pair) -> f64 {
        if tau <= self.spike && self.spike > 0.0 {
            tau * other.spike / self.spike
        } else {
            other.spike + (tau - self.spike)
        }
    }
}

/// Why a transient could not be replayed.
enum Refusal {
    /// No usable cell, entry or phase here: integrate.
    Refused,
    /// These cells must be built first.
    Missing(i64, i64),
}

/// An instance in the middle of a replayed transient at the end of a
/// network step: where it is (cell pair `key`, `key + 1`, variant, phase
/// since the entry), under which input, and whether its spike is out.
#[derive(Clone, Copy, Debug)]
struct Pending {
    key: i64,
    variant: usize,
    tau: f64,
    spiked: bool,
    input: f64,
    /// The upper cell's weight at `input` (kept: it costs a logarithm).
    weight: f64,
}

impl SpikeMap {
    fn new(spacing: f64, unknowns: usize) -> Self {
        SpikeMap {
            log_spacing: spacing.ln_1p(),
            cells: Default::default(),
            unknowns,
            frozen: false,
            top_key: i64::MAX,
            cap_key: i64::MAX,
            grown: Default::default(),
        }
    }

    fn key_of(&self, input: f64) -> f64 {
        crate::math::ln(input) / self.log_spacing
    }

    /// Number of cells (valid or refused).
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Whether the map was built up front and builds nothing more.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn input_of(&self, key: i64) -> f64 {
        (key as f64 * self.log_spacing).exp()
    }

    /// The cells around `input` (key of the lower one, weight of the upper).
    fn bracket(&self, input: f64) -> Result<(i64, f64, &MapCell, &MapCell), Refusal> {
        if !(input > 0.0) {
            return Err(Refusal::Refused);
        }
        let u = self.key_of(input);
        let k = u.floor();
        let w = u - k;
        let k = k as i64;
        if k >= self.top_key {
            // (Cells a frozen map holds above its top are not used.)
            return Err(Refusal::Refused);
        }
        match (self.cells.get(&k), self.cells.get(&(k + 1))) {
            (Some(Some(a)), Some(Some(b))) => Ok((k, w, &**a, &**b)),
            (Some(_), Some(_)) => Err(Refusal::Refused),
            _ if self.frozen => Err(Refusal::Refused),
            _ => Err(Refusal::Missing(k, k + 1)),
        }
    }

    /// The transient that starts at state `entry` under `input`: the pair
    /// of cell variants whose interpolated entry matches it to within
    /// `ENTRY_TOLERANCE` local tolerances.
    fn start(&self, plan: &Plan, input: f64, entry: &[f64]) -> Result<(i64, f64, usize), Refusal> {
        let (k, w, c0, c1) = self.bracket(input)?;
        let fits = |(a, b): &(&Variant, &Variant)| {
            (0..plan.n).all(|i| {
                let e = a.entry[i] + w * (b.entry[i] - a.entry[i]);
                (entry[i] - e).abs() <= ENTRY_TOLERANCE * plan.tolerance(i, e)
            })
        };
        c0.variants
            .iter()
            .zip(&c1.variants)
            .position(|p| fits(&p))
            .map(|j| (k, w, j))
            .ok_or(Refusal::Refused)
    }

    /// Variant `variant` of cells `key`, `key + 1`, the upper weighted `w`.
    fn pair(&self, key: i64, variant: usize, w: f64) -> Option<Pair<'_>> {
        let (Some(Some(a)), Some(Some(b))) = (self.cells.get(&key), self.cells.get(&(key + 1)))
        else {
            return None;
        };
        Some(Pair::new(
            a.variants.get(variant)?,
            b.variants.get(variant)?,
            w,
        ))
    }

    /// Where a transient left at the end of the last step (`p`, at state
    /// x) stands under the new input: the same place if the input did not
    /// change, else the phase at which the new input's transient passes x
    /// (to within `REENTRY_TOLERANCE`, and on the same side of its spike).
    fn resume(
        &self,
        plan: &Plan,
        p: &Pending,
        input: f64,
        x: &[f64],
        out: &mut [f64],
        other: &mut [f64],
    ) -> Result<(i64, f64, usize, f64), Refusal> {
        if input == p.input {
            return Ok((p.key, p.weight, p.variant, p.tau));
        }
        let old = self
            .pair(p.key, p.variant, p.weight)
            .ok_or(Refusal::Refused)?;
        let (k, w, c0, c1) = self.bracket(input)?;
        let variants = c0.variants.len().min(c1.variants.len());
        // The transient it was in first, then the others.
        let order = std::iter::once(p.variant).chain((0..variants).filter(|&j| j != p.variant));
        for j in order.filter(|&j| j < variants) {
            let Some(pair) = self.pair(k, j, w) else {
                continue;
            };
            let guess = old.phase_in(p.tau, &pair);
            let Some((tau, residual)) = pair.phase_of(plan, x, guess, out, other) else {
                continue;
            };
            if residual <= REENTRY_TOLERANCE && (tau >= pair.spike) == p.spiked {
                return Ok((k, w, j, tau));
            }
        }
        Err(Refusal::Refused)
    }
}

/// Build one cell: run the circuit from its initial state at `input` to
/// its first transient and record it; then go on to the next transients
/// (later spikes start from other states, e.g. with a reset memristor
/// still partly on) until the entry state repeats (the periodic orbit),
/// `MAX_VARIANTS` are recorded, or the search has taken `budget`
/// integrator steps.
fn build_cell(
    plan: &Plan,
    names: &[String],
    template: &[Box<dyn Device>],
    initial_record: &[f64],
    initial_control: &Control,
    input: f64,
    budget: u64,
) -> Option<MapCell> {
    let mut builder = CellBuilder {
        plan,
        names,
        devs: template.iter().map(|d| d.boxed_clone()).collect(),
        record: initial_record.to_vec(),
        older: vec![0.0; plan.older_stride()],
        ctl: *initial_control,
        s: Scratch::new(plan.n, plan.event_slots.len()),
        input,
    };
    let mut variants: Vec<Variant> = Vec::new();
    let mut complete = false;
    while variants.len() < MAX_VARIANTS {
        let Some(entry) = builder.search_entry(budget) else {
            // (No transient follows, unless the search ran out of steps.)
            complete = steps_taken(&builder.ctl) <= budget;
            break;
        };
        if variants
            .iter()
            .any(|v| entries_match(plan, &v.entry, &entry))
        {
            complete = true;
            break;
        }
        match builder.trace_from(entry) {
            Some((v, later)) => variants.extend(std::iter::once(v).chain(later)),
            None => break,
        }
    }
    (!variants.is_empty()).then_some(MapCell { variants, complete })
}

/// One instance's response to `input` from the initial state over
/// `duration`, integrated on its own exactly as inside a batch.
#[allow(clippy::too_many_arguments)]
fn respond(
    plan: &Plan,
    names: &[String],
    template: &[Box<dyn Device>],
    initial_record: &[f64],
    initial_control: &Control,
    map: Option<&SpikeMap>,
    input: f64,
    duration: f64,
    stored0: f64,
) -> Result<Response, NeuronError> {
    let mut devs: Vec<Box<dyn Device>> = template.iter().map(|d| d.boxed_clone()).collect();
    let mut record = initial_record.to_vec();
    let mut older = vec![0.0; plan.older_stride()];
    let mut ctl = *initial_control;
    let mut s = Scratch::new(plan.n, plan.event_slots.len());
    let mut v = 0.0;
    advance_instance(
        plan,
        names,
        &mut devs,
        &mut record,
        &mut older,
        &mut ctl,
        &mut v,
        &mut s,
        input,
        0.0,
        duration,
        0,
        map,
    )
    .map_err(|e| match e {
        NeuronError::StepFailed {
            time, step, detail, ..
        } => NeuronError::TableFailed {
            input,
            time,
            step,
            detail,
        },
        e => e,
    })?;
    let energy_j = instance_energy(plan, &ctl, &record, &devs, duration, stored0, &mut s.work);
    Ok(Response {
        spikes: s.spikes.iter().map(|&(_, t)| t).collect(),
        energy_j,
    })
}

/// Energy an instance's devices dissipated since the initial state (J):
/// what the sources delivered less the rise in stored energy.
fn instance_energy(
    plan: &Plan,
    c: &Control,
    r: &[f64],
    devs: &[Box<dyn Device>],
    time: f64,
    stored0: f64,
    work: &mut Work,
) -> f64 {
    let (n, oq) = (plan.n, plan.off_q());
    let x = &r[..n];
    let q = if c.q_stale {
        evaluate(devs, x, time, work);
        &work.q
    } else {
        &r[oq..oq + n]
    };
    c.energy - (plan.stored_energy(x, q) - stored0)
}

/// Integrator steps, accepted and rejected, an instance has taken.
fn steps_taken(ctl: &Control) -> u64 {
    ctl.stats.accepted_steps + ctl.stats.rejected_steps
}

/// Two entry states are the same to within `ENTRY_TOLERANCE`.
fn entries_match(plan: &Plan, a: &[f64], b: &[f64]) -> bool {
    (0..plan.n).all(|i| (a[i] - b[i]).abs() <= ENTRY_TOLERANCE * plan.tolerance(i, b[i]))
}

/// One instance integrated on its own, under a constant input, to build
/// a spike-map cell.
struct CellBuilder<'a> {
    plan: &'a Plan,
    names: &'a [String],
    devs: Vec<Box<dyn Device>>,
    record: Vec<f64>,
    older: Vec<f64>,
    ctl: Control,
    s: Scratch,
    input: f64,
}

impl CellBuilder<'_> {
    /// Advance the instance over [t0, t0 + dt]; None where it fails.
    fn advance(&mut self, t0: f64, dt: f64) -> Option<()> {
        let mut v = 0.0;
        advance_instance(
            self.plan,
            self.names,
            &mut self.devs,
            &mut self.record,
            &mut self.older,
            &mut self.ctl,
            &mut v,
            &mut self.s,
            self.input,
            t0,
            dt,
            0,
            None,
        )
        .ok()
    }

    /// Integrate from the current record to the next located entry; None
    /// where none comes within `CELL_SEARCH_S`, or within `budget` steps.
    fn search_entry(&mut self, budget: u64) -> Option<Vec<f64>> {
        self.s.capture = Capture::Entry(None);
        let window = 1e-3;
        let mut t0 = 0.0;
        loop {
            if t0 > CELL_SEARCH_S || steps_taken(&self.ctl) > budget {
                return None;
            }
            self.advance(t0, window)?;
            if let Capture::Entry(Some(e)) = &mut self.s.capture {
                return Some(std::mem::take(e));
            }
            t0 += window;
        }
    }

    /// Record the transient from `entry` (see [`SpikeMap`]), and the part
    /// of it from a later entry crossing before the spike (an entry at the
    /// quiescent bound passes the state crossing on its way to the spike).
    fn trace_from(&mut self, entry: Vec<f64>) -> Option<(Variant, Option<Variant>)> {
        let plan = self.plan;
        let n = plan.n;
        // Restart from the entry state at time 0.
        self.record[..n].copy_from_slice(&entry);
        evaluate(&self.devs, &entry, 0.0, &mut self.s.work);
        {
            let mut rec = Record {
                plan,
                r: &mut self.record,
                older: &mut self.older,
            };
            rec.restart(&mut self.ctl.hist_len, &self.s.work.q);
            let ot = plan.off_t();
            rec.r[ot] = 0.0;
            rec.refresh_indicators(&self.devs);
        }
        self.ctl.set_order(1);
        // The first step after a restart has no error estimate: keep it tiny.
        self.ctl.h_want = plan.opts.event_tol;
        self.s.capture = Capture::Trace(Trace {
            spike: None,
            t_limit: CELL_TRANSIENT_S,
            failed: false,
            later_entry: None,
            times: vec![0.0],
            states: entry.clone(),
        });
        // The integrator records every accepted point; the windows of
        // CELL_WINDOW_S only pace the checks for the exit (and record the ends
        // of exact steps).
        let h_exit = plan.opts.max_step * 1e-2;
        let mut exit: Option<(f64, f64)> = None;
        // The exit by step growth, held back while quiescence may follow.
        let mut grown: Option<(f64, f64)> = None;
        let exact_steps_before = self.ctl.stats.exact_steps;
        let mut t0 = 0.0;
        loop {
            self.advance(t0, CELL_WINDOW_S)?;
            t0 += CELL_WINDOW_S;
            match &mut self.s.capture {
                Capture::Trace(Trace { failed: true, .. }) => return None,
                Capture::Trace(trace) if trace.times.last().is_some_and(|&t| t < t0) => {
                    trace.times.push(t0);
                    trace.states.extend_from_slice(&self.record[..n]);
                }
                _ => {}
            }
            match exit {
                // After the spike, the fast dynamics are over once the steps
                // have grown, or once the instance is quiescent (it took an
                // exact step). Where quiescence follows the growth within
                // `QUIESCENCE_WAIT_S`, the exit waits for it: a replay that
                // ends quiescent goes on with an exact step at once, where
                // one that ends on grown steps is integrated until it is
                // (about nine steps per spike for a MIF at RELTOL=1e-3).
                // The exit is placed a whole number of windows after the
                // spike, so that neighbouring cells (aligned at their spikes)
                // mostly share it and replays end on their stored exit states.
                None => {
                    if let Capture::Trace(Trace {
                        spike: Some(spike), ..
                    }) = self.s.capture
                    {
                        let after = ((t0 - spike) / CELL_WINDOW_S).ceil() * CELL_WINDOW_S;
                        let here = (
                            spike + after,
                            self.ctl.h_want.max(h_exit).min(CELL_WINDOW_S),
                        );
                        // (A wait that has run out ends the cell on grown
                        // steps even where this window is quiescent.)
                        if grown.is_some_and(|(t, _)| t0 >= t + QUIESCENCE_WAIT_S) {
                            exit = grown;
                        } else if self.ctl.stats.exact_steps > exact_steps_before {
                            exit = Some(here);
                        } else if self.ctl.h_want >= h_exit && grown.is_none() {
                            grown = Some(here);
                        }
                    }
                }
                Some((t_exit, h)) if t0 >= 1.5 * t_exit + 2.0 * CELL_WINDOW_S => {
                    let Capture::Trace(Trace {
                        spike: Some(spike), ..
                    }) = self.s.capture
                    else {
                        return None;
                    };
                    if spike > t_exit {
                        return None;
                    }
                    let Capture::Trace(trace) = &mut self.s.capture else {
                        return None;
                    };
                    let later = trace.later_entry.take();
                    let (times, states) = (
                        std::mem::take(&mut trace.times),
                        std::mem::take(&mut trace.states),
                    );
                    let integrals = cumulative_integrals(plan, &times, &states);
                    let whole = Variant::new(entry, spike, times, states, t_exit, h, integrals);
                    let later = later.map(|(t_c, entry)| whole.suffix(t_c, entry));
                    return Some((whole, later));
                }
                _ => {}
            }
            if t0 > CELL_TRANSIENT_S {
                return None;
            }
        }
    }
}

/// Why a dense Newton solve failed (no allocation on the failure path).
#[derive(Clone, Copy, Debug)]
enum NewtonFail {
    Singular(usize),
    NotFinite(usize),
    NoConvergence {
        unknown: usize,
        update: f64,
        tolerance: f64,
    },
}

impl NewtonFail {
    fn describe(&self, names: &[String]) -> String {
        let name = |i: usize| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("unknown #{i}"))
        };
        match *self {
            NewtonFail::Singular(i) => format!("singular matrix at {}", name(i)),
            NewtonFail::NotFinite(i) => {
                format!("the solution became infinite or NaN at {}", name(i))
            }
            NewtonFail::NoConvergence {
                unknown,
                update,
                tolerance,
            } => {
                format!("Newton did not converge; worst: {} (last update {update:.3e}, tolerance {tolerance:.3e})", name(unknown))
            }
        }
    }
}

/// One nonlinear system F(x) + α·Q(x) + c − I_in·e_input (+ gmin, pins) = 0.
struct DenseSystem<'a> {
    time: f64,
    alpha: f64,
    /// History term c; empty means zero.
    history: &'a [f64],
    input: f64,
    gmin: f64,
    pins: &'a [(usize, f64)],
    max_iterations: usize,
    /// Accept a first iterate whose update, times this estimate of the
    /// iteration's contraction, is below `EARLY_ACCEPT` of the tolerance;
    /// 1 (or more) never does.
    contraction: f64,
}

/// See [`DenseSystem::contraction`]: Newton's error after an update δ is
/// about c·δ for contraction c, so a first iterate with c·δ ≤ 0.1·tol is
/// converged (as ODE codes such as CVODE judge it) without a second
/// evaluation and solve to show it.
const EARLY_ACCEPT: f64 = 0.1;

/// Strength of an `.ic` pin during the operating point (S), as the general engine.
const PIN_CONDUCTANCE: f64 = 1.0;

/// Evaluate every device at x. Sources take their DC value: inside a
/// neuron they are constant biases.
fn evaluate(devs: &[Box<dyn Device>], x: &[f64], time: f64, w: &mut Work) {
    w.f.fill(0.0);
    w.q.fill(0.0);
    w.jf.fill(0.0);
    w.jq.fill(0.0);
    let ctx = EvalCtx {
        x,
        time,
        source_scale: 1.0,
        dc_analysis: true,
    };
    let mut stamp = Stamp {
        f: &mut w.f,
        q: &mut w.q,
        jf: &mut w.jf,
        jq: &mut w.jq,
    };
    for d in devs {
        d.eval(&ctx, &mut stamp);
    }
}

/// Newton's method on one instance's dense system, from and into x.
/// Returns the contraction measured (the last update's size over the one
/// before), or None where it took one iteration.
fn newton(
    plan: &Plan,
    devs: &[Box<dyn Device>],
    w: &mut Work,
    x: &mut [f64],
    sys: &DenseSystem,
    iterations: &mut u64,
) -> Result<Option<f64>, NewtonFail> {
    let n = plan.n;
    let mut worst = NewtonFail::NoConvergence {
        unknown: 0,
        update: 0.0,
        tolerance: 0.0,
    };
    let mut last_ratio = f64::NAN;
    for iteration in 0..sys.max_iterations {
        *iterations += 1;
        evaluate(devs, x, sys.time, w);
        w.f[plan.input] -= sys.input;
        for i in 0..n {
            let c = sys.history.get(i).copied().unwrap_or(0.0);
            w.rhs[i] = -(w.f[i] + sys.alpha * w.q[i] + c);
        }
        for (j, (&jf, &jq)) in w.jac.iter_mut().zip(w.jf.iter().zip(&w.jq)) {
            *j = jf + sys.alpha * jq;
        }
        if sys.gmin > 0.0 {
            for i in 0..n {
                if plan.is_voltage[i] {
                    w.jac[i * n + i] += sys.gmin;
                    w.rhs[i] -= sys.gmin * x[i];
                }
            }
        }
        for &(i, v) in sys.pins {
            w.jac[i * n + i] += PIN_CONDUCTANCE;
            w.rhs[i] -= PIN_CONDUCTANCE * (x[i] - v);
        }
        if let Some(bad) = w.rhs.iter().position(|r| !r.is_finite()) {
            return Err(NewtonFail::NotFinite(bad));
        }
        match &plan.elimination {
            Some(e) => e.solve(&mut w.jac, &mut w.rhs),
            None => dense_solve(n, &mut w.jac, &mut w.rhs),
        }
        .map_err(NewtonFail::Singular)?;
        let dx = &mut w.rhs;
        for d in devs {
            d.limit(x, dx);
        }
        let mut converged = true;
        let mut worst_ratio = 0.0;
        for i in 0..n {
            let new = x[i] + dx[i];
            let tol = plan.opts.reltol * x[i].abs().max(new.abs()) + plan.atol[i];
            let ratio = dx[i].abs() / tol;
            if ratio > 1.0 {
                converged = false;
            }
            if ratio > worst_ratio {
                worst_ratio = ratio;
                worst = NewtonFail::NoConvergence {
                    unknown: i,
                    update: dx[i],
                    tolerance: tol,
                };
            }
            x[i] = new;
        }
        if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
            return Err(NewtonFail::NotFinite(bad));
        }
        let early = iteration == 0 && sys.contraction * worst_ratio <= EARLY_ACCEPT;
        if converged || plan.linear || early {
            // Leave Q at the solution in w.q: a first-order update from the
            // last evaluation, exact for linear charges (capacitors, the
            // memristor state row) and within the Newton tolerance squared
            // otherwise. It saves a device evaluation per accepted step.
            for i in 0..n {
                let row = &w.jq[i * n..(i + 1) * n];
                w.q[i] += row.iter().zip(dx.iter()).map(|(a, b)| a * b).sum::<f64>();
            }
            return Ok((iteration >= 1).then(|| worst_ratio / last_ratio));
        }
        last_ratio = worst_ratio;
    }
    Err(worst)
}

/// Views into one instance's record.
struct Record<'a> {
    plan: &'a Plan,
    r: &'a mut [f64],
    /// The older points' (x, q) pairs, newest first.
    older: &'a mut [f64],
}

impl Record<'_> {
    #[inline]
    fn x(&self, k: usize) -> &[f64] {
        let n = self.plan.n;
        match k {
            0 => &self.r[..n],
            _ => &self.older[(k - 1) * 2 * n..(k - 1) * 2 * n + n],
        }
    }
    #[inline]
    fn q(&self, k: usize) -> &[f64] {
        let n = self.plan.n;
        match k {
            0 => &self.r[n..2 * n],
            _ => &self.older[(k - 1) * 2 * n + n..k * 2 * n],
        }
    }
    /// The newest point's x and q, to be overwritten.
    #[inline]
    fn newest_mut(&mut self) -> (&mut [f64], &mut [f64]) {
        let (n, oq) = (self.plan.n, self.plan.off_q());
        let (x, rest) = self.r.split_at_mut(oq);
        (&mut x[..n], &mut rest[..n])
    }
    #[inline]
    fn t(&self, k: usize) -> f64 {
        self.r[self.plan.off_t() + k]
    }
    #[inline]
    fn qdot_mut(&mut self) -> &mut [f64] {
        let (n, o) = (self.plan.n, self.plan.off_qdot());
        &mut self.r[o..o + n]
    }
    #[inline]
    fn qdot(&self) -> &[f64] {
        let (n, o) = (self.plan.n, self.plan.off_qdot());
        &self.r[o..o + n]
    }
    #[inline]
    fn g(&self) -> &[f64] {
        let o = self.plan.off_g();
        &self.r[o..o + self.plan.event_slots.len()]
    }

    /// Make (t, x, q) the newest point, keeping at most `plan.history`.
    fn push(&mut self, len: &mut u8, t: f64, x: &[f64], q: &[f64]) {
        let (n, k) = (self.plan.n, self.plan.history);
        let ot = self.plan.off_t();
        // (Only the points in use move.)
        let keep = (*len as usize).min(k - 1);
        if keep > 0 {
            self.older.copy_within(0..(keep - 1) * 2 * n, 2 * n);
            self.older[..2 * n].copy_from_slice(&self.r[..2 * n]);
        }
        self.r.copy_within(ot..ot + keep, ot + 1);
        self.r[..n].copy_from_slice(x);
        self.r[n..2 * n].copy_from_slice(q);
        self.r[ot] = t;
        *len = (*len + 1).min(k as u8);
    }

    /// Continue from the newest point (state x, at time t) after a jump (an
    /// exact step or a replay): the history restarts there at order 1, the
    /// next step asked for is `h_next`, and the event indicators are x's.
    fn restart_here(&mut self, ctl: &mut Control, devs: &[Box<dyn Device>], t: f64, h_next: f64) {
        let ot = self.plan.off_t();
        self.r[ot] = t;
        self.forget_history(&mut ctl.hist_len);
        self.refresh_indicators(devs);
        ctl.set_order(1);
        ctl.h_want = h_next;
        ctl.exact = false;
        ctl.contraction = 1.0;
    }

    /// Event indicators at the newest point.
    fn refresh_indicators(&mut self, devs: &[Box<dyn Device>]) {
        let (n, og, e) = (self.plan.n, self.plan.off_g(), self.plan.event_slots.len());
        let (xs, rest) = self.r.split_at_mut(og);
        indicators(self.plan, devs, &xs[..n], &mut rest[..e]);
    }

    /// Forget all but the newest point (after a discontinuity), with q its
    /// charges.
    fn restart(&mut self, len: &mut u8, q: &[f64]) {
        let (n, oq) = (self.plan.n, self.plan.off_q());
        self.r[oq..oq + n].copy_from_slice(q);
        self.forget_history(len);
    }

    /// Forget all but the newest point, whose charges are in the record.
    fn forget_history(&mut self, len: &mut u8) {
        self.qdot_mut().fill(0.0);
        *len = 1;
    }

    /// Integration coefficients: dQ/dt ≈ α·Q(x) + c.
    fn coefficients(&self, order: usize, len: u8, h: f64, c: &mut [f64]) -> f64 {
        if order >= 3 {
            return bdf_coefficients(self.t(0) + h, &self.times()[..order], |j| self.q(j), c);
        }
        let h_prev = if len >= 2 { self.t(0) - self.t(1) } else { h };
        let q1 = if len >= 2 { Some(self.q(1)) } else { None };
        integration_coefficients(
            self.plan.opts.method,
            order,
            h,
            h_prev,
            self.q(0),
            q1,
            self.qdot(),
            c,
        )
    }

    /// The times of the points kept (the first `len` are in use).
    #[inline]
    fn times(&self) -> &[f64] {
        let ot = self.plan.off_t();
        &self.r[ot..ot + self.plan.history]
    }

    /// Extrapolate the history to time t: linearly at orders 1 and 2, by
    /// the polynomial through the order + 1 newest points above.
    fn predict(&self, len: u8, order: usize, t: f64, out: &mut [f64]) {
        if order >= 3 && len as usize > order {
            extrapolate(t, &self.times()[..=order], |j| self.x(j), out);
        } else if len >= 2 {
            let (t0, t1) = (self.t(0), self.t(1));
            let w = (t - t0) / (t0 - t1);
            let (x0, x1) = (self.x(0), self.x(1));
            for i in 0..out.len() {
                out[i] = x0[i] + w * (x0[i] - x1[i]);
            }
        } else {
            out.copy_from_slice(self.x(0));
        }
    }

    /// Largest ratio of estimated local truncation error to tolerance, from
    /// divided differences through the new point (as the general engine).
    fn error_ratio(&self, len: u8, order: usize, t_new: f64, x_new: &[f64]) -> Option<f64> {
        if len < 2 {
            return None;
        }
        let plan = self.plan;
        let order = if len < 3 { 1 } else { order };
        let h = t_new - self.t(0);
        let ts = [
            t_new,
            self.t(0),
            self.t(1),
            if len >= 3 { self.t(2) } else { 0.0 },
        ];
        let constant = match plan.opts.method {
            Method::Trap => 0.5,
            _ => 4.0 / 3.0,
        };
        let mut worst: f64 = 0.0;
        for i in 0..plan.n {
            if !plan.differential[i] {
                continue;
            }
            let xs = [
                x_new[i],
                self.x(0)[i],
                self.x(1)[i],
                if len >= 3 { self.x(2)[i] } else { 0.0 },
            ];
            let d1 = |a: usize| (xs[a] - xs[a + 1]) / (ts[a] - ts[a + 1]);
            let d2 = |a: usize| (d1(a) - d1(a + 1)) / (ts[a] - ts[a + 2]);
            let lte = if order == 1 {
                h * h * d2(0)
            } else {
                let d3 = (d2(0) - d2(1)) / (ts[0] - ts[3]);
                constant * h * h * h * d3
            };
            let tol = plan.opts.trtol
                * (plan.opts.reltol * x_new[i].abs().max(self.x(0)[i].abs()) + plan.atol[i]);
            worst = worst.max(lte.abs() / tol);
        }
        Some(worst)
    }

    /// Error ratios (estimated local truncation error over tolerance, the
    /// largest over the differential unknowns) of the step to `t_new` as
    /// if it had been taken at orders k − 1, k and k + 1 (NaN where the
    /// history is too short, or k + 1 above the highest order): the
    /// variable-order BDF's order choice.
    fn error_ratios(&self, len: u8, k: usize, limit: usize, t_new: f64, x_new: &[f64]) -> [f64; 3] {
        let plan = self.plan;
        let points = len as usize + 1;
        let mut ts = [0.0; MAX_HISTORY + 1];
        ts[0] = t_new;
        ts[1..points].copy_from_slice(&self.times()[..points - 1]);
        let estimate = ErrorEstimate::new(&ts[..points], k, limit);
        let mut worst = [0.0f64; 3];
        let mut xs = [0.0; ESTIMATE_POINTS];
        for i in 0..plan.n {
            if !plan.differential[i] {
                continue;
            }
            xs[0] = x_new[i];
            for (j, x) in xs[1..points].iter_mut().enumerate() {
                *x = self.x(j)[i];
            }
            let tol = plan.opts.trtol
                * (plan.opts.reltol * x_new[i].abs().max(self.x(0)[i].abs()) + plan.atol[i]);
            let lte = estimate.errors(&mut xs);
            for (w, e) in worst.iter_mut().zip(lte) {
                // (NaN stays NaN: max would drop it.)
                *w = if e.is_nan() { e } else { w.max(e.abs() / tol) };
            }
        }
        worst
    }
}

/// The batched engine's highest BDF order unless `.options maxord` says.
const DEFAULT_MAX_ORDER: usize = 4;

/// Points a record may keep: orders up to the highest, and one more
/// point for the error estimate's divided differences.
const MAX_HISTORY: usize = MAX_BDF_ORDER + 1;

/// Event indicators of one instance's devices at x.
#[inline]
fn indicators(plan: &Plan, devs: &[Box<dyn Device>], x: &[f64], out: &mut [f64]) {
    for (g, &(d, k)) in out.iter_mut().zip(&plan.event_slots) {
        *g = devs[d].event_indicator(k, x);
    }
}

/// The power the DC voltage sources deliver, as a linear functional of the
/// state: a source of value V whose branch current i flows into its +
/// terminal delivers −V·i. None unless every device is one whose energy the
/// account follows (sources that deliver, capacitors that store,
/// resistors, memristors, switches and resets that dissipate): dissipated
/// energy is then the delivered energy less the change in stored energy.
fn supply_power(devices: &[Box<dyn Device>], n: usize) -> Option<Vec<f64>> {
    let mut supply = vec![0.0; n];
    for d in devices {
        let any = d.as_any();
        if let Some(v) = any.downcast_ref::<VSource>() {
            if v.waveform.is_some() {
                return None;
            }
            supply[v.branch] -= v.dc;
        } else if !(any.is::<Capacitor>()
            || any.is::<Resistor>()
            || any.is::<Memristor>()
            || any.is::<Switch>()
            || any.is::<Reset>())
        {
            return None;
        }
    }
    Some(supply)
}

/// Bounds that stop exact steps short of the spike rule's crossings
/// (and of the spike map's entry level), so that the integrator sees them.
fn spike_bounds(rule: &SpikeRule, map_entry: f64) -> Vec<QuiescentBound> {
    const MARGIN: f64 = 1e-6;
    let bound = |unknown: usize, level: f64| QuiescentBound {
        plus: Some(unknown),
        minus: None,
        enter: level - 2.0 * MARGIN,
        leave: level - MARGIN,
    };
    match rule {
        SpikeRule::States { unknowns, level } => {
            let level = level.min(level * map_entry);
            unknowns.iter().map(|&u| bound(u, level)).collect()
        }
        SpikeRule::Threshold { node, level } => vec![bound(*node, *level)],
        SpikeRule::Reset { .. } => Vec::new(),
    }
}

/// Whether every device of the instance is quiescent at x, with x inside
/// every bound's entry level, or, for an instance that is already taking
/// exact steps (`inside`), its leave level (the hysteresis keeps an
/// instance from switching back and forth); the bounds to watch are left in
/// `bounds`.
fn quiescent_at(
    plan: &Plan,
    devs: &[Box<dyn Device>],
    x: &[f64],
    inside: bool,
    bounds: &mut Vec<QuiescentBound>,
) -> bool {
    bounds.clear();
    bounds.extend_from_slice(&plan.spike_bounds);
    let devs = plan.quiescence_devices.as_deref().unwrap_or(devs);
    devs.iter().all(|d| d.quiescent(x, bounds))
        && bounds
            .iter()
            .all(|b| b.value(x) <= if inside { b.leave } else { b.enter })
}

/// Replay the spike transient that starts at `t_entry` from the state in
/// `s.entry`, if the map has it: the spike is recorded and the instance
/// continues from the exit state, or, if the transient goes on past the
/// step's end, from its state there (see [`follow`]). Returns the time it
/// continues from; None (the transient is to be integrated) otherwise.
#[allow(clippy::too_many_arguments)]
fn replay(
    plan: &Plan,
    devs: &[Box<dyn Device>],
    rec: &mut Record,
    ctl: &mut Control,
    s: &mut Scratch,
    map: &SpikeMap,
    input: f64,
    t_entry: f64,
    dt: f64,
    instance: usize,
) -> Option<f64> {
    let (key, weight, variant) = match map.start(plan, input, &s.entry) {
        Ok(found) => found,
        Err(why) => return refused(s, why),
    };
    let at = Pending {
        key,
        variant,
        tau: 0.0,
        spiked: false,
        input,
        weight,
    };
    follow(plan, devs, rec, ctl, s, map, at, t_entry, dt, instance)
}

/// A refused replay: cells the map lacks are noted for building. None, so
/// that the transient is integrated.
fn refused(s: &mut Scratch, why: Refusal) -> Option<f64> {
    if let Refusal::Missing(a, b) = why {
        s.missing_cells.extend([a, b]);
    }
    None
}

/// Go on with the transient of the last step (`ctl.pending`) under this
/// step's input, from the start of the step. Returns the time the instance
/// continues from; None (the transient is integrated from the state it was
/// left in) where the map cannot place it.
#[allow(clippy::too_many_arguments)]
fn resume(
    plan: &Plan,
    devs: &[Box<dyn Device>],
    rec: &mut Record,
    ctl: &mut Control,
    s: &mut Scratch,
    map: &SpikeMap,
    p: Pending,
    input: f64,
    t: f64,
    dt: f64,
    instance: usize,
) -> Option<f64> {
    s.entry.copy_from_slice(rec.x(0));
    let (key, weight, variant, tau) =
        match map.resume(plan, &p, input, &s.entry, &mut s.exit, &mut s.other) {
            Ok(found) => found,
            Err(why) => return refused(s, why),
        };
    if input != p.input {
        ctl.stats.reentries += 1;
    }
    let at = Pending {
        key,
        variant,
        tau,
        spiked: p.spiked,
        input,
        weight,
    };
    follow(plan, devs, rec, ctl, s, map, at, t, dt, instance)
}

/// First delay after a refused continuation before it is tried again (s);
/// each further try waits twice as long. By then the fast unknowns (a
/// memristor's state near its fold) have relaxed onto the new input's
/// transient, which they rarely match at once: the membrane voltage is
/// placed, but the state, interpolated between cells, sits tens of local
/// tolerances off.
const RETRY_FIRST_S: f64 = 2e-6;

/// A transient whose continuation under a new input was refused at the
/// start of a step, to be tried again from the integrated state.
#[derive(Clone, Copy, Debug)]
struct Retry {
    /// The transient as it stood at the step's start, the spike marked once
    /// the integrator has recorded it.
    pending: Pending,
    /// Step time of the next try.
    next: f64,
}

/// Replay the transient `at` (its cell pair) from phase `at.tau` at step time t: to its exit if that
/// comes before the step's end (the instance continues from the exit
/// state), else to the step's end, where the instance is left with the
/// interpolated state and `ctl.pending` says where it is. The spike is
/// recorded when it falls in the replayed part. None, with nothing
/// changed, where the pair has no state at the needed phase.
#[allow(clippy::too_many_arguments)]
fn follow(
    plan: &Plan,
    devs: &[Box<dyn Device>],
    rec: &mut Record,
    ctl: &mut Control,
    s: &mut Scratch,
    map: &SpikeMap,
    mut at: Pending,
    t: f64,
    dt: f64,
    instance: usize,
) -> Option<f64> {
    let pair = map.pair(at.key, at.variant, at.weight)?;
    let left = dt - t;
    let ends = pair.t_exit - at.tau <= left - plan.opts.min_step;
    let tau_end = if ends { pair.t_exit } else { at.tau + left };
    if !pair.state_at(plan, tau_end, &mut s.exit, &mut s.other) {
        return None;
    }
    ctl.energy += pair.energy(at.tau, tau_end, at.input);
    let spike_in = pair.spike - at.tau;
    if !at.spiked && spike_in < tau_end - at.tau {
        s.spikes.push((instance, t + spike_in.max(0.0)));
        at.spiked = true;
    }
    let t_new = t + (tau_end - at.tau);
    rec.newest_mut().0.copy_from_slice(&s.exit);
    ctl.q_stale = true;
    if ends {
        ctl.stats.mapped_transients += 1;
        ctl.pending = None;
        // The first step after a restart has no error estimate.
        let h = 0.1 * pair.c0.h_exit.min(pair.c1.h_exit);
        rec.restart_here(ctl, devs, t_new, h);
        Some(t_new)
    } else {
        ctl.stats.partial_replays += 1;
        at.tau = tau_end;
        ctl.pending = Some(at);
        rec.restart_here(ctl, devs, dt, plan.restart_step());
        Some(dt)
    }
}

/// Advance one instance over [t0, t0 + dt] (times in the record are
/// relative to t0 while it runs).
#[allow(clippy::too_many_arguments)]
fn advance_instance(
    plan: &Plan,
    names: &[String],
    devs: &mut [Box<dyn Device>],
    record: &mut [f64],
    older: &mut [f64],
    ctl: &mut Control,
    v_mem: &mut f64,
    s: &mut Scratch,
    input: f64,
    t0: f64,
    dt: f64,
    instance: usize,
    map: Option<&SpikeMap>,
) -> Result<(), NeuronError> {
    let o = &plan.opts;
    // Spike crossings are located like device events when a transient may
    // start there (replay or map building).
    let locate_spikes = plan.map_rule && (map.is_some() || !matches!(s.capture, Capture::Off));
    let hmin = o.min_step;
    let mut rec = Record {
        plan,
        r: record,
        older,
    };
    let fail = |t: f64, h: f64, detail: String| NeuronError::StepFailed {
        instance,
        time: t0 + t,
        step: h,
        detail,
    };

    if ctl.at_rest && input == ctl.last_input {
        // Nothing moves: the record's newest point (time 0 of this step)
        // stays valid for the next one. The sources deliver steady power.
        ctl.stats.rest_steps += 1;
        ctl.energy += dt * ctl.rest_power;
        return Ok(());
    }
    ctl.at_rest = false;
    if input != ctl.last_input {
        // The input has a corner here: the old history no longer describes
        // the solution's derivatives. Q at x(0) is already in the record.
        rec.forget_history(&mut ctl.hist_len);
        ctl.set_order(1);
        ctl.h_want = plan
            .restart_step()
            .max(ctl.h_want.min(plan.restart_step() * 10.0));
        ctl.last_input = input;
        ctl.branches_stale = true;
    }

    let mut t = 0.0;
    let energy = plan.delivered_power(input, &mut s.power);
    // A replayed transient left at the end of the last step goes on.
    // A continuation refused under the new input is tried again while the
    // integrator carries the instance on (see `Retry`).
    let mut retry: Option<Retry> = None;
    if let Some(p) = ctl.pending.take() {
        if let (Some(map), Capture::Off) = (map, &s.capture) {
            match resume(
                plan, devs, &mut rec, ctl, s, map, p, input, 0.0, dt, instance,
            ) {
                Some(t_new) => t = t_new,
                // (Under an unchanged input the transient is simply
                // followed: a refusal there is final.)
                None if input != p.input => {
                    retry = Some(Retry {
                        pending: p,
                        next: RETRY_FIRST_S,
                    })
                }
                None => {}
            }
        }
    }
    let mut forced: Option<f64> = None;
    // Check for quiescence at the start and after every accepted step.
    let mut try_exact = plan.quiescent.is_some();
    while t < dt - hmin {
        if let (true, None, Some(qm)) = (try_exact, forced, &plan.quiescent) {
            try_exact = false;
            if quiescent_at(plan, devs, rec.x(0), ctl.exact, &mut s.bounds) {
                qm.fit_scratch(&mut s.quiescent);
                // (In place: the record's newest point becomes the step's end.)
                let (x, q) = rec.newest_mut();
                let (elapsed, stopped) =
                    qm.advance(x, q, input, dt - t, &s.bounds, &mut s.quiescent);
                ctl.q_stale = false;
                ctl.branches_stale = false;
                ctl.stats.exact_steps += 1;
                // (Only where nothing moves by itself, and not while a
                // spike-map cell is traced.)
                ctl.at_rest = plan.untimed
                    && matches!(s.capture, Capture::Off)
                    && t == 0.0
                    && !stopped
                    && qm.at_rest(rec.x(0), &s.quiescent, |i, x| {
                        REST_FRACTION * plan.tolerance(i, x)
                    });
                // Back in the quiescent region: the transient is over.
                retry = None;
                if energy {
                    ctl.energy += qm.integral(&s.power, elapsed, &s.quiescent);
                    if ctl.at_rest {
                        ctl.rest_power = qm.steady_value(&s.power, &s.quiescent);
                    }
                }
                t += elapsed;
                // The integrator's first step has no error estimate: if it
                // takes over (here at a bound, or at the next step if the
                // state has left the entry region), it starts small.
                rec.restart_here(ctl, devs, t, plan.restart_step());
                // An instance that reaches the step's end inside its
                // quiescent region goes on with an exact step next time.
                ctl.exact = !stopped;
                if stopped && plan.map_rule {
                    // Leaving the quiescent region is where a spike's
                    // transient starts, as early as it can: replay it whole
                    // (approach, escape, spike, reset) where it fits.
                    s.entry.copy_from_slice(rec.x(0));
                    if let Capture::Entry(slot) = &mut s.capture {
                        *slot = Some(s.entry.clone());
                        return Ok(());
                    }
                    if let (Some(map), Capture::Off) = (map, &s.capture) {
                        if let Some(t_exit) =
                            replay(plan, devs, &mut rec, ctl, s, map, input, t, dt, instance)
                        {
                            t = t_exit;
                            // A replay usually exits in the quiescent
                            // region: go on with an exact step at once.
                            try_exact = true;
                        }
                    }
                }
                continue;
            }
        }
        if ctl.q_stale {
            evaluate(devs, rec.x(0), t0 + t, &mut s.work);
            rec.newest_mut().1.copy_from_slice(&s.work.q);
            ctl.q_stale = false;
        }
        let timed = devs
            .iter()
            .filter_map(|d| d.next_timed_change(t0 + t))
            .fold(f64::INFINITY, f64::min)
            - t0;
        let bp = dt.min(timed);
        let (h, clipped, lands_on_bp) = match forced.take() {
            Some(h) => (h, true, false),
            None => {
                let want = ctl.h_want.min(o.max_step);
                if t + want >= bp - hmin {
                    (bp - t, true, true)
                } else if t + 2.0 * want > bp {
                    // Avoid leaving a sliver before the breakpoint.
                    (0.5 * (bp - t), true, false)
                } else {
                    (want, false, false)
                }
            }
        };
        let order = ctl.order as usize;
        let len = ctl.hist_len;
        let alpha = rec.coefficients(order, len, h, &mut s.c);
        rec.predict(len, order, t + h, &mut s.x_new);
        let sys = DenseSystem {
            time: t0 + t + h,
            alpha,
            history: &s.c,
            input,
            gmin: 0.0,
            pins: &[],
            max_iterations: o.max_newton_iterations,
            contraction: ctl.contraction,
        };
        let solved = newton(
            plan,
            devs,
            &mut s.work,
            &mut s.x_new,
            &sys,
            &mut ctl.stats.newton_iterations,
        );
        // An estimate grows stale while first iterates are accepted: it
        // quadruples each time, so that every few steps one is measured.
        ctl.contraction = match solved {
            // (A near-linear stretch measures almost 0: the floor keeps a
            // first update of more than 100 tolerances from passing.)
            Ok(Some(c)) => c.clamp(1e-3, 1.0),
            Ok(None) => (4.0 * ctl.contraction).min(1.0),
            Err(_) => 1.0,
        };
        if let Err(e) = solved {
            ctl.stats.rejected_steps += 1;
            ctl.h_want = h / 8.0;
            ctl.set_order(1);
            if ctl.h_want < hmin {
                return Err(fail(
                    t,
                    h,
                    format!(
                        "{} (the step fell below the minimum {hmin:.1e} s)",
                        e.describe(names)
                    ),
                ));
            }
            continue;
        }
        let t_new = t + h;
        // Above order 2 the order is chosen by the errors the step would
        // have had at the neighbouring orders, once it has been held a while.
        let ratios = (plan.max_order > 2 && len >= 2).then(|| {
            let k = order.min(len as usize - 1);
            let settled = order_settled(ctl.steps_at_order as usize, k);
            let limit = if settled { plan.max_order() } else { k };
            (k, rec.error_ratios(len, k, limit, t_new, &s.x_new), settled)
        });
        let ratio = match ratios {
            Some((_, r, _)) => Some(r[1]),
            None => rec.error_ratio(len, order, t_new, &s.x_new),
        };
        if let Some(r) = ratio {
            if r > 1.0 {
                ctl.stats.rejected_steps += 1;
                ctl.contraction = 1.0;
                ctl.h_want = h * (0.9 * step_factor(r, order)).clamp(0.1, 0.9);
                if ctl.h_want < hmin {
                    return Err(fail(
                        t,
                        h,
                        "the truncation error stays above tolerance at the minimum step".into(),
                    ));
                }
                continue;
            }
        }

        // Device events: the earliest upward zero crossing in this step.
        indicators(plan, devs, &s.x_new, &mut s.g_new);
        let mut event: Option<(usize, f64)> = None;
        for (e, (&a, &b)) in rec.g().iter().zip(&s.g_new).enumerate() {
            if a < 0.0 && b >= 0.0 {
                let theta = a / (a - b);
                if event.is_none_or(|(_, th)| theta < th) {
                    event = Some((e, theta));
                }
            }
        }
        if let Some((_, theta)) = event {
            if (1.0 - theta) * h > o.event_tol {
                // Retry with a step that ends just past the crossing.
                ctl.stats.rejected_steps += 1;
                forced = Some(theta * h + 0.5 * o.event_tol);
                continue;
            }
        }
        let (signal_before, signal_after) =
            (plan.spike.signal(rec.x(0)), plan.spike.signal(&s.x_new));
        let crossing = |level: f64| match (signal_before, signal_after) {
            (Some((a, _)), Some((b, _))) if a < level && b >= level => Some((level - a) / (b - a)),
            _ => None,
        };
        let spike_theta = signal_before.and_then(|(_, level)| crossing(level));
        let entry_theta = match (locate_spikes, event) {
            (true, None) => {
                crossing(plan.entry_levels[0]).or_else(|| crossing(plan.entry_levels[1]))
            }
            _ => None,
        };
        if let Some(theta) = entry_theta {
            if (1.0 - theta) * h > o.event_tol {
                ctl.stats.rejected_steps += 1;
                forced = Some(theta * h + 0.5 * o.event_tol);
                continue;
            }
        }

        // Accept.
        ctl.stats.accepted_steps += 1;
        ctl.exact = false;
        try_exact = plan.quiescent.is_some();
        for i in 0..plan.n {
            s.c[i] += alpha * s.work.q[i];
        }
        rec.qdot_mut().copy_from_slice(&s.c);
        if energy {
            // (Stale branch currents at the start: the end's power alone.)
            let new = &s.x_new[..];
            let old = if ctl.branches_stale { new } else { rec.x(0) };
            let p: f64 = (0..plan.n).map(|i| s.power[i] * (old[i] + new[i])).sum();
            ctl.energy += 0.5 * h * p;
        }
        ctl.branches_stale = false;
        if let Some(theta) = spike_theta {
            s.spikes.push((instance, t + h * theta));
            if map.is_some() {
                ctl.stats.integrated_transients += 1;
            }
            if let Some(r) = &mut retry {
                r.pending.spiked = true;
            }
        }
        rec.push(&mut ctl.hist_len, t_new, &s.x_new, &s.work.q);
        t = t_new;
        let mut restart = false;
        let mut jumped: Option<usize> = None;

        if let Capture::Trace(trace) = &mut s.capture {
            trace.times.push(t0 + t);
            trace.states.extend_from_slice(rec.x(0));
            if let Some(theta) = spike_theta {
                if trace.spike.is_some() {
                    trace.failed = true;
                    return Ok(());
                }
                trace.spike = Some(t0 + t - h + theta * h);
            }
            if event.is_some() || t0 + t > trace.t_limit {
                trace.failed = true;
                return Ok(());
            }
        }
        if let Some(theta) = entry_theta {
            // A transient starts here: the state at the crossing.
            let (n, t_entry) = (plan.n, t - h + theta * h);
            for i in 0..n {
                let (a, b) = (rec.x(1)[i], rec.x(0)[i]);
                s.entry[i] = a + theta * (b - a);
            }
            match &mut s.capture {
                Capture::Entry(slot) => {
                    *slot = Some(s.entry.clone());
                    return Ok(());
                }
                // A transient traced from an earlier entry passes this
                // one: the rest of it is a transient of its own.
                Capture::Trace(trace) => {
                    if trace.later_entry.is_none() && trace.spike.is_none() {
                        trace.later_entry = Some((t0 + t_entry, s.entry.clone()));
                    }
                }
                Capture::Off => {}
            }
            if let (Some(map), None, Capture::Off) = (map, spike_theta, &s.capture) {
                if let Some(t_exit) = replay(
                    plan, devs, &mut rec, ctl, s, map, input, t_entry, dt, instance,
                ) {
                    t = t_exit;
                    continue;
                }
            }
        }

        if let Some((e, theta)) = event {
            let (d, k) = plan.event_slots[e];
            let t_cross = t - h + theta * h;
            if let SpikeRule::Reset { device } = plan.spike {
                if device == d {
                    s.spikes.push((instance, t_cross));
                }
            }
            if energy {
                // (s.work.q is still the accepted point's.)
                let (xb, qb) = s.before_jump.split_at_mut(plan.n);
                xb.copy_from_slice(&s.x_new);
                qb.copy_from_slice(&s.work.q);
            }
            devs[d].fire(k, t0 + t_cross, &mut s.x_new);
            rec.r[..plan.n].copy_from_slice(&s.x_new);
            restart = true;
            jumped = Some(d);
        }
        if lands_on_bp && timed <= t + hmin {
            for dev in devs.iter_mut() {
                if dev
                    .next_timed_change(t0 + t - 2.0 * hmin)
                    .is_some_and(|tc| tc <= t0 + t + hmin)
                {
                    dev.timed_change(t0 + t);
                }
            }
            restart = true;
        }

        if restart {
            ctl.branches_stale = true;
            evaluate(devs, rec.x(0), t0 + t, &mut s.work);
            if let (Some(d), true) = (jumped, energy) {
                // The sources delivered, in the jump, what it dissipated
                // and what it stored.
                let (xb, qb) = s.before_jump.split_at(plan.n);
                let (xa, qa) = (rec.x(0), &s.work.q[..]);
                ctl.energy += devs[d].jump_dissipation((xb, qb), (xa, qa))
                    + plan.stored_energy(xa, qa)
                    - plan.stored_energy(xb, qb);
            }
            rec.restart(&mut ctl.hist_len, &s.work.q);
            ctl.set_order(1);
            let rs = plan.restart_step();
            ctl.h_want = rs.max(h.min(rs * 10.0));
        } else {
            let limit = plan.max_order().min(ctl.hist_len as usize);
            let (next, ratio) = order_after_step(order, ratios, ratio, limit);
            ctl.continue_at(next as u8);
            let grow = match ratio {
                Some(r) if r > 0.0 => (step_safety(next) * step_factor(r, next)).min(2.0),
                _ => 2.0,
            };
            let next = h * grow.max(0.5);
            // A step shortened to land on a boundary says nothing against
            // the longer step the error control had allowed.
            ctl.h_want = if clipped && grow >= 1.0 {
                ctl.h_want.max(next)
            } else {
                next
            };
        }
        rec.refresh_indicators(devs);
        if let (Some(r), Some(map), false) = (&mut retry, map, restart) {
            if t >= r.next {
                let mut p = r.pending;
                p.tau += t;
                match resume(plan, devs, &mut rec, ctl, s, map, p, input, t, dt, instance) {
                    Some(t_new) => {
                        t = t_new;
                        retry = None;
                    }
                    None => r.next *= 2.0,
                }
            }
        }
    }
    // Times are kept relative to the start of the next step.
    let ot = plan.off_t();
    for k in 0..ctl.hist_len as usize {
        rec.r[ot + k] -= dt;
    }
    *v_mem = rec.x(0)[plan.membrane];
    Ok(())
}

/// An instance is at rest where an exact step over a whole network step
/// leaves every unknown within this fraction of its local tolerance of its
/// steady state: under the same input it stays there, so the next steps are
/// skipped (a silent neuron under constant drive then costs almost
/// nothing). The state it does not move by is smaller still than this.
const REST_FRACTION: f64 = 1e-3;

/// How many instances ahead [`prefetch_devices`] asks for.
const PREFETCH_AHEAD: usize = 2;

/// Ask the cache for a later instance's devices while this one runs. Each
/// instance's devices are boxes of their own on the heap, out of the
/// hardware prefetcher's sight; waiting for their first touch (the
/// quiescence check of an exact step) took an eighth of a MIF population's
/// time. A hint only: it changes no result.
#[inline]
fn prefetch_devices(devs: &[Box<dyn Device>]) {
    #[cfg(target_arch = "x86_64")]
    for d in devs {
        let start = (&**d as *const dyn Device).cast::<i8>();
        for line in (0..std::mem::size_of_val(&**d)).step_by(64) {
            // SAFETY: prefetching is a hint that never faults, and every
            // address lies inside the live device.
            unsafe {
                std::arch::x86_64::_mm_prefetch(start.add(line), std::arch::x86_64::_MM_HINT_T0)
            };
        }
    }
}

/// The batched engine: N instances of one neuron circuit.
pub struct NeuronKernel {
    plan: Plan,
    /// Unknown names, for error messages.
    names: Vec<String>,
    /// Devices of all instances, `devices_per_instance` each.
    devices: Vec<Box<dyn Device>>,
    /// One record of `plan.stride` f64 per instance.
    records: Vec<f64>,
    /// The older points of each instance's integrator history
    /// (`plan.older_stride()` f64 per instance; only the integrator reads
    /// them).
    older: Vec<f64>,
    controls: Vec<Control>,
    v_mem: Vec<f64>,
    /// The initial record and control, for `reset`.
    initial_record: Vec<f64>,
    initial_control: Control,
    scratch: Vec<Scratch>,
    /// Simulated time (s).
    time: f64,
    len: usize,
    /// One device set at the initial state, for building map cells.
    template: Vec<Box<dyn Device>>,
    spike_map: Option<Arc<SpikeMap>>,
    /// Where whole runs from rest are answered from tables (see `response`).
    responses: Option<Arc<ResponseTables>>,
    /// Set when the run since the last reset was answered from the tables:
    /// the instances' states were not followed.
    answered: Option<Answers>,
}

impl std::fmt::Debug for NeuronKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeuronKernel")
            .field("instances", &self.len)
            .field("unknowns", &self.plan.n)
            .field("devices_per_instance", &self.plan.devices_per_instance)
            .field("time", &self.time)
            .finish()
    }
}

impl NeuronKernel {
    /// Compile `circuit` (which must have `.SPIKE` and `.NEURON INPUT=`)
    /// into `n` identical instances, all at the circuit's initial state:
    /// the UIC start of its `.tran` (or with no `.tran`), else its
    /// operating point at zero input.
    pub fn new(circuit: &Circuit, n: usize, opts: NeuronOptions) -> Result<Self, NeuronError> {
        opts.validate()?;
        let title = circuit.title.clone();
        let spike = circuit
            .spike
            .as_ref()
            .ok_or_else(|| NeuronError::NoSpikeRule(title.clone()))?;
        let neuron = circuit
            .neuron
            .as_ref()
            .ok_or_else(|| NeuronError::NoNeuronDirective(title.clone()))?;
        let nu = circuit.unknowns.len();

        // The instance's device set: drop the netlist's own drive of the
        // input node unless told to keep it.
        let mut template: Vec<Box<dyn Device>> = Vec::new();
        let mut local_index = vec![None; circuit.devices.len()];
        let mut pattern = DensePattern {
            n: nu,
            used: vec![false; nu * nu],
        };
        for (i, d) in circuit.devices.iter().enumerate() {
            let drives_input =
                d.as_any().is::<ISource>() && d.terminals().contains(&Some(neuron.input));
            if drives_input && !opts.keep_input_sources {
                continue;
            }
            let mut bp = Vec::new();
            d.breakpoints(1e3, &mut bp);
            if !bp.is_empty() {
                return Err(NeuronError::TimeVaryingSource {
                    title,
                    device: d.name().to_string(),
                });
            }
            local_index[i] = Some(template.len());
            let mut c = d.boxed_clone();
            c.setup(&mut pattern);
            template.push(c);
        }
        if template.is_empty() {
            return Err(NeuronError::InitialState {
                title,
                detail: "the circuit has no devices besides its input source".into(),
            });
        }
        for d in template.iter_mut() {
            d.reset_state();
        }
        let spike_rule = match &spike.detector {
            SpikeDetector::States { unknowns, level } => SpikeRule::States {
                unknowns: unknowns.clone(),
                level: *level,
            },
            SpikeDetector::Threshold { level } => SpikeRule::Threshold {
                node: spike.node,
                level: *level,
            },
            SpikeDetector::Reset { device } => {
                let Some(local) = local_index.get(*device).copied().flatten() else {
                    return Err(NeuronError::InvalidOptions(format!("neuron circuit '{title}': the .SPIKE reset device was dropped as an input source")));
                };
                SpikeRule::Reset { device: local }
            }
        };
        let event_slots: Vec<(usize, usize)> = template
            .iter()
            .enumerate()
            .flat_map(|(d, dev)| (0..dev.event_count()).map(move |k| (d, k)))
            .collect();
        let atol: Vec<f64> = circuit
            .unknowns
            .iter()
            .map(|u| match u.kind {
                UnknownKind::Voltage => opts.vntol,
                UnknownKind::Current => opts.abstol,
                UnknownKind::State => opts.xtol,
            })
            .collect();
        let names: Vec<String> = (0..nu).map(|i| circuit.describe_unknown(i)).collect();
        let e = event_slots.len();
        let map_rule = matches!(spike_rule, SpikeRule::States { .. });
        let spike_rule_level = match &spike_rule {
            SpikeRule::States { level, .. } => Some(*level),
            _ => None,
        };
        let watched_spikes = spike_bounds(
            &spike_rule,
            opts.spike_map_entry.min(opts.spike_map_entry_late),
        );
        let max_order = opts.max_order;
        let mut plan = Plan {
            n: nu,
            input: neuron.input,
            membrane: spike.node,
            devices_per_instance: template.len(),
            spike: spike_rule,
            event_slots,
            differential: vec![false; nu],
            atol,
            is_voltage: circuit
                .unknowns
                .iter()
                .map(|u| u.kind == UnknownKind::Voltage)
                .collect(),
            linear: template.iter().all(|d| d.is_linear()),
            elimination: SourceElimination::find(nu, &pattern.used),
            map_rule,
            entry_levels: match &spike_rule_level {
                Some(level) => [
                    level * opts.spike_map_entry,
                    level * opts.spike_map_entry_late,
                ],
                None => [f64::INFINITY; 2],
            },
            quiescent: None,
            spike_bounds: watched_spikes,
            quiescence_devices: template
                .iter()
                .all(|d| d.event_count() == 0)
                .then(|| template.iter().map(|d| d.boxed_clone()).collect()),
            supply: supply_power(&template, nu),
            // A waveform with no change after time 0 has none later.
            untimed: template.iter().all(|d| d.next_timed_change(0.0).is_none()),
            max_order,
            history: max_order.max(2) + 1,
            stride: 3 * nu + max_order.max(2) + 1 + e,
            opts,
        };

        // Initial state, by the dense solver itself.
        let mut scratch = Scratch::new(nu, e);
        let mut x = initial_guess(circuit);
        let uic = circuit
            .analyses
            .iter()
            .find_map(|a| {
                if let Analysis::Tran { uic, .. } = a {
                    Some(*uic)
                } else {
                    None
                }
            })
            .unwrap_or(true);
        let init_fail = |detail: String| NeuronError::InitialState {
            title: title.clone(),
            detail,
        };
        if uic {
            // One tiny backward-Euler step holds every charge at its
            // initial value while the algebraic unknowns settle.
            let h0 = plan.opts.min_step * 100.0;
            evaluate(&template, &x, 0.0, &mut scratch.work);
            for i in 0..nu {
                scratch.c[i] = -scratch.work.q[i] / h0;
            }
            let sys = DenseSystem {
                time: 0.0,
                alpha: 1.0 / h0,
                history: &scratch.c,
                input: 0.0,
                gmin: 0.0,
                pins: &[],
                max_iterations: 100,
                contraction: 1.0,
            };
            newton(&plan, &template, &mut scratch.work, &mut x, &sys, &mut 0).map_err(|f| {
                init_fail(format!("initial conditions (UIC): {}", f.describe(&names)))
            })?;
        } else {
            let sys = DenseSystem {
                time: 0.0,
                alpha: 0.0,
                history: &[],
                input: 0.0,
                gmin: circuit.options.gmin,
                pins: &circuit.node_ics,
                max_iterations: 100,
                contraction: 1.0,
            };
            newton(&plan, &template, &mut scratch.work, &mut x, &sys, &mut 0)
                .map_err(|f| init_fail(format!("operating point at zero input: {} (add UIC to the .tran card to start from the initial conditions instead)", f.describe(&names))))?;
        }
        evaluate(&template, &x, 0.0, &mut scratch.work);
        for (k, &v) in scratch.work.jq.iter().enumerate() {
            if v != 0.0 {
                plan.differential[k % nu] = true;
            }
        }
        if plan.opts.exact_linear_steps
            && quiescent_at(&plan, &template, &x, false, &mut scratch.bounds)
        {
            // Without an exact step the kernel still works, only slower:
            // the reason is not an error.
            plan.quiescent = QuiescentModel::build(
                &x,
                &scratch.work.f,
                &scratch.work.q,
                &scratch.work.jf,
                &scratch.work.jq,
                plan.input,
            )
            .ok();
        }
        let mut initial_record = vec![0.0; plan.stride];
        initial_record[..nu].copy_from_slice(&x);
        let oq = plan.off_q();
        initial_record[oq..oq + nu].copy_from_slice(&scratch.work.q);
        let og = plan.off_g();
        indicators(&plan, &template, &x, &mut initial_record[og..og + e]);
        let initial_control = Control {
            h_want: plan.restart_step(),
            order: 1,
            steps_at_order: 0,
            hist_len: 1,
            last_input: 0.0,
            pending: None,
            exact: false,
            at_rest: false,
            rest_power: 0.0,
            contraction: 1.0,
            q_stale: false,
            branches_stale: false,
            energy: 0.0,
            stats: KernelStats::default(),
        };

        let mut devices = Vec::with_capacity(n * template.len());
        for _ in 0..n {
            devices.extend(template.iter().map(|d| d.boxed_clone()));
        }
        let chunks = n.div_ceil(plan.opts.chunk_size);
        let records = initial_record.repeat(n);
        Ok(NeuronKernel {
            names,
            devices,
            records,
            older: vec![0.0; n * plan.older_stride()],
            controls: vec![initial_control; n],
            v_mem: vec![x[plan.membrane]; n],
            initial_record,
            initial_control,
            scratch: (0..chunks).map(|_| Scratch::new(nu, e)).collect(),
            time: 0.0,
            len: n,
            spike_map: (plan.map_rule && plan.opts.spike_map)
                .then(|| Arc::new(SpikeMap::new(plan.opts.spike_map_spacing, nu))),
            template,
            plan,
            responses: None,
            answered: None,
        })
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Simulated time since construction or the last reset (s).
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Number of MNA unknowns per instance.
    pub fn unknowns_per_instance(&self) -> usize {
        self.plan.n
    }

    /// Steps and Newton iterations since construction or the last reset,
    /// summed over instances.
    pub fn stats(&self) -> KernelStats {
        let mut total = KernelStats::default();
        for c in &self.controls {
            total += c.stats;
        }
        if let Some(a) = &self.answered {
            total.table_interpolated += a.interpolated;
            total.table_simulated += a.simulated;
        }
        total
    }

    /// The membrane voltage (the `.SPIKE` node) of each instance (V).
    pub fn membrane_voltages(&self) -> &[f64] {
        &self.v_mem
    }

    /// The full MNA solution of one instance (in the circuit's unknown order).
    pub fn state(&self, instance: usize) -> &[f64] {
        let s = instance * self.plan.stride;
        &self.records[s..s + self.plan.n]
    }

    /// Like [`NeuronKernel::reset`], but keep the spike-map cells built so
    /// far (they depend only on the netlist and the input, not on the run).
    pub fn reset_keeping_map(&mut self) {
        let map = self.spike_map.take();
        self.reset();
        self.spike_map = map;
    }

    /// Energy dissipated in the neurons' devices since the last reset,
    /// summed over instances (J): what the sources delivered (input current
    /// and DC voltage sources, integrated in closed form over exact steps,
    /// along the recorded transients for replays, by the trapezoidal rule
    /// over integrator steps) less the rise in the capacitors' stored
    /// energy. None for circuits whose energy the account cannot follow
    /// (see `supply_power`).
    pub fn energy_dissipated(&self) -> Option<f64> {
        self.plan.supply.as_ref()?;
        let stored0 = self.initial_stored_energy();
        let mut work = Work::new(self.plan.n);
        let followed: f64 = self
            .instances()
            .map(|(c, r, devs)| {
                instance_energy(&self.plan, c, r, devs, self.time, stored0, &mut work)
            })
            .sum();
        Some(followed + self.answered.as_ref().map_or(0.0, |a| a.energy_j))
    }

    /// Energy stored in the capacitors at the initial state (J).
    fn initial_stored_energy(&self) -> f64 {
        let (n, oq) = (self.plan.n, self.plan.off_q());
        self.plan
            .stored_energy(&self.initial_record[..n], &self.initial_record[oq..oq + n])
    }

    /// Each instance's control, record and devices.
    fn instances(&self) -> impl Iterator<Item = (&Control, &[f64], &[Box<dyn Device>])> {
        let d = self.plan.devices_per_instance.max(1);
        self.controls
            .iter()
            .zip(self.records.chunks(self.plan.stride))
            .zip(self.devices.chunks(d))
            .map(|((c, r), devs)| (c, r, devs))
    }

    /// Return every instance to the initial state, time 0.
    pub fn reset(&mut self) {
        for d in self.devices.iter_mut() {
            d.reset_state();
        }
        for r in self.records.chunks_mut(self.plan.stride) {
            r.copy_from_slice(&self.initial_record);
        }
        self.controls.fill(self.initial_control);
        self.answered = None;
        // A fresh map, so that a rerun replays exactly what the first run
        // did (a frozen map never changes).
        if let Some(map) = &mut self.spike_map {
            if !map.frozen {
                *map = Arc::new(SpikeMap::new(self.plan.opts.spike_map_spacing, self.plan.n));
            }
        }
        let v0 = self.initial_record[self.plan.membrane];
        self.v_mem.fill(v0);
        self.time = 0.0;
    }

    /// Advance all instances by dt; see [`NeuronModel::advance`].
    pub fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        check_advance_args(self.len, dt, input_currents)?;
        if self.answered.is_some() {
            return Err(NeuronError::InvalidOptions(
                "this run was answered from the response tables, which keep no instance state: reset before advancing again".into(),
            ));
        }
        self.extend_frozen_map(input_currents);
        let plan = &self.plan;
        let names = &self.names;
        let cs = plan.opts.chunk_size;
        let (d, stride, older) = (plan.devices_per_instance, plan.stride, plan.older_stride());
        let t0 = self.time;
        let map = self.spike_map.as_deref();
        let shared_quiescence = plan.quiescence_devices.is_some();
        self.devices
            .par_chunks_mut((cs * d).max(1))
            .zip(self.records.par_chunks_mut(cs * stride))
            .zip(self.older.par_chunks_mut((cs * older).max(1)))
            .zip(self.controls.par_chunks_mut(cs))
            .zip(self.v_mem.par_chunks_mut(cs))
            .zip(self.scratch.par_iter_mut())
            .zip(input_currents.par_chunks(cs))
            .enumerate()
            .for_each(|(ci, ((((((devs, recs), olds), ctls), vs), s), inputs))| {
                s.spikes.clear();
                s.error = None;
                s.missing_cells.clear();
                for (j, &input) in inputs.iter().enumerate() {
                    // (An instance at rest will not touch its devices.)
                    // (Nor will one whose exact step asks a shared copy.)
                    let untouched = |c: &Control| c.at_rest || (c.exact && shared_quiescence);
                    if let (Some(next), Some(false)) = (
                        devs.get((j + PREFETCH_AHEAD) * d..(j + PREFETCH_AHEAD + 1) * d),
                        ctls.get(j + PREFETCH_AHEAD).map(untouched),
                    ) {
                        prefetch_devices(next);
                    }
                    let r = advance_instance(
                        plan,
                        names,
                        &mut devs[j * d..(j + 1) * d],
                        &mut recs[j * stride..(j + 1) * stride],
                        &mut olds[j * older..(j + 1) * older],
                        &mut ctls[j],
                        &mut vs[j],
                        s,
                        input,
                        t0,
                        dt,
                        ci * cs + j,
                        map,
                    );
                    if let Err(e) = r {
                        s.error = Some(e);
                        break;
                    }
                }
            });
        if let Some(e) = self.scratch.iter_mut().find_map(|s| s.error.take()) {
            return Err(e);
        }
        for s in &self.scratch {
            spikes_out.extend_from_slice(&s.spikes);
        }
        self.time += dt;
        self.build_missing_cells();
        Ok(())
    }

    /// Grow a frozen map upward (see [`SpikeMap`]) so that every input of
    /// the coming step up to the map's cap finds both of its cells.
    fn extend_frozen_map(&mut self, inputs: &[f64]) {
        let Some(map) = &self.spike_map else {
            return;
        };
        if !map.frozen {
            return;
        }
        let strongest = inputs.iter().fold(0.0f64, |m, &i| m.max(i));
        if strongest <= 0.0 {
            return;
        }
        let mut top = map.top_key;
        let need = (map.key_of(strongest).floor() as i64 + 1).min(map.cap_key);
        // Upward in batches (doubling, up to `GROWTH_BATCH` cells: the
        // overshoot past a stop is built too), and only through cells completed
        // within `GROWTH_STEP_LIMIT` steps: above its rate curve a MIF2
        // neuron falls into depolarisation block, where a cell integrates
        // the 2 s search for a next spike (350,000 steps, a second of CPU)
        // to replay almost nothing; such a map stops growing there.
        let mut batch = 1;
        while top < need {
            let last = (top + batch).min(need);
            self.insert_cells((top + 1..=last).collect(), GROWTH_STEP_LIMIT);
            let Some(map) = self.spike_map.as_mut().map(Arc::make_mut) else {
                return;
            };
            let usable = |k: &i64| {
                map.cells
                    .get(k)
                    .is_some_and(|c| c.as_ref().is_some_and(|c| c.complete))
            };
            if let Some(k) = (top + 1..=last).find(|k| !usable(k)) {
                map.top_key = k - 1;
                map.cap_key = k - 1;
                return;
            }
            map.top_key = last;
            top = last;
            batch = (2 * batch).min(GROWTH_BATCH);
        }
    }

    /// Build the spike-map cells that this step's spikes asked for (in
    /// parallel, each independent of the others and of the thread count).
    fn build_missing_cells(&mut self) {
        let keys: Vec<i64> = self
            .scratch
            .iter()
            .flat_map(|s| s.missing_cells.iter().copied())
            .collect();
        self.build_cells(keys);
    }

    /// Build the cells of `keys` that the (unfrozen) map lacks, in parallel.
    fn build_cells(&mut self, keys: Vec<i64>) {
        if self.spike_map.as_ref().is_some_and(|m| !m.frozen) {
            self.insert_cells(keys, u64::MAX);
        }
    }

    /// Build the cells of `keys` that the map lacks, in parallel (into
    /// this kernel's copy of its index, where it is shared). A frozen map's
    /// kernels share the cells they grow, each built once.
    fn insert_cells(&mut self, mut keys: Vec<i64>, budget: u64) {
        let Some(map) = &mut self.spike_map else {
            return;
        };
        keys.retain(|k| !map.cells.contains_key(k));
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return;
        }
        let map = Arc::make_mut(map);
        let grown = map.frozen.then(|| map.grown.clone());
        if let Some(g) = &grown {
            let built = g.lock().unwrap_or_else(|e| e.into_inner());
            keys.retain(|k| match built.get(k) {
                Some(cell) => {
                    map.cells.insert(*k, cell.clone());
                    false
                }
                None => true,
            });
        }
        let (plan, names, template) = (&self.plan, &self.names, &self.template);
        let (record, control) = (&self.initial_record, &self.initial_control);
        let inputs: Vec<f64> = keys.iter().map(|&k| map.input_of(k)).collect();
        let cells: Vec<Option<Arc<MapCell>>> = inputs
            .par_iter()
            .map(|&input| {
                build_cell(plan, names, template, record, control, input, budget).map(Arc::new)
            })
            .collect();
        match &grown {
            Some(g) => {
                // (A cell is a function of its input: one built meanwhile
                // by another kernel is the same, and is kept instead.)
                let mut shared = g.lock().unwrap_or_else(|e| e.into_inner());
                for (k, cell) in keys.into_iter().zip(cells) {
                    let cell = shared.entry(k).or_insert(cell).clone();
                    map.cells.insert(k, cell);
                }
            }
            None => map.cells.extend(keys.into_iter().zip(cells)),
        }
    }

    /// Number of spike-map cells built so far (valid or refused).
    pub fn spike_map_cells(&self) -> usize {
        self.spike_map.as_ref().map_or(0, |m| m.cells.len())
    }

    /// Build the spike-map cells of every input in [i_min, i_max] (A) now,
    /// in parallel, and freeze the map (see [`SpikeMap`]). A no-op without
    /// a map (spike rules that are not state crossings, or the map off).
    pub fn prebuild_spike_map(&mut self, i_min: f64, i_max: f64) -> Result<(), NeuronError> {
        if !(i_min > 0.0 && i_max >= i_min && i_max.is_finite()) {
            return Err(NeuronError::InvalidOptions(format!(
                "spike-map range must satisfy 0 < i_min <= i_max, got [{i_min:e}, {i_max:e}] A"
            )));
        }
        let Some(map) = &self.spike_map else {
            return Ok(());
        };
        let (bottom, top) = (
            map.key_of(i_min).floor() as i64,
            map.key_of(i_max).ceil() as i64,
        );
        let cap = (map.key_of(i_max * MAP_EXTENSION).ceil() as i64).max(top);
        self.build_cells((bottom..=top).collect());
        if let Some(map) = &mut self.spike_map {
            let map = Arc::make_mut(map);
            map.frozen = true;
            map.top_key = top;
            map.cap_key = cap;
        }
        Ok(())
    }

    /// The kernel's spike map, to share with other kernels of the same
    /// circuit ([`NeuronKernel::use_spike_map`]).
    pub fn spike_map(&self) -> Option<Arc<SpikeMap>> {
        self.spike_map.clone()
    }

    /// Answer whole runs from rest ([`NeuronKernel::advance_from_rest`])
    /// from `tables`, shared with the other kernels of the same circuit
    /// and options.
    pub fn use_response_tables(&mut self, tables: Arc<ResponseTables>) {
        self.responses = Some(tables);
    }

    /// Advance every instance from its initial state (right after
    /// construction or a reset) over a whole run of `duration` under its
    /// constant input current. With response tables (and a map that is
    /// frozen, or none) the spikes and energy come from the tables, within
    /// `response::TIME_TOLERANCE_S` of this kernel's own integration, and
    /// the instances' states are not followed: reset before advancing
    /// again. Otherwise this is one `advance(duration, ...)`.
    pub fn advance_from_rest(
        &mut self,
        duration: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        let frozen = self.spike_map.as_ref().is_none_or(|m| m.frozen);
        let tables = match (&self.responses, frozen, self.time == 0.0) {
            (Some(t), true, true) => t.clone(),
            _ => return self.advance(duration, input_currents, spikes_out),
        };
        check_advance_args(self.len, duration, input_currents)?;
        // (Every current the tables may simulate has its map cells.)
        self.extend_frozen_map(&[response::highest_simulated(input_currents)]);
        let stored0 = self.initial_stored_energy();
        let (plan, names, template) = (&self.plan, &self.names, &self.template);
        let (record, control) = (&self.initial_record, &self.initial_control);
        let map = self.spike_map.as_deref();
        let simulate = |currents: &[f64]| -> Result<Vec<Response>, NeuronError> {
            currents
                .par_iter()
                .map(|&input| {
                    respond(
                        plan, names, template, record, control, map, input, duration, stored0,
                    )
                })
                .collect()
        };
        let answers = tables.answer(duration, input_currents, spikes_out, &simulate)?;
        self.answered = Some(answers);
        self.time = duration;
        Ok(())
    }

    /// Replay from `map` (built by a kernel of the same circuit and
    /// options) instead of the kernel's own.
    pub fn use_spike_map(&mut self, map: Arc<SpikeMap>) -> Result<(), NeuronError> {
        let spacing = self.plan.opts.spike_map_spacing.ln_1p();
        if self.spike_map.is_none()
            || map.unknowns != self.plan.n
            || (map.log_spacing - spacing).abs() > 1e-15
        {
            return Err(NeuronError::InvalidOptions(
                "the spike map belongs to another circuit or spacing, or this kernel has no map"
                    .into(),
            ));
        }
        self.spike_map = Some(map);
        Ok(())
    }
}

impl NeuronModel for NeuronKernel {
    fn len(&self) -> usize {
        self.len
    }
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        NeuronKernel::advance(self, dt, input_currents, spikes_out)
    }
    fn reset(&mut self) {
        NeuronKernel::reset(self)
    }
    fn advance_from_rest(
        &mut self,
        duration: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        NeuronKernel::advance_from_rest(self, duration, input_currents, spikes_out)
    }
    fn energy_dissipated(&self) -> Option<f64> {
        NeuronKernel::energy_dissipated(self)
    }
    fn solver_stats(&self) -> Option<KernelStats> {
        Some(self.stats())
    }
    fn membrane_voltages(&self) -> &[f64] {
        &self.v_mem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_agrees_with_a_full_search() {
        // Uneven, strictly increasing times, as an integrator records them.
        let times: Vec<f64> = (0..300).map(|k| (k as f64).powf(1.7) * 1e-8).collect();
        let states = vec![0.0; times.len()];
        for t_exit in [0.0, 3.3e-6, times[150], times[299], 1.0] {
            let v = Variant::new(
                vec![0.0],
                1e-6,
                times.clone(),
                states.clone(),
                t_exit,
                1e-6,
                vec![],
            );
            for probe in 0..2000 {
                let t = probe as f64 * 9e-9 - 1e-8;
                for t in [t, times[probe % 300]] {
                    assert_eq!(
                        v.locate(t),
                        times.partition_point(|&x| x < t),
                        "t = {t:e}, exit at {t_exit:e}"
                    );
                }
            }
        }
    }

    /// Replays leave their exit charges stale; the energy account must
    /// still count the stored energy at Q(x), not at the charges before.
    #[test]
    fn stale_replay_charges_are_evaluated_for_the_energy_account() {
        let c = crate::circuit::load(std::path::Path::new("netlists/mif.cir"), &[]).unwrap();
        let n = 64;
        let mut k = NeuronKernel::new(&c, n, NeuronOptions::from_circuit(&c)).unwrap();
        let inputs: Vec<f64> = (0..n)
            .map(|i| 2.0e-9 + 1.5e-9 * i as f64 / n as f64)
            .collect();
        let mut spikes = Vec::new();
        for _ in 0..30 {
            k.advance(1e-3, &inputs, &mut spikes).unwrap();
        }
        let stale = k.controls.iter().filter(|c| c.q_stale).count();
        assert!(stale > 0, "no instance ended its step inside a replay");

        let (nu, oq) = (k.plan.n, k.plan.off_q());
        let stored0 = k.initial_stored_energy();
        let mut work = Work::new(nu);
        let mut stale_records_differ = false;
        let want: f64 = k
            .instances()
            .map(|(c, r, devs)| {
                evaluate(devs, &r[..nu], k.time, &mut work);
                if c.q_stale && work.q[..] != r[oq..oq + nu] {
                    stale_records_differ = true;
                }
                c.energy - (k.plan.stored_energy(&r[..nu], &work.q) - stored0)
            })
            .sum();
        assert!(
            stale_records_differ,
            "{stale} stale instances, all with fresh charges"
        );
        let got = k.energy_dissipated().unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "energy account {got:e} J, from fresh charges {want:e} J"
        );
    }

    #[test]
    fn dense_solve_pivots_and_solves() {
        // A zero on the first diagonal needs a row swap.
        let mut a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let want = [1.0, -2.0, 3.0];
        let mut b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * want[j]).sum())
            .collect();
        dense_solve(3, &mut a, &mut b).unwrap();
        for (y, w) in b.iter().zip(want) {
            assert!((y - w).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn dense_solve_reports_singular_column() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        let mut b = vec![1.0, 1.0];
        assert_eq!(dense_solve(2, &mut a, &mut b), Err(1));
    }
}
