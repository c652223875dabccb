//! Dense LU for the small systems of neuron circuits: the general engine
//! below `linear::DENSE_LIMIT` unknowns and every instance of the batched
//! engine use this one routine.

/// Solve A·y = b in place (A row-major n×n, overwritten; b becomes y) by
/// Gaussian elimination with partial pivoting. Err(k): no usable pivot in
/// column k.
pub fn dense_solve(n: usize, a: &mut [f64], b: &mut [f64]) -> Result<(), usize> {
    // Neuron circuits have a handful of unknowns. With the size known at
    // compile time the loops unroll and lose their bounds checks: about
    // 1.7× faster at n = 7 (MIF2), where the batched engine spends much of
    // its time.
    match n {
        1 => fixed::<1>(a, b),
        2 => fixed::<2>(a, b),
        3 => fixed::<3>(a, b),
        4 => fixed::<4>(a, b),
        5 => fixed::<5>(a, b),
        6 => fixed::<6>(a, b),
        7 => fixed::<7>(a, b),
        8 => fixed::<8>(a, b),
        _ => eliminate(n, a, b),
    }
}

fn fixed<const N: usize>(a: &mut [f64], b: &mut [f64]) -> Result<(), usize> {
    eliminate(N, &mut a[..N * N], &mut b[..N])
}

#[inline(always)]
fn eliminate(n: usize, a: &mut [f64], b: &mut [f64]) -> Result<(), usize> {
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
        // One division per column (divisions cost several multiplies); the
        // diagonal keeps the reciprocal for the back substitution.
        let inverse = 1.0 / a[k * n + k];
        a[k * n + k] = inverse;
        for i in k + 1..n {
            let l = a[i * n + k] * inverse;
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
        b[k] = s * a[k * n + k];
    }
    Ok(())
}
