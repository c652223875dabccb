//! Layers with forward and backward passes over chunks of samples.
//!
//! Layout inside a chunk of `n` samples: spatial tensors are channel-major
//! across the chunk (`C × n × H × W`, "CNHW"), so a convolution is one GEMM
//! `W[Cout × K] · cols[K × n·H'·W']` whose result is already the next layer's
//! input; flat tensors are sample-major (`n × F`). Each chunk runs on one
//! thread with sequential GEMMs; sums over chunks are taken in chunk order.

use super::activation::{Activation, ActivationKernel};
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

/// Recycled buffers. Freshly allocated large buffers cost page faults on
/// every step (they come from and go back to the OS), so layers return the
/// buffers they consume here and take new ones from here.
static FREE_BUFFERS: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());
/// Keep at most this many floats in the free list.
const FREE_LIMIT_FLOATS: usize = 64 << 20;

/// A zeroed buffer of `len` floats, recycled when one is free.
pub fn buffer(len: usize) -> Vec<f32> {
    let reused = {
        let mut free = FREE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(k, _)| k);
        best.map(|k| free.swap_remove(k))
    };
    match reused {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// Give a buffer back for reuse.
pub fn recycle(v: Vec<f32>) {
    if v.capacity() < 1024 {
        return;
    }
    let mut free = FREE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = free.iter().map(|b| b.capacity()).sum();
    if held + v.capacity() <= FREE_LIMIT_FLOATS {
        free.push(v);
    }
}

/// Output positions `o` (of `out_len`) whose input index `o·stride + offset`
/// falls inside `0..in_len`.
fn valid_range(
    out_len: usize,
    in_len: usize,
    stride: usize,
    offset: isize,
) -> std::ops::Range<usize> {
    // o·s + offset >= 0  ⇔  o >= ceil(−offset / s)
    let lo = if offset >= 0 {
        0
    } else {
        ((-offset) as usize).div_ceil(stride)
    };
    // o·s + offset < in_len  ⇔  o < ceil((in_len − offset) / s)
    let limit = in_len as isize - offset;
    let hi = if limit <= 0 {
        0
    } else {
        (limit as usize).div_ceil(stride)
    };
    lo.min(out_len)..hi.min(out_len).max(lo.min(out_len))
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

/// Geometry of a 2-D convolution (input, kernel, stride, zero padding, output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvShape {
    /// Unfold the receptive fields of `n` inputs laid out `[c][b][y][x]`:
    /// `cols[(c,i,j)][(b,oy,ox)]`. Writes every entry.
    pub fn im2col<T: Copy + Default>(&self, x: &[T], n: usize, cols: &mut [T]) {
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
                let rows = valid_range(oh, h, s, i as isize - pad);
                for j in 0..k {
                    let cols_ok = valid_range(ow, w, s, j as isize - pad);
                    let row = &mut cols[((c * k + i) * k + j) * width..][..width];
                    for b in 0..n {
                        let plane = &x[(c * n + b) * h * w..][..h * w];
                        let out = &mut row[b * oh * ow..][..oh * ow];
                        out[..rows.start * ow].fill(T::default());
                        out[rows.end * ow..].fill(T::default());
                        for oy in rows.clone() {
                            let dst = &mut out[oy * ow..][..ow];
                            let iy = (oy * s + i) as isize - pad;
                            let src = &plane[iy as usize * w..][..w];
                            dst[..cols_ok.start].fill(T::default());
                            dst[cols_ok.end..].fill(T::default());
                            let x0 = (cols_ok.start * s + j) as isize - pad;
                            let x0 = x0 as usize;
                            if s == 1 {
                                dst[cols_ok.clone()].copy_from_slice(&src[x0..x0 + cols_ok.len()]);
                            } else {
                                for (d, ox) in dst[cols_ok.clone()].iter_mut().zip(0..) {
                                    *d = src[x0 + ox * s];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Fold the column gradients back onto the input (adjoint of im2col).
    pub fn col2im(&self, cols: &[f32], n: usize, dx: &mut [f32]) {
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
                let rows = valid_range(oh, h, s, i as isize - pad);
                for j in 0..k {
                    let cols_ok = valid_range(ow, w, s, j as isize - pad);
                    let row = &cols[((c * k + i) * k + j) * width..][..width];
                    for b in 0..n {
                        let plane = &mut dx[(c * n + b) * h * w..][..h * w];
                        for oy in rows.clone() {
                            let src = &row[(b * oh + oy) * ow..][..ow];
                            let iy = (oy * s + i) as isize - pad;
                            let dst = &mut plane[iy as usize * w..][..w];
                            let x0 = ((cols_ok.start * s + j) as isize - pad) as usize;
                            if s == 1 {
                                for (d, v) in dst[x0..x0 + cols_ok.len()]
                                    .iter_mut()
                                    .zip(&src[cols_ok.clone()])
                                {
                                    *d += v;
                                }
                            } else {
                                for (v, ox) in src[cols_ok.clone()].iter().zip(0..) {
                                    dst[x0 + ox * s] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

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

    /// The layer's geometry.
    pub fn shape(&self) -> ConvShape {
        ConvShape {
            in_c: self.in_c,
            in_h: self.in_h,
            in_w: self.in_w,
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
            out_h: self.out_h,
            out_w: self.out_w,
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
                let mut cols = buffer(kr * width);
                this.shape().im2col(&chunk.data, chunk.n, &mut cols);
                recycle(chunk.data);
                let mut y = buffer(this.out_c * width);
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
        if train {
            self.cols = cols;
        } else {
            cols.into_iter().for_each(recycle);
        }
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
        let cols_all = std::mem::take(&mut self.cols);
        let this = &*self;
        let parts: Vec<(Vec<f32>, Vec<f32>, Option<Chunk>)> = dy
            .into_par_iter()
            .zip(cols_all.into_par_iter())
            .map(|(d, cols)| {
                let width = d.n * p;
                let mut dw = vec![0.0f32; this.out_c * kr];
                gemm(
                    row_major_mut(&mut dw, this.out_c, kr),
                    Accum::Replace,
                    row_major(&d.data, this.out_c, width),
                    row_major(&cols, kr, width).transpose(),
                );
                recycle(cols);
                let db: Vec<f32> = d.data.chunks_exact(width).map(|r| r.iter().sum()).collect();
                let dx = this.needs_input_grad.then(|| {
                    let mut dcols = buffer(kr * width);
                    gemm(
                        row_major_mut(&mut dcols, kr, width),
                        Accum::Replace,
                        row_major(&this.weight.value, this.out_c, kr).transpose(),
                        row_major(&d.data, this.out_c, width),
                    );
                    let mut dx = buffer(this.in_c * this.in_h * this.in_w * d.n);
                    this.shape().col2im(&dcols, d.n, &mut dx);
                    recycle(dcols);
                    Chunk { n: d.n, data: dx }
                });
                recycle(d.data);
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
                let mut y = buffer(c.n * this.out_f);
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
        if train {
            self.inputs = x;
        } else {
            x.into_iter().for_each(|c| recycle(c.data));
        }
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
                    let mut dx = buffer(d.n * this.in_f);
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
        for (d, x) in dy.into_iter().zip(std::mem::take(&mut self.inputs)) {
            recycle(d.data);
            recycle(x.data);
        }
        dxs.into_iter().collect()
    }
}

// ---------------------------------------------------------------- activation

/// Elementwise activation, in place; keeps f'(z) for the backward pass.
#[derive(Clone, Debug)]
pub struct ActivationLayer {
    pub kernel: ActivationKernel,
    derivs: Vec<Vec<f32>>,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        Self {
            kernel: ActivationKernel::new(activation),
            derivs: Vec::new(),
        }
    }

    /// `noise` = (stream seed, σ) adds σ·N(0, 1) to each input before the
    /// activation, chunk `k` drawing from its own sub-stream; the derivative
    /// is taken at the noisy input, so the noise passes through backward as
    /// a constant shift.
    pub fn forward(&mut self, x: Vec<Chunk>, train: bool, noise: Option<(u64, f32)>) -> Vec<Chunk> {
        let kernel = &self.kernel;
        let results: Vec<(Chunk, Vec<f32>)> = x
            .into_par_iter()
            .enumerate()
            .map(|(k, mut c)| {
                if let Some((seed, sigma)) = noise {
                    let mut rng = SplitMix64::derive(seed, &[k as u64]);
                    for v in c.data.iter_mut() {
                        *v += sigma * rng.normal() as f32;
                    }
                }
                let mut d = if train {
                    buffer(c.data.len())
                } else {
                    Vec::new()
                };
                kernel.apply_in_place(&mut c.data, train.then_some(&mut d[..]));
                (c, d)
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
            .zip(derivs.into_par_iter())
            .map(|(mut d, f)| {
                for (g, s) in d.data.iter_mut().zip(&f) {
                    *g *= s;
                }
                recycle(f);
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
                let mut y = buffer(planes * oh * ow);
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
                recycle(c.data);
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
                let mut dx = buffer(planes * h * w);
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
                recycle(d.data);
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
                let mut y = buffer(c.data.len());
                for ch in 0..cc {
                    for b in 0..c.n {
                        y[(b * cc + ch) * hw..][..hw]
                            .copy_from_slice(&c.data[(ch * c.n + b) * hw..][..hw]);
                    }
                }
                recycle(c.data);
                Chunk { n: c.n, data: y }
            })
            .collect()
    }

    pub fn backward(&self, dy: Vec<Chunk>) -> Vec<Chunk> {
        let (cc, hw) = (self.c, self.hw);
        dy.into_par_iter()
            .map(|d| {
                let mut x = buffer(d.data.len());
                for ch in 0..cc {
                    for b in 0..d.n {
                        x[(ch * d.n + b) * hw..][..hw]
                            .copy_from_slice(&d.data[(b * cc + ch) * hw..][..hw]);
                    }
                }
                recycle(d.data);
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
                let mut mask = buffer(c.data.len());
                for m in mask.iter_mut() {
                    *m = if rng.next_f64() < keep { scale } else { 0.0 };
                }
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
            .zip(masks.into_par_iter())
            .map(|(mut d, m)| {
                for (g, s) in d.data.iter_mut().zip(&m) {
                    *g *= s;
                }
                recycle(m);
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
                let mut xhat = buffer(c.data.len());
                xhat.copy_from_slice(&c.data);
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
                recycle(xh);
                d
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution of one NCHW sample, for reference.
    fn naive_conv(conv: &Conv2d, x: &[f32]) -> Vec<f32> {
        let (k, s, p) = (
            conv.kernel as isize,
            conv.stride as isize,
            conv.pad as isize,
        );
        let (h, w) = (conv.in_h as isize, conv.in_w as isize);
        let mut y = vec![0.0f32; conv.out_c * conv.out_h * conv.out_w];
        for o in 0..conv.out_c {
            for oy in 0..conv.out_h as isize {
                for ox in 0..conv.out_w as isize {
                    let mut acc = conv.bias.value[o] as f64;
                    for c in 0..conv.in_c {
                        for i in 0..k {
                            for j in 0..k {
                                let (iy, ix) = (oy * s + i - p, ox * s + j - p);
                                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                    let wv = conv.weight.value[((o * conv.in_c + c) * k as usize
                                        + i as usize)
                                        * k as usize
                                        + j as usize];
                                    acc += wv as f64
                                        * x[(c * h as usize + iy as usize) * w as usize
                                            + ix as usize]
                                            as f64;
                                }
                            }
                        }
                    }
                    y[(o * conv.out_h + oy as usize) * conv.out_w + ox as usize] = acc as f32;
                }
            }
        }
        y
    }

    #[test]
    fn conv_matches_direct_convolution() {
        let mut rng = SplitMix64::new(5);
        for &(c, h, w, k, s, p) in &[
            (2, 7, 9, 3, 1, 1),
            (3, 8, 7, 3, 2, 1),
            (1, 9, 9, 3, 2, 0),
            (2, 6, 6, 2, 2, 0),
            (1, 5, 4, 5, 1, 2),
            (2, 6, 5, 1, 3, 0),
        ] {
            let mut conv = Conv2d::new("c", (c, h, w), 3, k, s, p, &mut rng);
            for b in &mut conv.bias.value {
                *b = rng.normal() as f32;
            }
            let n = 3;
            let samples: Vec<Vec<f32>> = (0..n)
                .map(|_| (0..c * h * w).map(|_| rng.normal() as f32).collect())
                .collect();
            // One chunk in CNHW layout.
            let mut data = vec![0.0f32; n * c * h * w];
            for (b, x) in samples.iter().enumerate() {
                for ch in 0..c {
                    data[(ch * n + b) * h * w..][..h * w]
                        .copy_from_slice(&x[ch * h * w..][..h * w]);
                }
            }
            let out = conv.forward(vec![Chunk { n, data }], false);
            let p_out = conv.out_h * conv.out_w;
            for (b, x) in samples.iter().enumerate() {
                let reference = naive_conv(&conv, x);
                for o in 0..3 {
                    for q in 0..p_out {
                        let got = out[0].data[(o * n + b) * p_out + q];
                        let want = reference[o * p_out + q];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{:?}: {got} vs {want}",
                            (c, h, w, k, s, p)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn valid_range_bounds() {
        // out positions o with o·2 − 1 in 0..5: o = 1, 2
        assert_eq!(valid_range(4, 5, 2, -1), 1..3);
        assert_eq!(valid_range(3, 5, 1, 0), 0..3);
        assert_eq!(valid_range(5, 5, 1, 2), 0..3);
        assert_eq!(valid_range(2, 1, 1, 3), 0..0);
    }

    #[test]
    fn pool_and_flatten_values() {
        let pool = AvgPool::new((1, 4, 4), 2, 2);
        let x: Vec<f32> = (0..32).map(|v| v as f32).collect(); // two samples
        let y = pool.forward(vec![Chunk { n: 2, data: x }]);
        assert_eq!(
            y[0].data,
            vec![2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5]
        );
        // CNHW (2 channels, 2 samples, 1 pixel) → per-sample rows.
        let f = Flatten { c: 2, hw: 1 };
        let flat = f.forward(vec![Chunk {
            n: 2,
            data: vec![1.0, 2.0, 3.0, 4.0],
        }]);
        assert_eq!(flat[0].data, vec![1.0, 3.0, 2.0, 4.0]);
        assert_eq!(f.backward(flat)[0].data, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn dropout_keeps_the_expected_fraction_and_scales() {
        let mut d = Dropout::new(0.25);
        let x = vec![Chunk {
            n: 1,
            data: vec![1.0; 40_000],
        }];
        let y = d.forward(x.clone(), Some(3));
        let kept = y[0].data.iter().filter(|&&v| v > 0.0).count() as f64 / 40_000.0;
        assert!((kept - 0.75).abs() < 0.01, "{kept}");
        assert!(y[0]
            .data
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        assert_eq!(d.forward(x.clone(), Some(3)), y);
        assert_ne!(d.forward(x.clone(), Some(4)), y);
        assert_eq!(d.forward(x.clone(), None), x);
    }
}
