//! Image datasets: MNIST-style IDX and CIFAR-10 binary readers, the lookup of
//! data folders, verified downloads and integrity checks.
//!
//! Layout on disk: one data folder (`--data DIR`, `$CIRCSNN_DATA` or `./data`)
//! with one sub-folder per dataset: `mnist/`, `fashion-mnist/`, `cifar10/`
//! (the official binary batches) or `cifar10-jpeg/` (a lossy substitute in the
//! same layout). Every file may be stored plain or gzip-compressed (`.gz`).

mod check;
mod cifar;
mod digest;
mod fetch;
mod idx;
mod locate;
mod tar;

pub use check::{check_all, check_location, ChecksumStatus, FileCheck, LocationCheck, SplitCheck};
pub use cifar::{parse_cifar_batch, parse_cifar_meta, CifarBatch, CIFAR_RECORD_LEN};
pub use digest::{known_content_digest, Algorithm, ContentDigest};
pub use fetch::{
    default_base_url, fetch, fetch_files, remote_files, resolve_base_url, FetchOptions,
    FetchOutcome, FetchedFile, FileAction, RemoteFile, Unpack, Verify, BASE_URL_ENV, SHA256SUMS,
};
pub use idx::{
    gunzip, parse_idx_images, parse_idx_labels, IdxImages, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
pub use locate::{
    data_search_path, find_all, locate, resolve_data_dir, DatasetLocation, SplitFiles, Variant,
    DATA_ENV, SYSTEM_FASHION_MNIST_DIR,
};
pub use tar::{for_each_member, TarError};

use rayon::prelude::*;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which dataset.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 3] = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
    ];

    /// The name used on the command line and as the folder name.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// `(channels, height, width)` of every image.
    pub fn image_shape(self) -> (usize, usize, usize) {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => (1, 28, 28),
            DatasetKind::Cifar10 => (3, 32, 32),
        }
    }

    /// Number of images in the official split.
    pub fn official_len(self, split: Split) -> usize {
        match (self, split) {
            (DatasetKind::Mnist | DatasetKind::FashionMnist, Split::Train) => 60_000,
            (DatasetKind::Cifar10, Split::Train) => 50_000,
            (_, Split::Test) => 10_000,
        }
    }

    /// Class names in label order.
    pub fn default_class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            DatasetKind::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetKind::Cifar10 => &[
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        let wanted = s.trim().to_ascii_lowercase();
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted || (wanted == "cifar-10" && *k == DatasetKind::Cifar10))
            .ok_or_else(|| DataError::UnknownDataset(s.to_string()))
    }
}

/// Train or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(DataError::UnknownSplit(s.to_string())),
        }
    }
}

/// A loaded split: `images` holds `len × channels × height × width` bytes
/// (channel planes, row-major), `labels` one class index per image.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// Which files were read: `mnist`, `fashion-mnist`, `cifar10` (official) or
    /// `cifar10-jpeg` (the lossy substitute). Reports always carry it.
    pub variant: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Image `i` as `f32` in `[0, 1]` (pixel / 255), same layout as [`Dataset::image`].
    pub fn to_f32(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.image_len()];
        self.write_f32(i, &mut out);
        out
    }

    /// Writes image `i` normalised to `[0, 1]` into `out` (length [`Dataset::image_len`]).
    pub fn write_f32(&self, i: usize, out: &mut [f32]) {
        normalize_into(self.image(i), out);
    }

    /// Images `range` normalised to `[0, 1]`, one after another
    /// (`range.len() × image_len` values), ready to be a batch matrix.
    pub fn images_f32(&self, range: Range<usize>) -> Vec<f32> {
        let n = self.image_len();
        let bytes = &self.images[range.start * n..range.end * n];
        let mut out = vec![0.0; bytes.len()];
        // Large batches are converted in parallel, chunked per image.
        out.par_chunks_mut(n.max(1))
            .zip(bytes.par_chunks(n.max(1)))
            .for_each(|(o, b)| normalize_into(b, o));
        out
    }

    /// A copy of images and labels `range` (same kind, variant and class
    /// names). Panics if `range` goes past the end, as slicing does.
    pub fn subset(&self, range: Range<usize>) -> Dataset {
        let n = self.image_len();
        Dataset {
            kind: self.kind,
            variant: self.variant.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            images: self.images[range.start * n..range.end * n].to_vec(),
            labels: self.labels[range].to_vec(),
            class_names: self.class_names.clone(),
        }
    }

    /// A copy holding the images at `indices`, in that order (e.g. a shuffled or
    /// stratified selection).
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let n = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            kind: self.kind,
            variant: self.variant.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Number of images per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        // Sized for every class name and every label actually present.
        let max_label = self
            .labels
            .iter()
            .copied()
            .max()
            .map_or(0, |l| l as usize + 1);
        let mut counts = vec![0usize; self.class_names.len().max(max_label)];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

fn normalize_into(bytes: &[u8], out: &mut [f32]) {
    // A table gives the correctly rounded b / 255 at the cost of a lookup.
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| std::array::from_fn(|b| b as f32 / 255.0));
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = table[b as usize];
    }
}

/// What is wrong inside a file whose bytes could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("wrong magic number 0x{found:08x}: expected 0x{expected:08x} ({what})")]
    BadMagic {
        expected: u32,
        found: u32,
        what: &'static str,
    },
    #[error("truncated: {len} bytes is too short for the {needed}-byte IDX header")]
    ShortHeader { needed: usize, len: usize },
    #[error("header sizes overflow: {count} × {rows} × {cols}")]
    SizeOverflow { count: u32, rows: u32, cols: u32 },
    #[error("truncated: header says {count} images of {rows}×{cols} ({expected} bytes) but the file holds {actual} bytes")]
    TruncatedImages {
        count: usize,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },
    #[error("trailing bytes: header says {count} images of {rows}×{cols} ({expected} bytes) but the file holds {actual} bytes")]
    OversizedImages {
        count: usize,
        rows: usize,
        cols: usize,
        expected: usize,
        actual: usize,
    },
    #[error("truncated: header says {count} labels ({expected} bytes) but the file holds {actual} bytes")]
    TruncatedLabels {
        count: usize,
        expected: usize,
        actual: usize,
    },
    #[error("trailing bytes: header says {count} labels ({expected} bytes) but the file holds {actual} bytes")]
    OversizedLabels {
        count: usize,
        expected: usize,
        actual: usize,
    },
    #[error("images are {rows}×{cols}, expected {expected_rows}×{expected_cols}")]
    WrongImageSize {
        rows: usize,
        cols: usize,
        expected_rows: usize,
        expected_cols: usize,
    },
    #[error("label {label} of item {index} is out of range 0..=9")]
    LabelOutOfRange { index: usize, label: u8 },
    #[error("holds {labels} labels but {images_file} holds {images} images")]
    CountMismatch {
        labels: usize,
        images: usize,
        images_file: String,
    },
    #[error("holds no images")]
    Empty,
    #[error(
        "length {len} bytes is not a multiple of the {record}-byte record (label + 3×32×32 pixels)"
    )]
    CifarLength { len: usize, record: usize },
    #[error("holds {found} records, expected {expected}")]
    CifarRecordCount { found: usize, expected: usize },
    #[error("lists {found} class names, expected 10")]
    ClassNameCount { found: usize },
    #[error("class names are not valid UTF-8 text")]
    NotUtf8,
}

/// Errors of the data module. Every message names the file (or URL, or
/// dataset) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a valid gzip stream: {source}")]
    Gzip {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {problem}")]
    Format { file: String, problem: FormatError },
    #[error("{dataset} {split} split not found. Searched:\n{}\nDownload it with `circsnn data fetch {dataset}` (add `--data DIR` to choose where)", list_searched(searched))]
    NotFound {
        dataset: DatasetKind,
        split: Split,
        searched: Vec<(PathBuf, String)>,
    },
    #[error("unknown dataset `{0}`: expected mnist, fashion-mnist or cifar10")]
    UnknownDataset(String),
    #[error("unknown split `{0}`: expected train or test")]
    UnknownSplit(String),
    #[error("{url}: download failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{url}: server answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("{file}: checksum mismatch: expected {algorithm} {expected}, got {actual}")]
    ChecksumMismatch {
        file: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{file}: {source}")]
    Archive { file: String, source: TarError },
}

fn list_searched(searched: &[(PathBuf, String)]) -> String {
    searched
        .iter()
        .map(|(p, why)| format!("  {} ({why})", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl DataError {
    pub(crate) fn format(file: impl fmt::Display, problem: FormatError) -> DataError {
        DataError::Format {
            file: file.to_string(),
            problem,
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Loads one split of a dataset, searching the data folders in order
/// (see [`data_search_path`]).
pub fn load(
    kind: DatasetKind,
    split: Split,
    data_dir: Option<&Path>,
) -> Result<Dataset, DataError> {
    let location = locate(kind, split, data_dir)?;
    load_from(&location, split)
}

/// Loads one split from a located dataset folder.
pub fn load_from(location: &DatasetLocation, split: Split) -> Result<Dataset, DataError> {
    let kind = location.kind;
    let (channels, height, width) = kind.image_shape();
    let files = location.split_files(split)?;
    let (images, labels, class_names) = match &files {
        SplitFiles::Idx { images, labels } => {
            let (images_result, labels_result) =
                rayon::join(|| read_idx_images(images), || read_idx_labels(labels));
            let image_data = images_result?;
            let label_data = labels_result?;
            let images_name = images.display().to_string();
            if (image_data.rows, image_data.cols) != (height, width) {
                return Err(DataError::format(
                    &images_name,
                    FormatError::WrongImageSize {
                        rows: image_data.rows,
                        cols: image_data.cols,
                        expected_rows: height,
                        expected_cols: width,
                    },
                ));
            }
            if label_data.len() != image_data.count {
                return Err(DataError::format(
                    labels.display(),
                    FormatError::CountMismatch {
                        labels: label_data.len(),
                        images: image_data.count,
                        images_file: images_name,
                    },
                ));
            }
            if image_data.count == 0 {
                return Err(DataError::format(images_name, FormatError::Empty));
            }
            (image_data.pixels, label_data, kind.default_class_names())
        }
        SplitFiles::Cifar { batches, meta } => {
            let results: Vec<Result<CifarBatch, DataError>> = batches
                .par_iter()
                .map(|path| read_cifar_batch(path))
                .collect();
            let mut images = Vec::new();
            let mut labels = Vec::new();
            // Report the first bad file in batch order, whatever finished first.
            for (path, result) in batches.iter().zip(results) {
                let batch = result?;
                // CIFAR files have no header: the record count is the only guard
                // against a copy cut at a record boundary.
                if batch.len() != cifar::RECORDS_PER_BATCH {
                    return Err(DataError::format(
                        path.display(),
                        FormatError::CifarRecordCount {
                            found: batch.len(),
                            expected: cifar::RECORDS_PER_BATCH,
                        },
                    ));
                }
                if images.is_empty() {
                    images.reserve_exact(batch.pixels.len() * batches.len());
                    labels.reserve_exact(batch.labels.len() * batches.len());
                }
                images.extend_from_slice(&batch.pixels);
                labels.extend_from_slice(&batch.labels);
            }
            let class_names = match meta {
                Some(path) => {
                    let bytes = read_file(path)?;
                    parse_cifar_meta(&bytes, &path.display().to_string())?
                }
                None => kind.default_class_names(),
            };
            (images, labels, class_names)
        }
    };
    Ok(Dataset {
        kind,
        variant: location.variant.name().to_string(),
        channels,
        height,
        width,
        images,
        labels,
        class_names,
    })
}

/// Reads a whole file, decompressing it when its name ends in `.gz`.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if is_gz(path) {
        gunzip(&raw, &path.display().to_string())
    } else {
        Ok(raw)
    }
}

pub(crate) fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    let bytes = read_file(path)?;
    idx::parse_idx_images_owned(bytes, &path.display().to_string())
}

fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_file(path)?;
    idx::parse_idx_labels_owned(bytes, &path.display().to_string())
}

fn read_cifar_batch(path: &Path) -> Result<CifarBatch, DataError> {
    let bytes = read_file(path)?;
    parse_cifar_batch(&bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            kind: DatasetKind::Mnist,
            variant: "mnist".into(),
            channels: 1,
            height: 2,
            width: 2,
            images: vec![0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8],
            labels: vec![3, 9, 3],
            class_names: DatasetKind::Mnist.default_class_names(),
        }
    }

    #[test]
    fn kind_and_split_parse_from_strings() {
        assert_eq!("mnist".parse::<DatasetKind>().unwrap(), DatasetKind::Mnist);
        assert_eq!(
            "Fashion-MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert_eq!(
            "cifar10".parse::<DatasetKind>().unwrap(),
            DatasetKind::Cifar10
        );
        let err = "imagenet".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(
            err.contains("imagenet") && err.contains("fashion-mnist"),
            "{err}"
        );
        assert_eq!("test".parse::<Split>().unwrap(), Split::Test);
        assert!("val".parse::<Split>().is_err());
        for k in DatasetKind::ALL {
            assert_eq!(k.to_string().parse::<DatasetKind>().unwrap(), k);
            assert_eq!(
                <DatasetKind as clap::ValueEnum>::from_str(k.name(), false).unwrap(),
                k
            );
        }
    }

    #[test]
    fn f32_views_are_normalised() {
        let d = tiny();
        assert_eq!(d.to_f32(0), vec![0.0, 1.0, 0.2, 0.4]);
        let batch = d.images_f32(1..3);
        assert_eq!(batch.len(), 8);
        assert!((batch[0] - 1.0 / 255.0).abs() < 1e-7);
        assert!((batch[7] - 8.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn subset_select_and_counts() {
        let d = tiny();
        let s = d.subset(1..3);
        assert_eq!(s.len(), 2);
        assert_eq!(s.labels, vec![9, 3]);
        assert_eq!(s.image(0), &[1, 2, 3, 4]);
        let p = d.select(&[2, 0]);
        assert_eq!(p.labels, vec![3, 3]);
        assert_eq!(p.image(0), &[5, 6, 7, 8]);
        assert_eq!(p.image(1), &[0, 255, 51, 102]);
        let counts = d.class_counts();
        assert_eq!(counts[3], 2);
        assert_eq!(counts[9], 1);
        assert_eq!(counts.iter().sum::<usize>(), 3);
    }
}
