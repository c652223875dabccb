//! Batched neuron cost: 34,000 neurons, network step dt = 1 ms.
//!
//! Inputs (seeded, constant over the run so the neurons are in their
//! steady state): 50 % silent at U(0, 1.5) nA, 30 % slow at U(1.9, 2.3) nA,
//! 20 % fast at U(2.3, 3.0) nA. One iteration advances all 34,000 neurons
//! by one step; ns per neuron-step = time per iteration / 34,000.

use circsnn::circuit::elaborate;
use circsnn::netlist::parse_str;
use circsnn::neuron::{Lif, NeuronKernel, NeuronModel, NeuronOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const NEURONS: usize = 34_000;
const DT: f64 = 1e-3;
/// Steps run before measuring, to get past the start-up transient.
const WARMUP_STEPS: usize = 20;

/// devices.md §6 MIF, with the batched engine's input directive.
const MIF: &str = "* mif\nIin 0 mem DC 0\nCm  mem 0 0.2n IC=-70m\nVrest rest 0 DC -70m\nYMEMRISTOR M1 mem rest tsm1 X0=0\n.MODEL tsm1 MEMRISTOR LEVEL=101 RON=100k ROFF=10meg VON=20m VOFF=2m TON=1u TOFF=1u VS=0.25m P=4\n.SPIKE mem MEMRISTOR=M1 LEVEL=0.5\n.NEURON INPUT=mem\n{options}.TRAN 10u 1 UIC\n.END\n";

fn heterogeneous_inputs() -> Vec<f64> {
    let mut state: u64 = 42;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    };
    (0..NEURONS)
        .map(|i| {
            let (lo, hi) = match i % 10 {
                0..=4 => (0.0, 1.5e-9),
                5..=7 => (1.9e-9, 2.3e-9),
                _ => (2.3e-9, 3.0e-9),
            };
            lo + (hi - lo) * uniform()
        })
        .collect()
}

fn bench_model(c: &mut Criterion, name: &str, model: &mut dyn NeuronModel, inputs: &[f64]) {
    let mut spikes = Vec::with_capacity(NEURONS);
    for _ in 0..WARMUP_STEPS {
        spikes.clear();
        model.advance(DT, inputs, &mut spikes).unwrap();
    }
    let mut group = c.benchmark_group("neuron_step_34k");
    group.throughput(Throughput::Elements(NEURONS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(name, |b| {
        b.iter(|| {
            spikes.clear();
            model.advance(DT, black_box(inputs), &mut spikes).unwrap();
            black_box(spikes.len())
        })
    });
    group.finish();
}

fn mif_kernel(options: &str) -> NeuronKernel {
    let text = MIF.replace("{options}", options);
    let netlist = parse_str(&text, Path::new("mif.cir")).unwrap();
    let circuit = elaborate(&netlist, &[]).unwrap();
    NeuronKernel::new(&circuit, NEURONS, NeuronOptions::from_circuit(&circuit)).unwrap()
}

fn neurons(c: &mut Criterion) {
    let inputs = heterogeneous_inputs();
    bench_model(
        c,
        "abstract_lif",
        &mut Lif::circuit_equivalent(NEURONS),
        &inputs,
    );
    bench_model(c, "circuit_mif_reltol_1e-3", &mut mif_kernel(""), &inputs);
    bench_model(
        c,
        "circuit_mif_reltol_1e-6",
        &mut mif_kernel(".OPTIONS RELTOL=1e-6\n"),
        &inputs,
    );
}

criterion_group!(benches, neurons);
criterion_main!(benches);
