//! Downloads against a local HTTP server on 127.0.0.1: a good fetch, a
//! checksum mismatch, a 404, a connection dropped mid-body, and archives.
//! The MNIST tests serve the real files from the shared datasets folder
//! (`$CIRCSNN_DATA` or `../shared/datasets`) and are skipped, with a notice,
//! when it is absent.

mod common;
use circsnn::data::{
    self, Algorithm, DatasetKind, FetchOptions, FileAction, RemoteFile, Split, Unpack, Verify,
    SHA256SUMS,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the server does for a request path.
enum Reply {
    Body(Vec<u8>),
    Status(u16),
    /// Announce the full length, send only the first `sent` bytes, then close.
    Cut {
        body: Vec<u8>,
        sent: usize,
    },
}

struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

/// Serves `route(path)` on an ephemeral port, one connection at a time.
fn serve(route: impl Fn(&str) -> Reply + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = answer(stream, &route);
        }
    });
    Server { base, requests }
}

fn answer(stream: TcpStream, route: &impl Fn(&str) -> Reply) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut out = stream;
    match route(&path) {
        Reply::Body(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
        }
        Reply::Status(code) => {
            write!(
                out,
                "HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        Reply::Cut { body, sent } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body[..sent])?;
        }
    }
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}

fn shared_datasets() -> Option<PathBuf> {
    common::shared_datasets_with("mnist/t10k-labels-idx1-ubyte.gz")
}

/// Serves the files of `root` under their relative paths.
fn serve_dir(root: PathBuf, tweak: impl Fn(&str, Vec<u8>) -> Reply + Send + 'static) -> Server {
    serve(move |path| {
        let rel = path.trim_start_matches('/');
        if rel.contains("..") {
            return Reply::Status(403);
        }
        match std::fs::read(root.join(rel)) {
            Ok(bytes) => tweak(rel, bytes),
            Err(_) => Reply::Status(404),
        }
    })
}

/// Names in `dir`, sorted; temporary files show up as `.*.part`.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn options(data_dir: &Path, base: &str) -> FetchOptions {
    FetchOptions {
        data_dir: data_dir.to_path_buf(),
        base_url: Some(base.to_string()),
        progress: false,
    }
}

#[test]
fn good_fetch_then_skip_when_present() {
    let Some(shared) = shared_datasets() else {
        return;
    };
    let server = serve_dir(shared, |_, b| Reply::Body(b));
    let out = tempfile::tempdir().unwrap();
    let base = format!("{}/mnist", server.base);
    let outcome = data::fetch(DatasetKind::Mnist, &options(out.path(), &base)).unwrap();
    assert_eq!(outcome.files.len(), 4);
    assert!(outcome
        .files
        .iter()
        .all(|f| matches!(f.action, FileAction::Downloaded { .. })));
    assert_eq!(
        listing(&out.path().join("mnist")),
        vec![
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    let d = data::load(DatasetKind::Mnist, Split::Test, Some(out.path())).unwrap();
    assert_eq!(d.len(), 10_000);
    assert_eq!(server.requests.load(Ordering::SeqCst), 4);

    // Everything valid: a second fetch makes no request.
    let again = data::fetch(DatasetKind::Mnist, &options(out.path(), &base)).unwrap();
    assert!(again
        .files
        .iter()
        .all(|f| f.action == FileAction::AlreadyValid));
    assert_eq!(server.requests.load(Ordering::SeqCst), 4);

    // A corrupt copy is downloaded again and replaced atomically.
    let labels = out.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    std::fs::write(&labels, b"garbage").unwrap();
    let again = data::fetch(DatasetKind::Mnist, &options(out.path(), &base)).unwrap();
    let replaced: Vec<_> = again
        .files
        .iter()
        .filter(|f| matches!(f.action, FileAction::Downloaded { .. }))
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].path, labels);
    assert_eq!(server.requests.load(Ordering::SeqCst), 5);
    assert_eq!(
        data::load(DatasetKind::Mnist, Split::Test, Some(out.path()))
            .unwrap()
            .len(),
        10_000
    );
    assert_eq!(listing(&out.path().join("mnist")).len(), 4);

    // A corrupt plain copy would shadow the good .gz: it is set aside.
    let plain = out.path().join("mnist/t10k-images-idx3-ubyte");
    std::fs::write(&plain, b"\0\0\x08\x03short").unwrap();
    assert!(data::load(DatasetKind::Mnist, Split::Test, Some(out.path())).is_err());
    let again = data::fetch(DatasetKind::Mnist, &options(out.path(), &base)).unwrap();
    let images = again
        .files
        .iter()
        .find(|f| f.path.ends_with("t10k-images-idx3-ubyte.gz"))
        .unwrap();
    assert_eq!(images.action, FileAction::AlreadyValid);
    assert_eq!(
        images.set_aside,
        vec![out.path().join("mnist/t10k-images-idx3-ubyte.corrupt")]
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 5);
    assert_eq!(
        data::load(DatasetKind::Mnist, Split::Test, Some(out.path()))
            .unwrap()
            .len(),
        10_000
    );
}

#[test]
fn checksum_mismatch_leaves_no_file() {
    let Some(shared) = shared_datasets() else {
        return;
    };
    // A well-formed gzip of the right length whose content differs by one label.
    let server = serve_dir(shared, |rel, bytes| {
        if rel.ends_with("t10k-labels-idx1-ubyte.gz") {
            let mut content = data::gunzip(&bytes, rel).unwrap();
            content[100] = (content[100] + 1) % 10;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&content).unwrap();
            Reply::Body(enc.finish().unwrap())
        } else if rel.ends_with("t10k-images-idx3-ubyte.gz") {
            // Damaged bytes: not even valid gzip any more.
            let mut b = bytes;
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
            Reply::Body(b)
        } else {
            Reply::Body(bytes)
        }
    });
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("mnist");
    let files = data::remote_files(DatasetKind::Mnist);
    let labels = files
        .iter()
        .find(|f| f.name == "t10k-labels-idx1-ubyte.gz")
        .unwrap();
    let images = files
        .iter()
        .find(|f| f.name == "t10k-images-idx3-ubyte.gz")
        .unwrap();
    let base = format!("{}/mnist", server.base);

    let err = data::fetch_files(&dir, &base, std::slice::from_ref(labels), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte.gz: checksum mismatch: expected MD5 27ae3e4e09519cfbb04c329615203637"), "{err}");
    assert_eq!(listing(&dir), Vec::<String>::new());

    let err = data::fetch_files(&dir, &base, std::slice::from_ref(images), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte.gz: not a valid gzip stream"),
        "{err}"
    );
    assert_eq!(listing(&dir), Vec::<String>::new());
}

#[test]
fn http_error_and_dropped_connection_leave_no_file() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let served = body.clone();
    let server = serve(move |path| match path {
        "/cut/file.bin" => Reply::Cut {
            body: served.clone(),
            sent: 70_000,
        },
        _ => Reply::Status(404),
    });
    let out = tempfile::tempdir().unwrap();
    let remote = RemoteFile {
        name: "file.bin".into(),
        verify: Verify::Download {
            algorithm: Algorithm::Sha256,
            hex: Algorithm::Sha256.hex(&body),
        },
        unpack: Unpack::Keep,
    };

    let err = data::fetch_files(
        out.path(),
        &format!("{}/none", server.base),
        std::slice::from_ref(&remote),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/none/file.bin: server answered HTTP 404"),
        "{err}"
    );
    assert_eq!(listing(out.path()), Vec::<String>::new());

    let err = data::fetch_files(
        out.path(),
        &format!("{}/cut", server.base),
        std::slice::from_ref(&remote),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("/cut/file.bin: download failed"), "{err}");
    assert_eq!(listing(out.path()), Vec::<String>::new());

    // Nobody listening: a connection error, still nothing written.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = data::fetch_files(out.path(), &dead, std::slice::from_ref(&remote), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("download failed"), "{err}");
    assert_eq!(listing(out.path()), Vec::<String>::new());
}

/// A minimal ustar archive.
fn ustar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut h = [0u8; 512];
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
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn targz(tar: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(tar).unwrap();
    enc.finish().unwrap()
}

#[test]
fn archives_are_verified_unpacked_and_recorded() {
    let batch: Vec<u8> = (0..3 * 3073)
        .map(|i| if i % 3073 == 0 { 4 } else { (i % 256) as u8 })
        .collect();
    let meta = b"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n".to_vec();
    let good = targz(&ustar(&[
        ("cifar-10-batches-bin/readme.html", b"<html/>".to_vec()),
        ("cifar-10-batches-bin/test_batch.bin", batch.clone()),
        ("cifar-10-batches-bin/batches.meta.txt", meta.clone()),
    ]));
    let cut_tar = targz(&ustar(&[("cifar-10-batches-bin/test_batch.bin", batch.clone())])[..4000]);
    let (good_served, cut_served) = (good.clone(), cut_tar.clone());
    let server = serve(move |path| match path {
        "/good/c.tar.gz" => Reply::Body(good_served.clone()),
        "/cut/c.tar.gz" => Reply::Body(cut_served.clone()),
        _ => Reply::Status(404),
    });
    let spec = |archive: &[u8]| RemoteFile {
        name: "c.tar.gz".into(),
        verify: Verify::Download {
            algorithm: Algorithm::Md5,
            hex: Algorithm::Md5.hex(archive),
        },
        unpack: Unpack::TarGz {
            members: vec!["test_batch.bin".into(), "batches.meta.txt".into()],
        },
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cifar10");

    // The archive's digest does not match the expected one.
    let mut wrong = spec(&good);
    wrong.verify = Verify::Download {
        algorithm: Algorithm::Md5,
        hex: "0".repeat(32),
    };
    let err = data::fetch_files(&dir, &format!("{}/good", server.base), &[wrong], false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.tar.gz: checksum mismatch: expected MD5 0000"),
        "{err}"
    );
    assert_eq!(listing(&dir), Vec::<String>::new());

    // A damaged archive (right digest, so the tar reader sees the damage).
    let err = data::fetch_files(
        &dir,
        &format!("{}/cut", server.base),
        &[spec(&cut_tar)],
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("c.tar.gz"), "{err}");
    assert_eq!(listing(&dir), Vec::<String>::new());

    let done = data::fetch_files(
        &dir,
        &format!("{}/good", server.base),
        &[spec(&good)],
        false,
    )
    .unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(
        done[0].action,
        FileAction::Unpacked {
            bytes: batch.len() as u64
        }
    );
    assert_eq!(
        listing(&dir),
        vec![SHA256SUMS, "batches.meta.txt", "test_batch.bin"]
    );
    assert_eq!(std::fs::read(dir.join("test_batch.bin")).unwrap(), batch);
    let sums = std::fs::read_to_string(dir.join(SHA256SUMS)).unwrap();
    assert!(
        sums.contains(&format!(
            "{}  test_batch.bin",
            Algorithm::Sha256.hex(&batch)
        )),
        "{sums}"
    );
    let parsed =
        data::parse_cifar_batch(&std::fs::read(dir.join("test_batch.bin")).unwrap(), "t").unwrap();
    assert_eq!(parsed.labels, vec![4, 4, 4]);

    // Present and matching the recorded digests: no new request.
    let before = server.requests.load(Ordering::SeqCst);
    let again = data::fetch_files(
        &dir,
        &format!("{}/good", server.base),
        &[spec(&good)],
        false,
    )
    .unwrap();
    assert!(again.iter().all(|f| f.action == FileAction::AlreadyValid));
    assert_eq!(server.requests.load(Ordering::SeqCst), before);

    // The check report uses the recorded digests for the official variant.
    std::fs::write(dir.join("batches.meta.txt"), "x\ny\n").unwrap();
    let loc = data::DatasetLocation {
        kind: DatasetKind::Cifar10,
        variant: data::Variant::Cifar10,
        dir: dir.clone(),
    };
    let report = data::check_location(&loc);
    assert!(!report.is_ok());
    let meta_check = report
        .files
        .iter()
        .find(|f| f.path.ends_with("batches.meta.txt"))
        .unwrap();
    assert!(
        matches!(meta_check.checksum, data::ChecksumStatus::Mismatch { .. }),
        "{meta_check:?}"
    );
    let batch_check = report
        .files
        .iter()
        .find(|f| f.path.ends_with("test_batch.bin"))
        .unwrap();
    assert!(
        matches!(batch_check.checksum, data::ChecksumStatus::Ok { .. }),
        "{batch_check:?}"
    );
}

#[test]
fn cli_fetch_and_check() {
    let Some(shared) = shared_datasets() else {
        return;
    };
    let server = serve_dir(shared, |_, b| Reply::Body(b));
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("d");
    let bin = env!("CARGO_BIN_EXE_circsnn");
    let run = |args: &[&str], base_env: Option<&str>| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args)
            .current_dir(work.path())
            .env_remove("CIRCSNN_DATA")
            .env_remove("CIRCSNN_DATA_BASE_URL");
        if let Some(b) = base_env {
            cmd.env("CIRCSNN_DATA_BASE_URL", b);
        }
        cmd.output().unwrap()
    };
    let base = format!("{}/mnist", server.base);
    let fetched = run(
        &[
            "-q",
            "data",
            "fetch",
            "mnist",
            "--data",
            data_dir.to_str().unwrap(),
        ],
        Some(&base),
    );
    let stdout = String::from_utf8_lossy(&fetched.stdout);
    assert!(
        fetched.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert_eq!(
        stdout.matches("downloaded and verified").count(),
        4,
        "{stdout}"
    );

    let checked = run(
        &["data", "check", "--data", data_dir.to_str().unwrap()],
        None,
    );
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{stdout}");
    assert!(
        stdout.contains("train  60000 images") && stdout.contains("test   10000 images"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("OK (MD5)").count(), 4, "{stdout}");
    assert!(stdout.contains("cifar10: not found"), "{stdout}");

    // A corrupt file makes check fail.
    let labels = data_dir.join("mnist/train-labels-idx1-ubyte.gz");
    let mut content = data::gunzip(&std::fs::read(&labels).unwrap(), "l").unwrap();
    content[9] = 42;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&content).unwrap();
    std::fs::write(&labels, enc.finish().unwrap()).unwrap();
    let checked = run(
        &["data", "check", "--data", data_dir.to_str().unwrap()],
        None,
    );
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(!checked.status.success(), "{stdout}");
    assert!(
        stdout.contains("label 42 of item 1 is out of range"),
        "{stdout}"
    );
    assert!(stdout.contains("MISMATCH"), "{stdout}");
    assert!(String::from_utf8_lossy(&checked.stderr).contains("incomplete or corrupt"));

    // --base-url wins over the environment.
    let fetched = run(
        &[
            "data",
            "fetch",
            "mnist",
            "--data",
            data_dir.to_str().unwrap(),
            "--base-url",
            &base,
        ],
        Some("http://127.0.0.1:9/nothing"),
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(
        String::from_utf8_lossy(&fetched.stdout).contains("train-labels-idx1-ubyte.gz: downloaded")
    );
}
