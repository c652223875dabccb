//! The MNA matrix: sparsity pattern assembled with sprs, LU factorisation
//! with faer (symbolic once per topology, numeric per Newton iteration).

use crate::devices::{Node, Pattern, Slot};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::sparse::linalg::lu::{factorize_symbolic_lu, NumericLu, SymbolicLu};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat};
use faer::{Conj, MatMut, Par};
use std::collections::HashMap;

/// Collects Jacobian entries while devices set up; a slot is the index of
/// an entry in this list.
#[derive(Default)]
pub struct PatternBuilder {
    entries: Vec<(usize, usize)>,
    index: HashMap<(usize, usize), usize>,
}

impl PatternBuilder {
    /// Number of slots handed out.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The row of each slot.
    pub fn rows(&self) -> Vec<usize> {
        self.entries.iter().map(|e| e.0).collect()
    }
    /// The column of each slot.
    pub fn columns(&self) -> Vec<usize> {
        self.entries.iter().map(|e| e.1).collect()
    }
}

impl Pattern for PatternBuilder {
    fn entry(&mut self, row: Node, col: Node) -> Slot {
        let key = (row?, col?);
        let next = self.entries.len();
        let slot = *self.index.entry(key).or_insert(next);
        if slot == next {
            self.entries.push(key);
        }
        Some(slot)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinearError {
    #[error("singular matrix: no pivot for unknown {0}")]
    Singular(usize),
    #[error("linear solver failed: {0}")]
    Other(String),
}

/// Systems up to this size are factorised densely: for the 3–8 unknowns of
/// a neuron circuit a hand-written dense LU is several times faster than
/// the general sparse machinery (design.md: "below about 100 unknowns,
/// dense is as fast as sparse"). Larger systems use faer's sparse LU.
pub const DENSE_LIMIT: usize = 24;

/// A square sparse matrix with a fixed pattern and its LU factors.
pub struct SparseLu {
    n: usize,
    symbolic_mat: SymbolicSparseColMat<usize>,
    /// CSC value position of each slot.
    slot_pos: Vec<usize>,
    /// CSC value positions of the diagonal, per unknown (`None` if absent).
    diag_pos: Vec<Option<usize>>,
    pub values: Vec<f64>,
    symbolic: SymbolicLu<usize>,
    numeric: NumericLu<usize, f64>,
    scratch: MemBuffer,
    /// Row-major dense copy for small systems (see [`DENSE_LIMIT`]).
    dense: Option<Vec<f64>>,
}

impl SparseLu {
    /// Build the pattern from the devices' slots (plus every diagonal, so
    /// that gmin can always be added).
    pub fn new(n: usize, mut pattern: PatternBuilder) -> Result<Self, LinearError> {
        for i in 0..n {
            pattern.entry(Some(i), Some(i));
        }
        let mut tri = sprs::TriMat::<f64>::new((n, n));
        for &(r, c) in &pattern.entries {
            tri.add_triplet(r, c, 1.0);
        }
        let csc: sprs::CsMat<f64> = tri.to_csc();
        let slot_pos: Vec<usize> = pattern
            .entries
            .iter()
            .map(|&(r, c)| {
                csc.nnz_index(r, c)
                    .map(|ix| ix.0)
                    .expect("entry is in the pattern it was built from")
            })
            .collect();
        let diag_pos = (0..n).map(|i| csc.nnz_index(i, i).map(|ix| ix.0)).collect();
        let (indptr, indices, _) = csc.into_raw_storage();
        let symbolic_mat = SymbolicSparseColMat::new_checked(n, n, indptr, None, indices);
        let symbolic = factorize_symbolic_lu(symbolic_mat.as_ref(), Default::default())
            .map_err(|e| LinearError::Other(format!("{e:?}")))?;
        let req = symbolic
            .factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default())
            .or(symbolic.solve_in_place_scratch::<f64>(1, Par::Seq));
        let nnz = symbolic_mat.row_idx().len();
        Ok(SparseLu {
            n,
            symbolic_mat,
            slot_pos,
            diag_pos,
            values: vec![0.0; nnz],
            symbolic,
            numeric: NumericLu::new(),
            scratch: MemBuffer::new(req),
            dense: (n <= DENSE_LIMIT).then(|| vec![0.0; n * n]),
        })
    }

    /// Force the sparse path whatever the size (tests compare both).
    pub fn set_sparse_only(&mut self) {
        self.dense = None;
    }

    pub fn dim(&self) -> usize {
        self.n
    }

    /// Set the matrix to Σ_k (jf[k] + alpha·jq[k]) at each slot, plus gmin
    /// on the diagonal of the unknowns flagged in `gmin_on`.
    pub fn assemble(&mut self, jf: &[f64], jq: &[f64], alpha: f64, gmin: f64, gmin_on: &[bool]) {
        self.values.iter_mut().for_each(|v| *v = 0.0);
        // Slots beyond jf's length are the diagonals added for gmin.
        for ((&pos, &a), &b) in self.slot_pos.iter().zip(jf).zip(jq) {
            self.values[pos] += a + alpha * b;
        }
        if gmin > 0.0 {
            for (i, &on) in gmin_on.iter().enumerate() {
                if on {
                    if let Some(p) = self.diag_pos[i] {
                        self.values[p] += gmin;
                    }
                }
            }
        }
    }

    /// Add v to diagonal entry i of the assembled matrix.
    pub fn add_diagonal(&mut self, i: usize, v: f64) {
        if let Some(p) = self.diag_pos[i] {
            self.values[p] += v;
        }
    }

    /// Factorise the assembled matrix and solve A·x = rhs in place.
    pub fn factor_solve(&mut self, rhs: &mut [f64]) -> Result<(), LinearError> {
        if let Some(a) = self.dense.as_mut() {
            let n = self.n;
            a.iter_mut().for_each(|v| *v = 0.0);
            let col_ptr = self.symbolic_mat.col_ptr();
            let row_idx = self.symbolic_mat.row_idx();
            for c in 0..n {
                for k in col_ptr[c]..col_ptr[c + 1] {
                    a[row_idx[k] * n + c] = self.values[k];
                }
            }
            super::dense::dense_solve(n, a, rhs).map_err(LinearError::Singular)?;
            if let Some(bad) = rhs.iter().position(|v| !v.is_finite()) {
                return Err(LinearError::Singular(bad));
            }
            return Ok(());
        }
        let mat = SparseColMatRef::new(self.symbolic_mat.as_ref(), &self.values);
        let stack = MemStack::new(&mut self.scratch);
        let lu = self
            .symbolic
            .factorize_numeric_lu(&mut self.numeric, mat, Par::Seq, stack, Default::default())
            .map_err(|e| match e {
                faer::sparse::linalg::LuError::SymbolicSingular { index } => {
                    LinearError::Singular(index)
                }
                other => LinearError::Other(format!("{other:?}")),
            })?;
        let rhs_mat = MatMut::from_column_major_slice_mut(rhs, self.n, 1);
        lu.solve_in_place_with_conj(Conj::No, rhs_mat, Par::Seq, stack);
        if rhs.iter().any(|v| !v.is_finite()) {
            let bad = rhs.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(LinearError::Singular(bad));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_unsymmetric_system() {
        let mut p = PatternBuilder::default();
        let s00 = p.entry(Some(0), Some(0)).unwrap();
        let s01 = p.entry(Some(0), Some(1)).unwrap();
        let s10 = p.entry(Some(1), Some(0)).unwrap();
        let s22 = p.entry(Some(2), Some(2)).unwrap();
        assert_eq!(p.entry(Some(0), None), None);
        let mut lu = SparseLu::new(3, p).unwrap();
        let mut jf = vec![0.0; 5];
        jf[s00] = 2.0;
        jf[s01] = 1.0;
        jf[s10] = 4.0;
        jf[s22] = 5.0;
        // slot 4 is the (1,1) diagonal added by `new`.
        let jq = vec![0.0; 5];
        lu.assemble(&jf, &jq, 0.0, 1.0, &[false, true, false]);
        // [[2,1,0],[4,1,0],[0,0,5]] x = [3,5,10] → x = [1,1,2]
        let mut rhs = vec![3.0, 5.0, 10.0];
        lu.factor_solve(&mut rhs).unwrap();
        for (a, b) in rhs.iter().zip([1.0, 1.0, 2.0]) {
            assert!((a - b).abs() < 1e-12, "{rhs:?}");
        }
    }

    /// The dense and the sparse path agree on a random, diagonally dominant
    /// 20×20 system with 30 % fill.
    #[test]
    fn dense_and_sparse_paths_agree() {
        let n = 20;
        let mut seed = 12345u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f64 / 10_000.0
        };
        let mut entries = Vec::new();
        for r in 0..n {
            for c in 0..n {
                if r == c || rnd() < 0.3 {
                    entries.push((r, c, if r == c { 10.0 + rnd() } else { rnd() - 0.5 }));
                }
            }
        }
        let solve = |sparse: bool| {
            let mut p = PatternBuilder::default();
            let slots: Vec<usize> = entries
                .iter()
                .map(|&(r, c, _)| p.entry(Some(r), Some(c)).unwrap())
                .collect();
            let mut jf = vec![0.0; p.len()];
            for (&s, e) in slots.iter().zip(&entries) {
                jf[s] = e.2;
            }
            let mut lu = SparseLu::new(n, p).unwrap();
            if sparse {
                lu.set_sparse_only();
            }
            lu.assemble(&jf, &vec![0.0; jf.len()], 0.0, 0.0, &vec![false; n]);
            let mut rhs: Vec<f64> = (0..n).map(|i| i as f64 - 3.0).collect();
            lu.factor_solve(&mut rhs).unwrap();
            rhs
        };
        let (d, s) = (solve(false), solve(true));
        for (a, b) in d.iter().zip(&s) {
            assert!((a - b).abs() < 1e-12, "{d:?} vs {s:?}");
        }
    }

    #[test]
    fn singular_matrix_is_an_error() {
        let mut p = PatternBuilder::default();
        p.entry(Some(0), Some(1));
        let mut lu = SparseLu::new(2, p).unwrap();
        let jf = vec![0.0; 3];
        lu.assemble(&jf, &jf, 0.0, 0.0, &[false, false]);
        let mut rhs = vec![1.0, 1.0];
        assert!(lu.factor_solve(&mut rhs).is_err());
    }
}
