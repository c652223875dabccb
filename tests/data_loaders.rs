//! Dataset readers against damaged files: every error names the file and the
//! problem, and no input makes a reader panic.

use circsnn::data::{
    self, gunzip, parse_cifar_batch, parse_cifar_meta, parse_idx_images, parse_idx_labels,
    DatasetKind, Split, CIFAR_RECORD_LEN, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(&rows.to_be_bytes());
    v.extend_from_slice(&cols.to_be_bytes());
    v.extend((0..count * rows * cols).map(|i| (i * 37 % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn cifar_records(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(labels.len() * CIFAR_RECORD_LEN);
    for (i, &l) in labels.iter().enumerate() {
        v.push(l);
        v.extend((0..CIFAR_RECORD_LEN - 1).map(|j| ((i + j) % 256) as u8));
    }
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A data folder with a small valid MNIST test split (5 images).
fn mnist_dir() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte.gz"),
        gz(&idx_images(5, 28, 28)),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[7, 2, 1, 0, 4])),
    )
    .unwrap();
    root
}

fn load_err(root: &Path, kind: DatasetKind) -> String {
    match data::load(kind, Split::Test, Some(root)) {
        Ok(d) => panic!("expected an error, loaded {} images", d.len()),
        Err(e) => e.to_string(),
    }
}

fn assert_names(err: &str, file: &Path, problem: &str) {
    assert!(
        err.contains(&file.display().to_string()),
        "error does not name {}: {err}",
        file.display()
    );
    assert!(
        err.contains(problem),
        "error does not say `{problem}`: {err}"
    );
}

#[test]
fn valid_synthetic_mnist_loads() {
    let root = mnist_dir();
    let d = data::load(DatasetKind::Mnist, Split::Test, Some(root.path())).unwrap();
    assert_eq!(d.len(), 5);
    assert_eq!((d.channels, d.height, d.width), (1, 28, 28));
    assert_eq!(d.labels, vec![7, 2, 1, 0, 4]);
    assert_eq!(d.variant, "mnist");
    assert_eq!(d.image(1)[0], (784 * 37 % 256) as u8);
}

#[test]
fn corrupt_idx_files_are_reported_with_file_and_problem() {
    let root = mnist_dir();
    let images = root.path().join("mnist/t10k-images-idx3-ubyte.gz");
    let labels = root.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    let good_images = std::fs::read(&images).unwrap();
    let good_labels = std::fs::read(&labels).unwrap();
    let restore = || {
        std::fs::write(&images, &good_images).unwrap();
        std::fs::write(&labels, &good_labels).unwrap();
    };

    // Wrong magic: a label file where the images should be.
    std::fs::write(&images, gz(&idx_labels(&[1, 2, 3]))).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &images,
        "wrong magic number 0x00000801: expected 0x00000803",
    );
    restore();

    // Truncated content inside a valid gzip stream.
    std::fs::write(&images, gz(&idx_images(5, 28, 28)[..3000])).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &images,
        "truncated: header says 5 images of 28×28 (3936 bytes) but the file holds 3000 bytes",
    );
    restore();

    // A truncated gzip stream.
    std::fs::write(&images, &good_images[..good_images.len() / 2]).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &images,
        "not a valid gzip stream",
    );
    restore();

    // Not gzip at all despite the name.
    std::fs::write(&labels, idx_labels(&[7, 2, 1, 0, 4])).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &labels,
        "not a valid gzip stream",
    );
    restore();

    // Label out of range.
    std::fs::write(&labels, gz(&idx_labels(&[7, 2, 10, 0, 4]))).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &labels,
        "label 10 of item 2 is out of range 0..=9",
    );
    restore();

    // Images and labels disagree on the count.
    std::fs::write(&labels, gz(&idx_labels(&[7, 2, 1, 0]))).unwrap();
    let err = load_err(root.path(), DatasetKind::Mnist);
    assert_names(&err, &labels, "holds 4 labels but");
    assert!(
        err.contains(&format!("{} holds 5 images", images.display())),
        "{err}"
    );
    restore();

    // Wrong image size for MNIST.
    std::fs::write(&images, gz(&idx_images(5, 32, 32))).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &images,
        "images are 32×32, expected 28×28",
    );
    restore();

    // Trailing garbage after the declared data.
    let mut long = idx_images(5, 28, 28);
    long.extend_from_slice(b"junk");
    std::fs::write(&images, gz(&long)).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &images,
        "trailing bytes",
    );
    restore();

    // A plain (uncompressed) copy is preferred over the .gz and read as is.
    let plain = root.path().join("mnist/t10k-images-idx3-ubyte");
    std::fs::write(&plain, &idx_images(5, 28, 28)[..100]).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Mnist),
        &plain,
        "truncated",
    );
    std::fs::remove_file(&plain).unwrap();

    assert_eq!(
        data::load(DatasetKind::Mnist, Split::Test, Some(root.path()))
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn corrupt_cifar_files_are_reported_with_file_and_problem() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar10-jpeg");
    std::fs::create_dir(&dir).unwrap();
    let batch = dir.join("test_batch.bin");

    std::fs::write(
        &batch,
        &cifar_records(&[1, 2, 3])[..3 * CIFAR_RECORD_LEN - 5],
    )
    .unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Cifar10),
        &batch,
        "length 9214 bytes is not a multiple of the 3073-byte record",
    );

    std::fs::write(&batch, cifar_records(&[1, 2, 3])).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Cifar10),
        &batch,
        "holds 3 records, expected 10000",
    );

    let mut labels: Vec<u8> = (0..10_000).map(|i| (i % 10) as u8).collect();
    labels[4321] = 200;
    std::fs::write(&batch, cifar_records(&labels)).unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Cifar10),
        &batch,
        "label 200 of item 4321 is out of range 0..=9",
    );

    labels[4321] = 1;
    let batch_gz = dir.join("test_batch.bin.gz");
    std::fs::remove_file(&batch).unwrap();
    std::fs::write(&batch_gz, b"definitely not gzip").unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Cifar10),
        &batch_gz,
        "not a valid gzip stream",
    );

    std::fs::write(&batch_gz, gz(&cifar_records(&labels))).unwrap();
    let meta = dir.join("batches.meta.txt");
    std::fs::write(&meta, "airplane\nautomobile\n\n").unwrap();
    assert_names(
        &load_err(root.path(), DatasetKind::Cifar10),
        &meta,
        "lists 2 class names, expected 10",
    );

    // Valid now: ten names (blank lines skipped) and 10000 records.
    std::fs::write(&meta, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n\n").unwrap();
    let d = data::load(DatasetKind::Cifar10, Split::Test, Some(root.path())).unwrap();
    assert_eq!(d.len(), 10_000);
    assert_eq!(d.variant, "cifar10-jpeg");
    assert_eq!((d.channels, d.height, d.width), (3, 32, 32));
    assert_eq!(d.class_names[9], "j");
    assert_eq!(d.labels[4321], 1);
    assert_eq!(d.image(2)[0], 2);
    assert_eq!(d.class_counts(), vec![1000; 10]);

    // The official folder wins over the JPEG substitute when both exist.
    let official = root.path().join("cifar10");
    std::fs::create_dir(&official).unwrap();
    std::fs::write(
        official.join("test_batch.bin"),
        cifar_records(&vec![3; 10_000]),
    )
    .unwrap();
    let d = data::load(DatasetKind::Cifar10, Split::Test, Some(root.path())).unwrap();
    assert_eq!(d.variant, "cifar10");
    assert_eq!(d.class_counts()[3], 10_000);
    assert_eq!(d.class_names, DatasetKind::Cifar10.default_class_names());
}

#[test]
fn missing_dataset_lists_places_searched() {
    let root = tempfile::tempdir().unwrap();
    let err = load_err(root.path(), DatasetKind::Cifar10);
    assert!(
        err.contains(&root.path().join("cifar10").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&root.path().join("cifar10-jpeg").display().to_string()),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("circsnn data fetch cifar10"), "{err}");
}

/// xorshift64*: a tiny deterministic generator for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.below(5) {
        0 => v.truncate(rng.below(base.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            // Damage the header, where sizes live.
            let i = rng.below(16.min(v.len()).max(1));
            if i < v.len() {
                v[i] = rng.next() as u8;
            }
        }
        3 => v.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
        _ => {
            let cut = rng.below(v.len() + 1);
            v.drain(cut..(cut + rng.below(64)).min(v.len()));
        }
    }
    v
}

#[test]
fn random_damage_never_panics() {
    let images = idx_images(3, 4, 5);
    let labels = idx_labels(&[0, 9, 4]);
    let cifar = cifar_records(&[5, 0]);
    let meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n".to_vec();
    let bases = [
        images.clone(),
        labels.clone(),
        cifar.clone(),
        gz(&images),
        gz(&cifar),
        meta,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rejected = 0;
    for round in 0..600 {
        let base = &bases[round % bases.len()];
        let bytes = mutate(&mut rng, base);
        let name = format!("mutant-{round}");
        if let Ok(img) = parse_idx_images(&bytes, &name) {
            assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
        }
        if let Ok(l) = parse_idx_labels(&bytes, &name) {
            assert!(l.iter().all(|&x| x <= 9));
        }
        if let Ok(b) = parse_cifar_batch(&bytes, &name) {
            assert_eq!(b.pixels.len(), b.len() * (CIFAR_RECORD_LEN - 1));
            assert!(b.labels.iter().all(|&x| x <= 9));
        }
        if let Ok(names) = parse_cifar_meta(&bytes, &name) {
            assert_eq!(names.len(), 10);
        }
        match gunzip(&bytes, &name) {
            Ok(content) => {
                let _ = parse_idx_images(&content, &name);
                let _ = parse_cifar_batch(&content, &name);
            }
            Err(e) => {
                rejected += 1;
                assert!(
                    e.to_string()
                        .starts_with(&format!("{name}: not a valid gzip stream")),
                    "{e}"
                );
            }
        }
        let _ = data::for_each_member(&bytes[..], |_: &str, _, _: &mut dyn std::io::Read| {
            Ok::<(), data::TarError>(())
        });
    }
    // Most mutants are not gzip streams at all; the test must have exercised rejection.
    assert!(rejected > 300, "{rejected}");

    // The same damage through the file loader.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    let (images_path, labels_path): (PathBuf, PathBuf) = (
        dir.join("t10k-images-idx3-ubyte.gz"),
        dir.join("t10k-labels-idx1-ubyte"),
    );
    let good_images = gz(&idx_images(2, 28, 28));
    let good_labels = idx_labels(&[1, 2]);
    let mut failures = 0;
    for _ in 0..100 {
        std::fs::write(&images_path, mutate(&mut rng, &good_images)).unwrap();
        std::fs::write(&labels_path, mutate(&mut rng, &good_labels)).unwrap();
        match data::load(DatasetKind::Mnist, Split::Test, Some(root.path())) {
            Ok(d) => assert_eq!(d.images.len(), d.len() * 784),
            Err(e) => {
                failures += 1;
                let msg = e.to_string();
                assert!(
                    msg.contains(&images_path.display().to_string())
                        || msg.contains(&labels_path.display().to_string()),
                    "{msg}"
                );
            }
        }
    }
    assert!(failures > 50, "{failures}");
}
