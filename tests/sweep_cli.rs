//! `circsnn sweep` and `circsnn merge`: physics of a swept parameter,
//! resume after an interruption, thread independence, shards.

mod common;

use std::path::Path;
use std::process::Command;

fn sweep(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "sweep",
            "lif.cir",
            "--param",
            "cm=0.1n,0.2n",
            "--param",
            "rm=8meg:12meg:3",
            "--currents",
            "2.6e-9,3e-9",
            "-q",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn lines(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.jsonl")).unwrap()
}

#[test]
fn lif_rate_scales_as_one_over_c_and_figures_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = lines(dir.path())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    // Points 1 (C = 0.1 nF, R = 10 MΩ) and 4 (C = 0.2 nF, R = 10 MΩ):
    // f = 1/(RC ln(RI/(RI − 20 mV))) halves when C doubles.
    let r = |i: usize| rows[i]["rates_hz"][1].as_f64().unwrap();
    assert_eq!(rows[1]["params"]["cm"].as_f64(), Some(1e-10));
    assert_eq!(rows[4]["params"]["rm"].as_f64(), Some(1e7));
    assert!((r(1) / r(4) - 2.0).abs() < 0.02, "{} vs {}", r(1), r(4));
    let analytic = 1.0 / (2e-3 * (30.0f64 / 10.0).ln());
    assert!(
        (r(4) - analytic).abs() / analytic < 0.005,
        "{} vs {analytic}",
        r(4)
    );
    assert!(dir.path().join("results.csv").exists());
    assert!(std::fs::read_to_string(dir.path().join("sweep.svg"))
        .unwrap()
        .starts_with("<svg"));
}

#[test]
fn resume_after_a_torn_write_gives_the_same_lines() {
    let full = tempfile::tempdir().unwrap();
    assert!(sweep(full.path(), &[]).status.success());
    let reference = lines(full.path());
    // An interrupted run: two finished lines and half of a third.
    let cut = tempfile::tempdir().unwrap();
    std::fs::copy(
        full.path().join("sweep.json"),
        cut.path().join("sweep.json"),
    )
    .unwrap();
    let kept: Vec<&str> = reference.lines().take(2).collect();
    std::fs::write(
        cut.path().join("results.jsonl"),
        format!(
            "{}\n{}\n{}",
            kept[0],
            kept[1],
            &reference.lines().nth(2).unwrap()[..20]
        ),
    )
    .unwrap();
    // Without --resume the sweep refuses to touch existing results.
    let refused = sweep(cut.path(), &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    assert!(sweep(cut.path(), &["--resume"]).status.success());
    assert_eq!(lines(cut.path()), reference);
}

#[test]
fn one_and_two_threads_give_identical_results() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(sweep(a.path(), &["--threads", "1"]).status.success());
    assert!(sweep(b.path(), &["--threads", "2"]).status.success());
    assert_eq!(lines(a.path()), lines(b.path()));
}

#[test]
fn shards_merge_into_the_full_sweep() {
    let full = tempfile::tempdir().unwrap();
    assert!(sweep(full.path(), &[]).status.success());
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(sweep(s1.path(), &["--shard", "1/2"]).status.success());
    assert!(sweep(s2.path(), &["--shard", "2/2"]).status.success());
    assert_eq!(lines(s1.path()).lines().count(), 3);
    let merged = full.path().join("merged.jsonl");
    let st = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .arg("merge")
        .arg(s1.path().join("results.jsonl"))
        .arg(s2.path().join("results.jsonl"))
        .arg("-q")
        .arg("--out")
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(merged).unwrap(), lines(full.path()));
}

#[test]
fn bad_specs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sweep", "lif.cir", "--param", "cm=1:2", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a:b:n"));
    let out = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "sweep",
            "lif.cir",
            "--param",
            "nosuch=1,2",
            "--currents",
            "3e-9",
            "--out",
        ])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

/// Run `circsnn sweep ARGS --out OUT` on `threads` threads; its lines.
fn sweep_lines(args: &[&str], out: &Path, threads: &str) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAYON_NUM_THREADS", threads)
        .arg("sweep")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    lines(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn mc_sweep(out: &Path, threads: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["mif.cir", "--param", "tsm1.roff=9meg,11meg"];
    args.extend(["--currents", "2.2e-9,2.6e-9,3e-9", "-q"]);
    args.extend(extra);
    sweep_lines(&args, out, threads)
}

/// Monte Carlo with σ = 0 draws the nominal device: every sample's curve
/// is the nominal curve, bit for bit. With σ > 0 the curves spread, the
/// same seed gives the same file with 1 and 2 threads, another seed other
/// draws.
#[test]
fn monte_carlo_is_exact_at_zero_spread_and_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let nominal = mc_sweep(&dir.path().join("nominal"), "2", &[]);
    let zero = mc_sweep(
        &dir.path().join("zero"),
        "2",
        &["--mc", "3", "--sigma", "tsm1.ron=0%", "--sigma", "cm=0"],
    );
    for (n, z) in nominal.iter().zip(&zero) {
        for s in z["samples"].as_array().unwrap() {
            assert_eq!(s["rates_hz"], n["rates_hz"]);
            assert_eq!(s["factors"]["tsm1.ron"], 1.0);
        }
        assert_eq!(z["rates_hz_std"], serde_json::json!([0.0, 0.0, 0.0]));
    }
    let spread = ["--mc", "6", "--sigma", "tsm1.ron=5%", "--sigma", "cm=5%"];
    let one = mc_sweep(&dir.path().join("one"), "1", &spread);
    let two = mc_sweep(&dir.path().join("two"), "2", &spread);
    assert_eq!(one, two);
    let top = |l: &serde_json::Value| l["rates_hz_std"][2].as_f64().unwrap();
    // A 5 % spread of C moves the rate at 3 nA by roughly 5 %: ~20 Hz.
    assert!(
        one.iter().all(|l| top(l) > 2.0 && top(l) < 100.0),
        "{one:?}"
    );
    let mut other_seed = spread.to_vec();
    other_seed.extend(["--seed", "2"]);
    let three = mc_sweep(&dir.path().join("three"), "2", &other_seed);
    assert_ne!(one[0]["samples"], three[0]["samples"]);
}

#[test]
fn monte_carlo_rejects_bad_spreads() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (vec!["--sigma", "tsm1.ron=5%"], "--mc"),
        (
            vec!["--mc", "2", "--sigma", "tsm1.ron=five"],
            "not a number",
        ),
        (vec!["--mc", "2", "--sigma", "tsm1.von=-1%"], "≥ 0"),
        (vec!["--mc", "2", "--sigma", "tsm1.gamma=1%"], "tsm1.gamma"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_circsnn"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["sweep", "mif.cir", "--param", "tsm1.roff=10meg", "-q"])
            .args(&args)
            .arg("--out")
            .arg(dir.path().join(expect.replace(' ', "_")))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(expect),
            "{args:?}: {err}"
        );
    }
}

/// The accuracy measure classifies test images with the shipped model and
/// the swept circuit: the nominal MIF classifies them, a memristor whose
/// switching threshold is raised (V_on 20 → 26 mV) fires less.
#[test]
fn accuracy_measure_runs_the_network_on_the_swept_circuit() {
    let Some(data) = common::shared_datasets() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sweep", "mif.cir", "--param", "tsm1.von=20m,26m"])
        .args(["--measure", "accuracy", "--limit", "20", "-q", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let l: Vec<serde_json::Value> = lines(dir.path())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let get = |i: usize, k: &str| l[i][k].as_f64().unwrap();
    assert_eq!(l[0]["images"], 20);
    assert!(get(0, "accuracy") >= 0.9, "{:?}", l[0]);
    assert!(get(0, "energy_j_per_inference") > 0.0);
    assert!(
        get(1, "spikes_per_image") < 0.9 * get(0, "spikes_per_image"),
        "{l:?}"
    );
    let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
    assert!(csv.starts_with("index,tsm1.von,accuracy,energy_j_per_inference,spikes_per_image"));
}

fn network_sweep(data: &Path, out: &Path, threads: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let data = data.to_str().unwrap();
    let mut args = vec!["mif.cir", "--measure", "accuracy", "--limit", "6"];
    args.extend(["--steps", "5", "-q", "--data", data]);
    args.extend(extra);
    sweep_lines(&args, out, threads)
}

/// Monte Carlo in a network: each chip draws `--devices` devices and every
/// neuron gets one of them. σ = 0 reproduces the nominal network exactly; a
/// list of spreads is a `sigma:` grid axis; a 20 % spread of C_m moves the
/// spike count; the same seed gives the same lines on 1 and 2 threads.
#[test]
fn network_monte_carlo_gives_every_neuron_a_device() {
    let Some(data) = common::shared_datasets() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nominal = network_sweep(&data, &dir.path().join("n"), "2", &["--param", "cm=0.2n"]);
    let spread = ["--mc", "1", "--devices", "4", "--sigma", "cm=0%,20%"];
    let one = network_sweep(&data, &dir.path().join("one"), "1", &spread);
    let two = network_sweep(&data, &dir.path().join("two"), "2", &spread);
    assert_eq!(one, two);
    assert_eq!(one.len(), 2);
    assert_eq!(one[1]["params"]["sigma:cm"], 0.2);
    assert_eq!(one[0]["mc"]["devices"], 4);
    for key in ["accuracy", "spikes_per_image", "energy_j_per_inference"] {
        assert_eq!(one[0][key], nominal[0][key], "{key}");
    }
    let spikes = |l: &serde_json::Value| l["spikes_per_image"].as_f64().unwrap();
    assert_ne!(spikes(&one[1]), spikes(&one[0]));
    let cm = &one[1]["samples"][0]["factors"]["cm"];
    assert!(cm["std"].as_f64().unwrap() > 0.01, "{cm}");
    let csv = std::fs::read_to_string(dir.path().join("one/results.csv")).unwrap();
    assert!(csv.starts_with("index,sigma:cm,accuracy"), "{csv}");
}
