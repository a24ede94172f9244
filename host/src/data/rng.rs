//! The data module's own small random generator: SplitMix64 (Steele, Lea and Flood, 2014).
//!
//! Everything here is integer arithmetic or exactly rounded f32 arithmetic done in a fixed
//! order, so a seed gives bit-identical results on every platform:
//! - [`SplitMix64::below`]: `(next_u64() as u128 * bound as u128) >> 64` (multiply-high);
//! - [`SplitMix64::uniform`]: `(next_u64() >> 40) * 2^-24`, in `[0, 1)`, exact in f32;
//! - [`SplitMix64::normal`]: the Irwin–Hall approximation, the sum of 12 such uniforms minus 6,
//!   summed left to right in f32 (mean 0, variance 1, support `[-6, 6)`). No `ln`/`cos`, whose
//!   platform implementations may differ in the last bit.

/// SplitMix64 pseudo-random generator.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An integer in `0..bound` (`bound > 0`), by multiply-high.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)` from the top 24 bits.
    pub(crate) fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Approximately standard normal: Irwin–Hall, `sum of 12 uniforms - 6`, in f32.
    pub(crate) fn normal(&mut self) -> f32 {
        let mut sum = 0.0f32;
        for _ in 0..12 {
            sum += self.uniform();
        }
        sum - 6.0
    }
}

/// A seeded permutation of `0..n`: Fisher–Yates from the identity, for `i` from `n - 1` down to
/// 1 swapping position `i` with position `below(i + 1)`.
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // `below(i + 1) <= i < n`, so the cast back to usize is lossless.
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference outputs of SplitMix64 seeded with 1234567 (from the published C code).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(1000, 7);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
        assert!(permutation(0, 1).is_empty());
        assert_eq!(permutation(1, 1), vec![0]);
    }

    #[test]
    fn normal_moments() {
        let mut rng = SplitMix64::new(3);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| f64::from(rng.normal())).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
