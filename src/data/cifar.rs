//! CIFAR-10 "binary version" batches: records of one label byte and
//! 3×32×32 pixel bytes (red, green, blue planes), no header.

use super::idx::check_labels;
use super::{DataError, FormatError};

/// Bytes per record: one label and 3 planes of 32×32.
pub const CIFAR_RECORD_LEN: usize = 1 + 3 * 32 * 32;
/// Records in each official batch file.
pub(crate) const RECORDS_PER_BATCH: usize = 10_000;

/// The records of one batch file, split into labels and pixels
/// (`len × 3072` bytes, channel planes, row-major).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarBatch {
    pub labels: Vec<u8>,
    pub pixels: Vec<u8>,
}

impl CifarBatch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Parses one batch file (already decompressed) held in memory: its length
/// must be a non-zero multiple of 3073 and every label in `0..=9`.
pub fn parse_cifar_batch(bytes: &[u8], name: &str) -> Result<CifarBatch, DataError> {
    if bytes.is_empty() {
        return Err(DataError::format(name, FormatError::Empty));
    }
    if bytes.len() % CIFAR_RECORD_LEN != 0 {
        return Err(DataError::format(
            name,
            FormatError::CifarLength {
                len: bytes.len(),
                record: CIFAR_RECORD_LEN,
            },
        ));
    }
    let count = bytes.len() / CIFAR_RECORD_LEN;
    let mut labels = Vec::with_capacity(count);
    let mut pixels = Vec::with_capacity(count * (CIFAR_RECORD_LEN - 1));
    for record in bytes.chunks_exact(CIFAR_RECORD_LEN) {
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    check_labels(&labels, name)?;
    Ok(CifarBatch { labels, pixels })
}

/// Parses `batches.meta.txt`: ten class names, one per line, in label order.
/// Empty lines (the official file ends with some) are skipped.
pub fn parse_cifar_meta(bytes: &[u8], name: &str) -> Result<Vec<String>, DataError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| DataError::format(name, FormatError::NotUtf8))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != 10 {
        return Err(DataError::format(
            name,
            FormatError::ClassNameCount { found: names.len() },
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            v.push(l);
            v.extend((0..CIFAR_RECORD_LEN - 1).map(|j| ((i * 7 + j) % 256) as u8));
        }
        v
    }

    #[test]
    fn splits_labels_and_planes() {
        let b = parse_cifar_batch(&batch(&[6, 9, 0]), "b").unwrap();
        assert_eq!(b.labels, vec![6, 9, 0]);
        assert_eq!(b.pixels.len(), 3 * 3072);
        // First pixel of record 1 is byte 1 of that record.
        assert_eq!(b.pixels[3072], 7);
        assert_eq!(b.pixels[3072 + 1024], ((7 + 1024) % 256) as u8);
    }

    #[test]
    fn rejects_bad_lengths_and_labels() {
        let good = batch(&[1, 2]);
        let e = parse_cifar_batch(&good[..good.len() - 1], "data_batch_1.bin")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data_batch_1.bin: length 6145 bytes is not a multiple of the 3073-byte record (label + 3×32×32 pixels)"
        );
        let e = parse_cifar_batch(&batch(&[1, 12]), "t")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t: label 12 of item 1 is out of range 0..=9");
        assert!(parse_cifar_batch(&[], "e")
            .unwrap_err()
            .to_string()
            .contains("holds no images"));
    }

    #[test]
    fn meta_skips_blank_lines() {
        let text = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n\n";
        let names = parse_cifar_meta(text.as_bytes(), "m").unwrap();
        assert_eq!(names.len(), 10);
        assert_eq!(names[9], "truck");
        let e = parse_cifar_meta(b"a\nb\n", "m").unwrap_err().to_string();
        assert_eq!(e, "m: lists 2 class names, expected 10");
        assert!(parse_cifar_meta(&[0xff, 0xfe], "m").is_err());
    }
}
