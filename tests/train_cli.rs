//! `circsnn train` as a user runs it: a short real MNIST run on the MIF
//! netlist's measured rate curve (files, JSON provenance, accuracy), exact
//! resume, an abstract baseline, and the error cases. The runs on data are
//! skipped, with a notice, when the shared datasets folder is absent.

mod common;
use circsnn::data::{self, DatasetKind, Split};
use circsnn::train::{evaluate, load_model};
use common::shared_datasets;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

fn circsnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs the binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A short MNIST run on the MIF rate curve into `out`.
fn short_run(data: &Path, out: &Path, epochs: &str, extra: &[&str]) -> Output {
    train_run(
        data,
        out,
        "netlists/mif.cir",
        "short",
        "2000",
        epochs,
        extra,
    )
}

/// An MNIST run on the first `limit` training images, model `name` in `out`.
fn train_run(
    data: &Path,
    out: &Path,
    netlist: &str,
    name: &str,
    limit: &str,
    epochs: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "-q",
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        netlist,
        "--limit-train",
        limit,
        "--epochs",
        epochs,
        "--name",
        name,
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    circsnn(&args)
}

#[test]
fn mnist_run_writes_model_with_provenance_and_resumes_exactly() {
    let Some(data) = shared_datasets() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let o = short_run(&data, &straight, "2", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("epoch 1/2") && stdout.contains("epoch 2/2"),
        "{stdout}"
    );
    assert!(stdout.contains("images/s"), "{stdout}");

    let weights = straight.join("short.safetensors");
    assert!(weights.is_file());
    assert!(straight
        .join("checkpoints/short.ckpt.safetensors")
        .is_file());
    let meta = read_json(&straight.join("short.json"));

    // The activation is the measured curve, tied to the netlist by its hash.
    let act = &meta["activation"];
    assert_eq!(act["kind"], "rate-curve");
    let currents = act["current_a"].as_array().unwrap();
    let rates = act["rate_hz"].as_array().unwrap();
    assert_eq!(currents.len(), rates.len());
    assert!(currents.len() >= 20);
    let top_rate = rates.last().unwrap().as_f64().unwrap();
    assert!(
        top_rate > 100.0,
        "MIF fires at hundreds of Hz, got {top_rate}"
    );
    assert_eq!(rates[0].as_f64(), Some(0.0));
    assert!(act["gain_a"].as_f64().unwrap() > 0.0);
    // The curve reaches well past the z = 1 current (3.7 nA for the MIF)
    // and goes on linearly: a circuit neuron driven harder fires faster, and
    // a saturating activation would teach the network a ceiling that its
    // spiking twin does not have.
    assert_eq!(act["extrapolation"], "linear");
    let z_one = act["gain_a"].as_f64().unwrap() + act["offset_a"].as_f64().unwrap();
    let last = currents.last().unwrap().as_f64().unwrap();
    assert!(
        last > 2.5 * z_one,
        "curve ends at {last} A, z = 1 at {z_one} A"
    );
    let rate_dir = tempfile::tempdir().unwrap();
    let probe = [1.5 * z_one, 2.5 * z_one];
    let o = circsnn(&[
        "-q",
        "rate",
        "netlists/mif.cir",
        "--currents",
        &format!("{:e},{:e}", probe[0], probe[1]),
        "--out",
        rate_dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(rate_dir.path().join("rate.csv")).unwrap();
    let measured: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let (net, _) = load_model(&straight, "short").unwrap();
    let circsnn::train::Activation::RateCurve(curve) = &net.activation else {
        panic!("a rate-curve activation");
    };
    for (&i, &r) in probe.iter().zip(&measured) {
        let model = curve.rate_hz_at(i).0;
        assert!(
            (model / r - 1.0).abs() < 0.01,
            "at {i:e} A the activation gives {model} Hz, the circuit {r} Hz"
        );
    }
    let text =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("netlists/mif.cir")).unwrap();
    let hash: String = Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(meta["netlist_hash"].as_str(), Some(hash.as_str()));
    assert!(meta["netlist_path"]
        .as_str()
        .unwrap()
        .ends_with("netlists/mif.cir"));
    assert_eq!(meta["data_variant"], "mnist");
    assert_eq!(meta["training_log"].as_array().unwrap().len(), 2);
    let command = meta["command_line"].as_str().unwrap();
    assert!(
        command.starts_with("circsnn -q train --dataset mnist --netlist netlists/mif.cir"),
        "{command}"
    );
    let accuracy = meta["test_accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8, "test accuracy {accuracy}");

    // The saved weights give the recorded accuracy on the full test set.
    let (mut net, loaded) = load_model(&straight, "short").unwrap();
    let test = data::load(DatasetKind::Mnist, Split::Test, Some(&data)).unwrap();
    assert_eq!(test.len(), 10_000);
    let eval = evaluate(&mut net, &test, loaded.input_transform, 256).unwrap();
    assert_eq!(eval.accuracy, accuracy);

    // 1 epoch, then --resume to 2, equals 2 epochs straight, byte for byte.
    let resumed = dir.path().join("resumed");
    let o = short_run(&data, &resumed, "1", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after_one = std::fs::read(resumed.join("short.safetensors")).unwrap();
    assert_ne!(after_one, std::fs::read(&weights).unwrap());
    let o = short_run(&data, &resumed, "2", &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(resumed.join("short.safetensors")).unwrap(),
        std::fs::read(&weights).unwrap(),
        "resumed weights differ from the uninterrupted run"
    );
    let resumed_meta = read_json(&resumed.join("short.json"));
    assert_eq!(resumed_meta["test_accuracy"], meta["test_accuracy"]);
    // The recorded command (without --resume) reproduces the model; only --out differs.
    let resumed_command = resumed_meta["command_line"]
        .as_str()
        .unwrap()
        .replace(resumed.to_str().unwrap(), straight.to_str().unwrap());
    assert_eq!(resumed_command, command);

    // Resuming with other options is refused.
    let o = short_run(&data, &resumed, "3", &["--resume", "--lr", "0.01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("other options"), "{}", stderr(&o));
}

#[test]
fn abstract_lif_baseline_has_no_netlist() {
    let Some(data) = shared_datasets() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = circsnn(&[
        "-q",
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        "lif",
        "--limit-train",
        "500",
        "--epochs",
        "1",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Default name: <dataset>-<arch>-<netlist stem>.
    let meta = read_json(&dir.path().join("mnist-mnist-thesis-lif.json"));
    assert_eq!(meta["baseline"], "lif");
    assert!(meta["netlist_hash"].is_null());
    assert_eq!(meta["activation"]["kind"], "rate-curve");
    // The abstract LIF twin has the circuit's 2 nA rheobase.
    let currents: Vec<f64> = meta["activation"]["current_a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let rates: Vec<f64> = meta["activation"]["rate_hz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let first = rates.iter().position(|&r| r > 0.0).unwrap();
    assert!(currents[first] > 2e-9 && currents[first - 1] <= 2e-9);
    assert!(meta["test_accuracy"].as_f64().unwrap() > 0.5);
}

#[test]
fn unknown_dataset_is_an_error() {
    let o = circsnn(&["train", "--dataset", "imagenet", "--netlist", "relu"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown dataset `imagenet`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_netlist_is_an_error() {
    let o = circsnn(&[
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        "nowhere/none.cir",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("nowhere/none.cir") && e.contains("no such netlist"),
        "{e}"
    );
}

#[test]
fn netlist_without_neuron_directive_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain_rc.cir");
    std::fs::write(
        &path,
        "* plain rc\nIin 0 mem DC 1n\nC1 mem 0 1n\nR1 mem 0 1meg\n.SPIKE mem VTH=0.5\n.TRAN 1u 1m\n.END\n",
    )
    .unwrap();
    let o = circsnn(&[
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("plain_rc.cir") && e.contains(".NEURON"), "{e}");
}

#[test]
fn resume_without_checkpoint_and_bad_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = circsnn(&[
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        "relu",
        "--out",
        out,
        "--resume",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no checkpoint"), "{}", stderr(&o));
    let o = circsnn(&[
        "train",
        "--dataset",
        "mnist",
        "--netlist",
        "relu",
        "--augment",
        "warp",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--augment warp"), "{}", stderr(&o));
}

/// The `activation.rate_hz` samples of a written model.
fn model_rates(path: &Path) -> Vec<f64> {
    read_json(path)["activation"]["rate_hz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn latency_window_trains_on_the_spikes_of_a_short_run() {
    let Some(data) = shared_datasets() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, netlist: &str, extra: &[&str]| {
        let extra = [&["--i-max", "2.4e-9"], extra].concat();
        train_run(&data, dir.path(), netlist, name, "300", "1", &extra)
    };
    let o = run("steady", "netlists/mif2.cir", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("window", "netlists/mif2.cir", &["--latency-window", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let steady = model_rates(&dir.path().join("steady.json"));
    let window = model_rates(&dir.path().join("window.json"));
    assert_eq!(steady.len(), window.len());
    // The MIF2 jumps to about 75 Hz at its rheobase, where its first spike
    // from rest takes 11 ms: a 10 ms run sees none of them. Far above it,
    // the latency is under 1 ms and the rate is nearly kept.
    let first = steady.iter().position(|&r| r > 0.0).unwrap();
    assert!(steady[first] > 50.0, "{steady:?}");
    assert_eq!(window[first], 0.0, "{window:?}");
    for (w, s) in window.iter().zip(&steady) {
        assert!(*w <= *s && *w >= 0.0, "{w} vs {s}");
    }
    let (w, s) = (window[window.len() - 1], steady[steady.len() - 1]);
    assert!(w > 0.9 * s && w < s, "top: {w} vs {s}");
    // The window is kept in the model (classify's default steps follow it).
    let window_of = |name: &str| read_json(&dir.path().join(name))["latency_window_s"].as_f64();
    assert_eq!(window_of("window.json"), Some(0.01));
    assert_eq!(window_of("steady.json"), None);
    // An abstract baseline has no circuit to measure.
    let o = run("lif", "lif", &["--latency-window", "0.01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--latency-window"), "{}", stderr(&o));
    let o = run("bad", "netlists/mif2.cir", &["--latency-window=-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("latency window"), "{}", stderr(&o));
}
