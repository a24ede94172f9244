//! Curvature measures beyond the top eigenvalue: the dense Hessian, Hutchinson's trace,
//! the third directional derivative, and the rotation of eigenvectors and eigenspaces.
//!
//! - **Dense Hessian**: column `k` is `H e_k` (one product per parameter).
//! - **Trace** (Hutchinson 1990): `tr H ~ (1/m) sum_i z_i^T H z_i` with Rademacher probes `z_i`
//!   (entries +-1 from the seeded generator), with the standard error of the mean.
//! - **Third derivative** along `v` (the paper's higher-order curvature, our definition):
//!   `T(v, v, v) = d/de [v^T H(theta + e v) v]` at `e = 0`, by the central difference
//!   `(v^T H(theta + e v) v - v^T H(theta - e v) v) / (2 e)` with the step of
//!   [`crate::fd_step`].
//! - **Eigenvector rotation**: `1 - |cos angle(a, b)|`, sign-invariant (an eigenvector's sign is
//!   arbitrary): 0 for the same direction, 1 for orthogonal ones.
//! - **Subspace score** (the authors' code): principal angles `theta_i = arccos sigma_i(A^T B)`
//!   between two k-dimensional eigenspaces with orthonormal bases `A`, `B`; the score is
//!   `cos(||theta||_2 / sqrt(k))`, 1 for the same subspace, `cos(pi/2) = 0` for orthogonal ones.

use crate::eig::jacobi::symmetric_eigen;
use crate::error::{check_len, check_min, Error};
use crate::math::sqrt64;
use crate::objective::Objective;
use crate::operator::{fd_step, LinearOperator};
use crate::rng::SplitMix64;
use crate::vec::{all_finite, dot64, norm64};

/// Largest `k` for [`subspace_score`] and [`crate::top_k_deflation`].
pub const MAX_SUBSPACE_K: usize = 16;

/// Fills the row-major `n x n` matrix `h` with the columns `A e_k`. `e` and `col` are scratch
/// vectors of `n` values. The result is symmetric up to rounding.
pub fn dense_hessian<O: LinearOperator + ?Sized>(
    op: &mut O,
    h: &mut [f32],
    e: &mut [f32],
    col: &mut [f32],
) -> Result<(), Error> {
    let n = op.dim();
    let nn = n.checked_mul(n).ok_or(Error::InvalidConfig(
        "dense Hessian: dim * dim overflows a usize",
    ))?;
    check_len("dense Hessian", h, nn)?;
    check_len("unit vector scratch", e, n)?;
    check_len("column scratch", col, n)?;
    e.fill(0.0);
    for k in 0..n {
        e[k] = 1.0;
        op.apply(e, col)?;
        e[k] = 0.0;
        for i in 0..n {
            h[i * n + k] = col[i];
        }
    }
    Ok(())
}

/// A trace estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceEstimate {
    /// Mean of `z^T A z` over the probes.
    pub mean: f64,
    /// Standard error of that mean (0 with a single probe).
    pub std_err: f64,
    /// Number of probes.
    pub probes: u32,
}

/// Hutchinson's trace estimate with `probes` Rademacher vectors from `rng`. `z` and `az` are
/// scratch vectors of `dim` values.
pub fn hutchinson_trace<O: LinearOperator + ?Sized>(
    op: &mut O,
    probes: u32,
    rng: &mut SplitMix64,
    z: &mut [f32],
    az: &mut [f32],
) -> Result<TraceEstimate, Error> {
    let n = op.dim();
    check_len("probe", z, n)?;
    check_len("product", az, n)?;
    if probes == 0 {
        return Err(Error::InvalidConfig("Hutchinson needs at least one probe"));
    }
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    for _ in 0..probes {
        for x in z.iter_mut() {
            *x = rng.rademacher();
        }
        op.apply(z, az)?;
        let q = dot64(z, az);
        if !q.is_finite() {
            return Err(Error::NonFinite("Hessian-vector product"));
        }
        s += q;
        s2 += q * q;
    }
    let m = probes as f64;
    let mean = s / m;
    let std_err = if probes > 1 {
        let var = ((s2 - m * mean * mean) / (m - 1.0)).max(0.0);
        sqrt64(var / m)
    } else {
        0.0
    };
    Ok(TraceEstimate {
        mean,
        std_err,
        probes,
    })
}

/// `T(v, v, v)`, the third directional derivative of the loss along `v`, by a central
/// difference of two exact Hessian-vector products. `scratch` holds `2 * dim` values.
pub fn third_derivative<O: Objective + ?Sized>(
    obj: &mut O,
    params: &[f32],
    v: &[f32],
    scratch: &mut [f32],
) -> Result<f32, Error> {
    let n = obj.dim();
    check_len("params", params, n)?;
    check_len("direction", v, n)?;
    check_min("scratch", scratch, crate::operator::twice(n)?)?;
    let e = fd_step(params, v);
    if e == 0.0 {
        return Ok(0.0);
    }
    let (point, hv) = scratch.split_at_mut(n);
    let hv = &mut hv[..n];
    let mut q = [0.0f64; 2];
    for (side, sign) in [(0, 1.0f32), (1, -1.0f32)] {
        for ((x, &t), &d) in point.iter_mut().zip(params).zip(v) {
            *x = t + sign * e * d;
        }
        obj.hvp(point, v, hv)?;
        q[side] = dot64(v, hv);
    }
    let t = (q[0] - q[1]) / (2.0 * e as f64);
    if !t.is_finite() {
        return Err(Error::NonFinite("third derivative"));
    }
    Ok(t as f32)
}

/// `1 - |cos angle(a, b)|` in f64; 0 when either vector is zero. A non-finite entry is an
/// [`Error::NonFinite`].
pub fn eigenvector_rotation(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check_len("second vector", b, a.len())?;
    if !all_finite(a) || !all_finite(b) {
        return Err(Error::NonFinite("eigenvector"));
    }
    let (na, nb) = (norm64(a), norm64(b));
    if na == 0.0 || nb == 0.0 {
        return Ok(0.0);
    }
    let c = (dot64(a, b) / (na * nb)).abs().min(1.0);
    Ok((1.0 - c) as f32)
}

/// The subspace score `cos(||theta||_2 / sqrt(k))` between the spans of the `k` rows of `a` and
/// of `b` (each `k * dim`, rows orthonormal), `k <= MAX_SUBSPACE_K`.
pub fn subspace_score(a: &[f32], b: &[f32], k: usize) -> Result<f32, Error> {
    if k == 0 || k > MAX_SUBSPACE_K {
        return Err(Error::InvalidConfig("subspace dimension must be in 1..=16"));
    }
    if a.len() % k != 0 {
        return Err(Error::LengthMismatch {
            what: "first basis",
            expected: k,
            got: a.len(),
        });
    }
    let n = a.len() / k;
    check_len("second basis", b, k * n)?;
    if !all_finite(a) || !all_finite(b) {
        return Err(Error::NonFinite("eigenspace basis"));
    }
    const K2: usize = MAX_SUBSPACE_K * MAX_SUBSPACE_K;
    let mut m = [0.0f64; K2];
    for i in 0..k {
        for j in 0..k {
            m[i * k + j] = dot64(&a[i * n..(i + 1) * n], &b[j * n..(j + 1) * n]);
        }
    }
    // Singular values of M are the square roots of the eigenvalues of M^T M.
    let mut mtm = [0.0f64; K2];
    for i in 0..k {
        for j in 0..k {
            let mut s = 0.0;
            for r in 0..k {
                s += m[r * k + i] * m[r * k + j];
            }
            mtm[i * k + j] = s;
        }
    }
    let mut vecs = [0.0f64; K2];
    let mut vals = [0.0f64; MAX_SUBSPACE_K];
    symmetric_eigen(&mut mtm[..k * k], k, &mut vecs[..k * k], &mut vals[..k])?;
    let mut sum_sq = 0.0f64;
    for &ev in &vals[..k] {
        let sigma = sqrt64(ev.clamp(0.0, 1.0));
        let theta = libm::acos(sigma);
        sum_sq += theta * theta;
    }
    Ok(libm::cos(sqrt64(sum_sq / k as f64)) as f32)
}
