//! `circsnn merge`: combine the shards of a job array into one result.

use crate::sweep::results;
use anyhow::bail;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard outputs: sweep `results.jsonl` files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged file.
    #[arg(long, short)]
    pub out: PathBuf,
}

pub fn run(args: MergeArgs, quiet: bool) -> anyhow::Result<()> {
    if let Some(p) = args
        .inputs
        .iter()
        .find(|p| p.extension().is_none_or(|e| e != "jsonl"))
    {
        bail!("{}: expected a sweep results .jsonl file", p.display());
    }
    let inputs: Vec<&std::path::Path> = args.inputs.iter().map(|p| p.as_path()).collect();
    let n = results::merge(&inputs, &args.out)?;
    if !quiet {
        println!("merged {n} points into {}", args.out.display());
    }
    Ok(())
}
