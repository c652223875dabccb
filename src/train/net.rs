//! A network built from an [`ArchSpec`]: forward, backward, parameters.

use super::activation::Activation;
use super::arch::{ArchSpec, LayerSpec, Padding};
use super::layers::{
    ActivationLayer, AvgPool, BatchNorm, Chunk, Conv2d, Dense, Dropout, Flatten, Param, Shape,
};
use super::rng::{mix, SplitMix64};
use super::{Result, TrainError};

/// Samples per chunk. Fixed (not derived from the thread count) so that the
/// order of every floating-point sum, and hence every result, is the same on
/// any number of threads.
pub const CHUNK_SAMPLES: usize = 16;

/// One built layer.
#[derive(Clone, Debug)]
pub enum Layer {
    Conv(Conv2d),
    Dense(Dense),
    Activation(ActivationLayer),
    AvgPool(AvgPool),
    Flatten(Flatten),
    Dropout(Dropout),
    BatchNorm(BatchNorm),
}

/// Whether a forward pass trains (and with which dropout stream) or evaluates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Keep what backward needs; `seed` names this step's random streams.
    Train {
        seed: u64,
        /// Standard deviation of Gaussian noise added to every activation's
        /// input (in units of z); 0 adds none.
        activation_noise: f32,
    },
    Eval,
}

impl Mode {
    /// Training without activation noise.
    pub fn train(seed: u64) -> Self {
        Mode::Train {
            seed,
            activation_noise: 0.0,
        }
    }

    /// Layer `k`'s random stream in training; None in evaluation.
    fn layer_stream(self, k: usize) -> Option<u64> {
        match self {
            Mode::Train { seed, .. } => Some(mix(seed, &[k as u64])),
            Mode::Eval => None,
        }
    }
}

/// A trainable network.
#[derive(Clone, Debug)]
pub struct Net {
    pub arch: ArchSpec,
    pub activation: Activation,
    pub layers: Vec<Layer>,
    /// Rows of the input batch, for checks in backward.
    batch_len: usize,
}

impl Net {
    /// Build `arch` with He-normal weights drawn from `seed`.
    pub fn new(arch: ArchSpec, activation: Activation, seed: u64) -> Result<Self> {
        activation.validate()?;
        let shapes = arch.shapes()?;
        let mut rng = SplitMix64::derive(seed, &[0x1417]);
        let mut layers = Vec::with_capacity(arch.layers.len());
        let (mut n_conv, mut n_dense, mut n_bn) = (0, 0, 0);
        let input = Shape::Spatial {
            c: arch.input.channels,
            h: arch.input.height,
            w: arch.input.width,
        };
        for (k, spec) in arch.layers.iter().enumerate() {
            let before = if k == 0 { input } else { shapes[k - 1] };
            let layer = match (*spec, before) {
                (
                    LayerSpec::Conv2d {
                        out_channels,
                        kernel,
                        stride,
                        padding,
                    },
                    Shape::Spatial { c, h, w },
                ) => {
                    n_conv += 1;
                    let pad = match padding {
                        Padding::Valid => 0,
                        Padding::Same => kernel / 2,
                    };
                    let mut conv = Conv2d::new(
                        &format!("conv{n_conv}"),
                        (c, h, w),
                        out_channels,
                        kernel,
                        stride,
                        pad,
                        &mut rng,
                    );
                    conv.needs_input_grad = k > 0;
                    Layer::Conv(conv)
                }
                (LayerSpec::Dense { out_features }, Shape::Flat(f)) => {
                    n_dense += 1;
                    let mut dense =
                        Dense::new(&format!("dense{n_dense}"), f, out_features, &mut rng);
                    dense.needs_input_grad = k > 0;
                    Layer::Dense(dense)
                }
                (LayerSpec::Activation, _) => {
                    Layer::Activation(ActivationLayer::new(activation.clone()))
                }
                (LayerSpec::AvgPool { size, stride }, Shape::Spatial { c, h, w }) => {
                    Layer::AvgPool(AvgPool::new((c, h, w), size, stride))
                }
                (LayerSpec::Flatten, Shape::Spatial { c, h, w }) => {
                    Layer::Flatten(Flatten { c, hw: h * w })
                }
                // A flat tensor is already n × F: one "channel" of F values is the identity.
                (LayerSpec::Flatten, Shape::Flat(f)) => Layer::Flatten(Flatten { c: 1, hw: f }),
                (LayerSpec::Dropout { rate }, _) => Layer::Dropout(Dropout::new(rate)),
                (LayerSpec::BatchNorm { momentum, eps }, s) => {
                    n_bn += 1;
                    Layer::BatchNorm(BatchNorm::new(&format!("bn{n_bn}"), s, momentum, eps))
                }
                _ => unreachable!("ArchSpec::shapes accepted the layer sequence"),
            };
            layers.push(layer);
        }
        Ok(Self {
            arch,
            activation,
            layers,
            batch_len: 0,
        })
    }

    pub fn input_len(&self) -> usize {
        let i = self.arch.input;
        i.channels * i.height * i.width
    }

    /// Logits (`n × classes`, row-major) for `n` images given as `n × C × H × W` floats.
    pub fn forward(&mut self, images: &[f32], mode: Mode) -> Vec<f32> {
        let per = self.input_len();
        assert_eq!(
            images.len() % per,
            0,
            "input is not a whole number of images"
        );
        let n = images.len() / per;
        self.batch_len = n;
        let i = self.arch.input;
        let hw = i.height * i.width;
        // NCHW → chunks in CNHW layout.
        let mut x: Vec<Chunk> = images
            .chunks(CHUNK_SAMPLES * per)
            .map(|block| {
                let m = block.len() / per;
                let mut data = super::layers::buffer(block.len());
                for b in 0..m {
                    for c in 0..i.channels {
                        data[(c * m + b) * hw..][..hw]
                            .copy_from_slice(&block[(b * i.channels + c) * hw..][..hw]);
                    }
                }
                Chunk { n: m, data }
            })
            .collect();
        let train = matches!(mode, Mode::Train { .. });
        for (k, layer) in self.layers.iter_mut().enumerate() {
            x = match layer {
                Layer::Conv(l) => l.forward(x, train),
                Layer::Dense(l) => l.forward(x, train),
                Layer::Activation(l) => {
                    let noise = match mode {
                        Mode::Train {
                            activation_noise, ..
                        } if activation_noise > 0.0 => {
                            mode.layer_stream(k).map(|s| (s, activation_noise))
                        }
                        _ => None,
                    };
                    l.forward(x, train, noise)
                }
                Layer::AvgPool(l) => l.forward(x),
                Layer::Flatten(l) => l.forward(x),
                Layer::Dropout(l) => l.forward(x, mode.layer_stream(k)),
                Layer::BatchNorm(l) => l.forward(x, train),
            };
        }
        let mut logits = Vec::with_capacity(n * self.arch.classes);
        for c in x {
            logits.extend_from_slice(&c.data);
            super::layers::recycle(c.data);
        }
        logits
    }

    /// Back-propagate `d loss / d logits` (`n × classes`) through the last
    /// training forward pass, adding to every parameter's gradient.
    pub fn backward(&mut self, d_logits: &[f32]) {
        let classes = self.arch.classes;
        assert_eq!(
            d_logits.len(),
            self.batch_len * classes,
            "gradient does not match the last batch"
        );
        let mut d: Vec<Chunk> = d_logits
            .chunks(CHUNK_SAMPLES * classes)
            .map(|c| Chunk {
                n: c.len() / classes,
                data: c.to_vec(),
            })
            .collect();
        for layer in self.layers.iter_mut().rev() {
            let next = match layer {
                Layer::Conv(l) => l.backward(d),
                Layer::Dense(l) => l.backward(d),
                Layer::Activation(l) => Some(l.backward(d)),
                Layer::AvgPool(l) => Some(l.backward(d)),
                Layer::Flatten(l) => Some(l.backward(d)),
                Layer::Dropout(l) => Some(l.backward(d)),
                Layer::BatchNorm(l) => Some(l.backward(d)),
            };
            match next {
                Some(g) => d = g,
                None => break, // first layer: no input gradient needed
            }
        }
    }

    /// Trainable parameters, in layer order (weight before bias).
    pub fn params(&self) -> Vec<&Param> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv(l) => out.extend([&l.weight, &l.bias]),
                Layer::Dense(l) => out.extend([&l.weight, &l.bias]),
                Layer::BatchNorm(l) => out.extend([&l.gamma, &l.beta]),
                _ => {}
            }
        }
        out
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut out = Vec::new();
        for layer in &mut self.layers {
            match layer {
                Layer::Conv(l) => out.extend([&mut l.weight, &mut l.bias]),
                Layer::Dense(l) => out.extend([&mut l.weight, &mut l.bias]),
                Layer::BatchNorm(l) => out.extend([&mut l.gamma, &mut l.beta]),
                _ => {}
            }
        }
        out
    }

    pub fn zero_grad(&mut self) {
        for p in self.params_mut() {
            p.grad.fill(0.0);
        }
    }

    /// Every stored tensor: parameters, then batch-norm running statistics,
    /// as (name, shape, values).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out: Vec<(String, Vec<usize>, &[f32])> = self
            .params()
            .into_iter()
            .map(|p| (p.name.clone(), p.shape.clone(), &p.value[..]))
            .collect();
        for layer in &self.layers {
            if let Layer::BatchNorm(l) = layer {
                let base = l.gamma.name.trim_end_matches(".weight");
                let c = l.running_mean.len();
                out.push((format!("{base}.running_mean"), vec![c], &l.running_mean));
                out.push((format!("{base}.running_var"), vec![c], &l.running_var));
            }
        }
        out
    }

    /// Mutable access to the tensor named `name` (see [`Net::tensors`]).
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut Vec<f32>> {
        for layer in &mut self.layers {
            let found = match layer {
                Layer::Conv(l) => [&mut l.weight, &mut l.bias]
                    .into_iter()
                    .find(|p| p.name == name)
                    .map(|p| &mut p.value),
                Layer::Dense(l) => [&mut l.weight, &mut l.bias]
                    .into_iter()
                    .find(|p| p.name == name)
                    .map(|p| &mut p.value),
                Layer::BatchNorm(l) => {
                    let base = l.gamma.name.trim_end_matches(".weight").to_string();
                    if name == l.gamma.name {
                        Some(&mut l.gamma.value)
                    } else if name == l.beta.name {
                        Some(&mut l.beta.value)
                    } else if name == format!("{base}.running_mean") {
                        Some(&mut l.running_mean)
                    } else if name == format!("{base}.running_var") {
                        Some(&mut l.running_var)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The evaluation-mode network with every batch norm that directly follows
    /// a convolution or dense layer folded into it (for spiking conversion).
    pub fn fold_batch_norm(&self) -> Result<Net> {
        let mut layers: Vec<Layer> = Vec::new();
        let mut specs: Vec<LayerSpec> = Vec::new();
        for (layer, spec) in self.layers.iter().zip(&self.arch.layers) {
            if let Layer::BatchNorm(bn) = layer {
                match layers.last_mut() {
                    Some(Layer::Conv(conv)) => {
                        bn.fold_into_conv(conv);
                        continue;
                    }
                    Some(Layer::Dense(dense)) => {
                        bn.fold_into_dense(dense);
                        continue;
                    }
                    _ => {
                        return Err(TrainError::Arch(format!(
                            "{}: batch norm {} does not follow a convolution or dense layer and cannot be folded",
                            self.arch.name, bn.gamma.name
                        )))
                    }
                }
            }
            layers.push(layer.clone());
            specs.push(*spec);
        }
        let mut arch = self.arch.clone();
        arch.layers = specs;
        Ok(Net {
            arch,
            activation: self.activation.clone(),
            layers,
            batch_len: 0,
        })
    }
}

/// Softmax cross-entropy of `logits` (`n × classes`) against `labels`:
/// returns the summed loss, the number of correct arg-max predictions and
/// `d(mean loss)/d logits` with the mean taken over `batch` samples.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u8],
    classes: usize,
    batch: usize,
) -> (f64, usize, Vec<f32>) {
    let mut loss = 0.0f64;
    let mut correct = 0;
    let mut grad = vec![0.0f32; logits.len()];
    for ((row, g), &label) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        let label = label as usize;
        loss += sum.ln() - (row[label] - max) as f64;
        let best = (0..classes).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        correct += (best == label) as usize;
        for k in 0..classes {
            let p = ((row[k] - max) as f64).exp() / sum;
            g[k] = ((p - (k == label) as u8 as f64) / batch as f64) as f32;
        }
    }
    (loss, correct, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::activation::{CurveFit, RateCurve, SoftLif};
    use crate::train::arch::InputShape;

    fn small_arch(
        layers: Vec<LayerSpec>,
        input: (usize, usize, usize),
        classes: usize,
    ) -> ArchSpec {
        ArchSpec {
            name: "test".into(),
            input: InputShape {
                channels: input.0,
                height: input.1,
                width: input.2,
            },
            classes,
            layers,
        }
    }

    fn random_vec(len: usize, seed: u64, scale: f64) -> Vec<f32> {
        let mut r = SplitMix64::new(seed);
        (0..len).map(|_| (r.normal() * scale) as f32).collect()
    }

    /// Loss = Σ logits · r (f64 sum), whose gradient w.r.t. logits is r.
    fn probe_loss(net: &mut Net, x: &[f32], r: &[f32], mode: Mode) -> f64 {
        net.forward(x, mode)
            .iter()
            .zip(r)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    }

    /// Compare analytic parameter gradients with central differences at a
    /// sample of entries of every parameter tensor.
    fn grad_check(net: Net, n: usize, h: f32, tol: f64) {
        grad_check_noisy(net, n, h, tol, 0.0)
    }

    /// As [`grad_check`], with activation noise of standard deviation `noise`.
    fn grad_check_noisy(mut net: Net, n: usize, h: f32, tol: f64, noise: f32) {
        let x = random_vec(n * net.input_len(), 11, 1.0);
        let r = random_vec(n * net.arch.classes, 12, 1.0);
        // Dropout and noise must draw the same values in every pass: fixed seed.
        let mode = Mode::Train {
            seed: 99,
            activation_noise: noise,
        };
        net.zero_grad();
        net.forward(&x, mode);
        net.backward(&r);
        let grads: Vec<Vec<f32>> = net.params().iter().map(|p| p.grad.clone()).collect();
        let n_params = grads.len();
        let mut worst = 0.0f64;
        for pi in 0..n_params {
            let len = grads[pi].len();
            let picks: Vec<usize> = (0..len).step_by((len / 7).max(1)).collect();
            for &e in &picks {
                let orig = net.params()[pi].value[e];
                net.params_mut()[pi].value[e] = orig + h;
                let up = probe_loss(&mut net, &x, &r, mode);
                net.params_mut()[pi].value[e] = orig - h;
                let down = probe_loss(&mut net, &x, &r, mode);
                net.params_mut()[pi].value[e] = orig;
                let fd = (up - down) / (2.0 * h as f64);
                let an = grads[pi][e] as f64;
                let err = (fd - an).abs() / (1.0 + an.abs().max(fd.abs()));
                worst = worst.max(err);
                assert!(
                    err < tol,
                    "{}[{e}]: analytic {an}, finite difference {fd}",
                    net.params()[pi].name
                );
            }
        }
        eprintln!("worst relative gradient error {worst:.2e}");
    }

    /// Input gradients are checked implicitly: every parameter below a layer
    /// receives its gradient through that layer's input gradient.
    #[test]
    fn conv_gradients_with_stride_and_padding() {
        let arch = small_arch(
            vec![
                LayerSpec::Conv2d {
                    out_channels: 3,
                    kernel: 3,
                    stride: 2,
                    padding: Padding::Valid,
                },
                LayerSpec::Conv2d {
                    out_channels: 4,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Same,
                },
                LayerSpec::Conv2d {
                    out_channels: 2,
                    kernel: 2,
                    stride: 2,
                    padding: Padding::Valid,
                },
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 3 },
            ],
            (2, 9, 9),
            3,
        );
        grad_check(Net::new(arch, Activation::Relu, 1).unwrap(), 19, 1e-2, 2e-3);
    }

    #[test]
    fn dense_and_pool_gradients() {
        let arch = small_arch(
            vec![
                LayerSpec::AvgPool { size: 2, stride: 2 },
                LayerSpec::Conv2d {
                    out_channels: 3,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Same,
                },
                LayerSpec::AvgPool { size: 3, stride: 2 },
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 5 },
                LayerSpec::Dense { out_features: 4 },
            ],
            (1, 12, 12),
            4,
        );
        grad_check(Net::new(arch, Activation::Relu, 2).unwrap(), 5, 1e-2, 2e-3);
    }

    #[test]
    fn batch_norm_gradients_spatial_and_flat() {
        let arch = small_arch(
            vec![
                LayerSpec::Conv2d {
                    out_channels: 3,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Valid,
                },
                LayerSpec::BatchNorm {
                    momentum: 0.1,
                    eps: 1e-5,
                },
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 6 },
                LayerSpec::BatchNorm {
                    momentum: 0.1,
                    eps: 1e-5,
                },
                LayerSpec::Dense { out_features: 3 },
            ],
            (2, 6, 6),
            3,
        );
        // 37 samples: three chunks, the last one partial.
        let mut net = Net::new(arch, Activation::Relu, 3).unwrap();
        // Non-trivial γ and β so their gradients matter downstream.
        for p in net.params_mut() {
            if p.name.starts_with("bn") {
                for (k, v) in p.value.iter_mut().enumerate() {
                    *v += 0.1 * k as f32 + 0.3;
                }
            }
        }
        grad_check(net, 37, 1e-2, 5e-3);
    }

    #[test]
    fn activation_gradients_through_the_net() {
        let current: Vec<f64> = (0..=16).map(|k| k as f64 * 1e-10).collect();
        let rate: Vec<f64> = current
            .iter()
            .map(|&i| {
                if i <= 3e-10 {
                    0.0
                } else {
                    1e3 * (i - 3e-10).sqrt() * 1e5
                }
            })
            .collect();
        let curve = RateCurve::fit(current, rate, &CurveFit::default()).unwrap();
        for act in [
            Activation::SoftLif(SoftLif::default()),
            Activation::RateCurve(curve),
            Activation::Relu,
        ] {
            let arch = small_arch(
                vec![
                    LayerSpec::Conv2d {
                        out_channels: 4,
                        kernel: 3,
                        stride: 1,
                        padding: Padding::Valid,
                    },
                    LayerSpec::Activation,
                    LayerSpec::Dropout { rate: 0.3 },
                    LayerSpec::Flatten,
                    LayerSpec::Dense { out_features: 5 },
                    LayerSpec::Activation,
                    LayerSpec::Dense { out_features: 3 },
                ],
                (1, 5, 5),
                3,
            );
            grad_check(
                Net::new(arch.clone(), act.clone(), 4).unwrap(),
                6,
                2e-3,
                2e-2,
            );
            grad_check_noisy(Net::new(arch, act, 4).unwrap(), 6, 2e-3, 2e-2, 0.3);
        }
    }

    #[test]
    fn activation_noise_is_gaussian_reproducible_and_off_in_evaluation() {
        let arch = small_arch(
            vec![
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 400 },
                LayerSpec::Activation,
                LayerSpec::Dense { out_features: 2 },
            ],
            (1, 1, 1),
            2,
        );
        let mut net = Net::new(arch, Activation::Relu, 7).unwrap();
        // Zero weights and biases: every pre-activation is 0, so with noise
        // σ each activation is relu(σ·N(0, 1)), of mean σ/√(2π); the second
        // dense layer (weights 1) sums them.
        for p in net.params_mut() {
            let ones = p.name.starts_with("dense2.weight");
            p.value
                .iter_mut()
                .for_each(|v| *v = if ones { 1.0 } else { 0.0 });
        }
        let x = vec![0.0f32; 50];
        let noisy = |seed| Mode::Train {
            seed,
            activation_noise: 0.5,
        };
        let a = net.forward(&x, noisy(1));
        assert_eq!(a, net.forward(&x, noisy(1)), "same seed, same noise");
        assert_ne!(a, net.forward(&x, noisy(2)), "another seed, other noise");
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / (a.len() * 400) as f64;
        let expected = 0.5 / (2.0 * std::f64::consts::PI).sqrt();
        // 40,000 draws of standard deviation about 0.29: 5 standard errors.
        assert!(
            (mean - expected).abs() < 0.008,
            "mean {mean}, expected {expected}"
        );
        let quiet = net.forward(&x, Mode::Eval);
        assert!(quiet.iter().all(|&v| v == 0.0), "no noise in evaluation");
    }

    #[test]
    fn full_small_net_gradients_with_loss() {
        // Cross-entropy on a mnist-thesis-like miniature, SoftLif activation.
        let arch = small_arch(
            vec![
                LayerSpec::Conv2d {
                    out_channels: 4,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Valid,
                },
                LayerSpec::Activation,
                LayerSpec::Conv2d {
                    out_channels: 6,
                    kernel: 3,
                    stride: 2,
                    padding: Padding::Valid,
                },
                LayerSpec::Activation,
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 4 },
            ],
            (1, 9, 9),
            4,
        );
        let mut net = Net::new(arch, Activation::SoftLif(SoftLif::default()), 5).unwrap();
        let n = 20;
        let x = random_vec(n * net.input_len(), 21, 1.0);
        let labels: Vec<u8> = (0..n).map(|k| (k % 4) as u8).collect();
        let mode = Mode::train(1);
        net.zero_grad();
        let logits = net.forward(&x, mode);
        let (_, _, d) = softmax_cross_entropy(&logits, &labels, 4, n);
        net.backward(&d);
        let h = 2e-3f32;
        for pi in 0..net.params().len() {
            let len = net.params()[pi].value.len();
            for e in (0..len).step_by((len / 5).max(1)) {
                let an = net.params()[pi].grad[e] as f64;
                let orig = net.params()[pi].value[e];
                let mut loss_at = |v: f32| {
                    net.params_mut()[pi].value[e] = v;
                    let l = net.forward(&x, mode);
                    softmax_cross_entropy(&l, &labels, 4, n).0 / n as f64
                };
                let fd = (loss_at(orig + h) - loss_at(orig - h)) / (2.0 * h as f64);
                net.params_mut()[pi].value[e] = orig;
                assert!(
                    (fd - an).abs() < 2e-3 + 2e-2 * an.abs(),
                    "{}[{e}]: analytic {an}, fd {fd}",
                    net.params()[pi].name
                );
            }
        }
    }

    #[test]
    fn softmax_cross_entropy_values() {
        let (loss, correct, g) = softmax_cross_entropy(&[0.0, 0.0, 1.0, 3.0], &[1, 0], 2, 2);
        let expected = 2f64.ln() + (1.0 + (-2f64).exp()).ln() + 2.0;
        assert!((loss - expected).abs() < 1e-6);
        assert_eq!(correct, 0);
        assert!((g[0] - 0.25).abs() < 1e-6 && (g[1] + 0.25).abs() < 1e-6);
        assert!((g[2..].iter().sum::<f32>()).abs() < 1e-6);
    }

    #[test]
    fn folded_batch_norm_matches_eval_output() {
        let arch = small_arch(
            vec![
                LayerSpec::Conv2d {
                    out_channels: 3,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Same,
                },
                LayerSpec::BatchNorm {
                    momentum: 0.5,
                    eps: 1e-5,
                },
                LayerSpec::Activation,
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 4 },
                LayerSpec::BatchNorm {
                    momentum: 0.5,
                    eps: 1e-5,
                },
            ],
            (1, 5, 5),
            4,
        );
        let mut net = Net::new(arch, Activation::Relu, 6).unwrap();
        // A few training passes move the running statistics away from (0, 1).
        for s in 0..3 {
            let x = random_vec(40 * 25, 30 + s, 2.0);
            net.forward(&x, Mode::train(s));
        }
        let x = random_vec(10 * 25, 40, 2.0);
        let reference = net.forward(&x, Mode::Eval);
        let mut folded = net.fold_batch_norm().unwrap();
        assert!(!folded
            .layers
            .iter()
            .any(|l| matches!(l, Layer::BatchNorm(_))));
        assert_eq!(folded.arch.layers.len(), 4);
        let out = folded.forward(&x, Mode::Eval);
        for (a, b) in reference.iter().zip(&out) {
            assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let arch = small_arch(
            vec![
                LayerSpec::Conv2d {
                    out_channels: 4,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Valid,
                },
                LayerSpec::BatchNorm {
                    momentum: 0.1,
                    eps: 1e-5,
                },
                LayerSpec::Activation,
                LayerSpec::Dropout { rate: 0.2 },
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 3 },
            ],
            (1, 8, 8),
            3,
        );
        let x = random_vec(50 * 64, 7, 1.0);
        let r = random_vec(50 * 3, 8, 1.0);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut net = Net::new(arch.clone(), Activation::Relu, 9).unwrap();
                let y = net.forward(&x, Mode::train(3));
                net.backward(&r);
                let grads: Vec<Vec<f32>> = net.params().iter().map(|p| p.grad.clone()).collect();
                (y, grads)
            })
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }
}
