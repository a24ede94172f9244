//! Lanczos for the top eigenpair in four vectors of memory: the tracker for microcontrollers.
//!
//! [`warm_lanczos`](crate::warm_lanczos) keeps its whole basis, `(steps + 1) * dim` values:
//! 21 vectors at 20 steps, more than a 64 KiB microcontroller holds for a network of a thousand
//! parameters. Power iteration needs two vectors but, at the edge of stability, where the top
//! eigenvector turns within a crowded top of the spectrum, it stops at its cap short of the
//! tolerance with a value a few percent low. [`lean_lanczos`] keeps only the three vectors of
//! the three-term recurrence and the caller's start/result vector, and runs twice:
//!
//! 1. From the unit start `q_1`, step `j` computes `w = A q_j`, `alpha_j = q_j . w`,
//!    `w -= alpha_j q_j + beta_(j-1) q_(j-1)`, re-orthogonalises `w` once more against
//!    `q_j` and `q_(j-1)` (the vectors it was built from: *local* re-orthogonalisation), and
//!    sets `beta_j = ||w||`, `q_(j+1) = w / beta_j`. After each step the top eigenpair
//!    `(theta, s)` of `T = tridiag(beta, alpha, beta)` gives the residual estimate; the pass
//!    stops when it meets `tol * |theta|`, after `max_steps` products, or on an invariant
//!    subspace (`beta_j` negligible: the pair is then exact).
//! 2. The basis is regenerated from the start, product by product, bit for bit (the
//!    recurrence's coefficients are compared with the first pass's, so an operator that is not
//!    deterministic is an error, not a wrong vector), and the Ritz vector `y = sum_j s_j q_j`
//!    accumulated into the caller's vector: `m - 1` more products for `m` steps, `2 m - 1` in
//!    all.
//!
//! The top eigenpair of `T` comes from bisection on Sturm counts (the largest eigenvalue to
//! the precision of f64) and a twisted factorisation of `T - theta I` for its eigenvector
//! (Dhillon and Parlett's: `s` from the index where the factorisation is most singular), in
//! `O(m)` memory. The reported residual is `sqrt((beta_m s_m)^2 + ||T s - theta s||^2)`: the
//! residual of `y` in exact arithmetic, including the small-problem solver's own error.
//!
//! **Without the basis there is no full re-orthogonalisation.** In floating point the `q_j`
//! lose orthogonality to a Ritz vector as it converges (Paige): by about `eps ||A|| / r` for a
//! residual `r`, `6e-5` in f32 at the relative tolerance `1e-3`. At that tolerance the top
//! pair is therefore as trustworthy as with [`warm_lanczos`](crate::warm_lanczos) (tests
//! compare both with dense eigen-decompositions); at much tighter tolerances the stored-basis
//! method is the one to use. All reductions are in f64 in index order: the same bits on every
//! target.

use crate::eig::power::Eigenpair;
use crate::error::{check_len, check_min, Error};
use crate::math::sqrt64;
use crate::operator::LinearOperator;
use crate::vec::{dot64, norm64, start_norm, sub_scaled64};

/// Settings of [`lean_lanczos`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeanLanczosConfig {
    /// Relative tolerance: the top pair has converged when its residual is at most
    /// `tol * |theta|` (default `1e-3`). Must be finite and `>= 0`.
    pub tol: f32,
    /// Most Lanczos steps of the first pass (default 30); the second pass runs one fewer, so a
    /// measurement costs at most `2 max_steps - 1` products.
    pub max_steps: usize,
}

impl Default for LeanLanczosConfig {
    fn default() -> Self {
        Self {
            tol: 1e-3,
            max_steps: 30,
        }
    }
}

/// Length of [`lean_lanczos`]'s f64 work buffer for `max_steps` steps: `5 * max_steps`
/// (saturating at `usize::MAX`, which no buffer is).
pub const fn lean_lanczos_work_len(max_steps: usize) -> usize {
    match max_steps.checked_mul(5) {
        Some(len) => len,
        None => usize::MAX,
    }
}

/// The top eigenpair of `op` by Lanczos in constant memory, started from `v` (any non-zero
/// finite vector, the previous eigenvector when tracking) and overwritten with the Ritz vector
/// (unit length up to rounding). `scratch` holds `3 * dim` values and `work`
/// [`lean_lanczos_work_len`]`(cfg.max_steps)`; nothing else is stored, so the memory is four
/// vectors whatever the number of steps (see the module documentation for the method and what
/// it gives up).
///
/// Returns the top Ritz value, its residual (see the module documentation), the products of
/// both passes (`iterations`) and whether the tolerance was met. As with every residual test,
/// convergence certifies *an* eigenvalue near the value, normally the top one (see
/// [`warm_lanczos`](crate::warm_lanczos), "What convergence certifies").
///
/// Errors: [`Error::InvalidConfig`] for `max_steps == 0`, a tolerance that is not finite and
/// `>= 0`, or an operator whose products differ between the passes; [`Error::NonFinite`] when
/// a product, the Ritz value or its residual is not finite (in f32); length errors for the
/// buffers; the start vector's errors of [`crate::vec::start_norm`]. `v` is unchanged by an
/// error of the first pass.
pub fn lean_lanczos<O: LinearOperator + ?Sized>(
    op: &mut O,
    cfg: &LeanLanczosConfig,
    v: &mut [f32],
    scratch: &mut [f32],
    work: &mut [f64],
) -> Result<Eigenpair, Error> {
    let n = op.dim();
    let m_req = cfg.max_steps;
    if m_req == 0 || !(cfg.tol >= 0.0 && cfg.tol.is_finite()) {
        return Err(Error::InvalidConfig(
            "lean Lanczos needs max_steps >= 1 and a finite tol >= 0",
        ));
    }
    check_len("start vector", v, n)?;
    let scratch_len = n.checked_mul(3).ok_or(Error::InvalidConfig(
        "lean Lanczos: 3 * dim overflows a usize",
    ))?;
    check_min("lean Lanczos scratch", scratch, scratch_len)?;
    check_min("lean Lanczos work", work, lean_lanczos_work_len(m_req))?;
    let s_norm = start_norm("start vector", v)?;
    let m_max = m_req.min(n);
    let (alpha, rest) = work.split_at_mut(m_req);
    let (beta, rest) = rest.split_at_mut(m_req);
    let (s, rest) = rest.split_at_mut(m_req);
    let (dplus, rest) = rest.split_at_mut(m_req);
    let dminus = &mut rest[..m_req];
    let (a_buf, rest) = scratch.split_at_mut(n);
    let (b_buf, rest) = rest.split_at_mut(n);
    let c_buf = &mut rest[..n];

    // First pass: the tridiagonal matrix, until the top pair converges.
    let mut bufs: [&mut [f32]; 3] = [a_buf, b_buf, c_buf];
    for (q, &x) in bufs[1].iter_mut().zip(v.iter()) {
        *q = (x as f64 / s_norm) as f32;
    }
    let tol = cfg.tol as f64;
    let mut m = 0;
    let mut theta;
    let mut residual;
    let mut converged = false;
    loop {
        let j = m;
        let [qp, q, w] = &mut bufs;
        let prev_beta = if j > 0 { beta[j - 1] } else { 0.0 };
        let (a, b) = step(op, qp, q, w, prev_beta, j == 0)?;
        alpha[j] = a;
        beta[j] = b;
        m = j + 1;
        let breakdown = !(b > 1e-12 * a.abs().max(f64::MIN_POSITIVE));
        let last_beta = if breakdown { 0.0 } else { b };
        let (t, t_res) = tridiagonal_top(
            &alpha[..m],
            &beta[..m - 1],
            &mut s[..m],
            &mut dplus[..m],
            &mut dminus[..m],
        )?;
        theta = t;
        let tail = last_beta * s[m - 1];
        residual = sqrt64(tail * tail + t_res * t_res);
        if residual <= tol * theta.abs() {
            converged = true;
        }
        if converged || breakdown || m >= m_max {
            break;
        }
        scale(w, b);
        bufs.rotate_left(1);
    }
    let (value, res32) = (theta as f32, residual as f32);
    if !value.is_finite() || !res32.is_finite() {
        return Err(Error::NonFinite("Ritz value (beyond the f32 range)"));
    }

    // Second pass: regenerate q_1..q_m bit for bit and accumulate y = sum_j s_j q_j into v.
    for (q, &x) in bufs[1].iter_mut().zip(v.iter()) {
        *q = (x as f64 / s_norm) as f32;
    }
    for (y, &q) in v.iter_mut().zip(bufs[1].iter()) {
        *y = (s[0] * q as f64) as f32;
    }
    for j in 0..m - 1 {
        let [qp, q, w] = &mut bufs;
        let prev_beta = if j > 0 { beta[j - 1] } else { 0.0 };
        let (a, b) = step(op, qp, q, w, prev_beta, j == 0)?;
        if a.to_bits() != alpha[j].to_bits() || b.to_bits() != beta[j].to_bits() {
            return Err(Error::InvalidConfig(
                "lean Lanczos: the operator's products differ between the two passes (it must be deterministic)",
            ));
        }
        scale(w, b);
        for (y, &q) in v.iter_mut().zip(w.iter()) {
            *y = (*y as f64 + s[j + 1] * q as f64) as f32;
        }
        bufs.rotate_left(1);
    }
    let products = m + (m - 1);
    Ok(Eigenpair {
        value,
        residual: res32,
        iterations: u32::try_from(products).unwrap_or(u32::MAX),
        converged,
    })
}

/// One step of the three-term recurrence with local re-orthogonalisation: `w = A q`,
/// `alpha = q . w`, `w -= alpha q + beta_prev qp` (no `qp` on the first step), then once more
/// against `q` and `qp`. Returns `(alpha, ||w||)`.
fn step<O: LinearOperator + ?Sized>(
    op: &mut O,
    qp: &[f32],
    q: &[f32],
    w: &mut [f32],
    prev_beta: f64,
    first: bool,
) -> Result<(f64, f64), Error> {
    op.apply(q, w)?;
    let a = dot64(q, w);
    if !a.is_finite() {
        return Err(Error::NonFinite("Hessian-vector product"));
    }
    sub_scaled64(w, a, q);
    if !first {
        sub_scaled64(w, prev_beta, qp);
    }
    sub_scaled64(w, dot64(q, w), q);
    if !first {
        sub_scaled64(w, dot64(qp, w), qp);
    }
    let b = norm64(w);
    if !b.is_finite() {
        return Err(Error::NonFinite("Hessian-vector product"));
    }
    Ok((a, b))
}

/// `w /= b` elementwise in f64, rounded once.
fn scale(w: &mut [f32], b: f64) {
    for x in w.iter_mut() {
        *x = (*x as f64 / b) as f32;
    }
}

/// Number of eigenvalues of `tridiag(beta, alpha, beta)` below `x` (Sturm count of the
/// `LDL^T` pivots of `T - x I`; a pivot smaller than `pivmin` in magnitude counts as
/// `-pivmin`, as in LAPACK's bisection).
fn sturm_count(alpha: &[f64], beta: &[f64], x: f64, pivmin: f64) -> usize {
    let mut count = 0;
    let mut d = 1.0f64;
    for (i, &a) in alpha.iter().enumerate() {
        d = if i == 0 {
            a - x
        } else {
            a - x - beta[i - 1] * beta[i - 1] / d
        };
        if d.abs() < pivmin {
            d = -pivmin;
        }
        if d < 0.0 {
            count += 1;
        }
    }
    count
}

/// The largest eigenvalue `theta` of the symmetric tridiagonal matrix with diagonal `alpha`
/// (`m` values) and off-diagonal `beta` (`m - 1` values, all non-zero), its unit eigenvector in
/// `s`, and `||T s - theta s||`. `dplus` and `dminus` (`m` values each) are scratch.
///
/// The eigenvalue by bisection between Gershgorin bounds on [`sturm_count`] until the interval
/// is two units in the last place wide; the eigenvector from the twisted factorisation
/// `T - theta I = N_r D_r N_r^T` at the index `r` where `|gamma_r|` is smallest (Dhillon and
/// Parlett): `s_r = 1`, then outwards with the forward and backward factorisations'
/// multipliers, normalised in f64 in index order.
pub(crate) fn tridiagonal_top(
    alpha: &[f64],
    beta: &[f64],
    s: &mut [f64],
    dplus: &mut [f64],
    dminus: &mut [f64],
) -> Result<(f64, f64), Error> {
    let m = alpha.len();
    if m == 0 || beta.len() + 1 != m || s.len() != m || dplus.len() != m || dminus.len() != m {
        return Err(Error::InvalidConfig(
            "tridiagonal_top: inconsistent lengths",
        ));
    }
    if alpha.iter().chain(beta).any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("tridiagonal matrix"));
    }
    if m == 1 {
        s[0] = 1.0;
        return Ok((alpha[0], 0.0));
    }
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut bmax2 = 0.0f64;
    for i in 0..m {
        let left = if i > 0 { beta[i - 1].abs() } else { 0.0 };
        let right = if i + 1 < m { beta[i].abs() } else { 0.0 };
        lo = lo.min(alpha[i] - left - right);
        hi = hi.max(alpha[i] + left + right);
        bmax2 = bmax2.max(right * right);
    }
    let pivmin = f64::MIN_POSITIVE * bmax2.max(1.0);
    let width = (hi - lo).max(hi.abs().max(lo.abs()) * f64::EPSILON);
    lo -= width * f64::EPSILON + pivmin;
    hi += width * f64::EPSILON + pivmin;
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(Error::NonFinite("tridiagonal matrix (Gershgorin bounds)"));
    }
    // Invariant: fewer than m eigenvalues below lo, all m below hi.
    for _ in 0..2200 {
        let mid = lo + 0.5 * (hi - lo);
        if !(mid > lo && mid < hi) {
            break;
        }
        if sturm_count(alpha, beta, mid, pivmin) == m {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let theta = lo + 0.5 * (hi - lo);

    // Twisted factorisation at theta.
    let guard = |d: f64| if d.abs() < pivmin { -pivmin } else { d };
    dplus[0] = guard(alpha[0] - theta);
    for i in 0..m - 1 {
        dplus[i + 1] = guard(alpha[i + 1] - theta - beta[i] * beta[i] / dplus[i]);
    }
    dminus[m - 1] = guard(alpha[m - 1] - theta);
    for i in (0..m - 1).rev() {
        dminus[i] = guard(alpha[i] - theta - beta[i] * beta[i] / dminus[i + 1]);
    }
    let mut r = 0;
    let mut best = f64::INFINITY;
    for i in 0..m {
        let gamma = (dplus[i] + dminus[i] - (alpha[i] - theta)).abs();
        if gamma < best {
            best = gamma;
            r = i;
        }
    }
    s[r] = 1.0;
    for i in (0..r).rev() {
        s[i] = -(beta[i] / dplus[i]) * s[i + 1];
    }
    for i in r..m - 1 {
        s[i + 1] = -(beta[i] / dminus[i + 1]) * s[i];
    }
    let mut sq = 0.0f64;
    for &x in s.iter() {
        sq += x * x;
    }
    let norm = sqrt64(sq);
    if !(norm.is_finite() && norm > 0.0) {
        return Err(Error::NonFinite("tridiagonal eigenvector"));
    }
    for x in s.iter_mut() {
        *x /= norm;
    }
    // ||T s - theta s||, row by row.
    let mut res2 = 0.0f64;
    for i in 0..m {
        let mut t = (alpha[i] - theta) * s[i];
        if i > 0 {
            t += beta[i - 1] * s[i - 1];
        }
        if i + 1 < m {
            t += beta[i] * s[i + 1];
        }
        res2 += t * t;
    }
    let t_res = sqrt64(res2);
    if !(theta.is_finite() && t_res.is_finite()) {
        return Err(Error::NonFinite("tridiagonal eigenpair"));
    }
    Ok((theta, t_res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eig::jacobi::symmetric_tridiagonal_eigen;

    fn top_by_jacobi(alpha: &[f64], beta: &[f64]) -> f64 {
        let m = alpha.len();
        let mut t = [0.0f64; 64 * 64];
        let mut z = [0.0f64; 64 * 64];
        let mut e = [0.0f64; 64];
        symmetric_tridiagonal_eigen(
            alpha,
            beta,
            m,
            &mut t[..m * m],
            &mut z[..m * m],
            &mut e[..m],
        )
        .unwrap();
        e[0]
    }

    #[test]
    fn tridiagonal_top_matches_jacobi() {
        let mut rng = crate::rng::SplitMix64::new(11);
        for m in 1..=30usize {
            let mut alpha = [0.0f64; 30];
            let mut beta = [0.0f64; 30];
            for a in alpha[..m].iter_mut() {
                *a = rng.normal() as f64 * 3.0;
            }
            for b in beta[..m - 1].iter_mut() {
                *b = rng.normal() as f64 + 0.1;
            }
            let (mut s, mut dp, mut dm) = ([0.0f64; 30], [0.0f64; 30], [0.0f64; 30]);
            let (theta, res) = tridiagonal_top(
                &alpha[..m],
                &beta[..m - 1],
                &mut s[..m],
                &mut dp[..m],
                &mut dm[..m],
            )
            .unwrap();
            let reference = top_by_jacobi(&alpha[..m], &beta[..m - 1]);
            assert!(
                (theta - reference).abs() <= 1e-12 * reference.abs().max(1.0),
                "m {m}: {theta} vs {reference}"
            );
            assert!(res <= 1e-10 * theta.abs().max(1.0), "m {m}: residual {res}");
        }
    }

    #[test]
    fn tridiagonal_top_with_a_cluster() {
        // Two nearly equal top eigenvalues (the glued Wilkinson-like case): the vector must
        // still have a small residual.
        let alpha = [1.0, 1.0 - 1e-9, 0.5, 0.2];
        let beta = [1e-8, 1e-3, 1e-3];
        let (mut s, mut dp, mut dm) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
        let (theta, res) = tridiagonal_top(&alpha, &beta, &mut s, &mut dp, &mut dm).unwrap();
        let reference = top_by_jacobi(&alpha, &beta);
        assert!((theta - reference).abs() <= 1e-14);
        assert!(res <= 1e-12, "residual {res}");
    }
}
