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

/// Largest reduced system (and number of pairs) the elimination handles
/// with stack storage; larger circuits solve the whole system.
const MAX_REDUCED: usize = 8;

/// Exact elimination of the unknown pairs that a voltage source to ground
/// makes: its branch row says only "V(k) = E", and its branch current
/// appears only in node k's current balance. So V(k)'s update comes from
/// the branch row alone, the branch current's from node k's row once the
/// others are known, and only the remaining unknowns need an LU. A neuron's
/// rest and reset supplies are such sources: MIF2's 7 unknowns become 3.
#[derive(Clone, Debug)]
pub struct SourceElimination {
    n: usize,
    /// (node k, branch b) pairs.
    pairs: Vec<(usize, usize)>,
    /// The unknowns left to the LU, in order.
    kept: Vec<usize>,
}

impl SourceElimination {
    /// Find the pairs from the structural pattern (`used[row·n + col]`):
    /// an unknown b whose row has one entry, at column k ≠ b, and whose
    /// column has one entry, in row k. None where there are none, or where
    /// what is left is too large for stack storage.
    pub fn find(n: usize, used: &[bool]) -> Option<Self> {
        let row = |i: usize| (0..n).filter(move |&j| used[i * n + j]);
        let col = |j: usize| (0..n).filter(move |&i| used[i * n + j]);
        let mut taken = vec![false; n];
        let mut pairs = Vec::new();
        for b in 0..n {
            let (r, c): (Vec<usize>, Vec<usize>) = (row(b).collect(), col(b).collect());
            if let ([k], [k2]) = (r.as_slice(), c.as_slice()) {
                if k == k2 && *k != b && !taken[*k] && !taken[b] {
                    taken[*k] = true;
                    taken[b] = true;
                    pairs.push((*k, b));
                }
            }
        }
        // A pair's node must not be another pair's branch (ruled out by
        // `taken`), and a branch column must not reach a kept row.
        let kept: Vec<usize> = (0..n).filter(|&i| !taken[i]).collect();
        if pairs.is_empty() || pairs.len() > MAX_REDUCED || kept.len() > MAX_REDUCED {
            return None;
        }
        Some(SourceElimination { n, pairs, kept })
    }

    /// Unknowns left to the LU.
    pub fn reduced_size(&self) -> usize {
        self.kept.len()
    }

    /// Solve A·y = b as [`dense_solve`] does (A is overwritten, b becomes
    /// y). Err(k): no usable pivot for unknown k.
    pub fn solve(&self, a: &mut [f64], b: &mut [f64]) -> Result<(), usize> {
        let n = self.n;
        let usable = |p: f64| p != 0.0 && p.is_finite();
        // V(k) from the branch rows.
        let mut node_update = [0.0; MAX_REDUCED];
        for (p, &(k, br)) in self.pairs.iter().enumerate() {
            let pivot = a[br * n + k];
            if !usable(pivot) {
                return Err(k);
            }
            node_update[p] = b[br] / pivot;
        }
        // The kept rows, with the known node updates moved to the right.
        let m = self.kept.len();
        let mut reduced = [0.0; MAX_REDUCED * MAX_REDUCED];
        let mut rhs = [0.0; MAX_REDUCED];
        for (ri, &i) in self.kept.iter().enumerate() {
            let mut r = b[i];
            for (p, &(k, _)) in self.pairs.iter().enumerate() {
                r -= a[i * n + k] * node_update[p];
            }
            rhs[ri] = r;
            for (rj, &j) in self.kept.iter().enumerate() {
                reduced[ri * m + rj] = a[i * n + j];
            }
        }
        dense_solve(m, &mut reduced[..m * m], &mut rhs[..m]).map_err(|c| self.kept[c])?;
        // The branch currents from their nodes' rows, all else known.
        let mut branch_update = [0.0; MAX_REDUCED];
        for (p, &(k, br)) in self.pairs.iter().enumerate() {
            let mut s = b[k];
            for (rj, &j) in self.kept.iter().enumerate() {
                s -= a[k * n + j] * rhs[rj];
            }
            for (q, &(kq, _)) in self.pairs.iter().enumerate() {
                s -= a[k * n + kq] * node_update[q];
            }
            let pivot = a[k * n + br];
            if !usable(pivot) {
                return Err(br);
            }
            branch_update[p] = s / pivot;
        }
        for (rj, &j) in self.kept.iter().enumerate() {
            b[j] = rhs[rj];
        }
        for (p, &(k, br)) in self.pairs.iter().enumerate() {
            b[k] = node_update[p];
            b[br] = branch_update[p];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node driven through 1 kΩ by a 1 V source to ground, with a
    /// memristor-like second unknown coupled to it: unknowns
    /// [V(src), V(mem), x, I(V1)].
    #[test]
    fn eliminating_a_grounded_source_gives_the_full_solution() {
        let n = 4;
        #[rustfmt::skip]
        let a = vec![
            1e-3, -1e-3, 0.0, 1.0,
            -1e-3, 1e-3 + 2e-6, 3e-7, 0.0,
            0.0, 0.5, 2.0, 0.0,
            1.0, 0.0, 0.0, 0.0,
        ];
        let b = vec![0.2, -1e-6, 0.3, 0.01];
        let used: Vec<bool> = a.iter().map(|v| *v != 0.0).collect();
        let e = SourceElimination::find(n, &used).expect("one pair");
        assert_eq!(e.pairs, vec![(0, 3)]);
        assert_eq!(e.reduced_size(), 2);
        let (mut a1, mut b1) = (a.clone(), b.clone());
        dense_solve(n, &mut a1, &mut b1).unwrap();
        let (mut a2, mut b2) = (a.clone(), b.clone());
        e.solve(&mut a2, &mut b2).unwrap();
        for (x, y) in b1.iter().zip(&b2) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-9), "{x} vs {y}");
        }
    }

    #[test]
    fn no_pairs_without_a_grounded_source() {
        // A floating source: its branch row has two entries.
        let used = [
            true, false, true, //
            false, true, true, //
            true, true, false,
        ];
        assert!(SourceElimination::find(3, &used).is_none());
    }
}
