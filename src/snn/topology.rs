//! Populations and connections of a converted network.
//!
//! Every ANN activation closes a *population* (one neuron per value); the
//! layers between two populations form a *connection*: zero or more average
//! pools, an optional flatten (an identity on indices, since both sides are
//! laid out channel, row, column) and exactly one weighted layer (conv2d or
//! dense). The last connection ends in the output layer, which has no
//! activation and is read out.
//!
//! Propagation is event-driven: a connection takes a list of
//! `(source index, amount)` events and scatters `amount · scale · w` along
//! each source's outgoing weights (a dense column or a conv kernel
//! footprint). Weights are stored transposed so that one source's fan-out is
//! contiguous. A convolution step where so many sources fire that the
//! scatter would cost more than the whole convolution is computed as one
//! im2col + GEMM product instead (same sum, same SynOps count): in the
//! CIFAR networks a third of the first layers' neurons fire every step.

use super::{Result, SnnError};
use crate::train::arch::InputShape;
use crate::train::layers::ConvShape;
use crate::train::net::Layer;
use crate::train::Net;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Average pooling of a `c × h × w` input (no padding).
#[derive(Clone, Debug)]
pub struct Pool {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub size: usize,
    pub stride: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Pool {
    /// Push the pooled events of one input event onto `out`.
    fn propagate(&self, idx: usize, amount: f64, out: &mut Vec<(usize, f64)>) {
        let plane = self.h * self.w;
        let (c, y, x) = (idx / plane, (idx % plane) / self.w, idx % self.w);
        let share = amount / (self.size * self.size) as f64;
        // Windows [o·s, o·s + size) that contain the coordinate.
        let range = |p: usize, n: usize| {
            let lo = (p + self.stride).saturating_sub(self.size) / self.stride;
            let lo = if lo * self.stride + self.size <= p {
                lo + 1
            } else {
                lo
            };
            let hi = (p / self.stride).min(n.saturating_sub(1));
            lo..=hi
        };
        for oy in range(y, self.out_h) {
            for ox in range(x, self.out_w) {
                out.push(((c * self.out_h + oy) * self.out_w + ox, share));
            }
        }
    }
}

/// The weighted layer of a connection.
#[derive(Clone, Debug)]
pub enum Weighted {
    Conv {
        shape: ConvShape,
        out_c: usize,
        /// `[in_c][kernel][kernel][out_c]`.
        weight_t: Vec<f32>,
    },
    Dense {
        in_f: usize,
        out_f: usize,
        /// `[in_f][out_f]`.
        weight_t: Vec<f32>,
    },
}

impl Weighted {
    fn in_len(&self) -> usize {
        match self {
            Weighted::Conv { shape: g, .. } => g.in_c * g.in_h * g.in_w,
            Weighted::Dense { in_f, .. } => *in_f,
        }
    }

    fn out_len(&self) -> usize {
        match self {
            Weighted::Conv {
                shape: g, out_c, ..
            } => out_c * g.out_h * g.out_w,
            Weighted::Dense { out_f, .. } => *out_f,
        }
    }

    /// `u += a · W[:, idx]`; returns the number of synaptic updates. A
    /// convolution's `u` is laid out position-major here (`[y][x][out_c]`,
    /// see [`Connection::scatter`]), so one tap's out_c targets are
    /// contiguous.
    #[inline]
    fn scatter_one(&self, idx: usize, a: f64, u: &mut [f64]) -> u64 {
        match self {
            Weighted::Dense {
                out_f, weight_t, ..
            } => {
                let col = &weight_t[idx * out_f..(idx + 1) * out_f];
                for (ui, &w) in u.iter_mut().zip(col) {
                    *ui += a * w as f64;
                }
                *out_f as u64
            }
            Weighted::Conv {
                shape: g,
                out_c,
                weight_t,
            } => {
                let (in_w, out_h, out_w, out_c) = (g.in_w, g.out_h, g.out_w, *out_c);
                let (k, s, pad) = (g.kernel, g.stride, g.pad);
                let plane = g.in_h * in_w;
                let (c, y, x) = (idx / plane, (idx % plane) / in_w, idx % in_w);
                let mut ops = 0;
                for i in 0..k {
                    let ny = y + pad;
                    if ny < i || (ny - i) % s != 0 || (ny - i) / s >= out_h {
                        continue;
                    }
                    let oy = (ny - i) / s;
                    for j in 0..k {
                        let nx = x + pad;
                        if nx < j || (nx - j) % s != 0 || (nx - j) / s >= out_w {
                            continue;
                        }
                        let ox = (nx - j) / s;
                        let taps = &weight_t[((c * k + i) * k + j) * out_c..][..out_c];
                        let targets = &mut u[(oy * out_w + ox) * out_c..][..out_c];
                        for (t, &w) in targets.iter_mut().zip(taps) {
                            *t += a * w as f64;
                        }
                        ops += out_c as u64;
                    }
                }
                ops
            }
        }
    }
}

/// A convolution as one matrix product, for steps where so many sources
/// fire that scattering them one by one costs more: the events are laid
/// out as a dense input, unfolded (im2col) and multiplied by the weights
/// (faer GEMM, one thread, so results do not depend on the thread count).
#[derive(Clone, Debug)]
pub struct ConvGemm {
    shape: ConvShape,
    /// `[out_c][in_c·k·k]`, as the ANN stores them.
    weight: Vec<f64>,
    /// Synaptic updates of one event at each source (its footprint).
    fan_out: Vec<u32>,
    /// Multiply-adds of one product.
    macs: u64,
}

/// A product is used when scattering would take more than this many
/// multiply-adds' time per synaptic update: measured on this machine, a
/// scattered update costs about as much as 8 multiply-adds inside a GEMM.
const GEMM_ADVANTAGE: u64 = 8;

impl ConvGemm {
    fn new(w: &Weighted) -> Option<Self> {
        let Weighted::Conv {
            shape,
            out_c,
            weight_t,
        } = w
        else {
            return None;
        };
        let (in_c, kernel, out_h, out_w) = (shape.in_c, shape.kernel, shape.out_h, shape.out_w);
        let rows = in_c * kernel * kernel;
        let mut weight = vec![0.0; out_c * rows];
        for (r, taps) in weight_t.chunks_exact(*out_c).enumerate() {
            for (o, &t) in taps.iter().enumerate() {
                weight[o * rows + r] = t as f64;
            }
        }
        let mut scratch = vec![0.0; w.out_len()];
        let fan_out = (0..w.in_len())
            .map(|i| w.scatter_one(i, 0.0, &mut scratch) as u32)
            .collect();
        Some(ConvGemm {
            shape: *shape,
            weight,
            fan_out,
            macs: (out_c * rows * out_h * out_w) as u64,
        })
    }

    /// `u += scale · W ∗ events`.
    fn apply(&self, events: &[(usize, f64)], scale: f64, u: &mut [f64], buf: &mut GemmBuffers) {
        let sh = &self.shape;
        let (rows, width) = (sh.in_c * sh.kernel * sh.kernel, sh.out_h * sh.out_w);
        buf.input.clear();
        buf.input.resize(sh.in_c * sh.in_h * sh.in_w, 0.0);
        for &(idx, amount) in events {
            buf.input[idx] += amount * scale;
        }
        buf.cols.resize(rows * width, 0.0);
        sh.im2col(&buf.input, 1, &mut buf.cols);
        let out_c = self.weight.len() / rows;
        matmul(
            MatMut::from_row_major_slice_mut(u, out_c, width),
            Accum::Add,
            MatRef::from_row_major_slice(&self.weight, out_c, rows),
            MatRef::from_row_major_slice(&buf.cols, rows, width),
            1.0,
            Par::Seq,
        );
    }
}

/// Scratch space of [`Connection::scatter`].
#[derive(Clone, Debug, Default)]
pub struct ScatterBuffers {
    pooled: [Vec<(usize, f64)>; 2],
    gemm: GemmBuffers,
    /// A convolution's sums, position-major (`[y][x][out_c]`).
    by_position: Vec<f64>,
}

#[derive(Clone, Debug, Default)]
struct GemmBuffers {
    input: Vec<f64>,
    cols: Vec<f64>,
}

/// The linear map from one population (or the input image) to the next.
#[derive(Clone, Debug)]
pub struct Connection {
    pub pools: Vec<Pool>,
    pub weighted: Weighted,
    /// The convolution as a matrix product, for dense steps.
    gemm: Option<ConvGemm>,
}

impl Connection {
    pub fn new(pools: Vec<Pool>, weighted: Weighted) -> Self {
        let gemm = ConvGemm::new(&weighted);
        Connection {
            pools,
            weighted,
            gemm,
        }
    }

    /// Scatter `events` (source index, amount) times `scale` into `u`.
    /// Returns the synaptic updates (one weight added to one target),
    /// whichever way they are computed.
    pub fn scatter(
        &self,
        events: &[(usize, f64)],
        scale: f64,
        u: &mut [f64],
        buf: &mut ScatterBuffers,
    ) -> u64 {
        let events = if self.pools.is_empty() {
            events
        } else {
            let [a, b] = &mut buf.pooled;
            a.clear();
            a.extend_from_slice(events);
            for pool in &self.pools {
                b.clear();
                for &(idx, amount) in a.iter() {
                    pool.propagate(idx, amount, b);
                }
                std::mem::swap(a, b);
            }
            &buf.pooled[0]
        };
        if let Some(g) = &self.gemm {
            let ops: u64 = events.iter().map(|&(i, _)| g.fan_out[i] as u64).sum();
            if ops * GEMM_ADVANTAGE > g.macs {
                g.apply(events, scale, u, &mut buf.gemm);
                return ops;
            }
        }
        match &self.weighted {
            // The sums are gathered position-major, where one tap's targets
            // are contiguous (strided by the output plane in `u` they cost
            // a cache line each), then added to `u`. Each sum starts at 0
            // and takes the events in order, as it would in `u`.
            Weighted::Conv { out_c, .. } => {
                let sums = &mut buf.by_position;
                sums.clear();
                sums.resize(u.len(), 0.0);
                let ops = events
                    .iter()
                    .map(|&(idx, amount)| self.weighted.scatter_one(idx, amount * scale, sums))
                    .sum();
                let out_plane = u.len() / out_c;
                for (position, taps) in sums.chunks_exact(*out_c).enumerate() {
                    for (o, &sum) in taps.iter().enumerate() {
                        u[o * out_plane + position] += sum;
                    }
                }
                ops
            }
            Weighted::Dense { .. } => events
                .iter()
                .map(|&(idx, amount)| self.weighted.scatter_one(idx, amount * scale, u))
                .sum(),
        }
    }

    /// Number of source values the connection reads.
    pub fn in_len(&self) -> usize {
        match self.pools.first() {
            Some(p) => p.c * p.h * p.w,
            None => self.weighted.in_len(),
        }
    }

    pub fn out_len(&self) -> usize {
        self.weighted.out_len()
    }
}

/// One population of neurons (or the output layer).
#[derive(Clone, Debug)]
pub struct PopulationSpec {
    /// `conv1`, `dense1`, …: the weighted layer that drives it.
    pub name: String,
    pub size: usize,
    /// Bias of the driving layer, per neuron.
    pub bias: Vec<f64>,
}

/// A converted network: `connections[k]` drives `populations[k]` from
/// `populations[k − 1]` (or from the input for k = 0); the last population
/// is the output layer (no activation).
#[derive(Clone, Debug)]
pub struct Topology {
    pub name: String,
    pub input: InputShape,
    pub classes: usize,
    pub populations: Vec<PopulationSpec>,
    pub connections: Vec<Connection>,
}

impl Topology {
    /// Convert `net` (batch norm is folded here; dropout is the identity).
    pub fn from_net(net: &Net) -> Result<Self> {
        let model_err = |message: String| SnnError::Model {
            model: net.arch.name.clone(),
            message,
        };
        let folded = net
            .fold_batch_norm()
            .map_err(|e| model_err(e.to_string()))?;
        let mut populations = Vec::new();
        let mut connections = Vec::new();
        let mut pools: Vec<Pool> = Vec::new();
        let mut weighted: Option<(Weighted, String, Vec<f64>)> = None;
        for layer in &folded.layers {
            match layer {
                Layer::Conv(c) => {
                    if weighted.is_some() {
                        return Err(model_err(format!(
                            "{} follows another weighted layer without an activation; only one weighted layer may sit between two activations",
                            c.weight.name
                        )));
                    }
                    let (k, oc, ic) = (c.kernel, c.out_c, c.in_c);
                    let mut weight_t = vec![0.0f32; oc * ic * k * k];
                    for o in 0..oc {
                        for ci in 0..ic {
                            for i in 0..k {
                                for j in 0..k {
                                    weight_t[((ci * k + i) * k + j) * oc + o] =
                                        c.weight.value[((o * ic + ci) * k + i) * k + j];
                                }
                            }
                        }
                    }
                    let bias = (0..oc * c.out_h * c.out_w)
                        .map(|n| c.bias.value[n / (c.out_h * c.out_w)] as f64)
                        .collect();
                    let name = c.weight.name.trim_end_matches(".weight").to_string();
                    weighted = Some((
                        Weighted::Conv {
                            shape: c.shape(),
                            out_c: oc,
                            weight_t,
                        },
                        name,
                        bias,
                    ));
                }
                Layer::Dense(d) => {
                    if weighted.is_some() {
                        return Err(model_err(format!(
                            "{} follows another weighted layer without an activation",
                            d.weight.name
                        )));
                    }
                    let (fi, fo) = (d.in_f, d.out_f);
                    let mut weight_t = vec![0.0f32; fi * fo];
                    for o in 0..fo {
                        for i in 0..fi {
                            weight_t[i * fo + o] = d.weight.value[o * fi + i];
                        }
                    }
                    let name = d.weight.name.trim_end_matches(".weight").to_string();
                    let bias = d.bias.value.iter().map(|&b| b as f64).collect();
                    weighted = Some((
                        Weighted::Dense {
                            in_f: fi,
                            out_f: fo,
                            weight_t,
                        },
                        name,
                        bias,
                    ));
                }
                Layer::AvgPool(p) => {
                    if weighted.is_some() {
                        return Err(model_err(
                            "average pooling between a weighted layer and its activation is not supported (pool after the activation)".into(),
                        ));
                    }
                    pools.push(Pool {
                        c: p.c,
                        h: p.h,
                        w: p.w,
                        size: p.size,
                        stride: p.stride,
                        out_h: p.out_h,
                        out_w: p.out_w,
                    });
                }
                Layer::Flatten(_) | Layer::Dropout(_) => {}
                Layer::BatchNorm(bn) => {
                    return Err(model_err(format!(
                        "batch norm {} was not folded",
                        bn.gamma.name
                    )))
                }
                Layer::Activation(_) => {
                    let Some((w, name, bias)) = weighted.take() else {
                        return Err(model_err(
                            "an activation without a weighted layer before it".into(),
                        ));
                    };
                    populations.push(PopulationSpec {
                        name,
                        size: w.out_len(),
                        bias,
                    });
                    connections.push(Connection::new(std::mem::take(&mut pools), w));
                }
            }
        }
        let Some((w, name, bias)) = weighted.take() else {
            return Err(model_err(
                "the network must end in a weighted layer (the output layer)".into(),
            ));
        };
        // Pools after the last activation feed the output layer (pooling
        // after the output layer itself is refused above).
        populations.push(PopulationSpec {
            name,
            size: w.out_len(),
            bias,
        });
        connections.push(Connection::new(std::mem::take(&mut pools), w));
        if populations.last().map(|p| p.size) != Some(net.arch.classes) {
            return Err(model_err(format!(
                "the output layer has {} values, the model has {} classes",
                populations.last().map_or(0, |p| p.size),
                net.arch.classes
            )));
        }
        let topo = Topology {
            name: net.arch.name.clone(),
            input: net.arch.input,
            classes: net.arch.classes,
            populations,
            connections,
        };
        // Sizes must chain (guaranteed by the architecture check; kept as a guard).
        let mut prev = topo.input.channels * topo.input.height * topo.input.width;
        for (c, p) in topo.connections.iter().zip(&topo.populations) {
            if c.in_len() != prev || c.out_len() != p.size {
                return Err(model_err(format!(
                    "layer {}: sizes do not chain ({} in, {} expected)",
                    p.name,
                    c.in_len(),
                    prev
                )));
            }
            prev = p.size;
        }
        Ok(topo)
    }

    /// Hidden neurons (all populations but the output layer).
    pub fn hidden_neurons(&self) -> usize {
        self.populations[..self.populations.len() - 1]
            .iter()
            .map(|p| p.size)
            .sum()
    }

    /// The ANN's output for one input, computed by the same scatter code with
    /// every activation `act` applied densely. Used by tests and as a check.
    pub fn dense_forward(&self, input: &[f32], act: impl Fn(f64) -> f64) -> Vec<f64> {
        self.pre_activations(input, act)
            .pop()
            .expect("a topology has an output layer")
    }

    /// The ANN's pre-activation of every population for one input (the
    /// output layer's last), with activation `act` between populations.
    pub fn pre_activations(&self, input: &[f32], act: impl Fn(f64) -> f64) -> Vec<Vec<f64>> {
        let mut events: Vec<(usize, f64)> = input
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(i, &v)| (i, v as f64))
            .collect();
        let mut buf = ScatterBuffers::default();
        let mut out = Vec::with_capacity(self.populations.len());
        for (c, p) in self.connections.iter().zip(&self.populations) {
            let mut z = p.bias.clone();
            c.scatter(&events, 1.0, &mut z, &mut buf);
            events = z
                .iter()
                .enumerate()
                .map(|(i, &v)| (i, act(v)))
                .filter(|&(_, a)| a != 0.0)
                .collect();
            out.push(z);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w_t(w: &Weighted) -> &[f32] {
        match w {
            Weighted::Conv { weight_t, .. } | Weighted::Dense { weight_t, .. } => weight_t,
        }
    }

    /// A dense step goes through the GEMM form, a sparse one through the
    /// scatter: both must add what the convolution written out adds, and
    /// count the same synaptic updates.
    #[test]
    fn dense_steps_as_a_matrix_product_equal_the_scatter() {
        let (in_c, in_h, in_w, out_c, k, stride, pad) = (3, 9, 8, 5, 3, 2, 1);
        let (out_h, out_w) = (
            (in_h + 2 * pad - k) / stride + 1,
            (in_w + 2 * pad - k) / stride + 1,
        );
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let weight_t: Vec<f32> = (0..in_c * k * k * out_c).map(|_| next() as f32).collect();
        let w = Weighted::Conv {
            shape: ConvShape {
                in_c,
                in_h,
                in_w,
                kernel: k,
                stride,
                pad,
                out_h,
                out_w,
            },
            out_c,
            weight_t,
        };
        let conn = Connection::new(Vec::new(), w.clone());
        for density in [0.05, 0.5, 1.0] {
            let mut events = Vec::new();
            for i in 0..in_c * in_h * in_w {
                if next() + 0.5 < density {
                    events.push((i, 1.0 + next()));
                }
            }
            // The convolution written out, channel-major as `u` is.
            let mut direct = vec![0.25; w.out_len()];
            let mut ops = 0u64;
            for &(idx, a) in &events {
                let (c, y, x) = (idx / (in_h * in_w), (idx / in_w) % in_h, idx % in_w);
                for (oy, ox) in (0..out_h).flat_map(|oy| (0..out_w).map(move |ox| (oy, ox))) {
                    let (i, j) = (
                        (y + pad) as isize - (oy * stride) as isize,
                        (x + pad) as isize - (ox * stride) as isize,
                    );
                    if (0..k as isize).contains(&i) && (0..k as isize).contains(&j) {
                        let tap = (c * k + i as usize) * k + j as usize;
                        for o in 0..out_c {
                            direct[(o * out_h + oy) * out_w + ox] +=
                                a * 3.0 * w_t(&w)[tap * out_c + o] as f64;
                        }
                        ops += out_c as u64;
                    }
                }
            }
            let mut by_conn = vec![0.25; w.out_len()];
            let mut buf = ScatterBuffers::default();
            assert_eq!(conn.scatter(&events, 3.0, &mut by_conn, &mut buf), ops);
            for (a, b) in direct.iter().zip(&by_conn) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b} at density {density}");
            }
            // Scattered one by one, position-major, as the sparse path does.
            let mut by_position = vec![0.0; w.out_len()];
            for &(i, a) in &events {
                w.scatter_one(i, a * 3.0, &mut by_position);
            }
            for (p, sums) in by_position.chunks_exact(out_c).enumerate() {
                for (o, sum) in sums.iter().enumerate() {
                    let b = direct[o * out_h * out_w + p] - 0.25;
                    assert!((sum - b).abs() < 1e-12, "{sum} vs {b} at density {density}");
                }
            }
        }
        // The dense events do take the product.
        let g = conn.gemm.as_ref().unwrap();
        let all: u64 = g.fan_out.iter().map(|&f| f as u64).sum();
        assert!(all * GEMM_ADVANTAGE > g.macs);
    }

    #[test]
    fn pool_windows_cover_each_input() {
        // 3-wide windows with stride 2 overlap: column 2 lies in windows 0 and 1.
        let p = Pool {
            c: 1,
            h: 5,
            w: 5,
            size: 3,
            stride: 2,
            out_h: 2,
            out_w: 2,
        };
        let mut out = Vec::new();
        p.propagate(2 * 5 + 2, 9.0, &mut out);
        let idx: Vec<usize> = out.iter().map(|e| e.0).collect();
        assert_eq!(idx, vec![0, 1, 2, 3]);
        assert!(out.iter().all(|e| (e.1 - 1.0).abs() < 1e-12));
        out.clear();
        p.propagate(0, 9.0, &mut out);
        assert_eq!(out, vec![(0, 1.0)]);
        out.clear();
        // Row 4, column 4: only the last window (rows/cols 2..5).
        p.propagate(4 * 5 + 4, 9.0, &mut out);
        assert_eq!(out, vec![(3, 1.0)]);
    }
}
