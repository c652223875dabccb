//! Image datasets: MNIST-style IDX and CIFAR-10 binary readers.

/// Which dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    Cifar10,
}

/// Train or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
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
}
