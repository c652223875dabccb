//! Checksums: the published digests of the decompressed dataset files and
//! hex-digest helpers.
//!
//! Digests are of the *content* (after gzip decompression), so a file is
//! recognised whether it is stored plain, as the official `.gz`, or as a
//! re-compressed `.gz` (Debian's Fashion-MNIST `.gz` files differ from
//! Zalando's only in their gzip headers).

use super::Variant;
use md5::Md5;
use sha2::{Digest, Sha256};

/// Hash algorithm of a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    pub fn hex(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(bytes)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(bytes)),
        }
    }
}

/// The expected length and digest of a decompressed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentDigest {
    pub len: u64,
    pub algorithm: Algorithm,
    pub hex: &'static str,
}

impl ContentDigest {
    const fn md5(len: u64, hex: &'static str) -> ContentDigest {
        ContentDigest {
            len,
            algorithm: Algorithm::Md5,
            hex,
        }
    }

    /// `Ok(())` when `content` matches, else `Err(actual)` as "len / digest" text.
    pub fn verify(&self, content: &[u8]) -> Result<(), String> {
        let actual = self.algorithm.hex(content);
        if content.len() as u64 == self.len && actual == self.hex {
            Ok(())
        } else {
            Err(format!("{actual} ({} bytes)", content.len()))
        }
    }

    pub fn describe(&self) -> String {
        format!("{} ({} bytes)", self.hex, self.len)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The published digest of file `content_name` (the decompressed file name,
/// e.g. `train-images-idx3-ubyte` or `data_batch_1.bin`) of `variant`, if known.
/// The official CIFAR-10 `.bin` digests are not published; `circsnn data fetch`
/// records them in `cifar10/SHA256SUMS` from the verified archive instead.
pub fn known_content_digest(variant: Variant, content_name: &str) -> Option<ContentDigest> {
    let table: &[(&str, ContentDigest)] = match variant {
        Variant::Mnist => &[
            (
                "train-images-idx3-ubyte",
                ContentDigest::md5(47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
            ),
            (
                "train-labels-idx1-ubyte",
                ContentDigest::md5(60_008, "a25bea736e30d166cdddb491f175f624"),
            ),
            (
                "t10k-images-idx3-ubyte",
                ContentDigest::md5(7_840_016, "2646ac647ad5339dbf082846283269ea"),
            ),
            (
                "t10k-labels-idx1-ubyte",
                ContentDigest::md5(10_008, "27ae3e4e09519cfbb04c329615203637"),
            ),
        ],
        Variant::FashionMnist => &[
            (
                "train-images-idx3-ubyte",
                ContentDigest::md5(47_040_016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            ),
            (
                "train-labels-idx1-ubyte",
                ContentDigest::md5(60_008, "9018921c3c673c538a1fc5bad174d6f9"),
            ),
            (
                "t10k-images-idx3-ubyte",
                ContentDigest::md5(7_840_016, "8181f5470baa50b63fa0f6fddb340f0a"),
            ),
            (
                "t10k-labels-idx1-ubyte",
                ContentDigest::md5(10_008, "15d484375f8d13e6eb1aabb0c3f46965"),
            ),
        ],
        Variant::Cifar10 => &[],
        Variant::Cifar10Jpeg => &[
            (
                "data_batch_1.bin",
                ContentDigest::md5(30_730_000, "5a5142663b2c457eb7edf61944cf14cd"),
            ),
            (
                "data_batch_2.bin",
                ContentDigest::md5(30_730_000, "a03813b579934887e19fffa24f57e096"),
            ),
            (
                "data_batch_3.bin",
                ContentDigest::md5(30_730_000, "9338b8beb58f9f053aa7e7f6d2ca26a1"),
            ),
            (
                "data_batch_4.bin",
                ContentDigest::md5(30_730_000, "5d6a4b059305fb3437429da7d5355351"),
            ),
            (
                "data_batch_5.bin",
                ContentDigest::md5(30_730_000, "b543e7acd6f6cab339de5ace5ae323ae"),
            ),
            (
                "test_batch.bin",
                ContentDigest::md5(30_730_000, "c21be9aaa6c0cd3bb2d052f6936183e9"),
            ),
            (
                "batches.meta.txt",
                ContentDigest {
                    len: 60,
                    algorithm: Algorithm::Sha256,
                    hex: "2ce042b1e0b48db4bb214408e6414ba18b2731c24af244f2d6c112fddf31af00",
                },
            ),
        ],
    };
    table
        .iter()
        .find(|(n, _)| *n == content_name)
        .map(|(_, d)| *d)
}

/// The content name of a stored file: its name without `.gz`, with the
/// `train-images.idx3-ubyte` spelling mapped to the official stem.
pub(crate) fn content_name(file_name: &str) -> String {
    let base = file_name.strip_suffix(".gz").unwrap_or(file_name);
    base.replacen(".idx", "-idx", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digests_match_reference_values() {
        // RFC 1321 and FIPS 180-2 test vectors.
        assert_eq!(
            Algorithm::Md5.hex(b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Algorithm::Sha256.hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn table_lookup_and_verify() {
        assert_eq!(
            content_name("t10k-images.idx3-ubyte.gz"),
            "t10k-images-idx3-ubyte"
        );
        assert_eq!(content_name("data_batch_1.bin.gz"), "data_batch_1.bin");
        let d = known_content_digest(Variant::Mnist, "t10k-labels-idx1-ubyte").unwrap();
        assert_eq!(d.len, 10_008);
        assert!(known_content_digest(Variant::Cifar10, "data_batch_1.bin").is_none());
        let meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
        known_content_digest(Variant::Cifar10Jpeg, "batches.meta.txt")
            .unwrap()
            .verify(meta)
            .unwrap();
        assert!(d.verify(b"abc").unwrap_err().contains("(3 bytes)"));
    }
}
