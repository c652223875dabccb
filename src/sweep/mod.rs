//! Parameter sweeps over a neuron netlist: grids of `.param`s, model
//! parameters (`tsm1.roff`) and element values (`cm`), measured point by
//! point and written as one JSON line per point, so an interrupted sweep
//! resumes where it stopped and shards of a job array merge back.

pub mod grid;
pub mod results;

use crate::analysis;
use crate::circuit;
use crate::netlist::{self, Expr};
use crate::neuron::rate_curve;
use anyhow::Context;
use grid::Point;
use rayon::prelude::*;
use std::path::Path;

/// What a sweep measures at each point.
#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    /// The steady-state f–I curve at these currents (A), with its features.
    Rate { currents: Vec<f64> },
    /// The netlist's own `.tran`: spike count and first spike time.
    Spikes,
}

/// Settling and measuring windows of the rate measure (as `circsnn rate`).
const SETTLE_S: f64 = 0.02;
const MEASURE_S: f64 = 0.2;

/// Measure one grid point; the returned JSON object is the point's line.
pub fn measure_point(
    netlist: &Path,
    base: &[(String, Expr)],
    point: &Point,
    measure: &Measure,
) -> anyhow::Result<serde_json::Value> {
    let mut overrides = base.to_vec();
    overrides.extend(point.values.iter().map(|(n, v)| (n.clone(), Expr::Num(*v))));
    let params: serde_json::Map<String, serde_json::Value> = point
        .values
        .iter()
        .map(|(n, v)| (n.clone(), (*v).into()))
        .collect();
    let mut line = serde_json::json!({ "index": point.index, "params": params });
    match measure {
        Measure::Rate { currents } => {
            let parsed = netlist::parse_file(netlist)?;
            let c = circuit::elaborate(&parsed, &overrides)?;
            let rates = rate_curve(&c, currents, SETTLE_S, MEASURE_S)
                .with_context(|| format!("sweep point {}", point.index))?;
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
            line["measure"] = "rate".into();
            line["currents_a"] = currents.clone().into();
            line["rates_hz"] = rates.clone().into();
            line["rheobase_a"] = first.map(|f| currents[f]).into();
            line["max_rate_hz"] = max_rate.into();
            line["slope_hz_per_a"] = slope.into();
        }
        Measure::Spikes => {
            let r = analysis::run_tran_file(netlist, &overrides)
                .with_context(|| format!("sweep point {}", point.index))?;
            line["measure"] = "spikes".into();
            line["spike_count"] = r.spikes.len().into();
            line["first_spike_s"] = r.spikes.first().copied().into();
        }
    }
    Ok(line)
}

/// Measure `points` in parallel, in chunks whose lines are appended in
/// index order once the chunk is done: an interruption loses at most one
/// chunk, and the file is the same whatever the thread count.
pub fn run_points(
    netlist: &Path,
    base: &[(String, Expr)],
    points: &[Point],
    measure: &Measure,
    out: &Path,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let chunk = rayon::current_num_threads().max(1) * 2;
    for block in points.chunks(chunk) {
        let lines: Vec<anyhow::Result<serde_json::Value>> = block
            .par_iter()
            .map(|p| measure_point(netlist, base, p, measure))
            .collect();
        let lines = lines.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        results::append_lines(out, &lines)?;
        progress(block.len());
    }
    Ok(())
}
