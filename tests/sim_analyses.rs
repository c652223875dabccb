//! `.op`, `.dc`, `.save`, `.step`, subcircuits and parameters, through the
//! library and the CLI, against values worked out by hand.

use circsnn::analysis;
use circsnn::circuit::elaborate;
use circsnn::netlist::parse_str;
use std::path::Path;
use std::process::Command;

fn op_values(text: &str) -> circsnn::output::Waveforms {
    let nl = parse_str(text, Path::new("t.cir")).unwrap();
    let mut c = elaborate(&nl, &[]).unwrap();
    let mut mna = analysis::build(&mut c).unwrap();
    let a = c.analyses[0].clone();
    analysis::run(&mut c, &mut mna, &a).unwrap().waveforms
}

#[test]
fn operating_point_of_a_divider_with_subckt_params_and_func() {
    let w = op_values(
        "divider\n.param rtop=3k\n.func half(x) {x/2}\n.subckt div in out params: r1=1k r2=1k\nRa in out {r1}\nRb out 0 {r2}\n.ends\n\
         V1 a 0 DC {half(8)}\nX1 a b div r1={rtop}\nE1 c 0 b 0 2\nRl c 0 1k\nG1 0 d b 0 1m\nRd d 0 2k\n.op\n.end\n",
    );
    let v = |n: &str| w.signal(n).unwrap().values[0];
    // 4 V across 3k + 1k: 1 V at b; E doubles it; G pushes 1 mA·1 V into 2 kΩ.
    assert!((v("v(a)") - 4.0).abs() < 1e-9);
    assert!((v("v(b)") - 1.0).abs() < 1e-9);
    assert!((v("v(c)") - 2.0).abs() < 1e-9);
    assert!((v("v(d)") - 2.0).abs() < 1e-9);
    // Branch current of V1: 1 mA flows out of its + terminal, so i(v1) = −1 mA.
    assert!((v("i(v1)") + 1e-3).abs() < 1e-12);
    assert!(w.signal("v(x1.b)").is_none() && w.signal("v(b)").is_some());
}

#[test]
fn memristor_operating_point_picks_the_state_from_x0() {
    // Between V_off and V_on the device is bistable: X0 chooses the branch.
    let base = "bistable\nV1 a 0 DC 10m\nRs a b 1\nYMEMRISTOR M1 b 0 m X0=XX\n.MODEL m MEMRISTOR LEVEL=101\n.op\n";
    let off = op_values(&base.replace("XX", "0"));
    let on = op_values(&base.replace("XX", "1"));
    assert!(off.signal("x(m1)").unwrap().values[0] < 1e-3);
    assert!(on.signal("x(m1)").unwrap().values[0] > 0.999);
}

#[test]
fn dc_sweep_is_linear_for_a_divider() {
    let nl = parse_str(
        "dc\nV1 a 0 0\nR1 a b 1k\nR2 b 0 3k\n.dc V1 0 2 0.5\n",
        Path::new("t.cir"),
    )
    .unwrap();
    let mut c = elaborate(&nl, &[]).unwrap();
    let mut mna = analysis::build(&mut c).unwrap();
    let a = c.analyses[0].clone();
    let w = analysis::run(&mut c, &mut mna, &a).unwrap().waveforms;
    assert_eq!(w.sweep, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    for (s, v) in w.sweep.iter().zip(&w.signal("v(b)").unwrap().values) {
        assert!((v - 0.75 * s).abs() < 1e-9);
    }
}

#[test]
fn save_filters_columns_and_step_runs_each_value() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("s.cir");
    std::fs::write(&net, "step\n.param r=1k\nV1 a 0 PULSE(0 1 0 1u 1u 1 2)\nR1 a b {r}\nC1 b 0 1u\n.save v(b) v(a,b)\n.step param r list 1k 2k\n.tran 10u 2m\n").unwrap();
    let out = dir.path().join("o");
    let st = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .arg("sim")
        .arg(&net)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .status()
        .unwrap();
    assert!(st.success());
    let mut last_b = Vec::new();
    for k in ["step001", "step002"] {
        let csv = std::fs::read_to_string(out.join(k).join("waveforms.csv")).unwrap();
        // A name with a comma is quoted, as CSV requires.
        assert_eq!(csv.lines().next().unwrap(), "time_s,v(b),\"v(a,b)\"");
        let last = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap();
        last_b.push(last);
    }
    // At 2 ms: 1 − e^{−2} for τ = 1 ms, 1 − e^{−1} for τ = 2 ms.
    assert!(
        (last_b[0] - (1.0 - (-2.0f64).exp())).abs() < 5e-3,
        "{last_b:?}"
    );
    assert!(
        (last_b[1] - (1.0 - (-1.0f64).exp())).abs() < 5e-3,
        "{last_b:?}"
    );
}

/// `--param` reaches model parameters (also ones the model leaves at their
/// default) and element values, not only `.param`s.
#[test]
fn overrides_reach_model_parameters_and_element_values() {
    let rate = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["sim", "mif.cir", "--param", "tstop=0.1", "-q"];
        args.extend_from_slice(extra);
        let st = Command::new(env!("CARGO_BIN_EXE_circsnn"))
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success());
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        s["spike_count"].as_u64().unwrap()
    };
    let base = rate(&[]);
    // Halving C halves the charging time: about twice the spikes.
    let small_c = rate(&["--param", "cm=0.1n"]);
    assert!(small_c as f64 > 1.7 * base as f64, "{base} → {small_c}");
    // A higher V_on threshold (model parameter) lowers the rate.
    let high_von = rate(&["--param", "tsm1.von=23m"]);
    assert!(high_von < base, "{base} → {high_von}");
    // A parameter the model leaves at its default can be set too (P = 4 → 6).
    assert!(rate(&["--param", "tsm1.p=6"]) > 0);
}
