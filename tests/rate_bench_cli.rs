//! `circsnn rate` and `circsnn bench` as a user runs them.

use std::process::Command;

fn circsnn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_circsnn"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// The MIF and MIF2 f–I curves from the batched engine agree with
/// devices.md §7 (ngspice) within 1 %; the rheobase is bracketed; a second
/// run comes from the cache with identical numbers.
#[test]
fn rate_curves_match_the_reference_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let run = || {
        let st = circsnn()
            .args([
                "rate",
                "mif.cir",
                "mif2.cir",
                "--currents",
                "1.0e-9,2.0e-9,2.4e-9,3.0e-9",
                "-q",
                "--out",
            ])
            .arg(&out)
            .env("CIRCSNN_CACHE", &cache)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read_to_string(out.join("rate.csv")).unwrap()
    };
    let first = run();
    let reference = [
        ("netlists/mif.cir", [0.0, 193.21, 357.38, 559.55]),
        ("netlists/mif2.cir", [0.0, 162.88, 212.39, 262.96]),
    ];
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], "netlist,current_a,rate_hz");
    assert_eq!(lines.len(), 9);
    for (k, (name, want)) in reference.iter().enumerate() {
        for (j, w) in want.iter().enumerate() {
            let cols: Vec<&str> = lines[1 + 4 * k + j].split(',').collect();
            assert!(cols[0].ends_with(&name[9..]), "{cols:?}");
            let got: f64 = cols[2].parse().unwrap();
            if *w == 0.0 {
                assert_eq!(got, 0.0);
            } else {
                assert!((got - w).abs() / w < 0.01, "{name} point {j}: {got} vs {w}");
            }
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rate.json")).unwrap()).unwrap();
    let rheo = json[0]["rheobase_a"].as_f64().unwrap();
    assert!((1.8e-9..1.9e-9).contains(&rheo), "MIF rheobase {rheo}");
    assert!(out.join("rate.svg").exists());
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "one cache entry per netlist"
    );
    assert_eq!(run(), first, "the cached curve differs");
}

#[test]
fn rate_rejects_a_netlist_without_neuron_directive() {
    let dir = tempfile::tempdir().unwrap();
    let out = circsnn()
        .args(["rate", "rc.cir", "--out"])
        .arg(dir.path())
        .env("CIRCSNN_CACHE", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".SPIKE") || err.contains(".NEURON"), "{err}");
}

#[test]
fn bench_json_has_every_model_and_ratios() {
    let out = circsnn()
        .args([
            "bench",
            "--json",
            "--neurons",
            "300",
            "--seconds",
            "0.01",
            "--no-single",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["threads"].as_u64().unwrap() >= 1);
    for m in [
        "lif_abstract",
        "if_abstract",
        "mif_analytic",
        "lif_circuit",
        "mif_circuit",
        "mif2_circuit",
    ] {
        let ns = v["models"][m]["ns_per_neuron_step"]
            .as_f64()
            .unwrap_or_else(|| panic!("{m} missing"));
        assert!(ns > 0.0 && ns.is_finite());
        assert!(v["models"][m]["ratio_vs_lif_abstract"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(
        v["models"]["lif_abstract"]["ratio_vs_lif_abstract"].as_f64(),
        Some(1.0)
    );
}
