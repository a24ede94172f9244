//! `tanh` for `f32`: edgewise's own, the same bits on every target, written so that the compiler
//! vectorises it.
//!
//! [`tanhf`] evaluates two formulas on every input and selects one, without branches, with
//! plain IEEE 754 single-precision operations (`+ - * /`, rounded to nearest, never fused into a
//! multiply-add: Rust does not contract them) in a fixed order. Its bits are therefore the same
//! on every CPU, with or without vector units or a hardware FPU (the conformance goldens check
//! the Cortex-M4F, Cortex-M3 and RISC-V against the host), and [`tanh_slice`], a loop over it that
//! the compiler turns into vector code, gives the bits of the scalar function.
//!
//! For `|x| < 0.7`: `tanh(x) = x + x^3 g(x^2)` with `g` a degree-5 polynomial (the near-minimax
//! Chebyshev fit of `(tanh(x)/x - 1)/x^2` on `x^2` in `[0, 0.49]`, coefficients rounded to
//! `f32`; fit error 2.7e-9 relative to `tanh`). Otherwise `tanh(x) = 1 - 2 / (e^(2|x|) + 1)`,
//! with `|x|` capped at 10 (beyond 9.01 `tanh` rounds to 1), `e^y = 2^k e^r` for
//! `k = round(y / ln 2)`, `r = y - k ln 2` in two steps (Cody and Waite: `k ln2_hi` and the first
//! subtraction are exact), and `e^r` a degree-6 polynomial on `[-ln2/2, ln2/2]` (near-minimax
//! fit, 2.0e-9). The sign is copied back; NaN stays NaN, `+-0` and subnormals are returned as
//! they are.
//!
//! Accuracy, checked over every `f32` in `[0, 12]` against `f64::tanh` (the odd symmetry covers
//! the negatives; larger inputs give 1 exactly): at most 1.13 ulp (at 0.8123859), 99.75% of the
//! results correctly rounded. `libm::tanhf` (musl's, which edgewise used until 2026-12-04), in
//! the same check: at most 2.19 ulp, 94.87% correctly rounded. It is also 2.4x as fast as the
//! branch-free, bit-exact evaluation of `libm::tanhf` it replaced (one division instead of two,
//! no branch formulas to evaluate and discard; `WHICH=5` of `host/examples/passes.rs`,
//! BENCHMARKS.md). The test `tanh_is_accurate_everywhere` (`--ignored`) repeats the check and
//! prints both functions' figures; a strided sample of it always runs.

// The coefficients and constants, by their bit patterns.

/// `g(u)`, highest degree first: `tanh(x) ~ x + x^3 g(x^2)` for `|x| < SMALL`.
const G: [f32; 6] = [
    f32::from_bits(0x3b07_0b7e), //  2.0606215e-3
    f32::from_bits(0xbc04_ee84), // -8.1135072e-3
    f32::from_bits(0x3cb1_adfb), //  2.1689406e-2
    f32::from_bits(0xbd5c_f8c2), // -5.3948171e-2
    f32::from_bits(0x3e08_8851), //  1.3333251e-1
    f32::from_bits(0xbeaa_aaaa), // -3.3333331e-1
];
/// `e^r` for `|r| <= ln 2 / 2`, highest degree first.
const E: [f32; 7] = [
    f32::from_bits(0x3ab6_ba99), // 1.3941108e-3
    f32::from_bits(0x3c09_37d3), // 8.3751259e-3
    f32::from_bits(0x3d2a_aa56), // 4.1666351e-2
    f32::from_bits(0x3e2a_aa02), // 1.6666415e-1
    f32::from_bits(0x3f00_0000), // 0.5
    f32::from_bits(0x3f80_0000), // 1
    f32::from_bits(0x3f80_0000), // 1
];
/// Below it, the polynomial; from it on, the exponential form.
const SMALL: f32 = 0.7;
/// `|x|` is capped here before the exponential (`tanh` of it and beyond rounds to 1).
const CAP: f32 = 10.0;
/// `1 / ln 2`.
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950
/// `ln 2` in two parts: `LN2_HI` has 16 significant bits, so `k * LN2_HI` is exact for the
/// `k <= 29` that occur.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575e-1
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286068e-6
/// `1.5 * 2^23`: adding it rounds a value below `2^22` to an integer held in the low bits.
const ROUND: f32 = 12_582_912.0;

/// `tanh(x)`: see the module documentation for the method and its accuracy.
#[inline(always)]
pub fn tanhf(x: f32) -> f32 {
    let bits = x.to_bits();
    let ax = f32::from_bits(bits & 0x7fff_ffff);
    // |x| < SMALL: x + x^3 g(x^2).
    let u = ax * ax;
    let mut g = G[0];
    for &c in &G[1..] {
        g = g * u + c;
    }
    let small = ax + (ax * u) * g;
    // Otherwise 1 - 2 / (e^(2|x|) + 1), e^y = 2^k e^r.
    let y = if ax < CAP { ax } else { CAP };
    let y = y + y;
    let t = y * INV_LN2 + ROUND;
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let kf = t - ROUND;
    let r = (y - kf * LN2_HI) - kf * LN2_LO;
    let mut p = E[0];
    for &c in &E[1..] {
        p = p * r + c;
    }
    // 2^k e^r: k is at most 29 and e^r in [0.7, 1.5], so adding k to the exponent is exact.
    let e = f32::from_bits((p.to_bits() as i32).wrapping_add(k.wrapping_shl(23)) as u32);
    let large = 1.0 - 2.0 / (e + 1.0);
    let v = if ax < SMALL { small } else { large };
    let v = f32::from_bits(v.to_bits() | (bits & 0x8000_0000));
    // NaN in, NaN out (the formulas above turn it into 1).
    if x.is_nan() {
        x
    } else {
        v
    }
}

/// `out[k] = tanhf(z[k])` for `k < min(z.len(), out.len())`. Inlined everywhere, so that a caller
/// compiled for a wider instruction set gets the wider vectors (the host's engine; its tests check
/// this function against [`tanhf`] under each instruction set it dispatches to).
#[inline(always)]
pub fn tanh_slice(z: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(z) {
        *o = tanhf(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error of `tanhf(x)` in units in the last place of the exact `tanh(x)` (`f64::tanh` as
    /// the reference: its own error is far below an `f32` ulp).
    fn ulp_error(x: f32) -> f64 {
        ulp_error_of(tanhf, x)
    }

    /// [`ulp_error`] of any `f32` tanh.
    fn ulp_error_of(f: fn(f32) -> f32, x: f32) -> f64 {
        let exact = (x as f64).tanh();
        let got = f(x) as f64;
        let r = (exact as f32).abs();
        let ulp = if r == 0.0 {
            f32::from_bits(1) as f64
        } else {
            (f32::from_bits(r.to_bits() + 1) - r) as f64
        };
        (got - exact).abs() / ulp
    }

    /// Checks every `step`-th bit pattern of `lo..hi`: the slice form against the scalar one, and
    /// the scalar one's accuracy; returns the largest error in ulp and the share of correctly
    /// rounded results.
    fn check_range(lo: u64, hi: u64, step: u64) -> (f64, f64) {
        let mut buf = [0.0f32; 4096];
        let mut out = [0.0f32; 4096];
        let (mut worst, mut rounded, mut n) = (0.0f64, 0u64, 0u64);
        let mut b = lo;
        while b < hi {
            let mut m = 0;
            while m < buf.len() && b < hi {
                buf[m] = f32::from_bits(b as u32);
                m += 1;
                b += step;
            }
            tanh_slice(&buf[..m], &mut out[..m]);
            for k in 0..m {
                let (x, got) = (buf[k], out[k]);
                let want = tanhf(x);
                assert!(
                    got.to_bits() == want.to_bits(),
                    "tanh_slice({x:e}) = {got:e}, tanhf gives {want:e}"
                );
                if x.is_nan() {
                    assert!(got.is_nan());
                    continue;
                }
                let e = ulp_error(x);
                worst = worst.max(e);
                rounded += (e <= 0.5) as u64;
                n += 1;
            }
        }
        (worst, rounded as f64 / n.max(1) as f64)
    }

    #[test]
    fn special_values() {
        assert_eq!(tanhf(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanhf(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanhf(f32::INFINITY), 1.0);
        assert_eq!(tanhf(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanhf(f32::MAX), 1.0);
        assert_eq!(tanhf(-20.0), -1.0);
        assert!(tanhf(f32::NAN).is_nan());
        assert!(tanhf(-f32::NAN).is_nan());
        let tiny = f32::from_bits(1);
        assert_eq!(tanhf(tiny), tiny);
        assert_eq!(tanhf(-1e-30), -1e-30);
        // Odd symmetry, exactly.
        let mut x = 1e-6f32;
        while x < 12.0 {
            assert_eq!(tanhf(-x).to_bits(), (-tanhf(x)).to_bits());
            x *= 1.001;
        }
        // Monotone across the switch between the two formulas.
        let s = SMALL.to_bits();
        for b in s - 2000..s + 2000 {
            assert!(tanhf(f32::from_bits(b)) <= tanhf(f32::from_bits(b + 1)));
        }
    }

    #[test]
    fn tanh_is_accurate_on_a_sample() {
        // Every 997th bit pattern (both signs, NaNs, infinities), and every pattern around the
        // switch between the formulas, the cap and the start of the normal numbers.
        let (worst, rounded) = check_range(0, 1 << 32, 997);
        assert!(worst <= 1.13, "largest error {worst} ulp");
        assert!(rounded >= 0.997, "{rounded} correctly rounded");
        for t in [SMALL.to_bits(), CAP.to_bits(), 0x0080_0000, 0x4110_2000] {
            for s in [0u32, 0x8000_0000] {
                let c = (t | s) as u64;
                let (worst, _) = check_range(c - 20_000, c + 20_000, 1);
                assert!(worst <= 1.13, "largest error {worst} ulp near {t:#x}");
            }
        }
    }

    /// Every non-negative `f32` up to 12 (about a minute in release mode; the negatives are the
    /// same by symmetry, which `special_values` checks, and beyond 12 the result is 1). Also
    /// prints the same figures for `libm::tanhf`, for the comparison in the module documentation
    /// (`cargo test --release -p edgewise-core -- --ignored --nocapture tanh_is_accurate`).
    #[test]
    #[ignore]
    fn tanh_is_accurate_everywhere() {
        let (worst, rounded) = check_range(0, 0x4140_0000, 1);
        eprintln!(
            "tanhf: at most {worst:.4} ulp, {:.4}% correctly rounded",
            100.0 * rounded
        );
        let (mut lw, mut lr) = (0.0f64, 0u64);
        for b in 0..0x4140_0000u32 {
            let e = ulp_error_of(libm::tanhf, f32::from_bits(b));
            lw = lw.max(e);
            lr += (e <= 0.5) as u64;
        }
        let share = 100.0 * lr as f64 / 0x4140_0000u32 as f64;
        eprintln!("libm::tanhf: at most {lw:.4} ulp, {share:.4}% correctly rounded");
        assert!(worst <= 1.13, "largest error {worst} ulp");
        assert!(rounded >= 0.9975, "{rounded} correctly rounded");
    }
}
