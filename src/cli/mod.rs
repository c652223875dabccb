//! Command-line interface: one file per subcommand; `main.rs` stays thin.

pub mod bench;
pub mod classify;
pub mod classify_checkpoint;
pub mod data;
pub mod merge;
pub mod rate;
pub mod sim;
pub mod sweep;
pub mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "circsnn",
    version,
    about = "Spiking neural networks whose neurons are real circuits"
)]
pub struct Cli {
    /// Worker threads for every parallel stage (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// No progress bars or chatter on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Simulate a netlist with the general circuit engine (.op, .dc, .tran).
    Sim(sim::SimArgs),
    /// Steady-state f–I curves of neuron netlists with the batched engine.
    Rate(rate::RateArgs),
    /// Cost per neuron per network step of every neuron model (34k neurons).
    Bench(bench::BenchArgs),
    /// Sweep .params, model parameters and element values over a grid.
    Sweep(sweep::SweepArgs),
    /// Merge the shard outputs of a job array (sweep results.jsonl or classify report.json).
    Merge(merge::MergeArgs),
    /// Download datasets and check the ones on disk.
    Data(data::DataArgs),
    /// Train an ANN on a neuron circuit's own rate curve (or a baseline activation).
    Train(train::TrainArgs),
    /// Classify test images with the spiking network (circuit, rate or abstract neurons).
    Classify(classify::ClassifyArgs),
}

/// Parse arguments, run the subcommand, and turn errors into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
        {
            eprintln!("error: cannot set up {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(args, cli.quiet),
        Command::Rate(args) => rate::run(args, cli.quiet),
        Command::Bench(args) => bench::run(args, cli.quiet),
        Command::Sweep(args) => sweep::run(args, cli.quiet),
        Command::Merge(args) => merge::run(args, cli.quiet),
        Command::Data(args) => data::run(args, cli.quiet),
        Command::Train(args) => train::run(args, cli.quiet),
        Command::Classify(args) => classify::run(args, cli.quiet),
    }
}

/// Parse `--shard k/n`: shard k (1-based) of n, as job-array indices 1..n.
pub fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(k, n)| {
        Some((
            k.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((k, n)) if n > 0 && (1..=n).contains(&k) => Ok((k, n)),
        _ => anyhow::bail!("--shard {text}: expected k/n with 1 <= k <= n (e.g. 1/4)"),
    }
}

/// Device-to-device variation (`--sigma`), shared by `classify` and `sweep`.
#[derive(clap::Args, Debug)]
pub struct VariationArgs {
    /// Relative spread of a varied value: NAME=5% or NAME=0.05; repeatable.
    /// In `sweep`, a list (NAME=0%,5%,10%) makes the spread a grid axis
    /// `sigma:NAME`.
    #[arg(long = "sigma", value_name = "NAME=SIGMA")]
    pub sigmas: Vec<String>,
    /// Devices drawn per chip: every neuron of the network is given one of
    /// them at random.
    #[arg(long, default_value_t = 16)]
    pub devices: usize,
    /// Seed of the draws and of the neurons' devices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distribution of the factors: gaussian (1 + σz) or lognormal (e^{σz}).
    #[arg(long, value_parser = ["gaussian", "lognormal"], default_value = "gaussian")]
    pub distribution: String,
}
