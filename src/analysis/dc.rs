//! `.dc src start stop step`: a sweep of operating points, each seeded by
//! the previous one (continuation), falling back to a full `.op` solve.

use super::{op, AnalysisError, AnalysisResult, Recorder};
use crate::circuit::Circuit;
use crate::solver::{Mna, System};

pub fn run(
    circuit: &mut Circuit,
    mna: &mut Mna,
    source: &str,
    start: f64,
    stop: f64,
    step: f64,
) -> Result<AnalysisResult, AnalysisError> {
    let Some(src) = circuit.device_index(source) else {
        return Err(AnalysisError::Setup(format!(
            ".dc source '{source}' does not exist"
        )));
    };
    for d in circuit.devices.iter_mut() {
        d.reset_state();
    }
    let points = ((stop - start) / step + 1e-9).floor() as usize + 1;
    let iterations_before = mna.stats.newton_iterations;
    let mut rec = Recorder::new(circuit);
    let mut x = op::initial_guess(circuit);
    let mut have_previous = false;
    let mut original_dc = None;
    let mut result = Ok(());
    for k in 0..points {
        let value = start + k as f64 * step;
        let previous = circuit.devices[src].set_dc_value(value);
        original_dc = original_dc.or(previous);
        let o = &circuit.options;
        let pins = circuit.node_ics.clone();
        let sys = System {
            time: 0.0,
            alpha: 0.0,
            history: &[],
            source_scale: 1.0,
            gmin: o.gmin,
            dc_analysis: true,
            max_iterations: o.itl1,
            pins: &pins,
        };
        let mut trial = x.clone();
        let continued = have_previous && mna.newton(circuit, &mut trial, &sys).is_ok();
        if continued {
            x = trial;
        } else if let Err(e) = op::solve(circuit, mna, &mut x, 0.0, true) {
            result = Err(AnalysisError::DcFailed {
                name: source.to_string(),
                value,
                detail: e.describe(circuit),
            });
            break;
        }
        have_previous = true;
        rec.record(circuit, value, &x, 0.0, true);
    }
    // Leave the source as the netlist wrote it, for later analyses.
    if let Some(v) = original_dc {
        circuit.devices[src].set_dc_value(v);
    }
    result?;
    Ok(AnalysisResult {
        waveforms: rec.finish(&circuit.title, "dc", source),
        spikes: Vec::new(),
        accepted_steps: points as u64,
        rejected_steps: 0,
        newton_iterations: mna.stats.newton_iterations - iterations_before,
        energy_j: 0.0,
        interval_s: 0.0,
    })
}
