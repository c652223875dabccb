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
    Ok(response_curve(circuit, currents, t_settle, t_measure, opts)?.rates_hz)
}

/// [`rate_curve_with`], with the first-spike latency at each current.
pub fn response_curve(
    circuit: &Circuit,
    currents: &[f64],
    t_settle: f64,
    t_measure: f64,
    opts: NeuronOptions,
) -> Result<RateMeasurement, NeuronError> {
    let mut kernel = NeuronKernel::new(circuit, currents.len(), opts)?;
    measure_response(&mut kernel, currents, t_settle, t_measure)
}

/// A neuron's response to constant inputs, one entry per current.
#[derive(Clone, Debug, PartialEq)]
pub struct RateMeasurement {
    /// Steady-state rate (Hz), measured after the settling time.
    pub rates_hz: Vec<f64>,
    /// Time of the first spike after the reset (s), the latency from rest;
    /// None where the neuron did not fire within the settling and
    /// measurement windows.
    pub first_spike_s: Vec<Option<f64>>,
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
    Ok(measure_response(model, currents, t_settle, t_measure)?.rates_hz)
}

/// [`measure_rates`], with each instance's first spike from the reset.
pub fn measure_response(
    model: &mut dyn NeuronModel,
    currents: &[f64],
    t_settle: f64,
    t_measure: f64,
) -> Result<RateMeasurement, NeuronError> {
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
    let mut first_spike_s: Vec<Option<f64>> = vec![None; currents.len()];
    let mut note = |i: usize, t: f64| {
        let first = &mut first_spike_s[i];
        *first = Some(first.map_or(t, |old: f64| old.min(t)));
    };
    let mut spikes = Vec::new();
    if t_settle > 0.0 {
        model.advance(t_settle, currents, &mut spikes)?;
        for &(i, offset) in &spikes {
            note(i, offset);
        }
    }
    let chunks = (t_measure / MEASURE_CHUNK_S).ceil().max(1.0) as usize;
    let dt = t_measure / chunks as f64;
    let mut trains: Vec<Vec<f64>> = vec![Vec::new(); currents.len()];
    for k in 0..chunks {
        spikes.clear();
        model.advance(dt, currents, &mut spikes)?;
        for &(i, offset) in &spikes {
            let t = k as f64 * dt + offset;
            trains[i].push(t);
            note(i, t_settle + t);
        }
    }
    Ok(RateMeasurement {
        rates_hz: trains.iter().map(|t| rate_from_spikes(t)).collect(),
        first_spike_s,
    })
}

/// The rate a neuron delivers within a window of `window_s` seconds that
/// starts at rest, counted as its steady rate after its first-spike
/// latency L: r·max(0, 1 − L/window). Near a rheobase where the rate jumps
/// (a MIF2), L grows without bound while the steady rate does not, so a
/// short network run sees far fewer spikes than the steady rate promises;
/// this weighting keeps that out of the activation.
pub fn latency_weighted(
    rates_hz: &[f64],
    first_spike_s: &[Option<f64>],
    window_s: f64,
) -> Result<Vec<f64>, NeuronError> {
    if !(window_s > 0.0 && window_s.is_finite()) {
        return Err(NeuronError::InvalidRateWindow(format!(
            "the latency window must be positive and finite, got {window_s} s"
        )));
    }
    Ok(rates_hz
        .iter()
        .zip(first_spike_s)
        .map(|(&r, first)| match first {
            Some(latency) if r > 0.0 => r * (1.0 - latency / window_s).max(0.0),
            _ => 0.0,
        })
        .collect())
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

    #[test]
    fn first_spikes_of_the_abstract_lif_come_one_period_after_rest() {
        // Its reset is its rest and it has no refractory period, so the
        // first spike comes one steady period after the start; a first
        // spike past the settling time is found in the measurement window.
        let currents = [1.0e-9, 2.01e-9, 2.6e-9, 3.0e-9, 9.0e-9];
        let mut lif = Lif::circuit_equivalent(currents.len());
        for settle in [0.0, 5e-3] {
            let m = measure_response(&mut lif, &currents, settle, 0.2).unwrap();
            assert_eq!(m.first_spike_s[0], None, "below the rheobase");
            for (k, &i) in currents.iter().enumerate().skip(1) {
                let period = 1.0 / lif.rate(i);
                let first = m.first_spike_s[k].expect("fires");
                assert!(
                    (first - period).abs() <= 1e-9 * period,
                    "{i}: {first} vs {period}"
                );
                assert_eq!(
                    m.rates_hz[k],
                    measure_rates(&mut lif, &currents, settle, 0.2).unwrap()[k]
                );
            }
        }
        // 2.01 nA: a period of 10.6 ms, beyond the 5 ms settling time.
        assert!(1.0 / lif.rate(2.01e-9) > 5e-3);
    }

    #[test]
    fn latency_weighting_keeps_the_part_of_the_window_after_the_first_spike() {
        let m = RateMeasurement {
            rates_hz: vec![0.0, 100.0, 100.0, 200.0, 300.0],
            first_spike_s: vec![None, Some(2e-3), Some(12e-3), Some(5e-3), None],
        };
        let w = latency_weighted(&m.rates_hz, &m.first_spike_s, 10e-3).unwrap();
        let want = [0.0, 80.0, 0.0, 100.0, 0.0];
        for (got, want) in w.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{w:?}");
        }
        for bad in [0.0, -1e-3, f64::NAN, f64::INFINITY] {
            assert!(latency_weighted(&m.rates_hz, &m.first_spike_s, bad).is_err());
        }
    }
}
