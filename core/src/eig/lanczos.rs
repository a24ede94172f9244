//! Lanczos iteration with full re-orthogonalisation (the method of the authors' code and of
//! Ghorbani et al. 2019 for neural-network Hessians).
//!
//! From a unit start vector `q_1`, step `j` computes `w = A q_j`, `alpha_j = q_j . w`,
//! `w -= alpha_j q_j + beta_(j-1) q_(j-1)`, then re-orthogonalises `w` against every stored
//! `q_i` twice (classical Gram–Schmidt, "twice is enough"), and sets `beta_j = ||w||`,
//! `q_(j+1) = w / beta_j`. A tiny `beta_j` (an invariant subspace) ends the iteration early.
//! The eigenvalues of the tridiagonal matrix `T = tridiag(beta, alpha, beta)` (the Ritz values)
//! approximate the extreme eigenvalues at *both* ends of the spectrum; they come from
//! [`crate::symmetric_eigen`]. The residual of Ritz pair `k` is `|beta_m s_mk|` with `s_k` its
//! eigenvector of `T`. All reductions are in f64 in ascending order.
//!
//! Storage is the caller's: the basis (`steps * dim` f32) and `lanczos_work_len(steps)` f64.

use crate::eig::jacobi::symmetric_eigen;
use crate::error::{check_len, check_min, Error};
use crate::operator::LinearOperator;
use crate::vec::{dot64, norm64, sub_scaled64};

/// Settings of the Lanczos iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanczosConfig {
    /// Number of Lanczos steps, i.e. operator products (default 20).
    pub steps: usize,
}

impl Default for LanczosConfig {
    fn default() -> Self {
        Self { steps: 20 }
    }
}

/// What a Lanczos run produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanczosResult {
    /// Steps actually run (fewer than asked on breakdown, or when `dim` is smaller).
    pub steps: usize,
}

/// Length of the f64 work buffer for `steps` steps.
pub const fn lanczos_work_len(steps: usize) -> usize {
    2 * steps * steps + 3 * steps
}

/// Runs Lanczos on `op` from `start`. Writes the Ritz values in descending order into
/// `values[..steps]` and their residual bounds into `residuals[..steps]`; keeps what
/// [`ritz_vector`] needs in `basis` and `work`.
pub fn lanczos<O: LinearOperator + ?Sized>(
    op: &mut O,
    cfg: &LanczosConfig,
    start: &[f32],
    basis: &mut [f32],
    work: &mut [f64],
    values: &mut [f32],
    residuals: &mut [f32],
) -> Result<LanczosResult, Error> {
    let n = op.dim();
    let m_req = cfg.steps;
    if m_req == 0 {
        return Err(Error::InvalidConfig("Lanczos needs at least one step"));
    }
    check_len("start vector", start, n)?;
    check_min("Lanczos basis", basis, (m_req + 1) * n)?;
    check_min("Lanczos work", work, lanczos_work_len(m_req))?;
    check_min("Ritz values", values, m_req)?;
    check_min("Ritz residuals", residuals, m_req)?;
    let m_max = m_req.min(n);
    let (tmat, rest) = work.split_at_mut(m_req * m_req);
    let (zmat, rest) = rest.split_at_mut(m_req * m_req);
    let (alpha, rest) = rest.split_at_mut(m_req);
    let (beta, rest) = rest.split_at_mut(m_req);
    let evals = &mut rest[..m_req];

    let s_norm = norm64(start);
    if !(s_norm > 0.0) || !s_norm.is_finite() {
        return Err(Error::ZeroVector);
    }
    for (q, &s) in basis[..n].iter_mut().zip(start) {
        *q = (s as f64 / s_norm) as f32;
    }
    let mut m = 0;
    let mut last_beta = 0.0f64;
    for j in 0..m_max {
        let (done, cur) = basis.split_at_mut(j * n);
        let (qj, next) = cur.split_at_mut(n);
        let w = &mut next[..n];
        op.apply(qj, w)?;
        let a = dot64(qj, w);
        if !a.is_finite() {
            return Err(Error::NonFinite("Hessian-vector product"));
        }
        alpha[j] = a;
        sub_scaled64(w, a, qj);
        if j > 0 {
            sub_scaled64(w, beta[j - 1], &done[(j - 1) * n..j * n]);
        }
        for _ in 0..2 {
            for i in 0..j {
                let qi = &done[i * n..(i + 1) * n];
                sub_scaled64(w, dot64(qi, w), qi);
            }
            sub_scaled64(w, dot64(qj, w), qj);
        }
        let b = norm64(w);
        beta[j] = b;
        last_beta = b;
        m = j + 1;
        if !(b > 1e-12 * a.abs().max(f64::MIN_POSITIVE)) {
            last_beta = 0.0;
            break;
        }
        for x in w.iter_mut() {
            *x = (*x as f64 / b) as f32;
        }
    }
    // Tridiagonal matrix and its eigen-decomposition.
    let t = &mut tmat[..m * m];
    t.fill(0.0);
    for i in 0..m {
        t[i * m + i] = alpha[i];
        if i + 1 < m {
            t[i * m + i + 1] = beta[i];
            t[(i + 1) * m + i] = beta[i];
        }
    }
    symmetric_eigen(t, m, &mut zmat[..m * m], &mut evals[..m])?;
    for k in 0..m {
        values[k] = evals[k] as f32;
        residuals[k] = (last_beta * zmat[(m - 1) * m + k]).abs() as f32;
    }
    Ok(LanczosResult { steps: m })
}

/// Ritz vector number `k` (0 = largest Ritz value) of a finished run: `y = Q s_k`, written into
/// `out` (`dim` values), summed in f64 over the basis vectors in order.
pub fn ritz_vector(
    basis: &[f32],
    work: &[f64],
    cfg: &LanczosConfig,
    result: &LanczosResult,
    k: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let n = out.len();
    let (m_req, m) = (cfg.steps, result.steps);
    if k >= m || m > m_req {
        return Err(Error::InvalidConfig("Ritz vector index out of range"));
    }
    check_min("Lanczos basis", basis, m * n)?;
    check_min("Lanczos work", work, lanczos_work_len(m_req))?;
    let z = &work[m_req * m_req..m_req * m_req + m * m];
    for (idx, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f64;
        for j in 0..m {
            acc += z[j * m + k] * basis[j * n + idx] as f64;
        }
        *o = acc as f32;
    }
    Ok(())
}
