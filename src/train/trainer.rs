//! The training loop: seeded shuffles, augmentation, softmax cross-entropy,
//! Adam, per-epoch checkpoints and exact resume, evaluation.

use super::activation::Activation;
use super::arch::ArchSpec;
use super::augment::{Augment, InputTransform};
use super::model_io::{fill_net, read_tensors, write_tensors};
use super::net::{softmax_cross_entropy, Mode, Net};
use super::optim::Adam;
use super::rng::{mix, SplitMix64};
use super::{Result, TrainError};
use crate::data::Dataset;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

// Stream names for the counter-based generator.
const STREAM_SHUFFLE: u64 = 1;
const STREAM_AUGMENT: u64 = 2;
const STREAM_DROPOUT: u64 = 3;

/// Version of the checkpoint layout.
const CHECKPOINT_VERSION: u32 = 1;
const CHECKPOINT_KEY: &str = "circsnn.checkpoint";

/// Training options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Total epochs; a resumed run continues up to this number.
    pub epochs: usize,
    /// Learning rate of the first epoch.
    pub learning_rate: f32,
    /// Per-epoch decay: epoch `e` (0-based) trains at
    /// `learning_rate · lr_decay^e`. It depends on the epoch only, not on the
    /// total, so extending a finished run with `--resume` continues the same
    /// schedule that an uninterrupted run would follow.
    #[serde(default = "no_decay")]
    pub lr_decay: f32,
    pub batch_size: usize,
    pub seed: u64,
    #[serde(default)]
    pub augment: Augment,
    #[serde(default)]
    pub transform: InputTransform,
    /// Weight averaging: the decay per optimiser step of an exponential
    /// moving average of the weights (Polyak averaging), which is what is
    /// evaluated and saved; 0 turns it off and the last weights are used.
    #[serde(default)]
    pub weight_average: f32,
    /// Standard deviation of Gaussian noise added to every activation's
    /// input z in training (z = 1 is the top of the rate curve's range), so
    /// that the network does not count on activity the circuits deliver
    /// only approximately; 0 adds none.
    #[serde(default)]
    pub activation_noise: f32,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[serde(skip)]
    pub quiet: bool,
}

fn no_decay() -> f32 {
    1.0
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 10,
            learning_rate: 1e-3,
            lr_decay: 1.0,
            batch_size: 64,
            seed: 0,
            augment: Augment::default(),
            transform: InputTransform::default(),
            weight_average: 0.0,
            activation_noise: 0.0,
            quiet: false,
        }
    }
}

impl TrainOptions {
    fn validate(&self) -> Result<()> {
        let err = |m: String| Err(TrainError::Options(m));
        if self.batch_size == 0 {
            return err("batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return err(format!(
                "learning rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return err(format!(
                "learning-rate decay must lie in (0, 1], got {}",
                self.lr_decay
            ));
        }
        if !(0.0..1.0).contains(&self.weight_average) {
            return err(format!(
                "weight-average decay must lie in [0, 1), got {}",
                self.weight_average
            ));
        }
        if !(self.activation_noise.is_finite() && self.activation_noise >= 0.0) {
            return err(format!(
                "activation noise must be >= 0, got {}",
                self.activation_noise
            ));
        }
        if !(self.augment.rotation_deg.is_finite() && self.augment.rotation_deg >= 0.0) {
            return err(format!(
                "rotation must be >= 0 degrees, got {}",
                self.augment.rotation_deg
            ));
        }
        Ok(())
    }

    /// The learning rate of epoch `epoch` (0-based).
    pub fn learning_rate_at(&self, epoch: usize) -> f32 {
        self.learning_rate * self.lr_decay.powi(epoch.min(i32::MAX as usize) as i32)
    }
}

/// What one epoch achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy and accuracy over the epoch's training batches
    /// (with dropout and augmentation active).
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// Wall time of the training pass (s) and its throughput.
    pub train_seconds: f64,
    pub images_per_second: f64,
    /// Learning rate used in this epoch.
    #[serde(default)]
    pub learning_rate: f64,
}

/// Loss and accuracy on a dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub samples: usize,
}

/// Check that `data` fits `net` once prepared by `transform`.
fn check_data(
    arch: &ArchSpec,
    data: &Dataset,
    transform: InputTransform,
    role: &str,
) -> Result<()> {
    if data.is_empty() {
        return Err(TrainError::Data(format!(
            "the {role} set ({}) is empty",
            data.variant
        )));
    }
    let shape = transform.input_shape(data);
    if shape != arch.input {
        return Err(TrainError::Data(format!(
            "the {role} set ({}) gives {}×{}×{} inputs, {} expects {}×{}×{}",
            data.variant,
            shape.channels,
            shape.height,
            shape.width,
            arch.name,
            arch.input.channels,
            arch.input.height,
            arch.input.width
        )));
    }
    if data.images.len() != data.len() * data.image_len() {
        return Err(TrainError::Data(format!(
            "the {role} set ({}) has {} pixel bytes for {} labels",
            data.variant,
            data.images.len(),
            data.len()
        )));
    }
    if let Some(&bad) = data.labels.iter().find(|&&l| l as usize >= arch.classes) {
        return Err(TrainError::Data(format!(
            "the {role} set ({}) has label {bad}, {} has {} classes",
            data.variant, arch.name, arch.classes
        )));
    }
    Ok(())
}

/// Network inputs for the samples `indices` of `data`, augmented when
/// `augment` is given with the epoch's seed (one stream per sample position).
fn prepare_batch(
    data: &Dataset,
    indices: &[usize],
    transform: InputTransform,
    augment: Option<(&Augment, u64)>,
    shape: (usize, usize, usize),
) -> Vec<f32> {
    let per = shape.0 * shape.1 * shape.2;
    let mut x = vec![0.0f32; indices.len() * per];
    x.par_chunks_mut(per)
        .zip(indices.par_iter())
        .for_each(|(out, &i)| match augment {
            Some((aug, seed)) if !aug.is_identity() => {
                let mut plain = vec![0.0f32; per];
                transform.prepare(data, i, &mut plain);
                let mut rng = SplitMix64::derive(seed, &[i as u64]);
                aug.apply(&plain, shape, &mut rng, out);
            }
            _ => transform.prepare(data, i, out),
        });
    x
}

/// Loss and accuracy of `net` on all of `data`, in evaluation mode.
pub fn evaluate(
    net: &mut Net,
    data: &Dataset,
    transform: InputTransform,
    batch_size: usize,
) -> Result<Evaluation> {
    check_data(&net.arch, data, transform, "evaluation")?;
    let i = net.arch.input;
    let shape = (i.channels, i.height, i.width);
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut loss, mut correct) = (0.0, 0);
    for batch in order.chunks(batch_size.max(1)) {
        let x = prepare_batch(data, batch, transform, None, shape);
        let logits = net.forward(&x, Mode::Eval);
        let labels: Vec<u8> = batch.iter().map(|&k| data.labels[k]).collect();
        let (l, c, _) = softmax_cross_entropy(&logits, &labels, net.arch.classes, batch.len());
        loss += l;
        correct += c;
    }
    Ok(Evaluation {
        loss: loss / data.len() as f64,
        accuracy: correct as f64 / data.len() as f64,
        samples: data.len(),
    })
}

/// Everything of a checkpoint except the tensors.
#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    version: u32,
    arch: ArchSpec,
    activation: Activation,
    options: TrainOptions,
    /// Epochs completed.
    epoch: usize,
    adam_step: u64,
    adam_learning_rate: f32,
    adam_beta1: f32,
    adam_beta2: f32,
    adam_eps: f32,
    log: Vec<EpochLog>,
}

/// A training run: the network, its optimiser and where it stands.
///
/// The random state is counter-based: the shuffle of epoch `e` comes from
/// `(seed, e)`, each sample's augmentation from `(seed, e, sample)`, dropout
/// from `(seed, step)`. A checkpoint stores the seed, the completed epochs and
/// the Adam step, so a resumed run draws exactly what the uninterrupted one would.
#[derive(Debug)]
pub struct Trainer {
    pub net: Net,
    pub adam: Adam,
    pub options: TrainOptions,
    /// Epochs completed.
    pub epoch: usize,
    pub log: Vec<EpochLog>,
    /// Moving average of every parameter tensor (empty when
    /// `options.weight_average` is 0).
    pub average: Vec<Vec<f32>>,
}

impl Trainer {
    pub fn new(net: Net, options: TrainOptions) -> Result<Self> {
        options.validate()?;
        let adam = Adam::new(&net.params(), options.learning_rate);
        let average = initial_average(&net, &options);
        Ok(Self {
            net,
            adam,
            options,
            epoch: 0,
            log: Vec::new(),
            average,
        })
    }

    /// The network to evaluate and ship: the averaged weights when weight
    /// averaging is on, the last ones otherwise.
    pub fn model(&self) -> Net {
        let mut net = self.net.clone();
        if !self.average.is_empty() {
            for (p, a) in net.params_mut().into_iter().zip(&self.average) {
                p.value.copy_from_slice(a);
            }
        }
        net
    }

    /// Fold the weights just updated into the moving average. The decay is
    /// lowered over the first steps, (1 + t) / (10 + t), so that the random
    /// initial weights do not linger in it.
    fn update_average(&mut self) {
        if self.average.is_empty() {
            return;
        }
        let t = self.adam.step as f32;
        let decay = self.options.weight_average.min((1.0 + t) / (10.0 + t));
        for (p, a) in self.net.params().into_iter().zip(&mut self.average) {
            for (a, w) in a.iter_mut().zip(&p.value) {
                *a = decay * *a + (1.0 - decay) * w;
            }
        }
    }

    /// Train from the current epoch up to `options.epochs`, evaluating on
    /// `test` (if given) and writing `checkpoint` (if given) after each epoch.
    pub fn train(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        checkpoint: Option<&Path>,
    ) -> Result<()> {
        self.train_with(train, test, checkpoint, |_| {})
    }

    /// [`Trainer::train`], calling `on_epoch` with each epoch's log once
    /// its checkpoint is written.
    pub fn train_with(
        &mut self,
        train: &Dataset,
        test: Option<&Dataset>,
        checkpoint: Option<&Path>,
        mut on_epoch: impl FnMut(&EpochLog),
    ) -> Result<()> {
        self.options.validate()?;
        check_data(&self.net.arch, train, self.options.transform, "training")?;
        if let Some(t) = test {
            check_data(&self.net.arch, t, self.options.transform, "test")?;
        }
        while self.epoch < self.options.epochs {
            self.adam.learning_rate = self.options.learning_rate_at(self.epoch);
            let start = Instant::now();
            let (train_loss, train_accuracy) = self.train_epoch(train);
            let train_seconds = start.elapsed().as_secs_f64();
            let test_eval = match test {
                Some(t) => Some(evaluate(&mut self.model(), t, self.options.transform, 256)?),
                None => None,
            };
            self.epoch += 1;
            self.log.push(EpochLog {
                epoch: self.epoch,
                train_loss,
                train_accuracy,
                test_loss: test_eval.map(|e| e.loss),
                test_accuracy: test_eval.map(|e| e.accuracy),
                train_seconds,
                images_per_second: train.len() as f64 / train_seconds,
                learning_rate: self.adam.learning_rate as f64,
            });
            if let Some(path) = checkpoint {
                self.save_checkpoint(path)?;
            }
            on_epoch(self.log.last().expect("just pushed"));
        }
        Ok(())
    }

    fn progress_bar(&self, batches: usize) -> ProgressBar {
        let bar = ProgressBar::new(batches as u64);
        if self.options.quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("epoch {}/{}", self.epoch + 1, self.options.epochs));
        bar
    }

    /// One pass over `train`; returns mean loss and accuracy.
    fn train_epoch(&mut self, train: &Dataset) -> (f64, f64) {
        let seed = self.options.seed;
        let epoch = self.epoch as u64;
        let mut order: Vec<usize> = (0..train.len()).collect();
        SplitMix64::derive(seed, &[STREAM_SHUFFLE, epoch]).shuffle(&mut order);
        let augment_seed = mix(seed, &[STREAM_AUGMENT, epoch]);
        let i = self.net.arch.input;
        let shape = (i.channels, i.height, i.width);
        let classes = self.net.arch.classes;
        let batches = order.chunks(self.options.batch_size);
        let bar = self.progress_bar(batches.len());
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for batch in batches {
            let x = prepare_batch(
                train,
                batch,
                self.options.transform,
                Some((&self.options.augment, augment_seed)),
                shape,
            );
            let labels: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();
            self.net.zero_grad();
            let dropout_seed = mix(seed, &[STREAM_DROPOUT, self.adam.step]);
            let mode = Mode::Train {
                seed: dropout_seed,
                activation_noise: self.options.activation_noise,
            };
            let logits = self.net.forward(&x, mode);
            let (loss, c, d_logits) = softmax_cross_entropy(&logits, &labels, classes, batch.len());
            self.net.backward(&d_logits);
            self.adam.update(&mut self.net.params_mut());
            self.update_average();
            loss_sum += loss;
            correct += c;
            seen += batch.len();
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}%",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
        }
        bar.finish_and_clear();
        (loss_sum / seen as f64, correct as f64 / seen as f64)
    }

    /// Write weights, Adam moments, epoch, log and options to `path`
    /// (a safetensors file whose metadata holds the JSON state).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let meta = CheckpointMeta {
            version: CHECKPOINT_VERSION,
            arch: self.net.arch.clone(),
            activation: self.net.activation.clone(),
            options: self.options.clone(),
            epoch: self.epoch,
            adam_step: self.adam.step,
            adam_learning_rate: self.adam.learning_rate,
            adam_beta1: self.adam.beta1,
            adam_beta2: self.adam.beta2,
            adam_eps: self.adam.eps,
            log: self.log.clone(),
        };
        let json = serde_json::to_string(&meta).map_err(|e| TrainError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let params = self.net.params();
        let mut moments = Vec::new();
        for ((p, m), v) in params.iter().zip(&self.adam.m).zip(&self.adam.v) {
            moments.push((format!("adam.m.{}", p.name), p.shape.clone(), &m[..]));
            moments.push((format!("adam.v.{}", p.name), p.shape.clone(), &v[..]));
        }
        for (p, a) in params.iter().zip(&self.average) {
            moments.push((format!("average.{}", p.name), p.shape.clone(), &a[..]));
        }
        write_tensors(
            path,
            &self.net.tensors(),
            &moments,
            HashMap::from([(CHECKPOINT_KEY.to_string(), json)]),
        )
    }

    /// Restore a run saved by [`Trainer::save_checkpoint`]. The `quiet` flag
    /// is not stored: set it on the returned trainer.
    pub fn load_checkpoint(path: &Path) -> Result<Self> {
        let format = |message: String| TrainError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (tensors, metadata) = read_tensors(path)?;
        let json = metadata.get(CHECKPOINT_KEY).ok_or_else(|| {
            format("not a circsnn training checkpoint (no training state)".into())
        })?;
        let meta: CheckpointMeta = serde_json::from_str(json).map_err(|e| format(e.to_string()))?;
        if meta.version != CHECKPOINT_VERSION {
            return Err(format(format!(
                "checkpoint version {} (this build reads {CHECKPOINT_VERSION})",
                meta.version
            )));
        }
        let mut net = Net::new(meta.arch, meta.activation, 0).map_err(|e| format(e.to_string()))?;
        fill_net(&mut net, &tensors, path)?;
        let mut adam = Adam::new(&net.params(), meta.adam_learning_rate);
        adam.step = meta.adam_step;
        adam.beta1 = meta.adam_beta1;
        adam.beta2 = meta.adam_beta2;
        adam.eps = meta.adam_eps;
        let mut average = initial_average(&net, &meta.options);
        for (k, p) in net.params().iter().enumerate() {
            let mut stores = vec![(&mut adam.m[k], "adam.m"), (&mut adam.v[k], "adam.v")];
            if let Some(a) = average.get_mut(k) {
                stores.push((a, "average"));
            }
            for (store, kind) in stores {
                let name = format!("{kind}.{}", p.name);
                match tensors.get(&name) {
                    Some((shape, values)) if *shape == p.shape => store.copy_from_slice(values),
                    Some((shape, _)) => {
                        return Err(format(format!(
                            "tensor '{name}' has shape {shape:?}, expected {:?}",
                            p.shape
                        )))
                    }
                    None => return Err(format(format!("tensor '{name}' is missing"))),
                }
            }
        }
        Ok(Self {
            net,
            adam,
            options: meta.options,
            epoch: meta.epoch,
            log: meta.log,
            average,
        })
    }
}

/// The moving average's starting point: the initial weights, or nothing when
/// averaging is off.
fn initial_average(net: &Net, options: &TrainOptions) -> Vec<Vec<f32>> {
    if options.weight_average > 0.0 {
        net.params().iter().map(|p| p.value.clone()).collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetKind;
    use crate::train::activation::SoftLif;
    use crate::train::arch::{InputShape, LayerSpec, Padding};

    /// A learnable toy problem: the class is which quadrant of an 8×8 image
    /// holds a bright blob, with noise.
    fn quadrant_data(n: usize, seed: u64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let mut images = Vec::with_capacity(n * 64);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let label = rng.below(4);
            let (qy, qx) = (label / 2 * 4, label % 2 * 4);
            for y in 0..8 {
                for x in 0..8 {
                    let inside = (qy..qy + 4).contains(&y) && (qx..qx + 4).contains(&x);
                    let base = if inside { 160.0 } else { 20.0 };
                    images.push((base + rng.uniform(0.0, 80.0)) as u8);
                }
            }
            labels.push(label as u8);
        }
        Dataset {
            kind: DatasetKind::Mnist,
            variant: "synthetic".into(),
            channels: 1,
            height: 8,
            width: 8,
            images,
            labels,
            class_names: (0..4).map(|k| k.to_string()).collect(),
        }
    }

    fn toy_arch() -> ArchSpec {
        ArchSpec {
            name: "toy".into(),
            input: InputShape {
                channels: 1,
                height: 8,
                width: 8,
            },
            classes: 4,
            layers: vec![
                LayerSpec::Conv2d {
                    out_channels: 4,
                    kernel: 3,
                    stride: 2,
                    padding: Padding::Valid,
                },
                LayerSpec::BatchNorm {
                    momentum: 0.1,
                    eps: 1e-5,
                },
                LayerSpec::Activation,
                LayerSpec::Dropout { rate: 0.1 },
                LayerSpec::Flatten,
                LayerSpec::Dense { out_features: 4 },
            ],
        }
    }

    fn options(epochs: usize) -> TrainOptions {
        TrainOptions {
            epochs,
            learning_rate: 0.01,
            lr_decay: 1.0,
            batch_size: 20,
            seed: 5,
            augment: Augment {
                shift_px: 1,
                rotation_deg: 10.0,
                hflip: false,
            },
            transform: InputTransform::default(),
            weight_average: 0.0,
            activation_noise: 0.0,
            quiet: true,
        }
    }

    fn weights(net: &Net) -> Vec<(String, Vec<f32>)> {
        net.tensors()
            .into_iter()
            .map(|(n, _, v)| (n, v.to_vec()))
            .collect()
    }

    #[test]
    fn learns_a_toy_problem() {
        let (train, test) = (quadrant_data(400, 1), quadrant_data(200, 2));
        let mut losses = Vec::new();
        // Also with activation noise, which must reach training (another loss).
        for activation_noise in [0.0, 0.2] {
            let net = Net::new(toy_arch(), Activation::SoftLif(SoftLif::default()), 3).unwrap();
            let options = TrainOptions {
                activation_noise,
                ..options(4)
            };
            let mut trainer = Trainer::new(net, options).unwrap();
            let before = evaluate(&mut trainer.net, &test, InputTransform::default(), 64).unwrap();
            trainer.train(&train, Some(&test), None).unwrap();
            let after = trainer.log.last().unwrap().test_accuracy.unwrap();
            assert!(
                after > 0.9 && after > before.accuracy + 0.3,
                "noise {activation_noise}: accuracy {} → {after}",
                before.accuracy
            );
            assert_eq!(trainer.log.len(), 4);
            assert!(trainer.log[3].train_loss < trainer.log[0].train_loss);
            losses.push(trainer.log[0].train_loss);
        }
        assert_ne!(losses[0], losses[1]);
    }

    #[test]
    fn resume_continues_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("run.ckpt.safetensors");
        let train = quadrant_data(130, 7); // partial last batch
        let test = quadrant_data(30, 8);
        let net = || Net::new(toy_arch(), Activation::Relu, 11).unwrap();

        // A decaying learning rate: the resumed epoch must use the second rate.
        // Weight averaging on: its state must survive the checkpoint too.
        let decayed = |epochs| TrainOptions {
            lr_decay: 0.5,
            weight_average: 0.9,
            ..options(epochs)
        };
        let mut straight = Trainer::new(net(), decayed(2)).unwrap();
        straight.train(&train, Some(&test), None).unwrap();
        assert_eq!(straight.log[0].learning_rate, 0.01f32 as f64);
        assert_eq!(straight.log[1].learning_rate, 0.005f32 as f64);

        let mut first = Trainer::new(net(), decayed(1)).unwrap();
        first.train(&train, Some(&test), Some(&ckpt)).unwrap();
        drop(first);
        let mut resumed = Trainer::load_checkpoint(&ckpt).unwrap();
        assert_eq!(resumed.epoch, 1);
        resumed.options.epochs = 2;
        resumed.options.quiet = true;
        resumed.train(&train, Some(&test), Some(&ckpt)).unwrap();

        assert_eq!(weights(&straight.net), weights(&resumed.net));
        assert_eq!(straight.average, resumed.average);
        assert_eq!(weights(&straight.model()), weights(&resumed.model()));
        assert_eq!(straight.adam.m, resumed.adam.m);
        assert_eq!(straight.adam.step, resumed.adam.step);
        let strip = |log: &[EpochLog]| {
            log.iter()
                .map(|e| (e.train_loss, e.test_accuracy))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&straight.log), strip(&resumed.log));
        // The final checkpoint holds epoch 2.
        assert_eq!(Trainer::load_checkpoint(&ckpt).unwrap().epoch, 2);
    }

    #[test]
    fn weight_average_is_what_is_evaluated() {
        let (train, test) = (quadrant_data(200, 3), quadrant_data(100, 4));
        let net = || Net::new(toy_arch(), Activation::Relu, 2).unwrap();
        let averaged_options = TrainOptions {
            weight_average: 0.95,
            ..options(2)
        };
        let mut averaged = Trainer::new(net(), averaged_options).unwrap();
        averaged.train(&train, Some(&test), None).unwrap();
        let mut plain = Trainer::new(net(), options(2)).unwrap();
        plain.train(&train, Some(&test), None).unwrap();
        // Averaging does not change the optimiser's path, only what is shipped.
        assert_eq!(weights(&averaged.net), weights(&plain.net));
        assert_eq!(weights(&plain.model()), weights(&plain.net));
        let shipped = weights(&averaged.model());
        assert_ne!(shipped, weights(&averaged.net));
        // Every averaged weight lies between the smallest and largest value
        // that weight took; here it is checked against the initial and last
        // ones, which bound it for a steadily moving weight in most entries.
        let first = weights(&net());
        let last = weights(&averaged.net);
        let (mut inside, mut total) = (0, 0);
        for ((a, f), l) in shipped.iter().zip(&first).zip(&last) {
            for ((a, f), l) in a.1.iter().zip(&f.1).zip(&l.1) {
                total += 1;
                inside += usize::from(*a >= f.min(*l) - 1e-6 && *a <= f.max(*l) + 1e-6);
            }
        }
        assert!(
            inside * 2 > total,
            "{inside} of {total} between start and end"
        );
        let logged = averaged.log[1].test_accuracy.unwrap();
        let direct = evaluate(&mut averaged.model(), &test, InputTransform::default(), 64)
            .unwrap()
            .accuracy;
        assert_eq!(logged, direct);
        assert!(Trainer::new(
            net(),
            TrainOptions {
                weight_average: 1.0,
                ..options(1)
            }
        )
        .is_err());
    }

    #[test]
    fn same_seed_same_weights_on_1_and_2_threads() {
        let train = quadrant_data(100, 9);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let net = Net::new(toy_arch(), Activation::SoftLif(SoftLif::default()), 1).unwrap();
                let mut t = Trainer::new(net, options(1)).unwrap();
                t.train(&train, None, None).unwrap();
                weights(&t.net)
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        // A different seed gives different weights (the test can fail).
        let net = Net::new(toy_arch(), Activation::SoftLif(SoftLif::default()), 1).unwrap();
        let mut t = Trainer::new(
            net,
            TrainOptions {
                seed: 6,
                ..options(1)
            },
        )
        .unwrap();
        t.train(&train, None, None).unwrap();
        assert_ne!(one, weights(&t.net));
    }

    #[test]
    fn mismatched_data_and_options_are_errors() {
        let net = Net::new(toy_arch(), Activation::Relu, 0).unwrap();
        assert!(Trainer::new(
            net.clone(),
            TrainOptions {
                batch_size: 0,
                ..options(1)
            }
        )
        .is_err());
        for noise in [-0.1, f32::NAN] {
            let e = Trainer::new(
                net.clone(),
                TrainOptions {
                    activation_noise: noise,
                    ..options(1)
                },
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("activation noise"), "{e}");
        }
        let mut t = Trainer::new(net, options(1)).unwrap();
        let mut wrong = quadrant_data(10, 1);
        wrong.labels[3] = 9;
        let e = t.train(&wrong, None, None).unwrap_err().to_string();
        assert!(e.contains("label 9"), "{e}");
        let mut big = quadrant_data(10, 1);
        big.height = 4;
        big.width = 16;
        let e = t.train(&big, None, None).unwrap_err().to_string();
        assert!(e.contains("1×4×16"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"nonsense").unwrap();
        assert!(Trainer::load_checkpoint(&p)
            .unwrap_err()
            .to_string()
            .contains("x.safetensors"));
    }
}
