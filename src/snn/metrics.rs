//! Accuracy, top-2, confusion, spike and SynOps accounting, the run report
//! and the merge of shard reports.
//!
//! A report keeps raw counts ([`Counts`]) next to the derived figures, so
//! that shards merge exactly: counts add, and every rate is recomputed from
//! the sums (weighted by images).

use super::network::{ImageResult, RunSettings};
use super::{Result, SnnError};
use crate::neuron::KernelStats;
use serde::{Deserialize, Serialize};

/// What the energy figure is, or why there is none.
pub const ENERGY_NOTE: &str = "energy dissipated in the neuron circuits' devices (memristors, resistors, resets) over the whole inference, summed over every neuron of every layer: the energy the input currents and the circuits' DC sources delivered, less the rise in the membrane capacitors' stored energy; synapses and readout not included";
/// Why there is no energy figure.
pub const NO_ENERGY_NOTE: &str = "not measured: only circuit-faithful neurons (--fidelity circuit in every layer, netlists of sources, capacitors, resistors, memristors, switches and resets) have an energy account (null); synops_per_image counts synaptic events";

/// Accuracy when reading out after `steps` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepsAccuracy {
    pub steps: usize,
    pub accuracy: f64,
    pub top2_accuracy: f64,
}

/// Raw sums over the images of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub images: u64,
    /// Per entry of the settings' steps.
    pub correct: Vec<u64>,
    pub top2_correct: Vec<u64>,
    pub rate_model_correct: u64,
    /// `confusion[label][prediction]` at the largest step count.
    pub confusion: Vec<Vec<u64>>,
    pub spikes: Vec<f64>,
    pub input_spikes: f64,
    pub synops: f64,
    pub neuron_steps: u64,
    /// Energy dissipated in the neuron circuits, summed over images (J);
    /// None unless every image had one.
    #[serde(default)]
    pub energy_j: Option<f64>,
    /// Images on which the `--compare` run predicted the same class.
    #[serde(default)]
    pub agree_with_compare: Option<u64>,
    /// The circuit solver's work summed over images; None unless every
    /// image ran circuit neurons.
    #[serde(default)]
    pub solver: Option<KernelStats>,
}

impl Counts {
    /// Sum `results`; `rate_model_predictions[i]` is the ANN's class for image i.
    pub fn from_results(
        results: &[ImageResult],
        rate_model_predictions: &[usize],
        classes: usize,
        steps: usize,
        layers: usize,
    ) -> Self {
        let mut c = Counts {
            images: results.len() as u64,
            correct: vec![0; steps],
            top2_correct: vec![0; steps],
            rate_model_correct: 0,
            confusion: vec![vec![0; classes]; classes],
            spikes: vec![0.0; layers],
            input_spikes: 0.0,
            synops: 0.0,
            neuron_steps: 0,
            energy_j: (!results.is_empty()).then_some(0.0),
            agree_with_compare: None,
            solver: (!results.is_empty()).then(KernelStats::default),
        };
        for (r, &ann) in results.iter().zip(rate_model_predictions) {
            for (k, t2) in r.top2.iter().enumerate() {
                c.correct[k] += (t2[0] == r.label) as u64;
                c.top2_correct[k] += t2.contains(&r.label) as u64;
            }
            c.rate_model_correct += (ann == r.label) as u64;
            let predicted = r.top2.last().map_or(0, |t| t[0]);
            if r.label < classes && predicted < classes {
                c.confusion[r.label][predicted] += 1;
            }
            for (s, v) in c.spikes.iter_mut().zip(&r.spikes) {
                *s += v;
            }
            c.input_spikes += r.input_spikes;
            c.synops += r.synops;
            c.neuron_steps += r.neuron_steps;
            c.energy_j = c.energy_j.zip(r.energy_j).map(|(a, b)| a + b);
            c.solver = add_stats(c.solver, r.solver);
        }
        c
    }

    /// Record how many images `other` classified like `results`.
    pub fn set_agreement(&mut self, results: &[ImageResult], other: &[ImageResult]) {
        let agree = results
            .iter()
            .zip(other)
            .filter(|(a, b)| a.top2.last().map(|t| t[0]) == b.top2.last().map(|t| t[0]))
            .count();
        self.agree_with_compare = Some(agree as u64);
    }

    fn add(&mut self, o: &Counts) -> Result<()> {
        if self.correct.len() != o.correct.len()
            || self.confusion.len() != o.confusion.len()
            || self.spikes.len() != o.spikes.len()
        {
            return Err(SnnError::Merge(
                "reports have different step lists, classes or layers".into(),
            ));
        }
        self.images += o.images;
        for (a, b) in self.correct.iter_mut().zip(&o.correct) {
            *a += b;
        }
        for (a, b) in self.top2_correct.iter_mut().zip(&o.top2_correct) {
            *a += b;
        }
        self.rate_model_correct += o.rate_model_correct;
        for (ra, rb) in self.confusion.iter_mut().zip(&o.confusion) {
            for (a, b) in ra.iter_mut().zip(rb) {
                *a += b;
            }
        }
        for (a, b) in self.spikes.iter_mut().zip(&o.spikes) {
            *a += b;
        }
        self.input_spikes += o.input_spikes;
        self.synops += o.synops;
        self.neuron_steps += o.neuron_steps;
        self.energy_j = self.energy_j.zip(o.energy_j).map(|(a, b)| a + b);
        self.solver = add_stats(self.solver, o.solver);
        self.agree_with_compare = match (self.agree_with_compare, o.agree_with_compare) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Ok(())
    }
}

fn add_stats(a: Option<KernelStats>, b: Option<KernelStats>) -> Option<KernelStats> {
    a.zip(b).map(|(mut a, b)| {
        a += b;
        a
    })
}

/// Where a run came from (not part of the simulation settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub netlist: String,
    pub model: String,
    pub dataset: String,
    /// Index of the first image of the split that was used, and how many
    /// images the unsharded run covers.
    pub limit: usize,
    /// `k/n` (0-based k) of a shard; `merged:N` after a merge of N shards.
    pub shard: Option<String>,
    pub threads: usize,
    /// Device-to-device variation of the run's circuit neurons (`--sigma`),
    /// in words; None for the nominal device.
    #[serde(default)]
    pub device_variation: Option<String>,
}

/// The result of `circsnn classify` (`report.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub accuracy: f64,
    pub top2_accuracy: f64,
    /// The ANN (rate model, activation applied exactly) on the same images.
    pub rate_model_accuracy: f64,
    pub images: u64,
    pub images_per_s: f64,
    pub neuron_steps_per_s: f64,
    /// Layer names, neurons, and spikes per image of each spiking layer.
    pub layers: Vec<String>,
    pub neurons_per_layer: Vec<usize>,
    pub spikes_per_image: Vec<f64>,
    pub input_spikes_per_image: f64,
    pub synops_per_image: f64,
    pub energy_j_per_inference: Option<f64>,
    pub energy_note: String,
    /// Wall time of the spiking simulation (s); summed over merged shards.
    pub wall_s: f64,
    pub data_variant: String,
    pub accuracy_vs_steps: Vec<StepsAccuracy>,
    /// Fraction of images where the `--compare` run gave the same class.
    pub agreement_with_compare: Option<f64>,
    pub run: RunInfo,
    pub settings: RunSettings,
    pub counts: Counts,
    pub compare: Option<Box<Report>>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        counts: Counts,
        settings: RunSettings,
        run: RunInfo,
        layers: Vec<String>,
        neurons_per_layer: Vec<usize>,
        wall_s: f64,
        data_variant: String,
        compare: Option<Report>,
    ) -> Self {
        let n = counts.images.max(1) as f64;
        let per = |x: f64| x / n;
        let accuracy_vs_steps: Vec<StepsAccuracy> = settings
            .steps
            .iter()
            .zip(counts.correct.iter().zip(&counts.top2_correct))
            .map(|(&steps, (&c, &t))| StepsAccuracy {
                steps,
                accuracy: per(c as f64),
                top2_accuracy: per(t as f64),
            })
            .collect();
        let last = accuracy_vs_steps.last().cloned().unwrap_or(StepsAccuracy {
            steps: 0,
            accuracy: 0.0,
            top2_accuracy: 0.0,
        });
        let rate = |x: f64| if wall_s > 0.0 { x / wall_s } else { 0.0 };
        Report {
            accuracy: last.accuracy,
            top2_accuracy: last.top2_accuracy,
            rate_model_accuracy: per(counts.rate_model_correct as f64),
            images: counts.images,
            images_per_s: rate(counts.images as f64),
            neuron_steps_per_s: rate(counts.neuron_steps as f64),
            layers,
            neurons_per_layer,
            spikes_per_image: counts.spikes.iter().map(|&s| per(s)).collect(),
            input_spikes_per_image: per(counts.input_spikes),
            synops_per_image: per(counts.synops),
            energy_j_per_inference: counts.energy_j.map(per),
            energy_note: if counts.energy_j.is_some() {
                ENERGY_NOTE
            } else {
                NO_ENERGY_NOTE
            }
            .into(),
            wall_s,
            data_variant,
            accuracy_vs_steps,
            agreement_with_compare: counts.agree_with_compare.map(|a| per(a as f64)),
            run,
            settings,
            counts,
            compare: compare.map(Box::new),
        }
    }
}

/// Combine shard reports of one run into one (counts added, figures
/// recomputed; wall times add, so images/s is per machine).
pub fn merge_reports(reports: &[Report]) -> Result<Report> {
    let Some(first) = reports.first() else {
        return Err(SnnError::Merge("no reports to merge".into()));
    };
    let mut counts = first.counts.clone();
    let mut wall = first.wall_s;
    for (k, r) in reports.iter().enumerate().skip(1) {
        let same_run = r.settings == first.settings
            && r.layers == first.layers
            && r.data_variant == first.data_variant
            && r.run.model == first.run.model
            && r.run.netlist == first.run.netlist
            && r.run.dataset == first.run.dataset
            && r.run.limit == first.run.limit;
        if !same_run {
            return Err(SnnError::Merge(format!(
                "report {} was made with other settings, model, data or limit than report 1",
                k + 1
            )));
        }
        counts.add(&r.counts)?;
        wall += r.wall_s;
    }
    let compare = if first.compare.is_some() {
        let parts: Option<Vec<Report>> = reports
            .iter()
            .map(|r| r.compare.as_deref().cloned())
            .collect();
        let parts = parts.ok_or_else(|| {
            SnnError::Merge("some reports have a --compare run and some do not".into())
        })?;
        Some(merge_reports(&parts)?)
    } else {
        None
    };
    let mut run = first.run.clone();
    run.shard = Some(format!("merged:{}", reports.len()));
    Ok(Report::new(
        counts,
        first.settings.clone(),
        run,
        first.layers.clone(),
        first.neurons_per_layer.clone(),
        wall,
        first.data_variant.clone(),
        compare,
    ))
}
