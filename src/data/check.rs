//! Integrity report of the datasets on disk (`circsnn data check`).

use super::digest::{content_name, Algorithm};
use super::fetch::read_sha256sums;
use super::locate::find_all;
use super::{
    known_content_digest, load_from, read_file, DataError, DatasetKind, DatasetLocation, Split,
    Variant,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Checksum verdict for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// Matches the published digest (or the one recorded at download).
    Ok { algorithm: &'static str },
    Mismatch {
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    /// No digest is known for this file.
    Unknown,
    /// The file could not be read or decompressed (see the message).
    Unreadable(String),
}

/// One file of a dataset folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    pub path: PathBuf,
    pub checksum: ChecksumStatus,
}

/// One split: its image count, or why it cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitCheck {
    pub split: Split,
    pub result: Result<usize, String>,
}

/// The report for one dataset folder.
#[derive(Clone, Debug)]
pub struct LocationCheck {
    pub location: DatasetLocation,
    pub splits: Vec<SplitCheck>,
    pub files: Vec<FileCheck>,
    /// The folder exists but holds none of the dataset's files (not an error).
    pub empty: bool,
}

impl LocationCheck {
    /// No unreadable, corrupt or missing file and no checksum mismatch.
    pub fn is_ok(&self) -> bool {
        self.splits.iter().all(|s| s.result.is_ok())
            && self.files.iter().all(|f| {
                matches!(
                    f.checksum,
                    ChecksumStatus::Ok { .. } | ChecksumStatus::Unknown
                )
            })
    }
}

/// Loads both splits of a folder (the same code path as training uses) and
/// verifies each file's checksum.
pub fn check_location(location: &DatasetLocation) -> LocationCheck {
    let paths = location.present_files();
    if paths.is_empty() {
        return LocationCheck {
            location: location.clone(),
            splits: Vec::new(),
            files: Vec::new(),
            empty: true,
        };
    }
    let splits = [Split::Train, Split::Test]
        .into_iter()
        .map(|split| {
            let result = match location.split_files(split) {
                Err(DataError::NotFound { searched, .. }) => Err(searched
                    .into_iter()
                    .map(|(_, why)| why)
                    .collect::<Vec<_>>()
                    .join("; ")),
                Err(e) => Err(e.to_string()),
                Ok(_) => load_from(location, split)
                    .map(|d| d.len())
                    .map_err(|e| e.to_string()),
            };
            SplitCheck { split, result }
        })
        .collect();
    let recorded = if location.variant == Variant::Cifar10 {
        read_sha256sums(&location.dir).unwrap_or_default()
    } else {
        Vec::new()
    };
    let files = paths
        .par_iter()
        .map(|path| FileCheck {
            path: path.clone(),
            checksum: checksum_status(location.variant, path, &recorded),
        })
        .collect();
    LocationCheck {
        location: location.clone(),
        splits,
        files,
        empty: false,
    }
}

fn checksum_status(variant: Variant, path: &Path, recorded: &[(String, String)]) -> ChecksumStatus {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = content_name(&file_name);
    let content = match read_file(path) {
        Ok(c) => c,
        Err(e) => return ChecksumStatus::Unreadable(e.to_string()),
    };
    if let Some(digest) = known_content_digest(variant, &name) {
        return match digest.verify(&content) {
            Ok(()) => ChecksumStatus::Ok {
                algorithm: digest.algorithm.name(),
            },
            Err(actual) => ChecksumStatus::Mismatch {
                algorithm: digest.algorithm.name(),
                expected: digest.describe(),
                actual,
            },
        };
    }
    if let Some((expected, _)) = recorded.iter().find(|(_, n)| *n == name) {
        let actual = Algorithm::Sha256.hex(&content);
        return if &actual == expected {
            ChecksumStatus::Ok {
                algorithm: "SHA-256 (recorded at download)",
            }
        } else {
            ChecksumStatus::Mismatch {
                algorithm: "SHA-256 (recorded at download)",
                expected: expected.clone(),
                actual,
            }
        };
    }
    ChecksumStatus::Unknown
}

/// Checks every dataset folder found in the search path: for each dataset,
/// the folders found and the places searched that do not exist.
pub fn check_all(cli: Option<&Path>) -> Vec<(DatasetKind, Vec<LocationCheck>, Vec<PathBuf>)> {
    DatasetKind::ALL
        .iter()
        .map(|&kind| {
            let (found, absent) = find_all(kind, cli);
            (kind, found.iter().map(check_location).collect(), absent)
        })
        .collect()
}
