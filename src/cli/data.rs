//! `circsnn data fetch|check`: download datasets and verify what is on disk.

use crate::data::{self, ChecksumStatus, DatasetKind, FetchOptions, FileAction, Variant};
use anyhow::bail;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download datasets from their public mirrors and verify their checksums.
    Fetch {
        /// Datasets to download.
        #[arg(value_enum, required = true)]
        datasets: Vec<DatasetKind>,
        /// Data folder (default: $CIRCSNN_DATA, else ./data).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Mirror to download from instead of the canonical one (also $CIRCSNN_DATA_BASE_URL).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// List the datasets found, their sizes and checksum status; fails if any is corrupt.
    Check {
        /// Data folder searched first (then $CIRCSNN_DATA, then ./data).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
}

pub fn run(args: DataArgs, quiet: bool) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Fetch {
            datasets,
            data,
            base_url,
        } => fetch(&datasets, data, base_url, quiet),
        DataCommand::Check { data } => check(data),
    }
}

fn fetch(
    datasets: &[DatasetKind],
    data: Option<PathBuf>,
    base_url: Option<String>,
    quiet: bool,
) -> anyhow::Result<()> {
    let options = FetchOptions {
        data_dir: data::resolve_data_dir(data.as_deref()),
        base_url,
        progress: !quiet && std::io::stderr().is_terminal(),
    };
    for &kind in datasets {
        if !quiet {
            eprintln!(
                "{kind}: from {}",
                data::resolve_base_url(kind, options.base_url.as_deref())
            );
        }
        let outcome = data::fetch(kind, &options)?;
        for f in &outcome.files {
            let what = match f.action {
                FileAction::AlreadyValid => "already present and valid".to_string(),
                FileAction::Downloaded { bytes } => {
                    format!("downloaded and verified ({bytes} bytes)")
                }
                FileAction::Unpacked { bytes } => {
                    format!("unpacked from the verified archive ({bytes} bytes)")
                }
            };
            println!("{}: {what}", f.path.display());
            for moved in &f.set_aside {
                println!("{}: corrupt copy set aside", moved.display());
            }
        }
    }
    Ok(())
}

fn check(data: Option<PathBuf>) -> anyhow::Result<()> {
    let mut problems = 0usize;
    for (kind, locations, absent) in data::check_all(data.as_deref()) {
        if locations.is_empty() {
            let searched: Vec<String> = absent.iter().map(|p| p.display().to_string()).collect();
            println!(
                "{kind}: not found (searched {}); get it with `circsnn data fetch {kind}`",
                searched.join(", ")
            );
            continue;
        }
        for report in locations {
            let loc = &report.location;
            let note = if loc.variant == Variant::Cifar10Jpeg {
                " (lossy JPEG substitute: pixels differ from the official files, test order differs)"
            } else {
                ""
            };
            if report.empty {
                println!("{kind}: {} is empty", loc.dir.display());
                continue;
            }
            println!(
                "{kind}: {} [variant {}{note}]",
                loc.dir.display(),
                loc.variant.name()
            );
            for s in &report.splits {
                match &s.result {
                    Ok(n) => {
                        let official = kind.official_len(s.split);
                        let note = if *n == official {
                            String::new()
                        } else {
                            format!(" (the official split has {official})")
                        };
                        println!("  {:5}  {n} images{note}", s.split.name())
                    }
                    Err(e) => println!(
                        "  {:5}  UNUSABLE: {}",
                        s.split.name(),
                        e.replace('\n', "\n         ")
                    ),
                }
            }
            for f in &report.files {
                let name = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let status = match &f.checksum {
                    ChecksumStatus::Ok { algorithm } => format!("OK ({algorithm})"),
                    ChecksumStatus::Mismatch {
                        algorithm,
                        expected,
                        actual,
                    } => {
                        format!("MISMATCH ({algorithm}): expected {expected}, got {actual}")
                    }
                    ChecksumStatus::Unknown => "unknown (no published checksum)".to_string(),
                    ChecksumStatus::Unreadable(e) => format!("UNREADABLE: {e}"),
                };
                println!("  {name:28} {status}");
            }
            if !report.is_ok() {
                problems += 1;
            }
        }
    }
    if problems > 0 {
        bail!("{problems} dataset folder(s) are incomplete or corrupt");
    }
    Ok(())
}
