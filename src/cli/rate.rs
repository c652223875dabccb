//! `circsnn rate NETLIST...`: steady-state f–I curves from the batched
//! engine, all points of a netlist at once, with rheobase and saturation.

use super::sim::{parse_overrides, resolve_netlist};
use crate::neuron::{rate_curve_cached, RateCurveData};
use crate::output::line_figure;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RateArgs {
    /// Neuron netlists (with .NEURON INPUT= and .SPIKE); bare names are looked up in netlists/.
    #[arg(required = true)]
    pub netlists: Vec<PathBuf>,
    /// Lowest input current (A).
    #[arg(long, default_value_t = 0.0)]
    pub imin: f64,
    /// Highest input current (A).
    #[arg(long, default_value_t = 3e-9)]
    pub imax: f64,
    /// Number of evenly spaced currents from imin to imax.
    #[arg(long, default_value_t = 31)]
    pub points: usize,
    /// Explicit currents (A), comma-separated; overrides imin/imax/points.
    #[arg(long, value_delimiter = ',')]
    pub currents: Vec<f64>,
    /// Override a .param of every netlist: NAME=VALUE; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "out/rate")]
    pub out: PathBuf,
}

/// The current grid the arguments ask for.
pub fn currents(args: &RateArgs) -> anyhow::Result<Vec<f64>> {
    if !args.currents.is_empty() {
        if args.currents.iter().any(|c| !c.is_finite()) {
            bail!("--currents: every current must be a finite number");
        }
        return Ok(args.currents.clone());
    }
    if args.points < 2 {
        bail!("--points must be at least 2, got {}", args.points);
    }
    if !(args.imax > args.imin) || !args.imin.is_finite() || !args.imax.is_finite() {
        bail!(
            "--imax ({}) must be above --imin ({})",
            args.imax,
            args.imin
        );
    }
    let step = (args.imax - args.imin) / (args.points - 1) as f64;
    Ok((0..args.points)
        .map(|k| args.imin + k as f64 * step)
        .collect())
}

pub fn run(args: RateArgs, quiet: bool) -> anyhow::Result<()> {
    let grid = currents(&args)?;
    let overrides = parse_overrides(&args.params)?;
    let mut curves: Vec<RateCurveData> = Vec::new();
    for n in &args.netlists {
        let path = resolve_netlist(n)?;
        curves.push(rate_curve_cached(&path, &overrides, &grid, quiet)?);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let csv_path = args.out.join("rate.csv");
    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&csv_path)
            .with_context(|| format!("cannot write {}", csv_path.display()))?,
    );
    writeln!(csv, "netlist,current_a,rate_hz")?;
    for c in &curves {
        for (i, r) in c.currents_a.iter().zip(&c.rates_hz) {
            writeln!(csv, "{},{i:e},{r}", c.netlist)?;
        }
    }
    csv.flush()?;
    let json_path = args.out.join("rate.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&curves)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;

    let na: Vec<Vec<f64>> = curves
        .iter()
        .map(|c| c.currents_a.iter().map(|i| i * 1e9).collect())
        .collect();
    let series: Vec<(&str, &[f64], &[f64])> = curves
        .iter()
        .zip(&na)
        .map(|(c, x)| (c.netlist.as_str(), x.as_slice(), c.rates_hz.as_slice()))
        .collect();
    line_figure(
        &args.out.join("rate.svg"),
        "steady-state f–I curves",
        "input current (nA)",
        "rate (Hz)",
        &series,
    )?;

    if !quiet {
        for c in &curves {
            let rheo = c.rheobase_a.map_or("none in range".to_string(), |r| {
                format!("{:.4} nA", r * 1e9)
            });
            println!(
                "{}: rheobase {rheo}, max rate {:.1} Hz, slope at top {:.1} Hz/nA",
                c.netlist,
                c.max_rate_hz,
                c.slope_at_top_hz_per_a * 1e-9
            );
        }
        println!(
            "wrote rate.csv, rate.json, rate.svg to {}",
            args.out.display()
        );
    }
    Ok(())
}
