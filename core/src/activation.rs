//! Activation functions with their first and second derivatives.
//!
//! The exact Hessian-vector product needs `sigma`, `sigma'` and `sigma''` of every hidden unit.
//!
//! | name | sigma(z) | sigma'(z) | sigma''(z) |
//! |---|---|---|---|
//! | identity | z | 1 | 0 |
//! | tanh | t = tanh z | 1 - t^2 | -2 t (1 - t^2) |
//! | relu | max(z, 0) | `[z > 0]` | 0 (almost everywhere) |
//! | elu (alpha = 1) | z if z > 0 else e^z - 1 | 1 or e^z | 0 or e^z |
//! | softplus | ln(1 + e^z) | s = 1 / (1 + e^-z) | s (1 - s) |
//! | gelu (tanh form) | z (1 + tanh u) / 2, u = k (z + c z^3) | see [`Activation::derivs`] | |
//!
//! GELU uses Hendrycks and Gimpel's tanh approximation with k = sqrt(2/pi), c = 0.044715.

use crate::math::MathBackend;

/// The nonlinearity of the hidden layers (the output layer is always linear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// `z`: a deep linear network.
    Identity,
    /// Hyperbolic tangent.
    #[default]
    Tanh,
    /// Rectified linear unit, `sigma'(0) = 0`.
    Relu,
    /// Exponential linear unit with alpha = 1.
    Elu,
    /// `ln(1 + e^z)`.
    Softplus,
    /// Gaussian error linear unit, tanh approximation.
    Gelu,
}

const GELU_K: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_C: f32 = 0.044_715;

impl Activation {
    /// All activations, in the order of their names in [`Activation::name`].
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Tanh,
        Activation::Relu,
        Activation::Elu,
        Activation::Softplus,
        Activation::Gelu,
    ];

    /// The activation's lowercase name (`tanh`, `relu`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Elu => "elu",
            Activation::Softplus => "softplus",
            Activation::Gelu => "gelu",
        }
    }

    /// Parses a name produced by [`Activation::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// `sigma(z)`.
    #[inline]
    pub fn value(self, z: f32, m: MathBackend) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Tanh => m.tanh(z),
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::Elu => {
                if z > 0.0 {
                    z
                } else {
                    m.exp_m1(z)
                }
            }
            Activation::Softplus => {
                if z > 0.0 {
                    z + m.ln_1p(m.exp(-z))
                } else {
                    m.ln_1p(m.exp(z))
                }
            }
            Activation::Gelu => {
                let u = GELU_K * (z + GELU_C * z * z * z);
                0.5 * z * (1.0 + m.tanh(u))
            }
        }
    }

    /// `(sigma'(z), sigma''(z))`, given `z` and `a = sigma(z)`.
    #[inline]
    pub fn derivs(self, z: f32, a: f32, m: MathBackend) -> (f32, f32) {
        match self {
            Activation::Identity => (1.0, 0.0),
            Activation::Tanh => {
                let d1 = 1.0 - a * a;
                (d1, -2.0 * a * d1)
            }
            Activation::Relu => (if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
            Activation::Elu => {
                if z > 0.0 {
                    (1.0, 0.0)
                } else {
                    let e = a + 1.0;
                    (e, e)
                }
            }
            Activation::Softplus => {
                let s = if z >= 0.0 {
                    1.0 / (1.0 + m.exp(-z))
                } else {
                    let e = m.exp(z);
                    e / (1.0 + e)
                };
                (s, s * (1.0 - s))
            }
            Activation::Gelu => {
                let z2 = z * z;
                let u = GELU_K * (z + GELU_C * z2 * z);
                let t = m.tanh(u);
                let sech2 = 1.0 - t * t;
                let du = GELU_K * (1.0 + 3.0 * GELU_C * z2);
                let ddu = 6.0 * GELU_K * GELU_C * z;
                let d1 = 0.5 * (1.0 + t) + 0.5 * z * sech2 * du;
                let d2 = sech2 * du + 0.5 * z * sech2 * (ddu - 2.0 * t * du * du);
                (d1, d2)
            }
        }
    }

    /// `sigma'(z)` alone (the gradient needs no second derivative).
    #[inline]
    pub fn deriv1(self, z: f32, a: f32, m: MathBackend) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            _ => self.derivs(z, a, m).0,
        }
    }
}

/// Runs `$body` with `$a` bound to a constant activation in each arm, so that the per-element
/// `match` inside folds away and the loop in `$body` vectorises.
macro_rules! monomorphic {
    ($act:expr, |$a:ident| $body:block) => {
        match $act {
            Activation::Identity => {
                let $a = Activation::Identity;
                $body
            }
            Activation::Tanh => {
                let $a = Activation::Tanh;
                $body
            }
            Activation::Relu => {
                let $a = Activation::Relu;
                $body
            }
            other => {
                let $a = other;
                $body
            }
        }
    };
}

/// Slice forms of the activation and its derivatives, for the tile passes: the same
/// per-element operations as [`Activation::value`], [`Activation::deriv1`] and
/// [`Activation::derivs`], in loops the compiler vectorises.
impl Activation {
    /// `a[k] = sigma(z[k])`; `tanh` with the `libm` backend is [`crate::tanh::tanh_slice`], the
    /// slice form of edgewise's own branch-free `tanhf` (the bits of [`Activation::value`]).
    #[inline(always)]
    pub(crate) fn value_slice(self, z: &[f32], a: &mut [f32], m: MathBackend) {
        if self == Activation::Tanh && m == MathBackend::Libm {
            crate::tanh::tanh_slice(z, a);
            return;
        }
        monomorphic!(self, |act| {
            for (o, &x) in a.iter_mut().zip(z) {
                *o = act.value(x, m);
            }
        })
    }

    /// `x[k] *= sigma'(z[k])` (given `a = sigma(z)`).
    #[inline(always)]
    pub(crate) fn mul_deriv1_slice(self, z: &[f32], a: &[f32], x: &mut [f32], m: MathBackend) {
        monomorphic!(self, |act| {
            for ((x, &zk), &ak) in x.iter_mut().zip(z).zip(a) {
                *x *= act.deriv1(zk, ak, m);
            }
        })
    }

    /// `out[k] = sigma'(z[k]) * r[k]`.
    #[inline(always)]
    pub(crate) fn deriv1_mul_slice(
        self,
        z: &[f32],
        a: &[f32],
        r: &[f32],
        out: &mut [f32],
        m: MathBackend,
    ) {
        monomorphic!(self, |act| {
            for (((o, &zk), &ak), &rk) in out.iter_mut().zip(z).zip(a).zip(r) {
                *o = act.deriv1(zk, ak, m) * rk;
            }
        })
    }

    /// The R-backward's activation step: with `(d1, d2) = (sigma'(z), sigma''(z))` and
    /// `wtd = d[k]` (that is `W^T delta`), `d[k] = wtd * d1` and
    /// `rd[k] = d1 * rd[k] + (wtd * d2) * rz[k]`.
    #[inline(always)]
    pub(crate) fn r_backward_slice(
        self,
        z: &[f32],
        a: &[f32],
        rz: &[f32],
        d: &mut [f32],
        rd: &mut [f32],
        m: MathBackend,
    ) {
        monomorphic!(self, |act| {
            for ((((dk, rdk), &zk), &ak), &rzk) in
                d.iter_mut().zip(rd.iter_mut()).zip(z).zip(a).zip(rz)
            {
                let (d1, d2) = act.derivs(zk, ak, m);
                let wtd = *dk;
                *dk = wtd * d1;
                *rdk = d1 * *rdk + (wtd * d2) * rzk;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Derivatives against central differences of `value` in f64-free f32 arithmetic with a
    /// wide step: a check of the formulas, not of rounding.
    #[test]
    fn derivatives_match_finite_differences() {
        let m = MathBackend::Libm;
        for act in Activation::ALL {
            for i in -12..=12 {
                let z = i as f32 * 0.31 + 0.05; // avoid relu's kink at 0
                let h = 1e-2f32;
                let a = act.value(z, m);
                let (d1, d2) = act.derivs(z, a, m);
                let fd1 = (act.value(z + h, m) - act.value(z - h, m)) / (2.0 * h);
                let ap = act.value(z + h, m);
                let am = act.value(z - h, m);
                let fd2 = (act.derivs(z + h, ap, m).0 - act.derivs(z - h, am, m).0) / (2.0 * h);
                assert!((d1 - fd1).abs() < 2e-3, "{act:?} d1 at {z}: {d1} vs {fd1}");
                assert!((d2 - fd2).abs() < 5e-3, "{act:?} d2 at {z}: {d2} vs {fd2}");
                assert_eq!(act.deriv1(z, a, m), d1);
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::ALL {
            assert_eq!(Activation::from_name(act.name()), Some(act));
        }
        assert_eq!(Activation::from_name("sigmoid"), None);
    }
}
