//! A spike train seen through an exponential synapse.

/// `n_points` times evenly spaced from `t0` to `t1`, both included (exactly).
pub fn uniform_grid(t0: f64, t1: f64, n_points: usize) -> Vec<f64> {
    match n_points {
        0 => Vec::new(),
        1 => vec![t0],
        n => (0..n)
            .map(|k| {
                if k == n - 1 {
                    t1
                } else {
                    t0 + (t1 - t0) * (k as f64 / (n - 1) as f64)
                }
            })
            .collect(),
    }
}

/// The spike train `spikes` (seconds, any order) filtered by the exponential
/// synapse `h(t) = exp(-t/tau_s)/tau_s`, sampled at [`uniform_grid`]`(t0, t1,
/// n_points)`.
///
/// Each spike adds `1/tau_s` and the trace decays exactly between spikes, so a
/// regular train of rate `r` settles to a mean of `r`: the output is in Hz.
/// Spikes before `t0` still contribute; a spike exactly at a grid time counts
/// at that time. Non-finite spike times are ignored. A `tau_s` that is not
/// positive and finite, or `t1 < t0`, has no meaningful answer: every value is
/// then NaN.
pub fn lowpass_spike_train(
    spikes: &[f64],
    tau_s: f64,
    t0: f64,
    t1: f64,
    n_points: usize,
) -> Vec<f64> {
    let meaningful =
        tau_s.is_finite() && tau_s > 0.0 && t0.is_finite() && t1.is_finite() && t1 >= t0;
    if !meaningful {
        return vec![f64::NAN; n_points];
    }
    let mut sorted: Vec<f64> = spikes.iter().copied().filter(|t| t.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);

    let jump = 1.0 / tau_s;
    let mut level = 0.0; // value just after the last spike taken in
    let mut last_spike = f64::NEG_INFINITY;
    let mut next = 0;
    uniform_grid(t0, t1, n_points)
        .into_iter()
        .map(|t| {
            while next < sorted.len() && sorted[next] <= t {
                let s = sorted[next];
                level = level * (-(s - last_spike) / tau_s).exp() + jump;
                last_spike = s;
                next += 1;
            }
            // Before the first spike, level is 0 and exp(-inf) is 0: no NaN.
            level * (-(t - last_spike) / tau_s).exp()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn grid_ends_exactly_at_both_ends() {
        let g = uniform_grid(0.1, 0.7, 7);
        assert_eq!(g.len(), 7);
        assert_eq!(g[0], 0.1);
        assert_eq!(g[6], 0.7);
        assert!(close(g[3], 0.4, 1e-15));
        assert_eq!(uniform_grid(1.0, 2.0, 1), [1.0]);
        assert!(uniform_grid(1.0, 2.0, 0).is_empty());
    }

    #[test]
    fn single_spike_matches_the_kernel() {
        let tau = 20e-3;
        let ts = 0.013;
        let grid = uniform_grid(0.0, 0.2, 2001);
        let y = lowpass_spike_train(&[ts], tau, 0.0, 0.2, 2001);
        for (&t, &v) in grid.iter().zip(&y) {
            let expected = if t < ts {
                0.0
            } else {
                (-(t - ts) / tau).exp() / tau
            };
            assert!(close(v, expected, 1e-12), "t={t}: {v} vs {expected}");
        }
        // The grid point at the spike (t = 0.013 s) holds the full jump 1/tau.
        assert!(close(y[130], 1.0 / tau, 1e-9), "{}", y[130]);
    }

    #[test]
    fn regular_train_matches_the_geometric_sum_and_its_mean_is_the_rate() {
        let tau = 10e-3;
        let period = 4e-3;
        let spikes: Vec<f64> = (0..250).map(|k| k as f64 * period).collect();
        let (t0, t1, n) = (0.0, 1.0, 100_001);
        let y = lowpass_spike_train(&spikes, tau, t0, t1, n);
        let grid = uniform_grid(t0, t1, n);
        let decay = (-period / tau).exp();
        for (&t, &v) in grid.iter().zip(&y).step_by(37) {
            // Spikes 0..=m have occurred (spike 0 is at t = 0, so m >= 0).
            let m = spikes.iter().filter(|&&s| s <= t).count() - 1;
            let since = t - m as f64 * period;
            let expected =
                (-since / tau).exp() / tau * (1.0 - decay.powi(m as i32 + 1)) / (1.0 - decay);
            assert!(close(v, expected, 1e-9), "t={t}: {v} vs {expected}");
        }
        // Mean over 100 whole periods in the steady state (0.4 s .. 0.8 s): one
        // spike per period, each of area 1, so the mean is 1/period = 250 Hz;
        // sampling every 10 µs against tau = 10 ms biases the mean by ~5e-4.
        let window: Vec<f64> = grid
            .iter()
            .zip(&y)
            .filter(|(&t, _)| (0.4..0.8).contains(&t))
            .map(|(_, &v)| v)
            .collect();
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        assert!(close(mean, 250.0, 2e-3), "mean {mean}");
    }

    #[test]
    fn spikes_before_the_window_and_unsorted_input_count() {
        let tau = 5e-3;
        let a = lowpass_spike_train(&[0.03, -0.002, 0.01, f64::NAN], tau, 0.0, 0.05, 51);
        let b = lowpass_spike_train(&[-0.002, 0.01, 0.03], tau, 0.0, 0.05, 51);
        assert_eq!(a, b);
        assert!(close(a[0], (-0.002f64 / tau).exp() / tau, 1e-12));
    }

    #[test]
    fn no_spikes_gives_zeros_and_bad_tau_gives_nan() {
        assert_eq!(lowpass_spike_train(&[], 1e-3, 0.0, 1.0, 4), [0.0; 4]);
        for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let y = lowpass_spike_train(&[0.5], tau, 0.0, 1.0, 3);
            assert!(y.len() == 3 && y.iter().all(|v| v.is_nan()), "tau {tau}");
        }
        assert!(lowpass_spike_train(&[0.5], 1e-3, 1.0, 0.0, 2)[0].is_nan());
    }
}
