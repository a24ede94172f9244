//! Elementary functions behind a runtime-selectable backend.
//!
//! - [`MathBackend::Libm`] (the default): the `libm` crate, a pure-Rust port of musl's libm
//!   (correctly rounded or within about 1 ulp), except `tanh`, which is edgewise's own
//!   (module `tanh`: at most 1.13 ulp, against 2.19 for `libm::tanhf`, and vectorisable). It
//!   is the same code on every target, so results agree bit for bit between x86_64, Cortex-M
//!   and RISC-V.
//! - [`MathBackend::Micromath`]: the `micromath` crate's fast approximations of `exp` and `ln`
//!   (relative error around 1e-4 to 1e-3), for microcontrollers where speed matters more than
//!   the last digits. Also pure Rust arithmetic, so also bit-identical across targets.
//!
//! Square roots always use `libm::sqrtf`, which is correctly rounded (IEEE 754) on every target.
//! Rust never contracts `a * b + c` into a fused multiply-add on its own, and this crate never
//! asks for one, so plain arithmetic is bit-reproducible too.

/// Which implementation of the elementary functions the activations and losses use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MathBackend {
    /// `libm` (musl's algorithms; `tanh` edgewise's own): accurate.
    #[default]
    Libm,
    /// `micromath`: fast approximations.
    Micromath,
}

impl MathBackend {
    /// `e^x`.
    #[inline]
    pub fn exp(self, x: f32) -> f32 {
        match self {
            MathBackend::Libm => libm::expf(x),
            MathBackend::Micromath => {
                // micromath's approximation misbehaves far outside the range of f32 results.
                if x < -87.0 {
                    0.0
                } else if x > 88.0 {
                    f32::INFINITY
                } else {
                    micromath::F32(x).exp().0
                }
            }
        }
    }

    /// `e^x - 1`, accurate near 0 for libm.
    #[inline]
    pub fn exp_m1(self, x: f32) -> f32 {
        match self {
            MathBackend::Libm => libm::expm1f(x),
            MathBackend::Micromath => self.exp(x) - 1.0,
        }
    }

    /// Natural logarithm.
    #[inline]
    pub fn ln(self, x: f32) -> f32 {
        match self {
            MathBackend::Libm => libm::logf(x),
            // micromath inverts x < 1 with a rough approximation of 1/x: use an exact division.
            MathBackend::Micromath if x > 0.0 && x < 1.0 => -micromath::F32(1.0 / x).ln().0,
            // micromath's approximate 1/x overflows (an integer subtraction) on negative
            // numbers and -0: ln is -inf at -0 and NaN below, as libm computes it.
            MathBackend::Micromath if x <= 0.0 && x.is_sign_negative() => libm::logf(x),
            MathBackend::Micromath => micromath::F32(x).ln().0,
        }
    }

    /// `ln(1 + x)`, accurate near 0 for libm.
    #[inline]
    pub fn ln_1p(self, x: f32) -> f32 {
        match self {
            MathBackend::Libm => libm::log1pf(x),
            MathBackend::Micromath => self.ln(1.0 + x),
        }
    }

    /// Hyperbolic tangent. micromath has none: it is built as `1 - 2 / (e^(2x) + 1)`.
    #[inline]
    pub fn tanh(self, x: f32) -> f32 {
        match self {
            MathBackend::Libm => crate::tanh::tanhf(x),
            MathBackend::Micromath => {
                if x > 9.0 {
                    1.0
                } else if x < -9.0 {
                    -1.0
                } else {
                    1.0 - 2.0 / (self.exp(2.0 * x) + 1.0)
                }
            }
        }
    }
}

/// Square root, correctly rounded on every target.
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Square root in f64, correctly rounded on every target.
#[inline]
pub fn sqrt64(x: f64) -> f64 {
    libm::sqrt(x)
}

/// `a * b + c` rounded once (IEEE 754 `fusedMultiplyAdd`, round to nearest even), on every
/// target: [`libm::fmaf`], or with the `arm-vfma` feature the FPU's `vfma.f32` on hard-float Arm
/// targets (FPv4-SP and later: Cortex-M4F, M7, M33) through the `edgewise-vfma` crate, which
/// computes the same correctly rounded result (the conformance goldens check it under QEMU).
/// The accumulations of the dense layers ([`crate::mlp`]'s canonical order) use it.
#[inline(always)]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(feature = "arm-vfma")]
    {
        edgewise_vfma::fmaf(a, b, c)
    }
    #[cfg(not(feature = "arm-vfma"))]
    {
        libm::fmaf(a, b, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micromath_is_close_to_libm() {
        for i in -40..=40 {
            let x = i as f32 * 0.2;
            let (a, b) = (MathBackend::Libm.tanh(x), MathBackend::Micromath.tanh(x));
            assert!((a - b).abs() < 2e-3, "tanh({x}): {a} vs {b}");
            let (a, b) = (MathBackend::Libm.exp(x), MathBackend::Micromath.exp(x));
            assert!(((a - b) / a).abs() < 2e-3, "exp({x}): {a} vs {b}");
        }
        for i in 1..100 {
            let x = i as f32 * 0.37;
            let (a, b) = (MathBackend::Libm.ln(x), MathBackend::Micromath.ln(x));
            assert!(
                (a - b).abs() < 2e-3 * (1.0 + a.abs()),
                "ln({x}): {a} vs {b}"
            );
        }
    }

    /// The multiply-add core uses is the correctly rounded one: bit for bit the test machine's
    /// own fused multiply-add (`f32::mul_add`: the FMA instruction on x86-64 and AArch64) on
    /// seeded random operands over the whole range, subnormals, carries near 1 and
    /// near-cancellations included, and exact where the rounded product would not be.
    #[test]
    fn fma_is_the_correctly_rounded_multiply_add() {
        let mut rng = crate::SplitMix64::new(7);
        let pick = |rng: &mut crate::SplitMix64| -> f32 {
            let b = rng.next_u64();
            match b % 4 {
                // Any bit pattern.
                0 => f32::from_bits((b >> 32) as u32),
                // Near 1 (long carries).
                1 => 1.0 + ((b >> 40) as f32) * f32::EPSILON,
                // Subnormals and tiny values.
                2 => f32::from_bits(((b >> 40) as u32) & 0x00ff_ffff),
                // Moderate values of either sign.
                _ => ((b >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0) as f32,
            }
        };
        for i in 0..2_000_000u32 {
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            // Every fourth `c` nearly cancels the product.
            let c = if i % 4 == 0 { -(a * b) } else { pick(&mut rng) };
            let got = fma(a, b, c);
            let want = a.mul_add(b, c);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "fma({a:e}, {b:e}, {c:e}) = {got:e}, expected {want:e}"
            );
        }
        assert_eq!(
            fma(1.0 + f32::EPSILON, 1.0 - f32::EPSILON, -1.0),
            -f32::EPSILON * f32::EPSILON
        );
    }
}
