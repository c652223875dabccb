//! Bad input through the command line, as a user meets it: every malformed
//! netlist ends with exit code 1 (never a panic, which exits 101) and a
//! message located at file:line:col. The parser's own table of located
//! syntax errors is in netlist_parse_errors.rs; this one covers
//! elaboration (names, models, topology, parameters) and solver failures.

use std::path::Path;
use std::process::Command;

fn sim(dir: &Path, text: &str, extra: &[&str]) -> (i32, String) {
    let path = dir.join("bad.cir");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .arg("sim")
        .arg(&path)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .arg("-q")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const MIF: &str = "YMEMRISTOR M1 mem rest tsm1\n.MODEL tsm1 MEMRISTOR LEVEL=101\n";

/// (case, netlist, location "line:col" or "" when none applies, message part)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("undefined param", "t\nR1 a 0 {rx}\nV1 a 0 1\n.op\n", ":2:", "undefined parameter 'rx'"),
    ("undefined model", "t\nI1 0 a 1n\nC1 a 0 1p\nR1 a 0 1k\nYMEMRISTOR M1 a 0 nomodel\n.op\n", ":5:", "undefined model 'nomodel'"),
    ("model type mismatch", "t\nV1 a 0 1\nR1 a 0 1k\nYMEMRISTOR M1 a 0 rst\n.MODEL rst NRESET VTH=20m\n.op\n", ":4:", "is of type nreset"),
    ("duplicate element", "t\nV1 a 0 1\nR1 a 0 1k\nR1 a 0 2k\n.op\n", ":4:", "duplicate element name 'r1'"),
    ("duplicate model", "t\nV1 a 0 1\nR1 a 0 1k\n.MODEL m sw\n.MODEL m sw\n.op\n", ":5:", "duplicate .model 'm'"),
    ("duplicate param", "t\n.param a=1\n.param a=2\nV1 x 0 {a}\nR1 x 0 1k\n.op\n", ":3:", "duplicate .param 'a'"),
    ("circular params", "t\n.param a={b}\n.param b={a}\nV1 x 0 {a}\nR1 x 0 1k\n.op\n", ":2:", "circular"),
    ("floating node", "t\nV1 a 0 1\nR1 a b 1k\nC1 b c 1p\nC2 c 0 1p\n.op\n", ":4:", "no DC path to ground"),
    ("single connection", "t\nV1 a 0 1\nR1 a 0 1k\nR2 a dangling 1k\n.op\n", ":4:", "only one connection"),
    ("loop of V sources", "t\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n.op\n", ":3:", "loop of voltage sources"),
    ("shorted V source", "t\nV1 a a 1\nR1 a 0 1k\n.op\n", ":2:", "shorted"),
    ("recursive subckt", "t\n.subckt s a b\nX1 a b s\n.ends\nX1 n 0 s\nV1 n 0 1\n.op\n", ":3:", "recursive subcircuit 's'"),
    ("undefined subckt", "t\nX1 n 0 nosuch\nV1 n 0 1\n.op\n", ":2:", "undefined subcircuit 'nosuch'"),
    ("port count", "t\n.subckt s a b\nR1 a b 1k\n.ends\nX1 n s\nV1 n 0 1\n.op\n", ":5:", "port(s)"),
    ("unknown subckt param", "t\n.subckt s a b params: r=1k\nR1 a b {r}\n.ends\nX1 n 0 s q=2\nV1 n 0 1\n.op\n", ":5:", "has no parameter 'q'"),
    ("unknown model parameter", "t\nI1 0 mem 1n\nC1 mem 0 1p\nV1 rest 0 0\nYMEMRISTOR M1 mem rest m\n.MODEL m MEMRISTOR LEVEL=101 RONN=1k\n.op\n", ":6:", "unknown parameter 'ronn'"),
    ("unsupported memristor level", "t\nI1 0 mem 1n\nC1 mem 0 1p\nV1 rest 0 0\nYMEMRISTOR M1 mem rest m\n.MODEL m MEMRISTOR LEVEL=2\n.op\n", ":6:", "LEVEL=2 is not supported"),
    ("bad thresholds", "t\nI1 0 mem 1n\nC1 mem 0 1p\nV1 rest 0 0\nYMEMRISTOR M1 mem rest m\n.MODEL m MEMRISTOR LEVEL=101 VON=1m VOFF=5m\n.op\n", ":6:", "VOFF < VON"),
    ("X0 out of range", "t\nI1 0 mem 1n\nC1 mem 0 1p\nV1 rest 0 0\nYMEMRISTOR M1 mem rest m X0=2\n.MODEL m MEMRISTOR LEVEL=101\n.op\n", ":5:", "X0 of m1 must be in [0, 1]"),
    ("negative resistance", "t\nV1 a 0 1\nR1 a 0 -5\n.op\n", ":3:", "resistance of r1 must be positive"),
    ("zero capacitance", "t\nV1 a 0 1\nR1 a b 1k\nC1 b 0 0\nR2 b 0 1k\n.op\n", ":4:", "capacitance of c1 must be positive"),
    ("unsupported option", "t\nV1 a 0 1\nR1 a 0 1k\n.options frobnicate=1\n.op\n", ":4:", "unsupported option 'frobnicate'"),
    ("maxord out of range", "t\nV1 a 0 1\nR1 a 0 1k\n.options maxord=6\n.op\n", ":4:", "maxord must be a whole number from 1 to 5, got 6"),
    ("bad method", "t\nV1 a 0 1\nR1 a 0 1k\n.options method=rk4\n.op\n", ":4:", "method must be"),
    ("spike unknown device", "t\nI1 0 mem 1n\nC1 mem 0 1p\nR1 mem 0 1k\n.spike mem MEMRISTOR=m9 LEVEL=0.5\n.tran 1u 1m\n", ":5:", "unknown device 'm9'"),
    ("spike on a resistor", "t\nI1 0 mem 1n\nC1 mem 0 1p\nR1 mem 0 1k\n.spike mem MEMRISTOR=r1 LEVEL=0.5\n.tran 1u 1m\n", ":5:", "not a memristor"),
    ("spike reset not a reset", "t\nI1 0 mem 1n\nC1 mem 0 1p\nR1 mem 0 1k\n.spike mem RESET=r1\n.tran 1u 1m\n", ":5:", "not a YRESET"),
    ("spike unknown node", "t\nI1 0 mem 1n\nC1 mem 0 1p\nR1 mem 0 1k\n.spike nowhere VTH=1\n.tran 1u 1m\n", ":5:", "unknown node 'nowhere'"),
    ("ic unknown node", "t\nV1 a 0 1\nR1 a 0 1k\n.ic v(zz)=1\n.op\n", ":4:", "unknown node 'zz'"),
    ("dc of a resistor", "t\nV1 a 0 1\nR1 a 0 1k\n.dc R1 0 1 0.1\n", ":4:", "not an independent V or I source"),
    ("dc step direction", "t\nV1 a 0 1\nR1 a 0 1k\n.dc V1 0 1 -0.1\n", ":4:", "does not lead"),
    ("tran negative stop", "t\nV1 a 0 1\nR1 a 0 1k\n.tran 1u -1m\n", ":4:", "tstop must be positive"),
    ("reset vreset above vth", "t\nI1 0 mem 1n\nC1 mem 0 1p\nR1 mem 0 1meg\nYRESET R9 mem 0 r\n.MODEL r NRESET VTH=10m VRESET=20m\n.tran 1u 1m\n", ":6:", "VRESET"),
    ("step of a non-param", "t\nV1 a 0 1\nR1 a 0 1k\n.step param zz list 1 2\n.op\n", ":4:", "not a .param"),
    ("no analysis", "t\nV1 a 0 1\nR1 a 0 1k\n.end\n", "", "no analysis"),
    ("parse error through the CLI", "t\nR1 a 0\n.op\n", ":2:", "expected"),
    ("unsupported element", "t\nQ1 c b e qmod\n.op\n", ":2:1", "unsupported element"),
];

#[test]
fn malformed_netlists_give_located_errors_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (case, text, at, part) in CASES {
        let text = text.replace("{MIF}", MIF);
        let (code, err) = sim(dir.path(), &text, &[]);
        let located = at.is_empty() || err.contains(&format!("bad.cir{at}"));
        if code != 1 || !located || !err.contains(part) || err.contains("panicked") {
            failures.push(format!("{case}: exit {code}, stderr: {}", err.trim()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 35);
}

#[test]
fn unknown_param_override_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = sim(
        dir.path(),
        "t\n.param r=1k\nV1 a 0 1\nR1 a 0 {r}\n.op\n",
        &["--param", "rr=2k"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no .param, model parameter"), "{err}");
    let (code, _) = sim(
        dir.path(),
        "t\n.param r=1k\nV1 a 0 1\nR1 a 0 {r}\n.op\n",
        &["--param", "r=2k"],
    );
    assert_eq!(code, 0);
}

/// A memristor neuron started right at its switching fold with tolerances
/// below double precision cannot converge; the error names the time, the
/// step size and the unknown (device or node) that failed.
#[test]
fn non_convergence_names_time_step_and_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let text = "non-converging MIF\nIin 0 mem DC 2.5n\nCm mem 0 0.2n IC=-51.2m\nVrest rest 0 DC -70m\n\
        YMEMRISTOR M1 mem rest tsm1 X0=0\n.MODEL tsm1 MEMRISTOR LEVEL=101 RON=100k ROFF=10meg VON=20m VOFF=2m TON=1u TOFF=1u VS=0.25m P=4\n\
        .OPTIONS RELTOL=1e-15 VNTOL=1e-21 XTOL=1e-21 ABSTOL=1e-24\n.TRAN 10u 0.1m UIC\n.END\n";
    let (code, err) = sim(dir.path(), text, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("transient analysis failed at t = "), "{err}");
    assert!(err.contains("with step "), "{err}");
    assert!(
        err.contains("vrest") || err.contains("'m1'") || err.contains("node 'mem'"),
        "{err}"
    );
}

#[test]
fn sim_writes_every_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let status = Command::new(env!("CARGO_BIN_EXE_circsnn"))
        .args(["sim", "mif.cir", "--param", "tstop=20m", "-q", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    for f in [
        "waveforms.csv",
        "mif.raw",
        "spikes.csv",
        "summary.json",
        "figure.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let header = std::fs::read_to_string(out.join("waveforms.csv")).unwrap();
    let header = header.lines().next().unwrap();
    assert_eq!(header, "time_s,v(mem),v(rest),i(vrest),x(m1),i(iin)");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "analysis",
        "accepted_steps",
        "rejected_steps",
        "newton_iterations",
        "wall_s",
        "spike_count",
        "mean_rate_hz",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    // 2.5 nA: about 392 Hz, so 20 ms holds 7 or 8 spikes.
    let n = summary["spike_count"].as_u64().unwrap();
    assert!((6..=9).contains(&n), "{n} spikes in 20 ms");
    let spikes = std::fs::read_to_string(out.join("spikes.csv")).unwrap();
    assert_eq!(spikes.lines().count() as u64, n + 1);
}
