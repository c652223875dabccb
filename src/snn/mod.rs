//! snn
