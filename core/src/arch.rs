//! Runtime-shaped multilayer perceptrons: widths, parameter layout and workspace layout.
//!
//! # Parameter layout
//!
//! One flat `f32` vector, layer after layer; each layer stores its weight matrix `[out][in]`
//! row-major, then its bias `[out]`. This is PyTorch's `nn.Linear` layout, so a flat vector maps
//! onto `layers.{i}.weight` (shape `[out, in]`) and `layers.{i}.bias` without transposition.
//!
//! Hidden layers apply the activation; the last layer is linear (its outputs are the logits or
//! the regression outputs).
//!
//! # Workspace layout
//!
//! Forward and backward passes run over *tiles* of at most `T` samples. A tile's workspace is
//! one `f32` slice made of slots of `T * S` values, `S` = the sum of all widths: activations `A`,
//! pre-activations `Z`, deltas `D` (`dL/dz`), then two slots of `T` per-sample values (loss,
//! correctness), then — only for Hessian-vector products — `R(z)`, `R(a)` and `R(delta)`.
//! Within a slot, layer `l` (0 = input) starts at `T * (w_0 + ... + w_{l-1})`, sample-major.
//! [`Arch::workspace_len_grad`] is the prefix the gradient needs; [`Arch::workspace_len`] also
//! covers Hessian-vector products.
//!
//! The slots are also scratch space for the kernels (`core/src/kernels.rs`): the plain forward
//! passes put each layer's inputs, transposed, in the `D` slot until the backward pass needs it,
//! and at the end of a gradient or Hessian-vector pass the layer inputs `A` (and `R(a)`) are copied
//! in column panels over `Z` (and `R(z)`), which the parameter phase reads. A slot's contents
//! between passes are therefore not a stable interface: only the tile functions read them.

use crate::activation::Activation;
use crate::error::{check_len, Error};
use crate::init::Init;
use crate::loss::Loss;
use crate::math::MathBackend;
use crate::rng::SplitMix64;

/// Most weight layers a network may have.
pub const MAX_LAYERS: usize = 8;

/// Number of parameters of a network with these widths (`sum out * in + out`); 0 if fewer than
/// two widths. A `const fn`, so it can size arrays: `[f32; param_count(&[64, 16, 10])]`.
/// Saturates at `usize::MAX` (which no vector can hold) when the count overflows; see
/// [`checked_param_count`].
pub const fn param_count(widths: &[usize]) -> usize {
    match checked_param_count(widths) {
        Some(p) => p,
        None => usize::MAX,
    }
}

/// [`param_count`], or `None` when the count overflows `usize`.
pub const fn checked_param_count(widths: &[usize]) -> Option<usize> {
    let mut p: usize = 0;
    let mut l = 1;
    while l < widths.len() {
        let layer = match widths[l].checked_mul(widths[l - 1]) {
            Some(w) => w.checked_add(widths[l]),
            None => None,
        };
        p = match layer {
            Some(k) => match p.checked_add(k) {
                Some(q) => q,
                None => return None,
            },
            None => return None,
        };
        l += 1;
    }
    Some(p)
}

/// `slots * tile * width_sum + 2 * tile` (a workspace of `slots` slots of `tile * width_sum` and
/// the two per-sample slots), or `None` on overflow.
pub(crate) const fn slots_len(slots: usize, tile: usize, width_sum: usize) -> Option<usize> {
    let per = match tile.checked_mul(width_sum) {
        Some(ts) => ts.checked_mul(slots),
        None => None,
    };
    let two = tile.checked_mul(2);
    match (per, two) {
        (Some(a), Some(b)) => a.checked_add(b),
        _ => None,
    }
}

/// Where one layer's parameters sit in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSpan {
    /// Input width.
    pub fan_in: usize,
    /// Output width.
    pub fan_out: usize,
    /// Offset of the weight matrix `[fan_out][fan_in]`.
    pub weight: usize,
    /// Offset of the bias `[fan_out]`.
    pub bias: usize,
}

/// The shape and functions of a dense network: widths, activation, loss and math backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    widths: [usize; MAX_LAYERS + 1],
    n_widths: usize,
    act: Activation,
    loss: Loss,
    math: MathBackend,
    n_params: usize,
    width_sum: usize,
}

impl Arch {
    /// A network with these widths (input first, output last), checked: at least two widths,
    /// at most `MAX_LAYERS + 1`, none zero.
    pub const fn new(widths: &[usize], act: Activation, loss: Loss) -> Result<Self, Error> {
        if widths.len() < 2 {
            return Err(Error::InvalidArch(
                "need at least an input and an output width",
            ));
        }
        if widths.len() > MAX_LAYERS + 1 {
            return Err(Error::InvalidArch(
                "too many layers (at most 8 weight layers)",
            ));
        }
        let mut w = [0usize; MAX_LAYERS + 1];
        let mut i = 0;
        let mut sum = 0usize;
        while i < widths.len() {
            if widths[i] == 0 {
                return Err(Error::InvalidArch("a layer has zero width"));
            }
            if widths[i] > (1 << 24) {
                return Err(Error::InvalidArch("a layer is wider than 2^24 units"));
            }
            w[i] = widths[i];
            sum += widths[i];
            i += 1;
        }
        let n_params = match checked_param_count(widths) {
            Some(p) => p,
            None => return Err(Error::InvalidArch("too many parameters for this target")),
        };
        Ok(Self {
            widths: w,
            n_widths: widths.len(),
            act,
            loss,
            math: MathBackend::Libm,
            n_params,
            width_sum: sum,
        })
    }

    /// The same network computed with another math backend.
    pub const fn with_math(mut self, math: MathBackend) -> Self {
        self.math = math;
        self
    }

    /// Widths, input first.
    pub fn widths(&self) -> &[usize] {
        &self.widths[..self.n_widths]
    }

    /// Number of weight layers.
    pub const fn n_layers(&self) -> usize {
        self.n_widths - 1
    }

    /// Input width.
    pub const fn input_dim(&self) -> usize {
        self.widths[0]
    }

    /// Output width (number of classes for classification).
    pub const fn output_dim(&self) -> usize {
        self.widths[self.n_widths - 1]
    }

    /// Hidden activation.
    pub const fn activation(&self) -> Activation {
        self.act
    }

    /// Loss.
    pub const fn loss(&self) -> Loss {
        self.loss
    }

    /// Math backend.
    pub const fn math(&self) -> MathBackend {
        self.math
    }

    /// Length of the flat parameter vector.
    pub const fn n_params(&self) -> usize {
        self.n_params
    }

    /// Sum of all widths (input and output included).
    pub const fn width_sum(&self) -> usize {
        self.width_sum
    }

    /// Parameter offsets of weight layer `l` (0-based), for core's loops over
    /// `0..n_layers()` (crate-internal: an index at or beyond [`Arch::n_layers`] would panic;
    /// callers outside use [`Arch::layers`], [`Arch::first_layer`] or [`Arch::try_layer`]).
    pub(crate) fn layer(&self, l: usize) -> LayerSpan {
        match self.try_layer(l) {
            Some(span) => span,
            None => panic!("layer index not below the number of weight layers"),
        }
    }

    /// The parameter offsets of every weight layer, input side first.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = LayerSpan> + '_ {
        (0..self.n_layers()).map(|l| self.layer(l))
    }

    /// The parameter offsets of the first weight layer (every network has one).
    pub fn first_layer(&self) -> LayerSpan {
        self.layer(0)
    }

    /// Parameter offsets of weight layer `l` (0-based), or `None` if `l` is not below
    /// [`Arch::n_layers`].
    pub fn try_layer(&self, l: usize) -> Option<LayerSpan> {
        if l >= self.n_layers() {
            return None;
        }
        let mut off = 0;
        for k in 0..l {
            off += self.widths[k + 1] * self.widths[k] + self.widths[k + 1];
        }
        let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
        Some(LayerSpan {
            fan_in,
            fan_out,
            weight: off,
            bias: off + fan_in * fan_out,
        })
    }

    /// Sum of the widths before layer `l` (0 = input): the offset of its block in a slot is
    /// `tile * width_prefix(l)`.
    pub(crate) fn width_prefix(&self, l: usize) -> usize {
        let mut s = 0;
        for k in 0..l {
            s += self.widths[k];
        }
        s
    }

    /// Length of the buffer of transposed weight matrices that [`Arch::pack_transposed`] writes:
    /// the number of weights (biases excluded), plus on CPUs with vector units the zeros that
    /// pad each layer's last panel of outputs to a whole vector (a layer of 10 outputs is
    /// packed as 16; the bits of the results do not depend on it).
    pub const fn packed_len(&self) -> usize {
        let mut p = 0;
        let mut l = 1;
        while l < self.n_widths {
            p += crate::kernels::padded_outputs(self.widths[l]) * self.widths[l - 1];
            l += 1;
        }
        p
    }

    /// Length of layer `l`'s transposed weights in the buffer of [`Arch::pack_transposed`].
    pub(crate) fn packed_layer_len(&self, l: usize) -> usize {
        crate::kernels::padded_outputs(self.widths[l + 1]) * self.widths[l]
    }

    /// Offset of layer `l`'s transposed weights in the buffer of [`Arch::pack_transposed`].
    pub(crate) fn packed_offset(&self, l: usize) -> usize {
        let mut s = 0;
        for k in 0..l {
            s += self.packed_layer_len(k);
        }
        s
    }

    /// Workspace length for gradients (and losses, accuracy) over tiles of `tile` samples.
    /// Saturates at `usize::MAX` (which no buffer can hold) when the length overflows; see
    /// [`Arch::checked_workspace_len_grad`].
    pub const fn workspace_len_grad(&self, tile: usize) -> usize {
        match self.checked_workspace_len_grad(tile) {
            Some(n) => n,
            None => usize::MAX,
        }
    }

    /// Workspace length for gradients and exact Hessian-vector products over tiles of `tile`
    /// samples. Saturates at `usize::MAX` when the length overflows; see
    /// [`Arch::checked_workspace_len`].
    pub const fn workspace_len(&self, tile: usize) -> usize {
        match self.checked_workspace_len(tile) {
            Some(n) => n,
            None => usize::MAX,
        }
    }

    /// [`Arch::workspace_len_grad`], or `None` when it overflows `usize`.
    pub const fn checked_workspace_len_grad(&self, tile: usize) -> Option<usize> {
        slots_len(3, tile, self.width_sum)
    }

    /// [`Arch::workspace_len`], or `None` when it overflows `usize`.
    pub const fn checked_workspace_len(&self, tile: usize) -> Option<usize> {
        slots_len(6, tile, self.width_sum)
    }

    /// The workspace length needed for tiles of `cap` samples (`hvp`: with the Hessian-vector
    /// product's slots), or an error when it overflows `usize`.
    pub(crate) fn tile_workspace_len(&self, cap: usize, hvp: bool) -> Result<usize, Error> {
        let need = if hvp {
            self.checked_workspace_len(cap)
        } else {
            self.checked_workspace_len_grad(cap)
        };
        need.ok_or(Error::InvalidConfig(
            "tile size too large (its workspace length overflows)",
        ))
    }

    /// Checks a parameter-sized buffer.
    pub(crate) fn check_params(&self, what: &'static str, p: &[f32]) -> Result<(), Error> {
        check_len(what, p, self.n_params)
    }

    /// Fills `params` with the initialisation `init`, drawing from `SplitMix64::new(seed)` in
    /// layout order (layer by layer, weights row-major, then biases). See [`Init`].
    pub fn init(&self, params: &mut [f32], init: Init, seed: u64) -> Result<(), Error> {
        self.check_params("params", params)?;
        let mut rng = SplitMix64::new(seed);
        for l in 0..self.n_layers() {
            let s = self.layer(l);
            let (w, rest) = params[s.weight..].split_at_mut(s.fan_in * s.fan_out);
            init.fill_layer(w, &mut rest[..s.fan_out], s.fan_in, s.fan_out, &mut rng);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_pytorch_linear() {
        let a = Arch::new(&[3, 4, 2], Activation::Tanh, Loss::Mse).unwrap();
        assert_eq!(a.n_params(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(
            a.layer(0),
            LayerSpan {
                fan_in: 3,
                fan_out: 4,
                weight: 0,
                bias: 12
            }
        );
        assert_eq!(
            a.layer(1),
            LayerSpan {
                fan_in: 4,
                fan_out: 2,
                weight: 16,
                bias: 24
            }
        );
        assert_eq!(param_count(&[3, 4, 2]), 26);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Arch::new(&[3], Activation::Tanh, Loss::Mse).is_err());
        assert!(Arch::new(&[3, 0, 2], Activation::Tanh, Loss::Mse).is_err());
        assert!(Arch::new(&[1; 10], Activation::Tanh, Loss::Mse).is_err());
    }
}
