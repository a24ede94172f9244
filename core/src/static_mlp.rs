//! Compile-time sized networks: the parameter vector is a plain array, so a network can live in
//! a `static` on a microcontroller.
//!
//! ```
//! use edgewise_core::{param_count, Activation, Loss, StaticMlp};
//!
//! const WIDTHS: [usize; 3] = [64, 16, 10];
//! // The parameter count is checked when the code compiles (a mismatch is a const-eval error).
//! static NET: StaticMlp<3, { param_count(&WIDTHS) }> =
//!     StaticMlp::new(WIDTHS, Activation::Tanh, Loss::CrossEntropy);
//! assert_eq!(NET.params.len(), 64 * 16 + 16 + 16 * 10 + 10);
//! ```
//!
//! All arithmetic is [`Arch`]'s: a `StaticMlp` is an `Arch` plus its parameter array, and gives
//! the same bits as the runtime-shaped network with the same widths.

use crate::activation::Activation;
use crate::arch::{param_count, slots_len, Arch};
use crate::data::Data;
use crate::error::Error;
use crate::init::Init;
use crate::loss::Loss;
use crate::math::MathBackend;
use crate::mlp::Eval;

/// A network with `NW` widths and `P` parameters stored inline.
#[derive(Clone, Debug)]
pub struct StaticMlp<const NW: usize, const P: usize> {
    arch: Arch,
    /// The flat parameter vector (layout of [`crate::arch`]).
    pub params: [f32; P],
}

impl<const NW: usize, const P: usize> StaticMlp<NW, P> {
    /// A zero-initialised network. Meant for `const`/`static` context, where an invalid shape or
    /// `P != param_count(&widths)` stops the build; called at run time with such a shape, it
    /// panics (use [`StaticMlp::try_new`] there).
    pub const fn new(widths: [usize; NW], act: Activation, loss: Loss) -> Self {
        match Self::try_new(widths, act, loss) {
            Ok(n) => n,
            Err(_) => panic!("invalid widths, or P differs from param_count(&widths)"),
        }
    }

    /// A zero-initialised network, or an error for an invalid shape or a wrong `P`.
    pub const fn try_new(widths: [usize; NW], act: Activation, loss: Loss) -> Result<Self, Error> {
        if param_count(&widths) != P {
            return Err(Error::InvalidArch("P differs from param_count(&widths)"));
        }
        match Arch::new(&widths, act, loss) {
            Ok(arch) => Ok(Self {
                arch,
                params: [0.0; P],
            }),
            Err(e) => Err(e),
        }
    }

    /// The same network with another math backend.
    pub const fn with_math(mut self, math: MathBackend) -> Self {
        self.arch = self.arch.with_math(math);
        self
    }

    /// The shape.
    pub const fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Initialises the parameters (see [`Init`]).
    pub fn init(&mut self, init: Init, seed: u64) -> Result<(), Error> {
        self.arch.init(&mut self.params, init, seed)
    }

    /// Mean loss and gradient.
    pub fn loss_grad(
        &self,
        data: &Data<'_>,
        grad: &mut [f32; P],
        ws: &mut [f32],
        tile: usize,
    ) -> Result<f32, Error> {
        self.arch.loss_grad(&self.params, data, grad, ws, tile)
    }

    /// Exact Hessian-vector product.
    pub fn hvp(
        &self,
        data: &Data<'_>,
        v: &[f32; P],
        out: &mut [f32; P],
        ws: &mut [f32],
        tile: usize,
    ) -> Result<(), Error> {
        self.arch.hvp(&self.params, data, v, out, ws, tile)
    }

    /// Loss and accuracy.
    pub fn evaluate(&self, data: &Data<'_>, ws: &mut [f32], tile: usize) -> Result<Eval, Error> {
        self.arch.evaluate(&self.params, data, ws, tile)
    }
}

/// Workspace length for a compile-time shape: `workspace_len(tile)` of [`Arch`], as a
/// `const fn` to size a `static` array. Saturates at `usize::MAX` (which no buffer can hold)
/// when the length overflows; see [`checked_static_workspace_len`].
pub const fn static_workspace_len(widths: &[usize], tile: usize) -> usize {
    match checked_static_workspace_len(widths, tile) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// [`static_workspace_len`], or `None` when it overflows `usize`.
pub const fn checked_static_workspace_len(widths: &[usize], tile: usize) -> Option<usize> {
    let mut s: usize = 0;
    let mut i = 0;
    while i < widths.len() {
        s = match s.checked_add(widths[i]) {
            Some(t) => t,
            None => return None,
        };
        i += 1;
    }
    slots_len(6, tile, s)
}
