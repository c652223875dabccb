//! `circsnn sweep` and `circsnn merge`: physics of a swept parameter,
//! resume after an interruption, thread independence, shards.

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
