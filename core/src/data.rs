//! Borrowed views of a data set: features, targets and an optional index list.
//!
//! Features are stored row-major, one sample per row of `dim` values, either as `f32` or as
//! bytes with a scale (`x = byte as f32 * scale`, which lets a microcontroller keep an image data
//! set in flash at a quarter of the size). An index list selects and orders samples without
//! copying (a minibatch, a fixed Hessian subset).

use crate::error::{check_len, check_min, Error};

/// Feature storage, row-major (`n` rows of `dim` values).
#[derive(Clone, Copy, Debug)]
pub enum Features<'a> {
    /// Plain floats.
    F32(&'a [f32]),
    /// Bytes, scaled on read: `x = byte as f32 * scale` (one f32 multiplication, exact order).
    U8 {
        /// The bytes.
        bytes: &'a [u8],
        /// The factor applied to each byte.
        scale: f32,
    },
}

impl Features<'_> {
    fn len(&self) -> usize {
        match self {
            Features::F32(x) => x.len(),
            Features::U8 { bytes, .. } => bytes.len(),
        }
    }
}

/// Training targets.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// One class label per sample. With mean squared error the target is the one-hot vector.
    Classes(&'a [u16]),
    /// Real-valued targets, row-major (`n` rows of the output width).
    Values(&'a [f32]),
}

/// A borrowed data set (or a subset of one, through `index`).
#[derive(Clone, Copy, Debug)]
pub struct Data<'a> {
    features: Features<'a>,
    dim: usize,
    rows: usize,
    targets: Targets<'a>,
    index: Option<&'a [u32]>,
}

impl<'a> Data<'a> {
    /// A view of `x.len() / dim` samples with `dim` float features each ([`Error::EmptyData`]
    /// for none).
    pub fn new(x: &'a [f32], dim: usize, targets: Targets<'a>) -> Result<Self, Error> {
        Self::with_features(Features::F32(x), dim, targets)
    }

    /// A view over any feature storage.
    pub fn with_features(
        features: Features<'a>,
        dim: usize,
        targets: Targets<'a>,
    ) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidConfig("feature dimension must be positive"));
        }
        let len = features.len();
        if len % dim != 0 {
            return Err(Error::LengthMismatch {
                what: "features",
                expected: (len / dim) * dim,
                got: len,
            });
        }
        let rows = len / dim;
        if rows == 0 {
            return Err(Error::EmptyData);
        }
        match targets {
            Targets::Classes(l) => check_len("labels", l, rows)?,
            Targets::Values(v) => {
                if v.len() % rows != 0 {
                    return Err(Error::LengthMismatch {
                        what: "targets",
                        expected: rows,
                        got: v.len(),
                    });
                }
            }
        }
        Ok(Self {
            features,
            dim,
            rows,
            targets,
            index: None,
        })
    }

    /// The same data, restricted to (and ordered by) `index`. Out-of-range entries are an error.
    pub fn select(&self, index: &'a [u32]) -> Result<Self, Error> {
        if let Some(&bad) = index.iter().find(|&&i| i as usize >= self.rows) {
            let _ = bad;
            return Err(Error::InvalidConfig("index list points past the data"));
        }
        if self.index.is_some() {
            return Err(Error::InvalidConfig(
                "cannot select from an already indexed view",
            ));
        }
        Ok(Self {
            index: Some(index),
            ..*self
        })
    }

    /// Number of samples in the view.
    pub fn len(&self) -> usize {
        match self.index {
            Some(ix) => ix.len(),
            None => self.rows,
        }
    }

    /// True when the view holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The targets.
    pub fn targets(&self) -> Targets<'a> {
        self.targets
    }

    /// Row of the underlying storage that sample `i` of the view reads; `None` when `i` is not
    /// below [`Data::len`].
    #[inline]
    pub fn row_of(&self, i: usize) -> Option<usize> {
        match self.index {
            Some(ix) => ix.get(i).map(|&r| r as usize),
            None => (i < self.rows).then_some(i),
        }
    }

    /// The features of samples `start..start + n` as one row-major slice, when the view stores
    /// them that way (`f32` features, no index list): the passes then read them in place instead
    /// of copying them. `None` otherwise, and when the range reaches past the data.
    #[inline]
    pub fn rows_f32(&self, start: usize, n: usize) -> Option<&'a [f32]> {
        match (self.features, self.index) {
            (Features::F32(x), None) => {
                let lo = start.checked_mul(self.dim)?;
                let hi = start.checked_add(n)?.checked_mul(self.dim)?;
                x.get(lo..hi)
            }
            _ => None,
        }
    }

    /// Copies the features of sample `i` of the view into `out[..dim]`. An error when `i` is
    /// not below [`Data::len`] or `out` is shorter than [`Data::dim`].
    #[inline]
    pub fn copy_features(&self, i: usize, out: &mut [f32]) -> Result<(), Error> {
        let r = self
            .row_of(i)
            .ok_or(Error::InvalidConfig("sample index past the data"))?;
        let d = self.dim;
        check_min("features output", out, d)?;
        // r < rows and rows * dim = the storage's length, so the row is in range.
        let (lo, hi) = (r * d, (r + 1) * d);
        match self.features {
            Features::F32(x) => out[..d].copy_from_slice(&x[lo..hi]),
            Features::U8 { bytes, scale } => {
                for (o, &b) in out[..d].iter_mut().zip(&bytes[lo..hi]) {
                    *o = b as f32 * scale;
                }
            }
        }
        Ok(())
    }

    /// Class label of sample `i` of the view, if the targets are classes; `None` for
    /// real-valued targets and when `i` is not below [`Data::len`].
    #[inline]
    pub fn label(&self, i: usize) -> Option<u16> {
        match self.targets {
            Targets::Classes(l) => l.get(self.row_of(i)?).copied(),
            Targets::Values(_) => None,
        }
    }

    /// Real-valued target row of sample `i`, if the targets are values; `None` for class
    /// targets and when `i` is not below [`Data::len`].
    #[inline]
    pub fn target_row(&self, i: usize) -> Option<&'a [f32]> {
        match self.targets {
            Targets::Values(v) => {
                let w = v.len() / self.rows;
                let r = self.row_of(i)?;
                v.get(r.checked_mul(w)?..r.checked_add(1)?.checked_mul(w)?)
            }
            Targets::Classes(_) => None,
        }
    }

    /// Width of the real-valued targets (0 for classes).
    pub fn target_width(&self) -> usize {
        match self.targets {
            Targets::Values(v) => v.len() / self.rows,
            Targets::Classes(_) => 0,
        }
    }
}
