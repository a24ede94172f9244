//! Heavy-ball and Nesterov momentum (PyTorch's `SGD` conventions, no dampening).

use crate::error::Error;

/// Momentum settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentumConfig {
    /// Momentum coefficient `mu` (default 0.9).
    pub momentum: f32,
    /// Nesterov's variant (default false: heavy ball).
    pub nesterov: bool,
    /// L2 weight decay added to the gradient (default 0).
    pub weight_decay: f32,
}

impl Default for MomentumConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl MomentumConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::InvalidConfig("momentum must be in [0, 1)"));
        }
        if !(self.weight_decay >= 0.0) || !self.weight_decay.is_finite() {
            return Err(Error::InvalidConfig("weight decay must be >= 0 and finite"));
        }
        Ok(())
    }

    pub(crate) fn step(&self, lr: f32, params: &mut [f32], grad: &[f32], buf: &mut [f32]) {
        let mu = self.momentum;
        for ((x, &g), b) in params.iter_mut().zip(grad).zip(buf.iter_mut()) {
            let g = g + self.weight_decay * *x;
            *b = mu * *b + g;
            let d = if self.nesterov { g + mu * *b } else { *b };
            *x -= lr * d;
        }
    }
}
