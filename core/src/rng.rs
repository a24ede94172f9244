//! The one random generator: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014).
//!
//! It uses only 64-bit wrapping integer arithmetic, so a seed gives the same stream on every
//! target. Floats are derived from the top bits of each output:
//! - [`SplitMix64::uniform`]: `(x >> 40) * 2^-24`, exactly representable, in `[0, 1)`;
//! - [`SplitMix64::normal`]: Box–Muller on two uniforms with `libm` (`sqrt(-2 ln u1) cos(2 pi u2)`,
//!   `u1` taken in `(0, 1]`); libm is the same code on every target, so the bits agree;
//! - [`SplitMix64::below`]: Lemire's multiply-high, `(x * n) >> 64` (no modulo);
//! - [`SplitMix64::rademacher`]: the top bit chooses `+1` or `-1`.

/// SplitMix64 pseudo-random generator. `Clone` it to fork a reproducible sub-stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for sub-stream `stream` of `seed` (e.g. one per epoch): the pair is mixed so
    /// that nearby seeds and streams give unrelated sequences.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut g = Self::new(seed ^ 0x6a09_e667_f3bc_c909);
        let a = g.next_u64();
        let mut h = Self::new(a ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Self::new(h.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `[lo, hi)`: `lo + (hi - lo) * u`.
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal by Box–Muller (one value per call; the second one is discarded so that
    /// the stream has no hidden state).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        r * libm::cosf(2.0 * core::f32::consts::PI * u2)
    }

    /// Uniform integer in `[0, n)` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// `+1.0` or `-1.0` with equal probability.
    pub fn rademacher(&mut self) -> f32 {
        if self.next_u64() >> 63 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Fisher–Yates shuffle, from the last element down: swap `i` with `below(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        let mut i = items.len();
        while i > 1 {
            i -= 1;
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Fills `out` with a random unit-free vector of standard normals.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for x in out {
            *x = self.normal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0 (from the paper's C code).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(g.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn uniform_and_below_stay_in_range() {
        let mut g = SplitMix64::new(42);
        for _ in 0..10_000 {
            let u = g.uniform();
            assert!((0.0..1.0).contains(&u));
            assert!(g.below(7) < 7);
        }
        assert_eq!(g.below(0), 0);
    }

    #[test]
    fn normal_has_roughly_unit_variance() {
        let mut g = SplitMix64::new(1);
        let n = 20_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let z = g.normal() as f64;
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut g = SplitMix64::new(3);
        let mut v = [0usize; 50];
        for (i, x) in v.iter_mut().enumerate() {
            *x = i;
        }
        g.shuffle(&mut v);
        let mut seen = [false; 50];
        for &x in &v {
            seen[x] = true;
        }
        assert!(seen.iter().all(|&b| b));
        assert_ne!(v[..10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
}
