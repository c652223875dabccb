//! Adam (Kingma & Ba 2015) with bias correction.

use super::layers::Param;

/// Adam state: first and second moments per parameter tensor, and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Steps taken so far.
    pub step: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl Adam {
    /// Zero moments shaped like `params`.
    pub fn new(params: &[&Param], learning_rate: f32) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            m: params.iter().map(|p| vec![0.0; p.value.len()]).collect(),
            v: params.iter().map(|p| vec![0.0; p.value.len()]).collect(),
        }
    }

    /// One update of every parameter from its accumulated gradient.
    pub fn update(&mut self, params: &mut [&mut Param]) {
        assert_eq!(
            params.len(),
            self.m.len(),
            "Adam state does not match the network"
        );
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        let step_size = self.learning_rate / c1;
        let c2_sqrt = c2.sqrt();
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            for (((w, g), m), v) in p
                .value
                .iter_mut()
                .zip(&p.grad)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= step_size * *m / (v.sqrt() / c2_sqrt + self.eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_learning_rate_against_the_gradient() {
        let mut p = Param::zeros("w".into(), vec![3]);
        p.grad = vec![2.0, -0.5, 0.0];
        let mut adam = Adam::new(&[&p], 0.01);
        adam.update(&mut [&mut p]);
        // With bias correction the first step is lr · sign(g).
        assert!((p.value[0] + 0.01).abs() < 1e-6);
        assert!((p.value[1] - 0.01).abs() < 1e-6);
        assert_eq!(p.value[2], 0.0);
        assert_eq!(adam.step, 1);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut p = Param::zeros("w".into(), vec![2]);
        p.value = vec![3.0, -2.0];
        let mut adam = Adam::new(&[&p], 0.05);
        for _ in 0..2000 {
            p.grad = p.value.iter().map(|w| 2.0 * (w - 1.0)).collect();
            adam.update(&mut [&mut p]);
        }
        assert!(
            p.value.iter().all(|w| (w - 1.0).abs() < 1e-2),
            "{:?}",
            p.value
        );
    }
}
