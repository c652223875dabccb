//! `circsnn train`: train an ANN whose activation is the measured f–I curve
//! of a neuron netlist (or an abstract baseline), with per-epoch checkpoints,
//! and save it as `<out>/<name>.safetensors` + `<out>/<name>.json`.

use super::sim::{parse_overrides, resolve_netlist};
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::netlist::Expr;
use crate::neuron::{latency_weighted, rate_curve_cached, Lif, RateModel};
use crate::train::{
    self, arch, save_model, Activation, ArchOptions, Augment, CurveFit, EpochLog, Extrapolation,
    InputTransform, ModelMeta, Net, RateCurve, SoftLif, TrainOptions, Trainer,
};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// Current samples of the measured f–I curve.
const RATE_POINTS: usize = 61;
/// The sampled range ends at this multiple of the first current that fires.
const RANGE_OVER_ONSET: f64 = 2.0;
/// Probe ranges tried in turn to find where the neuron starts firing (A).
const PROBE_TOPS_A: [f64; 6] = [4e-9, 40e-9, 400e-9, 4e-6, 40e-6, 400e-6];
const PROBE_POINTS: usize = 25;
/// Samples of the extension of the curve beyond the sampled range.
const EXTENSION_POINTS: usize = 20;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Dataset: mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: String,
    /// Neuron netlist with `.NEURON INPUT=` and `.SPIKE` (a bare file name is
    /// also looked up in netlists/), or an abstract baseline: lif, relu, softlif.
    #[arg(long)]
    pub netlist: PathBuf,
    /// Architecture (default: mnist-thesis for MNIST, fashion-wide for
    /// Fashion-MNIST, cifar-conv6 for CIFAR-10).
    #[arg(long)]
    pub arch: Option<String>,
    /// Epochs in total (a resumed run continues up to this number);
    /// default 6, or 10 for Fashion-MNIST.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate of the first epoch (Adam); default 2e-3.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Learning-rate factor per epoch (1 = constant); default 0.6, or
    /// 0.75 for Fashion-MNIST.
    #[arg(long)]
    pub lr_decay: Option<f32>,
    /// Decay per step of the moving average of the weights that is
    /// evaluated and saved (Polyak averaging); 0 ships the last weights.
    /// Default 0.999 (about the last 1,000 steps).
    #[arg(long, value_name = "DECAY")]
    pub weight_average: Option<f32>,
    /// Standard deviation of Gaussian noise added to every activation's
    /// input in training, in units of z (z = 1 is the top of the curve's
    /// range); 0 adds none.
    #[arg(long, default_value_t = 0.0, value_name = "SIGMA")]
    pub activation_noise: f32,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Seed of the initial weights, shuffles, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dropout rate (CIFAR architectures and fashion-wide; mnist-thesis has
    /// none); default 0, or 0.1 for fashion-wide.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Batch norm after each convolution (CIFAR architectures).
    #[arg(long)]
    pub batch_norm: bool,
    /// Augmentation, comma-separated: none, shift, rotate, flip, all
    /// (default: shift for digits, flip for clothes, shift,flip for CIFAR-10).
    #[arg(long, value_delimiter = ',')]
    pub augment: Vec<String>,
    /// Largest shift of the `shift` augmentation (pixels).
    #[arg(long, default_value_t = 2)]
    pub shift_px: u32,
    /// Largest angle of the `rotate` augmentation (degrees).
    #[arg(long, default_value_t = 10.0)]
    pub rotation_deg: f32,
    /// Train on one luminance channel (CIFAR-10).
    #[arg(long)]
    pub grayscale: bool,
    /// Onset smoothing width of the rate curve (A); default 2 % of the span
    /// from rheobase to the current that z = 1 maps to.
    #[arg(long, value_name = "A")]
    pub smoothing: Option<f64>,
    /// Top of the measured current range (A); default twice the first
    /// current that makes the neuron fire. z = 1 is placed in this range.
    #[arg(long, value_name = "A")]
    pub i_max: Option<f64>,
    /// Also measure the curve beyond that range, up to this multiple of it,
    /// and continue it linearly after the last sample, so that the
    /// activation is the neuron's own wherever the network drives it (a
    /// circuit neuron does not saturate at the end of a measured range).
    /// 1 = the range alone, saturating after it (the models of sessions 1–4).
    #[arg(long, default_value_t = 3.0, value_name = "F")]
    pub curve_extent: f64,
    /// Train on the rate a neuron delivers within a run of S seconds from
    /// rest: its steady rate times the part of the window left after its
    /// first-spike latency L, r·max(0, 1 − L/S). For neurons whose rate
    /// jumps at the rheobase (MIF2), where L grows without bound and a
    /// short run sees few of the spikes the steady rate promises.
    #[arg(long, value_name = "S")]
    pub latency_window: Option<f64>,
    /// Override a netlist .param: NAME=VALUE; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Model name (default: <dataset>-<arch>-<netlist stem>).
    #[arg(long)]
    pub name: Option<String>,
    /// Output folder (checkpoints go to <out>/checkpoints/).
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Continue from the checkpoint of this model up to --epochs.
    #[arg(long)]
    pub resume: bool,
    /// Data folder (default: $CIRCSNN_DATA, else ./data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Train on the first N training images only (the test set stays whole).
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
}

/// Where the activation comes from.
#[derive(Debug)]
enum NeuronSource {
    Netlist(PathBuf),
    Baseline(Baseline),
}

#[derive(Clone, Copy, Debug)]
enum Baseline {
    Relu,
    SoftLif,
    /// The abstract LIF twin of netlists/lif.cir (τ = 2 ms, rheobase 2 nA),
    /// its exact rate curve fitted like a measured one.
    Lif,
}

impl Baseline {
    fn name(self) -> &'static str {
        match self {
            Baseline::Relu => "relu",
            Baseline::SoftLif => "softlif",
            Baseline::Lif => "lif",
        }
    }
}

impl NeuronSource {
    /// A bare `lif`/`relu`/`softlif` that is not a file is a baseline;
    /// anything else must be a netlist.
    fn parse(arg: &Path) -> anyhow::Result<Self> {
        let text = arg.to_string_lossy().to_ascii_lowercase();
        let baseline = match text.as_str() {
            "relu" => Some(Baseline::Relu),
            "softlif" | "soft-lif" => Some(Baseline::SoftLif),
            "lif" => Some(Baseline::Lif),
            _ => None,
        };
        match baseline {
            Some(b) if !arg.is_file() => Ok(NeuronSource::Baseline(b)),
            _ => Ok(NeuronSource::Netlist(resolve_netlist(arg)?)),
        }
    }

    fn stem(&self) -> String {
        match self {
            NeuronSource::Netlist(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "netlist".into()),
            NeuronSource::Baseline(b) => b.name().into(),
        }
    }
}

/// The activation and where it came from.
struct NeuronActivation {
    activation: Activation,
    netlist_path: Option<String>,
    netlist_hash: Option<String>,
    baseline: Option<String>,
}

/// Steady-state rates (Hz) of the netlist's neuron at each current (A),
/// measured with the batched engine (through the on-disk cache), and the
/// SHA-256 of the netlist text. With a latency window (s), the rates are
/// those delivered within it ([`latency_weighted`]).
fn measure_rates(
    path: &Path,
    overrides: &[(String, Expr)],
    currents: &[f64],
    latency_window: Option<f64>,
    quiet: bool,
) -> anyhow::Result<(Vec<f64>, String)> {
    let data = rate_curve_cached(path, overrides, currents, quiet)?;
    let rates = match latency_window {
        None => data.rates_hz,
        Some(window) => latency_weighted(&data.rates_hz, &data.first_spike_s, window)
            .context("--latency-window")?,
    };
    Ok((rates, data.netlist_sha256))
}

/// `n` currents evenly spaced from 0 to `top` (A).
fn current_grid(top: f64, n: usize) -> Vec<f64> {
    (0..n).map(|k| top * k as f64 / (n - 1) as f64).collect()
}

/// The current range to sample: `i_max` if given, else twice the first
/// probed current at which the neuron fires.
fn choose_range(
    i_max: Option<f64>,
    mut rates_at: impl FnMut(&[f64]) -> anyhow::Result<Vec<f64>>,
    what: &str,
) -> anyhow::Result<f64> {
    if let Some(top) = i_max {
        if !(top.is_finite() && top > 0.0) {
            bail!("--i-max must be a positive current in amperes, got {top}");
        }
        return Ok(top);
    }
    for top in PROBE_TOPS_A {
        let currents = current_grid(top, PROBE_POINTS);
        let rates = rates_at(&currents)?;
        if let Some(k) = rates.iter().position(|&r| r > 0.0) {
            return Ok(RANGE_OVER_ONSET * currents[k]);
        }
    }
    bail!(
        "{what}: the neuron never fires for input currents up to {:e} A; check its .NEURON input node and .SPIKE rule",
        PROBE_TOPS_A[PROBE_TOPS_A.len() - 1]
    )
}

/// The currents to sample: `RATE_POINTS` from 0 to `top` (where z = 1 is
/// placed), then `EXTENSION_POINTS` more up to `extent · top`.
fn curve_currents(top: f64, extent: f64) -> anyhow::Result<Vec<f64>> {
    if !(extent.is_finite() && extent >= 1.0) {
        bail!("--curve-extent must be at least 1, got {extent}");
    }
    let mut currents = current_grid(top, RATE_POINTS);
    if extent > 1.0 {
        let step = top * (extent - 1.0) / EXTENSION_POINTS as f64;
        currents.extend((1..=EXTENSION_POINTS).map(|k| top + step * k as f64));
    }
    Ok(currents)
}

/// Cut the samples above `top` from the first one whose rate falls: a
/// neuron may stop firing when driven very hard (MIF2 does above about
/// 12 nA), which a monotone activation cannot follow.
fn monotone_extension(currents: &mut Vec<f64>, rates: &mut Vec<f64>, top: f64) {
    if let Some(k) = (1..rates.len()).find(|&k| currents[k] > top && rates[k] < rates[k - 1]) {
        currents.truncate(k);
        rates.truncate(k);
    }
}

/// Fit the curve, with z = 1 placed in `[0, top]`; samples above `top`
/// (from [`curve_currents`]) extend it, and it then continues linearly.
/// `smoothing_a` (A) replaces the default onset smoothing.
fn fit_curve(
    mut currents: Vec<f64>,
    mut rates: Vec<f64>,
    top: f64,
    smoothing_a: Option<f64>,
    what: &str,
) -> anyhow::Result<RateCurve> {
    // The range top, with room for rounding in the sampled grid.
    let anchor = top * (1.0 + 1e-9);
    let extended = currents.last().is_some_and(|&i| i > anchor);
    monotone_extension(&mut currents, &mut rates, top);
    let fit = if extended {
        CurveFit {
            anchor_max_a: Some(anchor),
            extrapolation: Extrapolation::Linear,
            ..CurveFit::default()
        }
    } else {
        CurveFit::default()
    };
    let curve = RateCurve::fit(currents.clone(), rates.clone(), &fit)
        .with_context(|| format!("{what}: fitting the rate curve"))?;
    let Some(s) = smoothing_a else {
        return Ok(curve);
    };
    if !(s.is_finite() && s >= 0.0) {
        bail!("--smoothing must be a current >= 0 A, got {s}");
    }
    // z = 1 maps to `top`; express the width as a fraction of rheobase..top.
    let spec = curve.spec();
    let top = spec.gain_a + spec.offset_a;
    let span = top - curve.rheobase_a();
    let refit = CurveFit {
        smoothing_fraction: s / span,
        ..fit
    };
    RateCurve::fit(currents, rates, &refit)
        .with_context(|| format!("{what}: fitting the rate curve with smoothing {s:e} A"))
}

/// Measure (or compute) the activation for `source`.
fn neuron_activation(
    source: &NeuronSource,
    args: &TrainArgs,
    quiet: bool,
) -> anyhow::Result<NeuronActivation> {
    if args.latency_window.is_some() && !matches!(source, NeuronSource::Netlist(_)) {
        bail!("--latency-window measures a netlist's latencies; it does not apply to an abstract baseline");
    }
    match source {
        NeuronSource::Baseline(Baseline::Relu) => Ok(NeuronActivation {
            activation: Activation::Relu,
            netlist_path: None,
            netlist_hash: None,
            baseline: Some("relu".into()),
        }),
        NeuronSource::Baseline(Baseline::SoftLif) => Ok(NeuronActivation {
            activation: Activation::SoftLif(SoftLif::default()),
            netlist_path: None,
            netlist_hash: None,
            baseline: Some("softlif".into()),
        }),
        NeuronSource::Baseline(Baseline::Lif) => {
            let lif = Lif::circuit_equivalent(1);
            let rates_at = |c: &[f64]| Ok(c.iter().map(|&i| lif.rate(i)).collect::<Vec<_>>());
            let top = choose_range(args.i_max, rates_at, "lif")?;
            let currents = curve_currents(top, args.curve_extent)?;
            let rates = currents.iter().map(|&i| lif.rate(i)).collect();
            let curve = fit_curve(currents, rates, top, args.smoothing, "abstract LIF")?;
            Ok(NeuronActivation {
                activation: Activation::RateCurve(curve),
                netlist_path: None,
                netlist_hash: None,
                baseline: Some("lif".into()),
            })
        }
        NeuronSource::Netlist(path) => {
            let overrides = parse_overrides(&args.params)?;
            let what = path.display().to_string();
            if !quiet {
                eprintln!("rate curve of {what} (batched engine, cached)");
            }
            let start = Instant::now();
            let top = choose_range(
                args.i_max,
                |c| Ok(measure_rates(path, &overrides, c, None, quiet)?.0),
                &what,
            )?;
            let currents = curve_currents(top, args.curve_extent)?;
            let (rates, netlist_hash) =
                measure_rates(path, &overrides, &currents, args.latency_window, quiet)?;
            let curve = fit_curve(currents, rates, top, args.smoothing, &what)?;
            if !quiet {
                let spec = curve.spec();
                let last = spec.current_a.last().copied().unwrap_or(top);
                eprintln!(
                    "rate curve: {} currents 0–{last:.3e} A (z = 1 placed below {top:.3e} A), rheobase {:.3e} A, z = 1 at {:.3e} A ({:.1} Hz), {:.1} s",
                    spec.current_a.len(),
                    curve.rheobase_a(),
                    spec.gain_a + spec.offset_a,
                    1.0 / spec.output_scale,
                    start.elapsed().as_secs_f64()
                );
            }
            Ok(NeuronActivation {
                activation: Activation::RateCurve(curve),
                netlist_path: Some(path.display().to_string()),
                netlist_hash: Some(netlist_hash),
                baseline: None,
            })
        }
    }
}

/// Fashion-MNIST: epochs and per-epoch learning-rate factor of the default
/// schedule (the shipped fashion models were trained with them).
const FASHION_EPOCHS: usize = 10;
const FASHION_LR_DECAY: f32 = 0.75;

/// A dataset's default architecture and training schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Schedule {
    arch: &'static str,
    epochs: usize,
    learning_rate: f32,
    lr_decay: f32,
    weight_average: f32,
}

impl Schedule {
    fn for_dataset(kind: DatasetKind) -> Self {
        // MNIST's (and CIFAR-10's) schedule trains the shipped MNIST models.
        let mnist = Schedule {
            arch: "mnist-thesis",
            epochs: 6,
            learning_rate: 2e-3,
            lr_decay: 0.6,
            weight_average: 0.999,
        };
        match kind {
            DatasetKind::Mnist => mnist,
            // Clothes are harder than digits: a larger, regularised network
            // needs more epochs, with a slower decay to keep learning.
            DatasetKind::FashionMnist => Schedule {
                arch: "fashion-wide",
                epochs: FASHION_EPOCHS,
                lr_decay: FASHION_LR_DECAY,
                ..mnist
            },
            DatasetKind::Cifar10 => Schedule {
                arch: "cifar-conv6",
                ..mnist
            },
        }
    }
}

/// The augmentation named by `--augment` (empty: the dataset's default).
fn parse_augment(args: &TrainArgs, kind: DatasetKind) -> anyhow::Result<Augment> {
    let default: &[&str] = match kind {
        DatasetKind::Mnist => &["shift"],
        // Clothes are left–right symmetric as classes (a mirrored shoe is
        // still a shoe); digits are not. Fashion-MNIST's items are centred:
        // shifts on top of flips left `fashion-wide` underfitting (89.8 %
        // against 90.9 % with flips alone and less dropout, 10 epochs).
        DatasetKind::FashionMnist => &["flip"],
        DatasetKind::Cifar10 => &["shift", "flip"],
    };
    let names: Vec<String> = if args.augment.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        args.augment.clone()
    };
    let mut augment = Augment::default();
    for name in &names {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => {}
            "shift" => augment.shift_px = args.shift_px,
            "rotate" => augment.rotation_deg = args.rotation_deg,
            "flip" => augment.hflip = true,
            "all" => {
                augment.shift_px = args.shift_px;
                augment.rotation_deg = args.rotation_deg;
                augment.hflip = true;
            }
            other => {
                bail!("--augment {other}: expected none, shift, rotate, flip or all (comma-separated)")
            }
        }
    }
    if names.len() > 1 && names.iter().any(|n| n.trim().eq_ignore_ascii_case("none")) {
        bail!("--augment none cannot be combined with other augmentations");
    }
    Ok(augment)
}

/// The command line with `--resume` dropped: run from scratch, it
/// reproduces the model (a resumed run equals an uninterrupted one).
fn reproduction_command() -> String {
    std::iter::once("circsnn".to_string())
        .chain(std::env::args().skip(1).filter(|a| a != "--resume"))
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn load_split(kind: DatasetKind, split: Split, data_dir: Option<&Path>) -> anyhow::Result<Dataset> {
    Ok(data::load(kind, split, data_dir)?)
}

fn print_epoch(log: &EpochLog, epochs: usize) {
    let test = match (log.test_loss, log.test_accuracy) {
        (Some(l), Some(a)) => format!("test loss {l:.4} acc {:.2} %", 100.0 * a),
        _ => String::new(),
    };
    println!(
        "epoch {}/{epochs}: lr {:.2e}  train loss {:.4} acc {:.2} %  {test}  {:.0} images/s ({:.1} s)",
        log.epoch,
        log.learning_rate,
        log.train_loss,
        100.0 * log.train_accuracy,
        log.images_per_second,
        log.train_seconds
    );
}

pub fn run(args: TrainArgs, quiet: bool) -> anyhow::Result<()> {
    let kind = DatasetKind::from_str(&args.dataset)?;
    let source = NeuronSource::parse(&args.netlist)?;
    let defaults = Schedule::for_dataset(kind);
    let arch_name = args
        .arch
        .clone()
        .unwrap_or_else(|| defaults.arch.to_string());
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{kind}-{arch_name}-{}", source.stem()));
    if name.is_empty() || name.contains(['/', '\\']) {
        bail!("--name '{name}': a model name must be non-empty and contain no path separators");
    }
    let augment = parse_augment(&args, kind)?;
    let dropout = args
        .dropout
        .unwrap_or_else(|| arch::default_dropout(&arch_name));
    if !(0.0..1.0).contains(&dropout) {
        bail!("--dropout must lie in [0, 1), got {dropout}");
    }
    if args.limit_train == Some(0) {
        bail!("--limit-train must be at least 1");
    }
    let transform = InputTransform {
        grayscale: args.grayscale,
    };
    let options = TrainOptions {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        learning_rate: args.lr.unwrap_or(defaults.learning_rate),
        lr_decay: args.lr_decay.unwrap_or(defaults.lr_decay),
        weight_average: args.weight_average.unwrap_or(defaults.weight_average),
        activation_noise: args.activation_noise,
        batch_size: args.batch_size,
        seed: args.seed,
        augment,
        transform,
        quiet,
    };
    let checkpoint = args
        .out
        .join("checkpoints")
        .join(format!("{name}.ckpt.safetensors"));
    if args.resume && !checkpoint.is_file() {
        bail!(
            "--resume: no checkpoint of model '{name}' at {}",
            checkpoint.display()
        );
    }

    // The activation first: a bad netlist fails before the data is read.
    let neuron = neuron_activation(&source, &args, quiet)?;

    let data_dir = args.data.as_deref();
    let (train_set, test_set) = (
        load_split(kind, Split::Train, data_dir)?,
        load_split(kind, Split::Test, data_dir)?,
    );
    let train_set = match args.limit_train {
        Some(n) if n < train_set.len() => train_set.subset(0..n),
        _ => train_set,
    };
    let input = transform.input_shape(&train_set);
    let arch_options = ArchOptions {
        dropout,
        batch_norm: args.batch_norm,
        ..ArchOptions::default()
    };
    let spec = arch::by_name(
        &arch_name,
        input,
        train_set.class_names.len(),
        &arch_options,
    )?;

    let mut trainer = if args.resume {
        let mut t = Trainer::load_checkpoint(&checkpoint)?;
        check_resumable(&t, &spec, &neuron.activation, &options, &checkpoint)?;
        t.options.epochs = options.epochs;
        t.options.quiet = quiet;
        t
    } else {
        let net = Net::new(spec, neuron.activation.clone(), args.seed)?;
        Trainer::new(net, options)?
    };
    if !quiet {
        eprintln!(
            "training {name}: {} on {} ({} training images, {} test), epochs {}..{}",
            arch_name,
            train_set.variant,
            train_set.len(),
            test_set.len(),
            trainer.epoch + 1,
            trainer.options.epochs
        );
    }
    std::fs::create_dir_all(checkpoint.parent().expect("has a parent"))
        .with_context(|| format!("cannot create {}", checkpoint.display()))?;
    let epochs = trainer.options.epochs;
    let start = Instant::now();
    trainer.train_with(&train_set, Some(&test_set), Some(&checkpoint), |log| {
        print_epoch(log, epochs)
    })?;
    let wall = start.elapsed().as_secs_f64();

    let mut model = trainer.model();
    let test_accuracy = match trainer.log.last().and_then(|l| l.test_accuracy) {
        Some(a) => a,
        None => train::evaluate(&mut model, &test_set, transform, 256)?.accuracy,
    };
    let mut meta = ModelMeta::new(&name, &model, transform, &train_set.variant);
    meta.netlist_path = neuron.netlist_path;
    meta.netlist_hash = neuron.netlist_hash;
    meta.baseline = neuron.baseline;
    meta.train_options = Some(trainer.options.clone());
    meta.training_log = trainer.log.clone();
    meta.test_accuracy = Some(test_accuracy);
    meta.command_line = Some(reproduction_command());
    meta.latency_window_s = args.latency_window;
    save_model(&args.out, &model, &meta)?;
    let (weights, json) = train::model_io::model_paths(&args.out, &name);
    println!(
        "test accuracy {:.2} % on {} images; wrote {} and {} ({:.1} s of training in this run)",
        100.0 * test_accuracy,
        test_set.len(),
        weights.display(),
        json.display(),
        wall
    );
    Ok(())
}

/// A checkpoint may only be continued with the same network, activation and
/// options (all but the number of epochs).
fn check_resumable(
    trainer: &Trainer,
    spec: &train::ArchSpec,
    activation: &Activation,
    options: &TrainOptions,
    checkpoint: &Path,
) -> anyhow::Result<()> {
    let at = checkpoint.display();
    if trainer.net.arch != *spec {
        bail!("--resume: {at} holds architecture '{}' for other inputs or options than this run asks for", trainer.net.arch.name);
    }
    if trainer.net.activation != *activation {
        bail!("--resume: {at} was trained with another activation (the netlist, its parameters or --smoothing changed)");
    }
    let mut wanted = options.clone();
    wanted.epochs = trainer.options.epochs;
    wanted.quiet = trainer.options.quiet;
    if wanted != trainer.options {
        bail!(
            "--resume: {at} was trained with other options ({:?}); pass the same ones, or drop --resume",
            trainer.options
        );
    }
    if options.epochs < trainer.epoch {
        bail!(
            "--resume: {at} has already trained {} epochs, more than --epochs {}",
            trainer.epoch,
            options.epochs
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_are_bare_names_and_files_are_netlists() {
        assert!(matches!(
            NeuronSource::parse(Path::new("relu")).unwrap(),
            NeuronSource::Baseline(Baseline::Relu)
        ));
        assert!(matches!(
            NeuronSource::parse(Path::new("LIF")).unwrap(),
            NeuronSource::Baseline(Baseline::Lif)
        ));
        match NeuronSource::parse(Path::new("lif.cir")).unwrap() {
            NeuronSource::Netlist(p) => assert!(p.ends_with("lif.cir")),
            other => panic!("{other:?}"),
        }
        let e = NeuronSource::parse(Path::new("no-such.cir")).unwrap_err();
        assert!(e.to_string().contains("no-such.cir"), "{e}");
    }

    #[test]
    fn range_is_twice_the_first_firing_current() {
        // Fires from 3 nA: the 25-point probe to 4 nA first fires at 3 nA.
        let fire = |c: &[f64]| {
            Ok(c.iter()
                .map(|&i| if i >= 3e-9 - 1e-18 { 100.0 } else { 0.0 })
                .collect())
        };
        let top = choose_range(None, fire, "x").unwrap();
        assert!((top - 6e-9).abs() < 1e-18, "{top}");
        // Fires only from 1 µA: found by the wider probes.
        let late = |c: &[f64]| {
            Ok(c.iter()
                .map(|&i| if i > 1e-6 { 1.0 } else { 0.0 })
                .collect())
        };
        let top = choose_range(None, late, "x").unwrap();
        assert!(top > 2e-6 && top < 2.5e-6, "{top}");
        let never = |c: &[f64]| Ok(vec![0.0; c.len()]);
        let e = choose_range(None, never, "quiet.cir").unwrap_err();
        assert!(e.to_string().contains("quiet.cir"), "{e}");
        assert_eq!(choose_range(Some(5e-9), never, "x").unwrap(), 5e-9);
        assert!(choose_range(Some(-1.0), never, "x").is_err());
    }

    #[test]
    fn abstract_lif_curve_has_the_circuit_rheobase() {
        let lif = Lif::circuit_equivalent(1);
        let top = choose_range(
            None,
            |c| Ok(c.iter().map(|&i| lif.rate(i)).collect()),
            "lif",
        )
        .unwrap();
        let currents = curve_currents(top, 3.0).unwrap();
        assert_eq!(currents.len(), RATE_POINTS + EXTENSION_POINTS);
        assert!((currents[currents.len() - 1] - 3.0 * top).abs() < 1e-18);
        let rates: Vec<f64> = currents.iter().map(|&i| lif.rate(i)).collect();
        let curve = fit_curve(currents.clone(), rates.clone(), top, None, "lif").unwrap();
        assert!((curve.rheobase_a() - 2e-9).abs() <= top / 60.0);
        // z = 1 is placed as on the range alone; beyond it the curve is the
        // LIF's own (no saturation), and it goes on rising past the samples.
        let alone = fit_curve(
            currents[..RATE_POINTS].to_vec(),
            rates[..RATE_POINTS].to_vec(),
            top,
            None,
            "lif",
        )
        .unwrap();
        assert!((curve.spec().gain_a - alone.spec().gain_a).abs() < 1e-20);
        let far = 2.5 * top;
        assert!((curve.rate_hz_at(far).0 / lif.rate(far) - 1.0).abs() < 1e-3);
        assert_eq!(alone.rate_hz_at(far).0, rates[RATE_POINTS - 1]);
        assert!(curve.rate_hz_at(4.0 * top).0 > curve.rate_hz_at(3.0 * top).0);
        // Explicit smoothing is honoured in amperes.
        let smooth = fit_curve(currents.clone(), rates.clone(), top, Some(0.1e-9), "lif").unwrap();
        assert!((smooth.spec().smoothing_a - 0.1e-9).abs() < 1e-15);
        // The output is normalised: z = 1 gives 1.
        assert!((smooth.eval(1.0).0 - 1.0).abs() < 1e-9);
        // A neuron that stops firing when driven hard: the extension ends
        // before its first falling sample.
        let mut blocked = rates.clone();
        let k = RATE_POINTS + 5;
        blocked[k..].iter_mut().for_each(|r| *r = 0.0);
        let cut = fit_curve(currents, blocked, top, None, "lif").unwrap();
        assert_eq!(cut.spec().current_a.len(), k);
        assert!(curve_currents(top, 0.5).is_err());
    }

    #[test]
    fn each_dataset_has_its_default_schedule() {
        let mnist = Schedule::for_dataset(DatasetKind::Mnist);
        // The schedule of the shipped MNIST models, unchanged.
        assert_eq!(
            mnist,
            Schedule {
                arch: "mnist-thesis",
                epochs: 6,
                learning_rate: 2e-3,
                lr_decay: 0.6,
                weight_average: 0.999,
            }
        );
        let fashion = Schedule::for_dataset(DatasetKind::FashionMnist);
        assert_eq!(fashion.arch, "fashion-wide");
        assert_eq!(
            (fashion.epochs, fashion.learning_rate, fashion.lr_decay),
            (FASHION_EPOCHS, 2e-3, FASHION_LR_DECAY)
        );
        assert_eq!(
            Schedule::for_dataset(DatasetKind::Cifar10).arch,
            "cifar-conv6"
        );
        // The default architecture of every dataset builds for its images.
        for (kind, input) in [
            (DatasetKind::Mnist, (1, 28)),
            (DatasetKind::FashionMnist, (1, 28)),
            (DatasetKind::Cifar10, (3, 32)),
        ] {
            let schedule = Schedule::for_dataset(kind);
            let options = ArchOptions {
                dropout: arch::default_dropout(schedule.arch),
                ..ArchOptions::default()
            };
            let shape = train::arch::InputShape {
                channels: input.0,
                height: input.1,
                width: input.1,
            };
            arch::by_name(schedule.arch, shape, 10, &options).unwrap();
        }
    }

    #[test]
    fn default_augmentation_flips_clothes_but_not_digits() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            train: TrainArgs,
        }
        let args = |dataset: &str, augment: &[&str]| {
            let mut argv = vec!["train", "--dataset", dataset, "--netlist", "relu"];
            for a in augment {
                argv.extend(["--augment", a]);
            }
            <Cli as clap::Parser>::try_parse_from(argv).unwrap().train
        };
        let digits = parse_augment(&args("mnist", &[]), DatasetKind::Mnist).unwrap();
        assert_eq!((digits.shift_px, digits.hflip), (2, false));
        let clothes =
            parse_augment(&args("fashion-mnist", &[]), DatasetKind::FashionMnist).unwrap();
        assert_eq!((clothes.shift_px, clothes.hflip), (0, true));
        let shift_only = parse_augment(
            &args("fashion-mnist", &["shift"]),
            DatasetKind::FashionMnist,
        )
        .unwrap();
        assert!(!shift_only.hflip);
    }

    #[test]
    fn quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("--lr"), "--lr");
        assert_eq!(shell_quote("netlists/mif.cir"), "netlists/mif.cir");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
