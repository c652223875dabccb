//! Spiking networks converted from a trained ANN, run event-driven.
//!
//! - [`topology`]: populations (one per ANN activation) and the linear
//!   connections between them (average pool, flatten, conv2d, dense), built
//!   from a loaded [`Net`](crate::train::Net) with batch norm folded.
//! - [`synapse`]: lowpass and alpha filters of the weighted spike input.
//! - [`neurons`]: the map from pre-activation to neuron drive (the model's
//!   current map), the fidelity choice, and the rate-matched IF neuron.
//! - [`network`]: one network state and the per-step event loop for one image.
//! - [`metrics`]: readout scores, accuracy, top-2, confusion, SynOps, reports
//!   and the merge of shard reports.
//! - [`run`]: classify many images in parallel (results independent of the
//!   thread count).
//!
//! Units: a spike of a neuron in a layer contributes, for the one network step
//! of length dt in which it happens, `w · a_spike / dt` to the next layer's
//! pre-activation (before the synapse filter), where `a_spike` is the
//! activation per hertz of the model (`output_scale` of a rate curve) divided
//! by the firing-rate scale K. A neuron firing at r Hz therefore delivers on
//! average `w · output_scale · r / K`, which is `w` times the ANN activation
//! when the drive is `I = K · gain_a · z + offset_a`, exactly for K = 1: the
//! filtered steady state equals the ANN's pre-activation z.

pub mod metrics;
pub mod network;
pub mod neurons;
pub mod run;
pub mod synapse;
pub mod topology;

pub use metrics::{merge_reports, Counts, Report, RunInfo, StepsAccuracy};
pub use network::{Activity, ImageResult, Network, OutputTrace, RunSettings};
pub use neurons::{AbstractNeuron, Fidelity, InputMode, NeuronDevices, RateIf, RateMap, Readout};
pub use run::{
    classify, classify_resuming, rate_model_predictions, run_images, shared_circuits, Checkpoints,
    ClassifyOutcome, SharedCircuits,
};
pub use synapse::{Synapse, SynapseKind};
pub use topology::Topology;

/// Errors of the spiking network.
#[derive(Debug, thiserror::Error)]
pub enum SnnError {
    #[error("model '{model}': {message}")]
    Model { model: String, message: String },
    #[error("invalid setting: {0}")]
    Settings(String),
    #[error("neuron circuit of layer {layer}: {source}")]
    Neuron {
        layer: usize,
        #[source]
        source: crate::neuron::NeuronError,
    },
    #[error("data: {0}")]
    Data(String),
    #[error("merge: {0}")]
    Merge(String),
    #[error("saving the checkpoint: {0}")]
    Checkpoint(String),
}

pub type Result<T> = std::result::Result<T, SnnError>;
