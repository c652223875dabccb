//! MNIST-style IDX files (unsigned-byte data, big-endian header) and gzip.

use super::{DataError, FormatError};
use std::io::Read;

/// Magic of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

const IMAGES_HEADER_LEN: usize = 16;
const LABELS_HEADER_LEN: usize = 8;
/// Largest label allowed: every supported dataset has ten classes.
const MAX_LABEL: u8 = 9;

/// The content of an IDX image file: `count` images of `rows × cols` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn check_magic(
    bytes: &[u8],
    expected: u32,
    what: &'static str,
    name: &str,
) -> Result<(), DataError> {
    let found = be_u32(bytes, 0);
    if found != expected {
        return Err(DataError::format(
            name,
            FormatError::BadMagic {
                expected,
                found,
                what,
            },
        ));
    }
    Ok(())
}

/// Validates the header and length of an IDX image file and returns
/// `(count, rows, cols)`.
fn images_header(bytes: &[u8], name: &str) -> Result<(usize, usize, usize), DataError> {
    if bytes.len() < IMAGES_HEADER_LEN {
        // A short file with a wrong magic is reported as a wrong magic: that is
        // the more telling problem (e.g. a labels file given as images).
        if bytes.len() >= 4 {
            check_magic(
                bytes,
                IDX_IMAGES_MAGIC,
                "IDX unsigned-byte images, 3 dimensions",
                name,
            )?;
        }
        return Err(DataError::format(
            name,
            FormatError::ShortHeader {
                needed: IMAGES_HEADER_LEN,
                len: bytes.len(),
            },
        ));
    }
    check_magic(
        bytes,
        IDX_IMAGES_MAGIC,
        "IDX unsigned-byte images, 3 dimensions",
        name,
    )?;
    let (count, rows, cols) = (be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12));
    let pixels = (count as u64)
        .checked_mul(rows as u64)
        .and_then(|v| v.checked_mul(cols as u64))
        .and_then(|v| usize::try_from(v).ok())
        .and_then(|v| v.checked_add(IMAGES_HEADER_LEN))
        .ok_or_else(|| DataError::format(name, FormatError::SizeOverflow { count, rows, cols }))?;
    let (count, rows, cols) = (count as usize, rows as usize, cols as usize);
    let actual = bytes.len();
    let expected = pixels;
    if actual < expected {
        return Err(DataError::format(
            name,
            FormatError::TruncatedImages {
                count,
                rows,
                cols,
                expected,
                actual,
            },
        ));
    }
    if actual > expected {
        return Err(DataError::format(
            name,
            FormatError::OversizedImages {
                count,
                rows,
                cols,
                expected,
                actual,
            },
        ));
    }
    Ok((count, rows, cols))
}

/// Validates the header, length and label values of an IDX label file and
/// returns the number of labels.
fn labels_header(bytes: &[u8], name: &str) -> Result<usize, DataError> {
    if bytes.len() < LABELS_HEADER_LEN {
        if bytes.len() >= 4 {
            check_magic(
                bytes,
                IDX_LABELS_MAGIC,
                "IDX unsigned-byte labels, 1 dimension",
                name,
            )?;
        }
        return Err(DataError::format(
            name,
            FormatError::ShortHeader {
                needed: LABELS_HEADER_LEN,
                len: bytes.len(),
            },
        ));
    }
    check_magic(
        bytes,
        IDX_LABELS_MAGIC,
        "IDX unsigned-byte labels, 1 dimension",
        name,
    )?;
    let count = be_u32(bytes, 4) as usize;
    let expected = count.saturating_add(LABELS_HEADER_LEN);
    let actual = bytes.len();
    if actual < expected {
        return Err(DataError::format(
            name,
            FormatError::TruncatedLabels {
                count,
                expected,
                actual,
            },
        ));
    }
    if actual > expected {
        return Err(DataError::format(
            name,
            FormatError::OversizedLabels {
                count,
                expected,
                actual,
            },
        ));
    }
    check_labels(&bytes[LABELS_HEADER_LEN..], name)?;
    Ok(count)
}

pub(crate) fn check_labels(labels: &[u8], name: &str) -> Result<(), DataError> {
    // One pass with no branch per byte: the common case is all labels valid.
    if labels.iter().copied().max().unwrap_or(0) > MAX_LABEL {
        let index = labels.iter().position(|&l| l > MAX_LABEL).unwrap_or(0);
        return Err(DataError::format(
            name,
            FormatError::LabelOutOfRange {
                index,
                label: labels[index],
            },
        ));
    }
    Ok(())
}

/// Parses an IDX image file (already decompressed) held in memory. `name`
/// is used in error messages.
pub fn parse_idx_images(bytes: &[u8], name: &str) -> Result<IdxImages, DataError> {
    let (count, rows, cols) = images_header(bytes, name)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[IMAGES_HEADER_LEN..].to_vec(),
    })
}

/// Like [`parse_idx_images`], reusing the buffer (no second copy of the pixels).
pub(crate) fn parse_idx_images_owned(
    mut bytes: Vec<u8>,
    name: &str,
) -> Result<IdxImages, DataError> {
    let (count, rows, cols) = images_header(&bytes, name)?;
    bytes.drain(..IMAGES_HEADER_LEN);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes,
    })
}

/// Parses an IDX label file (already decompressed) held in memory; every
/// label must lie in `0..=9`.
pub fn parse_idx_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    labels_header(bytes, name)?;
    Ok(bytes[LABELS_HEADER_LEN..].to_vec())
}

pub(crate) fn parse_idx_labels_owned(mut bytes: Vec<u8>, name: &str) -> Result<Vec<u8>, DataError> {
    labels_header(&bytes, name)?;
    bytes.drain(..LABELS_HEADER_LEN);
    Ok(bytes)
}

/// Decompresses a whole gzip file (one or more members) held in memory.
pub fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    // The trailer's ISIZE (size mod 2^32 of the last member) is a good guess
    // of the output size; it is capped so that a forged trailer cannot make us
    // reserve gigabytes up front (deflate expands at most ~1032×).
    let hint = if bytes.len() >= 18 {
        let n = bytes.len();
        let isize =
            u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize;
        isize.min(bytes.len().saturating_mul(1032)).min(1 << 30)
    } else {
        0
    };
    let mut out = Vec::with_capacity(hint);
    flate2::bufread::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            file: name.to_string(),
            source,
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn images_file(count: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(&rows.to_be_bytes());
        v.extend_from_slice(&cols.to_be_bytes());
        v.extend((0..count * rows * cols).map(|i| (i % 251) as u8));
        v
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    #[test]
    fn parses_valid_files() {
        let img = parse_idx_images(&images_file(3, 2, 4), "x").unwrap();
        assert_eq!((img.count, img.rows, img.cols), (3, 2, 4));
        assert_eq!(img.pixels.len(), 24);
        assert_eq!(img.pixels[23], 23);
        let owned = parse_idx_images_owned(images_file(3, 2, 4), "x").unwrap();
        assert_eq!(owned, img);
        assert_eq!(
            parse_idx_labels(&labels_file(&[0, 9, 5]), "y").unwrap(),
            vec![0, 9, 5]
        );
    }

    #[test]
    fn rejects_bad_headers_and_lengths() {
        let mut wrong = images_file(2, 2, 2);
        wrong[3] = 0x01;
        let e = parse_idx_images(&wrong, "imgs").unwrap_err().to_string();
        assert_eq!(e, "imgs: wrong magic number 0x00000801: expected 0x00000803 (IDX unsigned-byte images, 3 dimensions)");

        let full = images_file(10, 28, 28);
        let e = parse_idx_images(&full[..7000], "t10k")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t10k: truncated: header says 10 images of 28×28 (7856 bytes) but the file holds 7000 bytes");
        let mut long = full.clone();
        long.push(0);
        let e = parse_idx_images(&long, "t").unwrap_err().to_string();
        assert!(e.starts_with("t: trailing bytes:"), "{e}");
        let e = parse_idx_images(&full[..10], "t").unwrap_err().to_string();
        assert!(e.contains("too short for the 16-byte IDX header"), "{e}");

        let mut huge = images_file(0, 0, 0);
        huge[4..16].copy_from_slice(&[0xff; 12]);
        let e = parse_idx_images(&huge, "h").unwrap_err().to_string();
        assert!(e.contains("truncated") || e.contains("overflow"), "{e}");

        let e = parse_idx_labels(&labels_file(&[1, 10, 2]), "lab")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "lab: label 10 of item 1 is out of range 0..=9");
        let e = parse_idx_labels(&labels_file(&[1, 2])[..9], "lab")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "lab: truncated: header says 2 labels (10 bytes) but the file holds 9 bytes"
        );
        let e = parse_idx_labels(&images_file(1, 1, 1), "lab")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong magic number 0x00000803"), "{e}");
    }

    #[test]
    fn gunzip_round_trip_and_errors() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let data = images_file(5, 3, 3);
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, "a.gz").unwrap(), data);
        let e = gunzip(&data, "b.gz").unwrap_err().to_string();
        assert!(e.starts_with("b.gz: not a valid gzip stream:"), "{e}");
        assert!(gunzip(&gz[..gz.len() - 6], "c.gz").is_err());
        let mut flipped = gz.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        assert!(gunzip(&flipped, "d.gz").is_err());
    }
}
