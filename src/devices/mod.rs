//! Circuit devices in DAE residual form **F(x) + dQ(x)/dt = 0** (sources are
//! folded into F as −B(t)).
//!
//! A device stamps F, Q and their Jacobians into preassigned slots; it knows
//! nothing of integration methods. Discrete behaviour (switch hysteresis, the
//! LIF reset) is expressed as *events*: an indicator function whose upward
//! zero crossing the solver locates in time before calling [`Device::fire`].

pub mod capacitor;
pub mod inductor;
pub mod isource;
pub mod memristor;
pub mod reset;
pub mod resistor;
pub mod switch;
pub mod vccs;
pub mod vcvs;
pub mod vsource;
pub mod waveform;

use crate::output::SignalKind;

/// An MNA unknown index, or `None` for ground.
pub type Node = Option<usize>;

/// A Jacobian entry's position in the matrix value array, or `None` when
/// its row or column is ground.
pub type Slot = Option<usize>;

/// What kind of quantity an unknown is; decides its tolerances and its
/// output name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownKind {
    Voltage,
    Current,
    State,
}

impl From<UnknownKind> for SignalKind {
    fn from(k: UnknownKind) -> Self {
        match k {
            UnknownKind::Voltage => SignalKind::Voltage,
            UnknownKind::Current => SignalKind::Current,
            UnknownKind::State => SignalKind::State,
        }
    }
}

/// Collects the sparsity pattern while devices set up.
pub trait Pattern {
    /// Reserve the Jacobian entry (row, col); returns its slot.
    fn entry(&mut self, row: Node, col: Node) -> Slot;
}

/// Where a device writes during one evaluation: F and Q residual
/// contributions by row, and dF/dx, dQ/dx by slot.
pub struct Stamp<'a> {
    pub f: &'a mut [f64],
    pub q: &'a mut [f64],
    pub jf: &'a mut [f64],
    pub jq: &'a mut [f64],
}

impl Stamp<'_> {
    #[inline]
    pub fn f(&mut self, row: Node, v: f64) {
        if let Some(r) = row {
            self.f[r] += v;
        }
    }
    #[inline]
    pub fn q(&mut self, row: Node, v: f64) {
        if let Some(r) = row {
            self.q[r] += v;
        }
    }
    #[inline]
    pub fn jf(&mut self, slot: Slot, v: f64) {
        if let Some(s) = slot {
            self.jf[s] += v;
        }
    }
    /// A branch current i (an unknown) leaving node a and entering node b:
    /// ±i in the two KCL rows and ±1 at their (row, branch) slots.
    #[inline]
    pub fn branch_current(&mut self, a: Node, b: Node, a_slot: Slot, b_slot: Slot, i: f64) {
        self.f(a, i);
        self.f(b, -i);
        self.jf(a_slot, 1.0);
        self.jf(b_slot, -1.0);
    }
    #[inline]
    pub fn jq(&mut self, slot: Slot, v: f64) {
        if let Some(s) = slot {
            self.jq[s] += v;
        }
    }
}

/// The solver state a device sees when it evaluates.
pub struct EvalCtx<'a> {
    /// The current Newton iterate.
    pub x: &'a [f64],
    /// Time (s); 0 for `.op` and `.dc`.
    pub time: f64,
    /// Multiplier on every independent source (source stepping), normally 1.
    pub source_scale: f64,
    /// True for `.op`/`.dc`: sources take their DC value, not the waveform.
    pub dc_analysis: bool,
}

impl EvalCtx<'_> {
    #[inline]
    pub fn v(&self, n: Node) -> f64 {
        n.map_or(0.0, |i| self.x[i])
    }
}

/// The four Jacobian slots of a two-terminal conductance between a and b.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slots2 {
    pub aa: Slot,
    pub ab: Slot,
    pub ba: Slot,
    pub bb: Slot,
}

impl Slots2 {
    pub fn new(p: &mut dyn Pattern, a: Node, b: Node) -> Self {
        Slots2 {
            aa: p.entry(a, a),
            ab: p.entry(a, b),
            ba: p.entry(b, a),
            bb: p.entry(b, b),
        }
    }
    /// Stamp d(current a→b)/d(v_a − v_b) = g into F's Jacobian.
    #[inline]
    pub fn conductance(&self, s: &mut Stamp, g: f64) {
        s.jf(self.aa, g);
        s.jf(self.ab, -g);
        s.jf(self.ba, -g);
        s.jf(self.bb, g);
    }
    /// The same for Q's Jacobian (a capacitance).
    #[inline]
    pub fn capacitance(&self, s: &mut Stamp, c: f64) {
        s.jq(self.aa, c);
        s.jq(self.ab, -c);
        s.jq(self.ba, -c);
        s.jq(self.bb, c);
    }
}

/// One side of a device's quiescent region (see [`Device::quiescent`]):
/// the difference x[plus] − x[minus] (ground reads 0) must stay at or
/// below `leave`. The batched engine starts an exact linear step only at or
/// below `enter` (< `leave`), so that it does not flip at the edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuiescentBound {
    pub plus: Node,
    pub minus: Node,
    pub enter: f64,
    pub leave: f64,
}

impl QuiescentBound {
    /// The bounded difference at x.
    #[inline]
    pub fn value(&self, x: &[f64]) -> f64 {
        self.plus.map_or(0.0, |i| x[i]) - self.minus.map_or(0.0, |i| x[i])
    }
}

/// A quantity the device wants recorded besides node voltages.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `i(vrest)`, `x(m1)`.
    pub name: String,
    pub kind: SignalKind,
}

/// Cloning a boxed device, with its discrete state (switch position, reset
/// clamp) and its Jacobian slots. The batched neuron engine keeps one
/// device set per instance; every `Device + Clone` gets this for free.
pub trait DeviceClone {
    fn boxed_clone(&self) -> Box<dyn Device>;
}

impl<T: Device + Clone + 'static> DeviceClone for T {
    fn boxed_clone(&self) -> Box<dyn Device> {
        Box::new(self.clone())
    }
}

/// One circuit element, elaborated: parameters are numbers, terminals are
/// unknown indices.
pub trait Device: DeviceClone + Send + Sync + std::fmt::Debug {
    /// The hierarchical instance name, lower-case (`x1.rm`).
    fn name(&self) -> &str;

    /// Extra unknowns this device owns (branch currents, states), as
    /// (suffix, kind); the elaborator numbers them and calls
    /// [`Device::bind_extra`] with their indices.
    fn extra_unknowns(&self) -> Vec<(&'static str, UnknownKind)> {
        Vec::new()
    }
    fn bind_extra(&mut self, _first: usize) {}

    /// Reserve Jacobian slots.
    fn setup(&mut self, pattern: &mut dyn Pattern);

    /// Add F, Q and Jacobians at the iterate in `ctx`.
    fn eval(&self, ctx: &EvalCtx, stamp: &mut Stamp);

    /// True when F and Q are linear in x (the Jacobian does not change).
    fn is_linear(&self) -> bool {
        true
    }

    /// Whether the device is *quiescent* at x: it behaves, to within the
    /// solver's tolerances, as its linearisation at the circuit's rest
    /// state, and stays so while every bound it pushes holds. Where all
    /// devices are quiescent, the batched engine advances an instance by
    /// the exact solution of the linear circuit instead of integrating.
    /// Linear devices without events are always quiescent; the default for
    /// the others is never. A device without events must answer from x and
    /// its parameters alone (the batched engine asks one shared copy for
    /// all its instances).
    fn quiescent(&self, _x: &[f64], _bounds: &mut Vec<QuiescentBound>) -> bool {
        self.is_linear() && self.event_count() == 0
    }

    /// Limit a Newton update before it is applied (e.g. keep a memristor
    /// state in [0, 1]); `x` is the old iterate, `dx` the proposed change.
    fn limit(&self, _x: &[f64], _dx: &mut [f64]) {}

    /// Set an independent source's DC value (`.dc` sweeps), returning the
    /// previous one; `None` for devices that are not sources.
    fn set_dc_value(&mut self, _v: f64) -> Option<f64> {
        None
    }
    /// Write the device's initial condition (UIC) into x: capacitor
    /// voltages, inductor currents, memristor states.
    fn initial_condition(&self, _x: &mut [f64]) {}

    /// Time points where the device's inputs have corners (source
    /// breakpoints), within [0, tstop].
    fn breakpoints(&self, _tstop: f64, _out: &mut Vec<f64>) {}

    /// Number of event indicators (discrete behaviour).
    fn event_count(&self) -> usize {
        0
    }
    /// Indicator k at state x: the event happens when it crosses upward
    /// through zero.
    fn event_indicator(&self, _k: usize, _x: &[f64]) -> f64 {
        -1.0
    }
    /// The event happened at `time`; update the discrete state and, for a
    /// state jump, the solution `x`. Returns true when `x` was changed.
    fn fire(&mut self, _k: usize, _time: f64, _x: &mut [f64]) -> bool {
        false
    }
    /// Energy (J) the device dissipated in the state jump its `fire` just
    /// made, from state x with charges q (by unknown row) before to after.
    /// A jump is an impulse of current that no time integral of
    /// [`Device::power`] sees, so the energy accounts add this.
    fn jump_dissipation(&self, _before: (&[f64], &[f64]), _after: (&[f64], &[f64])) -> f64 {
        0.0
    }
    /// The next time at which the discrete state changes on its own (end of
    /// a refractory period), if any after `time`.
    fn next_timed_change(&self, _time: f64) -> Option<f64> {
        None
    }
    /// Called when the solver reaches a time from [`Device::next_timed_change`].
    fn timed_change(&mut self, _time: f64) {}
    /// Reset discrete state to its initial value (a new analysis).
    fn reset_state(&mut self) {}

    /// Quantities to record besides node voltages and extra unknowns, with
    /// their value at x (the current of an independent current source).
    fn probes(&self) -> Vec<Probe> {
        Vec::new()
    }
    fn probe_values(&self, _ctx: &EvalCtx, _out: &mut Vec<f64>) {}

    /// Power drawn by the device at x (W), for energy accounting; only
    /// devices that dissipate report it.
    fn power(&self, _ctx: &EvalCtx) -> f64 {
        0.0
    }

    /// The device's memristor state unknown, if it has one (spike rules).
    fn state_unknown(&self) -> Option<usize> {
        None
    }
    /// The device's DC connectivity, for floating-node checks: pairs of
    /// terminals joined by a DC path through it.
    fn dc_paths(&self) -> Vec<(Node, Node)>;
    /// Terminal pairs it forces to a voltage (V, E), for loop checks.
    fn voltage_defined(&self) -> Option<(Node, Node)> {
        None
    }
    /// All terminals, for connection counts.
    fn terminals(&self) -> Vec<Node>;

    /// Downcasting, for engines that compile devices (the batched engine).
    fn as_any(&self) -> &dyn std::any::Any;
}
