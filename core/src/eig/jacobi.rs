//! Eigen-decomposition of small dense symmetric matrices, in f64: the cyclic Jacobi method up to
//! [`JACOBI_MAX`] rows, Householder tridiagonalisation and the implicit QL method above.
//!
//! **Jacobi** (`n <= JACOBI_MAX`). Each sweep visits the pairs `(p, q)`, `p < q`, in row order
//! and applies the rotation that zeroes `a_pq` (`t = sign(tau) / (|tau| + sqrt(1 + tau^2))`,
//! `tau = (a_qq - a_pp) / (2 a_pq)`; Golub and Van Loan, "Matrix Computations", section 8.5).
//! Sweeps stop when the off-diagonal norm falls below `1e-14` times the Frobenius norm, or after
//! `MAX_SWEEPS` (60 is plenty: convergence is quadratic). It costs about `6 n^3` per sweep (the
//! sweeps run are `symmetric_eigen`'s return value): nothing for the Lanczos tridiagonal
//! matrices of tracking (at most a few dozen rows) and the subspace-angle matrix, whose results
//! it has fixed since the first version.
//!
//! **Householder + QL** (`n > JACOBI_MAX`: long Lanczos runs and the dense Hessians of
//! `spectrum`, hundreds to thousands of rows, where Jacobi took minutes: 93% of a 1210-step
//! `spectrum --k 1210`). The matrix is reduced to tridiagonal form by Householder reflections,
//! accumulating the orthogonal matrix (EISPACK's `tred2`), and the tridiagonal matrix is
//! diagonalised by the QL method with implicit Wilkinson shifts, applying the rotations to the
//! accumulated matrix (`tql2`; Wilkinson and Reinsch, "Handbook for Automatic Computation II",
//! contributions II/2 and II/3): about `9 n^3` in all. A tridiagonal matrix (Lanczos) skips the
//! reduction ([`symmetric_tridiagonal_eigen`]).
//!
//! Both orders of operations are fixed, so results are reproducible bit for bit on every target;
//! which method runs depends on `n` alone.

use crate::error::{check_len, check_min, Error};
use crate::math::sqrt64;

/// Most sweeps before giving up.
pub const MAX_SWEEPS: usize = 60;

/// The largest order diagonalised by the Jacobi method; larger matrices go through Householder
/// tridiagonalisation and the QL method.
pub const JACOBI_MAX: usize = 64;

/// Most QL iterations per eigenvalue (two or three are typical).
const MAX_QL_ITER: usize = 60;

/// Eigen-decomposition of the symmetric `n x n` row-major matrix `a` (destroyed). Writes the
/// eigenvalues in descending order into `values` and the matching unit eigenvectors as the
/// *columns* of `vecs` (row-major `n x n`). Returns the number of Jacobi sweeps, or of QL
/// iterations above [`JACOBI_MAX`] rows, or [`Error::NotConverged`] if the QL iteration failed
/// on an eigenvalue or the Jacobi sweeps did not meet their stopping test within
/// [`MAX_SWEEPS`].
///
/// Only the lower triangle of `a` (the diagonal included) is read, at every order: the matrix
/// decomposed is the symmetric one it defines, whatever the upper triangle holds (a matrix
/// that is not symmetric is not an error; symmetrise it first, e.g. `(A + A^T) / 2`, to
/// decompose its symmetric part).
///
/// A matrix whose squared Frobenius norm overflows (entries beyond about `1.3e154`) or
/// underflows (a nonzero matrix with entries below about `1.5e-154`) is first scaled by a power
/// of two, exactly, and the eigenvalues scaled back; an eigenvalue beyond the f64 range is then
/// an [`Error::NonFinite`]. Other matrices are not touched (the same bits as without the check).
pub fn symmetric_eigen(
    a: &mut [f64],
    n: usize,
    vecs: &mut [f64],
    values: &mut [f64],
) -> Result<usize, Error> {
    let nn = square(n)?;
    check_len("matrix", a, nn)?;
    check_len("eigenvectors", vecs, nn)?;
    check_len("eigenvalues", values, n)?;
    // The upper triangle from the lower (no change for a symmetric matrix).
    for i in 0..n {
        for j in 0..i {
            a[j * n + i] = a[i * n + j];
        }
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("matrix"));
    }
    if let Some(e) = rescale_exponent(a.iter()) {
        let down = pow2(-e);
        for x in a.iter_mut() {
            *x *= down;
        }
        let r = eigen_unscaled(a, n, vecs, values)?;
        return scale_back(values, e).map(|()| r);
    }
    eigen_unscaled(a, n, vecs, values)
}

/// `n * n`, or an error when it overflows.
fn square(n: usize) -> Result<usize, Error> {
    n.checked_mul(n).ok_or(Error::InvalidConfig(
        "matrix order too large (n * n overflows)",
    ))
}

/// `2^e` for `-1022 <= e <= 1023` (exact).
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `Some(e)` when the finite values `xs` must be scaled by `2^-e` before the eigen-solvers: the
/// sum of their squares (the stopping test's Frobenius norm) overflows, or underflows below
/// `f64::MIN_POSITIVE` while some value is nonzero. `2^e` is then about the largest magnitude.
fn rescale_exponent<'a>(xs: impl Iterator<Item = &'a f64> + Clone) -> Option<i32> {
    let fro: f64 = xs.clone().map(|x| x * x).sum::<f64>();
    if fro.is_finite() && fro >= f64::MIN_POSITIVE {
        return None;
    }
    let amax = xs.fold(0.0f64, |m, x| m.max(x.abs()));
    if amax == 0.0 {
        return None;
    }
    let biased = ((amax.to_bits() >> 52) & 0x7ff) as i32;
    Some((biased - 1023).clamp(-1022, 1022))
}

/// Multiplies `values` by `2^e`; an error if one leaves the f64 range.
fn scale_back(values: &mut [f64], e: i32) -> Result<(), Error> {
    let up = pow2(e);
    for v in values.iter_mut() {
        *v *= up;
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite("eigenvalue (beyond the f64 range)"));
    }
    Ok(())
}

/// [`symmetric_eigen`] after validation and scaling.
fn eigen_unscaled(
    a: &mut [f64],
    n: usize,
    vecs: &mut [f64],
    values: &mut [f64],
) -> Result<usize, Error> {
    if n > JACOBI_MAX {
        vecs.copy_from_slice(a);
        // `a` is free now: its first row holds the off-diagonal.
        householder_tridiagonalize(vecs, n, values, &mut a[..n]);
        let iters = ql_implicit(values, &mut a[..n], vecs, n, MAX_QL_ITER)?;
        sort_descending(values, vecs, n);
        return Ok(iters);
    }
    jacobi(a, n, vecs, values)
}

/// Eigen-decomposition of the symmetric tridiagonal `n x n` matrix with diagonal `diag` and
/// off-diagonal `off` (`off[i]` joins rows `i` and `i + 1`; `n - 1` values are read), with the
/// results of [`symmetric_eigen`] on the same matrix written out densely: the same method (Jacobi
/// up to [`JACOBI_MAX`] rows) and the same bits there; above, the QL method without the
/// reduction. `work` holds `n * n` values (the dense matrix for Jacobi, else the off-diagonal).
pub fn symmetric_tridiagonal_eigen(
    diag: &[f64],
    off: &[f64],
    n: usize,
    work: &mut [f64],
    vecs: &mut [f64],
    values: &mut [f64],
) -> Result<usize, Error> {
    check_len("diagonal", diag, n)?;
    if off.len() + 1 < n {
        return Err(Error::BufferTooSmall {
            what: "off-diagonal",
            need: n.saturating_sub(1),
            got: off.len(),
        });
    }
    let nn = square(n)?;
    check_min("work", work, nn)?;
    let work = &mut work[..nn];
    if n <= JACOBI_MAX {
        work.fill(0.0);
        for i in 0..n {
            work[i * n + i] = diag[i];
            if i + 1 < n {
                work[i * n + i + 1] = off[i];
                work[(i + 1) * n + i] = off[i];
            }
        }
        return symmetric_eigen(work, n, vecs, values);
    }
    check_len("eigenvectors", vecs, nn)?;
    check_len("eigenvalues", values, n)?;
    if diag.iter().chain(&off[..n - 1]).any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("matrix"));
    }
    // The dense matrix's squared Frobenius norm counts each off-diagonal value twice.
    let scale = rescale_exponent(diag.iter().chain(&off[..n - 1]).chain(&off[..n - 1]));
    values.copy_from_slice(diag);
    // `ql_implicit` reads the off-diagonal shifted by one, as `householder_tridiagonalize`
    // leaves it: e[i] joins rows i - 1 and i.
    let e = &mut work[..n];
    e[0] = 0.0;
    e[1..].copy_from_slice(&off[..n - 1]);
    if let Some(s) = scale {
        let down = pow2(-s);
        for x in values.iter_mut().chain(e.iter_mut()) {
            *x *= down;
        }
    }
    for (i, x) in vecs.iter_mut().enumerate() {
        *x = if i / n == i % n { 1.0 } else { 0.0 };
    }
    let iters = ql_implicit(values, e, vecs, n, MAX_QL_ITER)?;
    sort_descending(values, vecs, n);
    if let Some(s) = scale {
        scale_back(values, s)?;
    }
    Ok(iters)
}

/// Householder reduction of the symmetric matrix `z` (row-major `n x n`, lower triangle read;
/// overwritten with the orthogonal matrix `Q` of `Q^T A Q = T`) to tridiagonal form: diagonal
/// into `d`, off-diagonal into `e[1..]` (`e[i]` joins rows `i - 1` and `i`; `e[0] = 0`).
/// EISPACK's `tred2`, rows from the last, scaled by the row's 1-norm against under- and overflow.
fn householder_tridiagonalize(z: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64]) {
    for i in (1..n).rev() {
        let l = i - 1;
        let mut h = 0.0f64;
        if l > 0 {
            let mut scale = 0.0f64;
            for k in 0..=l {
                scale += z[i * n + k].abs();
            }
            if scale == 0.0 {
                e[i] = z[i * n + l];
            } else {
                for k in 0..=l {
                    z[i * n + k] /= scale;
                    h += z[i * n + k] * z[i * n + k];
                }
                let f = z[i * n + l];
                let g = if f >= 0.0 { -sqrt64(h) } else { sqrt64(h) };
                e[i] = scale * g;
                h -= f * g;
                z[i * n + l] = f - g;
                let mut f = 0.0f64;
                for j in 0..=l {
                    z[j * n + i] = z[i * n + j] / h;
                    let mut g = 0.0f64;
                    for k in 0..=j {
                        g += z[j * n + k] * z[i * n + k];
                    }
                    for k in j + 1..=l {
                        g += z[k * n + j] * z[i * n + k];
                    }
                    e[j] = g / h;
                    f += e[j] * z[i * n + j];
                }
                let hh = f / (h + h);
                for j in 0..=l {
                    let f = z[i * n + j];
                    let g = e[j] - hh * f;
                    e[j] = g;
                    for k in 0..=j {
                        z[j * n + k] -= f * e[k] + g * z[i * n + k];
                    }
                }
            }
        } else {
            e[i] = z[i * n + l];
        }
        d[i] = h;
    }
    if n > 0 {
        d[0] = 0.0;
        e[0] = 0.0;
    }
    // Accumulate the transformations.
    for i in 0..n {
        if d[i] != 0.0 {
            for j in 0..i {
                let mut g = 0.0f64;
                for k in 0..i {
                    g += z[i * n + k] * z[k * n + j];
                }
                for k in 0..i {
                    z[k * n + j] -= g * z[k * n + i];
                }
            }
        }
        d[i] = z[i * n + i];
        z[i * n + i] = 1.0;
        for j in 0..i {
            z[j * n + i] = 0.0;
            z[i * n + j] = 0.0;
        }
    }
}

/// `sqrt(a^2 + b^2)` without destructive under- or overflow.
fn hypot64(a: f64, b: f64) -> f64 {
    let (a, b) = (a.abs(), b.abs());
    if a > b {
        let r = b / a;
        a * sqrt64(1.0 + r * r)
    } else if b > 0.0 {
        let r = a / b;
        b * sqrt64(1.0 + r * r)
    } else {
        0.0
    }
}

/// The QL method with implicit Wilkinson shifts on the symmetric tridiagonal matrix with
/// diagonal `d` and off-diagonal `e[1..]` (`e[i]` joins rows `i - 1` and `i`), applying the
/// rotations to the columns of `z`: eigenvalues (unsorted) into `d`, eigenvectors as the columns
/// of `z`. An off-diagonal element counts as zero when `|e| <= 2^-52 (|d_m| + |d_m+1|)`. Returns
/// the iterations run, or [`Error::NotConverged`] when an eigenvalue is still unconverged after
/// `max_iter` iterations (never seen with `MAX_QL_ITER`: two or three per eigenvalue are
/// typical; EISPACK's `tql2` reports the same failure).
fn ql_implicit(
    d: &mut [f64],
    e: &mut [f64],
    z: &mut [f64],
    n: usize,
    max_iter: usize,
) -> Result<usize, Error> {
    if n == 0 {
        return Ok(0);
    }
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut total = 0;
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            if iter >= max_iter {
                return Err(Error::NotConverged("the QL eigenvalue iteration"));
            }
            iter += 1;
            total += 1;
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = hypot64(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + if g >= 0.0 { r } else { -r });
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = hypot64(f, g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for k in 0..n {
                    let f = z[k * n + i + 1];
                    z[k * n + i + 1] = s * z[k * n + i] + c * f;
                    z[k * n + i] = c * z[k * n + i] - s * f;
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(total)
}

/// Selection sort of `values` into descending order, moving the columns of `vecs` along.
fn sort_descending(values: &mut [f64], vecs: &mut [f64], n: usize) {
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
}

/// The cyclic Jacobi method (see the module documentation); returns the sweeps.
fn jacobi(a: &mut [f64], n: usize, vecs: &mut [f64], values: &mut [f64]) -> Result<usize, Error> {
    for (i, x) in vecs.iter_mut().enumerate() {
        *x = if i / n == i % n { 1.0 } else { 0.0 };
    }
    let fro: f64 = a.iter().map(|x| x * x).sum::<f64>();
    let converged = |a: &[f64]| {
        let mut off = 0.0f64;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        off == 0.0 || off <= 1e-28 * fro
    };
    let mut sweeps = 0;
    loop {
        if converged(a) {
            break;
        }
        if sweeps >= MAX_SWEEPS {
            return Err(Error::NotConverged("the Jacobi eigenvalue iteration"));
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
    sort_descending(values, vecs, n);
    Ok(sweeps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tridiagonal matrix with diagonal `1, 2, ..., n` and off-diagonal `1`: no
    /// off-diagonal element is negligible, so each eigenvalue needs at least one QL iteration.
    fn tridiagonal(n: usize) -> ([f64; 80], [f64; 80]) {
        let mut d = [0.0; 80];
        let mut e = [0.0; 80];
        for i in 0..n {
            d[i] = (i + 1) as f64;
            e[i] = if i == 0 { 0.0 } else { 1.0 };
        }
        (d, e)
    }

    #[test]
    fn ql_reports_an_eigenvalue_left_unconverged_at_the_iteration_limit() {
        let n = 80;
        let mut z = [0.0; 80 * 80];
        let (mut d, mut e) = tridiagonal(n);
        assert_eq!(
            ql_implicit(&mut d, &mut e, &mut z, n, 1),
            Err(Error::NotConverged("the QL eigenvalue iteration"))
        );
        let (mut d, mut e) = tridiagonal(n);
        let iters = ql_implicit(&mut d, &mut e, &mut z, n, MAX_QL_ITER).unwrap();
        assert!(iters >= n - 1 && iters <= 3 * n, "{iters} iterations");
    }
}
