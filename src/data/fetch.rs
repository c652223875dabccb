//! Verified downloads from the public mirrors.
//!
//! Every file is downloaded to a temporary file in its destination folder,
//! verified, synced and renamed into place, so a folder never holds a
//! half-written or unverified file: on any failure the temporary file is
//! removed. Files already present and valid are not downloaded again.

use super::digest::{content_name, Algorithm, ContentDigest};
use super::locate::{cifar_stems, idx_stems, CIFAR_META};
use super::tar::{for_each_member, TarError};
use super::{gunzip, known_content_digest, read_file, DataError, DatasetKind, Split, Variant};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Environment variable overriding the download base URL (`--base-url` wins).
pub const BASE_URL_ENV: &str = "CIRCSNN_DATA_BASE_URL";
/// Digests of the extracted members of an archive, in `sha256sum` format.
pub const SHA256SUMS: &str = "SHA256SUMS";

const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// Published MD5 of the official `cifar-10-binary.tar.gz`.
const CIFAR_ARCHIVE_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// The canonical public mirror of a dataset.
pub fn default_base_url(kind: DatasetKind) -> &'static str {
    match kind {
        // PyTorch's copy of LeCun's original files (same bytes).
        DatasetKind::Mnist => "https://ossci-datasets.s3.amazonaws.com/mnist",
        // Zalando's bucket; its website endpoint serves plain HTTP only, which is
        // acceptable because every file is verified against a known digest.
        DatasetKind::FashionMnist => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        DatasetKind::Cifar10 => "https://www.cs.toronto.edu/~kriz",
    }
}

/// `--base-url`, else `$CIRCSNN_DATA_BASE_URL`, else the canonical mirror.
pub fn resolve_base_url(kind: DatasetKind, cli: Option<&str>) -> String {
    let env = std::env::var(BASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let url = cli
        .map(str::to_string)
        .or(env)
        .unwrap_or_else(|| default_base_url(kind).to_string());
    url.trim().trim_end_matches('/').to_string()
}

/// How a downloaded file is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// The decompressed content must have this digest (the file is a `.gz`
    /// or plain file and is kept as downloaded).
    Content(ContentDigest),
    /// The downloaded bytes must have this digest.
    Download { algorithm: Algorithm, hex: String },
}

/// What to do with a verified download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unpack {
    /// Keep the file under its own name.
    Keep,
    /// A `.tar.gz`: write these members (matched by base name, wherever they
    /// sit in the archive) into the folder, record their SHA-256 digests in
    /// `SHA256SUMS`, and drop the archive.
    TarGz { members: Vec<String> },
}

/// One file to download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Name on the server (appended to the base URL) and on disk.
    pub name: String,
    pub verify: Verify,
    pub unpack: Unpack,
}

/// The files of a dataset on its mirror.
pub fn remote_files(kind: DatasetKind) -> Vec<RemoteFile> {
    match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let variant = if kind == DatasetKind::Mnist {
                Variant::Mnist
            } else {
                Variant::FashionMnist
            };
            [Split::Train, Split::Test]
                .iter()
                .flat_map(|&s| {
                    let (images, labels) = idx_stems(s);
                    [images, labels]
                })
                .map(|stem| RemoteFile {
                    name: format!("{stem}.gz"),
                    verify: Verify::Content(
                        known_content_digest(variant, stem)
                            .expect("every IDX file has a known digest"),
                    ),
                    unpack: Unpack::Keep,
                })
                .collect()
        }
        DatasetKind::Cifar10 => {
            let mut members: Vec<String> = cifar_stems(Split::Train)
                .iter()
                .chain(cifar_stems(Split::Test))
                .map(|s| s.to_string())
                .collect();
            members.push(CIFAR_META.to_string());
            vec![RemoteFile {
                name: CIFAR_ARCHIVE.to_string(),
                verify: Verify::Download {
                    algorithm: Algorithm::Md5,
                    hex: CIFAR_ARCHIVE_MD5.to_string(),
                },
                unpack: Unpack::TarGz { members },
            }]
        }
    }
}

/// Options of [`fetch`].
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The data folder; the dataset goes into its sub-folder.
    pub data_dir: PathBuf,
    /// Base URL of the mirror; `None` means [`resolve_base_url`]'s choice.
    pub base_url: Option<String>,
    /// Draw progress bars on stderr.
    pub progress: bool,
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// A valid copy was already there.
    AlreadyValid,
    /// Downloaded and verified (`bytes` transferred).
    Downloaded { bytes: u64 },
    /// Extracted from a verified archive.
    Unpacked { bytes: u64 },
}

/// One file written or found by a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedFile {
    pub path: PathBuf,
    pub action: FileAction,
    /// Corrupt copies (other spellings of the same file) renamed to `*.corrupt`
    /// so they no longer shadow the fresh download.
    pub set_aside: Vec<PathBuf>,
}

/// The result of a fetch.
#[derive(Clone, Debug)]
pub struct FetchOutcome {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    pub base_url: String,
    pub files: Vec<FetchedFile>,
}

/// Downloads `kind` into `<data_dir>/<name>/` from its mirror and verifies it.
pub fn fetch(kind: DatasetKind, options: &FetchOptions) -> Result<FetchOutcome, DataError> {
    let base_url = resolve_base_url(kind, options.base_url.as_deref());
    let dir = options.data_dir.join(kind.name());
    let files = fetch_files(&dir, &base_url, &remote_files(kind), options.progress)?;
    Ok(FetchOutcome {
        kind,
        dir,
        base_url,
        files,
    })
}

/// Downloads `files` from `base_url` into `dir` (created if needed).
pub fn fetch_files(
    dir: &Path,
    base_url: &str,
    files: &[RemoteFile],
    progress: bool,
) -> Result<Vec<FetchedFile>, DataError> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let agent = agent();
    let mut out = Vec::new();
    let result = files.iter().try_for_each(|remote| {
        let url = format!("{}/{}", base_url.trim_end_matches('/'), remote.name);
        match &remote.unpack {
            Unpack::Keep => out.push(fetch_single(&agent, &url, dir, remote, progress)?),
            Unpack::TarGz { members } => {
                out.extend(fetch_archive(&agent, &url, dir, remote, members, progress)?)
            }
        }
        Ok(())
    });
    if result.is_err() && created {
        // Leave no empty dataset folder behind (remove_dir refuses non-empty ones).
        let _ = std::fs::remove_dir(dir);
    }
    result.map(|()| out)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .user_agent(concat!("circsnn/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Spellings under which a downloaded file may already be stored: the name
/// itself, the decompressed name, and the dotted IDX spelling of both.
fn stored_spellings(name: &str) -> Vec<String> {
    let plain = name.strip_suffix(".gz").unwrap_or(name).to_string();
    let dotted = plain.replacen("-idx", ".idx", 1);
    let mut v = vec![name.to_string(), plain.clone()];
    for s in [dotted.clone(), format!("{dotted}.gz")] {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

fn fetch_single(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    remote: &RemoteFile,
    progress: bool,
) -> Result<FetchedFile, DataError> {
    let dest = dir.join(&remote.name);
    // A valid copy under any spelling means nothing to download. Corrupt
    // copies under other spellings are set aside either way: the loader might
    // pick them before the good file.
    let mut valid = None;
    let mut corrupt = Vec::new();
    for spelling in stored_spellings(&remote.name) {
        let path = dir.join(&spelling);
        if !path.is_file() {
            continue;
        }
        if verify_stored(&path, &remote.verify).is_ok() {
            valid.get_or_insert(path);
        } else if path != dest {
            corrupt.push(path);
        }
    }
    if let Some(path) = valid {
        return Ok(FetchedFile {
            path,
            action: FileAction::AlreadyValid,
            set_aside: set_aside(corrupt)?,
        });
    }
    let download = download(
        agent,
        url,
        dir,
        &remote.name,
        hash_of(&remote.verify),
        progress,
    )?;
    match &remote.verify {
        Verify::Download { algorithm, hex } => {
            check_digest(url, *algorithm, hex, &download.digest)?
        }
        Verify::Content(digest) => {
            let raw = std::fs::read(&download.temp.path)
                .map_err(|e| DataError::io(&download.temp.path, e))?;
            let content = if super::is_gz(&dest) {
                gunzip(&raw, url)?
            } else {
                raw
            };
            digest
                .verify(&content)
                .map_err(|actual| DataError::ChecksumMismatch {
                    file: url.to_string(),
                    algorithm: digest.algorithm.name(),
                    expected: digest.describe(),
                    actual,
                })?;
        }
    }
    let bytes = download.bytes;
    download.temp.commit(&dest)?;
    let set_aside = set_aside(corrupt)?;
    Ok(FetchedFile {
        path: dest,
        action: FileAction::Downloaded { bytes },
        set_aside,
    })
}

fn set_aside(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, DataError> {
    let mut moved = Vec::new();
    for path in paths {
        let mut target = path.clone().into_os_string();
        target.push(".corrupt");
        let target = PathBuf::from(target);
        std::fs::rename(&path, &target).map_err(|e| DataError::io(&path, e))?;
        moved.push(target);
    }
    Ok(moved)
}

fn verify_stored(path: &Path, verify: &Verify) -> Result<(), String> {
    let content = read_file(path).map_err(|e| e.to_string())?;
    match verify {
        Verify::Content(digest) => digest.verify(&content),
        // A stored archive is never kept, so only content digests apply.
        Verify::Download { .. } => Err("archives are not kept".into()),
    }
}

fn hash_of(verify: &Verify) -> Option<Algorithm> {
    match verify {
        Verify::Download { algorithm, .. } => Some(*algorithm),
        Verify::Content(_) => None,
    }
}

fn check_digest(
    url: &str,
    algorithm: Algorithm,
    expected: &str,
    actual: &str,
) -> Result<(), DataError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::ChecksumMismatch {
            file: url.to_string(),
            algorithm: algorithm.name(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// A temporary file next to its destination, removed on drop unless committed.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn create(dir: &Path, final_name: &str) -> Result<TempFile, DataError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{final_name}.{}.{n}.part", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(DataError::io(&path, e)),
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        let file = self.file.as_mut().expect("temp file is open until commit");
        file.write_all(bytes)
            .map_err(|e| DataError::io(&self.path, e))
    }

    /// Flushes to disk and renames into place; the directory entry is synced
    /// too so that the rename survives a crash.
    fn commit(mut self, dest: &Path) -> Result<(), DataError> {
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| DataError::io(&self.path, e))?;
        }
        std::fs::rename(&self.path, dest).map_err(|e| DataError::io(dest, e))?;
        // Renamed: nothing left for drop to remove.
        self.path = PathBuf::new();
        if let Some(parent) = dest.parent() {
            // Directories cannot be opened for syncing on every platform.
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct Download {
    temp: TempFile,
    bytes: u64,
    /// Hex digest of the downloaded bytes (empty when none was asked for).
    digest: String,
}

enum Hasher {
    None,
    Md5(Md5),
    Sha256(Sha256),
}

impl Hasher {
    fn new(algorithm: Option<Algorithm>) -> Hasher {
        match algorithm {
            None => Hasher::None,
            Some(Algorithm::Md5) => Hasher::Md5(Md5::new()),
            Some(Algorithm::Sha256) => Hasher::Sha256(Sha256::new()),
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::None => {}
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::None => String::new(),
            Hasher::Md5(h) => super::digest::to_hex(&h.finalize()),
            Hasher::Sha256(h) => super::digest::to_hex(&h.finalize()),
        }
    }
}

fn progress_bar(show: bool, total: Option<u64>, label: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{msg:28} {spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_message(label.to_string());
    bar
}

/// Streams `url` into a temporary file in `dir`, hashing it on the way.
fn download(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    name: &str,
    hash: Option<Algorithm>,
    progress: bool,
) -> Result<Download, DataError> {
    let failed = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(DataError::HttpStatus {
            url: url.to_string(),
            status,
        });
    }
    let total: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let mut body = response.into_body().into_reader();
    let mut temp = TempFile::create(dir, name)?;
    let mut hasher = Hasher::new(hash);
    let bar = progress_bar(progress, total, name);
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                return Err(failed(format!(
                    "connection lost after {bytes}{of} bytes: {e}"
                )));
            }
        };
        temp.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        bytes += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(t) = total {
        if bytes != t {
            return Err(failed(format!(
                "connection lost after {bytes} of {t} bytes"
            )));
        }
    }
    Ok(Download {
        temp,
        bytes,
        digest: hasher.finish(),
    })
}

/// Files written by [`fetch_archive`] before they are renamed into place.
struct Extracted {
    name: String,
    temp: TempFile,
    bytes: u64,
    sha256: String,
}

fn fetch_archive(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    remote: &RemoteFile,
    members: &[String],
    progress: bool,
) -> Result<Vec<FetchedFile>, DataError> {
    if members_valid(dir, members) {
        return Ok(members
            .iter()
            .map(|m| FetchedFile {
                path: dir.join(m),
                action: FileAction::AlreadyValid,
                set_aside: Vec::new(),
            })
            .collect());
    }
    let download = download(
        agent,
        url,
        dir,
        &remote.name,
        hash_of(&remote.verify),
        progress,
    )?;
    if let Verify::Download { algorithm, hex } = &remote.verify {
        check_digest(url, *algorithm, hex, &download.digest)?;
    }
    let archive_label = format!("{} (downloaded from {url})", remote.name);
    let extracted = extract(&download.temp.path, &archive_label, dir, members)?;
    drop(download);

    // Everything verified and on disk: move into place, then record digests.
    let mut sums = String::new();
    let mut out = Vec::new();
    for e in extracted {
        let dest = dir.join(&e.name);
        e.temp.commit(&dest)?;
        sums.push_str(&format!("{}  {}\n", e.sha256, e.name));
        out.push(FetchedFile {
            path: dest,
            action: FileAction::Unpacked { bytes: e.bytes },
            set_aside: Vec::new(),
        });
    }
    let mut sums_file = TempFile::create(dir, SHA256SUMS)?;
    sums_file.write_all(sums.as_bytes())?;
    sums_file.commit(&dir.join(SHA256SUMS))?;
    Ok(out)
}

fn extract(
    archive: &Path,
    label: &str,
    dir: &Path,
    members: &[String],
) -> Result<Vec<Extracted>, DataError> {
    let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut extracted: Vec<Extracted> = Vec::new();
    let result = for_each_member(gz, |path: &str, size: u64, data: &mut dyn Read| {
        let base = path.rsplit('/').next().unwrap_or(path);
        if !members.iter().any(|m| m == base) || extracted.iter().any(|e| e.name == base) {
            return Ok(());
        }
        let mut temp = TempFile::create(dir, base)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ExtractError::Tar(TarError::Read(e))),
            };
            temp.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        if bytes != size {
            return Err(TarError::TruncatedMember {
                name: path.to_string(),
                size,
                read: bytes,
            }
            .into());
        }
        extracted.push(Extracted {
            name: base.to_string(),
            temp,
            bytes,
            sha256: super::digest::to_hex(&hasher.finalize()),
        });
        Ok(())
    });
    result.map_err(|e| match e {
        // Read errors come from the gzip layer under the tar stream.
        ExtractError::Tar(TarError::Read(source)) => DataError::Gzip {
            file: label.to_string(),
            source,
        },
        ExtractError::Tar(source) => DataError::Archive {
            file: label.to_string(),
            source,
        },
        ExtractError::Data(e) => e,
    })?;
    let missing: Vec<&str> = members
        .iter()
        .filter(|m| !extracted.iter().any(|e| &e.name == *m))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Download {
            url: label.to_string(),
            reason: format!("the archive lacks {}", missing.join(", ")),
        });
    }
    // Keep the members in the requested order.
    extracted.sort_by_key(|e| members.iter().position(|m| *m == e.name));
    Ok(extracted)
}

/// Errors inside the tar visitor: the archive's own, or writing the members.
enum ExtractError {
    Tar(TarError),
    Data(DataError),
}

impl From<TarError> for ExtractError {
    fn from(e: TarError) -> Self {
        ExtractError::Tar(e)
    }
}

impl From<DataError> for ExtractError {
    fn from(e: DataError) -> Self {
        ExtractError::Data(e)
    }
}

/// Whether every member is in `dir` and matches the digest recorded in
/// `SHA256SUMS` by an earlier fetch.
fn members_valid(dir: &Path, members: &[String]) -> bool {
    let Ok(sums) = read_sha256sums(dir) else {
        return false;
    };
    members.iter().all(|m| {
        let Some(expected) = sums.iter().find(|(_, n)| n == m).map(|(h, _)| h) else {
            return false;
        };
        std::fs::read(dir.join(m)).is_ok_and(|bytes| &Algorithm::Sha256.hex(&bytes) == expected)
    })
}

/// Reads `dir/SHA256SUMS` as `(hex digest, file name)` pairs.
pub(crate) fn read_sha256sums(dir: &Path) -> Result<Vec<(String, String)>, DataError> {
    let path = dir.join(SHA256SUMS);
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (hex, name) = line.split_once(char::is_whitespace)?;
            let name = name.trim_start().trim_start_matches('*');
            (hex.len() == 64).then(|| (hex.to_ascii_lowercase(), content_name(name)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_urls() {
        assert_eq!(
            stored_spellings("train-images-idx3-ubyte.gz"),
            vec![
                "train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte",
                "train-images.idx3-ubyte",
                "train-images.idx3-ubyte.gz"
            ]
        );
        assert_eq!(
            resolve_base_url(DatasetKind::Mnist, Some("http://h:1/x/")),
            "http://h:1/x"
        );
        let files = remote_files(DatasetKind::Cifar10);
        assert_eq!(files.len(), 1);
        match &files[0].unpack {
            Unpack::TarGz { members } => assert_eq!(members.len(), 7),
            other => panic!("{other:?}"),
        }
        assert_eq!(remote_files(DatasetKind::FashionMnist).len(), 4);
    }

    #[test]
    fn temp_files_vanish_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempFile::create(dir.path(), "a").unwrap();
        t.write_all(b"abc").unwrap();
        let p = t.path.clone();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
        let mut t = TempFile::create(dir.path(), "b").unwrap();
        t.write_all(b"xyz").unwrap();
        t.commit(&dir.path().join("b")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"xyz");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
