//! Symmetric linear operators for the eigen-solvers: the Hessian (exact or finite-difference
//! products), a dense matrix, a shift `A - sigma I`, and the preconditioned Hessian
//! `D^(1/2) H D^(1/2)` whose eigenvalues are those of `P^-1 H` with `P^-1 = diag(D)`.
//!
//! # Finite-difference Hessian-vector products
//!
//! `H v ~ (grad L(theta + e v) - grad L(theta - e v)) / (2 e)` (central difference, error
//! `O(e^2)`), with the step rule of [`fd_step`]:
//! `e = cbrt(eps_f32) * max(1, ||theta||_inf) / ||v||_2`. `cbrt(eps)` balances the truncation
//! error against f32 rounding of the gradients; scaling by `||theta||_inf` keeps the perturbation
//! `e v` well above the rounding of `theta` itself.

use crate::error::{check_len, check_min, Error};
use crate::objective::Objective;
use crate::vec::{dot64, max_abs, norm64};

/// A symmetric linear map `R^dim -> R^dim`.
pub trait LinearOperator {
    /// Dimension.
    fn dim(&self) -> usize;
    /// `out = A v`.
    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error>;
}

/// How Hessian-vector products are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HvpMethod {
    /// Forward-over-reverse (Pearlmutter's R-operator): exact up to rounding.
    #[default]
    Exact,
    /// Central difference of two gradients, step from [`fd_step`].
    FiniteDifference,
}

impl HvpMethod {
    /// `exact` or `fd`.
    pub const fn name(self) -> &'static str {
        match self {
            HvpMethod::Exact => "exact",
            HvpMethod::FiniteDifference => "fd",
        }
    }
}

/// `2 * n`, or an error when it overflows.
pub(crate) fn twice(n: usize) -> Result<usize, Error> {
    n.checked_mul(2).ok_or(Error::InvalidConfig(
        "scratch length (2 * dim) overflows a usize",
    ))
}

/// `cbrt(f32::EPSILON)`: the relative step of central differences in f32.
pub const FD_REL_STEP: f32 = 4.921_566e-3;

/// The finite-difference step for direction `v` at `params` (see the module documentation).
/// Returns 0 for a zero direction.
pub fn fd_step(params: &[f32], v: &[f32]) -> f32 {
    let vn = norm64(v);
    if vn == 0.0 {
        return 0.0;
    }
    let scale = max_abs(params).max(1.0);
    (FD_REL_STEP as f64 * scale as f64 / vn) as f32
}

/// Finite-difference Hessian-vector product of `obj` at `params` along `v` into `out`.
/// `scratch` holds `2 * dim` values (a perturbed point and a second gradient).
pub fn fd_hvp<O: Objective + ?Sized>(
    obj: &mut O,
    params: &[f32],
    v: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), Error> {
    let p = obj.dim();
    check_len("params", params, p)?;
    check_len("direction", v, p)?;
    check_len("output", out, p)?;
    check_min("scratch", scratch, twice(p)?)?;
    let e = fd_step(params, v);
    if e == 0.0 {
        out.fill(0.0);
        return Ok(());
    }
    if !e.is_finite() {
        // A direction so short (subnormal) that the step overflows: `inf * v` is no
        // difference quotient. Scale the direction up; the product is linear in it.
        return Err(Error::NonFinite(
            "finite-difference step (the direction's norm is too small)",
        ));
    }
    let (point, g2) = scratch.split_at_mut(p);
    let g2 = &mut g2[..p];
    for ((x, &t), &d) in point.iter_mut().zip(params).zip(v) {
        *x = t + e * d;
    }
    obj.loss_grad(point, out)?;
    for ((x, &t), &d) in point.iter_mut().zip(params).zip(v) {
        *x = t - e * d;
    }
    obj.loss_grad(point, g2)?;
    let inv = 1.0 / (2.0 * e);
    for (o, &g) in out.iter_mut().zip(g2.iter()) {
        *o = (*o - g) * inv;
    }
    Ok(())
}

/// The Hessian of an objective at fixed parameters, as a linear operator. Counts its products.
pub struct HessianOp<'a, O: Objective + ?Sized> {
    obj: &'a mut O,
    params: &'a [f32],
    method: HvpMethod,
    scratch: &'a mut [f32],
    products: u32,
}

impl<'a, O: Objective + ?Sized> HessianOp<'a, O> {
    /// Exact products (forward-over-reverse).
    pub fn exact(obj: &'a mut O, params: &'a [f32]) -> Self {
        Self {
            obj,
            params,
            method: HvpMethod::Exact,
            scratch: &mut [],
            products: 0,
        }
    }

    /// Products by `method`; finite differences need `scratch` of `2 * dim` values.
    pub fn new(
        obj: &'a mut O,
        params: &'a [f32],
        method: HvpMethod,
        scratch: &'a mut [f32],
    ) -> Result<Self, Error> {
        check_len("params", params, obj.dim())?;
        if method == HvpMethod::FiniteDifference {
            check_min("finite-difference scratch", scratch, twice(obj.dim())?)?;
        }
        Ok(Self {
            obj,
            params,
            method,
            scratch,
            products: 0,
        })
    }

    /// Number of Hessian-vector products computed so far.
    pub fn products(&self) -> u32 {
        self.products
    }
}

impl<O: Objective + ?Sized> LinearOperator for HessianOp<'_, O> {
    fn dim(&self) -> usize {
        self.obj.dim()
    }

    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = self.dim();
        check_len("vector", v, n)?;
        check_len("output", out, n)?;
        self.products = self.products.saturating_add(1);
        match self.method {
            HvpMethod::Exact => self.obj.hvp(self.params, v, out),
            HvpMethod::FiniteDifference => fd_hvp(self.obj, self.params, v, out, self.scratch),
        }
    }
}

/// A dense symmetric matrix `n x n`, row-major; `A v` with f64 row sums in ascending order.
pub struct DenseOp<'a> {
    a: &'a [f32],
    n: usize,
}

impl<'a> DenseOp<'a> {
    /// Wraps a row-major `n x n` matrix.
    pub fn new(a: &'a [f32], n: usize) -> Result<Self, Error> {
        let nn = n.checked_mul(n).ok_or(Error::InvalidConfig(
            "matrix order too large (n * n overflows)",
        ))?;
        check_len("matrix", a, nn)?;
        Ok(Self { a, n })
    }
}

impl LinearOperator for DenseOp<'_> {
    fn dim(&self) -> usize {
        self.n
    }

    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len("vector", v, self.n)?;
        check_len("output", out, self.n)?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot64(&self.a[i * self.n..(i + 1) * self.n], v) as f32;
        }
        Ok(())
    }
}

/// `A - shift * I`.
pub struct ShiftedOp<'a, O: LinearOperator + ?Sized> {
    inner: &'a mut O,
    shift: f32,
}

impl<'a, O: LinearOperator + ?Sized> ShiftedOp<'a, O> {
    /// `inner - shift * I`.
    pub fn new(inner: &'a mut O, shift: f32) -> Self {
        Self { inner, shift }
    }
}

impl<O: LinearOperator + ?Sized> LinearOperator for ShiftedOp<'_, O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = self.dim();
        check_len("vector", v, n)?;
        check_len("output", out, n)?;
        self.inner.apply(v, out)?;
        let s = self.shift as f64;
        for (o, &x) in out.iter_mut().zip(v) {
            *o = (*o as f64 - s * x as f64) as f32;
        }
        Ok(())
    }
}

/// `D^(1/2) A D^(1/2)` for a positive diagonal `D`: similar to `D A`, so its eigenvalues are
/// those of `P^-1 A` with `P^-1 = diag(D)` (the preconditioned sharpness of Cohen et al. 2022,
/// "Adaptive gradient methods at the edge of stability", when `D` is an optimizer's
/// per-coordinate step size).
pub struct PreconditionedOp<'a, O: LinearOperator + ?Sized> {
    inner: &'a mut O,
    sqrt_d: &'a [f32],
    tmp: &'a mut [f32],
}

impl<'a, O: LinearOperator + ?Sized> PreconditionedOp<'a, O> {
    /// `sqrt_d` holds the square roots of the diagonal; `tmp` is scratch of `dim` values.
    pub fn new(inner: &'a mut O, sqrt_d: &'a [f32], tmp: &'a mut [f32]) -> Result<Self, Error> {
        let n = inner.dim();
        check_len("preconditioner", sqrt_d, n)?;
        check_min("scratch", tmp, n)?;
        if sqrt_d.iter().any(|&d| !(d >= 0.0) || !d.is_finite()) {
            return Err(Error::NonFinite("preconditioner"));
        }
        Ok(Self { inner, sqrt_d, tmp })
    }
}

impl<O: LinearOperator + ?Sized> LinearOperator for PreconditionedOp<'_, O> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn apply(&mut self, v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = self.dim();
        check_len("vector", v, n)?;
        check_len("output", out, n)?;
        let tmp = &mut self.tmp[..n];
        for ((t, &x), &s) in tmp.iter_mut().zip(v).zip(self.sqrt_d) {
            *t = x * s;
        }
        self.inner.apply(tmp, out)?;
        for (o, &s) in out.iter_mut().zip(self.sqrt_d) {
            *o *= s;
        }
        Ok(())
    }
}
