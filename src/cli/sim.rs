//! `circsnn sim NETLIST`: run the netlist's analyses with the general
//! engine and write waveforms, spikes, a summary and a figure.

use crate::analysis::{self, AnalysisResult};
use crate::circuit::{self, Analysis, Circuit};
use crate::devices::isource::ISource;
use crate::netlist::{self, Expr};
use crate::output::{self as out_files, RawFormat, RunSummary, Signal, SignalKind, Waveforms};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// The netlist to simulate (a bare file name is also looked up in netlists/).
    pub netlist: PathBuf,
    /// Output folder (default: out/<netlist name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a .param: NAME=VALUE (VALUE may be an expression); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Output formats, comma-separated: csv, raw (ASCII), raw-binary.
    #[arg(long, value_delimiter = ',', default_value = "csv,raw")]
    pub format: Vec<String>,
    /// Time constant of the lowpass spike filter in the figure (s).
    #[arg(long, default_value_t = 5e-3)]
    pub filter_tau: f64,
}

/// Find a netlist as given, or by bare name under `netlists/`.
pub fn resolve_netlist(path: &Path) -> anyhow::Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if path.components().count() == 1 {
        for base in [
            PathBuf::from("netlists"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("netlists"),
        ] {
            let candidate = base.join(path);
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "{}: no such netlist (also looked in netlists/)",
        path.display()
    )
}

/// Parse `NAME=VALUE` overrides.
pub fn parse_overrides(list: &[String]) -> anyhow::Result<Vec<(String, Expr)>> {
    list.iter()
        .map(|s| {
            let (name, value) = s
                .split_once('=')
                .with_context(|| format!("--param {s}: expected NAME=VALUE"))?;
            let expr = netlist::parse_expr(value.trim())
                .map_err(|e| anyhow::anyhow!("--param {s}: {e}"))?;
            Ok((name.trim().to_ascii_lowercase(), expr))
        })
        .collect()
}

pub fn run(args: SimArgs, quiet: bool) -> anyhow::Result<()> {
    let path = resolve_netlist(&args.netlist)?;
    let formats = Formats::parse(&args.format)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sim".into());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&stem));
    let overrides = parse_overrides(&args.params)?;
    let parsed = netlist::parse_file(&path)?;
    let circuit = circuit::elaborate(&parsed, &overrides)?;
    if circuit.analyses.is_empty() {
        bail!(
            "{}: no analysis to run (add .tran, .dc or .op)",
            path.display()
        );
    }
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;

    if circuit.steps.is_empty() {
        run_circuit(circuit, &out, &stem, &formats, &args, quiet)?;
    } else {
        // `.step param NAME ...`: one full run, in its own folder, per value.
        let steps = circuit.steps.clone();
        let mut combos: Vec<Vec<(String, f64)>> = vec![Vec::new()];
        for (name, values) in &steps {
            combos = combos
                .iter()
                .flat_map(|c| {
                    values
                        .iter()
                        .map(move |v| [c.clone(), vec![(name.clone(), *v)]].concat())
                })
                .collect();
        }
        for (k, combo) in combos.iter().enumerate() {
            let mut ov = overrides.clone();
            ov.extend(combo.iter().map(|(n, v)| (n.clone(), Expr::Num(*v))));
            let c = circuit::elaborate(&parsed, &ov)?;
            let label: Vec<String> = combo.iter().map(|(n, v)| format!("{n}={v:e}")).collect();
            let dir = out.join(format!("step{:03}", k + 1));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            if !quiet {
                eprintln!("step {} of {}: {}", k + 1, combos.len(), label.join(" "));
            }
            run_circuit(c, &dir, &stem, &formats, &args, quiet)?;
        }
    }
    Ok(())
}

struct Formats {
    csv: bool,
    raw: Option<RawFormat>,
}

impl Formats {
    fn parse(list: &[String]) -> anyhow::Result<Self> {
        let mut f = Formats {
            csv: false,
            raw: None,
        };
        for s in list {
            match s.trim().to_ascii_lowercase().as_str() {
                "csv" => f.csv = true,
                "raw" => f.raw = Some(RawFormat::Ascii),
                "raw-binary" => f.raw = Some(RawFormat::Binary),
                other => bail!("--format {other}: expected csv, raw or raw-binary"),
            }
        }
        Ok(f)
    }
}

fn run_circuit(
    mut circuit: Circuit,
    out: &Path,
    stem: &str,
    formats: &Formats,
    args: &SimArgs,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut mna = analysis::build(&mut circuit)?;
    let analyses = circuit.analyses.clone();
    let several = analyses.len() > 1;
    for (k, a) in analyses.iter().enumerate() {
        let kind = match a {
            Analysis::Op => "op",
            Analysis::Dc { .. } => "dc",
            Analysis::Tran { .. } => "tran",
        };
        let prefix = if several {
            format!("{}-{kind}-", k + 1)
        } else {
            String::new()
        };
        let start = Instant::now();
        let result = analysis::run(&mut circuit, &mut mna, a)?;
        let wall = start.elapsed().as_secs_f64();
        write_outputs(
            &circuit, a, &result, wall, out, &prefix, stem, formats, args,
        )?;
        if !quiet {
            let rate = match a {
                Analysis::Tran { .. } if circuit.spike.is_some() => {
                    format!(
                        ", {} spikes ({:.2} Hz)",
                        result.spikes.len(),
                        result.spikes.len() as f64 / result.interval_s
                    )
                }
                _ => String::new(),
            };
            println!(
                "{kind}: {} points, {} steps accepted, {} rejected, {} Newton iterations{rate}, {:.3} s wall → {}",
                result.waveforms.sweep.len(),
                result.accepted_steps,
                result.rejected_steps,
                result.newton_iterations,
                wall,
                out.display()
            );
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_outputs(
    circuit: &Circuit,
    analysis: &Analysis,
    r: &AnalysisResult,
    wall: f64,
    out: &Path,
    prefix: &str,
    stem: &str,
    formats: &Formats,
    args: &SimArgs,
) -> anyhow::Result<()> {
    let file = |name: &str| out.join(format!("{prefix}{name}"));
    let saved = saved_waveforms(circuit, &r.waveforms);
    let waveforms = saved.as_ref().unwrap_or(&r.waveforms);
    // The two text files are independent and formatting numbers dominates
    // their cost: write them side by side.
    let (csv, raw) = rayon::join(
        || {
            formats
                .csv
                .then(|| out_files::write_waveforms_csv(&file("waveforms.csv"), waveforms))
                .transpose()
        },
        || {
            formats
                .raw
                .map(|f| out_files::write_raw(&file(&format!("{stem}.raw")), waveforms, f))
                .transpose()
        },
    );
    csv?;
    raw?;
    let (t_start, t_stop) = match analysis {
        Analysis::Tran { tstart, tstop, .. } => (*tstart, *tstop),
        _ => (0.0, 0.0),
    };
    if let (Some(spike), Analysis::Tran { .. }) = (&circuit.spike, analysis) {
        let rows: Vec<(usize, f64)> = r.spikes.iter().map(|&t| (0, t)).collect();
        out_files::write_spikes_csv(&file("spikes.csv"), &rows)?;
        let membrane = circuit.unknowns[spike.node].name.clone();
        let input = input_current_signal(circuit);
        out_files::neuron_figure(
            &file("figure.svg"),
            &r.waveforms,
            input.as_deref(),
            &membrane,
            &r.spikes,
            args.filter_tau,
        )?;
    } else if let Analysis::Tran { .. } = analysis {
        // No neuron: plot every node voltage.
        let series: Vec<(&str, &[f64], &[f64])> = r
            .waveforms
            .signals
            .iter()
            .take(circuit.node_count.min(8))
            .map(|s| {
                (
                    s.name.as_str(),
                    r.waveforms.sweep.as_slice(),
                    s.values.as_slice(),
                )
            })
            .collect();
        out_files::line_figure(
            &file("figure.svg"),
            &circuit.title,
            "time (s)",
            "voltage (V)",
            &series,
        )?;
    }
    let summary = RunSummary {
        analysis: r.waveforms.analysis.clone(),
        t_start_s: t_start,
        t_stop_s: t_stop,
        points: r.waveforms.sweep.len(),
        accepted_steps: r.accepted_steps,
        rejected_steps: r.rejected_steps,
        newton_iterations: r.newton_iterations,
        wall_s: wall,
        spike_count: r.spikes.len() as u64,
        mean_rate_hz: RunSummary::rate_hz(r.spikes.len() as u64, t_start, t_stop),
    };
    summary.write_json(&file("summary.json"))?;
    Ok(())
}

/// The signals `.save`/`.print` ask for (all of them when there is no
/// `.save`, or `.save all`); `v(a,b)` is computed as a difference.
fn saved_waveforms(circuit: &Circuit, all: &Waveforms) -> Option<Waveforms> {
    use crate::netlist::OutputVar;
    if circuit.saves.is_empty() || circuit.saves.iter().any(|v| matches!(v, OutputVar::All)) {
        return None;
    }
    let pick = |name: &str| all.signal(name).cloned();
    let mut signals = Vec::new();
    for v in &circuit.saves {
        let s = match v {
            OutputVar::Voltage(a, None) => pick(&format!("v({a})")),
            OutputVar::Voltage(a, Some(b)) => {
                let (sa, sb) = (pick(&format!("v({a})")), pick(&format!("v({b})")));
                sa.zip(sb).map(|(sa, sb)| Signal {
                    name: format!("v({a},{b})"),
                    kind: SignalKind::Voltage,
                    values: sa
                        .values
                        .iter()
                        .zip(&sb.values)
                        .map(|(x, y)| x - y)
                        .collect(),
                })
            }
            OutputVar::Current(d) => pick(&format!("i({d})")),
            OutputVar::DeviceState { device, .. } => pick(&format!("x({device})")),
            OutputVar::All => None,
        };
        signals.extend(s);
    }
    Some(Waveforms {
        signals,
        ..all.clone()
    })
}

/// The current source that drives the neuron's input (or membrane) node.
fn input_current_signal(circuit: &Circuit) -> Option<String> {
    let node = circuit
        .neuron
        .as_ref()
        .map(|n| n.input)
        .or(circuit.spike.as_ref().map(|s| s.node))?;
    circuit.devices.iter().find_map(|d| {
        let s = d.as_any().downcast_ref::<ISource>()?;
        (s.pos == Some(node) || s.neg == Some(node)).then(|| format!("i({})", s.name))
    })
}
