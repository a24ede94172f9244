//! Cyclic Jacobi eigenvalue method for small dense symmetric matrices, in f64.
//!
//! Each sweep visits the pairs `(p, q)`, `p < q`, in row order and applies the rotation that
//! zeroes `a_pq` (`t = sign(tau) / (|tau| + sqrt(1 + tau^2))`, `tau = (a_qq - a_pp) / (2 a_pq)`;
//! Golub and Van Loan, "Matrix Computations", section 8.5). Sweeps stop when the off-diagonal
//! norm falls below `1e-14` times the Frobenius norm, or after `max_sweeps` (60 is plenty:
//! convergence is quadratic). The order of operations is fixed, so results are reproducible
//! bit for bit. Cost: `O(n^3)` per sweep, fine for the Lanczos tridiagonal matrix, the
//! subspace-angle matrix and dense Hessians of a few hundred parameters.

use crate::error::{check_len, Error};
use crate::math::sqrt64;

/// Most sweeps before giving up.
pub const MAX_SWEEPS: usize = 60;

/// Eigen-decomposition of the symmetric `n x n` row-major matrix `a` (destroyed). Writes the
/// eigenvalues in descending order into `values` and the matching unit eigenvectors as the
/// *columns* of `vecs` (row-major `n x n`). Returns the number of sweeps.
pub fn symmetric_eigen(
    a: &mut [f64],
    n: usize,
    vecs: &mut [f64],
    values: &mut [f64],
) -> Result<usize, Error> {
    check_len("matrix", a, n * n)?;
    check_len("eigenvectors", vecs, n * n)?;
    check_len("eigenvalues", values, n)?;
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("matrix"));
    }
    for (i, x) in vecs.iter_mut().enumerate() {
        *x = if i / n == i % n { 1.0 } else { 0.0 };
    }
    let fro: f64 = a.iter().map(|x| x * x).sum::<f64>();
    let mut sweeps = 0;
    while sweeps < MAX_SWEEPS {
        let mut off = 0.0f64;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off == 0.0 || off <= 1e-28 * fro {
            break;
        }
        sweeps += 1;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let tau = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = if tau.abs() > 1e150 {
                    0.5 / tau
                } else {
                    let s = if tau >= 0.0 { 1.0 } else { -1.0 };
                    s / (tau.abs() + sqrt64(1.0 + tau * tau))
                };
                let c = 1.0 / sqrt64(1.0 + t * t);
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (vecs[k * n + p], vecs[k * n + q]);
                    vecs[k * n + p] = c * vkp - s * vkq;
                    vecs[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    for (i, v) in values.iter_mut().enumerate() {
        *v = a[i * n + i];
    }
    // Selection sort, descending, moving eigenvector columns along.
    for i in 0..n {
        let mut best = i;
        for j in i + 1..n {
            if values[j] > values[best] {
                best = j;
            }
        }
        if best != i {
            values.swap(i, best);
            for k in 0..n {
                vecs.swap(k * n + i, k * n + best);
            }
        }
    }
    Ok(sweeps)
}
