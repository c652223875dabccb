//! `circsnn classify`: run a trained model as a spiking network whose hidden
//! neurons are the netlist's circuit (or its rate model, or an abstract
//! neuron with the same rate curve), and `circsnn merge` for shard reports.

use super::classify_checkpoint::{Checkpoint, RunKey, CHECKPOINT_EVERY_S};
use super::sim::resolve_netlist;
use crate::circuit::{self, Circuit};
use crate::data::{self, DatasetKind, Split};
use crate::netlist;
use crate::output::{line_figure, panel_figure, Series};
use crate::snn::metrics::{Counts, RunInfo};
use crate::snn::{
    classify_resuming, merge_reports, rate_model_predictions, run_images, shared_circuits,
    AbstractNeuron, Checkpoints, ClassifyOutcome, Fidelity, ImageResult, InputMode, NeuronDevices,
    RateMap, Readout, Report, RunSettings, SnnError, Synapse, SynapseKind, Topology,
};
use crate::train::{load_model, ModelMeta, Net};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// Neuron netlist (a bare name is also looked up in netlists/).
    #[arg(long)]
    pub netlist: PathBuf,
    /// Model metadata file (`NAME.json`, next to `NAME.safetensors`);
    /// default models/<dataset>-<netlist stem>.json (mnist-mif.json), for
    /// Fashion-MNIST models/fashion-<stem>.json, else fashion-mnist-<stem>.json.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Network steps per image, or a comma-separated increasing list read
    /// out from one run (e.g. 10,20,50); default: the latency window the
    /// model was trained for (`train --latency-window`) in steps of dt,
    /// else 50.
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<usize>>,
    /// Network step (s).
    #[arg(long, default_value_t = 1e-3)]
    pub dt: f64,
    /// Synapse time constant (s); 0 = no filter.
    #[arg(long, default_value_t = 5e-3)]
    pub synapse: f64,
    #[arg(long, value_enum, default_value = "lowpass")]
    pub synapse_kind: SynapseKind,
    /// Drive neurons K times harder and weigh each spike 1/K (exact for the
    /// linear part of the rate curve).
    #[arg(long, default_value_t = 1.0)]
    pub scale_firing_rates: f64,
    /// Use the first N test images.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value = "circuit")]
    pub fidelity: Fidelity,
    /// Also run this fidelity on the same images and report both.
    #[arg(long, value_enum)]
    pub compare: Option<Fidelity>,
    /// The neuron of `--fidelity abstract`.
    #[arg(long, value_enum, default_value = "if")]
    pub abstract_neuron: AbstractNeuron,
    #[arg(long, value_enum, default_value = "analog")]
    pub input: InputMode,
    #[arg(long, value_enum, default_value = "filtered")]
    pub readout: Readout,
    /// Deliver synaptic currents with their sign instead of rectifying
    /// them at 0 A: memristive neurons (MIF, MIF2) then also fire when
    /// driven hard negative, which the rate model does not know.
    #[arg(long)]
    pub signed_current: bool,
    /// Device-to-device variation of the circuit neurons (one spread per name).
    #[command(flatten)]
    pub variation: super::VariationArgs,
    /// Run only shard k of n (1-based k, as job-array indices): a contiguous block of the images.
    #[arg(long, value_name = "k/n")]
    pub shard: Option<String>,
    /// Output folder (default out/classify/<dataset>-<netlist stem>-<fidelity>).
    /// The run saves its progress there about once a minute (checkpoint.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the interrupted run whose checkpoint.json is in the output
    /// folder (same options; the thread count may differ).
    #[arg(long)]
    pub resume: bool,
    /// Per class, run the first N correctly classified and the first N
    /// misclassified test images again and draw their output layer over
    /// time (unfiltered input, filtered trace, spikes) into samples/; 0: none.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub samples: usize,
    /// Print the report as JSON on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Data folder (default $CIRCSNN_DATA or ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// The images `[start, end)` of shard k (1-based) of n over `total` images.
pub fn shard_range(total: usize, shard: Option<(usize, usize)>) -> std::ops::Range<usize> {
    match shard {
        None => 0..total,
        Some((k, n)) => total * (k - 1) / n..total * k / n,
    }
}

/// Steps per image without `--steps`.
pub const DEFAULT_STEPS: usize = 50;

/// The steps that cover the latency window a model was trained for (a
/// shorter run misses the late first spikes its curve counts; a longer one
/// counts spikes it does not), else [`DEFAULT_STEPS`].
fn default_steps(meta: &ModelMeta, dt: f64) -> usize {
    match meta.latency_window_s {
        // (The relative slack keeps 0.02 / 0.001 = 20.000000000000004 at 20.)
        Some(w) if w > 0.0 && dt > 0.0 => ((w / dt) * (1.0 - 1e-9)).ceil().max(1.0) as usize,
        _ => DEFAULT_STEPS,
    }
}

/// The default model files of a dataset and netlist stem, in the order
/// they are tried: the shipped models are `mnist-<stem>.json` and
/// `fashion-<stem>.json`; `<dataset>-<stem>.json` (`fashion-mnist-<stem>`)
/// is also accepted. MNIST's MIF2 default is the latency-trained
/// `mnist-mif2-w0.02`: its circuits score 98.94 % on the whole test set at
/// the 20 steps it is made for, `mnist-mif2`'s 98.23 % at 10 and fewer
/// than that at 20 and 30 (BENCHMARKS.md, "Classification", session 21).
fn default_model_files(dataset: DatasetKind, stem: &str) -> Vec<String> {
    let long = format!("{}-{stem}.json", dataset.name());
    match (dataset, stem) {
        (DatasetKind::Mnist, "mif2") => vec!["mnist-mif2-w0.02.json".into(), long],
        (DatasetKind::FashionMnist, _) => vec![format!("fashion-{stem}.json"), long],
        _ => vec![long],
    }
}

/// Find the model: `--model` (a .json, .safetensors or bare stem path), or
/// the first default model file ([`default_model_files`]) in models/ here
/// or in the crate folder.
fn resolve_model(
    model: Option<&Path>,
    dataset: DatasetKind,
    stem: &str,
) -> anyhow::Result<(PathBuf, String)> {
    let split = |p: &Path| -> anyhow::Result<(PathBuf, String)> {
        // Only the model's own extensions are stripped: a name may hold
        // dots (`--name mnist-mif2-w0.007`).
        let file = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .with_context(|| format!("--model {}: not a file name", p.display()))?;
        let name = [".json", ".safetensors"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext))
            .unwrap_or(&file)
            .to_string();
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok((dir.to_path_buf(), name))
    };
    if let Some(m) = model {
        return split(m);
    }
    let files = default_model_files(dataset, stem);
    for file in &files {
        for base in [
            PathBuf::from("models"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ] {
            let p = base.join(file);
            if p.exists() {
                return split(&p);
            }
        }
    }
    let tried = files
        .iter()
        .map(|f| format!("models/{f}"))
        .collect::<Vec<_>>()
        .join(" or ");
    bail!("no model {tried} for netlist '{stem}' and dataset {}: train one with `circsnn train` or pass --model FILE", dataset.name())
}

/// The accuracy measure of `circsnn sweep`: the model (given, or the
/// shipped one of the netlist and dataset) converted, with the first
/// `limit` test images prepared, run circuit-faithful for `steps` steps
/// with the classify defaults otherwise.
pub fn sweep_setup(
    netlist_path: &Path,
    model: Option<&Path>,
    dataset: DatasetKind,
    data_dir: Option<&Path>,
    limit: usize,
    steps: usize,
) -> anyhow::Result<crate::sweep::ClassifySetup> {
    let stem = netlist_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "neuron".into());
    let (dir, name) = resolve_model(model, dataset, &stem)?;
    let (net, meta) = load_model(&dir, &name)?;
    // The defaults of `circsnn classify`.
    let settings = RunSettings {
        fidelity: Fidelity::Circuit,
        abstract_neuron: AbstractNeuron::If,
        steps: vec![steps],
        dt_s: 1e-3,
        synapse: Synapse {
            tau_s: 5e-3,
            kind: SynapseKind::Lowpass,
        },
        scale_firing_rates: 1.0,
        input: InputMode::Analog,
        readout: Readout::Filtered,
        signed_current: false,
    };
    settings.validate()?;
    let data = data::load(dataset, Split::Test, data_dir)?;
    let count = limit.min(data.len());
    let len = net.input_len();
    let mut images = vec![0.0f32; count * len];
    for i in 0..count {
        meta.input_transform
            .prepare(&data, i, &mut images[i * len..(i + 1) * len]);
    }
    let mut map = RateMap::new(&net.activation, settings.scale_firing_rates)?;
    map.rectify &= !settings.signed_current;
    Ok(crate::sweep::ClassifySetup {
        topo: Topology::from_net(&net)?,
        map,
        settings,
        images,
        labels: (0..count).map(|i| data.labels[i] as usize).collect(),
    })
}

fn load_circuit(path: &Path) -> anyhow::Result<Circuit> {
    let parsed = netlist::parse_file(path)?;
    Ok(circuit::elaborate(&parsed, &[])?)
}

/// The neuron devices of the run: the netlist's circuit, or with --sigma a
/// chip of --devices drawn devices (and the variation in words).
fn circuit_devices(
    args: &ClassifyArgs,
    netlist_path: &Path,
) -> anyhow::Result<(Option<NeuronDevices>, Option<String>)> {
    if args.variation.sigmas.is_empty() {
        return Ok((
            Some(NeuronDevices::nominal(load_circuit(netlist_path)?)),
            None,
        ));
    }
    let sigmas = args
        .variation
        .sigmas
        .iter()
        .map(|s| {
            let (name, values) = crate::sweep::parse_spread(s)?;
            match values.as_slice() {
                [one] => Ok((name, *one)),
                _ => bail!("--sigma {s}: classify takes one spread per name"),
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.variation.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let mc = crate::sweep::MonteCarlo {
        samples: 1,
        sigmas,
        seed: args.variation.seed,
        lognormal: args.variation.distribution == "lognormal",
        devices: args.variation.devices,
    };
    let parsed = netlist::parse_file(netlist_path)?;
    let (devices, _) = crate::sweep::draw_chip(&parsed, netlist_path, &[], &mc, 0, 0)?;
    let spreads: Vec<String> = mc
        .sigmas
        .iter()
        .map(|(n, s)| format!("{n} {}%", s * 100.0))
        .collect();
    let words = format!(
        "{} {} devices drawn with σ {} (seed {}), one per neuron at random",
        args.variation.devices,
        args.variation.distribution,
        spreads.join(", "),
        args.variation.seed
    );
    Ok((Some(devices), Some(words)))
}

fn progress_bar(len: usize, quiet: bool, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// A netlist path, or a bare name in netlists/ with or without `.cir`.
fn find_netlist(path: &Path) -> anyhow::Result<PathBuf> {
    match resolve_netlist(path) {
        Ok(p) => Ok(p),
        Err(e) if path.extension().is_none() => {
            resolve_netlist(&path.with_extension("cir")).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

pub fn run(args: ClassifyArgs, quiet: bool) -> anyhow::Result<()> {
    let netlist_path = find_netlist(&args.netlist)?;
    let stem = netlist_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "neuron".into());
    let (model_dir, model_name) = resolve_model(args.model.as_deref(), args.dataset, &stem)?;
    let (mut net, meta) = load_model(&model_dir, &model_name)?;
    if let Some(trained) = meta.netlist_path.as_deref().map(Path::new) {
        if trained.file_stem() != netlist_path.file_stem() && !quiet {
            eprintln!(
                "warning: model {model_name} was trained on {}, the circuit is {}",
                trained.display(),
                netlist_path.display()
            );
        }
    }
    let shard = args.shard.as_deref().map(super::parse_shard).transpose()?;
    if args.limit == Some(0) {
        bail!("--limit 0 leaves no image to classify");
    }
    let settings = RunSettings {
        fidelity: args.fidelity,
        abstract_neuron: args.abstract_neuron,
        steps: args
            .steps
            .clone()
            .unwrap_or_else(|| vec![default_steps(&meta, args.dt)]),
        dt_s: args.dt,
        synapse: Synapse {
            tau_s: args.synapse,
            kind: args.synapse_kind,
        },
        scale_firing_rates: args.scale_firing_rates,
        input: args.input,
        readout: args.readout,
        signed_current: args.signed_current,
    };
    settings.validate()?;
    if let (None, Some(window), false) = (&args.steps, meta.latency_window_s, quiet) {
        eprintln!(
            "steps: {} (model {model_name} was trained for a {} ms latency window)",
            settings.steps[0],
            window * 1e3
        );
    }
    let needs_circuit =
        args.fidelity == Fidelity::Circuit || args.compare == Some(Fidelity::Circuit);
    let (devices, device_variation) = if needs_circuit {
        circuit_devices(&args, &netlist_path)?
    } else {
        if !args.variation.sigmas.is_empty() {
            bail!("--sigma varies circuit devices: it needs --fidelity circuit (or --compare circuit)");
        }
        (None, None)
    };

    let dataset = data::load(args.dataset, Split::Test, args.data.as_deref())?;
    if dataset.variant != meta.data_variant && !quiet {
        eprintln!(
            "warning: the model was trained on {}, the test images are {}",
            meta.data_variant, dataset.variant
        );
    }
    let total = args.limit.unwrap_or(dataset.len()).min(dataset.len());
    let range = shard_range(total, shard);
    let shape = meta.input_transform.input_shape(&dataset);
    if shape != net.arch.input {
        bail!(
            "model {}: expects {}×{}×{} inputs, {} gives {}×{}×{}",
            model_name,
            net.arch.input.channels,
            net.arch.input.height,
            net.arch.input.width,
            dataset.variant,
            shape.channels,
            shape.height,
            shape.width
        );
    }
    let len = net.input_len();
    let mut images = vec![0.0f32; range.len() * len];
    for (k, i) in range.clone().enumerate() {
        meta.input_transform
            .prepare(&dataset, i, &mut images[k * len..(k + 1) * len]);
    }
    let labels: Vec<usize> = range.clone().map(|i| dataset.labels[i] as usize).collect();
    let out = args.out.clone().unwrap_or_else(|| {
        let mut name = format!("{}-{stem}-{}", args.dataset.name(), args.fidelity.name());
        if let Some((k, n)) = shard {
            name.push_str(&format!("-shard{k}of{n}"));
        }
        PathBuf::from("out").join("classify").join(name)
    });
    let model_json = model_dir.join(format!("{model_name}.json"));
    let info = RunInfo {
        netlist: netlist_path.display().to_string(),
        model: model_json.display().to_string(),
        dataset: args.dataset.name().into(),
        limit: total,
        shard: args.shard.clone(),
        threads: rayon::current_num_threads(),
        device_variation,
    };
    let (netlist_sha256, model_sha256) = RunKey::file_hashes(&netlist_path, &model_json)?;
    let key = RunKey {
        settings: settings.clone(),
        compare: args.compare,
        netlist: info.netlist.clone(),
        netlist_sha256,
        model: info.model.clone(),
        model_sha256,
        dataset: info.dataset.clone(),
        data_variant: dataset.variant.clone(),
        first_image: range.start,
        images: range.len(),
        device_variation: info.device_variation.clone(),
    };
    let mut checkpoint = Checkpoint::start(&out, key, args.resume)?;
    let report = classify_images(
        &mut net,
        &settings,
        devices.as_ref(),
        &images,
        &labels,
        info,
        &dataset.variant,
        args.compare,
        (&out, &mut checkpoint),
        quiet,
    )?;

    write_outputs(&out, &report, &dataset.class_names)?;
    if args.samples > 0 {
        if !quiet {
            eprintln!("running the sample images again for their output traces ...");
        }
        let results = checkpoint.pass(0).results;
        let drawn = write_samples(
            &out.join("samples"),
            &net,
            &settings,
            devices.as_ref(),
            (&images, &labels, range.start),
            &results,
            &dataset.class_names,
            args.samples,
        )?;
        if drawn.changed > 0 && !quiet {
            eprintln!(
                "warning: {} of {} sample images were classified differently when run again",
                drawn.changed, drawn.images
            );
        }
    }
    print_report(&report, &out, args.json)
}

/// The images whose output traces are drawn: per class, the first
/// `per_class` correctly classified and the first `per_class` misclassified
/// ones (by the prediction at the largest step count), in image order,
/// each with whether it was classified correctly.
pub fn select_samples(
    results: &[ImageResult],
    classes: usize,
    per_class: usize,
) -> Vec<(usize, bool)> {
    let mut taken = vec![[0usize; 2]; classes];
    let mut chosen = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let Some(top2) = r.top2.last() else { continue };
        let correct = top2[0] == r.label;
        let count = &mut taken[r.label.min(classes - 1)][usize::from(!correct)];
        if *count < per_class {
            *count += 1;
            chosen.push((i, correct));
        }
    }
    chosen
}

/// How many sample images were run again, and how many of them came out
/// differently from the run (none, since images are independent).
pub struct SamplesDrawn {
    pub images: usize,
    pub changed: usize,
}

/// Run the [`select_samples`] images again with their output layer traced,
/// and draw one figure each into `dir` (plus `samples.csv`, one row each):
/// the output neurons' unfiltered input and filtered trace over time, and
/// their spikes with the count readout, as in the thesis's appendix A.3/A.4.
/// `images`/`labels` are the run's, the first being test image `first`.
#[allow(clippy::too_many_arguments)]
pub fn write_samples(
    dir: &Path,
    net: &Net,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
    (images, labels, first): (&[f32], &[usize], usize),
    results: &[ImageResult],
    class_names: &[String],
    per_class: usize,
) -> anyhow::Result<SamplesDrawn> {
    let (topo, map) = network_parts(net, settings)?;
    let chosen = select_samples(results, topo.classes, per_class);
    let len = topo.input.channels * topo.input.height * topo.input.width;
    let mut picked = Vec::with_capacity(chosen.len() * len);
    for &(i, _) in &chosen {
        picked.extend_from_slice(&images[i * len..(i + 1) * len]);
    }
    let shared = shared_circuits(&map, settings, devices)?;
    let traced = run_images(
        &topo,
        &map,
        settings,
        devices,
        &shared,
        &picked,
        |n, image, k| n.run_image_traced(image, labels[chosen[k].0]),
    )?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = |c: usize| class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let (classes, steps) = (topo.classes, settings.total_steps());
    let times: Vec<f64> = (1..=steps)
        .map(|k| k as f64 * settings.dt_s * 1e3)
        .collect();
    let mut csv = String::from("image,label,predicted,correct,same_as_run,file\n");
    let mut changed = 0;
    for (&(i, correct), (result, trace)) in chosen.iter().zip(&traced) {
        let label = labels[i];
        let predicted = result.top2.last().map_or(label, |t| t[0]);
        let same = result.top2 == results[i].top2;
        changed += usize::from(!same);
        let file = format!(
            "{}_{}_image{}.svg",
            if correct { "correct" } else { "wrong" },
            label,
            first + i
        );
        let class_labels: Vec<String> = (0..classes)
            .map(|c| match (c == label, c == predicted) {
                (true, _) => format!("{} (label)", name(c)),
                (false, true) => format!("{} (predicted)", name(c)),
                _ => name(c),
            })
            .collect();
        let by_class = |values: &[f64]| -> Vec<Vec<f64>> {
            (0..classes)
                .map(|c| values.iter().skip(c).step_by(classes).copied().collect())
                .collect()
        };
        let (unfiltered, filtered, spikes) = (
            by_class(&trace.unfiltered),
            by_class(&trace.filtered),
            by_class(&trace.spikes),
        );
        let (u, z, sp) = (
            curves(&class_labels, &times, &unfiltered),
            curves(&class_labels, &times, &filtered),
            curves(&class_labels, &times, &spikes),
        );
        let mut panels: Vec<(&str, &[Series])> = vec![
            ("unfiltered input u (spikes below × weights)", &u),
            ("filtered output z (synapse of u, plus bias)", &z),
        ];
        if settings.readout == Readout::Count {
            panels.push(("output spikes per step", &sp));
        }
        let title = format!(
            "test image {}: {} classified as {} ({}, {} steps)",
            first + i,
            name(label),
            name(predicted),
            settings.fidelity.name(),
            steps
        );
        panel_figure(&dir.join(&file), &title, "time (ms)", &panels)?;
        csv.push_str(&format!(
            "{},{label},{predicted},{correct},{same},{file}\n",
            first + i
        ));
    }
    let csv_path = dir.join("samples.csv");
    std::fs::write(&csv_path, csv)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    Ok(SamplesDrawn {
        images: chosen.len(),
        changed,
    })
}

/// One curve per class over `times`, labelled with the class names.
fn curves<'a>(labels: &'a [String], times: &'a [f64], rows: &'a [Vec<f64>]) -> Vec<Series<'a>> {
    labels
        .iter()
        .zip(rows)
        .map(|(l, y)| (l.as_str(), times, y.as_slice()))
        .collect()
}

/// The spiking network's topology and rate map for a trained net.
fn network_parts(net: &Net, settings: &RunSettings) -> anyhow::Result<(Topology, RateMap)> {
    let topo = Topology::from_net(net)?;
    let mut map = RateMap::new(&net.activation, settings.scale_firing_rates)?;
    map.rectify &= !settings.signed_current;
    Ok((topo, map))
}

/// Run the spiking network (and the `compare` fidelity) on prepared images
/// and build the report; each pass continues from the images `checkpoint`
/// holds and saves its progress to it (in folder `out`).
#[allow(clippy::too_many_arguments)]
pub fn classify_images(
    net: &mut Net,
    settings: &RunSettings,
    devices: Option<&NeuronDevices>,
    images: &[f32],
    labels: &[usize],
    info: RunInfo,
    data_variant: &str,
    compare: Option<Fidelity>,
    (out, checkpoint): (&Path, &mut Checkpoint),
    quiet: bool,
) -> anyhow::Result<Report> {
    let (topo, map) = network_parts(net, settings)?;
    let ann = rate_model_predictions(
        &mut net.fold_batch_norm().map_err(anyhow::Error::from)?,
        images,
        labels.len(),
    );
    let spiking_layers =
        topo.populations.len() - usize::from(settings.readout == Readout::Filtered);
    let names: Vec<String> = topo.populations[..spiking_layers]
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let sizes: Vec<usize> = topo.populations[..spiking_layers]
        .iter()
        .map(|p| p.size)
        .collect();
    // Pass 0 is the run's fidelity, pass 1 the `--compare` one; each
    // continues from the checkpoint's results and saves its own.
    let mut run_pass = |s: &RunSettings, index: usize| -> anyhow::Result<ClassifyOutcome> {
        let done = checkpoint.pass(index);
        if !done.results.is_empty() && !quiet {
            eprintln!(
                "{}: resuming after {} of {} images ({:.0} s of simulation saved)",
                s.fidelity.name(),
                done.results.len(),
                labels.len(),
                done.wall_s
            );
        }
        let bar = progress_bar(labels.len(), quiet, s.fidelity.name());
        bar.inc(done.results.len() as u64);
        let mut save = |o: &ClassifyOutcome| {
            checkpoint
                .save(out, index, o)
                .map_err(|e| SnnError::Checkpoint(format!("{e:#}")))
        };
        let outcome = classify_resuming(
            &topo,
            &map,
            s,
            devices,
            images,
            labels,
            done,
            Checkpoints {
                every_s: Some(CHECKPOINT_EVERY_S),
                save: &mut save,
            },
            &|| bar.inc(1),
        )?;
        bar.finish_and_clear();
        Ok(outcome)
    };
    let main = run_pass(settings, 0)?;
    let mut counts = Counts::from_results(
        &main.results,
        &ann,
        topo.classes,
        settings.steps.len(),
        spiking_layers,
    );
    let compare_report = match compare {
        Some(f) => {
            let mut s = settings.clone();
            s.fidelity = f;
            let other = run_pass(&s, 1)?;
            counts.set_agreement(&main.results, &other.results);
            let c = Counts::from_results(
                &other.results,
                &ann,
                topo.classes,
                s.steps.len(),
                spiking_layers,
            );
            Some(Report::new(
                c,
                s,
                info.clone(),
                names.clone(),
                sizes.clone(),
                other.wall_s,
                data_variant.to_string(),
                None,
            ))
        }
        None => None,
    };
    Ok(Report::new(
        counts,
        settings.clone(),
        info,
        names,
        sizes,
        main.wall_s,
        data_variant.to_string(),
        compare_report,
    ))
}

/// report.json, confusion.csv, confusion.svg and (for several step counts)
/// accuracy_vs_steps.svg.
pub fn write_outputs(out: &Path, report: &Report, class_names: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = out.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let confusion = &report.counts.confusion;
    let csv_path = out.join("confusion.csv");
    let mut csv = String::from("label");
    for p in 0..confusion.len() {
        csv.push_str(&format!(",pred_{p}"));
    }
    csv.push('\n');
    for (l, row) in confusion.iter().enumerate() {
        csv.push_str(&l.to_string());
        for v in row {
            csv.push_str(&format!(",{v}"));
        }
        csv.push('\n');
    }
    std::fs::write(&csv_path, csv)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    let svg_path = out.join("confusion.svg");
    std::fs::write(&svg_path, confusion_svg(confusion, class_names, report))
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    if report.accuracy_vs_steps.len() > 1 {
        let steps: Vec<f64> = report
            .accuracy_vs_steps
            .iter()
            .map(|a| a.steps as f64)
            .collect();
        let acc: Vec<f64> = report
            .accuracy_vs_steps
            .iter()
            .map(|a| a.accuracy)
            .collect();
        let ann = vec![report.rate_model_accuracy; steps.len()];
        let mut series: Vec<(&str, &[f64], &[f64])> = vec![
            (report.settings.fidelity.name(), &steps, &acc),
            ("rate model (ANN)", &steps, &ann),
        ];
        let other: Vec<f64>;
        if let Some(c) = &report.compare {
            other = c.accuracy_vs_steps.iter().map(|a| a.accuracy).collect();
            series.push((c.settings.fidelity.name(), &steps, &other));
        }
        line_figure(
            &out.join("accuracy_vs_steps.svg"),
            "accuracy vs network steps",
            "steps",
            "accuracy",
            &series,
        )?;
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A confusion-matrix heatmap as plain SVG: cell shade is the row fraction.
pub fn confusion_svg(confusion: &[Vec<u64>], class_names: &[String], report: &Report) -> String {
    let n = confusion.len();
    let (cell, left, top) = (44.0, 110.0, 70.0);
    let (w, h) = (left + cell * n as f64 + 20.0, top + cell * n as f64 + 60.0);
    let name = |i: usize| {
        xml_escape(
            class_names
                .get(i)
                .map(String::as_str)
                .unwrap_or(&i.to_string()),
        )
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">confusion ({} fidelity, {} images, accuracy {:.2} %)</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted</text>\n<text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">true label</text>\n",
        w / 2.0,
        report.settings.fidelity.name(),
        report.images,
        report.accuracy * 100.0,
        left + cell * n as f64 / 2.0,
        top + cell * n as f64 + 40.0,
        top + cell * n as f64 / 2.0,
        top + cell * n as f64 / 2.0,
    );
    for (l, row) in confusion.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let y = top + cell * l as f64;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            left - 6.0,
            y + cell / 2.0 + 4.0,
            name(l)
        ));
        for (p, &v) in row.iter().enumerate() {
            let frac = if total > 0 {
                v as f64 / total as f64
            } else {
                0.0
            };
            // White to dark blue.
            let shade = |c0: f64, c1: f64| (c0 + (c1 - c0) * frac).round() as u8;
            let fill = format!(
                "rgb({},{},{})",
                shade(255.0, 8.0),
                shade(255.0, 48.0),
                shade(255.0, 107.0)
            );
            let x = left + cell * p as f64;
            let ink = if frac > 0.5 { "white" } else { "black" };
            s.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\" stroke=\"#ccc\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\">{v}</text>\n",
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            ));
        }
    }
    for p in 0..n {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            left + cell * p as f64 + cell / 2.0,
            top + cell * n as f64 + 16.0,
            name(p)
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn print_report(report: &Report, out: &Path, json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    let mut lines = vec![summary_line(report)];
    if let Some(v) = &report.run.device_variation {
        lines.push(format!("device variation: {v}"));
    }
    if let Some(c) = &report.compare {
        lines.push(summary_line(c));
        if let Some(a) = report.agreement_with_compare {
            lines.push(format!(
                "agreement {} vs {}: {:.2} %",
                report.settings.fidelity.name(),
                c.settings.fidelity.name(),
                a * 100.0
            ));
        }
    }
    for l in lines {
        writeln!(stdout, "{l}")?;
    }
    if report.accuracy_vs_steps.len() > 1 {
        for a in &report.accuracy_vs_steps {
            writeln!(
                stdout,
                "  {:>5} steps: accuracy {:.2} %, top-2 {:.2} %",
                a.steps,
                a.accuracy * 100.0,
                a.top2_accuracy * 100.0
            )?;
        }
    }
    match report.energy_j_per_inference {
        Some(e) => writeln!(
            stdout,
            "energy per inference: {e:.4e} J ({:.4e} J per spike, leak included; {})",
            e / report.spikes_per_image.iter().sum::<f64>().max(1.0),
            report.energy_note
        )?,
        None => writeln!(stdout, "energy per inference: {}", report.energy_note)?,
    }
    if let Some(line) = solver_line(report) {
        writeln!(stdout, "{line}")?;
    }
    writeln!(stdout, "→ {}", out.display())?;
    Ok(())
}

/// Where the circuit solver's time went, per image (`counts.solver`).
fn solver_line(r: &Report) -> Option<String> {
    let s = r.counts.solver?;
    let per = |x: u64| x as f64 / r.images.max(1) as f64;
    let mut line = format!(
        "circuit solver per image: {:.0} exact linear steps, {:.0} integrator steps ({:.0} rejected, {:.0} Newton iterations), {:.0} spike transients replayed ({:.0} continued across network steps), {:.0} integrated",
        per(s.exact_steps),
        per(s.accepted_steps),
        per(s.rejected_steps),
        per(s.newton_iterations),
        per(s.mapped_transients),
        per(s.reentries),
        per(s.integrated_transients)
    );
    let tabled = s.table_interpolated + s.table_simulated;
    if tabled > 0 {
        line += &format!(
            "; first layer: {:.0} neurons read from the response table, {:.1} simulated on their own",
            per(s.table_interpolated),
            per(s.table_simulated)
        );
    }
    Some(line)
}

fn summary_line(r: &Report) -> String {
    let spikes: Vec<String> = r
        .layers
        .iter()
        .zip(&r.spikes_per_image)
        .map(|(n, s)| format!("{n} {s:.1}"))
        .collect();
    format!(
        "{} ({} images, {} steps of {} s): accuracy {:.2} %, top-2 {:.2} %, rate model {:.2} %; {:.2} images/s, {:.3e} neuron-steps/s; spikes/image [{}]; SynOps/image {:.4e}",
        r.settings.fidelity.name(),
        r.images,
        r.settings.total_steps(),
        r.settings.dt_s,
        r.accuracy * 100.0,
        r.top2_accuracy * 100.0,
        r.rate_model_accuracy * 100.0,
        r.images_per_s,
        r.neuron_steps_per_s,
        spikes.join(", "),
        r.synops_per_image
    )
}

/// Merge classify shard reports into `out` (report.json, confusion, figures).
pub fn run_merge(report_paths: &[PathBuf], out: &Path, json: bool) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for p in report_paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let r: Report = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a classify report", p.display()))?;
        reports.push(r);
    }
    let merged = merge_reports(&reports)?;
    let classes: Vec<String> = Vec::new();
    write_outputs(out, &merged, &classes)?;
    print_report(&merged, out, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_steps_cover_the_trained_latency_window() {
        let (_, mut meta) = load_model(Path::new("models"), "mnist-mif2-w0.02").unwrap();
        // The shipped latency-trained model says what it was made for.
        assert_eq!(meta.latency_window_s, Some(0.02));
        assert_eq!(default_steps(&meta, 1e-3), 20);
        assert_eq!(default_steps(&meta, 3e-3), 7);
        meta.latency_window_s = None;
        assert_eq!(default_steps(&meta, 1e-3), DEFAULT_STEPS);
    }

    #[test]
    fn default_models_are_the_shipped_names() {
        assert_eq!(
            default_model_files(DatasetKind::Mnist, "mif"),
            ["mnist-mif.json"]
        );
        assert_eq!(
            default_model_files(DatasetKind::Mnist, "mif2"),
            ["mnist-mif2-w0.02.json", "mnist-mif2.json"]
        );
        assert_eq!(
            default_model_files(DatasetKind::FashionMnist, "mif2"),
            ["fashion-mif2.json", "fashion-mnist-mif2.json"]
        );
        assert_eq!(
            default_model_files(DatasetKind::Cifar10, "lif"),
            ["cifar10-lif.json"]
        );
    }

    #[test]
    fn model_names_may_hold_dots() {
        let dm = DatasetKind::Mnist;
        for given in ["m/a-w0.007", "m/a-w0.007.json", "m/a-w0.007.safetensors"] {
            let (dir, name) = resolve_model(Some(Path::new(given)), dm, "mif").unwrap();
            assert_eq!(
                (dir, name.as_str()),
                (PathBuf::from("m"), "a-w0.007"),
                "{given}"
            );
        }
        let (dir, name) = resolve_model(Some(Path::new("mnist-mif")), dm, "mif").unwrap();
        assert_eq!((dir, name.as_str()), (PathBuf::from("."), "mnist-mif"));
    }
}
