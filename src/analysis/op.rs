//! DC operating point: plain Newton, then gmin stepping, then source
//! stepping (as SPICE does when the first attempt fails).

use super::{AnalysisError, AnalysisResult, Recorder};
use crate::circuit::Circuit;
use crate::solver::{Mna, NewtonFailure, System};

/// The initial guess: zeros, `.ic` values, and device initial conditions
/// (a memristor's X0 picks which of its stable states Newton finds).
pub fn initial_guess(circuit: &Circuit) -> Vec<f64> {
    let mut x = vec![0.0; circuit.unknowns.len()];
    for &(i, v) in &circuit.node_ics {
        x[i] = v;
    }
    for d in &circuit.devices {
        d.initial_condition(&mut x);
    }
    x
}

/// Solve the operating point at `time` into x (which holds the initial
/// guess). `dc_analysis` picks sources' DC values instead of waveforms.
pub fn solve(
    circuit: &Circuit,
    mna: &mut Mna,
    x: &mut [f64],
    time: f64,
    dc_analysis: bool,
) -> Result<(), NewtonFailure> {
    let o = &circuit.options;
    let pins = circuit.node_ics.clone();
    let guess = x.to_vec();
    let system = |gmin: f64, scale: f64| System {
        time,
        alpha: 0.0,
        history: &[],
        source_scale: scale,
        gmin,
        dc_analysis,
        max_iterations: o.itl1,
        pins: &pins,
    };
    let first = match mna.newton(circuit, x, &system(o.gmin, 1.0)) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };

    // gmin stepping: a large conductance to ground makes the system easy,
    // then each solution seeds the next, smaller one.
    x.copy_from_slice(&guess);
    let mut gmin = 1e-2;
    let mut ok = true;
    while gmin > o.gmin {
        if mna.newton(circuit, x, &system(gmin, 1.0)).is_err() {
            ok = false;
            break;
        }
        gmin /= 10.0;
    }
    if ok && mna.newton(circuit, x, &system(o.gmin, 1.0)).is_ok() {
        return Ok(());
    }

    // Source stepping: ramp every source from 0 with adaptive increments.
    x.copy_from_slice(&guess);
    let mut scale: f64 = 0.0;
    let mut step: f64 = 0.1;
    let mut last_good = x.to_vec();
    if mna.newton(circuit, x, &system(o.gmin, 0.0)).is_err() {
        return Err(first);
    }
    while scale < 1.0 {
        let next = (scale + step).min(1.0);
        match mna.newton(circuit, x, &system(o.gmin, next)) {
            Ok(_) => {
                scale = next;
                last_good.copy_from_slice(x);
                step = (step * 2.0).min(0.5);
            }
            Err(e) => {
                x.copy_from_slice(&last_good);
                step /= 4.0;
                if step < 1e-6 {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// `.op`: one point, recorded as a single-row waveform.
pub fn run(circuit: &mut Circuit, mna: &mut Mna) -> Result<AnalysisResult, AnalysisError> {
    for d in circuit.devices.iter_mut() {
        d.reset_state();
    }
    let iterations_before = mna.stats.newton_iterations;
    let mut x = initial_guess(circuit);
    solve(circuit, mna, &mut x, 0.0, true)
        .map_err(|e| AnalysisError::OpFailed(e.describe(circuit)))?;
    let mut rec = Recorder::new(circuit);
    rec.record(circuit, 0.0, &x, 0.0, true);
    Ok(AnalysisResult {
        waveforms: rec.finish(&circuit.title, "op", "op"),
        spikes: Vec::new(),
        accepted_steps: 1,
        rejected_steps: 0,
        newton_iterations: mna.stats.newton_iterations - iterations_before,
        energy_j: 0.0,
        interval_s: 0.0,
    })
}
