//! Parameter sweeps over a neuron netlist: grids of `.param`s, model
//! parameters (`tsm1.roff`) and element values (`cm`), measured point by
//! point and written as one JSON line per point, so an interrupted sweep
//! resumes where it stopped and shards of a job array merge back.
//!
//! Monte Carlo ([`MonteCarlo`]): at every grid point, `samples` devices are
//! drawn, each with its varied values multiplied by a random factor
//! (Gaussian 1 + σz or log-normal e^{σz}); each is measured and the line
//! gives every sample and the distribution of each feature. Draws are
//! seeded per (seed, point, sample), so a sweep gives the same numbers
//! whatever the thread count, shard or resume, and σ = 0 reproduces the
//! nominal device exactly.
//!
//! Under a network measure (accuracy, energy) a sample is a whole chip:
//! `devices` devices are drawn (seeded per device as well) and every neuron
//! of the network is given one of them at random ([`NeuronDevices`]). A
//! grid axis `sigma:NAME` sweeps the spread of NAME itself.

pub mod grid;
pub mod results;

use crate::analysis;
use crate::circuit;
use crate::netlist::{self, Expr};
use crate::neuron::rate_curve;
use crate::snn::{NeuronDevices, RateMap, RunSettings, Topology};
use crate::train::rng::SplitMix64;
use anyhow::Context;
use grid::Point;
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// What a sweep measures at each point.
#[derive(Clone)]
pub enum Measure {
    /// The steady-state f–I curve at these currents (A), with its features.
    Rate { currents: Vec<f64> },
    /// The netlist's own `.tran`: spike count and first spike time.
    Spikes,
    /// Circuit-faithful classification of a few test images with a trained
    /// model: accuracy, energy per inference and spikes per image.
    Accuracy(Arc<ClassifySetup>),
}

/// The classifier of the accuracy measure, built once per sweep: the
/// converted network, its run settings and the prepared test images. Every
/// neuron of the network is the point's circuit, or under Monte Carlo, one
/// of the sample's drawn devices.
pub struct ClassifySetup {
    pub topo: Topology,
    pub map: RateMap,
    pub settings: RunSettings,
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
}

/// Device variation drawn at every point.
#[derive(Clone, Debug, PartialEq)]
pub struct MonteCarlo {
    pub samples: usize,
    /// Relative standard deviation per varied name (0.05 for 5 %).
    pub sigmas: Vec<(String, f64)>,
    pub seed: u64,
    pub lognormal: bool,
    /// Devices drawn per sample under a network measure: every neuron gets
    /// one of them.
    pub devices: usize,
}

/// The prefix of a grid axis that sweeps a Monte Carlo spread: the axis
/// `sigma:tsm1.ron` sets σ of `tsm1.ron` at each point.
pub const SIGMA_AXIS: &str = "sigma:";

impl MonteCarlo {
    /// The factors of sample `sample` at grid point `point`, in the order of
    /// `sigmas`.
    pub fn factors(&self, point: usize, sample: usize) -> anyhow::Result<Vec<(String, f64)>> {
        self.draw(point, sample, &[point as u64, sample as u64])
    }

    /// The factors of device `device` of sample (chip) `sample` at `point`.
    pub fn device_factors(
        &self,
        point: usize,
        sample: usize,
        device: usize,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        self.draw(point, sample, &[point as u64, sample as u64, device as u64])
    }

    /// This Monte Carlo with the spreads that the point's `sigma:` axes set.
    fn at(&self, point: &Point) -> MonteCarlo {
        let mut mc = self.clone();
        for (axis, value) in &point.values {
            if let Some(name) = axis.strip_prefix(SIGMA_AXIS) {
                match mc.sigmas.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = *value,
                    None => mc.sigmas.push((name.to_string(), *value)),
                }
            }
        }
        mc
    }

    fn draw(
        &self,
        point: usize,
        sample: usize,
        counters: &[u64],
    ) -> anyhow::Result<Vec<(String, f64)>> {
        let mut rng = SplitMix64::derive(self.seed, counters);
        self.sigmas
            .iter()
            .map(|(name, sigma)| {
                let z = rng.normal();
                let f = if self.lognormal {
                    (sigma * z).exp()
                } else {
                    1.0 + sigma * z
                };
                if !(f > 0.0) {
                    anyhow::bail!("--sigma {name}={sigma}: sample {sample} of point {point} draws the non-positive factor {f}; use --distribution lognormal for large spreads");
                }
                Ok((name.clone(), f))
            })
            .collect()
    }
}

/// The scalar features a line may carry (each with `_std` under Monte Carlo).
pub const FEATURES: [&str; 8] = [
    "rheobase_a",
    "max_rate_hz",
    "slope_hz_per_a",
    "spike_count",
    "first_spike_s",
    "accuracy",
    "energy_j_per_inference",
    "spikes_per_image",
];

/// Settling and measuring windows of the rate measure (as `circsnn rate`).
const SETTLE_S: f64 = 0.02;
const MEASURE_S: f64 = 0.2;

/// Measure one grid point; the returned JSON object is the point's line.
pub fn measure_point(
    netlist: &Path,
    base: &[(String, Expr)],
    point: &Point,
    measure: &Measure,
    mc: Option<&MonteCarlo>,
) -> anyhow::Result<serde_json::Value> {
    let mut overrides = base.to_vec();
    overrides.extend(
        point
            .values
            .iter()
            .filter(|(n, _)| !n.starts_with(SIGMA_AXIS))
            .map(|(n, v)| (n.clone(), Expr::Num(*v))),
    );
    let params: serde_json::Map<String, serde_json::Value> = point
        .values
        .iter()
        .map(|(n, v)| (n.clone(), (*v).into()))
        .collect();
    let mut line = serde_json::json!({ "index": point.index, "params": params });
    let parsed = netlist::parse_file(netlist)?;
    let context = || format!("sweep point {}", point.index);
    let Some(mc) = mc else {
        let features =
            measure_device(&parsed, netlist, &overrides, &[], measure).with_context(context)?;
        merge(&mut line, features);
        return Ok(line);
    };
    let mc = &mc.at(point);
    let samples: Vec<anyhow::Result<serde_json::Value>> = if let Measure::Accuracy(setup) = measure
    {
        // One chip at a time: each classifies its images in parallel, and
        // the spike maps of its devices are large.
        (0..mc.samples)
            .map(|j| {
                let chip = draw_chip(&parsed, netlist, &overrides, mc, point.index, j)?;
                measure_chip(setup, mc, chip)
            })
            .collect()
    } else {
        (0..mc.samples)
            .into_par_iter()
            .map(|j| {
                let factors = mc.factors(point.index, j)?;
                let mut sample = measure_device(&parsed, netlist, &overrides, &factors, measure)?;
                sample["factors"] = factors
                    .iter()
                    .map(|(n, f)| (n.clone(), (*f).into()))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                Ok(sample)
            })
            .collect()
    };
    let samples = samples
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(context)?;
    line["measure"] = samples
        .first()
        .map_or(serde_json::Value::Null, |s| s["measure"].clone());
    line["mc"] = serde_json::json!({
        "samples": mc.samples,
        "devices": matches!(measure, Measure::Accuracy(_)).then_some(mc.devices),
        "seed": mc.seed,
        "distribution": if mc.lognormal { "lognormal" } else { "gaussian" },
        "sigma": mc.sigmas.iter().map(|(n, s)| (n.clone(), (*s).into())).collect::<serde_json::Map<_, _>>(),
    });
    // Each scalar feature: the mean at its own name (so tables and figures
    // read MC lines like nominal ones), and its spread.
    for key in FEATURES {
        let values: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.get(key)?.as_f64())
            .collect();
        if values.is_empty() {
            continue;
        }
        let stats = distribution(&values);
        line[key] = stats["mean"].clone();
        line[format!("{key}_std")] = stats["std"].clone();
        line[format!("{key}_distribution")] = stats;
    }
    if let Measure::Rate { currents } = measure {
        let per_current: Vec<Vec<f64>> = (0..currents.len())
            .map(|k| {
                samples
                    .iter()
                    .filter_map(|s| s["rates_hz"][k].as_f64())
                    .collect()
            })
            .collect();
        line["currents_a"] = currents.clone().into();
        line["rates_hz_mean"] = per_current
            .iter()
            .map(|v| mean(v))
            .collect::<Vec<_>>()
            .into();
        line["rates_hz_std"] = per_current
            .iter()
            .map(|v| std_dev(v))
            .collect::<Vec<_>>()
            .into();
    }
    line["samples"] = samples.into();
    Ok(line)
}

/// Measure one device (the netlist with `overrides`, then `scales`).
fn measure_device(
    parsed: &netlist::Netlist,
    path: &Path,
    overrides: &[(String, Expr)],
    scales: &[(String, f64)],
    measure: &Measure,
) -> anyhow::Result<serde_json::Value> {
    let c = circuit::elaborate_scaled(parsed, overrides, scales)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
    let mut out = serde_json::json!({});
    match measure {
        Measure::Rate { currents } => {
            let rates = rate_curve(&c, currents, SETTLE_S, MEASURE_S)?;
            let first = rates.iter().position(|&r| r > 0.0);
            let max_rate = rates.iter().copied().fold(0.0, f64::max);
            let slope = first.map_or(0.0, |f| {
                let last = rates.len() - 1;
                if last > f {
                    (rates[last] - rates[f]) / (currents[last] - currents[f])
                } else {
                    0.0
                }
            });
            out["measure"] = "rate".into();
            out["currents_a"] = currents.clone().into();
            out["rates_hz"] = rates.clone().into();
            out["rheobase_a"] = first.map(|f| currents[f]).into();
            out["max_rate_hz"] = max_rate.into();
            out["slope_hz_per_a"] = slope.into();
        }
        Measure::Spikes => {
            let mut c = c;
            let r = analysis::run_tran(&mut c)?;
            out["measure"] = "spikes".into();
            out["spike_count"] = r.spikes.len().into();
            out["first_spike_s"] = r.spikes.first().copied().into();
        }
        Measure::Accuracy(setup) => {
            out = classify_features(setup, &NeuronDevices::nominal(c))?;
        }
    }
    Ok(out)
}

/// `NAME=S` or `NAME=S1,S2,...` of `--sigma`, each S as `5%` or `0.05`:
/// the lower-cased name and its spreads.
pub fn parse_spread(text: &str) -> anyhow::Result<(String, Vec<f64>)> {
    let (name, list) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--sigma {text}: expected NAME=SIGMA, e.g. tsm1.ron=5%"))?;
    let values = list
        .split(',')
        .map(|value| {
            let sigma = match value.trim().strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
                None => value.trim().parse::<f64>(),
            }
            .map_err(|_| {
                anyhow::anyhow!("--sigma {text}: '{value}' is not a number or a percentage")
            })?;
            if !(sigma >= 0.0 && sigma.is_finite()) {
                anyhow::bail!("--sigma {text}: the spread must be a finite number ≥ 0");
            }
            Ok(sigma)
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    Ok((name.trim().to_ascii_lowercase(), values))
}

/// The chip of sample `sample` at point `point`: `mc.devices` devices
/// drawn (the nominal device alone where every factor is 1), and the drawn
/// factors of each device.
pub fn draw_chip(
    parsed: &netlist::Netlist,
    path: &Path,
    overrides: &[(String, Expr)],
    mc: &MonteCarlo,
    point: usize,
    sample: usize,
) -> anyhow::Result<(NeuronDevices, Vec<Vec<(String, f64)>>)> {
    let factors = (0..mc.devices.max(1))
        .map(|d| mc.device_factors(point, sample, d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let devices = if factors.iter().flatten().all(|(_, f)| *f == 1.0) {
        // σ = 0: the nominal chip, and the same numbers as without --mc.
        vec![circuit::elaborate_scaled(parsed, overrides, &[])]
    } else {
        factors
            .iter()
            .map(|f| circuit::elaborate_scaled(parsed, overrides, f))
            .collect()
    };
    let devices = devices
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
    let seed = crate::train::rng::mix(mc.seed, &[point as u64, sample as u64]);
    Ok((NeuronDevices::drawn(devices, seed)?, factors))
}

/// Measure one chip of a network Monte Carlo (its devices and their drawn
/// factors, from [`draw_chip`]).
fn measure_chip(
    setup: &ClassifySetup,
    mc: &MonteCarlo,
    (devices, factors): (NeuronDevices, Vec<Vec<(String, f64)>>),
) -> anyhow::Result<serde_json::Value> {
    let mut out = classify_features(setup, &devices)?;
    // The drawn factors, summarised per varied name.
    out["factors"] = mc
        .sigmas
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            let v: Vec<f64> = factors.iter().map(|f| f[k].1).collect();
            (name.clone(), distribution(&v))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    Ok(out)
}

/// Accuracy, energy per inference and spikes per image of the network with
/// `devices` on the setup's images.
fn classify_features(
    setup: &ClassifySetup,
    devices: &NeuronDevices,
) -> anyhow::Result<serde_json::Value> {
    let outcome = crate::snn::classify(
        &setup.topo,
        &setup.map,
        &setup.settings,
        Some(devices),
        &setup.images,
        &setup.labels,
        &|| {},
    )?;
    let n = outcome.results.len().max(1) as f64;
    let correct = outcome
        .results
        .iter()
        .filter(|r| r.top2.last().map(|t| t[0]) == Some(r.label))
        .count();
    let energy: Option<f64> = outcome.results.iter().map(|r| r.energy_j).sum();
    let spikes: f64 = outcome.results.iter().flat_map(|r| &r.spikes).sum();
    Ok(serde_json::json!({
        "measure": "accuracy",
        "images": outcome.results.len(),
        "accuracy": correct as f64 / n,
        "energy_j_per_inference": energy.map(|e| e / n),
        "spikes_per_image": spikes / n,
    }))
}

fn merge(line: &mut serde_json::Value, features: serde_json::Value) {
    if let (Some(l), serde_json::Value::Object(f)) = (line.as_object_mut(), features) {
        l.extend(f);
    }
}

/// The mean, summed relative to the first value so that identical values
/// (σ = 0) give exactly that value.
fn mean(v: &[f64]) -> f64 {
    let Some(&first) = v.first() else {
        return 0.0;
    };
    first + v.iter().map(|x| x - first).sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (0 for fewer than two values).
fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Mean, standard deviation, min, 5th/50th/95th percentiles and max.
fn distribution(v: &[f64]) -> serde_json::Value {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct =
        |p: f64| sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
    serde_json::json!({
        "mean": mean(v), "std": std_dev(v), "min": sorted[0], "p05": pct(0.05),
        "p50": pct(0.5), "p95": pct(0.95), "max": sorted[sorted.len() - 1],
    })
}

/// Measure `points` in parallel, in chunks whose lines are appended in
/// index order once the chunk is done: an interruption loses at most one
/// chunk, and the file is the same whatever the thread count.
pub fn run_points(
    netlist: &Path,
    base: &[(String, Expr)],
    points: &[Point],
    measure: &Measure,
    mc: Option<&MonteCarlo>,
    out: &Path,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    // A network measure parallelises inside each point, over its images.
    let chunk = match measure {
        Measure::Accuracy(_) => 1,
        _ => rayon::current_num_threads().max(1) * 2,
    };
    for block in points.chunks(chunk) {
        let lines: Vec<anyhow::Result<serde_json::Value>> = block
            .par_iter()
            .map(|p| measure_point(netlist, base, p, measure, mc))
            .collect();
        let lines = lines.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        results::append_lines(out, &lines)?;
        progress(block.len());
    }
    Ok(())
}
