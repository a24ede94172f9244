//! Adam, AdamW and RMSProp, with the paper's optional preconditioner clip.

use super::{powi64, Clip};
use crate::error::Error;
use crate::math::sqrt;

/// Adam / AdamW settings (defaults: PyTorch's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// First-moment decay (default 0.9).
    pub beta1: f32,
    /// Second-moment decay (default 0.999; the paper's Clipped-Ada runs use 0.99).
    pub beta2: f32,
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
    /// Weight decay (default 0).
    pub weight_decay: f32,
    /// Decoupled weight decay, i.e. AdamW (default false: L2 added to the gradient).
    pub decoupled: bool,
    /// Clip of `sqrt(v_hat)` (default none).
    pub clip: Clip,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            clip: Clip::None,
        }
    }
}

/// RMSProp settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Second-moment decay (default 0.99, PyTorch's `alpha`).
    pub beta2: f32,
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
    /// L2 weight decay added to the gradient (default 0).
    pub weight_decay: f32,
    /// Divide `v` by `1 - beta2^t` (default true: Adam with `beta1 = 0`, as in the authors'
    /// code; PyTorch's RMSprop has no bias correction).
    pub bias_correction: bool,
    /// Clip of `sqrt(v_hat)` (default none).
    pub clip: Clip,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            bias_correction: true,
            clip: Clip::None,
        }
    }
}

/// `num / denom`, and 0 where `denom` is 0: with `eps = 0` a coordinate whose gradients were
/// all zero (a pixel that is 0 in every image, a dead unit) has `m = v = 0`, and takes no step
/// (the limit `eps -> 0+`) instead of `0 / 0`. A NaN denominator still gives NaN, so a
/// diverging run is not hidden. Identical to `num / denom` whenever `denom != 0`, hence for
/// every `eps > 0`.
#[inline(always)]
fn div_or_zero(num: f32, denom: f32) -> f32 {
    if denom == 0.0 {
        0.0
    } else {
        num / denom
    }
}

fn nonneg_finite(x: f32) -> bool {
    x >= 0.0 && x.is_finite()
}

fn check_beta(b: f32, what: &'static str) -> Result<(), Error> {
    if (0.0..1.0).contains(&b) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(what))
    }
}

impl AdamConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_beta(self.beta1, "beta1 must be in [0, 1)")?;
        check_beta(self.beta2, "beta2 must be in [0, 1)")?;
        if !nonneg_finite(self.eps) || !nonneg_finite(self.weight_decay) {
            return Err(Error::InvalidConfig(
                "eps and weight decay must be >= 0 and finite",
            ));
        }
        self.clip.validate()
    }

    pub(crate) fn step(&self, lr: f32, params: &mut [f32], grad: &[f32], buf: &mut [f32], t: u64) {
        let (m, v) = buf.split_at_mut(params.len());
        let c1 = (1.0 - powi64(self.beta1, t)) as f32;
        let c2 = (1.0 - powi64(self.beta2, t)) as f32;
        let (b1, b2) = (self.beta1, self.beta2);
        for (((x, &g), mi), vi) in params
            .iter_mut()
            .zip(grad)
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let g = if self.decoupled {
                *x -= lr * self.weight_decay * *x;
                g
            } else {
                g + self.weight_decay * *x
            };
            *mi = b1 * *mi + (1.0 - b1) * g;
            *vi = b2 * *vi + (1.0 - b2) * g * g;
            let m_hat = *mi / c1;
            let denom = self.clip.apply(sqrt(*vi / c2)) + self.eps;
            *x -= div_or_zero(lr * m_hat, denom);
        }
    }
}

impl RmsPropConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_beta(self.beta2, "beta2 must be in [0, 1)")?;
        if !nonneg_finite(self.eps) || !nonneg_finite(self.weight_decay) {
            return Err(Error::InvalidConfig(
                "eps and weight decay must be >= 0 and finite",
            ));
        }
        self.clip.validate()
    }

    pub(crate) fn step(&self, lr: f32, params: &mut [f32], grad: &[f32], v: &mut [f32], t: u64) {
        let c2 = if self.bias_correction {
            (1.0 - powi64(self.beta2, t)) as f32
        } else {
            1.0
        };
        let b2 = self.beta2;
        for ((x, &g), vi) in params.iter_mut().zip(grad).zip(v.iter_mut()) {
            let g = g + self.weight_decay * *x;
            *vi = b2 * *vi + (1.0 - b2) * g * g;
            let denom = self.clip.apply(sqrt(*vi / c2)) + self.eps;
            *x -= div_or_zero(lr * g, denom);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn step_sizes(
    lr: f32,
    v: &[f32],
    beta2: f32,
    eps: f32,
    clip: Clip,
    bias_correction: bool,
    t: u64,
    out: &mut [f32],
) {
    let c2 = if bias_correction {
        (1.0 - powi64(beta2, t)) as f32
    } else {
        1.0
    };
    for (o, &vi) in out.iter_mut().zip(v) {
        *o = div_or_zero(lr, clip.apply(sqrt(vi / c2)) + eps);
    }
}
