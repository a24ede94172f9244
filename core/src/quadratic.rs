//! A quadratic loss `L(theta) = 1/2 theta^T A theta - b^T theta` with a known symmetric Hessian
//! `A` (row-major `n x n`): the textbook model of the stability threshold, where GD with step
//! `eta` converges iff `eta lambda_max(A) < 2` (for positive definite `A`).

use crate::error::{check_len, Error};
use crate::objective::Objective;
use crate::vec::dot64;

/// `1/2 theta^T A theta - b^T theta`; products `A v` are summed in f64 per row.
#[derive(Clone, Copy, Debug)]
pub struct Quadratic<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl<'a> Quadratic<'a> {
    /// The quadratic with Hessian `a` (`n x n`, symmetric) and linear term `b` (`n`).
    pub fn new(a: &'a [f32], b: &'a [f32]) -> Result<Self, Error> {
        check_len("matrix", a, b.len() * b.len())?;
        Ok(Self { a, b })
    }

    fn mul(&self, v: &[f32], out: &mut [f32]) {
        let n = self.b.len();
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot64(&self.a[i * n..(i + 1) * n], v) as f32;
        }
    }
}

impl Objective for Quadratic<'_> {
    fn dim(&self) -> usize {
        self.b.len()
    }

    fn loss(&mut self, p: &[f32]) -> Result<f32, Error> {
        let n = self.dim();
        check_len("params", p, n)?;
        let mut quad = 0.0f64;
        for i in 0..n {
            quad += p[i] as f64 * dot64(&self.a[i * n..(i + 1) * n], p);
        }
        Ok((0.5 * quad - dot64(self.b, p)) as f32)
    }

    fn loss_grad(&mut self, p: &[f32], g: &mut [f32]) -> Result<f32, Error> {
        check_len("gradient", g, self.dim())?;
        let l = self.loss(p)?;
        self.mul(p, g);
        for (gi, &bi) in g.iter_mut().zip(self.b) {
            *gi -= bi;
        }
        Ok(l)
    }

    fn hvp(&mut self, p: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = self.dim();
        check_len("params", p, n)?;
        check_len("direction", v, n)?;
        check_len("output", out, n)?;
        self.mul(v, out);
        Ok(())
    }
}
