//! `circsnn bench`: the cost per neuron per network step (dt = 1 ms) of
//! every neuron model on the same heterogeneous 34,000-neuron population,
//! as ratios against abstract LIF measured in the same run, plus the
//! general engine and ngspice on one MIF neuron.

use super::sim::resolve_netlist;
use crate::analysis;
use crate::circuit;
use crate::netlist::Expr;
use crate::neuron::workload::{heterogeneous_inputs, INPUT_DISTRIBUTION};
use crate::neuron::{AnalyticMif, Lif, NeuronKernel, NeuronModel, NeuronOptions, SpikingRelu};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

const DT: f64 = 1e-3;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Population size.
    #[arg(long, default_value_t = 34_000)]
    pub neurons: usize,
    /// Minimum measuring time per model (s); at least 3 steps are timed.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Skip the general-engine and ngspice single-neuron runs.
    #[arg(long)]
    pub no_single: bool,
}

/// Network steps simulated before timing: 50 ms, so that every firing
/// neuron has spiked a few times and the circuit kernels' spike-map cells
/// for its input exist (the steady regime, not the start-up).
const WARMUP_STEPS: usize = 50;

/// Time `model` on `inputs`: ns per neuron-step, after a warm-up.
fn time_model(
    model: &mut dyn NeuronModel,
    inputs: &[f64],
    seconds: f64,
) -> anyhow::Result<(f64, u64, f64)> {
    let mut spikes = Vec::with_capacity(inputs.len());
    for _ in 0..WARMUP_STEPS {
        spikes.clear();
        model.advance(DT, inputs, &mut spikes)?;
    }
    let start = Instant::now();
    let (mut steps, mut total_spikes) = (0u64, 0usize);
    while steps < 3 || start.elapsed().as_secs_f64() < seconds {
        spikes.clear();
        model.advance(DT, inputs, &mut spikes)?;
        total_spikes += spikes.len();
        steps += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let rate = total_spikes as f64 / (inputs.len() as f64 * steps as f64 * DT);
    Ok((
        wall * 1e9 / (steps as f64 * inputs.len() as f64),
        steps,
        rate,
    ))
}

fn kernel(netlist: &str, n: usize) -> anyhow::Result<NeuronKernel> {
    let c = circuit::load(&resolve_netlist(Path::new(netlist))?, &[])?;
    Ok(NeuronKernel::new(&c, n, NeuronOptions::from_circuit(&c))?)
}

/// The general engine on one MIF neuron at 2.5 nA for 0.2 s: ns per
/// simulated millisecond.
fn general_mif() -> anyhow::Result<f64> {
    let path = resolve_netlist(Path::new("mif.cir"))?;
    let ov = [
        ("iin".to_string(), Expr::Num(2.5e-9)),
        ("tstop".to_string(), Expr::Num(0.2)),
    ];
    let start = Instant::now();
    analysis::run_tran_file(&path, &ov)?;
    Ok(start.elapsed().as_secs_f64() * 1e9 / (0.2 / DT))
}

/// ngspice -b on the same MIF neuron (tests/ngspice/mif.cir), when ngspice
/// is on PATH and the repository's ngspice netlists are at hand.
fn ngspice_mif() -> Option<f64> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ngspice");
    let text = std::fs::read_to_string(dir.join("mif.cir")).ok()?;
    let work = std::env::temp_dir().join(format!("circsnn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).ok()?;
    std::fs::copy(dir.join("tsm.lib"), work.join("tsm.lib")).ok()?;
    let tstop = 0.05;
    let text = text
        .replace("OUTFILE", "ng.dat")
        .replace(".param tstop=0.2", &format!(".param tstop={tstop}"));
    std::fs::write(work.join("run.cir"), text).ok()?;
    let start = Instant::now();
    let status = std::process::Command::new("ngspice")
        .arg("-b")
        .arg("run.cir")
        .current_dir(&work)
        .output()
        .ok()?;
    let wall = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&work);
    status.status.success().then(|| wall * 1e9 / (tstop / DT))
}

pub fn run(args: BenchArgs, quiet: bool) -> anyhow::Result<()> {
    let n = args.neurons.max(1);
    let inputs = heterogeneous_inputs(n);
    let mut rows: Vec<(&str, f64, Option<(u64, f64)>)> = Vec::new();
    let mut measure = |name: &'static str, model: &mut dyn NeuronModel| -> anyhow::Result<()> {
        if !quiet && !args.json {
            eprintln!("timing {name} ...");
        }
        let (ns, steps, rate) = time_model(model, &inputs, args.seconds)?;
        rows.push((name, ns, Some((steps, rate))));
        Ok(())
    };
    measure("lif_abstract", &mut Lif::circuit_equivalent(n))?;
    // Same rheobase as the LIF and a gain that gives 455 Hz at 3 nA.
    measure("if_abstract", &mut SpikingRelu::new(n, 4.55e11, 2e-9)?)?;
    measure("mif_analytic", &mut AnalyticMif::default_mif(n))?;
    measure("lif_circuit", &mut kernel("lif.cir", n)?)?;
    measure("mif_circuit", &mut kernel("mif.cir", n)?)?;
    measure("mif2_circuit", &mut kernel("mif2.cir", n)?)?;
    if !args.no_single {
        rows.push(("mif_general", general_mif()?, None));
        if let Some(ns) = ngspice_mif() {
            rows.push(("mif_ngspice", ns, None));
        }
    }
    let base = rows[0].1;
    let threads = rayon::current_num_threads();
    if args.json {
        let models: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, ns, extra)| {
                let mut v = json!({ "ns_per_neuron_step": ns, "ratio_vs_lif_abstract": ns / base });
                if let Some((steps, rate)) = extra {
                    v["steps_timed"] = json!(steps);
                    v["mean_rate_hz"] = json!(rate);
                }
                (name.to_string(), v)
            })
            .collect();
        let report = json!({
            "threads": threads,
            "neurons": n,
            "dt_s": DT,
            "input_distribution": INPUT_DISTRIBUTION,
            "models": models,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{n} neurons, dt = 1 ms, {threads} threads; inputs: {INPUT_DISTRIBUTION}");
        println!(
            "{:<14} {:>16} {:>14} {:>12}",
            "model", "ns/neuron-step", "× lif_abstract", "rate (Hz)"
        );
        for (name, ns, extra) in &rows {
            let rate = extra.map_or("-".to_string(), |(_, r)| format!("{r:.1}"));
            println!("{name:<14} {ns:>16.1} {:>14.1} {rate:>12}", ns / base);
        }
        println!("(mif_general and mif_ngspice: one MIF neuron at 2.5 nA, per simulated ms)");
    }
    Ok(())
}
