//! Lanczos iteration with full re-orthogonalisation (the method of the authors' code and of
//! Ghorbani et al. 2019 for neural-network Hessians).
//!
//! From a unit start vector `q_1`, step `j` computes `w = A q_j`, `alpha_j = q_j . w`,
//! `w -= alpha_j q_j + beta_(j-1) q_(j-1)`, then re-orthogonalises `w` against every stored
//! `q_i` twice (classical Gram–Schmidt, "twice is enough"), and sets `beta_j = ||w||`,
//! `q_(j+1) = w / beta_j`. A tiny `beta_j` means the Krylov space of the start is invariant: the
//! iteration then goes on from a new unit vector orthogonal to the basis with `beta_j = 0` (the
//! coordinate vector least represented in the basis, re-orthogonalised), so a start that lacks
//! some eigenvectors, or a Hessian with few distinct eigenvalues, still gives as many Ritz pairs
//! as steps (repeated eigenvalues with their multiplicity) instead of ending early. It ends
//! early only when the basis spans the space.
//! The eigenvalues of the tridiagonal matrix `T = tridiag(beta, alpha, beta)` (the Ritz values)
//! approximate the extreme eigenvalues at *both* ends of the spectrum; they come from
//! [`crate::eig::jacobi::symmetric_tridiagonal_eigen`] (the Jacobi method up to 64 steps, the QL
//! method beyond). The residual of Ritz pair `k` is `|beta_m s_mk|` with `s_k` its
//! eigenvector of `T`. All reductions are in f64 in ascending order.
//!
//! Storage is the caller's: the basis ([`lanczos_basis_len`]`(steps, dim)` f32, that is
//! `(steps + 1) * dim`: the step after the last needs room for its product) and
//! [`lanczos_work_len`]`(steps)` f64 (`2 steps^2 + 3 steps`: 15.8 KB at 30 steps,
//! 61 KB at 60).

use crate::eig::jacobi::symmetric_tridiagonal_eigen;
use crate::eig::power::Eigenpair;
use crate::error::{check_len, check_min, Error};
use crate::operator::LinearOperator;
use crate::vec::{dot64, norm64, start_norm, sub_scaled64};

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
    /// Steps actually run (fewer than asked only when `dim` is smaller, or when rounding leaves
    /// no new direction after an invariant subspace).
    pub steps: usize,
    /// Dimension of the operator the run was on (the length [`ritz_vector`] writes).
    pub dim: usize,
}

/// Length of the f64 work buffer for `steps` steps. Saturates at `usize::MAX` when the length
/// does not fit in a `usize` (no buffer is that long, so the solvers then report it as too
/// small or invalid); [`checked_lanczos_work_len`] reports the overflow instead.
pub const fn lanczos_work_len(steps: usize) -> usize {
    match checked_lanczos_work_len(steps) {
        Some(len) => len,
        None => usize::MAX,
    }
}

/// Length of the f32 basis for `steps` steps on a `dim`-dimensional operator,
/// `(steps + 1) * dim`, saturating at `usize::MAX` like [`lanczos_work_len`].
pub const fn lanczos_basis_len(steps: usize, dim: usize) -> usize {
    match checked_lanczos_basis_len(steps, dim) {
        Some(len) => len,
        None => usize::MAX,
    }
}

/// [`lanczos_basis_len`], or `None` when it overflows a `usize`.
pub const fn checked_lanczos_basis_len(steps: usize, dim: usize) -> Option<usize> {
    match steps.checked_add(1) {
        Some(s) => s.checked_mul(dim),
        None => None,
    }
}

/// [`lanczos_work_len`], or `None` when it overflows a `usize`.
pub const fn checked_lanczos_work_len(steps: usize) -> Option<usize> {
    let Some(sq) = steps.checked_mul(steps) else {
        return None;
    };
    let Some(sq2) = sq.checked_mul(2) else {
        return None;
    };
    let Some(s3) = steps.checked_mul(3) else {
        return None;
    };
    sq2.checked_add(s3)
}

/// `(steps + 1) * n` (the basis length) and the work length, or an error when either overflows.
fn storage_lens(steps: usize, n: usize) -> Result<(usize, usize), Error> {
    match (
        checked_lanczos_basis_len(steps, n),
        checked_lanczos_work_len(steps),
    ) {
        (Some(b), Some(w)) => Ok((b, w)),
        _ => Err(Error::InvalidConfig(
            "Lanczos storage for this many steps overflows a usize",
        )),
    }
}

/// One Lanczos step: `w = A q_j` into `basis[(j + 1) * n..]`, `alpha_j`, the three-term
/// recurrence, full re-orthogonalisation (twice) against `q_0..q_j`, and `beta_j = ||w||`.
/// Returns `(alpha_j, beta_j)`; `w` is left unnormalised.
fn extend<O: LinearOperator + ?Sized>(
    op: &mut O,
    basis: &mut [f32],
    j: usize,
    n: usize,
    prev_beta: f64,
) -> Result<(f64, f64), Error> {
    let (done, cur) = basis.split_at_mut(j * n);
    let (qj, next) = cur.split_at_mut(n);
    let w = &mut next[..n];
    op.apply(qj, w)?;
    let a = dot64(qj, w);
    if !a.is_finite() {
        return Err(Error::NonFinite("Hessian-vector product"));
    }
    sub_scaled64(w, a, qj);
    if j > 0 {
        sub_scaled64(w, prev_beta, &done[(j - 1) * n..j * n]);
    }
    for _ in 0..2 {
        for i in 0..j {
            let qi = &done[i * n..(i + 1) * n];
            sub_scaled64(w, dot64(qi, w), qi);
        }
        sub_scaled64(w, dot64(qj, w), qj);
    }
    Ok((a, norm64(w)))
}

/// The eigen-decomposition of the first `m` rows of `tridiag(beta, alpha, beta)` into the first
/// `m * m` values of `z` (eigenvectors as columns) and `m` of `evals` (descending).
fn tridiagonal_eigen(
    alpha: &[f64],
    beta: &[f64],
    m: usize,
    t: &mut [f64],
    z: &mut [f64],
    evals: &mut [f64],
) -> Result<usize, Error> {
    let (z, evals) = (&mut z[..m * m], &mut evals[..m]);
    symmetric_tridiagonal_eigen(&alpha[..m], &beta[..m.saturating_sub(1)], m, t, z, evals)
}

/// After a breakdown at step `m - 1` (the span of `q_0..q_(m-1)` is invariant), writes into
/// `basis[m * n..(m + 1) * n]` a unit vector orthogonal to it and returns `true`; the caller
/// sets `beta_(m-1) = 0`, so `A Q = Q T + beta_m q_(m+1) e_m^T` stays exact and the residuals
/// `|beta_m s_mk|` stay valid for the block-diagonal `T`. The new vector is the coordinate
/// vector `e_c` least represented in the basis (the smallest `sum_i q_i[c]^2`, summed in f64 in
/// basis order; the first `c` on ties), re-orthogonalised twice. Deterministic, no random
/// stream. Returns `false` when no such vector is left (`m >= n`, or rounding leaves less than
/// half the norm the smallest sum guarantees).
fn restart(basis: &mut [f32], m: usize, n: usize) -> bool {
    if m >= n {
        return false;
    }
    let (done, next) = basis.split_at_mut(m * n);
    let mut best = (f64::INFINITY, 0usize);
    for c in 0..n {
        let mut s = 0.0f64;
        for i in 0..m {
            let x = done[i * n + c] as f64;
            s += x * x;
        }
        if s < best.0 {
            best = (s, c);
        }
    }
    let w = &mut next[..n];
    w.fill(0.0);
    w[best.1] = 1.0;
    for _ in 0..2 {
        for i in 0..m {
            let qi = &done[i * n..(i + 1) * n];
            sub_scaled64(w, dot64(qi, w), qi);
        }
    }
    // The smallest sum is at most the mean, m / n, so `||w||^2 >= 1 - m / n >= 1 / n` exactly.
    let s = norm64(w);
    if !(s * s >= 0.5 / n as f64) || !s.is_finite() {
        return false;
    }
    for x in w.iter_mut() {
        *x = (*x as f64 / s) as f32;
    }
    true
}

/// Normalises `basis[j * n..(j + 1) * n]` by `b` in place.
fn scale_next(basis: &mut [f32], j: usize, n: usize, b: f64) {
    for x in basis[j * n..(j + 1) * n].iter_mut() {
        *x = (*x as f64 / b) as f32;
    }
}

/// Runs Lanczos on `op` from `start` (`dim` values, any non-zero finite vector). Writes the
/// Ritz values in descending order into `values[..steps]` and their residual bounds into
/// `residuals[..steps]`; keeps what [`ritz_vector`] needs in `basis` (at least
/// [`lanczos_basis_len`]`(cfg.steps, dim)` values) and `work` (at least
/// [`lanczos_work_len`]`(cfg.steps)`). `values` and `residuals` hold `cfg.steps` values each.
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
    let (basis_len, work_len) = storage_lens(m_req, n)?;
    check_min("Lanczos basis", basis, basis_len)?;
    check_min("Lanczos work", work, work_len)?;
    check_min("Ritz values", values, m_req)?;
    check_min("Ritz residuals", residuals, m_req)?;
    let m_max = m_req.min(n);
    let (tmat, rest) = work.split_at_mut(m_req * m_req);
    let (zmat, rest) = rest.split_at_mut(m_req * m_req);
    let (alpha, rest) = rest.split_at_mut(m_req);
    let (beta, rest) = rest.split_at_mut(m_req);
    let evals = &mut rest[..m_req];

    let s_norm = start_norm("start vector", start)?;
    for (q, &s) in basis[..n].iter_mut().zip(start) {
        *q = (s as f64 / s_norm) as f32;
    }
    let mut m = 0;
    let mut last_beta = 0.0f64;
    for j in 0..m_max {
        let (a, b) = extend(op, basis, j, n, if j > 0 { beta[j - 1] } else { 0.0 })?;
        alpha[j] = a;
        beta[j] = b;
        last_beta = b;
        m = j + 1;
        if !(b > 1e-12 * a.abs().max(f64::MIN_POSITIVE)) {
            // An invariant subspace: go on from a new direction, or stop when none is left.
            beta[j] = 0.0;
            last_beta = 0.0;
            if m < m_max && restart(basis, m, n) {
                continue;
            }
            break;
        }
        scale_next(basis, j + 1, n, b);
    }
    tridiagonal_eigen(alpha, beta, m, tmat, zmat, evals)?;
    for k in 0..m {
        values[k] = evals[k] as f32;
        residuals[k] = (last_beta * zmat[(m - 1) * m + k]).abs() as f32;
        // Finite in f64 is not enough: the results are reported in f32.
        if !values[k].is_finite() || !residuals[k].is_finite() {
            return Err(Error::NonFinite("Ritz value (beyond the f32 range)"));
        }
    }
    Ok(LanczosResult { steps: m, dim: n })
}

/// Ritz vector number `k` (0 = largest Ritz value) of a finished run: `y = Q s_k`, written into
/// `out` (`result.dim` values), summed in f64 over the basis vectors in order. `basis`, `work`,
/// `cfg` and `result` are the run's.
pub fn ritz_vector(
    basis: &[f32],
    work: &[f64],
    cfg: &LanczosConfig,
    result: &LanczosResult,
    k: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let n = result.dim;
    check_len("Ritz vector", out, n)?;
    let (m_req, m) = (cfg.steps, result.steps);
    if k >= m || m > m_req {
        return Err(Error::InvalidConfig("Ritz vector index out of range"));
    }
    let basis_len = m.checked_mul(n).ok_or(Error::InvalidConfig(
        "Ritz vector: steps * dim overflows a usize",
    ))?;
    check_min("Lanczos basis", basis, basis_len)?;
    let work_len = checked_lanczos_work_len(m_req).ok_or(Error::InvalidConfig(
        "Lanczos storage for this many steps overflows a usize",
    ))?;
    check_min("Lanczos work", work, work_len)?;
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

/// Settings of [`warm_lanczos`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmLanczosConfig {
    /// Relative tolerance: a Ritz pair has converged when its residual is at most
    /// `tol * |theta_1|`, `theta_1` the top Ritz value (default `1e-3`; the same test as
    /// [`crate::power_iteration`] when the top eigenvalue dominates). Must be finite and
    /// `>= 0`. A sharpness near zero next to large negative eigenvalues may then not converge
    /// within `max_steps`: reported, not hidden.
    pub tol: f32,
    /// Most Lanczos steps, i.e. operator products (default 30).
    pub max_steps: usize,
    /// Number of top Ritz pairs that must converge (default 1: the sharpness alone).
    pub k: usize,
}

impl Default for WarmLanczosConfig {
    fn default() -> Self {
        Self {
            tol: 1e-3,
            max_steps: 30,
            k: 1,
        }
    }
}

/// What a [`warm_lanczos`] run produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarmLanczosResult {
    /// Operator products (Lanczos steps) run.
    pub steps: usize,
    /// Products after which the top Ritz pair first met the tolerance (`steps` if it never
    /// did): what tracking the sharpness alone costs.
    pub top_steps: usize,
    /// Whether all `k` requested pairs met the tolerance.
    pub converged: bool,
}

/// Warm-started Lanczos for the `k` algebraically largest eigenpairs, stopping as soon as
/// they have converged: the tracking counterpart of [`crate::sharpness`].
///
/// The start vector is the previous measurement's top eigenvector (`vecs[..dim]`) when
/// `k == 1`, and the normalised sum of the `k` previous eigenvectors when `k > 1` (its Krylov
/// space contains all of them after `k` steps, so each is refined). After every step the
/// tridiagonal matrix is diagonalised (Jacobi, or QL beyond 64 steps) and the residual of each
/// Ritz pair read off as `|beta_m s_mk|`; the run stops when the top `k` residuals are within
/// the tolerance, after `max_steps` products, or on an invariant subspace. Unlike power
/// iteration it does not need a gap between the top two eigenvalues to converge quickly:
/// at the edge of stability, where the top eigenvector turns within a crowded top of the
/// spectrum, the Krylov space resolves the turn in a few products. No shift is needed either:
/// the largest Ritz value is the algebraically largest eigenvalue estimate.
///
/// **What convergence certifies.** A residual `r` puts *an* eigenvalue within `r` of the Ritz
/// value, not necessarily the top one. A start nearly orthogonal to the top eigenvector can
/// therefore converge to the second eigenvalue in few products, and say so: for example
/// `diag(1, 0.97, 0.5, ...)` from `e_2 + 0.03 e_1` converges to 0.97 after one product (power
/// iteration likewise). In tracking this happens when the top two eigenvalues cross between
/// measurements and the warm start follows the one that fell behind (seen on a small network
/// beyond the edge of stability: BENCHMARKS.md, "Is the tracked value the top eigenvalue?").
/// Remedies: a smaller `tol` (the Krylov space then
/// grows until the top pair is resolved), `k = 2`, or comparing with an occasional run from a
/// random start, as `edgewise repro` does (its report gives the largest difference between the
/// tracked and the fresh sharpness).
///
/// `vecs` (`k * dim` values) receives the top `k` Ritz vectors and `pairs[..k]` their values and
/// residuals (`iterations` = products of the whole run). `basis` holds
/// `(max_steps + 1) * dim` values and `work` [`lanczos_work_len`]`(max_steps)`. All
/// reductions are in f64 in ascending order, so the result is the same on every target.
///
/// A Krylov space that turns out invariant with fewer than `k` dimensions (a start that is a
/// sum of eigenvectors of fewer than `k` eigenvalues) is continued from a new direction, as in
/// [`lanczos`], so the missing pairs are still found.
///
/// Errors: [`Error::NonFinite`] when a Ritz value or residual does not fit in an f32;
/// [`Error::NotConverged`] only if rounding leaves no direction to continue from.
pub fn warm_lanczos<O: LinearOperator + ?Sized>(
    op: &mut O,
    cfg: &WarmLanczosConfig,
    vecs: &mut [f32],
    basis: &mut [f32],
    work: &mut [f64],
    pairs: &mut [Eigenpair],
) -> Result<WarmLanczosResult, Error> {
    let n = op.dim();
    let k = cfg.k;
    let m_req = cfg.max_steps;
    if k == 0 || m_req < k || k > n || !(cfg.tol >= 0.0 && cfg.tol.is_finite()) {
        return Err(Error::InvalidConfig(
            "warm Lanczos needs 1 <= k <= max_steps, k <= dim and a finite tol >= 0",
        ));
    }
    let kn = k.checked_mul(n).ok_or(Error::InvalidConfig(
        "warm Lanczos: k * dim overflows a usize",
    ))?;
    check_len("eigenvector storage", vecs, kn)?;
    let (basis_len, work_len) = storage_lens(m_req, n)?;
    check_min("Lanczos basis", basis, basis_len)?;
    check_min("Lanczos work", work, work_len)?;
    check_min("eigenpairs", pairs, k)?;
    let m_max = m_req.min(n);
    let (tmat, rest) = work.split_at_mut(m_req * m_req);
    let (zmat, rest) = rest.split_at_mut(m_req * m_req);
    let (alpha, rest) = rest.split_at_mut(m_req);
    let (beta, rest) = rest.split_at_mut(m_req);
    let evals = &mut rest[..m_req];

    // Start vector: v_1, or the sum of the k previous vectors, in index order.
    {
        let q = &mut basis[..n];
        q.copy_from_slice(&vecs[..n]);
        for i in 1..k {
            for (x, &y) in q.iter_mut().zip(&vecs[i * n..(i + 1) * n]) {
                *x = (*x as f64 + y as f64) as f32;
            }
        }
        let s = start_norm("start vector", q)?;
        for x in q.iter_mut() {
            *x = (*x as f64 / s) as f32;
        }
    }
    let tol = cfg.tol as f64;
    let mut m = 0;
    let mut top_steps = 0;
    let mut converged = false;
    let mut last_beta;
    loop {
        let j = m;
        let (a, b) = extend(op, basis, j, n, if j > 0 { beta[j - 1] } else { 0.0 })?;
        if !b.is_finite() {
            return Err(Error::NonFinite("Hessian-vector product"));
        }
        alpha[j] = a;
        beta[j] = b;
        m = j + 1;
        let breakdown = !(b > 1e-12 * a.abs().max(f64::MIN_POSITIVE));
        last_beta = if breakdown { 0.0 } else { b };
        tridiagonal_eigen(alpha, beta, m, tmat, zmat, evals)?;
        // Relative to the top Ritz value, the sharpness: a scale that also took in the bottom
        // of the spectrum would accept a top value far off when a large negative eigenvalue
        // dominates (seen on diverging runs).
        let scale = evals[0].abs();
        let res = |i: usize| (last_beta * zmat[(m - 1) * m + i]).abs();
        if top_steps == 0 && res(0) <= tol * scale {
            top_steps = m;
        }
        if m >= k && (0..k).all(|i| res(i) <= tol * scale) {
            converged = true;
        }
        if converged || m >= m_max {
            break;
        }
        if breakdown {
            // An invariant subspace of fewer than `k` dimensions (with `k` or more, every Ritz
            // pair is exact and the run has converged): go on from a new direction.
            beta[j] = 0.0;
            if restart(basis, m, n) {
                continue;
            }
            break;
        }
        scale_next(basis, m, n, b);
    }
    if m < k {
        // Only when a restart found no direction left (rounding; `k <= dim` is checked).
        return Err(Error::NotConverged(
            "warm Lanczos (invariant subspace of fewer than k dimensions, no restart)",
        ));
    }
    // Finite in f64 is not enough: the results are reported in f32.
    for i in 0..k {
        let value = evals[i] as f32;
        let residual = (last_beta * zmat[(m - 1) * m + i]).abs() as f32;
        if !value.is_finite() || !residual.is_finite() {
            return Err(Error::NonFinite("Ritz value (beyond the f32 range)"));
        }
    }
    for i in 0..k {
        let out = &mut vecs[i * n..(i + 1) * n];
        for (idx, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0f64;
            for j in 0..m {
                acc += zmat[j * m + i] * basis[j * n + idx] as f64;
            }
            *o = acc as f32;
        }
        pairs[i] = Eigenpair {
            value: evals[i] as f32,
            residual: (last_beta * zmat[(m - 1) * m + i]).abs() as f32,
            iterations: u32::try_from(m).unwrap_or(u32::MAX),
            converged,
        };
    }
    Ok(WarmLanczosResult {
        steps: m,
        top_steps: if top_steps == 0 { m } else { top_steps },
        converged,
    })
}

/// First-order prediction of the next top eigenvector from the last two measurements, the
/// start vector [`warm_lanczos`] tracking uses: `out = 2 latest - s before`, with
/// `s = sign(latest . before)` (eigenvectors have no sign). On GD runs measured every step it
/// saved 20-45% of the products against starting from `latest` alone, because the eigenvector
/// turns steadily between steps (BENCHMARKS.md). Sums in f64, index order.
pub fn extrapolate_start(latest: &[f32], before: &[f32], out: &mut [f32]) -> Result<(), Error> {
    let n = latest.len();
    check_len("previous eigenvector", before, n)?;
    check_len("start vector", out, n)?;
    let s = if dot64(latest, before) < 0.0 {
        -1.0
    } else {
        1.0
    };
    for ((o, &a), &b) in out.iter_mut().zip(latest).zip(before) {
        *o = (2.0 * a as f64 - s * b as f64) as f32;
    }
    if !crate::vec::all_finite(out) {
        return Err(Error::NonFinite("extrapolated start vector"));
    }
    Ok(())
}

/// How [`predict_start`] predicted the next top eigenvector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPrediction {
    /// The latest eigenvector `v_1` (only one measurement so far).
    Latest,
    /// Linear in consecutive measurements: `2 v_1 - v_2` (a steadily turning eigenvector).
    Linear,
    /// The one before the latest, `v_2` (a period-two orbit: gradient descent oscillating
    /// across a valley at the edge of stability, where the top eigenvector alternates).
    PeriodTwo,
    /// Linear within the period-two orbit: `2 v_2 - v_4`.
    PeriodTwoLinear,
    /// Quadratic within the period-two orbit: `3 v_2 - 3 v_4 + v_6`.
    PeriodTwoQuadratic,
}

/// The most history [`predict_start`] reads.
pub const PREDICT_HISTORY: usize = 8;

/// Backtests per candidate (predictions of the latest vectors from older ones) when the
/// history is long enough.
const BACKTESTS: usize = 2;

/// Up to three `(coefficient, history index)` terms of a prediction (each term sign-aligned
/// with the first).
type Terms = [(f64, usize); 3];

/// The candidate predictions: their terms and the largest history index they read.
const PREDICTIONS: [(StartPrediction, Terms, usize); 5] = [
    (StartPrediction::Linear, [(2.0, 0), (-1.0, 1), (0.0, 0)], 1),
    (StartPrediction::Latest, [(1.0, 0), (0.0, 0), (0.0, 0)], 0),
    (
        StartPrediction::PeriodTwo,
        [(1.0, 1), (0.0, 1), (0.0, 1)],
        1,
    ),
    (
        StartPrediction::PeriodTwoLinear,
        [(2.0, 1), (-1.0, 3), (0.0, 1)],
        3,
    ),
    (
        StartPrediction::PeriodTwoQuadratic,
        [(3.0, 1), (-3.0, 3), (1.0, 5)],
        5,
    ),
];

/// Predicts the next top eigenvector from the previous measurements' ones, `history[0]` the
/// latest, `history[1]` the one before, and so on (at most [`PREDICT_HISTORY`] are read; each
/// of unit length, as the solvers return them). The start vector of warm-started tracking.
///
/// The candidates are the latest vector, the linear extrapolation `2 v_1 - v_2`
/// ([`extrapolate_start`]), the vector two measurements back `v_2`, and the linear and
/// quadratic extrapolations within a period-two orbit, `2 v_2 - v_4` and `3 v_2 - 3 v_4 + v_6`.
/// Each is *backtested*: made one and two measurements earlier (from `history[1..]` and
/// `history[2..]`) and compared with what was then measured, by `1 - cos^2`; a candidate is
/// only considered when the history holds both of its backtests. The one with the smallest
/// summed backtest error predicts the next vector (ties: the order above, from the linear
/// one). With two vectors only, no backtest is possible and the linear extrapolation is used,
/// as [`extrapolate_start`] does. Why: in steady training the top eigenvector turns steadily
/// and the linear extrapolation is best; at the edge of stability gradient descent oscillates
/// with period two across the sharpest direction, the Hessian on the two sides of the valley
/// differs and the top eigenvector alternates between two slowly moving directions, so that
/// the vectors two, four and six measurements back predict it far better than the latest
/// (BENCHMARKS.md). Eigenvectors have no sign: every term is aligned with the first. The
/// backtests only need the Gram matrix of the history (no operator products). Sums in f64,
/// index order. A non-finite history vector or prediction is an [`Error::NonFinite`].
pub fn predict_start(history: &[&[f32]], out: &mut [f32]) -> Result<StartPrediction, Error> {
    let n = out.len();
    let h = history.len().min(PREDICT_HISTORY);
    if h == 0 {
        return Err(Error::InvalidConfig(
            "predict_start needs at least one vector",
        ));
    }
    for v in &history[..h] {
        check_len("previous eigenvector", v, n)?;
        if !crate::vec::all_finite(v) {
            return Err(Error::NonFinite("previous eigenvector"));
        }
    }
    let mut g = [[0.0f64; PREDICT_HISTORY]; PREDICT_HISTORY];
    for i in 0..h {
        for j in i..h {
            let d = dot64(history[i], history[j]);
            g[i][j] = d;
            g[j][i] = d;
        }
    }
    // A candidate's terms for a prediction made `shift` measurements back, signs aligned.
    let terms_at = |terms: &Terms, shift: usize| -> Terms {
        let first = terms[0].1 + shift;
        core::array::from_fn(|t| {
            let (c, i) = (terms[t].0, terms[t].1 + shift);
            let s = if t > 0 && g[first][i] < 0.0 {
                -1.0
            } else {
                1.0
            };
            (s * c, i)
        })
    };
    let mut best = (
        if h == 2 {
            StartPrediction::Linear
        } else {
            StartPrediction::Latest
        },
        f64::INFINITY,
    );
    for (kind, terms, need) in PREDICTIONS {
        // Backtest `b` predicts h[b - 1] from h[b..], reading up to h[need + b].
        if h < 3 || need + BACKTESTS.min(h - 2) + 1 > h {
            continue;
        }
        let mut err = 0.0;
        for b in 1..=BACKTESTS.min(h - 2) {
            let c = terms_at(&terms, b);
            let target = b - 1;
            let mut dot = 0.0;
            let mut norm2 = 0.0;
            for &(ci, i) in &c {
                dot += ci * g[i][target];
                for &(cj, j) in &c {
                    norm2 += ci * cj * g[i][j];
                }
            }
            let denom = norm2 * g[target][target];
            err += if denom > 0.0 {
                1.0 - dot * dot / denom
            } else {
                1.0
            };
        }
        if err < best.1 {
            best = (kind, err);
        }
    }
    let terms = PREDICTIONS
        .iter()
        .find(|(k, _, _)| *k == best.0)
        .map_or(PREDICTIONS[1].1, |c| c.1);
    let c = terms_at(&terms, 0);
    for (k, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f64;
        for &(ci, i) in &c {
            if ci != 0.0 {
                acc += ci * history[i][k] as f64;
            }
        }
        *o = acc as f32;
    }
    if !crate::vec::all_finite(out) {
        return Err(Error::NonFinite("predicted start vector"));
    }
    Ok(best.0)
}
