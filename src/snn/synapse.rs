//! Synapse filters: the weighted spike input of a step (held constant over
//! the step) passed through a first-order lowpass, an alpha filter (two equal
//! lowpasses in series) or nothing. Each filter has unit DC gain, so a steady
//! spike rate gives the same mean as the unfiltered input, and the update is
//! the exact solution for an input held over the step.

use super::{Result, SnnError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SynapseKind {
    Lowpass,
    Alpha,
}

/// Filter settings: time constant τ (s, 0 = no filter) and shape.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Synapse {
    pub tau_s: f64,
    pub kind: SynapseKind,
}

impl Synapse {
    pub fn validate(&self) -> Result<()> {
        if !(self.tau_s.is_finite() && self.tau_s >= 0.0) {
            return Err(SnnError::Settings(format!(
                "synapse time constant must be >= 0 s, got {}",
                self.tau_s
            )));
        }
        Ok(())
    }

    /// Per-step decay factor e^{−dt/τ} (0 without a filter).
    pub fn decay(&self, dt: f64) -> f64 {
        if self.tau_s == 0.0 {
            0.0
        } else {
            (-dt / self.tau_s).exp()
        }
    }

    /// Filter one step: `stage1` (and `stage2` for alpha) hold the state;
    /// `input` is this step's input, and on return `out` is the filtered value.
    pub fn step(
        &self,
        decay: f64,
        input: &[f64],
        stage1: &mut [f64],
        stage2: &mut [f64],
        out: &mut [f64],
    ) {
        let gain = 1.0 - decay;
        match (self.tau_s == 0.0, self.kind) {
            (true, _) => out.copy_from_slice(input),
            (false, SynapseKind::Lowpass) => {
                for ((s, &u), o) in stage1.iter_mut().zip(input).zip(out.iter_mut()) {
                    *s = *s * decay + u * gain;
                    *o = *s;
                }
            }
            (false, SynapseKind::Alpha) => {
                for (((s1, s2), &u), o) in stage1
                    .iter_mut()
                    .zip(stage2.iter_mut())
                    .zip(input)
                    .zip(out.iter_mut())
                {
                    *s1 = *s1 * decay + u * gain;
                    *s2 = *s2 * decay + *s1 * gain;
                    *o = *s2;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_the_mean_of_a_steady_input() {
        for kind in [SynapseKind::Lowpass, SynapseKind::Alpha] {
            let syn = Synapse { tau_s: 5e-3, kind };
            let d = syn.decay(1e-3);
            let (mut s1, mut s2, mut out) = (vec![0.0], vec![0.0], vec![0.0]);
            // One spike every 4 steps of 1 ms, weight 1 / dt: mean input 250.
            let mut sum = 0.0;
            for t in 0..4000 {
                let u = if t % 4 == 0 { 1000.0 } else { 0.0 };
                syn.step(d, &[u], &mut s1, &mut s2, &mut out);
                if t >= 2000 {
                    sum += out[0];
                }
            }
            let mean = sum / 2000.0;
            assert!((mean - 250.0).abs() < 1e-6 * 250.0, "{kind:?}: {mean}");
        }
        // No filter passes the input through.
        let syn = Synapse {
            tau_s: 0.0,
            kind: SynapseKind::Lowpass,
        };
        let mut out = vec![0.0];
        syn.step(syn.decay(1e-3), &[3.0], &mut [0.0], &mut [0.0], &mut out);
        assert_eq!(out, vec![3.0]);
    }
}
