//! The real datasets in the shared folder (`$CIRCSNN_DATA` or
//! `../shared/datasets`): counts and label histograms as documented in its
//! README. Skipped, with a notice, when the folder is absent.

mod common;
use circsnn::data::{self, ChecksumStatus, DatasetKind, Split};
use common::shared_datasets;

#[test]
fn mnist_counts_and_histograms() {
    let Some(root) = shared_datasets() else {
        return;
    };
    let test = data::load(DatasetKind::Mnist, Split::Test, Some(&root)).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.images.len(), 10_000 * 784);
    assert_eq!(test.variant, "mnist");
    assert_eq!(
        test.class_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The first test digit is a 7.
    assert_eq!(test.labels[0], 7);
    let train = data::load(DatasetKind::Mnist, Split::Train, Some(&root)).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(
        train.class_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    // Background is 0 and ink reaches 255.
    assert_eq!(train.image(0)[0], 0);
    assert_eq!(*train.images.iter().max().unwrap(), 255);
}

#[test]
fn fashion_mnist_counts_and_histograms() {
    let Some(root) = shared_datasets() else {
        return;
    };
    if !root.join("fashion-mnist").is_dir() {
        eprintln!("skipping: no fashion-mnist folder");
        return;
    }
    let test = data::load(DatasetKind::FashionMnist, Split::Test, Some(&root)).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.variant, "fashion-mnist");
    assert_eq!(test.class_counts(), vec![1000; 10]);
    assert_eq!(test.class_names[9], "Ankle boot");
    let train = data::load(DatasetKind::FashionMnist, Split::Train, Some(&root)).unwrap();
    assert_eq!(train.class_counts(), vec![6000; 10]);
}

#[test]
fn cifar10_jpeg_counts_order_and_variant() {
    let Some(root) = shared_datasets() else {
        return;
    };
    if !root.join("cifar10-jpeg").is_dir() || root.join("cifar10").is_dir() {
        eprintln!("skipping: the shared folder has no cifar10-jpeg/ (or an official cifar10/)");
        return;
    }
    let test = data::load(DatasetKind::Cifar10, Split::Test, Some(&root)).unwrap();
    assert_eq!(test.variant, "cifar10-jpeg");
    assert_eq!(test.len(), 10_000);
    assert_eq!((test.channels, test.height, test.width), (3, 32, 32));
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // The substitute's test labels are interleaved: record j has label j % 10.
    assert!(test
        .labels
        .iter()
        .enumerate()
        .all(|(j, &l)| l as usize == j % 10));
    assert_eq!(test.class_names, DatasetKind::Cifar10.default_class_names());

    let train = data::load(DatasetKind::Cifar10, Split::Train, Some(&root)).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(train.class_counts(), vec![5000; 10]);
    assert_eq!(&train.labels[..10], &[6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    // Batch 1 histogram from the README.
    let mut batch1 = [0usize; 10];
    for &l in &train.labels[..10_000] {
        batch1[l as usize] += 1;
    }
    assert_eq!(
        batch1,
        [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    );
}

#[test]
fn shared_folders_pass_the_check() {
    let Some(root) = shared_datasets() else {
        return;
    };
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        let dir = root.join(kind.name());
        if !dir.is_dir() {
            continue;
        }
        let variant = data::Variant::for_kind(kind)[0];
        let report = data::check_location(&data::DatasetLocation { kind, variant, dir });
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.files.len(), 4);
        assert!(
            report
                .files
                .iter()
                .all(|f| matches!(f.checksum, ChecksumStatus::Ok { .. })),
            "{report:?}"
        );
    }
}
