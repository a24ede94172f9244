//! Learning-rate schedules: constant, linear warm-up, step decay, or warm-up then step decay.
//!
//! For step index `t` (0-based): `lr_t = lr * w_t * d_t` with
//! `w_t = (t + 1) / warmup` while `t < warmup` (else 1) and `d_t = factor^floor(t / every)`
//! (`factor^k` in f64 by binary exponentiation, then one rounding to f32).

use super::powi64;
use crate::error::Error;

/// A learning-rate schedule. The default is constant ([`Schedule::constant`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Linear warm-up length in steps (0 = none).
    pub warmup: u64,
    /// Decay period in steps (0 = no decay).
    pub decay_every: u64,
    /// Decay factor per period (e.g. 0.1).
    pub decay_factor: f32,
}

impl Default for Schedule {
    /// [`Schedule::constant`]: `Schedule { decay_every: 100, ..Default::default() }` keeps the
    /// factor 1 (no decay) until a factor is given.
    fn default() -> Self {
        Self::constant()
    }
}

impl Schedule {
    /// A constant learning rate.
    pub const fn constant() -> Self {
        Self {
            warmup: 0,
            decay_every: 0,
            decay_factor: 1.0,
        }
    }

    /// Linear warm-up over `steps` steps.
    pub const fn warmup(steps: u64) -> Self {
        Self {
            warmup: steps,
            decay_every: 0,
            decay_factor: 1.0,
        }
    }

    /// Multiply by `factor` every `every` steps.
    pub const fn step_decay(every: u64, factor: f32) -> Self {
        Self {
            warmup: 0,
            decay_every: every,
            decay_factor: factor,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), Error> {
        if self.decay_every > 0 && !(self.decay_factor > 0.0 && self.decay_factor <= 1.0) {
            return Err(Error::InvalidConfig("decay factor must be in (0, 1]"));
        }
        Ok(())
    }

    /// The learning rate of step `t` (0-based) for base rate `lr`.
    pub fn lr(&self, lr: f32, t: u64) -> f32 {
        let mut f = 1.0f64;
        if self.warmup > 0 && t < self.warmup {
            f = (t + 1) as f64 / self.warmup as f64;
        }
        if let Some(periods) = t.checked_div(self.decay_every) {
            f *= powi64(self.decay_factor, periods);
        }
        (lr as f64 * f) as f32
    }
}
