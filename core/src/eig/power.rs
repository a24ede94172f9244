//! Power iteration for the extreme eigenpairs of a symmetric operator.
//!
//! Iteration `k` computes `w = A v_k`, the Rayleigh quotient `lambda_k = v_k . w` and the
//! residual `r_k = ||w - lambda_k v_k||` (all reductions in f64, ascending order), and stops
//! when `r_k <= tol |lambda_k|`, or after `max_iter` products. Otherwise `v_(k+1) = w / ||w||`.
//! The residual test is deliberate: some eigenvalue lies within `r_k` of `lambda_k`, and the
//! Rayleigh quotient's error is of order `r_k^2 / gap`, whereas the common test on the change of
//! `lambda_k` between iterations stops early on a plateau when the start vector is nearly
//! orthogonal to the top eigenvector (seen on real networks). The returned vector is `v_k`, so value, vector and residual belong
//! together. A warm start (the previous measurement's eigenvector) often converges at once.
//!
//! Plain power iteration finds the eigenvalue of largest *magnitude*. [`sharpness`] returns the
//! algebraically largest one (the sharpness), shifting by the first result when that is
//! negative; [`lambda_min`] finds the smallest (most negative) eigenvalue, the paper's
//! `lambda_neg`, by power iteration on `A - lambda_max I`; [`top_k_deflation`] finds the `k`
//! largest-magnitude eigenpairs one after another on `A - sum_j lambda_j v_j v_j^T`.

use crate::error::{check_len, check_min, Error};
use crate::operator::{LinearOperator, ShiftedOp};
use crate::rng::SplitMix64;
use crate::vec::{dot64, norm64, normalize, start_norm, sub_scaled64};

/// Settings of power iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerConfig {
    /// Relative tolerance: stop when `||A v - lambda v|| <= tol |lambda|` (default `1e-3`).
    pub tol: f32,
    /// Most operator products (default 100).
    pub max_iter: u32,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            tol: 1e-3,
            max_iter: 100,
        }
    }
}

/// An eigenvalue estimate with its quality.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eigenpair {
    /// The eigenvalue estimate (Rayleigh quotient).
    pub value: f32,
    /// `||A v - value v||` for the returned unit vector.
    pub residual: f32,
    /// Operator products used.
    pub iterations: u32,
    /// Whether the tolerance was met before the iteration cap.
    pub converged: bool,
}

/// Power iteration on `op` from the start vector `v` (overwritten with the unit eigenvector).
/// `scratch` holds `dim` values.
pub fn power_iteration<O: LinearOperator + ?Sized>(
    op: &mut O,
    v: &mut [f32],
    scratch: &mut [f32],
    cfg: &PowerConfig,
) -> Result<Eigenpair, Error> {
    let n = op.dim();
    check_len("start vector", v, n)?;
    check_min("scratch", scratch, n)?;
    if !(cfg.tol >= 0.0 && cfg.tol.is_finite()) || cfg.max_iter == 0 {
        return Err(Error::InvalidConfig(
            "power iteration needs a finite tol >= 0 and max_iter > 0",
        ));
    }
    let w = &mut scratch[..n];
    start_norm("start vector", v)?;
    normalize(v);
    let tol = cfg.tol as f64;
    let mut it = 0;
    loop {
        it += 1;
        op.apply(v, w)?;
        let lambda = dot64(v, w);
        let mut r2 = 0.0f64;
        for (&wi, &vi) in w.iter().zip(v.iter()) {
            let d = wi as f64 - lambda * vi as f64;
            r2 += d * d;
        }
        let r = crate::math::sqrt64(r2);
        if !lambda.is_finite() || !r.is_finite() {
            return Err(Error::NonFinite("Hessian-vector product"));
        }
        let converged = r <= tol * lambda.abs();
        let wn = norm64(w);
        if converged || it >= cfg.max_iter || wn == 0.0 {
            // Finite in f64 is not enough: the result is reported in f32.
            if !(lambda as f32).is_finite() || !(r as f32).is_finite() {
                return Err(Error::NonFinite("eigenvalue (beyond the f32 range)"));
            }
            return Ok(Eigenpair {
                value: lambda as f32,
                residual: r as f32,
                iterations: it,
                converged: converged || wn == 0.0,
            });
        }
        for (vi, &wi) in v.iter_mut().zip(w.iter()) {
            *vi = (wi as f64 / wn) as f32;
        }
    }
}

/// Seed of the fixed restart vector used when a shift is needed.
const RESTART_SEED: u64 = 0x005e_ed0f_5aa5;

/// The algebraically largest eigenpair (the sharpness when `op` is the Hessian).
///
/// Runs [`power_iteration`] from `v`; if the dominant eigenvalue is negative, runs it again on
/// `A - lambda I` from a fixed seeded vector, whose dominant eigenvalue is
/// `lambda_max - lambda >= 0`. `iterations` counts both runs; the second run's tolerance is
/// then relative to `lambda_max - lambda`, the spectrum's width.
///
/// Like every residual test, convergence puts *an* eigenvalue within the residual of the
/// value: a warm start nearly orthogonal to the top eigenvector can converge to the second one
/// (see [`crate::warm_lanczos`], "What convergence certifies").
pub fn sharpness<O: LinearOperator + ?Sized>(
    op: &mut O,
    v: &mut [f32],
    scratch: &mut [f32],
    cfg: &PowerConfig,
) -> Result<Eigenpair, Error> {
    let first = power_iteration(op, v, scratch, cfg)?;
    if first.value >= 0.0 {
        return Ok(first);
    }
    SplitMix64::new(RESTART_SEED).fill_normal(v);
    let mut shifted = ShiftedOp::new(op, first.value);
    let mut e = power_iteration(&mut shifted, v, scratch, cfg)?;
    e.value += first.value;
    e.iterations = e.iterations.saturating_add(first.iterations);
    if !e.value.is_finite() {
        return Err(Error::NonFinite("eigenvalue (beyond the f32 range)"));
    }
    Ok(e)
}

/// The smallest eigenpair (`lambda_neg` when negative): power iteration on `A - sigma I` with
/// `sigma = lambda_max` (pass the sharpness), whose dominant eigenvalue is
/// `lambda_min - lambda_max <= 0`. `v` is the start vector (a warm start from the previous
/// `lambda_min` vector works best; it must not be the top eigenvector itself).
///
/// The tolerance is relative to the shifted eigenvalue, `lambda_max - lambda_min`: the
/// residual test is `r <= tol (lambda_max - lambda_min)`, so a small `lambda_min` next to a
/// large sharpness has a correspondingly larger relative error (a bottom near zero needs a
/// smaller `tol`, or [`crate::lanczos`], to be resolved). A `lambda_max` below the top of the
/// spectrum can make the shifted operator's dominant eigenvalue positive; power iteration then
/// converges to an eigenvalue *above* `lambda_max`, which cannot be the smallest: that result is
/// returned with `converged: false`.
pub fn lambda_min<O: LinearOperator + ?Sized>(
    op: &mut O,
    lambda_max: f32,
    v: &mut [f32],
    scratch: &mut [f32],
    cfg: &PowerConfig,
) -> Result<Eigenpair, Error> {
    if !lambda_max.is_finite() {
        return Err(Error::NonFinite("lambda_max"));
    }
    let mut shifted = ShiftedOp::new(op, lambda_max);
    let mut e = power_iteration(&mut shifted, v, scratch, cfg)?;
    if e.value > 0.0 {
        e.converged = false;
    }
    e.value += lambda_max;
    if !e.value.is_finite() {
        return Err(Error::NonFinite("eigenvalue (beyond the f32 range)"));
    }
    Ok(e)
}

/// `A - sum_j lambda_j v_j v_j^T` over the eigenpairs found so far.
struct Deflated<'a, O: LinearOperator + ?Sized> {
    inner: &'a mut O,
    vecs: &'a [f32],
    values: &'a [f32],
}

impl<O: LinearOperator + ?Sized> LinearOperator for Deflated<'_, O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = self.dim();
        check_len("vector", v, n)?;
        check_len("output", out, n)?;
        self.inner.apply(v, out)?;
        for (j, &lam) in self.values.iter().enumerate() {
            let u = &self.vecs[j * n..(j + 1) * n];
            sub_scaled64(out, lam as f64 * dot64(u, v), u);
        }
        Ok(())
    }
}

/// The `k` largest-magnitude eigenpairs by deflation. `vecs` holds `k` start vectors of `dim`
/// values one after another (warm starts, or random) and receives the eigenvectors; `out`
/// receives the `k` eigenpairs. Each start is first orthogonalised against the vectors already
/// found.
pub fn top_k_deflation<O: LinearOperator + ?Sized>(
    op: &mut O,
    vecs: &mut [f32],
    out: &mut [Eigenpair],
    scratch: &mut [f32],
    cfg: &PowerConfig,
) -> Result<(), Error> {
    let n = op.dim();
    let k = out.len();
    let kn = k
        .checked_mul(n)
        .ok_or(Error::InvalidConfig("top-k deflation: k * dim overflows"))?;
    check_len("eigenvector storage", vecs, kn)?;
    // The eigenvalues found so far: a fixed-capacity list, the deflation's only state.
    let mut values: heapless::Vec<f32, { crate::curvature::MAX_SUBSPACE_K }> = heapless::Vec::new();
    if k > values.capacity() {
        return Err(Error::InvalidConfig("top-k deflation supports k <= 16"));
    }
    if k > n {
        return Err(Error::InvalidConfig(
            "top-k deflation needs k <= dim (there are only dim eigenpairs)",
        ));
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let (found, rest) = vecs.split_at_mut(i * n);
        let v = &mut rest[..n];
        for j in 0..i {
            let u = &found[j * n..(j + 1) * n];
            sub_scaled64(v, dot64(u, v), u);
        }
        let mut defl = Deflated {
            inner: op,
            vecs: found,
            values: &values,
        };
        let e = power_iteration(&mut defl, v, scratch, cfg)?;
        // Cannot fail: k <= capacity was checked above.
        let _ = values.push(e.value);
        *slot = e;
    }
    Ok(())
}
