//! Seeded parameter initialisation.
//!
//! All schemes draw from one [`SplitMix64`] stream in parameter-layout order (for each layer:
//! the weight matrix row-major, then the bias), so a seed gives the same network on every
//! target. `fan_in` is the layer's input width.
//!
//! | scheme | weights | biases |
//! |---|---|---|
//! | `PytorchDefault` | U(-k, k), k = 1/sqrt(fan_in) (PyTorch `nn.Linear`) | U(-k, k) |
//! | `LecunNormal` | N(0, 1/fan_in) | 0 |
//! | `KaimingNormal` | N(0, 2/fan_in) (He et al. 2015) | 0 |
//! | `XavierUniform` | U(-a, a), a = sqrt(6/(fan_in + fan_out)) | 0 |
//!
//! Uniform draws are `lo + (hi - lo) * u` with `u` from [`SplitMix64::uniform`]; normal draws
//! are [`SplitMix64::normal`] times the standard deviation.

use crate::math::sqrt;
use crate::rng::SplitMix64;

/// An initialisation scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// PyTorch's default for `nn.Linear`: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    #[default]
    PytorchDefault,
    /// LeCun normal: N(0, 1/fan_in), zero biases.
    LecunNormal,
    /// Kaiming (He) normal: N(0, 2/fan_in), zero biases.
    KaimingNormal,
    /// Xavier (Glorot) uniform, zero biases.
    XavierUniform,
}

impl Init {
    /// All schemes.
    pub const ALL: [Init; 4] = [
        Init::PytorchDefault,
        Init::LecunNormal,
        Init::KaimingNormal,
        Init::XavierUniform,
    ];

    /// The scheme's name (`pytorch`, `lecun-normal`, `kaiming-normal`, `xavier-uniform`).
    pub const fn name(self) -> &'static str {
        match self {
            Init::PytorchDefault => "pytorch",
            Init::LecunNormal => "lecun-normal",
            Init::KaimingNormal => "kaiming-normal",
            Init::XavierUniform => "xavier-uniform",
        }
    }

    /// Parses a name produced by [`Init::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|i| i.name() == name)
    }

    pub(crate) fn fill_layer(
        self,
        w: &mut [f32],
        b: &mut [f32],
        fan_in: usize,
        fan_out: usize,
        rng: &mut SplitMix64,
    ) {
        match self {
            Init::PytorchDefault => {
                let k = 1.0 / sqrt(fan_in as f32);
                w.iter_mut().for_each(|x| *x = rng.uniform_in(-k, k));
                b.iter_mut().for_each(|x| *x = rng.uniform_in(-k, k));
            }
            Init::LecunNormal | Init::KaimingNormal => {
                let gain = if self == Init::LecunNormal { 1.0 } else { 2.0 };
                let std = sqrt(gain / fan_in as f32);
                w.iter_mut().for_each(|x| *x = std * rng.normal());
                b.iter_mut().for_each(|x| *x = 0.0);
            }
            Init::XavierUniform => {
                let a = sqrt(6.0 / (fan_in + fan_out) as f32);
                w.iter_mut().for_each(|x| *x = rng.uniform_in(-a, a));
                b.iter_mut().for_each(|x| *x = 0.0);
            }
        }
    }
}
