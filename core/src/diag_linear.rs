//! The depth-2 diagonal linear network `L(theta_1, theta_2) = z(theta_1 theta_2)` with
//! `z(u) = (u - y)^2 / 2`: the paper's minimal model of eigenvector rotation.
//!
//! With `u = theta_1 theta_2`: gradient `(u - y) (theta_2, theta_1)`, and the exact Hessian
//! `H = (theta_2, theta_1)(theta_2, theta_1)^T + (u - y) [[0, 1], [1, 0]]`
//! `  = [[theta_2^2, 2u - y], [2u - y, theta_1^2]]`.
//! On the valley of minima `u = y`, the top eigenvector is along `(theta_2, theta_1)` with
//! `lambda_max = theta_1^2 + theta_2^2`; gradient flow conserves `theta_1^2 - theta_2^2`,
//! large-step GD does not, and moves toward the balanced, flattest point `|theta_1| = |theta_2|`.

use crate::error::{check_len, Error};
use crate::math::sqrt64;
use crate::objective::Objective;

/// `L = (theta_1 theta_2 - y)^2 / 2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiagLinearNet {
    /// The target `y` of the product.
    pub target: f32,
}

impl Default for DiagLinearNet {
    fn default() -> Self {
        Self { target: 1.0 }
    }
}

impl DiagLinearNet {
    /// The exact Hessian `[[h11, h12], [h12, h22]]` at `theta`.
    pub fn hessian(&self, theta: [f32; 2]) -> [[f32; 2]; 2] {
        let u = theta[0] * theta[1];
        let off = 2.0 * u - self.target;
        [[theta[1] * theta[1], off], [off, theta[0] * theta[0]]]
    }

    /// Eigenvalues `(lambda_max, lambda_min)` of the exact Hessian and the unit eigenvector of
    /// `lambda_max`, in closed form (computed in f64).
    ///
    /// No validation: the Hessian is formed in f32, so extreme parameters (products of them
    /// beyond the f32 range, e.g. `|theta_0 theta_1|` above about `1.7e38`, or `theta_i^2` above
    /// `3.4e38`) give infinite or NaN results, as do non-finite parameters. Callers that may
    /// reach such parameters (a diverging run) must check the results with `is_finite`.
    pub fn eigen(&self, theta: [f32; 2]) -> (f32, f32, [f32; 2]) {
        let h = self.hessian(theta);
        let (a, b, c) = (h[0][0] as f64, h[0][1] as f64, h[1][1] as f64);
        let mean = 0.5 * (a + c);
        let rad = sqrt64(0.25 * (a - c) * (a - c) + b * b);
        let (l1, l2) = (mean + rad, mean - rad);
        // (b, l1 - a) or (l1 - c, b), whichever is better conditioned.
        let (x, y) = if (l1 - a).abs() + b.abs() >= (l1 - c).abs() + b.abs() {
            (b, l1 - a)
        } else {
            (l1 - c, b)
        };
        let nrm = sqrt64(x * x + y * y);
        let v = if nrm > 0.0 {
            [(x / nrm) as f32, (y / nrm) as f32]
        } else {
            [1.0, 0.0]
        };
        (l1 as f32, l2 as f32, v)
    }
}

impl Objective for DiagLinearNet {
    fn dim(&self) -> usize {
        2
    }

    fn loss(&mut self, p: &[f32]) -> Result<f32, Error> {
        check_len("params", p, 2)?;
        let r = p[0] * p[1] - self.target;
        Ok(0.5 * r * r)
    }

    fn loss_grad(&mut self, p: &[f32], g: &mut [f32]) -> Result<f32, Error> {
        check_len("params", p, 2)?;
        check_len("gradient", g, 2)?;
        let r = p[0] * p[1] - self.target;
        g[0] = r * p[1];
        g[1] = r * p[0];
        Ok(0.5 * r * r)
    }

    fn hvp(&mut self, p: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len("params", p, 2)?;
        check_len("direction", v, 2)?;
        check_len("output", out, 2)?;
        let h = self.hessian([p[0], p[1]]);
        out[0] = h[0][0] * v[0] + h[0][1] * v[1];
        out[1] = h[1][0] * v[0] + h[1][1] * v[1];
        Ok(())
    }
}
