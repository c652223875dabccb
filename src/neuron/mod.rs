//! Neurons as the network sees them: N instances of one neuron type,
//! advanced together by one network step at a time.
//!
//! - [`NeuronKernel`] (`kernel`): the batched circuit engine. It compiles a
//!   [`Circuit`](crate::circuit::Circuit) that has `.SPIKE` and
//!   `.NEURON INPUT=node` into N independent dense MNA systems, each with
//!   its own adaptive time step, and runs them over rayon. Spike
//!   transients of memristive neurons are replayed from a per-input table
//!   built by the same integrator ([`kernel::SpikeMap`]).
//! - [`abstract_models`]: Nengo-style LIF, spiking ReLU (IF) and the
//!   analytic MIF of thesis eq. 1.5, with exact updates and analytic rates,
//!   stepped by a branch-free structure-of-arrays loop with the exact
//!   scalar update as the slow path for spikes and refractory instances.
//! - [`rate`]: steady-state f–I curves measured with the batched engine.
//! - [`varied`]: device-to-device variation, instances drawn from a library
//!   of devices, one kernel (and spike map) per device.
//!
//! Every neuron type implements [`NeuronModel`] (the *step* view); the
//! abstract ones also implement [`RateModel`] (the *rate* view).

pub mod abstract_models;
pub mod cache;
mod kernel;
pub mod quiescent;
pub mod rate;
pub mod response;
pub mod varied;
pub mod workload;

pub use abstract_models::{AnalyticMif, Lif, SpikingRelu};
pub use cache::{rate_curve_cached, RateCurveData};
pub use kernel::{KernelStats, NeuronKernel, NeuronOptions, SpikeMap};
pub use rate::{
    latency_weighted, rate_curve, rate_curve_with, rate_from_spikes, response_curve,
    RateMeasurement,
};
pub use varied::VariedKernel;

/// Errors of the neuron engines. Messages name the circuit (its title) and
/// the instance where that helps.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NeuronError {
    #[error("neuron circuit '{0}' has no .SPIKE directive; the batched engine needs one to tell spikes (e.g. `.SPIKE mem MEMRISTOR=M1 LEVEL=0.5`)")]
    NoSpikeRule(String),
    #[error("neuron circuit '{0}' has no .NEURON directive; add `.NEURON INPUT=<node>` to say where the input current enters")]
    NoNeuronDirective(String),
    #[error("neuron circuit '{title}': source '{device}' has a time-varying waveform; inside a neuron, sources must be DC (the input comes through .NEURON INPUT)")]
    TimeVaryingSource { title: String, device: String },
    #[error("neuron circuit '{title}': cannot find the initial state: {detail}")]
    InitialState { title: String, detail: String },
    #[error("invalid neuron options: {0}")]
    InvalidOptions(String),
    #[error("invalid neuron model parameter: {0}")]
    InvalidParameter(String),
    #[error("expected {expected} input currents (one per instance), got {got}")]
    InputLength { expected: usize, got: usize },
    #[error("the network step dt must be positive and finite, got {0} s")]
    InvalidStep(f64),
    #[error("input current of instance {instance} is not finite ({value})")]
    InvalidInput { instance: usize, value: f64 },
    #[error("neuron instance {instance} failed at t = {time:.9e} s (step {step:.3e} s): {detail}")]
    StepFailed {
        instance: usize,
        time: f64,
        step: f64,
        detail: String,
    },
    #[error("response table: the neuron under {input:e} A failed at t = {time:.9e} s (step {step:.3e} s): {detail}")]
    TableFailed {
        input: f64,
        time: f64,
        step: f64,
        detail: String,
    },
    #[error("rate curve: {0}")]
    InvalidRateWindow(String),
}

/// The step view shared by circuit and abstract neurons: N instances
/// advanced together over network steps of length dt, with an input
/// current per instance that is constant over the step.
pub trait NeuronModel: Send {
    /// Number of instances.
    fn len(&self) -> usize;

    /// True when there are no instances.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Advance every instance by `dt` (s) with input current
    /// `input_currents[i]` (A, into the neuron) held constant over the
    /// step. Spikes are *appended* to `spikes_out` as (instance, time
    /// offset within the step in s), ordered by instance, then time.
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError>;

    /// Return every instance to its initial state (time 0).
    fn reset(&mut self);

    /// Advance every instance from its initial state (right after a reset)
    /// over a whole run of `duration` (s) under constant input currents:
    /// one `advance(duration, ...)`, which this default is. The circuit
    /// kernel may answer from its response tables instead, after which the
    /// instances' states are not kept (see `NeuronKernel::advance_from_rest`).
    fn advance_from_rest(
        &mut self,
        duration: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> Result<(), NeuronError> {
        self.advance(duration, input_currents, spikes_out)
    }

    /// The membrane state of each instance after the last step: volts for
    /// circuits and the analytic MIF, the normalised voltage for LIF and IF.
    fn membrane_voltages(&self) -> &[f64];

    /// Energy dissipated in the neurons' devices since the last reset,
    /// summed over instances (J); None for models without a circuit.
    fn energy_dissipated(&self) -> Option<f64> {
        None
    }

    /// The circuit solver's work since the last reset, summed over
    /// instances; None for models without a circuit.
    fn solver_stats(&self) -> Option<KernelStats> {
        None
    }
}

/// The rate view: the steady-state firing rate (Hz) at a constant input
/// current (A).
pub trait RateModel {
    fn rate(&self, current: f64) -> f64;
}

/// Check the arguments of [`NeuronModel::advance`].
pub(crate) fn check_advance_args(
    len: usize,
    dt: f64,
    input_currents: &[f64],
) -> Result<(), NeuronError> {
    if !(dt > 0.0 && dt.is_finite()) {
        return Err(NeuronError::InvalidStep(dt));
    }
    if input_currents.len() != len {
        return Err(NeuronError::InputLength {
            expected: len,
            got: input_currents.len(),
        });
    }
    if let Some(i) = input_currents.iter().position(|v| !v.is_finite()) {
        return Err(NeuronError::InvalidInput {
            instance: i,
            value: input_currents[i],
        });
    }
    Ok(())
}
