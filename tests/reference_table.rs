//! circsnn's general engine against the reference numbers of devices.md §7
//! (ngspice-39 at reltol=1e-6) and the analytic LIF rate.
//!
//! Tolerances (from the issue): LIF f–I within 0.5 % of the analytic rate;
//! MIF and MIF2 f–I within 1 % of ngspice; sine-bench spike counts within ±2
//! and first spike times within 0.05 ms.

use circsnn::analysis;
use circsnn::netlist::Expr;
use rayon::prelude::*;
use std::path::Path;

/// Spike times of a shipped netlist with `.param` overrides.
fn spikes(netlist: &str, overrides: &[(&str, f64)]) -> Vec<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("netlists")
        .join(netlist);
    let ov: Vec<(String, Expr)> = overrides
        .iter()
        .map(|(n, v)| (n.to_string(), Expr::Num(*v)))
        .collect();
    analysis::run_tran_file(&path, &ov).unwrap().spikes
}

/// Steady-state rate from the mean ISI after the first spike (as §7 does).
fn rate(s: &[f64]) -> f64 {
    if s.len() < 2 {
        0.0
    } else {
        (s.len() - 1) as f64 / (s[s.len() - 1] - s[0])
    }
}

/// (I in nA, LIF analytic, MIF ngspice, MIF2 ngspice), Hz: devices.md §7.
const TABLE: [(f64, f64, f64, f64); 11] = [
    (0.00, 0.00, 0.00, 0.00),
    (1.00, 0.00, 0.00, 0.00),
    (1.80, 0.00, 0.00, 123.15),
    (1.90, 0.00, 126.23, 145.49),
    (2.00, 0.00, 193.21, 162.88),
    (2.10, 164.23, 240.63, 177.52),
    (2.20, 208.52, 282.16, 190.34),
    (2.40, 279.06, 357.38, 212.39),
    (2.60, 340.99, 427.32, 231.22),
    (2.80, 399.12, 494.37, 247.88),
    (3.00, 455.12, 559.55, 262.96),
];

fn check_column(netlist: &str, column: usize, tol: f64) {
    let rows: Vec<(f64, f64, f64)> = TABLE
        .par_iter()
        .map(|row| {
            let want = [row.1, row.2, row.3][column];
            let got = rate(&spikes(netlist, &[("iin", row.0 * 1e-9), ("tstop", 0.2)]));
            (row.0, want, got)
        })
        .collect();
    for (i, want, got) in rows {
        if want == 0.0 {
            assert_eq!(
                got, 0.0,
                "{netlist} at {i} nA should be silent, fires at {got} Hz"
            );
        } else {
            let err = (got - want).abs() / want;
            assert!(
                err <= tol,
                "{netlist} at {i} nA: {got:.3} Hz vs reference {want:.3} Hz ({:.3} %)",
                err * 100.0
            );
        }
    }
}

#[test]
fn lif_rates_match_the_analytic_formula() {
    check_column("lif.cir", 0, 0.005);
}

#[test]
fn lif_analytic_column_is_the_formula() {
    // Guards the table itself: f = 1 / (τ ln(RI / (RI − 20 mV))).
    for row in TABLE.iter().filter(|r| r.1 > 0.0) {
        let ri = 10e6 * row.0 * 1e-9;
        let f = 1.0 / (2e-3 * (ri / (ri - 0.02)).ln());
        assert!((f - row.1).abs() < 0.01, "{f} vs {}", row.1);
    }
}

#[test]
fn mif_rates_match_ngspice() {
    check_column("mif.cir", 1, 0.01);
}

#[test]
fn mif2_rates_match_ngspice() {
    check_column("mif2.cir", 2, 0.01);
}

/// Sine bench: (netlist, spike count, first spike s) from devices.md §7. The
/// LIF first spike is the exact solution of C dV/dt = I(t) − (V − E_L)/R
/// (RK4 at 10 ns: 0.3060911 s); ngspice's switch-based reset reports
/// 0.3055 s, 0.6 ms early, because its switch starts to conduct before
/// the threshold is reached.
#[test]
fn sine_bench_counts_and_first_spikes() {
    let cases = [
        ("lif_sine.cir", 137, 0.3060911),
        ("mif_sine.cir", 177, 0.2915),
        ("mif2_sine.cir", 101, 0.2710),
    ];
    let results: Vec<_> = cases.par_iter().map(|c| (c, spikes(c.0, &[]))).collect();
    for ((name, count, first), s) in results {
        assert!(
            (s.len() as i64 - *count as i64).abs() <= 2,
            "{name}: {} spikes, reference {count}",
            s.len()
        );
        assert!(
            (s[0] - first).abs() <= 0.05e-3,
            "{name}: first spike {:.6} s, reference {first} s",
            s[0]
        );
        assert!(
            s.iter().all(|&t| (0.25..0.75).contains(&t)),
            "{name}: spikes outside the supra-threshold window"
        );
    }
}
