//! Batched neuron cost: 34,000 neurons, network step dt = 1 ms, every
//! model on the same population, all on ONE thread (rayon pool of 1), so
//! the ns per neuron-step compare like for like.
//!
//! Inputs (seeded, constant over the run so the neurons are in their
//! steady state): instance i takes U(0, 1.5) nA (silent) when i mod 10 is
//! 0–4, U(1.9, 2.3) nA (slow, near the rheobase) when it is 5–7 and
//! U(2.3, 3.0) nA (fast) when it is 8–9: 50 % / 30 % / 20 %. One iteration
//! advances all 34,000 neurons by one step; ns per neuron-step = time per
//! iteration / 34,000. Models: abstract LIF (τ = 2 ms, rheobase 2 nA),
//! abstract IF (spiking ReLU, 450 Hz/nA above 2 nA), analytic MIF
//! (devices.md §4 constants), and the circuits of devices.md §6 (LIF, MIF,
//! MIF2) in the batched engine, with the spike map (default) and, for the
//! MIF, without it. After the timings, each circuit's `KernelStats` per
//! neuron-step are printed (where the time goes).

use circsnn::circuit::elaborate;
use circsnn::netlist::parse_str;
use circsnn::neuron::workload::heterogeneous_inputs;
use circsnn::neuron::{AnalyticMif, Lif, NeuronKernel, NeuronModel, NeuronOptions, SpikingRelu};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const NEURONS: usize = 34_000;
const DT: f64 = 1e-3;
/// Steps run before measuring, to get past the start-up transient.
const WARMUP_STEPS: usize = 20;

/// devices.md §6 circuits, with the batched engine's input directive;
/// `{options}` is an optional `.OPTIONS` line.
const LIF_CIR: &str = "* lif\nIin 0 mem DC 0\nCm  mem 0 0.2n IC=-70m\nRm  mem rest 10meg\nVL  rest 0 DC -70m\nYRESET R1 mem rest rst\n.MODEL rst NRESET VTH=20m VRESET=0 TREF=0\n.SPIKE mem RESET=R1\n.NEURON INPUT=mem\n{options}.TRAN 10u 1 UIC\n.END\n";
const MIF: &str = "* mif\nIin 0 mem DC 0\nCm  mem 0 0.2n IC=-70m\nVrest rest 0 DC -70m\nYMEMRISTOR M1 mem rest tsm1 X0=0\n.MODEL tsm1 MEMRISTOR LEVEL=101 RON=100k ROFF=10meg VON=20m VOFF=2m TON=1u TOFF=1u VS=0.25m P=4\n.SPIKE mem MEMRISTOR=M1 LEVEL=0.5\n.NEURON INPUT=mem\n{options}.TRAN 10u 1 UIC\n.END\n";
const MIF2: &str = "* mif2\nIin 0 mem DC 0\nCm  mem 0 0.2n IC=-70m\nVrest  rest 0 DC -70m\nVreset rst  0 DC -80m\nYMEMRISTOR M1 mem rest tsm1 X0=0\nYMEMRISTOR M2 mem rst  tsm2 X0=0\n.MODEL tsm1 MEMRISTOR LEVEL=101 RON=100k ROFF=10meg VON=20m   VOFF=2m TON=1u TOFF=1u VS=0.25m P=4\n.MODEL tsm2 MEMRISTOR LEVEL=101 RON=100k ROFF=1g    VON=29.5m VOFF=5m TON=1u TOFF=2m VS=0.25m P=4\n.SPIKE mem MEMRISTOR=M1,M2 LEVEL=0.5\n.NEURON INPUT=mem\n{options}.TRAN 10u 1 UIC\n.END\n";

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

fn kernel(template: &str, options: &str, spike_map: bool) -> NeuronKernel {
    let text = template.replace("{options}", options);
    let netlist = parse_str(&text, Path::new("neuron.cir")).unwrap();
    let circuit = elaborate(&netlist, &[]).unwrap();
    let mut opts = NeuronOptions::from_circuit(&circuit);
    opts.spike_map = spike_map;
    NeuronKernel::new(&circuit, NEURONS, opts).unwrap()
}

fn bench_kernel(c: &mut Criterion, name: &str, mut k: NeuronKernel, inputs: &[f64]) {
    let (steps_before, t_before) = (k.stats(), k.time());
    bench_model(c, name, &mut k, inputs);
    let (s, steps) = (
        k.stats(),
        ((k.time() - t_before) / DT).round() * NEURONS as f64,
    );
    let per = |a: u64, b: u64| (a - b) as f64 / steps;
    eprintln!(
        "{name}: per neuron-step (warm-up included) accepted {:.3} rejected {:.3} Newton {:.3}; transients mapped {:.4} integrated {:.4}; {} map cells",
        per(s.accepted_steps, steps_before.accepted_steps),
        per(s.rejected_steps, steps_before.rejected_steps),
        per(s.newton_iterations, steps_before.newton_iterations),
        per(s.mapped_transients, steps_before.mapped_transients),
        per(s.integrated_transients, steps_before.integrated_transients),
        k.spike_map_cells()
    );
}

/// Whether the bench `name` can match the command-line filter: building
/// a circuit kernel and its warm-up take seconds, so benches that the
/// filter (when it is a plain name fragment) excludes are not built.
fn selected(name: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    match filter {
        Some(f) if f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => name.contains(&f),
        _ => true,
    }
}

fn neurons(c: &mut Criterion) {
    // One thread for every model (the circuit engine runs over rayon).
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the global pool is built once");
    let inputs = heterogeneous_inputs(NEURONS);
    bench_model(
        c,
        "abstract_lif",
        &mut Lif::circuit_equivalent(NEURONS),
        &inputs,
    );
    bench_model(
        c,
        "abstract_if",
        &mut SpikingRelu::new(NEURONS, 450e9, 2e-9).unwrap(),
        &inputs,
    );
    bench_model(
        c,
        "analytic_mif",
        &mut AnalyticMif::default_mif(NEURONS),
        &inputs,
    );
    let circuits = [
        ("circuit_lif", LIF_CIR, "", true),
        ("circuit_mif", MIF, "", true),
        ("circuit_mif2", MIF2, "", true),
        ("circuit_mif_no_map", MIF, "", false),
        (
            "circuit_mif_reltol_1e-6",
            MIF,
            ".OPTIONS RELTOL=1e-6\n",
            true,
        ),
    ];
    for (name, template, options, spike_map) in circuits {
        if selected(name) {
            bench_kernel(c, name, kernel(template, options, spike_map), &inputs);
        }
    }
}

criterion_group!(benches, neurons);
criterion_main!(benches);
