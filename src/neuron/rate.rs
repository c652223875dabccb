//! Steady-state f–I curves measured with the batched engine: one instance
//! per input current, all points in one run.

use super::kernel::{NeuronKernel, NeuronOptions};
use super::{NeuronError, NeuronModel};
use crate::circuit::Circuit;

/// Longest network step used while measuring (s): the input is constant,
/// so the step only bounds how long spikes are buffered.
const MEASURE_CHUNK_S: f64 = 10e-3;

/// The rate of one spike train: (spikes − 1)/(last − first), or 0 with
/// fewer than two spikes (Hz).
pub fn rate_from_spikes(times: &[f64]) -> f64 {
    match (times.first(), times.last()) {
        (Some(&first), Some(&last)) if times.len() >= 2 && last > first => {
            (times.len() - 1) as f64 / (last - first)
        }
        _ => 0.0,
    }
}

/// The steady-state firing rate (Hz) of `circuit` at each constant input
/// current (A): run `t_settle` (s) to let the transient die out, then
/// measure over `t_measure` (s). Solver settings come from the circuit's
/// `.options`.
pub fn rate_curve(
    circuit: &Circuit,
    currents: &[f64],
    t_settle: f64,
    t_measure: f64,
) -> Result<Vec<f64>, NeuronError> {
    rate_curve_with(
        circuit,
        currents,
        t_settle,
        t_measure,
        NeuronOptions::from_circuit(circuit),
    )
}

/// [`rate_curve`] with explicit solver settings.
pub fn rate_curve_with(
    circuit: &Circuit,
    currents: &[f64],
    t_settle: f64,
    t_measure: f64,
    opts: NeuronOptions,
) -> Result<Vec<f64>, NeuronError> {
    let mut kernel = NeuronKernel::new(circuit, currents.len(), opts)?;
    measure_rates(&mut kernel, currents, t_settle, t_measure)
}

/// Measure the steady-state rates of any neuron model, one instance per
/// current (the model must have exactly `currents.len()` instances). The
/// model is reset first.
pub fn measure_rates(
    model: &mut dyn NeuronModel,
    currents: &[f64],
    t_settle: f64,
    t_measure: f64,
) -> Result<Vec<f64>, NeuronError> {
    if !(t_settle >= 0.0 && t_settle.is_finite()) {
        return Err(NeuronError::InvalidRateWindow(format!(
            "the settling time must be >= 0 and finite, got {t_settle} s"
        )));
    }
    if !(t_measure > 0.0 && t_measure.is_finite()) {
        return Err(NeuronError::InvalidRateWindow(format!(
            "the measurement window must be positive and finite, got {t_measure} s"
        )));
    }
    model.reset();
    let mut spikes = Vec::new();
    if t_settle > 0.0 {
        model.advance(t_settle, currents, &mut spikes)?;
    }
    let chunks = (t_measure / MEASURE_CHUNK_S).ceil().max(1.0) as usize;
    let dt = t_measure / chunks as f64;
    let mut trains: Vec<Vec<f64>> = vec![Vec::new(); currents.len()];
    for k in 0..chunks {
        spikes.clear();
        model.advance(dt, currents, &mut spikes)?;
        for &(i, offset) in &spikes {
            trains[i].push(k as f64 * dt + offset);
        }
    }
    Ok(trains.iter().map(|t| rate_from_spikes(t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neuron::{Lif, RateModel};

    #[test]
    fn rate_from_spikes_uses_intervals() {
        assert_eq!(rate_from_spikes(&[]), 0.0);
        assert_eq!(rate_from_spikes(&[0.3]), 0.0);
        assert!((rate_from_spikes(&[0.1, 0.2, 0.3, 0.4]) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn measured_abstract_lif_rates_match_the_formula() {
        let currents = [1.0e-9, 2.1e-9, 2.6e-9, 3.0e-9];
        let mut lif = Lif::circuit_equivalent(currents.len());
        let rates = measure_rates(&mut lif, &currents, 5e-3, 0.2).unwrap();
        for (r, &i) in rates.iter().zip(&currents) {
            let want = lif.rate(i);
            assert!((r - want).abs() <= 1e-6 * want, "{i}: {r} vs {want}");
        }
        assert!(measure_rates(&mut lif, &currents, -1.0, 0.2).is_err());
        assert!(measure_rates(&mut lif, &currents, 0.0, 0.0).is_err());
    }
}
