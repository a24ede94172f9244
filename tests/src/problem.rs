//! The scenarios' data and networks: a small synthetic classification problem generated with
//! SplitMix64, so nothing has to be embedded and every platform builds the same bits.
//!
//! [`N`] samples of [`D`] features uniform in `[-1, 1)`; the label of a sample is the argmax of
//! a fixed random linear "teacher" (`C x D`, standard normal weights) applied to it; the
//! regression targets are the teacher's scores scaled by 1/4. The byte features are
//! `floor((x + 1) * 127.5)` (read back with scale `2/255`, i.e. in `[0, 2)`: the same problem
//! shifted, as a microcontroller would store an image data set).

use edgewise_core::{
    param_count, Activation, Arch, Data, Error, Features, Loss, SplitMix64, Targets,
};

/// Samples.
pub const N: usize = 32;
/// Features per sample.
pub const D: usize = 8;
/// Classes (output width).
pub const C: usize = 3;

/// The one-hidden-layer network, 8-6-3.
pub const SHALLOW: [usize; 3] = [D, 6, C];
/// The two-hidden-layer network, 8-6-5-3 (exercises hidden-to-hidden backward and R passes).
pub const DEEP: [usize; 4] = [D, 6, 5, C];

/// Largest parameter count of a scenario's network (the deep one: 107).
pub const MAX_PARAMS: usize = param_count(&DEEP);

/// Largest sum of widths of a scenario's network (sizes the tile workspace).
pub const MAX_WIDTH_SUM: usize = D + 6 + 5 + C;

/// An 8-6-3 network.
pub fn shallow(act: Activation, loss: Loss) -> Result<Arch, Error> {
    Arch::new(&SHALLOW, act, loss)
}

/// An 8-6-5-3 network.
pub fn deep(act: Activation, loss: Loss) -> Result<Arch, Error> {
    Arch::new(&DEEP, act, loss)
}

/// The synthetic data set.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Features, row-major `N x D`, in `[-1, 1)`.
    pub x: [f32; N * D],
    /// The same features as bytes.
    pub bytes: [u8; N * D],
    /// Teacher labels.
    pub labels: [u16; N],
    /// Regression targets, row-major `N x C`.
    pub values: [f32; N * C],
}

/// Scale of [`Problem::bytes`].
pub const BYTE_SCALE: f32 = 2.0 / 255.0;

impl Problem {
    /// The problem for `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut teacher = [0.0f32; C * D];
        rng.fill_normal(&mut teacher);
        let mut p = Problem {
            x: [0.0; N * D],
            bytes: [0; N * D],
            labels: [0; N],
            values: [0.0; N * C],
        };
        for x in p.x.iter_mut() {
            *x = rng.uniform_in(-1.0, 1.0);
        }
        for (b, &x) in p.bytes.iter_mut().zip(p.x.iter()) {
            *b = ((x + 1.0) * 127.5) as u8;
        }
        for i in 0..N {
            let row = &p.x[i * D..(i + 1) * D];
            let mut best = 0;
            let mut best_score = f32::NEG_INFINITY;
            for k in 0..C {
                let score = edgewise_core::vec::dot(&teacher[k * D..(k + 1) * D], row);
                p.values[i * C + k] = 0.25 * score;
                if score > best_score {
                    best_score = score;
                    best = k;
                }
            }
            p.labels[i] = best as u16;
        }
        p
    }

    /// Float features with class labels.
    pub fn classes(&self) -> Result<Data<'_>, Error> {
        Data::new(&self.x, D, Targets::Classes(&self.labels))
    }

    /// Byte features (scale [`BYTE_SCALE`]) with class labels.
    pub fn byte_classes(&self) -> Result<Data<'_>, Error> {
        Data::with_features(
            Features::U8 {
                bytes: &self.bytes,
                scale: BYTE_SCALE,
            },
            D,
            Targets::Classes(&self.labels),
        )
    }

    /// Float features with real-valued targets (for mean squared error).
    pub fn regression(&self) -> Result<Data<'_>, Error> {
        Data::new(&self.x, D, Targets::Values(&self.values))
    }
}
