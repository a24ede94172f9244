//! Elementary functions behind a runtime-selectable backend.
//!
//! - [`MathBackend::Libm`] (the default): the `libm` crate, a pure-Rust port of musl's libm
//!   (correctly rounded or within 1 ulp). It is the same code on every target, so results agree
//!   bit for bit between x86_64, Cortex-M and RISC-V.
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
    /// `libm` (musl's algorithms): accurate.
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
            MathBackend::Libm => libm::tanhf(x),
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
}
