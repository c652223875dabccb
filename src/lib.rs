//! circsnn: spiking neural networks whose neurons are real circuits.
//!
//! Data flow (see README.md): netlist text → [`netlist`] → [`circuit`] →
//! [`analysis`] (general sparse MNA engine) or [`neuron`] (batched engine) →
//! [`snn`] networks, [`train`]ed on the circuit's own rate curve.

// `!(x > 0.0)` is how this crate rejects NaN along with the out-of-range
// values; `partial_cmp` would hide that intent.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod analysis;
pub mod circuit;
pub mod cli;
pub mod data;
pub mod devices;
pub mod math;
pub mod netlist;
pub mod neuron;
pub mod output;
pub mod snn;
pub mod solver;
pub mod sweep;
pub mod train;
