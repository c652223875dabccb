//! ANN training with the neuron's rate curve as activation.
//!
//! A focused CPU trainer: im2col + faer GEMM convolutions, dense layers,
//! average pooling, dropout and batch norm, trained with Adam on softmax
//! cross-entropy. The activation is ReLU, Nengo's soft-LIF, or the measured
//! (and smoothed) f–I curve of a neuron circuit ([`RateCurve`]).
//!
//! Determinism: a batch is cut into chunks of [`net::CHUNK_SAMPLES`] samples
//! whatever the thread count; chunks run in parallel with sequential GEMMs
//! inside, and every sum over chunks is taken in chunk order. All randomness is
//! counter-based ([`rng`]), derived from the seed, the epoch and the step, so a
//! checkpoint holds the whole random state.

pub mod activation;
pub mod arch;
pub mod augment;
pub mod layers;
pub mod model_io;
pub mod net;
pub mod optim;
pub mod rng;
pub mod trainer;

pub use activation::{Activation, CurveFit, Extrapolation, RateCurve, SoftLif};
pub use arch::{ArchOptions, ArchSpec, LayerSpec, Padding};
pub use augment::{Augment, InputTransform};
pub use model_io::{load_model, save_model, ModelMeta};
pub use net::Net;
pub use optim::Adam;
pub use trainer::{evaluate, EpochLog, Evaluation, TrainOptions, Trainer};

use std::path::PathBuf;

/// Errors of the training module.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid rate curve: {0}")]
    RateCurve(String),
    #[error("invalid activation: {0}")]
    Activation(String),
    #[error("architecture: {0}")]
    Arch(String),
    #[error("dataset does not fit the network: {0}")]
    Data(String),
    #[error("invalid training options: {0}")]
    Options(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, TrainError>;
