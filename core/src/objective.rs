//! Differentiable objectives: a loss over a parameter vector with its gradient and exact
//! Hessian-vector products.
//!
//! The curvature tools take any [`Objective`]: the network on a data view ([`MlpObjective`]),
//! the two-parameter diagonal linear network ([`crate::DiagLinearNet`]), a quadratic
//! ([`crate::Quadratic`]), or a host's multi-threaded implementation of the same arithmetic.

use crate::arch::Arch;
use crate::data::Data;
use crate::error::{check_min, Error};

/// A twice-differentiable loss `L(theta)`, `theta` in R^dim.
pub trait Objective {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// `L(theta)`.
    fn loss(&mut self, params: &[f32]) -> Result<f32, Error>;
    /// `L(theta)`, with the gradient written into `grad`.
    fn loss_grad(&mut self, params: &[f32], grad: &mut [f32]) -> Result<f32, Error>;
    /// The exact Hessian-vector product `H(theta) v`, written into `out`.
    fn hvp(&mut self, params: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error>;
}

/// A network's mean loss over a data view, evaluated in tiles with a caller-provided workspace.
#[derive(Debug)]
pub struct MlpObjective<'a> {
    arch: &'a Arch,
    data: Data<'a>,
    ws: &'a mut [f32],
    tile: usize,
}

impl<'a> MlpObjective<'a> {
    /// The objective of `arch` on `data`. `ws` must hold [`Arch::workspace_len`]`(tile)` values.
    pub fn new(
        arch: &'a Arch,
        data: Data<'a>,
        ws: &'a mut [f32],
        tile: usize,
    ) -> Result<Self, Error> {
        if tile == 0 {
            return Err(Error::InvalidConfig("tile size must be positive"));
        }
        arch.check_data(&data)?;
        check_min("workspace", ws, arch.tile_workspace_len(tile, true)?)?;
        Ok(Self {
            arch,
            data,
            ws,
            tile,
        })
    }

    /// The data view.
    pub fn data(&self) -> &Data<'a> {
        &self.data
    }

    /// Evaluates loss and accuracy.
    pub fn evaluate(&mut self, params: &[f32]) -> Result<crate::Eval, Error> {
        self.arch.evaluate(params, &self.data, self.ws, self.tile)
    }
}

impl Objective for MlpObjective<'_> {
    fn dim(&self) -> usize {
        self.arch.n_params()
    }

    fn loss(&mut self, params: &[f32]) -> Result<f32, Error> {
        Ok(self.evaluate(params)?.loss)
    }

    fn loss_grad(&mut self, params: &[f32], grad: &mut [f32]) -> Result<f32, Error> {
        self.arch
            .loss_grad(params, &self.data, grad, self.ws, self.tile)
    }

    fn hvp(&mut self, params: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.arch
            .hvp(params, &self.data, v, out, self.ws, self.tile)
    }
}
