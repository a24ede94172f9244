//! Minibatch sampling for SGD: a seeded shuffle per epoch.
//!
//! Epoch `e` visits the samples in the order of a Fisher–Yates shuffle of `0..n` driven by
//! `SplitMix64::derive(seed, e)` (see [`crate::rng`]), cut into consecutive batches of
//! `batch` samples. **Partial-batch rule:** when `batch` does not divide `n`, the last batch of
//! each epoch is kept, smaller, and its loss is the mean over its own samples
//! (`drop_last = false`, PyTorch's default); with `drop_last = true` it is skipped. A batch size
//! of `n` or more is full-batch gradient descent, in data order, without shuffling.

use crate::error::{check_len, Error};
use crate::rng::SplitMix64;

/// The per-epoch shuffle and batch cutting of SGD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochSampler {
    n: usize,
    batch: usize,
    drop_last: bool,
    seed: u64,
}

impl EpochSampler {
    /// A sampler over `n` samples.
    pub fn new(n: usize, batch: usize, drop_last: bool, seed: u64) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::EmptyData);
        }
        if batch == 0 {
            return Err(Error::InvalidConfig("batch size must be positive"));
        }
        if drop_last && batch > n {
            return Err(Error::InvalidConfig(
                "batch larger than the data with drop_last",
            ));
        }
        Ok(Self {
            n,
            batch: batch.min(n),
            drop_last,
            seed,
        })
    }

    /// True when every step sees the whole data set.
    pub fn is_full_batch(&self) -> bool {
        self.batch >= self.n
    }

    /// Batches (optimizer steps) per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.n / self.batch
        } else {
            self.n.div_ceil(self.batch)
        }
    }

    /// Writes epoch `epoch`'s visiting order into `order` (`n` entries).
    pub fn epoch_order(&self, epoch: u64, order: &mut [u32]) -> Result<(), Error> {
        check_len("order", order, self.n)?;
        for (i, o) in order.iter_mut().enumerate() {
            *o = i as u32;
        }
        if !self.is_full_batch() {
            SplitMix64::derive(self.seed, epoch).shuffle(order);
        }
        Ok(())
    }

    /// The indices of batch `b` of an epoch, given that epoch's `order`.
    pub fn batch<'o>(&self, order: &'o [u32], b: usize) -> &'o [u32] {
        // Saturating: a batch index past the epoch gives an empty slice, never an overflow.
        let start = b.saturating_mul(self.batch).min(order.len());
        let end = start.saturating_add(self.batch).min(order.len());
        &order[start..end]
    }
}
