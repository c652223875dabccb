//! neuron
