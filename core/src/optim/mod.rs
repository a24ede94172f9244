//! Optimizers: plain `Copy` settings with documented defaults, state in a caller-provided slice.
//!
//! One step of every optimizer is `theta <- theta - lr * update(g, state)`, elementwise, in
//! parameter order; `t` is the 1-based step number (used for Adam's bias correction). The state
//! layout is `[m | v]` (first then second moments, `P` values each) where an optimizer needs it;
//! see [`Optimizer::state_len`].
//!
//! | optimizer | update |
//! |---|---|
//! | GD / SGD | `g' = g + wd theta`; `theta -= lr g'` |
//! | heavy ball | `b = mu b + g'`; `theta -= lr b` (PyTorch `SGD(momentum=mu)`) |
//! | Nesterov | `b = mu b + g'`; `theta -= lr (g' + mu b)` (PyTorch `SGD(nesterov=True)`) |
//! | RMSProp | `v = beta2 v + (1 - beta2) g'^2`; `theta -= lr g' / (D(sqrt(v_hat)) + eps)` |
//! | Adam | `m = beta1 m + (1 - beta1) g'`, `v` as above; `theta -= lr m_hat / (D(sqrt(v_hat)) + eps)` |
//! | AdamW | Adam on `g` with `theta -= lr wd theta` first (decoupled weight decay) |
//!
//! `m_hat = m / (1 - beta1^t)`, `v_hat = v / (1 - beta2^t)` (RMSProp: bias correction on by
//! default, as Adam with `beta1 = 0`, which is how the authors' code builds it). `D` is the
//! paper's preconditioner clip ([`Clip`]): the identity, `min(., c)` (upper bound, "Clipped-Ada",
//! which restores instabilities) or `max(., c)` (lower bound). `beta^t` is computed in f64 by
//! binary exponentiation. A zero denominator (only with `eps = 0`: a coordinate whose gradients
//! were all zero) gives no step and a step size of 0 instead of `0 / 0`.

mod adam;
mod momentum;
mod schedule;

pub use adam::{AdamConfig, RmsPropConfig};
pub use momentum::MomentumConfig;
pub use schedule::Schedule;

use crate::error::{check_len, Error};

/// Why [`Optimizer::check_state`] refused a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFault {
    /// The state does not have [`Optimizer::state_len`] values.
    Length {
        /// Values the optimizer keeps.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A NaN or an infinity at this index.
    NonFinite(usize),
    /// A negative second moment at this index.
    NegativeSecondMoment(usize),
}

/// The paper's clip of the adaptive preconditioner `sqrt(v_hat)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Clip {
    /// No clipping (plain Adam / RMSProp).
    #[default]
    None,
    /// `min(sqrt(v_hat), c)`: caps the denominator, so every coordinate's step is at least
    /// `lr / (c + eps)` ("Clipped-Ada", the upper bound that restores instabilities).
    Upper(f32),
    /// `max(sqrt(v_hat), c)`: floors the denominator (the lower bound).
    Lower(f32),
}

impl Clip {
    #[inline]
    pub(crate) fn apply(self, s: f32) -> f32 {
        match self {
            Clip::None => s,
            Clip::Upper(c) => {
                if s < c {
                    s
                } else {
                    c
                }
            }
            Clip::Lower(c) => {
                if s > c {
                    s
                } else {
                    c
                }
            }
        }
    }

    fn validate(self) -> Result<(), Error> {
        match self {
            Clip::None => Ok(()),
            Clip::Upper(c) | Clip::Lower(c) => {
                if c > 0.0 && c.is_finite() {
                    Ok(())
                } else {
                    Err(Error::InvalidConfig(
                        "clip value must be positive and finite",
                    ))
                }
            }
        }
    }
}

/// An optimizer with its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Gradient descent (full batch or minibatch SGD; the batching is the caller's).
    Gd {
        /// L2 weight decay added to the gradient (default 0).
        weight_decay: f32,
    },
    /// Heavy-ball or Nesterov momentum.
    Momentum(MomentumConfig),
    /// RMSProp, optionally clipped.
    RmsProp(RmsPropConfig),
    /// Adam / AdamW, optionally clipped.
    Adam(AdamConfig),
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Gd { weight_decay: 0.0 }
    }
}

/// A step counter plus the optimizer's buffers: what a checkpoint must save to resume.
#[derive(Debug)]
pub struct OptState<'a> {
    /// Steps taken so far (the next step is `t + 1`).
    pub t: u64,
    /// The buffers, `state_len(P)` values.
    pub buf: &'a mut [f32],
}

impl Optimizer {
    /// Number of state values for `p` parameters (saturating at `usize::MAX`, a length no
    /// buffer has, when it overflows; see [`Optimizer::checked_state_len`]).
    pub const fn state_len(&self, p: usize) -> usize {
        match self.checked_state_len(p) {
            Some(len) => len,
            None => usize::MAX,
        }
    }

    /// Number of state values for `p` parameters, or `None` when it overflows a `usize`.
    pub const fn checked_state_len(&self, p: usize) -> Option<usize> {
        match self {
            Optimizer::Gd { .. } => Some(0),
            Optimizer::Momentum(_) | Optimizer::RmsProp(_) => Some(p),
            Optimizer::Adam(_) => p.checked_mul(2),
        }
    }

    /// The state length for `p` parameters, or an error when it overflows.
    /// Where the second moments lie in a state of `p` parameters (RMSProp's and Adam's `v`,
    /// whose square root a step takes; empty for GD and momentum).
    pub const fn second_moments(&self, p: usize) -> core::ops::Range<usize> {
        match self {
            Optimizer::RmsProp(_) => 0..p,
            Optimizer::Adam(_) => p..p.saturating_mul(2),
            Optimizer::Gd { .. } | Optimizer::Momentum(_) => 0..0,
        }
    }

    /// Checks a state for `p` parameters that comes from outside (a checkpoint, flash): of
    /// length [`Optimizer::state_len`]`(p)`, finite, with non-negative second moments. A step
    /// from a state that fails would write NaN into every parameter it touches (a step itself
    /// checks only the length).
    pub fn check_state(&self, p: usize, buf: &[f32]) -> Result<(), StateFault> {
        let expected = self.state_len(p);
        if buf.len() != expected {
            return Err(StateFault::Length {
                expected,
                got: buf.len(),
            });
        }
        if let Some(i) = buf.iter().position(|x| !x.is_finite()) {
            return Err(StateFault::NonFinite(i));
        }
        let v = self.second_moments(p);
        if let Some(i) = buf[v.clone()].iter().position(|&x| x < 0.0) {
            return Err(StateFault::NegativeSecondMoment(v.start + i));
        }
        Ok(())
    }

    fn state_len_checked(&self, p: usize) -> Result<usize, Error> {
        self.checked_state_len(p).ok_or(Error::InvalidConfig(
            "optimizer state length overflows a usize",
        ))
    }

    /// Checks the settings (rates in range, clip positive; weight decay and eps finite).
    /// [`Optimizer::step`] and [`Optimizer::step_sizes`] check them on every call too.
    pub fn validate(&self) -> Result<(), Error> {
        let wd_ok = |wd: f32| wd >= 0.0 && wd.is_finite();
        match *self {
            Optimizer::Gd { weight_decay } if !wd_ok(weight_decay) => {
                Err(Error::InvalidConfig("weight decay must be >= 0"))
            }
            Optimizer::Gd { .. } => Ok(()),
            Optimizer::Momentum(c) => c.validate(),
            Optimizer::RmsProp(c) => c.validate(),
            Optimizer::Adam(c) => c.validate(),
        }
    }

    /// One step with learning rate `lr`: updates `params` and the state in place. Invalid
    /// settings ([`Optimizer::validate`]), a learning rate that is not positive and finite, and
    /// a step counter at `u64::MAX` are errors (nothing is changed then).
    pub fn step(
        &self,
        lr: f32,
        params: &mut [f32],
        grad: &[f32],
        state: &mut OptState<'_>,
    ) -> Result<(), Error> {
        self.validate()?;
        let p = params.len();
        check_len("gradient", grad, p)?;
        check_len("optimizer state", state.buf, self.state_len_checked(p)?)?;
        check_lr(lr)?;
        state.t = state.t.checked_add(1).ok_or(Error::InvalidConfig(
            "optimizer step counter overflows a u64",
        ))?;
        match *self {
            Optimizer::Gd { weight_decay } => {
                for (x, &g) in params.iter_mut().zip(grad) {
                    let g = g + weight_decay * *x;
                    *x -= lr * g;
                }
            }
            Optimizer::Momentum(c) => c.step(lr, params, grad, state.buf),
            Optimizer::RmsProp(c) => c.step(lr, params, grad, state.buf, state.t),
            Optimizer::Adam(c) => c.step(lr, params, grad, state.buf, state.t),
        }
        Ok(())
    }

    /// The per-coordinate step size `diag(P^-1)` of the optimizer's current state, written into
    /// `out`: `lr` for GD and momentum, `lr / (D(sqrt(v_hat)) + eps)` for RMSProp and Adam, with
    /// `v_hat` the stored second moment after the `state.t` steps taken, bias-corrected at
    /// `state.t`: the preconditioner of the last update (the next one also folds in the
    /// gradient at the current parameters). The preconditioned sharpness is
    /// `lambda_max(P^-1 H)`; see [`crate::PreconditionedOp`].
    ///
    /// Invalid settings and a learning rate that is not positive and finite are errors, as in
    /// [`Optimizer::step`].
    pub fn step_sizes(&self, lr: f32, state: &OptState<'_>, out: &mut [f32]) -> Result<(), Error> {
        self.validate()?;
        let p = out.len();
        check_len("optimizer state", state.buf, self.state_len_checked(p)?)?;
        check_lr(lr)?;
        let t = state.t.max(1);
        match *self {
            Optimizer::Gd { .. } | Optimizer::Momentum(_) => out.fill(lr),
            Optimizer::RmsProp(c) => adam::step_sizes(
                lr,
                state.buf,
                c.beta2,
                c.eps,
                c.clip,
                c.bias_correction,
                t,
                out,
            ),
            Optimizer::Adam(c) => {
                adam::step_sizes(lr, &state.buf[p..], c.beta2, c.eps, c.clip, true, t, out)
            }
        }
        Ok(())
    }

    /// The stability threshold of `lr * lambda` on a quadratic: 2 for GD and RMSProp (whose
    /// preconditioned sharpness is compared with it), `2 + 2 mu` for heavy ball,
    /// `(2 + 2 mu) / (1 + 2 mu)` for Nesterov, and `(2 + 2 beta1) / (1 - beta1)` for Adam's
    /// preconditioned sharpness (Cohen et al. 2022: 38 at `beta1 = 0.9`).
    pub fn stability_threshold(&self) -> f32 {
        match *self {
            Optimizer::Gd { .. } | Optimizer::RmsProp(_) => 2.0,
            Optimizer::Momentum(c) if c.nesterov => {
                (2.0 + 2.0 * c.momentum) / (1.0 + 2.0 * c.momentum)
            }
            Optimizer::Momentum(c) => 2.0 + 2.0 * c.momentum,
            Optimizer::Adam(c) => (2.0 + 2.0 * c.beta1) / (1.0 - c.beta1),
        }
    }
}

/// The learning rate must be positive and finite.
fn check_lr(lr: f32) -> Result<(), Error> {
    if !(lr > 0.0) || !lr.is_finite() {
        return Err(Error::InvalidConfig(
            "learning rate must be positive and finite",
        ));
    }
    Ok(())
}

/// `beta^t` in f64 by binary exponentiation (deterministic on every target).
pub(crate) fn powi64(beta: f32, mut t: u64) -> f64 {
    let mut base = beta as f64;
    let mut acc = 1.0f64;
    while t > 0 {
        if t & 1 == 1 {
            acc *= base;
        }
        base *= base;
        t >>= 1;
    }
    acc
}

#[cfg(test)]
mod tests;
