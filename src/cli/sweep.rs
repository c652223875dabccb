//! `circsnn sweep NETLIST --param NAME=SPEC ... --measure rate|spikes`:
//! a grid over `.param`s, model parameters and element values, one JSON
//! line per point in `results.jsonl` (resumable, shardable), plus a CSV
//! and a figure (a line for one swept name, a heatmap for two).

use super::sim::{parse_overrides, resolve_netlist};
use crate::output::{heatmap_figure, line_figure};
use crate::sweep::{self, grid, results, Measure};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The neuron netlist.
    pub netlist: PathBuf,
    /// A swept name and its values: NAME=a:b:n, NAME=a:b:n:dec or NAME=v1,v2,...;
    /// NAME is a .param, model.PARAM or an element; repeat for a grid.
    #[arg(long = "param", value_name = "NAME=SPEC")]
    pub axes: Vec<String>,
    /// What to measure at each point: rate (f–I curve), spikes (the
    /// netlist's .tran), accuracy or energy (both: circuit-faithful
    /// classification of --limit test images with --model).
    #[arg(long, value_parser = ["rate", "spikes", "accuracy", "energy"], default_value = "rate")]
    pub measure: String,
    /// Model of the accuracy measure (default: the shipped model of the
    /// netlist and --dataset).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Dataset of the accuracy measure.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: crate::data::DatasetKind,
    /// Test images per point of the accuracy measure.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Network steps (of 1 ms) per image of the accuracy measure.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Data folder (default: $CIRCSNN_DATA, else ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Currents of the rate measure (A), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1.8e-9,2.0e-9,2.2e-9,2.4e-9,2.6e-9,2.8e-9,3.0e-9"
    )]
    pub currents: Vec<f64>,
    /// Fixed overrides applied to every point: NAME=VALUE; repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub fixed: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "out/sweep")]
    pub out: PathBuf,
    /// Continue an interrupted sweep in --out, skipping finished points.
    #[arg(long)]
    pub resume: bool,
    /// Run only every n-th point starting at k (job arrays): k/n.
    #[arg(long)]
    pub shard: Option<String>,
    /// Monte Carlo: draw this many devices at every point (with --sigma).
    #[arg(long, value_name = "N")]
    pub mc: Option<usize>,
    #[command(flatten)]
    pub variation: super::VariationArgs,
}

/// A grid axis: a swept name and its values.
type Axis = (String, Vec<f64>);

/// `--mc N --sigma NAME=S ...` as a [`MonteCarlo`](sweep::MonteCarlo), and
/// the `sigma:NAME` grid axes of the spreads given as lists.
fn monte_carlo(args: &SweepArgs) -> anyhow::Result<(Option<sweep::MonteCarlo>, Vec<Axis>)> {
    let Some(samples) = args.mc else {
        if !args.variation.sigmas.is_empty() {
            bail!("--sigma needs --mc N (the number of devices drawn per point)");
        }
        return Ok((None, Vec::new()));
    };
    if samples == 0 || args.variation.sigmas.is_empty() || args.variation.devices == 0 {
        bail!("--mc needs at least one sample, --devices at least one device, and at least one --sigma NAME=SIGMA");
    }
    let mut sigmas = Vec::new();
    let mut axes = Vec::new();
    for s in &args.variation.sigmas {
        let (name, values) = sweep::parse_spread(s)?;
        sigmas.push((name.clone(), values[0]));
        if values.len() > 1 {
            axes.push((format!("{}{name}", sweep::SIGMA_AXIS), values));
        }
    }
    Ok((
        Some(sweep::MonteCarlo {
            samples,
            sigmas,
            seed: args.variation.seed,
            lognormal: args.variation.distribution == "lognormal",
            devices: args.variation.devices,
        }),
        axes,
    ))
}

pub fn run(args: SweepArgs, quiet: bool) -> anyhow::Result<()> {
    let netlist = resolve_netlist(&args.netlist)?;
    let mut axes = args
        .axes
        .iter()
        .map(|a| grid::parse_axis(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--param {e}"))?;
    let fixed = parse_overrides(&args.fixed)?;
    let (mc, sigma_axes) = monte_carlo(&args)?;
    // Without axes the grid is the one nominal point.
    axes.extend(sigma_axes);
    let measure = match args.measure.as_str() {
        "rate" => Measure::Rate {
            currents: args.currents.clone(),
        },
        "spikes" => Measure::Spikes,
        _ => Measure::Accuracy(std::sync::Arc::new(super::classify::sweep_setup(
            &netlist,
            args.model.as_deref(),
            args.dataset,
            args.data.as_deref(),
            args.limit,
            args.steps,
        )?)),
    };
    let (k, n) = match &args.shard {
        Some(s) => super::parse_shard(s)?,
        None => (1, 1),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let definition = serde_json::json!({
        "netlist": netlist.display().to_string(),
        "axes": axes.iter().map(|(name, v)| serde_json::json!({ "name": name, "values": v })).collect::<Vec<_>>(),
        "measure": args.measure,
        "classify": matches!(measure, Measure::Accuracy(_)).then(|| serde_json::json!({
            "model": args.model, "dataset": args.dataset.name(), "limit": args.limit, "steps": args.steps,
        })),
        "currents_a": if matches!(measure, Measure::Rate { .. }) { Some(&args.currents) } else { None },
        "fixed": args.fixed,
        "shard": [k, n],
        "mc": mc.as_ref().map(|m| serde_json::json!({
            "samples": m.samples,
            "sigma": m.sigmas.iter().map(|(n, s)| serde_json::json!([n, s])).collect::<Vec<_>>(),
            "seed": m.seed,
            "distribution": args.variation.distribution,
            "devices": m.devices,
        })),
    });
    let def_path = args.out.join("sweep.json");
    let results_path = args.out.join("results.jsonl");
    if results_path.exists() {
        if !args.resume {
            bail!(
                "{} exists; pass --resume to continue it, or choose another --out",
                results_path.display()
            );
        }
        let old: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&def_path)
                .with_context(|| format!("cannot read {}", def_path.display()))?,
        )?;
        if old != definition {
            bail!("{} describes a different sweep; --resume needs the same netlist, axes, measure and shard", def_path.display());
        }
    }
    std::fs::write(&def_path, serde_json::to_string_pretty(&definition)?)?;

    let done = results::read_finished(&results_path)?;
    let todo: Vec<grid::Point> = grid::grid(&axes)
        .into_iter()
        .filter(|p| p.index % n == k - 1 && !done.contains_key(&p.index))
        .collect();
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(todo.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} points, ETA {eta}")
            .expect("valid template"),
    );
    sweep::run_points(
        &netlist,
        &fixed,
        &todo,
        &measure,
        mc.as_ref(),
        &results_path,
        |c| bar.inc(c as u64),
    )?;
    bar.finish_and_clear();

    let lines: Vec<serde_json::Value> = results::read_finished(&results_path)?
        .into_values()
        .collect();
    write_csv_and_figure(&args.out, &axes, &lines)?;
    if !quiet {
        println!(
            "{} points in {} ({} measured now)",
            lines.len(),
            results_path.display(),
            todo.len()
        );
    }
    Ok(())
}

/// The headline number of a line: max rate (rate) or spike count (spikes).
fn headline(line: &serde_json::Value) -> f64 {
    line.get("max_rate_hz")
        .or(line.get("spike_count"))
        .or(line.get("accuracy"))
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

fn write_csv_and_figure(
    out: &std::path::Path,
    axes: &[(String, Vec<f64>)],
    lines: &[serde_json::Value],
) -> anyhow::Result<()> {
    let features: Vec<String> = sweep::FEATURES
        .iter()
        .flat_map(|f| [f.to_string(), format!("{f}_std")])
        .collect();
    let present: Vec<&str> = features
        .iter()
        .map(String::as_str)
        .filter(|f| lines.iter().any(|l| l.get(*f).is_some()))
        .collect();
    let mut csv = String::from("index");
    for (name, _) in axes {
        csv.push(',');
        csv.push_str(name);
    }
    for f in &present {
        csv.push(',');
        csv.push_str(f);
    }
    csv.push('\n');
    for l in lines {
        csv.push_str(&l["index"].to_string());
        for (name, _) in axes {
            csv.push(',');
            csv.push_str(&l["params"][name].to_string());
        }
        for f in &present {
            csv.push(',');
            csv.push_str(&l.get(*f).map_or(String::new(), |v| {
                if v.is_null() {
                    String::new()
                } else {
                    v.to_string()
                }
            }));
        }
        csv.push('\n');
    }
    std::fs::write(out.join("results.csv"), csv)?;
    let label = if lines.iter().any(|l| l.get("max_rate_hz").is_some()) {
        "max rate (Hz)"
    } else if lines.iter().any(|l| l.get("accuracy").is_some()) {
        "accuracy"
    } else {
        "spike count"
    };
    let value_at = |idx: usize| {
        lines
            .iter()
            .find(|l| l["index"].as_u64() == Some(idx as u64))
            .map_or(f64::NAN, headline)
    };
    match axes {
        [(name, values)] => {
            let y: Vec<f64> = (0..values.len()).map(value_at).collect();
            line_figure(
                &out.join("sweep.svg"),
                &format!("sweep of {name}"),
                name,
                label,
                &[(label, values, &y)],
            )?;
        }
        [(a, va), (b, vb)] => {
            let grid: Vec<Vec<f64>> = (0..va.len())
                .map(|i| (0..vb.len()).map(|j| value_at(i * vb.len() + j)).collect())
                .collect();
            let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.3e}")).collect::<Vec<_>>();
            heatmap_figure(
                &out.join("sweep.svg"),
                &format!("{label} over {a} × {b}"),
                b,
                a,
                &fmt(vb),
                &fmt(va),
                &grid,
            )?;
        }
        _ => {}
    }
    Ok(())
}
