//! `circsnn merge`: combine the shard outputs of a job array into one
//! result: sweep `results.jsonl` files, or classify `report.json` files.

use crate::sweep::results;
use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard outputs: all sweep `results.jsonl` files, or all classify `report.json` files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged sweep file (default out/merged.jsonl), or the folder for the
    /// merged classify report (default out/classify/merged).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print a merged classify report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: MergeArgs, quiet: bool) -> anyhow::Result<()> {
    let is_jsonl = |p: &PathBuf| p.extension().is_some_and(|e| e == "jsonl");
    if args.inputs.iter().all(is_jsonl) {
        let out = args
            .out
            .unwrap_or_else(|| PathBuf::from("out/merged.jsonl"));
        let inputs: Vec<&std::path::Path> = args.inputs.iter().map(|p| p.as_path()).collect();
        let n = results::merge(&inputs, &out)?;
        if !quiet {
            println!("merged {n} points into {}", out.display());
        }
        return Ok(());
    }
    if args.inputs.iter().any(is_jsonl) {
        bail!("cannot merge sweep results (.jsonl) with classify reports in one call");
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("out/classify/merged"));
    super::classify::run_merge(&args.inputs, &out, args.json)
}
