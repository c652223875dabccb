//! A small streaming reader for tar archives (ustar, GNU and pax headers),
//! enough to unpack `cifar-10-binary.tar.gz` without holding it in memory.

use std::io::{self, Read};

const BLOCK: usize = 512;

/// What is wrong with a tar archive.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("not a valid tar archive: truncated header at byte {offset}")]
    TruncatedHeader { offset: u64 },
    #[error("not a valid tar archive: header checksum mismatch at byte {offset}")]
    BadChecksum { offset: u64 },
    #[error("not a valid tar archive: unreadable size field in the header at byte {offset}")]
    BadSize { offset: u64 },
    #[error("truncated archive: member {name} should hold {size} bytes but the archive ends after {read}")]
    TruncatedMember { name: String, size: u64, read: u64 },
    #[error("cannot read the archive: {0}")]
    Read(io::Error),
}

/// Calls `visit(path, size, data)` for every regular file of the archive, in
/// order. `data` yields at most `size` bytes; whatever the visitor leaves
/// unread is skipped. Directories, links and other entries are skipped.
pub fn for_each_member<R, E, F>(mut reader: R, mut visit: F) -> Result<(), E>
where
    R: Read,
    E: From<TarError>,
    F: FnMut(&str, u64, &mut dyn Read) -> Result<(), E>,
{
    let mut offset: u64 = 0;
    // Long names announced by a GNU `L` entry or a pax `x` entry apply to the
    // next header only.
    let mut next_name: Option<String> = None;
    let mut header = [0u8; BLOCK];
    loop {
        let got = read_full(&mut reader, &mut header).map_err(TarError::Read)?;
        if got == 0 || header.iter().all(|&b| b == 0) {
            // End of archive: an all-zero block (or a plain end of stream).
            return Ok(());
        }
        if got < BLOCK {
            return Err(TarError::TruncatedHeader { offset }.into());
        }
        if !checksum_ok(&header) {
            return Err(TarError::BadChecksum { offset }.into());
        }
        let size = parse_size(&header[124..136]).ok_or(TarError::BadSize { offset })?;
        let header_name = header_path(&header);
        let name = next_name.take().unwrap_or(header_name);
        offset += BLOCK as u64;
        let typeflag = header[156];
        let mut data = (&mut reader).take(size);
        match typeflag {
            b'0' | 0 | b'7' => visit(&name, size, &mut data)?,
            b'L' => {
                next_name = Some(
                    read_small(&mut data, &name, size)?
                        .split('\0')
                        .next()
                        .unwrap_or("")
                        .to_string(),
                )
            }
            b'x' => next_name = pax_path(&read_small(&mut data, &name, size)?),
            _ => {}
        }
        // Skip what the visitor left, then the padding to the next block.
        io::copy(&mut data, &mut io::sink()).map_err(TarError::Read)?;
        let consumed = size - data.limit();
        if consumed < size {
            return Err(TarError::TruncatedMember {
                name,
                size,
                read: consumed,
            }
            .into());
        }
        let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let skipped =
            io::copy(&mut (&mut reader).take(padding), &mut io::sink()).map_err(TarError::Read)?;
        if skipped < padding {
            return Err(TarError::TruncatedMember {
                name,
                size,
                read: size,
            }
            .into());
        }
        offset += size + padding;
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a small metadata entry (long name or pax records), at most 64 KiB.
fn read_small(data: &mut impl Read, name: &str, size: u64) -> Result<String, TarError> {
    let mut bytes = Vec::new();
    data.take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(TarError::Read)?;
    if (bytes.len() as u64) < size.min(64 * 1024) {
        return Err(TarError::TruncatedMember {
            name: name.to_string(),
            size,
            read: bytes.len() as u64,
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `path` record of a pax extended header ("<len> path=<value>\n" records).
fn pax_path(records: &str) -> Option<String> {
    records.lines().find_map(|line| {
        let (_, kv) = line.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

fn header_path(h: &[u8; BLOCK]) -> String {
    let name = c_string(&h[0..100]);
    // ustar ("ustar\0") and GNU ("ustar ") headers; only ustar has a prefix.
    let prefix = if &h[257..263] == b"ustar\0" {
        c_string(&h[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn checksum_ok(h: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    // The checksum is computed with its own field read as eight spaces.
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u64
            } else {
                b as u64
            }
        })
        .sum();
    sum == stored
}

fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        // GNU base-256: big-endian binary in the remaining bytes.
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    parse_octal(field)
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let digits = std::str::from_utf8(&text).ok()?.trim();
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ustar writer for tests.
    pub(crate) fn ustar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in members {
            let mut h = [0u8; BLOCK];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[108..116].copy_from_slice(b"0000000\0");
            h[116..124].copy_from_slice(b"0000000\0");
            h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[136..148].copy_from_slice(b"00000000000\0");
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].copy_from_slice(b"        ");
            let sum: u64 = h.iter().map(|&b| b as u64).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    fn members(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TarError> {
        let mut found = Vec::new();
        for_each_member(archive, |name: &str, _size, data: &mut dyn Read| {
            let mut v = Vec::new();
            data.read_to_end(&mut v).map_err(TarError::Read)?;
            found.push((name.to_string(), v));
            Ok::<(), TarError>(())
        })?;
        Ok(found)
    }

    #[test]
    fn reads_members_and_detects_damage() {
        let a = ustar(&[("dir/a.bin", &[1, 2, 3]), ("dir/b.txt", &[7u8; 600])]);
        let m = members(&a).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], ("dir/a.bin".to_string(), vec![1, 2, 3]));
        assert_eq!(m[1].1.len(), 600);

        let e = members(&a[..1536 + 100]).unwrap_err().to_string();
        assert!(e.contains("member dir/b.txt should hold 600 bytes"), "{e}");
        let e = members(&a[..300]).unwrap_err().to_string();
        assert!(e.contains("truncated header"), "{e}");
        let mut bad = a.clone();
        bad[10] ^= 1;
        assert!(members(&bad).unwrap_err().to_string().contains("checksum"));
    }

    #[test]
    fn reads_archives_made_by_system_tar() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("x.bin"), vec![5u8; 3073 * 2]).unwrap();
        let long = "n".repeat(120);
        std::fs::write(src.join(&long), b"long").unwrap();
        let archive = dir.path().join("a.tar");
        let status = std::process::Command::new("tar")
            .arg("cf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .arg("cifar-10-batches-bin")
            .status();
        let Ok(status) = status else {
            eprintln!("skipping: no `tar` program to make a reference archive");
            return;
        };
        assert!(status.success());
        let bytes = std::fs::read(&archive).unwrap();
        let mut m = members(&bytes).unwrap();
        m.sort();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, format!("cifar-10-batches-bin/{long}"));
        assert_eq!(m[0].1, b"long");
        assert_eq!(
            m[1],
            (
                "cifar-10-batches-bin/x.bin".to_string(),
                vec![5u8; 3073 * 2]
            )
        );
    }
}
