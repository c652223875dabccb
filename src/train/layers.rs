//! Layers with forward and backward passes over chunks of samples.
//!
//! Layout inside a chunk of `n` samples: spatial tensors are channel-major
//! across the chunk (`C × n × H × W`, "CNHW"), so a convolution is one GEMM
//! `W[Cout × K] · cols[K × n·H'·W']` whose result is already the next layer's
//! input; flat tensors are sample-major (`n × F`). Each chunk runs on one
//! thread with sequential GEMMs; sums over chunks are taken in chunk order.

use super::activation::Activation;
use super::rng::SplitMix64;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// The samples of one chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub n: usize,
    pub data: Vec<f32>,
}

/// Per-sample shape of a tensor between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Spatial { c: usize, h: usize, w: usize },
    Flat(usize),
}

impl Shape {
    pub fn size(&self) -> usize {
        match *self {
            Shape::Spatial { c, h, w } => c * h * w,
            Shape::Flat(f) => f,
        }
    }
    /// Channels (or features), the unit of batch-norm statistics.
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Spatial { c, .. } => c,
            Shape::Flat(f) => f,
        }
    }
}

/// A trainable tensor with its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Vec<f32>,
    pub grad: Vec<f32>,
}

impl Param {
    pub fn zeros(name: String, shape: Vec<usize>) -> Self {
        let len = shape.iter().product();
        Self {
            name,
            shape,
            value: vec![0.0; len],
            grad: vec![0.0; len],
        }
    }

    /// He-normal initialisation (std = sqrt(2 / fan_in)), which keeps the
    /// activation scale through rectifying layers.
    pub fn he_normal(name: String, shape: Vec<usize>, fan_in: usize, rng: &mut SplitMix64) -> Self {
        let mut p = Self::zeros(name, shape);
        let std = (2.0 / fan_in as f64).sqrt();
        for v in &mut p.value {
            *v = (rng.normal() * std) as f32;
        }
        p
    }

    fn add_grad(&mut self, partial: &[f32]) {
        for (g, p) in self.grad.iter_mut().zip(partial) {
            *g += p;
        }
    }
}

/// `dst = lhs · rhs` (or `+=` with `Accum::Add`), single-threaded: the
/// parallelism is over chunks, which keeps results independent of threads.
fn gemm(dst: MatMut<'_, f32>, accum: Accum, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    matmul(dst, accum, lhs, rhs, 1.0f32, Par::Seq);
}

fn row_major<'a>(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a, f32> {
    MatRef::from_row_major_slice(data, rows, cols)
}

fn row_major_mut<'a>(data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a, f32> {
    MatMut::from_row_major_slice_mut(data, rows, cols)
}

/// Sum per-chunk partial results in chunk order (fixed reduction order).
fn sum_in_order(parts: &[Vec<f32>], len: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; len];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

// ---------------------------------------------------------------- conv2d

/// 2-D convolution via im2col + GEMM. Weight `[Cout, Cin, K, K]`, bias `[Cout]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_c: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub weight: Param,
    pub bias: Param,
    /// False for the first layer: its input gradient is never used.
    pub needs_input_grad: bool,
    cols: Vec<Vec<f32>>,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        (in_c, in_h, in_w): (usize, usize, usize),
        out_c: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        rng: &mut SplitMix64,
    ) -> Self {
        let out_h = (in_h + 2 * pad - kernel) / stride + 1;
        let out_w = (in_w + 2 * pad - kernel) / stride + 1;
        let fan_in = in_c * kernel * kernel;
        Self {
            in_c,
            in_h,
            in_w,
            out_c,
            kernel,
            stride,
            pad,
            out_h,
            out_w,
            weight: Param::he_normal(
                format!("{name}.weight"),
                vec![out_c, in_c, kernel, kernel],
                fan_in,
                rng,
            ),
            bias: Param::zeros(format!("{name}.bias"), vec![out_c]),
            needs_input_grad: true,
            cols: Vec::new(),
        }
    }

    fn k_rows(&self) -> usize {
        self.in_c * self.kernel * self.kernel
    }

    /// Unfold the receptive fields: `cols[(c,i,j)][(b,oy,ox)]`.
    fn im2col(&self, x: &[f32], n: usize, cols: &mut [f32]) {
        let (h, w, k, s, pad) = (
            self.in_h,
            self.in_w,
            self.kernel,
            self.stride,
            self.pad as isize,
        );
        let (oh, ow) = (self.out_h, self.out_w);
        let width = n * oh * ow;
        for c in 0..self.in_c {
            for i in 0..k {
                for j in 0..k {
                    let row = &mut cols[((c * k + i) * k + j) * width..][..width];
                    for b in 0..n {
                        let plane = &x[(c * n + b) * h * w..][..h * w];
                        for oy in 0..oh {
                            let dst = &mut row[(b * oh + oy) * ow..][..ow];
                            let iy = (oy * s + i) as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                dst.fill(0.0);
                                continue;
                            }
                            let src = &plane[iy as usize * w..][..w];
                            for (ox, d) in dst.iter_mut().enumerate() {
                                let ix = (ox * s + j) as isize - pad;
                                *d = if ix >= 0 && ix < w as isize {
                                    src[ix as usize]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        }
    }

    /// Fold the column gradients back onto the input (adjoint of im2col).
    fn col2im(&self, cols: &[f32], n: usize, dx: &mut [f32]) {
        let (h, w, k, s, pad) = (
            self.in_h,
            self.in_w,
            self.kernel,
            self.stride,
            self.pad as isize,
        );
        let (oh, ow) = (self.out_h, self.out_w);
        let width = n * oh * ow;
        for c in 0..self.in_c {
            for i in 0..k {
                for j in 0..k {
                    let row = &cols[((c * k + i) * k + j) * width..][..width];
                    for b in 0..n {
                        let plane = &mut dx[(c * n + b) * h * w..][..h * w];
                        for oy in 0..oh {
                            let src = &row[(b * oh + oy) * ow..][..ow];
                            let iy = (oy * s + i) as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let dst = &mut plane[iy as usize * w..][..w];
                            for (ox, v) in src.iter().enumerate() {
                                let ix = (ox * s + j) as isize - pad;
                                if ix >= 0 && ix < w as isize {
                                    dst[ix as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    pub fn forward(&mut self, x: Vec<Chunk>, train: bool) -> Vec<Chunk> {
        let this = &*self;
        let kr = this.k_rows();
        let p = this.out_h * this.out_w;
        let results: Vec<(Chunk, Vec<f32>)> = x
            .into_par_iter()
            .map(|chunk| {
                let width = chunk.n * p;
                let mut cols = vec![0.0f32; kr * width];
                this.im2col(&chunk.data, chunk.n, &mut cols);
                let mut y = vec![0.0f32; this.out_c * width];
                for (row, b) in y.chunks_exact_mut(width).zip(&this.bias.value) {
                    row.fill(*b);
                }
                gemm(
                    row_major_mut(&mut y, this.out_c, width),
                    Accum::Add,
                    row_major(&this.weight.value, this.out_c, kr),
                    row_major(&cols, kr, width),
                );
                (
                    Chunk {
                        n: chunk.n,
                        data: y,
                    },
                    cols,
                )
            })
            .collect();
        let (out, cols): (Vec<Chunk>, Vec<Vec<f32>>) = results.into_iter().unzip();
        self.cols = if train { cols } else { Vec::new() };
        out
    }

    /// Accumulate parameter gradients; return the input gradient if needed.
    pub fn backward(&mut self, dy: Vec<Chunk>) -> Option<Vec<Chunk>> {
        let this = &*self;
        let kr = this.k_rows();
        let p = this.out_h * this.out_w;
        assert_eq!(
            dy.len(),
            this.cols.len(),
            "conv backward without a training forward"
        );
        let parts: Vec<(Vec<f32>, Vec<f32>, Option<Chunk>)> = dy
            .into_par_iter()
            .zip(this.cols.par_iter())
            .map(|(d, cols)| {
                let width = d.n * p;
                let mut dw = vec![0.0f32; this.out_c * kr];
                gemm(
                    row_major_mut(&mut dw, this.out_c, kr),
                    Accum::Replace,
                    row_major(&d.data, this.out_c, width),
                    row_major(cols, kr, width).transpose(),
                );
                let db: Vec<f32> = d.data.chunks_exact(width).map(|r| r.iter().sum()).collect();
                let dx = this.needs_input_grad.then(|| {
                    let mut dcols = vec![0.0f32; kr * width];
                    gemm(
                        row_major_mut(&mut dcols, kr, width),
                        Accum::Replace,
                        row_major(&this.weight.value, this.out_c, kr).transpose(),
                        row_major(&d.data, this.out_c, width),
                    );
                    let mut dx = vec![0.0f32; this.in_c * this.in_h * this.in_w * d.n];
                    this.col2im(&dcols, d.n, &mut dx);
                    Chunk { n: d.n, data: dx }
                });
                (dw, db, dx)
            })
            .collect();
        let (mut dws, mut dbs, mut dxs) = (Vec::new(), Vec::new(), Vec::new());
        for (dw, db, dx) in parts {
            dws.push(dw);
            dbs.push(db);
            dxs.push(dx);
        }
        self.weight
            .add_grad(&sum_in_order(&dws, self.weight.value.len()));
        self.bias.add_grad(&sum_in_order(&dbs, self.out_c));
        self.cols.clear();
        dxs.into_iter().collect()
    }
}

// ---------------------------------------------------------------- dense

/// Fully connected layer. Weight `[out, in]`, bias `[out]`.
#[derive(Clone, Debug)]
pub struct Dense {
    pub in_f: usize,
    pub out_f: usize,
    pub weight: Param,
    pub bias: Param,
    pub needs_input_grad: bool,
    inputs: Vec<Chunk>,
}

impl Dense {
    pub fn new(name: &str, in_f: usize, out_f: usize, rng: &mut SplitMix64) -> Self {
        Self {
            in_f,
            out_f,
            weight: Param::he_normal(format!("{name}.weight"), vec![out_f, in_f], in_f, rng),
            bias: Param::zeros(format!("{name}.bias"), vec![out_f]),
            needs_input_grad: true,
            inputs: Vec::new(),
        }
    }

    pub fn forward(&mut self, x: Vec<Chunk>, train: bool) -> Vec<Chunk> {
        let this = &*self;
        let out: Vec<Chunk> = x
            .par_iter()
            .map(|c| {
                let mut y = vec![0.0f32; c.n * this.out_f];
                for row in y.chunks_exact_mut(this.out_f) {
                    row.copy_from_slice(&this.bias.value);
                }
                gemm(
                    row_major_mut(&mut y, c.n, this.out_f),
                    Accum::Add,
                    row_major(&c.data, c.n, this.in_f),
                    row_major(&this.weight.value, this.out_f, this.in_f).transpose(),
                );
                Chunk { n: c.n, data: y }
            })
            .collect();
        self.inputs = if train { x } else { Vec::new() };
        out
    }

    pub fn backward(&mut self, dy: Vec<Chunk>) -> Option<Vec<Chunk>> {
        let this = &*self;
        assert_eq!(
            dy.len(),
            this.inputs.len(),
            "dense backward without a training forward"
        );
        let parts: Vec<(Vec<f32>, Vec<f32>, Option<Chunk>)> = dy
            .par_iter()
            .zip(this.inputs.par_iter())
            .map(|(d, x)| {
                let mut dw = vec![0.0f32; this.out_f * this.in_f];
                gemm(
                    row_major_mut(&mut dw, this.out_f, this.in_f),
                    Accum::Replace,
                    row_major(&d.data, d.n, this.out_f).transpose(),
                    row_major(&x.data, d.n, this.in_f),
                );
                let mut db = vec![0.0f32; this.out_f];
                for row in d.data.chunks_exact(this.out_f) {
                    for (a, v) in db.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                let dx = this.needs_input_grad.then(|| {
                    let mut dx = vec![0.0f32; d.n * this.in_f];
                    gemm(
                        row_major_mut(&mut dx, d.n, this.in_f),
                        Accum::Replace,
                        row_major(&d.data, d.n, this.out_f),
                        row_major(&this.weight.value, this.out_f, this.in_f),
                    );
                    Chunk { n: d.n, data: dx }
                });
                (dw, db, dx)
            })
            .collect();
        let (mut dws, mut dbs, mut dxs) = (Vec::new(), Vec::new(), Vec::new());
        for (dw, db, dx) in parts {
            dws.push(dw);
            dbs.push(db);
            dxs.push(dx);
        }
        self.weight
            .add_grad(&sum_in_order(&dws, self.weight.value.len()));
        self.bias.add_grad(&sum_in_order(&dbs, self.out_f));
        self.inputs.clear();
        dxs.into_iter().collect()
    }
}

// ---------------------------------------------------------------- activation

/// Elementwise activation; keeps f'(z) for the backward pass.
#[derive(Clone, Debug)]
pub struct ActivationLayer {
    pub activation: Activation,
    derivs: Vec<Vec<f32>>,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        Self {
            activation,
            derivs: Vec::new(),
        }
    }

    pub fn forward(&mut self, x: Vec<Chunk>, train: bool) -> Vec<Chunk> {
        let act = &self.activation;
        let results: Vec<(Chunk, Vec<f32>)> = x
            .into_par_iter()
            .map(|c| {
                let mut y = vec![0.0f32; c.data.len()];
                let mut d = if train {
                    vec![0.0f32; c.data.len()]
                } else {
                    Vec::new()
                };
                act.forward_slice(&c.data, &mut y, train.then_some(&mut d[..]));
                (Chunk { n: c.n, data: y }, d)
            })
            .collect();
        let (out, derivs) = results.into_iter().unzip();
        self.derivs = derivs;
        out
    }

    pub fn backward(&mut self, dy: Vec<Chunk>) -> Vec<Chunk> {
        assert_eq!(
            dy.len(),
            self.derivs.len(),
            "activation backward without a training forward"
        );
        let derivs = std::mem::take(&mut self.derivs);
        dy.into_par_iter()
            .zip(derivs.par_iter())
            .map(|(mut d, f)| {
                for (g, s) in d.data.iter_mut().zip(f) {
                    *g *= s;
                }
                d
            })
            .collect()
    }
}

// ---------------------------------------------------------------- average pooling

/// Average pooling over `size × size` windows with the given stride (no padding).
#[derive(Clone, Debug)]
pub struct AvgPool {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub size: usize,
    pub stride: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl AvgPool {
    pub fn new((c, h, w): (usize, usize, usize), size: usize, stride: usize) -> Self {
        Self {
            c,
            h,
            w,
            size,
            stride,
            out_h: (h - size) / stride + 1,
            out_w: (w - size) / stride + 1,
        }
    }

    pub fn forward(&self, x: Vec<Chunk>) -> Vec<Chunk> {
        let (h, w, oh, ow, k, s) = (
            self.h,
            self.w,
            self.out_h,
            self.out_w,
            self.size,
            self.stride,
        );
        let scale = 1.0 / (k * k) as f32;
        x.into_par_iter()
            .map(|c| {
                let planes = self.c * c.n;
                let mut y = vec![0.0f32; planes * oh * ow];
                for (src, dst) in c.data.chunks_exact(h * w).zip(y.chunks_exact_mut(oh * ow)) {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = 0.0f32;
                            for i in 0..k {
                                let row = &src[(oy * s + i) * w + ox * s..][..k];
                                acc += row.iter().sum::<f32>();
                            }
                            dst[oy * ow + ox] = acc * scale;
                        }
                    }
                }
                Chunk { n: c.n, data: y }
            })
            .collect()
    }

    pub fn backward(&self, dy: Vec<Chunk>) -> Vec<Chunk> {
        let (h, w, oh, ow, k, s) = (
            self.h,
            self.w,
            self.out_h,
            self.out_w,
            self.size,
            self.stride,
        );
        let scale = 1.0 / (k * k) as f32;
        dy.into_par_iter()
            .map(|d| {
                let planes = self.c * d.n;
                let mut dx = vec![0.0f32; planes * h * w];
                for (src, dst) in d.data.chunks_exact(oh * ow).zip(dx.chunks_exact_mut(h * w)) {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let g = src[oy * ow + ox] * scale;
                            for i in 0..k {
                                for v in &mut dst[(oy * s + i) * w + ox * s..][..k] {
                                    *v += g;
                                }
                            }
                        }
                    }
                }
                Chunk { n: d.n, data: dx }
            })
            .collect()
    }
}

// ---------------------------------------------------------------- flatten

/// CNHW chunk → `n × (C·H·W)`, each sample flattened in (c, y, x) order.
#[derive(Clone, Debug)]
pub struct Flatten {
    pub c: usize,
    pub hw: usize,
}

impl Flatten {
    pub fn forward(&self, x: Vec<Chunk>) -> Vec<Chunk> {
        let (cc, hw) = (self.c, self.hw);
        x.into_par_iter()
            .map(|c| {
                let mut y = vec![0.0f32; c.data.len()];
                for ch in 0..cc {
                    for b in 0..c.n {
                        y[(b * cc + ch) * hw..][..hw]
                            .copy_from_slice(&c.data[(ch * c.n + b) * hw..][..hw]);
                    }
                }
                Chunk { n: c.n, data: y }
            })
            .collect()
    }

    pub fn backward(&self, dy: Vec<Chunk>) -> Vec<Chunk> {
        let (cc, hw) = (self.c, self.hw);
        dy.into_par_iter()
            .map(|d| {
                let mut x = vec![0.0f32; d.data.len()];
                for ch in 0..cc {
                    for b in 0..d.n {
                        x[(ch * d.n + b) * hw..][..hw]
                            .copy_from_slice(&d.data[(b * cc + ch) * hw..][..hw]);
                    }
                }
                Chunk { n: d.n, data: x }
            })
            .collect()
    }
}

// ---------------------------------------------------------------- dropout

/// Inverted dropout: in training each value is kept with probability
/// `1 − rate` and scaled by `1/(1 − rate)`; identity in evaluation.
#[derive(Clone, Debug)]
pub struct Dropout {
    pub rate: f32,
    masks: Vec<Vec<f32>>,
}

impl Dropout {
    pub fn new(rate: f32) -> Self {
        Self {
            rate,
            masks: Vec::new(),
        }
    }

    /// `seed` names this layer's stream for this step; chunk `k` draws from
    /// its own sub-stream, so masks do not depend on scheduling.
    pub fn forward(&mut self, x: Vec<Chunk>, train: Option<u64>) -> Vec<Chunk> {
        let Some(seed) = train.filter(|_| self.rate > 0.0) else {
            self.masks = Vec::new();
            return x;
        };
        let keep = 1.0 - self.rate as f64;
        let scale = (1.0 / keep) as f32;
        let results: Vec<(Chunk, Vec<f32>)> = x
            .into_par_iter()
            .enumerate()
            .map(|(k, mut c)| {
                let mut rng = SplitMix64::derive(seed, &[k as u64]);
                let mask: Vec<f32> = (0..c.data.len())
                    .map(|_| if rng.next_f64() < keep { scale } else { 0.0 })
                    .collect();
                for (v, m) in c.data.iter_mut().zip(&mask) {
                    *v *= m;
                }
                (c, mask)
            })
            .collect();
        let (out, masks) = results.into_iter().unzip();
        self.masks = masks;
        out
    }

    pub fn backward(&mut self, dy: Vec<Chunk>) -> Vec<Chunk> {
        if self.masks.is_empty() {
            return dy;
        }
        let masks = std::mem::take(&mut self.masks);
        dy.into_par_iter()
            .zip(masks.par_iter())
            .map(|(mut d, m)| {
                for (g, s) in d.data.iter_mut().zip(m) {
                    *g *= s;
                }
                d
            })
            .collect()
    }
}

// ---------------------------------------------------------------- batch norm

/// Batch normalisation per channel (spatial input) or per feature (flat input).
/// Training uses the batch statistics (over all chunks) and updates the
/// running ones: `running = (1 − momentum)·running + momentum·batch`, with the
/// unbiased batch variance. Evaluation uses the running statistics.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub shape: Shape,
    pub momentum: f32,
    pub eps: f32,
    pub gamma: Param,
    pub beta: Param,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    xhat: Vec<Vec<f32>>,
    inv_std: Vec<f32>,
}

/// Apply `f(channel, element)` to every element of a chunk.
fn for_each_channel(shape: Shape, n: usize, data: &mut [f32], mut f: impl FnMut(usize, &mut f32)) {
    match shape {
        Shape::Spatial { c, h, w } => {
            let len = n * h * w;
            for (ch, block) in data.chunks_exact_mut(len).enumerate().take(c) {
                for v in block {
                    f(ch, v);
                }
            }
        }
        Shape::Flat(features) => {
            for row in data.chunks_exact_mut(features) {
                for (ch, v) in row.iter_mut().enumerate() {
                    f(ch, v);
                }
            }
        }
    }
}

/// Per-channel f64 sums of `g(channel, x)` over a chunk.
fn channel_sums(shape: Shape, n: usize, data: &[f32], g: impl Fn(usize, f32) -> f64) -> Vec<f64> {
    let mut sums = vec![0.0f64; shape.channels()];
    match shape {
        Shape::Spatial { h, w, .. } => {
            for (ch, block) in data.chunks_exact(n * h * w).enumerate() {
                sums[ch] = block.iter().map(|&x| g(ch, x)).sum();
            }
        }
        Shape::Flat(features) => {
            for row in data.chunks_exact(features) {
                for (ch, &x) in row.iter().enumerate() {
                    sums[ch] += g(ch, x);
                }
            }
        }
    }
    sums
}

fn combine_in_order(parts: Vec<Vec<f64>>, channels: usize) -> Vec<f64> {
    let mut total = vec![0.0f64; channels];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

impl BatchNorm {
    pub fn new(name: &str, shape: Shape, momentum: f32, eps: f32) -> Self {
        let c = shape.channels();
        let mut gamma = Param::zeros(format!("{name}.weight"), vec![c]);
        gamma.value.fill(1.0);
        Self {
            shape,
            momentum,
            eps,
            gamma,
            beta: Param::zeros(format!("{name}.bias"), vec![c]),
            running_mean: vec![0.0; c],
            running_var: vec![1.0; c],
            xhat: Vec::new(),
            inv_std: Vec::new(),
        }
    }

    /// Per-channel scale and shift of the evaluation-mode transform `y = a·x + b`.
    pub fn eval_affine(&self) -> (Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..self.gamma.value.len())
            .map(|c| self.gamma.value[c] / (self.running_var[c] + self.eps).sqrt())
            .collect();
        let b = (0..a.len())
            .map(|c| self.beta.value[c] - a[c] * self.running_mean[c])
            .collect();
        (a, b)
    }

    /// Fold this (evaluation-mode) batch norm into the preceding convolution:
    /// `W'[o] = a[o]·W[o]`, `b'[o] = a[o]·b[o] + shift[o]`.
    pub fn fold_into_conv(&self, conv: &mut Conv2d) {
        self.fold_rows(&mut conv.weight.value, &mut conv.bias.value);
    }

    /// The same for a preceding dense layer.
    pub fn fold_into_dense(&self, dense: &mut Dense) {
        self.fold_rows(&mut dense.weight.value, &mut dense.bias.value);
    }

    fn fold_rows(&self, weight: &mut [f32], bias: &mut [f32]) {
        let (a, b) = self.eval_affine();
        assert_eq!(
            bias.len(),
            a.len(),
            "batch norm folded into a layer of another width"
        );
        let row = weight.len() / a.len();
        for o in 0..a.len() {
            for w in &mut weight[o * row..][..row] {
                *w *= a[o];
            }
            bias[o] = a[o] * bias[o] + b[o];
        }
    }

    pub fn forward(&mut self, x: Vec<Chunk>, train: bool) -> Vec<Chunk> {
        let shape = self.shape;
        let channels = shape.channels();
        if !train {
            let (a, b) = self.eval_affine();
            self.xhat.clear();
            return x
                .into_par_iter()
                .map(|mut c| {
                    for_each_channel(shape, c.n, &mut c.data, |ch, v| *v = a[ch] * *v + b[ch]);
                    c
                })
                .collect();
        }
        let count: usize = x.iter().map(|c| c.n).sum::<usize>() * (shape.size() / channels);
        let sums = x
            .par_iter()
            .map(|c| channel_sums(shape, c.n, &c.data, |_, v| v as f64))
            .collect();
        let mean: Vec<f64> = combine_in_order(sums, channels)
            .iter()
            .map(|s| s / count as f64)
            .collect();
        let sq = x
            .par_iter()
            .map(|c| {
                channel_sums(shape, c.n, &c.data, |ch, v| {
                    let d = v as f64 - mean[ch];
                    d * d
                })
            })
            .collect();
        let var: Vec<f64> = combine_in_order(sq, channels)
            .iter()
            .map(|s| s / count as f64)
            .collect();
        let inv_std: Vec<f32> = var
            .iter()
            .map(|v| (1.0 / (v + self.eps as f64).sqrt()) as f32)
            .collect();
        let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let (gamma, beta) = (&self.gamma.value, &self.beta.value);
        let results: Vec<(Chunk, Vec<f32>)> = x
            .into_par_iter()
            .map(|mut c| {
                for_each_channel(shape, c.n, &mut c.data, |ch, v| {
                    *v = (*v - mean32[ch]) * inv_std[ch]
                });
                let xhat = c.data.clone();
                for_each_channel(shape, c.n, &mut c.data, |ch, v| {
                    *v = gamma[ch] * *v + beta[ch]
                });
                (c, xhat)
            })
            .collect();
        let (out, xhat) = results.into_iter().unzip();
        self.xhat = xhat;
        self.inv_std = inv_std;
        let m = self.momentum as f64;
        let unbias = if count > 1 {
            count as f64 / (count - 1) as f64
        } else {
            1.0
        };
        for ch in 0..channels {
            self.running_mean[ch] =
                ((1.0 - m) * self.running_mean[ch] as f64 + m * mean[ch]) as f32;
            self.running_var[ch] =
                ((1.0 - m) * self.running_var[ch] as f64 + m * var[ch] * unbias) as f32;
        }
        out
    }

    pub fn backward(&mut self, dy: Vec<Chunk>) -> Vec<Chunk> {
        assert_eq!(
            dy.len(),
            self.xhat.len(),
            "batch-norm backward without a training forward"
        );
        let shape = self.shape;
        let channels = shape.channels();
        let xhat = std::mem::take(&mut self.xhat);
        let count: usize = dy.iter().map(|c| c.n).sum::<usize>() * (shape.size() / channels);
        let sum_dy = combine_in_order(
            dy.par_iter()
                .map(|d| channel_sums(shape, d.n, &d.data, |_, v| v as f64))
                .collect(),
            channels,
        );
        let sum_dy_xhat = combine_in_order(
            dy.par_iter()
                .zip(xhat.par_iter())
                .map(|(d, xh)| {
                    let prod: Vec<f32> = d.data.iter().zip(xh).map(|(a, b)| a * b).collect();
                    channel_sums(shape, d.n, &prod, |_, v| v as f64)
                })
                .collect(),
            channels,
        );
        for ch in 0..channels {
            self.beta.grad[ch] += sum_dy[ch] as f32;
            self.gamma.grad[ch] += sum_dy_xhat[ch] as f32;
        }
        // dx = γ·inv_std/N · (N·dy − Σdy − x̂·Σ(dy·x̂))
        let n = count as f32;
        let coef: Vec<f32> = (0..channels)
            .map(|c| self.gamma.value[c] * self.inv_std[c] / n)
            .collect();
        let mean_dy: Vec<f32> = sum_dy.iter().map(|&s| s as f32).collect();
        let mean_dyx: Vec<f32> = sum_dy_xhat.iter().map(|&s| s as f32).collect();
        dy.into_par_iter()
            .zip(xhat.into_par_iter())
            .map(|(mut d, xh)| {
                let mut k = 0;
                for_each_channel(shape, d.n, &mut d.data, |ch, g| {
                    *g = coef[ch] * (n * *g - mean_dy[ch] - xh[k] * mean_dyx[ch]);
                    k += 1;
                });
                d
            })
            .collect()
    }
}
