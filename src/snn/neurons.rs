//! What drives a neuron and which neuron it is.
//!
//! [`RateMap`] turns a filtered pre-activation z into the neuron's drive and
//! gives the rate at that drive: for a measured rate curve the drive is the
//! input current `I = K · gain_a · z + offset_a` (A) and the rate is the
//! curve's; for the soft-LIF and ReLU baselines (which have no circuit) the
//! drive is the dimensionless `K · z`. K is the firing-rate scale.
//!
//! [`Fidelity`] picks the neuron of every hidden layer: the circuit itself
//! ([`NeuronKernel`](crate::neuron::NeuronKernel)), the rate model (no spikes:
//! each step emits `r · dt` fractional spikes, the ANN's activation), or an
//! abstract spiking neuron matched to the same rate curve ([`AbstractNeuron`]).

use super::{Result, SnnError};
use crate::circuit::Circuit;
use crate::neuron::{check_advance_args, KernelStats, Lif, NeuronError, NeuronModel, RateModel};
use crate::train::rng::SplitMix64;
use crate::train::{Activation, RateCurve, SoftLif};
use serde::{Deserialize, Serialize};

/// Rate (Hz) per unit activation given to ReLU models, which carry none.
pub const RELU_RATE_HZ: f64 = 200.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fidelity {
    /// The neuron netlist, solved by the batched circuit engine.
    Circuit,
    /// The rate curve itself: no spikes, the ANN as a reference.
    Rate,
    /// An abstract spiking neuron with the same rate curve.
    Abstract,
}

impl Fidelity {
    pub fn name(self) -> &'static str {
        match self {
            Fidelity::Circuit => "circuit",
            Fidelity::Rate => "rate",
            Fidelity::Abstract => "abstract",
        }
    }
}

/// The abstract neuron of `--fidelity abstract`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AbstractNeuron {
    /// Integrate-and-fire whose rate is exactly the model's rate curve ([`RateIf`]).
    If,
    /// Nengo's LIF with the curve's rheobase and τ_rc fitted so that it fires
    /// at the curve's rate at z = 1 (no refractory period); rate-curve models only.
    Lif,
}

/// How the image enters the first layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InputMode {
    /// The pixels times the first layer's weights, as a constant current.
    Analog,
    /// One rate-coded IF neuron per pixel, pixel value 1 firing at the rate
    /// that stands for activation 1.
    Spiking,
}

/// How the output layer is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// The filtered output pre-activation summed over the last half of the steps.
    Filtered,
    /// Output neurons of the hidden layers' kind; the class with most spikes
    /// (ties broken by the filtered readout).
    Count,
}

#[derive(Clone, Debug)]
enum RateFn {
    Curve(RateCurve),
    SoftLif(SoftLif),
    Relu,
}

/// From pre-activation to drive, and from drive to rate.
#[derive(Clone, Debug)]
pub struct RateMap {
    rate_fn: RateFn,
    /// Drive per unit z (includes K).
    pub gain: f64,
    pub offset: f64,
    /// Activation carried by one spike per second (includes 1/K).
    pub activation_per_hz: f64,
    /// The firing-rate scale K.
    pub scale: f64,
    /// Clamp a current drive at 0 A (see `RunSettings::signed_current`).
    pub rectify: bool,
}

impl RateMap {
    pub fn new(activation: &Activation, scale: f64) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(SnnError::Settings(format!(
                "--scale-firing-rates must be positive, got {scale}"
            )));
        }
        Ok(match activation {
            Activation::RateCurve(c) => {
                let s = c.spec();
                RateMap {
                    gain: scale * s.gain_a,
                    offset: s.offset_a,
                    activation_per_hz: s.output_scale / scale,
                    rate_fn: RateFn::Curve(c.clone()),
                    scale,
                    rectify: true,
                }
            }
            Activation::SoftLif(s) => RateMap {
                gain: scale,
                offset: 0.0,
                activation_per_hz: s.amplitude / scale,
                rate_fn: RateFn::SoftLif(s.clone()),
                scale,
                rectify: false,
            },
            Activation::Relu => RateMap {
                gain: scale,
                offset: 0.0,
                activation_per_hz: 1.0 / (RELU_RATE_HZ * scale),
                rate_fn: RateFn::Relu,
                scale,
                rectify: false,
            },
        })
    }

    /// The measured rate curve, if the drive is a current.
    pub fn curve(&self) -> Option<&RateCurve> {
        match &self.rate_fn {
            RateFn::Curve(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the drive is a current in amperes (a measured rate curve).
    pub fn is_current(&self) -> bool {
        matches!(self.rate_fn, RateFn::Curve(_))
    }

    /// The neuron's drive at pre-activation z: a current (A) for rate
    /// curves, rectified at 0 unless signed currents were asked for.
    #[inline]
    pub fn drive(&self, z: f64) -> f64 {
        let d = self.gain * z + self.offset;
        if self.rectify {
            d.max(0.0)
        } else {
            d
        }
    }

    /// Steady-state rate (Hz) at `drive`.
    #[inline]
    pub fn rate_hz(&self, drive: f64) -> f64 {
        match &self.rate_fn {
            RateFn::Curve(c) => c.rate_hz(drive),
            RateFn::SoftLif(s) => s.eval(drive).0 / s.amplitude,
            RateFn::Relu => RELU_RATE_HZ * drive.max(0.0),
        }
    }

    /// The rate-model activation at pre-activation z (the ANN's for K = 1).
    pub fn activation(&self, z: f64) -> f64 {
        self.activation_per_hz * self.rate_hz(self.drive(z))
    }

    /// A LIF matched to the curve: the curve's rheobase, and τ_rc such that
    /// the LIF rate at the z = 1 current equals the curve's.
    pub fn matched_lif(&self, n: usize) -> Result<Lif> {
        let RateFn::Curve(c) = &self.rate_fn else {
            return Err(SnnError::Settings(
                "--abstract-neuron lif needs a model trained on a rate curve (with a current map)"
                    .into(),
            ));
        };
        let rheobase = c.rheobase_a();
        let i_top = self.drive(1.0 / self.scale);
        let r_top = self.rate_hz(i_top);
        if !(i_top > rheobase && r_top > 0.0) {
            return Err(SnnError::Settings(format!(
                "cannot match a LIF: the curve is silent at z = 1 ({i_top} A, rheobase {rheobase} A)"
            )));
        }
        let j = i_top / rheobase;
        let tau_rc = 1.0 / (r_top * (1.0 / (j - 1.0)).ln_1p());
        Lif::new(n, tau_rc, 0.0, rheobase).map_err(|e| SnnError::Settings(e.to_string()))
    }
}

/// An integrate-and-fire neuron whose rate is exactly a [`RateMap`]'s:
/// the phase grows by r(drive)·dt each step and every whole unit is a spike
/// (the spike time is where the linear ramp crosses it). Without leak, the
/// spike count over T steps is within one spike of ∫ r dt.
#[derive(Clone, Debug)]
pub struct RateIf {
    map: RateMap,
    phase: Vec<f64>,
    /// The last drive and its rate, per neuron: a constant drive (the
    /// analog input layer) skips the curve evaluation.
    last: Vec<(f64, f64)>,
}

impl RateIf {
    pub fn new(n: usize, map: RateMap) -> Self {
        RateIf {
            map,
            phase: vec![0.0; n],
            last: vec![(f64::NAN, 0.0); n],
        }
    }
}

impl NeuronModel for RateIf {
    fn len(&self) -> usize {
        self.phase.len()
    }
    fn advance(
        &mut self,
        dt: f64,
        input_currents: &[f64],
        spikes_out: &mut Vec<(usize, f64)>,
    ) -> std::result::Result<(), NeuronError> {
        check_advance_args(self.phase.len(), dt, input_currents)?;
        for (i, ((v, last), &drive)) in self
            .phase
            .iter_mut()
            .zip(self.last.iter_mut())
            .zip(input_currents)
            .enumerate()
        {
            if last.0 != drive {
                *last = (drive, self.map.rate_hz(drive));
            }
            let rate = last.1;
            if rate <= 0.0 {
                continue;
            }
            let v0 = *v;
            *v += rate * dt;
            // (Most steps end below one: skip the floor there.)
            if *v >= 1.0 {
                let count = v.floor();
                for k in 1..=count as u64 {
                    spikes_out.push((i, (k as f64 - v0) / rate));
                }
                *v -= count;
            }
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.phase.fill(0.0);
    }
    fn membrane_voltages(&self) -> &[f64] {
        &self.phase
    }
}

impl RateModel for RateIf {
    fn rate(&self, current: f64) -> f64 {
        self.map.rate_hz(current)
    }
}

/// The neuron circuits of a circuit-fidelity network: one nominal device
/// for every neuron, or device-to-device variation, where every neuron of
/// every layer is given one device of a library of drawn devices, uniformly
/// at random (seeded by `seed`, the layer and the neuron), so that the same
/// seed builds the same chip whatever thread builds it.
pub struct NeuronDevices {
    variants: Vec<Circuit>,
    seed: u64,
}

impl NeuronDevices {
    /// Every neuron is `circuit`.
    pub fn nominal(circuit: Circuit) -> Self {
        NeuronDevices {
            variants: vec![circuit],
            seed: 0,
        }
    }

    /// Every neuron gets one of `variants` (at least one).
    pub fn drawn(variants: Vec<Circuit>, seed: u64) -> Result<Self> {
        if variants.is_empty() {
            return Err(SnnError::Settings(
                "a device library needs at least one device".into(),
            ));
        }
        Ok(NeuronDevices { variants, seed })
    }

    pub fn variants(&self) -> &[Circuit] {
        &self.variants
    }

    /// Whether every neuron is the same device.
    pub fn is_nominal(&self) -> bool {
        self.variants.len() == 1
    }

    /// The device of each of the `n` neurons of layer `layer`.
    pub fn assignment(&self, layer: usize, n: usize) -> Vec<usize> {
        let k = self.variants.len();
        let mut rng = SplitMix64::derive(self.seed, &[layer as u64]);
        (0..n).map(|_| rng.below(k)).collect()
    }
}

/// The neurons of one layer.
pub enum Neurons {
    /// A spiking model; its spikes are counted per step.
    Spiking(Box<dyn NeuronModel>),
    /// The rate model: `r · dt` fractional spikes per step.
    Rate,
}

impl Neurons {
    pub fn reset(&mut self) {
        if let Neurons::Spiking(m) = self {
            m.reset();
        }
    }

    /// Energy dissipated in the layer's neuron circuits since the reset
    /// (J); None without circuits.
    pub fn energy_dissipated(&self) -> Option<f64> {
        match self {
            Neurons::Spiking(m) => m.energy_dissipated(),
            Neurons::Rate => None,
        }
    }

    /// The layer's circuit-solver work since the reset; None without circuits.
    pub fn solver_stats(&self) -> Option<KernelStats> {
        match self {
            Neurons::Spiking(m) => m.solver_stats(),
            Neurons::Rate => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::CurveFit;

    fn lif_curve_map(scale: f64) -> RateMap {
        let lif = Lif::circuit_equivalent(1);
        let currents: Vec<f64> = (0..=60).map(|k| k as f64 * 0.1e-9).collect();
        let rates = currents.iter().map(|&i| lif.rate(i)).collect();
        let curve = RateCurve::fit(currents, rates, &CurveFit::default()).unwrap();
        RateMap::new(&Activation::RateCurve(curve), scale).unwrap()
    }

    #[test]
    fn rate_map_reproduces_the_activation_and_scales() {
        let act = match lif_curve_map(1.0).rate_fn {
            RateFn::Curve(c) => Activation::RateCurve(c),
            _ => unreachable!(),
        };
        let map = lif_curve_map(1.0);
        for z in [-0.5, 0.0, 0.3, 1.0, 1.7] {
            assert!((map.activation(z) - act.eval(z).0).abs() < 1e-12);
        }
        // K = 4 drives harder and weighs each spike a quarter.
        let k4 = lif_curve_map(4.0);
        assert!((k4.activation_per_hz * 4.0 - map.activation_per_hz).abs() < 1e-18);
        assert!(k4.rate_hz(k4.drive(0.5)) > map.rate_hz(map.drive(0.5)));
        assert!(RateMap::new(&act, 0.0).is_err());
    }

    #[test]
    fn matched_lif_fires_at_the_curve_rate_at_z_one() {
        let map = lif_curve_map(1.0);
        let lif = map.matched_lif(1).unwrap();
        let i_top = map.drive(1.0);
        let (want, got) = (map.rate_hz(i_top), lif.rate(i_top));
        assert!((want - got).abs() < 1e-9 * want, "{want} vs {got}");
        assert_eq!(lif.rate(0.9 * lif.rheobase), 0.0);
        // ReLU models have no current map to match.
        let relu = RateMap::new(&Activation::Relu, 1.0).unwrap();
        assert!(relu.matched_lif(1).is_err());
    }

    #[test]
    fn rate_if_spike_count_follows_the_rate() {
        let map = lif_curve_map(1.0);
        let drive = map.drive(0.8);
        let rate = map.rate_hz(drive);
        let mut n = RateIf::new(2, map);
        let mut spikes = Vec::new();
        for _ in 0..1000 {
            n.advance(1e-3, &[drive, 0.0], &mut spikes).unwrap();
        }
        let count = spikes.iter().filter(|s| s.0 == 0).count() as f64;
        assert!(
            (count - rate).abs() <= 1.0,
            "{count} spikes in 1 s at {rate} Hz"
        );
        assert!(spikes
            .iter()
            .all(|s| s.0 == 0 && (0.0..=1e-3).contains(&s.1)));
    }
}
