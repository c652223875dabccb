//! Classify many images in parallel.
//!
//! Images are independent: each rayon task keeps one [`Network`] and resets
//! it before every image, so an image's result does not depend on which
//! thread ran it or on what ran before. The circuit kernel parallelises
//! inside one image too, in fixed chunks, so results are the same on any
//! number of threads.

use super::network::{ImageResult, Network, RunSettings};
use super::neurons::{Fidelity, NeuronDevices, RateMap};
use super::topology::Topology;
use super::{Result, SnnError};
use crate::neuron::response::ResponseTables;
use crate::neuron::{NeuronKernel, NeuronOptions, SpikeMap};
use crate::train::net::Mode;
use crate::train::Net;
use rayon::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Results in image order and the wall time of the simulation.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ClassifyOutcome {
    pub results: Vec<ImageResult>,
    pub wall_s: f64,
}

/// Run every image of `images` (`labels.len()` images of the topology's
/// input size, back to back); `progress` is called once per finished image.
pub fn classify(
    topo: &Topology,
    map: &RateMap,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
    images: &[f32],
    labels: &[usize],
    progress: &(dyn Fn() + Sync),
) -> Result<ClassifyOutcome> {
    let no_checkpoints = Checkpoints {
        every_s: None,
        save: &mut |_: &ClassifyOutcome| Ok(()),
    };
    classify_resuming(
        topo,
        map,
        settings,
        devices,
        images,
        labels,
        ClassifyOutcome::default(),
        no_checkpoints,
        progress,
    )
}

/// How a long run saves its progress: after blocks of images that take
/// about `every_s` seconds (None: one block, no saving), `save` gets the
/// results so far.
pub struct Checkpoints<'a> {
    pub every_s: Option<f64>,
    pub save: &'a mut dyn FnMut(&ClassifyOutcome) -> Result<()>,
}

/// [`classify`] that starts after the images already in `done` (the
/// results of an interrupted run: the first `done.results.len()` images,
/// not run again) and saves its progress through `checkpoints`. Images
/// are independent and the spike maps are built from the settings alone,
/// so a resumed run gives the results of an uninterrupted one.
#[allow(clippy::too_many_arguments)]
pub fn classify_resuming(
    topo: &Topology,
    map: &RateMap,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
    images: &[f32],
    labels: &[usize],
    mut done: ClassifyOutcome,
    checkpoints: Checkpoints,
    progress: &(dyn Fn() + Sync),
) -> Result<ClassifyOutcome> {
    let len = topo.input.channels * topo.input.height * topo.input.width;
    if images.len() != labels.len() * len {
        return Err(SnnError::Data(format!(
            "{} input values for {} images of {len} values",
            images.len(),
            labels.len()
        )));
    }
    if done.results.len() > labels.len() {
        return Err(SnnError::Data(format!(
            "{} images already done of a run of {}",
            done.results.len(),
            labels.len()
        )));
    }
    let shared = shared_circuits(map, settings, devices)?;
    let threads = rayon::current_num_threads().max(1);
    // The first block is short, so that the time per image is known early.
    let mut block = match checkpoints.every_s {
        Some(_) => 2 * threads,
        None => labels.len(),
    };
    while done.results.len() < labels.len() {
        let first = done.results.len();
        let end = (first + block.max(1)).min(labels.len());
        let start = Instant::now();
        let results = run_images(
            topo,
            map,
            settings,
            devices,
            &shared,
            &images[first * len..end * len],
            |net, image, i| {
                let r = net.run_image(image, labels[first + i]);
                progress();
                r
            },
        )?;
        let elapsed = start.elapsed().as_secs_f64();
        done.results.extend(results);
        done.wall_s += elapsed;
        (checkpoints.save)(&done)?;
        if let Some(every_s) = checkpoints.every_s {
            // Whole rounds of the thread pool, about `every_s` of work.
            let per_image = elapsed / (end - first) as f64;
            let rounds = (every_s / (per_image * threads as f64).max(1e-9)).clamp(1.0, 1e4);
            block = rounds as usize * threads;
        }
    }
    Ok(done)
}

/// Apply `f(network, image, index)` to every image in parallel, one reset
/// [`Network`] per rayon task; results in image order.
pub fn run_images<T: Send>(
    topo: &Topology,
    map: &RateMap,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
    shared: &SharedCircuits,
    images: &[f32],
    f: impl Fn(&mut Network, &[f32], usize) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let len = topo.input.channels * topo.input.height * topo.input.width;
    // Build one network up front so that setting errors surface once.
    drop(Network::new(topo, map, settings, devices, shared)?);
    let results: Vec<Result<T>> = images
        .par_chunks(len.max(1))
        .enumerate()
        .map_init(
            || Network::new(topo, map, settings, devices, shared),
            |net, (i, image)| match net {
                Ok(net) => f(net, image, i),
                Err(e) => Err(SnnError::Settings(e.to_string())),
            },
        )
        .collect();
    results.into_iter().collect()
}

/// What the circuit kernels of a run share across its networks (one per
/// rayon task).
#[derive(Clone, Default)]
pub struct SharedCircuits {
    /// Per device of the library: the spike map its kernels replay from.
    pub spike_maps: Vec<Option<Arc<SpikeMap>>>,
    /// The nominal device's response tables, which answer a first layer
    /// driven by an analog image (see `neuron::response`).
    pub responses: Arc<ResponseTables>,
}

/// The shared state of a run's circuit kernels: the response tables
/// (empty, filled as images need them) and the spike map of each device
/// that the circuit kernels of the run replay from, built up front over the currents the network mostly drives (from
/// just below the rate curve's rheobase to twice the top of the range that
/// placed z = 1, times the firing-rate scale) and frozen: an image's result then does not
/// depend on which images ran before it on the same thread. (A kernel grows
/// its map above that range before a step that needs it, still
/// independently of history: see `SpikeMap`.) Empty without circuits; a
/// device without a map has None.
pub fn shared_circuits(
    map: &RateMap,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
) -> Result<SharedCircuits> {
    Ok(SharedCircuits {
        spike_maps: shared_spike_maps(map, settings, devices)?,
        responses: ResponseTables::new(),
    })
}

fn shared_spike_maps(
    map: &RateMap,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
) -> Result<Vec<Option<Arc<SpikeMap>>>> {
    let (Fidelity::Circuit, Some(devices), Some(curve)) = (settings.fidelity, devices, map.curve())
    else {
        return Ok(Vec::new());
    };
    // The top of the range that placed z = 1: a curve measured further (to
    // follow the neuron where the network drives it hard) would otherwise
    // grow every map severalfold for currents few neurons see; the kernels
    // grow it where a run needs more.
    let spec = curve.spec();
    let z_one = spec.gain_a + spec.offset_a;
    let top = spec
        .current_a
        .iter()
        .fold(0.0f64, |m, &i| m.max(i))
        .min(1.25 * z_one);
    let (i_min, i_max) = (
        0.99 * curve.rheobase_a(),
        2.0 * top * settings.scale_firing_rates,
    );
    if !(i_min > 0.0 && i_max > i_min) {
        return Ok(vec![None; devices.variants().len()]);
    }
    let neuron_error = |source| SnnError::Neuron { layer: 1, source };
    devices
        .variants()
        .par_iter()
        .map(|circuit| {
            let mut kernel = NeuronKernel::new(circuit, 1, NeuronOptions::from_circuit(circuit))
                .map_err(neuron_error)?;
            kernel
                .prebuild_spike_map(i_min, i_max)
                .map_err(neuron_error)?;
            Ok(kernel.spike_map())
        })
        .collect()
}

/// The ANN's (rate model's) class for each image, in evaluation mode.
pub fn rate_model_predictions(net: &mut Net, images: &[f32], count: usize) -> Vec<usize> {
    let len = net.input_len();
    let classes = net.arch.classes;
    let mut out = Vec::with_capacity(count);
    for batch in images.chunks(256 * len.max(1)) {
        let logits = net.forward(batch, Mode::Eval);
        for row in logits.chunks(classes) {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            out.push(best);
        }
    }
    out
}
