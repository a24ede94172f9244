//! `libm::tanhf` for whole slices, bit for bit, in a form the compiler vectorises.
//!
//! `libm::tanhf` (musl's `tanhf` over FreeBSD's `expm1f`) picks one of a few formulas by the
//! size of the argument. [`tanh_slice`] evaluates *every* formula on every element with exactly
//! the same f32 operations, in the same order, on the same operands, and then selects the one
//! `libm` would have returned, so there is no branch left and the loops run on vector lanes.
//! Each selected result is therefore the bits of `libm::tanhf` (the two divisions whose results
//! are always selected together are merged into one division with selected operands, which
//! computes the very same quotient). The test `tanh_matches_libm_everywhere` checks all 2^32
//! inputs (it is `#[ignore]`d for time; `cargo test -p edgewise-core --release -- --ignored`),
//! and a strided sample of them always runs.

// The constants of `libm`'s `expm1f`, by their bit patterns (the same f32 values as its decimal
// literals).
const LN2_HI: f32 = f32::from_bits(0x3f31_7180); // 6.9313812256e-01
const LN2_LO: f32 = f32::from_bits(0x3717_f7d1); // 9.0580006145e-06
const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
const Q1: f32 = f32::from_bits(0xbd08_8868); // -3.3333212137e-2
const Q2: f32 = f32::from_bits(0x3acf_3010); // 1.5807170421e-3

/// `f as i32` (truncation toward zero) for `0 <= f < 2^22`, with integer operations only (Rust's
/// saturating conversion does not vectorise); other values give an unspecified result, which
/// [`expm1f_reduced`] never selects.
#[inline(always)]
fn trunc_i32(f: f32) -> i32 {
    let b = f.to_bits();
    let e = ((b >> 23) as i32).wrapping_sub(127);
    let t = f32::from_bits(b & !0x007f_ffff_u32.wrapping_shr(e as u32));
    // t is an integer below 2^22: adding 1.5 * 2^23 is exact and leaves it in the low bits.
    ((t + 12_582_912.0).to_bits() as i32).wrapping_sub(0x4b40_0000)
}

/// Stage 1 of [`tanh_slice`]: the argument `y` that `tanhf` passes to `expm1f` (`2|x|` when
/// `|x| > log(5/3) / 2`, else `-2|x|`) and `expm1f`'s argument reduction `(k, x, c)` of it.
///
/// `expm1f` is evaluated for the arguments `tanhf` passes and uses: `y` in `(0.51, 20]` or in
/// `[-0.52, -2^-125]`, without branches (every formula of `expm1f` those arguments reach is
/// computed, the one `expm1f` returns is selected). The formulas for huge, non-finite and
/// very negative arguments (`|y| >= 27 ln 2` with an early return, or `k < 0`, `k > 56` after
/// the reduction) are never reached from `tanhf` and are left out; the exhaustive test covers
/// what is kept. Reached: `y > 0`: `k = 1` (`y < 1.5 ln 2`) or `k = trunc(y / ln 2 + 1/2)` in
/// `2..=29`; `y < 0`: `k = -1` (`|y| > ln 2 / 2`), `k = 0`, or `|y| < 2^-25` (the result is `y`).
#[inline(always)]
fn reduce(xin: f32) -> (f32, i32, f32, f32) {
    let ax = f32::from_bits(xin.to_bits() & 0x7fff_ffff);
    let y = if ax.to_bits() > MID {
        2. * ax
    } else {
        -2. * ax
    };
    let hy = y.to_bits();
    let neg = (hy >> 31) != 0;
    let hx = hy & 0x7fff_ffff;
    let reduce = hx > 0x3eb1_7218; // |y| > ln 2 / 2
    let near = hx < 0x3f85_1592; // |y| < 1.5 ln 2
    let kg = trunc_i32(INV_LN2 * y + (if neg { -0.5 } else { 0.5 }));
    let tg = kg as f32;
    let (k, hi, lo) = if near {
        if neg {
            (-1, y + LN2_HI, -LN2_LO)
        } else {
            (1, y - LN2_HI, LN2_LO)
        }
    } else {
        (kg, y - tg * LN2_HI, tg * LN2_LO)
    };
    let xr = hi - lo;
    let cr = (hi - xr) - lo;
    let (k, x, c) = if reduce { (k, xr, cr) } else { (0, y, 0.0) };
    (y, k, x, c)
}

/// Stage 2: `libm::expm1f(y)` from stage 1's reduction (`x` is in the primary range).
#[inline(always)]
fn expm1f_reduced(y: f32, k: i32, x: f32, c: f32) -> f32 {
    let hx = y.to_bits() & 0x7fff_ffff;
    let reduce = hx > 0x3eb1_7218;
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let r1 = 1. + hxs * (Q1 + hxs * Q2);
    let t = 3. - r1 * hfx;
    let e0 = hxs * ((r1 - t) / (6. - x * t));
    let r_k0 = x - (x * e0 - hxs);
    let e = (x * (e0 - c) - c) - hxs;
    let r_km1 = 0.5 * (x - e) - 0.5;
    let r_k1 = if x < -0.25 {
        -2. * (e - (x + 0.5))
    } else {
        1. + 2. * (x - e)
    };
    let twopk = f32::from_bits((0x7f_i32.wrapping_add(k) as u32).wrapping_shl(23));
    let uf = f32::from_bits((0x7f_i32.wrapping_sub(k) as u32).wrapping_shl(23));
    let r_lt23 = (x - e + (1. - uf)) * twopk;
    let r_ge23 = (x - (e + uf) + 1.) * twopk;
    let r_k = if k < 23 { r_lt23 } else { r_ge23 };
    let r_k = if k == 1 { r_k1 } else { r_k };
    let r_k = if k == -1 { r_km1 } else { r_k };
    let r_0 = if hx < 0x3300_0000 { y } else { r_k0 };
    if reduce {
        r_k
    } else {
        r_0
    }
}

/// `|x| > log(5/3) / 2`: `tanhf` uses `expm1(2|x|) / (expm1(2|x|) + 2)` (or the big form).
const MID: u32 = 0x3e82_c578;

/// Stage 3: `libm::tanhf(x)` from `t = expm1f(y)` of stage 2, without branches.
#[inline(always)]
fn tanhf_from(xin: f32, t: f32) -> f32 {
    let ix = xin.to_bits();
    let w = ix & 0x7fff_ffff;
    let ax = f32::from_bits(w);
    let huge = w > 0x4120_0000; // |x| > 10 or NaN: 1 + 0 / |x|
    let big = w > 0x3f0c_9f54; // |x| > log(3) / 2: 1 - 2 / (expm1(2|x|) + 2)
    let mid = w > MID; // expm1(2|x|) / (expm1(2|x|) + 2)
    let normal = w >= 0x0080_0000; // |x| >= 2^-126: -expm1(-2|x|) / (expm1(-2|x|) + 2)

    // The one division of the selected formula, with its own operands.
    let num = if mid { t } else { -t };
    let num = if big { 2. } else { num };
    let num = if huge { 0. } else { num };
    let den = if huge { ax } else { t + 2. };
    let q = num / den;
    let tt = if normal { q } else { ax }; // subnormal: tanh(x) = x
    let tt = if big { 1. - q } else { tt };
    let tt = if huge { 1. + q } else { tt };
    // Restore the sign.
    f32::from_bits(tt.to_bits() ^ (ix & 0x8000_0000))
}

/// Elements per block of [`tanh_slice`].
const BLOCK: usize = 64;

/// `out[k] = libm::tanhf(z[k])` for every `k`, bit for bit, vectorised.
///
/// Every element is one long chain of dependent operations (with two divisions); evaluated in
/// one loop, the loop body is longer than the CPU's reorder window and the loop runs at the
/// chain's latency. So each block of 64 elements goes through three loops, one per stage
/// ([`reduce`], [`expm1f_reduced`], [`tanhf_from`]), with the intermediate values in small
/// arrays: short loop bodies whose iterations overlap. Same operations on the same operands,
/// so the same bits; about twice as fast on the development machine (BENCHMARKS.md).
/// Writes `min(z.len(), out.len())` values. Inlined everywhere, so that a caller compiled for a
/// wider instruction set gets the wider vectors (the host's engine; its tests check this function
/// against `libm` under each instruction set it dispatches to).
#[inline(always)]
pub fn tanh_slice(z: &[f32], out: &mut [f32]) {
    for (zc, oc) in z.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let n = zc.len().min(oc.len());
        let (zc, oc) = (&zc[..n], &mut oc[..n]);
        let (mut ys, mut ks, mut xs, mut cs) = (
            [0.0f32; BLOCK],
            [0i32; BLOCK],
            [0.0f32; BLOCK],
            [0.0f32; BLOCK],
        );
        let (ys, ks, xs, cs) = (&mut ys[..n], &mut ks[..n], &mut xs[..n], &mut cs[..n]);
        let stage1 = zc.iter().zip(ys.iter_mut()).zip(ks.iter_mut());
        for (((&v, y), k), (x, c)) in stage1.zip(xs.iter_mut().zip(cs.iter_mut())) {
            (*y, *k, *x, *c) = reduce(v);
        }
        let stage2 = ys.iter_mut().zip(ks.iter()).zip(xs.iter().zip(cs.iter()));
        for ((y, &k), (&x, &c)) in stage2 {
            *y = expm1f_reduced(*y, k, x, c);
        }
        for ((o, &v), &t) in oc.iter_mut().zip(zc).zip(ys.iter()) {
            *o = tanhf_from(v, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_range(lo: u64, hi: u64, step: u64) {
        let mut buf = [0.0f32; 4096];
        let mut out = [0.0f32; 4096];
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
                let want = libm::tanhf(buf[k]);
                let got = out[k];
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "tanh({:e} = {:#010x}): {:#010x} vs libm {:#010x}",
                    buf[k],
                    buf[k].to_bits(),
                    got.to_bits(),
                    want.to_bits()
                );
            }
        }
    }

    #[test]
    fn tanh_matches_libm_on_a_sample() {
        // Every 997th bit pattern, plus every pattern around the branch thresholds.
        check_range(0, 1 << 32, 997);
        for t in [
            0x3f0c_9f54u64,
            0x3e82_c578,
            0x0080_0000,
            0x4120_0000,
            0x3eb1_7218,
            0x3f85_1592,
        ] {
            for s in [0u64, 0x8000_0000] {
                check_range((t | s) - 5000, (t | s) + 5000, 1);
            }
        }
        // And what a network computes: pre-activations of moderate size.
        let mut x = -12.0f32;
        let mut out = [0.0f32; 3];
        while x < 12.0 {
            let buf = [x, x * 0.001, -x];
            tanh_slice(&buf, &mut out);
            for k in 0..3 {
                assert_eq!(out[k].to_bits(), libm::tanhf(buf[k]).to_bits());
            }
            x += 0.000_37;
        }
    }

    /// All 2^32 inputs (about a minute in release mode on one core).
    #[test]
    #[ignore]
    fn tanh_matches_libm_everywhere() {
        check_range(0, 1 << 32, 1);
    }
}
