//! Feeds arbitrary bytes to the dataset parsers: IDX images and labels,
//! CIFAR-10 batches and class names, gzip and tar. Any panic is a bug; so is
//! an `Ok` result that breaks the documented invariants.

#![no_main]

use circsnn::data;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fn parse_all(bytes: &[u8]) {
    if let Ok(images) = data::parse_idx_images(bytes, "fuzz") {
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
        assert_eq!(bytes.len(), 16 + images.pixels.len());
    }
    if let Ok(labels) = data::parse_idx_labels(bytes, "fuzz") {
        assert_eq!(bytes.len(), 8 + labels.len());
        assert!(labels.iter().all(|&l| l <= 9));
    }
    if let Ok(batch) = data::parse_cifar_batch(bytes, "fuzz") {
        assert_eq!(bytes.len(), batch.len() * data::CIFAR_RECORD_LEN);
        assert_eq!(
            batch.pixels.len(),
            batch.len() * (data::CIFAR_RECORD_LEN - 1)
        );
        assert!(batch.labels.iter().all(|&l| l <= 9));
    }
    if let Ok(names) = data::parse_cifar_meta(bytes, "fuzz") {
        assert_eq!(names.len(), 10);
        assert!(names.iter().all(|n| !n.is_empty()));
    }
}

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks the route so one target covers every layer.
    let Some((&route, rest)) = bytes.split_first() else {
        return;
    };
    match route % 3 {
        0 => parse_all(rest),
        1 => {
            if let Ok(content) = data::gunzip(rest, "fuzz.gz") {
                parse_all(&content);
            }
        }
        _ => {
            let _ = data::for_each_member(rest, |_: &str, size: u64, member: &mut dyn Read| {
                let mut content = Vec::new();
                member
                    .read_to_end(&mut content)
                    .map_err(data::TarError::Read)?;
                assert!(content.len() as u64 <= size);
                parse_all(&content);
                Ok::<(), data::TarError>(())
            });
        }
    }
});
