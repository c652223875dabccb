//! Where datasets live: the data folder search path and the files of a split.

use super::{DataError, DatasetKind, Split};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Environment variable naming the data folder.
pub const DATA_ENV: &str = "CIRCSNN_DATA";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const SYSTEM_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Sub-folder that `tar xzf cifar-10-binary.tar.gz` creates.
const CIFAR_TAR_FOLDER: &str = "cifar-10-batches-bin";

/// Which set of files a dataset folder holds. The name is also the folder name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Mnist,
    FashionMnist,
    /// The official CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-10 decoded from a JPEG copy: right labels, lossy pixels, test
    /// records in a different order (see the datasets README).
    Cifar10Jpeg,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mnist => "mnist",
            Variant::FashionMnist => "fashion-mnist",
            Variant::Cifar10 => "cifar10",
            Variant::Cifar10Jpeg => "cifar10-jpeg",
        }
    }

    pub fn kind(self) -> DatasetKind {
        match self {
            Variant::Mnist => DatasetKind::Mnist,
            Variant::FashionMnist => DatasetKind::FashionMnist,
            Variant::Cifar10 | Variant::Cifar10Jpeg => DatasetKind::Cifar10,
        }
    }

    /// Variants of a dataset in order of preference.
    pub fn for_kind(kind: DatasetKind) -> &'static [Variant] {
        match kind {
            DatasetKind::Mnist => &[Variant::Mnist],
            DatasetKind::FashionMnist => &[Variant::FashionMnist],
            DatasetKind::Cifar10 => &[Variant::Cifar10, Variant::Cifar10Jpeg],
        }
    }
}

/// The folder data is downloaded to: `--data DIR`, else `$CIRCSNN_DATA`, else `./data`.
pub fn resolve_data_dir(cli: Option<&Path>) -> PathBuf {
    roots(cli, std::env::var_os(DATA_ENV)).remove(0)
}

/// Every data folder searched: `--data DIR` alone when it is given (an
/// explicit folder is never silently bypassed), otherwise `$CIRCSNN_DATA`
/// then `./data` (duplicates removed). The first folder holding a dataset wins.
pub fn data_search_path(cli: Option<&Path>) -> Vec<PathBuf> {
    roots(cli, std::env::var_os(DATA_ENV))
}

fn roots(cli: Option<&Path>, env: Option<OsString>) -> Vec<PathBuf> {
    if let Some(dir) = cli {
        return vec![dir.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = Vec::new();
    let candidates = cli
        .map(Path::to_path_buf)
        .into_iter()
        .chain(env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .chain(std::iter::once(PathBuf::from("data")));
    for dir in candidates {
        let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !out
            .iter()
            .any(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()) == key)
        {
            out.push(dir);
        }
    }
    out
}

/// A dataset folder found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetLocation {
    pub kind: DatasetKind,
    pub variant: Variant,
    pub dir: PathBuf,
}

/// The files that make up one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitFiles {
    Idx {
        images: PathBuf,
        labels: PathBuf,
    },
    /// Batches in record order; `meta` is `batches.meta.txt` when present.
    Cifar {
        batches: Vec<PathBuf>,
        meta: Option<PathBuf>,
    },
}

impl SplitFiles {
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            SplitFiles::Idx { images, labels } => vec![images, labels],
            SplitFiles::Cifar { batches, meta } => batches
                .iter()
                .map(PathBuf::as_path)
                .chain(meta.as_deref())
                .collect(),
        }
    }
}

/// IDX file stems of a split: `(images, labels)`.
pub(crate) fn idx_stems(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// CIFAR batch stems of a split, in record order.
pub(crate) fn cifar_stems(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &[
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        Split::Test => &["test_batch.bin"],
    }
}

pub(crate) const CIFAR_META: &str = "batches.meta.txt";

impl DatasetLocation {
    /// The files of `split`, or an error naming this folder and what is missing.
    pub fn split_files(&self, split: Split) -> Result<SplitFiles, DataError> {
        self.find_split_files(split)
            .map_err(|missing| DataError::NotFound {
                dataset: self.kind,
                split,
                searched: vec![(self.dir.clone(), missing)],
            })
    }

    fn find_split_files(&self, split: Split) -> Result<SplitFiles, String> {
        let mut missing = Vec::new();
        let files = match self.kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => {
                let (images, labels) = idx_stems(split);
                let images_path = self.find_idx(images);
                let labels_path = self.find_idx(labels);
                if images_path.is_none() {
                    missing.push(format!("{images}[.gz]"));
                }
                if labels_path.is_none() {
                    missing.push(format!("{labels}[.gz]"));
                }
                match (images_path, labels_path) {
                    (Some(images), Some(labels)) => Some(SplitFiles::Idx { images, labels }),
                    _ => None,
                }
            }
            DatasetKind::Cifar10 => {
                let mut batches = Vec::new();
                for stem in cifar_stems(split) {
                    match self.find_cifar(stem) {
                        Some(p) => batches.push(p),
                        None => missing.push(format!("{stem}[.gz]")),
                    }
                }
                let meta = self.find_cifar_plain(CIFAR_META);
                missing
                    .is_empty()
                    .then_some(SplitFiles::Cifar { batches, meta })
            }
        };
        files.ok_or_else(|| format!("missing {}", missing.join(", ")))
    }

    /// An IDX file by its official stem, plain or gzip, also accepting the
    /// `train-images.idx3-ubyte` spelling found inside the official archives.
    pub(crate) fn find_idx(&self, stem: &str) -> Option<PathBuf> {
        let dotted = stem.replacen("-idx", ".idx", 1);
        [
            stem.to_string(),
            format!("{stem}.gz"),
            dotted.clone(),
            format!("{dotted}.gz"),
        ]
        .iter()
        .map(|n| self.dir.join(n))
        .find(|p| p.is_file())
    }

    fn cifar_dirs(&self) -> [PathBuf; 2] {
        [self.dir.clone(), self.dir.join(CIFAR_TAR_FOLDER)]
    }

    pub(crate) fn find_cifar(&self, stem: &str) -> Option<PathBuf> {
        self.cifar_dirs()
            .iter()
            .flat_map(|d| [d.join(stem), d.join(format!("{stem}.gz"))])
            .find(|p| p.is_file())
    }

    pub(crate) fn find_cifar_plain(&self, name: &str) -> Option<PathBuf> {
        self.cifar_dirs()
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }

    /// Every dataset file of either split that exists in the folder.
    pub fn present_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for split in [Split::Train, Split::Test] {
            match self.kind {
                DatasetKind::Mnist | DatasetKind::FashionMnist => {
                    let (images, labels) = idx_stems(split);
                    found.extend(self.find_idx(images));
                    found.extend(self.find_idx(labels));
                }
                DatasetKind::Cifar10 => {
                    found.extend(cifar_stems(split).iter().filter_map(|s| self.find_cifar(s)))
                }
            }
        }
        if self.kind == DatasetKind::Cifar10 {
            found.extend(self.find_cifar_plain(CIFAR_META));
        }
        found
    }

    /// Whether the folder holds every file of both splits.
    pub fn is_complete(&self) -> bool {
        [Split::Train, Split::Test]
            .iter()
            .all(|&s| self.find_split_files(s).is_ok())
    }
}

/// Candidate dataset folders for `kind`, in search order.
fn candidates(
    kind: DatasetKind,
    cli: Option<&Path>,
    env: Option<OsString>,
) -> Vec<DatasetLocation> {
    let mut out = Vec::new();
    for root in roots(cli, env) {
        for &variant in Variant::for_kind(kind) {
            out.push(DatasetLocation {
                kind,
                variant,
                dir: root.join(variant.name()),
            });
        }
    }
    if kind == DatasetKind::FashionMnist {
        out.push(DatasetLocation {
            kind,
            variant: Variant::FashionMnist,
            dir: PathBuf::from(SYSTEM_FASHION_MNIST_DIR),
        });
    }
    out
}

/// The first folder holding every file of `split` of `kind`; the error lists
/// every place searched and why it did not qualify.
pub fn locate(
    kind: DatasetKind,
    split: Split,
    cli: Option<&Path>,
) -> Result<DatasetLocation, DataError> {
    locate_in(kind, split, cli, std::env::var_os(DATA_ENV))
}

fn locate_in(
    kind: DatasetKind,
    split: Split,
    cli: Option<&Path>,
    env: Option<OsString>,
) -> Result<DatasetLocation, DataError> {
    let mut searched = Vec::new();
    for loc in candidates(kind, cli, env) {
        if !loc.dir.is_dir() {
            searched.push((loc.dir, "does not exist".to_string()));
            continue;
        }
        match loc.find_split_files(split) {
            Ok(_) => return Ok(loc),
            Err(why) => searched.push((loc.dir, why)),
        }
    }
    Err(DataError::NotFound {
        dataset: kind,
        split,
        searched,
    })
}

/// Every existing folder of `kind` (complete or not), in search order, and the
/// places searched that do not exist.
pub fn find_all(kind: DatasetKind, cli: Option<&Path>) -> (Vec<DatasetLocation>, Vec<PathBuf>) {
    let (found, absent): (Vec<_>, Vec<_>) = candidates(kind, cli, std::env::var_os(DATA_ENV))
        .into_iter()
        .partition(|l| l.dir.is_dir());
    (found, absent.into_iter().map(|l| l.dir).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn search_order_is_cli_alone_else_env_then_local() {
        let r = roots(
            Some(Path::new("/nonexistent/a")),
            Some("/nonexistent/b".into()),
        );
        assert_eq!(r, vec![PathBuf::from("/nonexistent/a")]);
        let r = roots(None, Some("/nonexistent/b".into()));
        assert_eq!(
            r,
            vec![PathBuf::from("/nonexistent/b"), PathBuf::from("data")]
        );
        let r = roots(None, Some("".into()));
        assert_eq!(r, vec![PathBuf::from("data")]);
    }

    #[test]
    fn finds_first_complete_folder_and_prefers_official_cifar() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // `a` holds only the MNIST test images: incomplete for the test split.
        touch(&a.path().join("mnist/t10k-images-idx3-ubyte.gz"));
        touch(&b.path().join("mnist/t10k-images-idx3-ubyte"));
        touch(&b.path().join("mnist/t10k-labels.idx1-ubyte.gz"));
        // An explicit --data folder is searched alone: the incomplete `a`
        // is an error even though $CIRCSNN_DATA (`b`) has the files.
        let err = locate_in(
            DatasetKind::Mnist,
            Split::Test,
            Some(a.path()),
            Some(b.path().into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&a.path().join("mnist").display().to_string()),
            "{err}"
        );
        assert!(!err.contains(&b.path().display().to_string()), "{err}");
        // Without --data, $CIRCSNN_DATA is searched, then ./data.
        let loc = locate_in(DatasetKind::Mnist, Split::Test, None, Some(b.path().into())).unwrap();
        assert_eq!(loc.dir, b.path().join("mnist"));
        match loc.split_files(Split::Test).unwrap() {
            SplitFiles::Idx { images, labels } => {
                assert_eq!(images, b.path().join("mnist/t10k-images-idx3-ubyte"));
                assert_eq!(labels, b.path().join("mnist/t10k-labels.idx1-ubyte.gz"));
            }
            other => panic!("{other:?}"),
        }
        let err = locate_in(
            DatasetKind::Mnist,
            Split::Train,
            None,
            Some(b.path().into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&b.path().join("mnist").display().to_string()),
            "{err}"
        );
        assert!(
            err.contains("missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]"),
            "{err}"
        );
        assert!(err.contains("circsnn data fetch mnist"), "{err}");
        assert!(err.contains("data/mnist (does not exist)"), "{err}");

        for stem in cifar_stems(Split::Test) {
            touch(&a.path().join("cifar10-jpeg").join(format!("{stem}.gz")));
            touch(&a.path().join("cifar10/cifar-10-batches-bin").join(stem));
        }
        let loc = locate_in(DatasetKind::Cifar10, Split::Test, Some(a.path()), None).unwrap();
        assert_eq!(loc.variant, Variant::Cifar10);
        std::fs::remove_dir_all(a.path().join("cifar10")).unwrap();
        let loc = locate_in(DatasetKind::Cifar10, Split::Test, Some(a.path()), None).unwrap();
        assert_eq!(loc.variant, Variant::Cifar10Jpeg);
        assert!(!loc.is_complete());
    }

    #[test]
    fn fashion_mnist_falls_back_to_the_system_folder() {
        let c = candidates(DatasetKind::FashionMnist, None, None);
        assert_eq!(
            c.last().unwrap().dir,
            PathBuf::from(SYSTEM_FASHION_MNIST_DIR)
        );
        assert_eq!(c.len(), 2);
    }
}
