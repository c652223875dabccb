//! One network state and its event-driven step loop for one image.
//!
//! Each network step (dt), layer by layer: the events of the layer below
//! (spike counts, or the rate model's fractional spikes) are scattered along
//! their outgoing weights into this layer's input `u`, scaled by
//! `activation_per_hz / dt`; the synapse filter turns `u` into z (plus the
//! bias, and with analog input plus the constant image current of the first
//! layer); z becomes the drive through the model's current map; the neurons
//! advance by dt and their spikes are this layer's events. Only layers below
//! with events cost scatter work, so the cost grows with the spike count.
//! Circuit neurons of the first layer under analog input see one constant
//! drive for the whole image: they advance over the whole run in one call,
//! which spares their integrators a stop at every step boundary, and their
//! spikes are binned into steps. Nominal kernels answer that call from the
//! run's response table (`neuron::response`) instead of integrating.

use super::neurons::{
    AbstractNeuron, Fidelity, InputMode, NeuronDevices, Neurons, RateIf, RateMap, Readout,
};
use super::run::SharedCircuits;
use super::synapse::Synapse;
use super::topology::{ScatterBuffers, Topology};
use super::{Result, SnnError};
use crate::neuron::{KernelStats, NeuronKernel, NeuronOptions, VariedKernel};
use serde::{Deserialize, Serialize};

/// Rate-fidelity rates at or below this are not propagated (Hz).
pub const RATE_FLOOR_HZ: f64 = 1e-6;

/// Simulation settings of a classification run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub fidelity: Fidelity,
    pub abstract_neuron: AbstractNeuron,
    /// Step counts to read out at, ascending; the run lasts the largest.
    pub steps: Vec<usize>,
    pub dt_s: f64,
    pub synapse: Synapse,
    pub scale_firing_rates: f64,
    pub input: InputMode,
    pub readout: Readout,
    /// Deliver the synaptic current with its sign. By default it is
    /// rectified at 0 A (synapses only inject current), as the rate model
    /// assumes: its activation is 0 for any drive below the rheobase. A
    /// memristive neuron's threshold switch sees |v|, so a MIF or MIF2
    /// driven hard enough *negative* fires too (the MIF at −2.5 nA as fast
    /// as at +2.5 nA), which the rate model knows nothing of.
    #[serde(default)]
    pub signed_current: bool,
}

/// The longest run a network takes, in steps.
pub const MAX_STEPS: usize = 1_000_000;

impl RunSettings {
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(SnnError::Settings(m));
        if self.steps.is_empty() || self.steps.contains(&0) {
            return err(format!(
                "steps must be a list of positive counts, got {:?}",
                self.steps
            ));
        }
        // (The readout keeps every step's output layer, and a run of a
        // million steps is 1,000 s of network time at the default dt.)
        if let Some(&t) = self.steps.iter().find(|&&t| t > MAX_STEPS) {
            return err(format!("steps may be at most {MAX_STEPS}, got {t}"));
        }
        if self.steps.windows(2).any(|w| w[1] <= w[0]) {
            return err(format!(
                "steps must increase strictly, got {:?}",
                self.steps
            ));
        }
        if !(self.dt_s.is_finite() && self.dt_s > 0.0) {
            return err(format!("dt must be positive, got {} s", self.dt_s));
        }
        if !(self.scale_firing_rates.is_finite() && self.scale_firing_rates > 0.0) {
            return err(format!(
                "the firing-rate scale must be positive, got {}",
                self.scale_firing_rates
            ));
        }
        self.synapse.validate()
    }

    pub fn total_steps(&self) -> usize {
        *self.steps.last().expect("validated: steps is not empty")
    }
}

/// What one image gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    pub label: usize,
    /// Per entry of `RunSettings::steps`: the two best classes, best first.
    pub top2: Vec<[usize; 2]>,
    /// Spikes (or the rate model's fractional spikes) per layer over the
    /// whole run: the hidden layers, then the output layer with count readout.
    pub spikes: Vec<f64>,
    /// Spikes of the spiking input layer (0 with analog input).
    pub input_spikes: f64,
    /// Synaptic updates (one weight added to one target) over the whole run.
    pub synops: f64,
    /// Neuron-steps simulated (neurons × steps, summed over layers).
    pub neuron_steps: u64,
    /// Energy dissipated in the neuron circuits of every layer over the
    /// whole run (J); None unless every layer's neurons are circuits.
    pub energy_j: Option<f64>,
    /// The circuit solver's work over the whole run, summed over the
    /// layers whose neurons are circuits; None when none are.
    pub solver: Option<KernelStats>,
}

struct LayerState {
    /// None for an output layer read by its filtered value.
    neurons: Option<Neurons>,
    u: Vec<f64>,
    stage1: Vec<f64>,
    stage2: Vec<f64>,
    z: Vec<f64>,
    /// Constant part of z: the bias (and the image current of layer 0).
    constant: Vec<f64>,
    drive: Vec<f64>,
    /// Rate fidelity: the last drive and its rate per neuron.
    last_rate: Vec<(f64, f64)>,
    events: Vec<(usize, f64)>,
    /// Circuit neurons whose drive is constant for the whole image (the
    /// first layer under analog input): they are advanced over the whole
    /// run at once, and their spikes binned into steps here.
    whole_run: Option<Vec<Vec<(usize, f64)>>>,
}

/// Reusable state of one converted network.
pub struct Network<'a> {
    topo: &'a Topology,
    map: &'a RateMap,
    settings: &'a RunSettings,
    layers: Vec<LayerState>,
    input_phase: Vec<f64>,
    input_events: Vec<(usize, f64)>,
    spike_buf: Vec<(usize, f64)>,
    scatter_buf: ScatterBuffers,
    probe: Option<Probe>,
    trace: Option<OutputTrace>,
}

/// The output layer of one image over time, step by step, as the thesis's
/// appendix figures show it: `classes` values per step, step-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputTrace {
    /// The unfiltered input of each output neuron: the spikes of the layer
    /// below along their weights in that step (activation per second).
    pub unfiltered: Vec<f64>,
    /// The synapse-filtered pre-activation z (plus bias), which the
    /// filtered readout sums.
    pub filtered: Vec<f64>,
    /// The output neurons' own spikes per step (count readout; else 0).
    pub spikes: Vec<f64>,
}

/// Activity summed over the steps from one step on, per population and
/// neuron: spikes (or the rate model's fractional spikes; zero for an
/// output layer read by its filtered value) and the filtered pre-activation
/// z that drove the neuron.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    pub events: Vec<Vec<f64>>,
    pub z: Vec<Vec<f64>>,
}

struct Probe {
    from_step: usize,
    activity: Activity,
}

impl<'a> Network<'a> {
    /// Build the neurons of every layer. `circuit` is the neuron netlist,
    /// needed for `Fidelity::Circuit`.
    pub fn new(
        topo: &'a Topology,
        map: &'a RateMap,
        settings: &'a RunSettings,
        devices: Option<&NeuronDevices>,
        shared: &SharedCircuits,
    ) -> Result<Self> {
        settings.validate()?;
        if settings.fidelity == Fidelity::Circuit && !map.is_current() {
            return Err(SnnError::Settings(
                "circuit fidelity needs a model trained on a measured rate curve (its current map gives amperes)".into(),
            ));
        }
        let last = topo.populations.len() - 1;
        let mut layers = Vec::with_capacity(topo.populations.len());
        for (k, pop) in topo.populations.iter().enumerate() {
            let spiking = k < last || settings.readout == Readout::Count;
            let neurons = if spiking {
                Some(make_neurons(settings, map, pop.size, devices, shared, k)?)
            } else {
                None
            };
            let n = pop.size;
            layers.push(LayerState {
                neurons,
                u: vec![0.0; n],
                stage1: vec![0.0; n],
                stage2: vec![0.0; n],
                z: vec![0.0; n],
                constant: pop.bias.clone(),
                drive: vec![0.0; n],
                last_rate: vec![(f64::NAN, 0.0); n],
                events: Vec::new(),
                // No step boundary changes such a neuron's input, so none
                // needs to stop its integrator.
                whole_run: (k == 0
                    && spiking
                    && settings.fidelity == Fidelity::Circuit
                    && settings.input == InputMode::Analog)
                    .then(|| vec![Vec::new(); settings.total_steps()]),
            });
        }
        let input_len = topo.input.channels * topo.input.height * topo.input.width;
        Ok(Network {
            topo,
            map,
            settings,
            layers,
            input_phase: vec![0.0; input_len],
            input_events: Vec::new(),
            spike_buf: Vec::new(),
            scatter_buf: ScatterBuffers::default(),
            probe: None,
            trace: None,
        })
    }

    fn reset(&mut self, image: &[f32]) {
        for (layer, pop) in self.layers.iter_mut().zip(&self.topo.populations) {
            if let Some(n) = layer.neurons.as_mut() {
                n.reset();
            }
            layer.stage1.fill(0.0);
            layer.stage2.fill(0.0);
            layer.constant.copy_from_slice(&pop.bias);
            layer.events.clear();
        }
        self.input_phase.fill(0.0);
        if self.settings.input == InputMode::Analog {
            // The image as a constant current: W·x once, by the scatter code.
            let events: Vec<(usize, f64)> = image
                .iter()
                .enumerate()
                .filter(|(_, &v)| v != 0.0)
                .map(|(i, &v)| (i, v as f64))
                .collect();
            let first = &mut self.layers[0];
            self.topo.connections[0].scatter(
                &events,
                1.0,
                &mut first.constant,
                &mut self.scatter_buf,
            );
        }
    }

    /// Classify one image (`C × H × W` values as the model's input transform
    /// gives them) with label `label`.
    // One index walks layers, connections and spike totals together.
    #[allow(clippy::needless_range_loop)]
    pub fn run_image(&mut self, image: &[f32], label: usize) -> Result<ImageResult> {
        let s = self.settings;
        let (dt, total) = (s.dt_s, s.total_steps());
        let decay = s.synapse.decay(dt);
        let scale = self.map.activation_per_hz / dt;
        // Pixel value 1 fires at the rate that stands for activation 1.
        let input_rate = 1.0 / self.map.activation_per_hz;
        self.reset(image);
        let last = self.layers.len() - 1;
        let classes = self.topo.classes;
        let mut spikes = vec![
            0.0;
            if s.readout == Readout::Count {
                last + 1
            } else {
                last
            }
        ];
        let (mut synops, mut input_spikes, mut neuron_steps) = (0.0, 0.0, 0u64);
        let mut filtered_history: Vec<f64> = Vec::with_capacity(total * classes);
        let mut count_history: Vec<f64> = Vec::new();
        let mut counts = vec![0.0; classes];
        for step in 0..total {
            let mut below = std::mem::take(&mut self.input_events);
            below.clear();
            if s.input == InputMode::Spiking {
                for (i, (p, &x)) in self.input_phase.iter_mut().zip(image).enumerate() {
                    if x > 0.0 {
                        *p += x as f64 * input_rate * dt;
                        let n = p.floor();
                        if n >= 1.0 {
                            *p -= n;
                            below.push((i, n));
                            input_spikes += n;
                        }
                    }
                }
            }
            for k in 0..=last {
                let layer = &mut self.layers[k];
                layer.u.fill(0.0);
                if !below.is_empty() {
                    synops += self.topo.connections[k].scatter(
                        &below,
                        scale,
                        &mut layer.u,
                        &mut self.scatter_buf,
                    ) as f64;
                }
                s.synapse.step(
                    decay,
                    &layer.u,
                    &mut layer.stage1,
                    &mut layer.stage2,
                    &mut layer.z,
                );
                for (z, c) in layer.z.iter_mut().zip(&layer.constant) {
                    *z += c;
                }
                let mut events = std::mem::take(&mut layer.events);
                events.clear();
                if let Some(neurons) = layer.neurons.as_mut() {
                    // (A whole-run layer uses its drive at the first step only.)
                    if step == 0 || layer.whole_run.is_none() {
                        for (d, &z) in layer.drive.iter_mut().zip(&layer.z) {
                            *d = self.map.drive(z);
                        }
                    }
                    neuron_steps += layer.z.len() as u64;
                    match (neurons, &mut layer.whole_run) {
                        (Neurons::Spiking(model), Some(binned)) => {
                            if step == 0 {
                                self.spike_buf.clear();
                                model
                                    .advance_from_rest(
                                        dt * total as f64,
                                        &layer.drive,
                                        &mut self.spike_buf,
                                    )
                                    .map_err(|source| SnnError::Neuron {
                                        layer: k + 1,
                                        source,
                                    })?;
                                binned.iter_mut().for_each(Vec::clear);
                                // (Ordered by instance, as a step's spikes are.)
                                for &(i, t) in &self.spike_buf {
                                    let at = ((t / dt) as usize).min(total - 1);
                                    count_spike(&mut binned[at], i);
                                }
                            }
                            events.extend_from_slice(&binned[step]);
                        }
                        (Neurons::Spiking(model), None) => {
                            self.spike_buf.clear();
                            model
                                .advance(dt, &layer.drive, &mut self.spike_buf)
                                .map_err(|source| SnnError::Neuron {
                                    layer: k + 1,
                                    source,
                                })?;
                            for &(i, _) in &self.spike_buf {
                                count_spike(&mut events, i);
                            }
                        }
                        (Neurons::Rate, _) => {
                            for (i, (&d, last)) in layer
                                .drive
                                .iter()
                                .zip(layer.last_rate.iter_mut())
                                .enumerate()
                            {
                                if last.0 != d {
                                    *last = (d, self.map.rate_hz(d));
                                }
                                let r = last.1;
                                // Rates below 1 µHz (from the smoothed onset)
                                // carry nothing within any run; skipping them
                                // keeps the scatter sparse.
                                if r > RATE_FLOOR_HZ {
                                    events.push((i, r * dt));
                                }
                            }
                        }
                    }
                    spikes[k] += events.iter().map(|e| e.1).sum::<f64>();
                }
                if let Some(p) = self.probe.as_mut().filter(|p| step >= p.from_step) {
                    let a = &mut p.activity;
                    a.z[k].iter_mut().zip(&layer.z).for_each(|(a, z)| *a += z);
                    events.iter().for_each(|&(i, n)| a.events[k][i] += n);
                }
                if let Some(t) = self.trace.as_mut().filter(|_| k == last) {
                    t.unfiltered.extend_from_slice(&layer.u);
                    t.filtered.extend_from_slice(&layer.z);
                    let first = t.spikes.len();
                    t.spikes.resize(first + classes, 0.0);
                    if layer.neurons.is_some() {
                        for &(i, n) in &events {
                            t.spikes[first + i] += n;
                        }
                    }
                }
                if k == last {
                    filtered_history.extend_from_slice(&layer.z);
                    if layer.neurons.is_some() {
                        for &(i, n) in &events {
                            counts[i] += n;
                        }
                        count_history.extend_from_slice(&counts);
                    }
                }
                // This layer's events feed the next one; recycle the old list.
                let old = std::mem::replace(&mut below, events);
                self.layers[k].events = old;
            }
            self.input_events = below;
        }
        let top2 = s
            .steps
            .iter()
            .map(|&t| {
                // Filtered readout: the sum over the last half of the steps.
                let window = t.div_ceil(2);
                let mut score = vec![0.0; classes];
                for step in t - window..t {
                    for (sc, &z) in score
                        .iter_mut()
                        .zip(&filtered_history[step * classes..(step + 1) * classes])
                    {
                        *sc += z;
                    }
                }
                let count = (s.readout == Readout::Count)
                    .then(|| &count_history[(t - 1) * classes..t * classes]);
                rank_top2(&score, count)
            })
            .collect();
        let energy_j = self
            .layers
            .iter()
            .filter_map(|l| l.neurons.as_ref())
            .map(Neurons::energy_dissipated)
            .sum::<Option<f64>>();
        let solver = self
            .layers
            .iter()
            .filter_map(|l| l.neurons.as_ref()?.solver_stats())
            .reduce(|mut a, b| {
                a += b;
                a
            });
        Ok(ImageResult {
            label,
            top2,
            spikes,
            input_spikes,
            synops,
            neuron_steps,
            energy_j,
            solver,
        })
    }

    /// Classify one image as [`Network::run_image`] does, and return the
    /// output layer's trace over time too.
    pub fn run_image_traced(
        &mut self,
        image: &[f32],
        label: usize,
    ) -> Result<(ImageResult, OutputTrace)> {
        self.trace = Some(OutputTrace::default());
        let outcome = self.run_image(image, label);
        let trace = self.trace.take().expect("set above");
        outcome.map(|r| (r, trace))
    }

    /// Run one image and return its activity summed over the steps from
    /// `from_step` (0-based) on.
    pub fn run_image_probed(&mut self, image: &[f32], from_step: usize) -> Result<Activity> {
        let zeros: Vec<Vec<f64>> = self.layers.iter().map(|l| vec![0.0; l.z.len()]).collect();
        self.probe = Some(Probe {
            from_step,
            activity: Activity {
                events: zeros.clone(),
                z: zeros,
            },
        });
        let outcome = self.run_image(image, 0);
        let probe = self.probe.take().expect("set above");
        outcome.map(|_| probe.activity)
    }
}

/// Add a spike of neuron `i` to a step's events, (neuron, count) pairs
/// ordered by neuron, as spikes arrive.
fn count_spike(events: &mut Vec<(usize, f64)>, i: usize) {
    match events.last_mut() {
        Some((j, n)) if *j == i => *n += 1.0,
        _ => events.push((i, 1.0)),
    }
}

/// The two best classes: by `count` when given (ties by `score`), else by
/// `score`; remaining ties go to the lower class index.
fn rank_top2(score: &[f64], count: Option<&[f64]>) -> [usize; 2] {
    let key = |i: usize| (count.map_or(0.0, |c| c[i]), score[i]);
    let better = |a: usize, b: usize| {
        let (ka, kb) = (key(a), key(b));
        ka.0 > kb.0 || (ka.0 == kb.0 && ka.1 > kb.1)
    };
    let mut best = [0usize, usize::MAX];
    for i in 1..score.len() {
        if better(i, best[0]) {
            best = [i, best[0]];
        } else if best[1] == usize::MAX || better(i, best[1]) {
            best[1] = i;
        }
    }
    if best[1] == usize::MAX {
        best[1] = best[0];
    }
    best
}

fn make_neurons(
    settings: &RunSettings,
    map: &RateMap,
    n: usize,
    devices: Option<&NeuronDevices>,
    shared: &SharedCircuits,
    layer: usize,
) -> Result<Neurons> {
    Ok(match settings.fidelity {
        Fidelity::Rate => Neurons::Rate,
        Fidelity::Abstract => match settings.abstract_neuron {
            AbstractNeuron::If => Neurons::Spiking(Box::new(RateIf::new(n, map.clone()))),
            AbstractNeuron::Lif => Neurons::Spiking(Box::new(map.matched_lif(n)?)),
        },
        Fidelity::Circuit => {
            let devices = devices.ok_or_else(|| {
                SnnError::Settings("circuit fidelity needs the neuron netlist".into())
            })?;
            let neuron_error = |source| SnnError::Neuron {
                layer: layer + 1,
                source,
            };
            let map_of = |k: usize| shared.spike_maps.get(k).cloned().flatten();
            if devices.is_nominal() {
                let circuit = &devices.variants()[0];
                let mut kernel =
                    NeuronKernel::new(circuit, n, NeuronOptions::from_circuit(circuit))
                        .map_err(neuron_error)?;
                if let Some(m) = map_of(0) {
                    kernel.use_spike_map(m).map_err(neuron_error)?;
                }
                kernel.use_response_tables(shared.responses.clone());
                Neurons::Spiking(Box::new(kernel))
            } else {
                let library: Vec<_> = devices
                    .variants()
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (c, map_of(k)))
                    .collect();
                let kernel = VariedKernel::new(&library, &devices.assignment(layer, n))
                    .map_err(neuron_error)?;
                Neurons::Spiking(Box::new(kernel))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::rank_top2;

    #[test]
    fn ranking_uses_counts_then_scores_then_index() {
        assert_eq!(rank_top2(&[0.1, 0.5, 0.3], None), [1, 2]);
        assert_eq!(rank_top2(&[0.1, 0.5, 0.3], Some(&[2.0, 1.0, 2.0])), [2, 0]);
        assert_eq!(rank_top2(&[0.0, 0.0, 0.0], None), [0, 1]);
        assert_eq!(rank_top2(&[1.0], None), [0, 0]);
    }
}
