//! Vector kernels with one fixed summation order.
//!
//! - [`dot`]: f32 accumulator starting at `+0.0`, terms added in ascending index order. This is
//!   the order of every dot product inside the network (see [`crate::mlp`]).
//! - [`dot64`], [`norm64`]: f64 accumulator, ascending order; used by the eigen-solvers and
//!   rotation measures, whose vectors have as many entries as the network has parameters.

use crate::math::sqrt64;

/// `sum_j a[j] * b[j]` in f32, ascending `j`, from `+0.0`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

/// `sum_j a[j] * b[j]` with each product and the sum in f64, ascending `j`.
#[inline]
pub fn dot64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        acc += *x as f64 * *y as f64;
    }
    acc
}

/// Euclidean norm, accumulated in f64.
#[inline]
pub fn norm64(a: &[f32]) -> f64 {
    sqrt64(dot64(a, a))
}

/// Largest absolute value (0 for an empty slice; NaN-free inputs assumed).
#[inline]
pub fn max_abs(a: &[f32]) -> f32 {
    let mut m = 0.0f32;
    for &x in a {
        let ax = if x < 0.0 { -x } else { x };
        if ax > m {
            m = ax;
        }
    }
    m
}

/// Scales `a` to unit norm; returns the old norm (and leaves `a` alone when it is 0).
#[inline]
pub fn normalize(a: &mut [f32]) -> f64 {
    let n = norm64(a);
    if n > 0.0 {
        let inv = 1.0 / n;
        for x in a.iter_mut() {
            *x = (*x as f64 * inv) as f32;
        }
    }
    n
}

/// The norm of a vector a solver starts from: [`crate::Error::NonFinite`] when it holds a NaN
/// or an infinity (or its norm overflows), [`crate::Error::ZeroVector`] when it is zero.
pub fn start_norm(what: &'static str, a: &[f32]) -> Result<f64, crate::Error> {
    let n = norm64(a);
    if !n.is_finite() {
        return Err(crate::Error::NonFinite(what));
    }
    if !(n > 0.0) {
        return Err(crate::Error::ZeroVector);
    }
    Ok(n)
}

/// `y -= c * x` with `c` in f64, computed per element in f64 and rounded once.
#[inline]
pub fn sub_scaled64(y: &mut [f32], c: f64, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = (*yi as f64 - c * *xi as f64) as f32;
    }
}

/// True when every element is finite.
#[inline]
pub fn all_finite(a: &[f32]) -> bool {
    a.iter().all(|x| x.is_finite())
}
