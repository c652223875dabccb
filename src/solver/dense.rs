//! Dense LU for the small systems of neuron circuits: the general engine
//! below `linear::DENSE_LIMIT` unknowns and every instance of the batched
//! engine use this one routine.

/// Solve A·y = b in place (A row-major n×n, overwritten; b becomes y) by
/// Gaussian elimination with partial pivoting. Err(k): no usable pivot in
/// column k.
pub fn dense_solve(n: usize, a: &mut [f64], b: &mut [f64]) -> Result<(), usize> {
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for i in k + 1..n {
            let v = a[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if !(best > 0.0 && best.is_finite()) {
            return Err(k);
        }
        if p != k {
            for j in k..n {
                a.swap(k * n + j, p * n + j);
            }
            b.swap(k, p);
        }
        let pivot = a[k * n + k];
        for i in k + 1..n {
            let l = a[i * n + k] / pivot;
            if l != 0.0 {
                for j in k + 1..n {
                    a[i * n + j] -= l * a[k * n + j];
                }
                b[i] -= l * b[k];
            }
        }
    }
    for k in (0..n).rev() {
        let mut s = b[k];
        for j in k + 1..n {
            s -= a[k * n + j] * b[j];
        }
        b[k] = s / a[k * n + k];
    }
    Ok(())
}
