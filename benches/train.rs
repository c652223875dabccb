//! Training throughput of the focused CPU trainer: one step (forward,
//! backward, Adam) of `mnist-thesis` on a batch of 64 images.

use circsnn::train::arch::{by_name, ArchOptions, InputShape};
use circsnn::train::net::{softmax_cross_entropy, Mode};
use circsnn::train::{Activation, Adam, Net, SoftLif};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const BATCH: usize = 64;

fn step_bench(c: &mut Criterion) {
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let arch = by_name("mnist-thesis", input, 10, &ArchOptions::default()).unwrap();
    // Deterministic pseudo-images in [0, 1) and labels.
    let x: Vec<f32> = (0..BATCH * 784)
        .map(|k| ((k * 7919) % 256) as f32 / 256.0)
        .collect();
    let labels: Vec<u8> = (0..BATCH).map(|k| (k % 10) as u8).collect();
    let mut group = c.benchmark_group("train_step_mnist_thesis_b64");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for (name, activation) in [
        ("relu", Activation::Relu),
        ("soft_lif", Activation::SoftLif(SoftLif::default())),
    ] {
        let mut net = Net::new(arch.clone(), activation, 1).unwrap();
        // A tiny learning rate: every step does the full Adam work, but the
        // weights stay near initialisation instead of over-fitting the one
        // batch for thousands of steps (which would push pre-activations off
        // the activation table onto its slower exact path).
        let mut adam = Adam::new(&net.params(), 1e-7);
        group.bench_function(name, |b| {
            b.iter(|| {
                net.zero_grad();
                let logits = net.forward(black_box(&x), Mode::train(0));
                let (loss, _, d) = softmax_cross_entropy(&logits, &labels, 10, BATCH);
                net.backward(&d);
                adam.update(&mut net.params_mut());
                black_box(loss)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, step_bench);
criterion_main!(benches);
