//! Losses on the network's outputs `f` (the last layer is linear), per sample.
//!
//! - Mean squared error: `l = 1/2 ||f - y||^2`, with `y` the one-hot vector of the label for
//!   class targets; gradient `f - y`; Hessian the identity.
//! - Softmax cross-entropy: `l = logsumexp(f) - f_y`, computed as `m + ln(sum_k e^(f_k - m))`
//!   with `m = max_k f_k`; gradient `p - e_y` with `p = softmax(f)`; Hessian `diag(p) - p p^T`.
//!
//! The data loss is the average over samples, `L = (1/N) sum_i l_i` (see [`crate::mlp`] for
//! the summation order). Sums over output units run in ascending index order.

use crate::error::Error;
use crate::math::MathBackend;

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// `1/2 ||f - y||^2` per sample.
    #[default]
    Mse,
    /// Softmax cross-entropy.
    CrossEntropy,
}

/// The target of one sample.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A class label (one-hot for MSE).
    Class(usize),
    /// A real vector.
    Values(&'a [f32]),
}

impl Target<'_> {
    #[inline]
    fn at(&self, k: usize) -> f32 {
        match *self {
            Target::Class(c) => {
                if k == c {
                    1.0
                } else {
                    0.0
                }
            }
            Target::Values(v) => v[k],
        }
    }
}

/// Checks that the target `t` fits outputs `f` for loss `loss`: a real target as long as `f`,
/// a class below `f.len()` (and a class, not a real target, for cross-entropy).
#[inline]
fn check_target(loss: Loss, f: &[f32], t: Target<'_>) -> Result<(), Error> {
    match t {
        Target::Class(c) if c >= f.len() => Err(Error::TargetsMismatch(
            "class index not below the number of outputs",
        )),
        Target::Values(_) if loss == Loss::CrossEntropy => {
            Err(Error::TargetsMismatch("cross-entropy needs class labels"))
        }
        Target::Values(v) if v.len() != f.len() => Err(Error::LengthMismatch {
            what: "targets per sample",
            expected: f.len(),
            got: v.len(),
        }),
        _ => Ok(()),
    }
}

impl Loss {
    /// The loss's short name (`mse`, `ce`).
    pub const fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "ce",
        }
    }

    /// Parses `mse` or `ce` (also `cross-entropy`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mse" => Some(Loss::Mse),
            "ce" | "cross-entropy" | "crossentropy" => Some(Loss::CrossEntropy),
            _ => None,
        }
    }

    /// The per-sample loss at outputs `f`; writes `dl/df` into `grad` (as long as `f`).
    ///
    /// An error when `grad` or a real target differs in length from `f`, a class is not below
    /// `f.len()`, or the loss is cross-entropy and the target is not a class.
    #[inline]
    pub fn value_grad(
        self,
        f: &[f32],
        t: Target<'_>,
        grad: &mut [f32],
        m: MathBackend,
    ) -> Result<f32, Error> {
        check_target(self, f, t)?;
        crate::error::check_len("loss gradient", grad, f.len())?;
        Ok(match self {
            Loss::Mse => {
                let mut s = 0.0f32;
                for (k, (g, &fk)) in grad.iter_mut().zip(f).enumerate() {
                    let r = fk - t.at(k);
                    *g = r;
                    s += r * r;
                }
                0.5 * s
            }
            Loss::CrossEntropy => {
                let c = match t {
                    Target::Class(c) => c,
                    Target::Values(_) => 0,
                };
                let mx = max(f);
                let mut s = 0.0f32;
                for (g, &fk) in grad.iter_mut().zip(f) {
                    let e = m.exp(fk - mx);
                    *g = e;
                    s += e;
                }
                for g in grad.iter_mut() {
                    *g /= s;
                }
                grad[c] -= 1.0;
                mx + m.ln(s) - f[c]
            }
        })
    }

    /// The per-sample loss alone (the errors of [`Loss::value_grad`]).
    #[inline]
    pub fn value(self, f: &[f32], t: Target<'_>, m: MathBackend) -> Result<f32, Error> {
        check_target(self, f, t)?;
        Ok(match self {
            Loss::Mse => {
                let mut s = 0.0f32;
                for (k, &fk) in f.iter().enumerate() {
                    let r = fk - t.at(k);
                    s += r * r;
                }
                0.5 * s
            }
            Loss::CrossEntropy => {
                let c = match t {
                    Target::Class(c) => c,
                    Target::Values(_) => 0,
                };
                let mx = max(f);
                let mut s = 0.0f32;
                for &fk in f {
                    s += m.exp(fk - mx);
                }
                mx + m.ln(s) - f[c]
            }
        })
    }

    /// Hessian of the per-sample loss with respect to `f`, applied to `rf`: writes `H_f rf`
    /// into `out`. An error when `rf` or `out` differs in length from `f`.
    #[inline]
    pub fn hess_vec(
        self,
        f: &[f32],
        rf: &[f32],
        out: &mut [f32],
        m: MathBackend,
    ) -> Result<(), Error> {
        crate::error::check_len("loss direction", rf, f.len())?;
        crate::error::check_len("loss Hessian output", out, f.len())?;
        match self {
            Loss::Mse => out.copy_from_slice(rf),
            Loss::CrossEntropy => {
                let mx = max(f);
                let mut s = 0.0f32;
                for (o, &fk) in out.iter_mut().zip(f) {
                    let e = m.exp(fk - mx);
                    *o = e;
                    s += e;
                }
                let mut prf = 0.0f32;
                for (o, &r) in out.iter_mut().zip(rf) {
                    *o /= s;
                    prf += *o * r;
                }
                for (o, &r) in out.iter_mut().zip(rf) {
                    *o *= r - prf;
                }
            }
        }
        Ok(())
    }
}

/// Largest element (the first one on ties); `-inf` for an empty slice.
#[inline]
fn max(f: &[f32]) -> f32 {
    let mut mx = f32::NEG_INFINITY;
    for &v in f {
        if v > mx {
            mx = v;
        }
    }
    mx
}

/// Index of the largest output (the first one on ties): the predicted class. `None` when an
/// output is NaN (or there are none): a diverged network predicts no class, so its accuracy
/// is 0, not the share of class 0.
#[inline]
pub fn argmax(f: &[f32]) -> Option<usize> {
    let mut best = 0;
    for (k, &v) in f.iter().enumerate() {
        if v.is_nan() {
            return None;
        }
        if v > f[best] {
            best = k;
        }
    }
    (!f.is_empty()).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_grad_and_hessian_match_finite_differences() {
        let m = MathBackend::Libm;
        let f = [0.3f32, -1.2, 2.0, 0.1];
        let t = Target::Class(2);
        let mut g = [0.0; 4];
        let l = Loss::CrossEntropy.value_grad(&f, t, &mut g, m).unwrap();
        assert!((l - Loss::CrossEntropy.value(&f, t, m).unwrap()).abs() < 1e-7);
        // Reference in f64, independent formulas.
        let fd: [f64; 4] = f.map(|v| v as f64);
        let lse = |x: &[f64; 4]| x.iter().map(|v| v.exp()).sum::<f64>().ln() - x[2];
        assert!((lse(&fd) - l as f64).abs() < 1e-6);
        for k in 0..4 {
            let mut p = fd;
            p[k] += 1e-5;
            let mut q = fd;
            q[k] -= 1e-5;
            let num = (lse(&p) - lse(&q)) / 2e-5;
            assert!((num - g[k] as f64).abs() < 1e-5, "grad {k}");
        }
        let rf = [1.0f32, 0.5, -0.25, 2.0];
        let mut hv = [0.0; 4];
        Loss::CrossEntropy.hess_vec(&f, &rf, &mut hv, m).unwrap();
        let s: f64 = fd.iter().map(|v| v.exp()).sum();
        let p: [f64; 4] = fd.map(|v| v.exp() / s);
        let prf: f64 = (0..4).map(|k| p[k] * rf[k] as f64).sum();
        for k in 0..4 {
            let want = p[k] * rf[k] as f64 - p[k] * prf;
            assert!((want - hv[k] as f64).abs() < 1e-6);
        }
    }

    #[test]
    fn mse_with_class_target_is_one_hot() {
        let f = [0.5f32, 0.25];
        let mut g = [0.0; 2];
        let l = Loss::Mse
            .value_grad(&f, Target::Class(1), &mut g, MathBackend::Libm)
            .unwrap();
        assert_eq!(l, 0.5 * (0.25 + 0.5625));
        assert_eq!(g, [0.5, -0.75]);
    }

    #[test]
    fn argmax_takes_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 0.0]), Some(1));
        assert_eq!(argmax(&[1.0, f32::NAN, 3.0]), None);
        assert_eq!(argmax(&[f32::NAN, 0.0]), None);
        assert_eq!(argmax(&[]), None);
    }
}
