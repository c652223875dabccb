//! General-engine speed on the reference neuron netlists (criterion).
//! `cargo bench --bench sim`; numbers and ratios go to BENCHMARKS.md.

use circsnn::analysis;
use circsnn::netlist::Expr;
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;

fn run(netlist: &str, overrides: &[(&str, f64)]) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("netlists")
        .join(netlist);
    let ov: Vec<(String, Expr)> = overrides
        .iter()
        .map(|(n, v)| (n.to_string(), Expr::Num(*v)))
        .collect();
    analysis::run_tran_file(&path, &ov).unwrap().spikes.len()
}

fn general_engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("general_engine");
    g.sample_size(10);
    g.bench_function("rc_5ms", |b| b.iter(|| run("rc.cir", &[])));
    g.bench_function("lif_sine_1s", |b| b.iter(|| run("lif_sine.cir", &[])));
    g.bench_function("mif_sine_1s", |b| b.iter(|| run("mif_sine.cir", &[])));
    g.bench_function("mif2_sine_1s", |b| b.iter(|| run("mif2_sine.cir", &[])));
    g.bench_function("mif_2.5nA_1s", |b| {
        b.iter(|| run("mif.cir", &[("iin", 2.5e-9)]))
    });
    g.finish();
}

criterion_group!(benches, general_engine);
criterion_main!(benches);
