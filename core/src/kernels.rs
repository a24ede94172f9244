//! Register-tiled matrix kernels of the tile passes, in the canonical summation order.
//!
//! Every kernel computes a block of *independent* accumulators at once and feeds each of them
//! its terms in exactly the order of [`crate::mlp`]'s rules, starting from `+0.0` (or from the
//! running sum in memory for the parameter phase), with each term formed by the same operations
//! on the same operands as the plain loops would use. The blocks only change which accumulators
//! are updated together; no reduction is ever split or reassociated. So the results are the
//! bits of the plain loops, and the compiler may keep a block in vector registers: the lanes of
//! a vector are different accumulators, never parts of one sum.
//!
//! | kernel | accumulators of a block | lanes (contiguous) | reduction index (in order) |
//! |---|---|---|---|
//! | [`forward`] `z = W a` | `R_F` outputs x `C` samples | samples (of `a^T`) | inputs `j` |
//! | [`forward_t`] `z = W a`, packed | `R_T` samples x `C` outputs | outputs (panels of `W^T`) | inputs `j` |
//! | [`r_forward`] `V a + W R(a)` | `R_F` outputs x `C` samples | samples | inputs `j` |
//! | [`r_forward_t`] packed | `R_RT` samples x `C` outputs | outputs | inputs `j` |
//! | [`backward`] `W^T delta` | `R_B` samples x `C` inputs | inputs (rows of `W`) | outputs `o` |
//! | [`r_backward`] fused | `R_RB` samples x `C` inputs, twice | inputs | outputs `o` |
//! | [`accumulate`] `g += delta a^T` | `R_P` (`R_PH` for the R-gradient) rows x `C` columns | columns `j` | samples `i` |
//!
//! `C` is [`LW`] (32 on x86, 16 on AArch64, 4 on the microcontrollers), then [`LN`] and [`LQ`]
//! (half and a quarter of it), then 1 for the remainder. The forward passes read the activations
//! transposed (`a^T`, inputs by samples), which the tile pass writes into a free slot of the
//! workspace, so that the inner loop over samples is contiguous; every other operand is used in
//! the workspace's sample-major layout or the parameters' row-major layout.
//!
//! Every accumulation is a fused multiply-add, `acc = fma(w, x, acc)`: the product is not rounded
//! on its own, only the sum (one IEEE 754 `fusedMultiplyAdd`, round to nearest even). A two-term
//! step (`V a + W R(a)`) is two of them in the order of the rule, `fma(w, ra, fma(v, a, acc))`. The
//! multiply-add comes from the instance's [`Isa`] (see there and ARCHITECTURE.md): it is correctly
//! rounded on every target, so every target computes the same bits.
//!
//! Everything is `#[inline(always)]` so that a host may compile the passes for a wider
//! instruction set by calling them from a function with more target features enabled (the
//! host's engine does this for AVX2+FMA and AVX-512); the operations, hence the bits, are the
//! same.

// The register blocks are indexed loops over fixed-size arrays on purpose (`acc[r][c]`).
#![allow(clippy::needless_range_loop)]

/// What an instance of the kernels is compiled with: its multiply-add and its block shape.
///
/// The passes ([`crate::Arch`]'s `tile_*` methods) take it as a type parameter, so that a host
/// can supply a multiply-add that its compiler turns into the CPU's vector FMA instruction (core
/// cannot: `f32::mul_add` is not in `core`). Only speed may depend on the choice: every
/// implementation must return the correctly rounded `a * b + c`, as [`libm::fmaf`] does.
pub trait Isa {
    /// `a * b + c` rounded once to nearest, ties to even (IEEE 754 `fusedMultiplyAdd`).
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
    /// Blocks of fewer rows (each kernel's `_N` count: half or a quarter) for CPUs with half
    /// the vector registers the block shapes are sized for, so that a block still fits in
    /// registers: on x86, where the wide lane width is 32 (two AVX-512 registers, four AVX2
    /// ones), the AVX2 and baseline instances. A block only decides which accumulators are
    /// updated together, so this changes no bit.
    const HALF_ROWS: bool = false;
}

/// The multiply-add of core's own API ([`crate::Arch::loss_grad`], [`crate::MlpObjective`], the
/// firmware): [`libm::fmaf`] (the CPU's FMA instruction where `libm` detects one at run time, a
/// correctly rounded software one elsewhere), or with the `arm-vfma` feature on a hard-float Arm
/// target the `vfma.f32` instruction of the FPv4/FPv5 units (Cortex-M4F, M7, M33), which rounds
/// identically.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl Isa for Portable {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        crate::math::fma(a, b, c)
    }
}

// Rows per block. Each kernel's block is `R x C` accumulators (`C` lanes, see [`LW`]), and each
// has a second, `_N` row count for instances with [`Isa::HALF_ROWS`]. The two-term kernels
// (R-forward, R-backward, the R-gradient) chain two multiply-adds per accumulator and step, so
// they want twice the accumulators to hide the latency where the registers allow it (x86:
// 32 AVX-512 registers of 16 lanes).

/// Output rows per block of the forward kernels.
const R_F: usize = 4;
const R_F_N: usize = 2;
/// Sample rows per block of the packed forward kernel.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const R_T: usize = 8;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const R_T: usize = 4;
const R_T_N: usize = 2;
/// Sample rows per block of the packed R-forward kernel (two operands per step).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const R_RT: usize = 8;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const R_RT: usize = 4;
const R_RT_N: usize = 2;
/// Sample rows per block of the backward kernel.
const R_B: usize = 4;
const R_B_N: usize = 2;
/// Sample rows per block of the fused R-backward kernel (two accumulator sets).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const R_RB: usize = 4;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const R_RB: usize = 2;
const R_RB_N: usize = 2;
/// Parameter rows per block of the parameter phase.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const R_P: usize = 8;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const R_P: usize = 4;
const R_P_N: usize = 2;
/// Parameter rows per block of the R-gradient's two-term phase (two operands per column).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const R_PH: usize = 4;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const R_PH: usize = 2;
const R_PH_N: usize = 2;
/// Columns per block of the parameter phase's cache blocking: `a[.., j0..j0 + J_P]` of a
/// whole tile stays in the L1 cache while every row's accumulators pass over it.
const J_P: usize = 64;

/// The lane widths of the blocks (the columns `C` of the table above): a range is cut into
/// blocks of [`LW`] lanes, then at most one of [`LN`], one of [`LQ`], then single lanes, and
/// the panel layouts ([`pack_panels`], [`panelize`]) are cut the same way. On x86, 32, 16 and
/// 8: two AVX-512 registers per block row (four AVX2 ones, whose instances use blocks of half
/// the rows, [`Isa::HALF_ROWS`]), so that an AVX-512 block has the 8 independent accumulators
/// that keep two FMA units of four cycles' latency busy. On AArch64 16, 8, 4. On the
/// microcontrollers (scalar single-precision FPU, 32 registers on the Cortex-M4F, or none at
/// all), 4, 2 and 1, so that a whole block of accumulators (`R x C` = 16) stays in registers
/// instead of spilling to the stack. Only the speed depends on this choice: a block only
/// decides which independent accumulators are updated together, so every target computes the
/// same bits (the conformance goldens check it on the QEMU targets).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const LW: usize = 32;
/// The second lane width (see [`LW`]).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const LN: usize = 16;
/// The third lane width (see [`LW`]).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const LQ: usize = 8;
#[cfg(target_arch = "aarch64")]
const LW: usize = 16;
#[cfg(target_arch = "aarch64")]
const LN: usize = 8;
#[cfg(target_arch = "aarch64")]
const LQ: usize = 4;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
const LW: usize = 4;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
const LN: usize = 2;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
const LQ: usize = 1;

/// The width of the block (and panel) starting at `s0` of a range ending at `hi`: the cut of
/// [`LW`] (repeated), [`LN`], [`LQ`], 1 (repeated).
#[inline(always)]
const fn cut(s0: usize, hi: usize) -> usize {
    if s0 + LW <= hi {
        LW
    } else if s0 + LN <= hi {
        LN
    } else if s0 + LQ <= hi {
        LQ
    } else {
        1
    }
}

/// Whether the packed weight panels of a layer end in one zero-padded panel instead of single
/// output columns (see [`panel_width`]): on CPUs with vector units, where a padded vector costs
/// no more than one lane, not on the microcontrollers (`LQ == 1`: every cut is exact there).
const PAD: bool = LQ > 1;

/// The width of the packed weight panel (and of the packed forward kernels' block) starting at
/// output `s0` of a layer with `hi` outputs: [`LW`] while a whole one fits, then, with [`PAD`],
/// one last panel of the smallest lane width holding the remaining outputs (10 outputs: one
/// panel of 16 lanes, 6 of them zero; 200: six of 32 and one of 8), else the cut of [`cut`].
/// The padded lanes hold zero weights and their sums are never stored, so the padding changes
/// no bit of the outputs: it only saves the single-lane blocks of a narrow last layer.
#[inline(always)]
const fn panel_width(s0: usize, hi: usize) -> usize {
    if s0 + LW <= hi || !PAD {
        return cut(s0, hi);
    }
    let rem = hi - s0;
    if rem <= LQ {
        LQ
    } else if rem <= LN {
        LN
    } else {
        LW
    }
}

/// The number of outputs of a layer with `fo` outputs in its packed panels, padding included
/// ([`panel_width`]): `fan_in` times it is the layer's share of [`crate::Arch::packed_len`].
pub(crate) const fn padded_outputs(fo: usize) -> usize {
    let mut o0 = 0;
    while o0 < fo {
        o0 += panel_width(o0, fo);
    }
    o0
}

/// Calls `$body` with the panel widths of [`panel_width`] over the outputs `0..$hi` and the
/// number of real (not padded) outputs of the panel.
macro_rules! panels {
    ($hi:expr, |$c:ident, $s:ident, $real:ident| $body:block) => {{
        let hi = $hi;
        let mut s0 = 0;
        while s0 < hi {
            let w = panel_width(s0, hi);
            let $s = s0;
            let $real = w.min(hi - s0);
            // `w` is one of the three widths: with `PAD` the last panel is padded to one, and
            // without it (`LQ == 1`) `cut`'s single columns are `LQ`.
            if w == LW {
                const $c: usize = LW;
                $body
            } else if w == LN {
                const $c: usize = LN;
                $body
            } else {
                const $c: usize = LQ;
                $body
            }
            s0 += w;
        }
    }};
}

/// Calls `$body` with the lane widths [`LW`], [`LN`], [`LQ`] and 1 over `$lo..$hi`, cut as
/// [`cut`] cuts them.
macro_rules! lanes {
    ($lo:expr, $hi:expr, |$c:ident, $s:ident| $body:block) => {{
        let hi = $hi;
        let mut s0 = $lo;
        while s0 + LW <= hi {
            {
                const $c: usize = LW;
                let $s = s0;
                $body
            }
            s0 += LW;
        }
        if s0 + LN <= hi {
            {
                const $c: usize = LN;
                let $s = s0;
                $body
            }
            s0 += LN;
        }
        if LQ > 1 && s0 + LQ <= hi {
            {
                const $c: usize = LQ;
                let $s = s0;
                $body
            }
            s0 += LQ;
        }
        while s0 < hi {
            {
                const $c: usize = 1;
                let $s = s0;
                $body
            }
            s0 += 1;
        }
    }};
}

/// Whether [`rows!`] cuts a remainder into halves and quarters of the block height before single
/// rows (on CPUs with vector units; the microcontrollers keep fewer block shapes in flash).
const HALVES: bool = LQ > 1;

/// Half of a block height of at least 4, else 1 (no half block).
const fn half(r: usize) -> usize {
    if r >= 4 {
        r / 2
    } else {
        1
    }
}

/// Calls `$body` with the row count `$r` (`$rn` if the instance has [`Isa::HALF_ROWS`]), then for
/// the remainder at most one block of half and one of a quarter of it (with [`HALVES`]), then 1,
/// over `$lo..$hi`.
macro_rules! rows {
    ($k:ty, $r:expr, $rn:expr, $lo:expr, $hi:expr, |$rr:ident, $s:ident| $body:block) => {{
        if <$k as Isa>::HALF_ROWS {
            rows!(@ $rn, $lo, $hi, |$rr, $s| $body)
        } else {
            rows!(@ $r, $lo, $hi, |$rr, $s| $body)
        }
    }};
    (@ $r:expr, $lo:expr, $hi:expr, |$rr:ident, $s:ident| $body:block) => {{
        let hi = $hi;
        let mut s0 = $lo;
        while s0 + $r <= hi {
            {
                const $rr: usize = $r;
                let $s = s0;
                $body
            }
            s0 += $r;
        }
        // The remainder in blocks of half and a quarter of the rows first (where there are
        // vector units): a one-row block has too few independent accumulators to hide the
        // multiply-add latency.
        if HALVES && half($r) > 1 && s0 + half($r) <= hi {
            {
                const $rr: usize = half($r);
                let $s = s0;
                $body
            }
            s0 += half($r);
        }
        if HALVES && half(half($r)) > 1 && s0 + half(half($r)) <= hi {
            {
                const $rr: usize = half(half($r));
                let $s = s0;
                $body
            }
            s0 += half(half($r));
        }
        while s0 < hi {
            {
                const $rr: usize = 1;
                let $s = s0;
                $body
            }
            s0 += 1;
        }
    }};
}

/// Runs `$body` for `r = 0, 1, ..., R - 1` (`R <= 8`) as straight-line code: each copy is guarded
/// by a condition on the constant `R`, so no loop over the rows is left for the optimizer to
/// decide whether to unroll. (Left as a loop, the two-term blocks of 4 rows x 32 lanes exceed
/// LLVM's full-unroll threshold, their accumulators stay in memory and nothing is vectorised.)
macro_rules! each_row {
    ($n:expr, |$r:ident| $body:block) => {{
        if 0 < $n {
            let $r = 0;
            $body
        }
        if 1 < $n {
            let $r = 1;
            $body
        }
        if 2 < $n {
            let $r = 2;
            $body
        }
        if 3 < $n {
            let $r = 3;
            $body
        }
        if 4 < $n {
            let $r = 4;
            $body
        }
        if 5 < $n {
            let $r = 5;
            $body
        }
        if 6 < $n {
            let $r = 6;
            $body
        }
        if 7 < $n {
            let $r = 7;
            $body
        }
        debug_assert!($n <= 8);
    }};
}

/// The `j`-th elements of the first four `rows`, for `j` in order: the rows zipped, so the inner
/// loops that use it need no per-element bounds checks (with indexing, the compiler keeps the
/// checks and reloads the other operand's panel for every row; zipped, the 4 x 16 forward
/// micro-kernel and the passes built like it run about 20% faster at M and L, same bits).
/// Only for `R >= 4`: the `k % R` indices only let the other instantiations compile. The
/// two-term blocks zip one operand's rows with the panel and take the other's with `next`:
/// zipped together as well, the nested iterator's `next` grew too large for the compiler to
/// inline into the largest passes (it was called for every input, with the block's
/// accumulators in memory).
#[inline(always)]
fn zip4<'a, const R: usize>(rows: &[&'a [f32]; R]) -> impl Iterator<Item = [f32; 4]> + 'a {
    let (a, b, c, d) = (rows[0], rows[1 % R], rows[2 % R], rows[3 % R]);
    a.iter()
        .zip(b)
        .zip(c.iter().zip(d))
        .map(|((&a, &b), (&c, &d))| [a, b, c, d])
}

/// [`zip4`] for two rows (`R >= 2`).
#[inline(always)]
fn zip2<'a, const R: usize>(rows: &[&'a [f32]; R]) -> impl Iterator<Item = [f32; 2]> + 'a {
    let (a, b) = (rows[0], rows[1 % R]);
    a.iter().zip(b).map(|(&a, &b)| [a, b])
}

/// [`zip4`] for eight rows (`R >= 8`): two [`zip4`]s zipped.
#[inline(always)]
fn zip8<'a, const R: usize>(rows: &[&'a [f32]; R]) -> impl Iterator<Item = [f32; 8]> + 'a {
    let lo: [&[f32]; 4] = [rows[0], rows[1 % R], rows[2 % R], rows[3 % R]];
    let hi: [&[f32]; 4] = [rows[4 % R], rows[5 % R], rows[6 % R], rows[7 % R]];
    zip4(&lo)
        .zip(zip4(&hi))
        .map(|(a, b)| [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
}

/// [`zip4`] for one row.
#[inline(always)]
fn zip1<'a, const R: usize>(rows: &[&'a [f32]; R]) -> impl Iterator<Item = [f32; 1]> + 'a {
    rows[0].iter().map(|&a| [a])
}

/// `&s[k * stride..]` for `k = 0, 1, ..., count - 1` (empty once past the end): the rows of a
/// strided operand without the division by the run-time stride with which a zipped
/// `chunks(stride)` sizes itself, once per block (BENCHMARKS.md, "Evening version").
#[inline(always)]
fn strided(s: &[f32], stride: usize, count: usize) -> impl Iterator<Item = &[f32]> {
    (0..count).map(move |k| s.get(k * stride..).unwrap_or(&[]))
}

#[inline(always)]
fn arr<const N: usize>(s: &[f32]) -> &[f32; N] {
    match s.first_chunk::<N>() {
        Some(a) => a,
        None => unreachable_len(),
    }
}

#[cold]
#[inline(never)]
fn unreachable_len() -> ! {
    panic!("kernel block outside its buffer")
}

/// `at[j * ld + i] = a[i * k + j]` for `i < n`, `j < k` (blocked so that both sides stay in
/// cache).
#[inline(always)]
pub(crate) fn transpose(a: &[f32], n: usize, k: usize, at: &mut [f32], ld: usize) {
    const JB: usize = 32;
    let mut j0 = 0;
    while j0 < k {
        let j1 = (j0 + JB).min(k);
        for i in 0..n {
            let row = &a[i * k + j0..i * k + j1];
            for (jj, &x) in row.iter().enumerate() {
                at[(j0 + jj) * ld + i] = x;
            }
        }
        j0 = j1;
    }
}

/// One block of [`forward`]: outputs `o0..o0 + R`, samples `i0..i0 + C`.
#[inline(always)]
fn forward_block<K: Isa, const R: usize, const C: usize>(
    w: &[f32],
    b: &[f32],
    fi: usize,
    fo: usize,
    at: &[f32],
    ld: usize,
    o0: usize,
    i0: usize,
    z: &mut [f32],
) {
    let rows: [&[f32]; R] = core::array::from_fn(|r| &w[(o0 + r) * fi..][..fi]);
    let mut acc = [[0.0f32; C]; R];
    if R == 4 {
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip4(&rows)) {
            let x: &[f32; C] = arr(xs);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], x[c], acc[r][c]);
                }
            });
        }
    } else if R == 2 {
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip2(&rows)) {
            let x: &[f32; C] = arr(xs);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], x[c], acc[r][c]);
                }
            });
        }
    } else if R == 1 {
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip1(&rows)) {
            let x: &[f32; C] = arr(xs);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], x[c], acc[r][c]);
                }
            });
        }
    } else {
        for (j, xs) in (0..fi).zip(strided(&at[i0..], ld, fi)) {
            let x: &[f32; C] = arr(xs);
            each_row!(R, |r| {
                let wv = rows[r][j];
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv, x[c], acc[r][c]);
                }
            });
        }
    }
    each_row!(R, |r| {
        let bo = b[o0 + r];
        for c in 0..C {
            z[(i0 + c) * fo + o0 + r] = acc[r][c] + bo;
        }
    });
}

/// Packs a weight matrix `w` (`fo` rows of `fi`) for [`forward_t`]: the outputs are cut into
/// panels as [`panel_width`] cuts them (`LW`, ..., `LW`, then one zero-padded panel on CPUs
/// with vector units, or `LN`, `LQ`, 1s on the microcontrollers), and the panel of outputs
/// `o0..o0 + c` is stored at `o0 * fi` as `[j][c]`: `wt[o0 * fi + j * c + k] = w[(o0 + k) * fi + j]`
/// (`0.0` for the padded `o0 + k >= fo`), so that the kernel reads it contiguously. `wt` holds
/// `fi * padded_outputs(fo)` values.
pub(crate) fn pack_panels(w: &[f32], fi: usize, fo: usize, wt: &mut [f32]) {
    let mut o0 = 0;
    while o0 < fo {
        let c = panel_width(o0, fo);
        let real = c.min(fo - o0);
        let panel = &mut wt[o0 * fi..(o0 + c) * fi];
        for k in 0..c {
            if k < real {
                let row = &w[(o0 + k) * fi..(o0 + k + 1) * fi];
                for (j, &x) in row.iter().enumerate() {
                    panel[j * c + k] = x;
                }
            } else {
                for j in 0..fi {
                    panel[j * c + k] = 0.0;
                }
            }
        }
        o0 += c;
    }
}

/// Forward: `z[i * fo + o] = (sum_j w[o * fi + j] * at[j * ld + i]) + b[o]` for `i < n`,
/// `o < fo`; the sum from `+0.0` in ascending `j`, each term `w * a`.
#[inline(always)]
pub(crate) fn forward<K: Isa>(
    w: &[f32],
    b: &[f32],
    fi: usize,
    fo: usize,
    at: &[f32],
    ld: usize,
    n: usize,
    z: &mut [f32],
) {
    let at = &at[..fi * ld];
    lanes!(0, n, |C, i0| {
        rows!(K, R_F, R_F_N, 0, fo, |R, o0| {
            forward_block::<K, R, C>(w, b, fi, fo, at, ld, o0, i0, z);
        });
    });
}

/// Inputs per block of the packed forward kernels' cache blocking: a block's partial sums go to
/// `z` between input blocks (an f32 store and load are exact, so the sum is unchanged).
const J_T: usize = 512;

/// One block of [`forward_t`]: samples `i0..i0 + R`, outputs `o0..o0 + C`, inputs `j0..j1`.
#[inline(always)]
fn forward_t_block<K: Isa, const R: usize, const C: usize>(
    wt: &[f32],
    b: &[f32],
    fi: usize,
    fo: usize,
    a: &[f32],
    i0: usize,
    (o0, real): (usize, usize),
    j0: usize,
    j1: usize,
    z: &mut [f32],
) {
    let len = j1 - j0;
    let rows: [&[f32]; R] = core::array::from_fn(|r| &a[(i0 + r) * fi + j0..][..len]);
    let panel = &wt[o0 * fi + j0 * C..];
    let mut acc = [[0.0f32; C]; R];
    if j0 > 0 {
        load_rows::<R, C>(&mut acc, z, fo, i0, o0, real);
    }
    if R == 8 {
        for (wv, av) in panel.chunks_exact(C).zip(zip8(&rows)) {
            let wv: &[f32; C] = arr(wv);
            each_row!(8, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], av[r], acc[r][c]);
                }
            });
        }
    } else if R == 4 {
        for (wv, av) in panel.chunks_exact(C).zip(zip4(&rows)) {
            let wv: &[f32; C] = arr(wv);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], av[r], acc[r][c]);
                }
            });
        }
    } else if R == 2 {
        for (wv, av) in panel.chunks_exact(C).zip(zip2(&rows)) {
            let wv: &[f32; C] = arr(wv);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], av[r], acc[r][c]);
                }
            });
        }
    } else if R == 1 {
        for (wv, av) in panel.chunks_exact(C).zip(zip1(&rows)) {
            let wv: &[f32; C] = arr(wv);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], av[r], acc[r][c]);
                }
            });
        }
    } else {
        for (j, wv) in (0..len).zip(panel.chunks_exact(C)) {
            let wv: &[f32; C] = arr(wv);
            each_row!(R, |r| {
                let av = rows[r][j];
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], av, acc[r][c]);
                }
            });
        }
    }
    if j1 == fi {
        let bo = lanes_of::<C>(b, o0, real);
        each_row!(R, |r| {
            for c in 0..C {
                acc[r][c] += bo[c];
            }
        });
    }
    store_rows::<R, C>(&acc, z, fo, i0, o0, real);
}

/// `acc[r] = z[(i0 + r) * fo + o0..][..C]` for the rows of a packed forward block, of which only
/// the first `real` lanes exist in `z` (a zero-padded panel, [`panel_width`]; the rest are left
/// as they are).
#[inline(always)]
fn load_rows<const R: usize, const C: usize>(
    acc: &mut [[f32; C]; R],
    z: &[f32],
    fo: usize,
    i0: usize,
    o0: usize,
    real: usize,
) {
    if real == C {
        each_row!(R, |r| {
            acc[r] = *arr(&z[(i0 + r) * fo + o0..]);
        });
    } else {
        // Through a copy, so that `acc` is only ever indexed by constants and stays in
        // registers.
        each_row!(R, |r| {
            let mut t = [0.0f32; C];
            t[..real].copy_from_slice(&z[(i0 + r) * fo + o0..][..real]);
            acc[r] = t;
        });
    }
}

/// `z[(i0 + r) * fo + o0..][..real] = acc[r][..real]`: the real lanes of a packed forward block.
#[inline(always)]
fn store_rows<const R: usize, const C: usize>(
    acc: &[[f32; C]; R],
    z: &mut [f32],
    fo: usize,
    i0: usize,
    o0: usize,
    real: usize,
) {
    if real == C {
        each_row!(R, |r| {
            *arr_mut::<C>(&mut z[(i0 + r) * fo + o0..]) = acc[r];
        });
    } else {
        each_row!(R, |r| {
            let t = acc[r];
            z[(i0 + r) * fo + o0..][..real].copy_from_slice(&t[..real]);
        });
    }
}

/// `b[o0..o0 + real]` in `C` lanes, zero beyond `real`.
#[inline(always)]
fn lanes_of<const C: usize>(b: &[f32], o0: usize, real: usize) -> [f32; C] {
    if real == C {
        *arr(&b[o0..])
    } else {
        let mut v = [0.0f32; C];
        v[..real].copy_from_slice(&b[o0..o0 + real]);
        v
    }
}

/// Forward with the weights packed in panels by [`pack_panels`]:
/// `z[i * fo + o] = (sum_j w[o][j] * a[i * fi + j]) + b[o]` for `i < n`, the same sums as
/// [`forward`], with the lanes over outputs and the activations in their sample-major layout.
#[inline(always)]
pub(crate) fn forward_t<K: Isa>(
    wt: &[f32],
    b: &[f32],
    fi: usize,
    fo: usize,
    a: &[f32],
    n: usize,
    z: &mut [f32],
) {
    let wt = &wt[..fi * padded_outputs(fo)];
    let mut j0 = 0;
    while j0 < fi {
        let j1 = (j0 + J_T).min(fi);
        panels!(fo, |C, o0, real| {
            rows!(K, R_T, R_T_N, 0, n, |R, i0| {
                forward_t_block::<K, R, C>(wt, b, fi, fo, a, i0, (o0, real), j0, j1, z);
            });
        });
        j0 = j1;
    }
}

/// One block of [`r_forward_t`] (not the first layer).
#[inline(always)]
fn r_forward_t_block<K: Isa, const R: usize, const C: usize>(
    wt: &[f32],
    vt: &[f32],
    vb: &[f32],
    fi: usize,
    fo: usize,
    a: &[f32],
    ra: &[f32],
    i0: usize,
    (o0, real): (usize, usize),
    j0: usize,
    j1: usize,
    rz: &mut [f32],
) {
    let len = j1 - j0;
    let rows: [&[f32]; R] = core::array::from_fn(|r| &a[(i0 + r) * fi + j0..][..len]);
    let rrows: [&[f32]; R] = core::array::from_fn(|r| &ra[(i0 + r) * fi + j0..][..len]);
    let wpanel = &wt[o0 * fi + j0 * C..];
    let vpanel = &vt[o0 * fi + j0 * C..];
    let mut acc = [[0.0f32; C]; R];
    if j0 > 0 {
        load_rows::<R, C>(&mut acc, rz, fo, i0, o0, real);
    }
    if R == 8 {
        let (mut vp, mut rr) = (vpanel.chunks_exact(C), zip8(&rrows));
        for (wv, av) in wpanel.chunks_exact(C).zip(zip8(&rows)) {
            let (Some(vv), Some(rav)) = (vp.next(), rr.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(wv);
            let vv: &[f32; C] = arr(vv);
            each_row!(8, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], rav[r], K::mul_add(vv[c], av[r], acc[r][c]));
                }
            });
        }
    } else if R == 4 {
        let (mut vp, mut rr) = (vpanel.chunks_exact(C), zip4(&rrows));
        for (wv, av) in wpanel.chunks_exact(C).zip(zip4(&rows)) {
            let (Some(vv), Some(rav)) = (vp.next(), rr.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(wv);
            let vv: &[f32; C] = arr(vv);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], rav[r], K::mul_add(vv[c], av[r], acc[r][c]));
                }
            });
        }
    } else if R == 2 {
        let (mut vp, mut rr) = (vpanel.chunks_exact(C), zip2(&rrows));
        for (wv, av) in wpanel.chunks_exact(C).zip(zip2(&rows)) {
            let (Some(vv), Some(rav)) = (vp.next(), rr.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(wv);
            let vv: &[f32; C] = arr(vv);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], rav[r], K::mul_add(vv[c], av[r], acc[r][c]));
                }
            });
        }
    } else if R == 1 {
        let (mut vp, mut rr) = (vpanel.chunks_exact(C), zip1(&rrows));
        for (wv, av) in wpanel.chunks_exact(C).zip(zip1(&rows)) {
            let (Some(vv), Some(rav)) = (vp.next(), rr.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(wv);
            let vv: &[f32; C] = arr(vv);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], rav[r], K::mul_add(vv[c], av[r], acc[r][c]));
                }
            });
        }
    } else {
        for ((j, wv), vv) in (0..len)
            .zip(wpanel.chunks_exact(C))
            .zip(vpanel.chunks_exact(C))
        {
            let wv: &[f32; C] = arr(wv);
            let vv: &[f32; C] = arr(vv);
            each_row!(R, |r| {
                let (av, rav) = (rows[r][j], rrows[r][j]);
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], rav, K::mul_add(vv[c], av, acc[r][c]));
                }
            });
        }
    }
    if j1 == fi {
        let bo = lanes_of::<C>(vb, o0, real);
        each_row!(R, |r| {
            for c in 0..C {
                acc[r][c] += bo[c];
            }
        });
    }
    store_rows::<R, C>(&acc, rz, fo, i0, o0, real);
}

/// R-forward with transposed weights and direction (`wt`, `vt`): the sums of [`r_forward`],
/// lanes over outputs; `ra = None` on the first layer.
#[inline(always)]
pub(crate) fn r_forward_t<K: Isa>(
    wt: &[f32],
    vt: &[f32],
    vb: &[f32],
    fi: usize,
    fo: usize,
    a: &[f32],
    ra: Option<&[f32]>,
    n: usize,
    rz: &mut [f32],
) {
    match ra {
        None => forward_t::<K>(vt, vb, fi, fo, a, n, rz),
        Some(ra) => {
            let len = fi * padded_outputs(fo);
            let (wt, vt) = (&wt[..len], &vt[..len]);
            let mut j0 = 0;
            while j0 < fi {
                let j1 = (j0 + J_T).min(fi);
                panels!(fo, |C, o0, real| {
                    rows!(K, R_RT, R_RT_N, 0, n, |R, i0| {
                        let o = (o0, real);
                        r_forward_t_block::<K, R, C>(wt, vt, vb, fi, fo, a, ra, i0, o, j0, j1, rz);
                    });
                });
                j0 = j1;
            }
        }
    }
}

/// One block of [`r_forward`] (not the first layer).
#[inline(always)]
fn r_forward_block<K: Isa, const R: usize, const C: usize>(
    w: &[f32],
    v: &[f32],
    vb: &[f32],
    fi: usize,
    fo: usize,
    at: &[f32],
    rat: &[f32],
    ld: usize,
    o0: usize,
    i0: usize,
    rz: &mut [f32],
) {
    let wr: [&[f32]; R] = core::array::from_fn(|r| &w[(o0 + r) * fi..][..fi]);
    let vr: [&[f32]; R] = core::array::from_fn(|r| &v[(o0 + r) * fi..][..fi]);
    let mut acc = [[0.0f32; C]; R];
    if R == 4 {
        let (mut rxi, mut vri) = (strided(&rat[i0..], ld, fi), zip4(&vr));
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip4(&wr)) {
            let (Some(rxs), Some(vv)) = (rxi.next(), vri.next()) else {
                break;
            };
            let x: &[f32; C] = arr(xs);
            let rx: &[f32; C] = arr(rxs);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], rx[c], K::mul_add(vv[r], x[c], acc[r][c]));
                }
            });
        }
    } else if R == 2 {
        let (mut rxi, mut vri) = (strided(&rat[i0..], ld, fi), zip2(&vr));
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip2(&wr)) {
            let (Some(rxs), Some(vv)) = (rxi.next(), vri.next()) else {
                break;
            };
            let x: &[f32; C] = arr(xs);
            let rx: &[f32; C] = arr(rxs);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], rx[c], K::mul_add(vv[r], x[c], acc[r][c]));
                }
            });
        }
    } else if R == 1 {
        let (mut rxi, mut vri) = (strided(&rat[i0..], ld, fi), zip1(&vr));
        for (xs, wv) in strided(&at[i0..], ld, fi).zip(zip1(&wr)) {
            let (Some(rxs), Some(vv)) = (rxi.next(), vri.next()) else {
                break;
            };
            let x: &[f32; C] = arr(xs);
            let rx: &[f32; C] = arr(rxs);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[r], rx[c], K::mul_add(vv[r], x[c], acc[r][c]));
                }
            });
        }
    } else {
        for ((j, xs), rxs) in
            (0..fi)
                .zip(strided(&at[i0..], ld, fi))
                .zip(strided(&rat[i0..], ld, fi))
        {
            let x: &[f32; C] = arr(xs);
            let rx: &[f32; C] = arr(rxs);
            each_row!(R, |r| {
                let (vv, wv) = (vr[r][j], wr[r][j]);
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv, rx[c], K::mul_add(vv, x[c], acc[r][c]));
                }
            });
        }
    }
    each_row!(R, |r| {
        let bo = vb[o0 + r];
        for c in 0..C {
            rz[(i0 + c) * fo + o0 + r] = acc[r][c] + bo;
        }
    });
}

/// R-forward: `rz[i * fo + o] = (sum_j (v[o][j] * a[i][j] + w[o][j] * ra[i][j])) + vb[o]`,
/// each pair rounded and added as one term; on the first layer (`rat = None`) the term is
/// `v[o][j] * a[i][j]` alone. `at`, `rat` are transposed (`[j * ld + i]`).
#[inline(always)]
pub(crate) fn r_forward<K: Isa>(
    w: &[f32],
    v: &[f32],
    vb: &[f32],
    fi: usize,
    fo: usize,
    at: &[f32],
    rat: Option<&[f32]>,
    ld: usize,
    n: usize,
    rz: &mut [f32],
) {
    let at = &at[..fi * ld];
    match rat {
        None => forward::<K>(v, vb, fi, fo, at, ld, n, rz),
        Some(rat) => {
            let rat = &rat[..fi * ld];
            lanes!(0, n, |C, i0| {
                rows!(K, R_F, R_F_N, 0, fo, |R, o0| {
                    r_forward_block::<K, R, C>(w, v, vb, fi, fo, at, rat, ld, o0, i0, rz);
                });
            });
        }
    }
}

/// One block of [`backward`]: samples `i0..i0 + R`, inputs `j0..j0 + C`.
#[inline(always)]
fn backward_block<K: Isa, const R: usize, const C: usize>(
    w: &[f32],
    fi: usize,
    fo: usize,
    dout: &[f32],
    i0: usize,
    j0: usize,
    din: &mut [f32],
) {
    let d: [&[f32]; R] = core::array::from_fn(|r| &dout[(i0 + r) * fo..][..fo]);
    let mut acc = [[0.0f32; C]; R];
    if R == 4 {
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip4(&d)) {
            let wv: &[f32; C] = arr(ws);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                }
            });
        }
    } else if R == 2 {
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip2(&d)) {
            let wv: &[f32; C] = arr(ws);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                }
            });
        }
    } else if R == 1 {
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip1(&d)) {
            let wv: &[f32; C] = arr(ws);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                }
            });
        }
    } else {
        for (o, ws) in (0..fo).zip(strided(&w[j0..], fi, fo)) {
            let wv: &[f32; C] = arr(ws);
            each_row!(R, |r| {
                let dv = d[r][o];
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv, acc[r][c]);
                }
            });
        }
    }
    each_row!(R, |r| {
        *arr_mut::<C>(&mut din[(i0 + r) * fi + j0..]) = acc[r];
    });
}

/// Backward: `din[i * fi + j] = sum_o w[o * fi + j] * dout[i * fo + o]` for `i < n`, `j < fi`,
/// from `+0.0` in ascending `o`, each term `w * delta`.
#[inline(always)]
pub(crate) fn backward<K: Isa>(
    w: &[f32],
    fi: usize,
    fo: usize,
    dout: &[f32],
    n: usize,
    din: &mut [f32],
) {
    // Columns outer, samples inner: a column block of `w` (`fo` x `C`) stays in the L1 cache
    // while every sample block passes over it.
    lanes!(0, fi, |C, j0| {
        rows!(K, R_B, R_B_N, 0, n, |R, i0| {
            backward_block::<K, R, C>(w, fi, fo, dout, i0, j0, din);
        });
    });
}

/// One block of [`r_backward`].
#[inline(always)]
fn r_backward_block<K: Isa, const R: usize, const C: usize>(
    w: &[f32],
    v: &[f32],
    fi: usize,
    fo: usize,
    dout: &[f32],
    rdout: &[f32],
    i0: usize,
    j0: usize,
    din: &mut [f32],
    rdin: &mut [f32],
) {
    let d: [&[f32]; R] = core::array::from_fn(|r| &dout[(i0 + r) * fo..][..fo]);
    let rd: [&[f32]; R] = core::array::from_fn(|r| &rdout[(i0 + r) * fo..][..fo]);
    let mut acc = [[0.0f32; C]; R];
    let mut racc = [[0.0f32; C]; R];
    if R == 4 {
        let (mut vsi, mut rdi) = (strided(&v[j0..], fi, fo), zip4(&rd));
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip4(&d)) {
            let (Some(vs), Some(rv)) = (vsi.next(), rdi.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(ws);
            let vv: &[f32; C] = arr(vs);
            each_row!(4, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                    racc[r][c] = K::mul_add(wv[c], rv[r], K::mul_add(vv[c], dv[r], racc[r][c]));
                }
            });
        }
    } else if R == 2 {
        let (mut vsi, mut rdi) = (strided(&v[j0..], fi, fo), zip2(&rd));
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip2(&d)) {
            let (Some(vs), Some(rv)) = (vsi.next(), rdi.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(ws);
            let vv: &[f32; C] = arr(vs);
            each_row!(2, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                    racc[r][c] = K::mul_add(wv[c], rv[r], K::mul_add(vv[c], dv[r], racc[r][c]));
                }
            });
        }
    } else if R == 1 {
        let (mut vsi, mut rdi) = (strided(&v[j0..], fi, fo), zip1(&rd));
        for (ws, dv) in strided(&w[j0..], fi, fo).zip(zip1(&d)) {
            let (Some(vs), Some(rv)) = (vsi.next(), rdi.next()) else {
                break;
            };
            let wv: &[f32; C] = arr(ws);
            let vv: &[f32; C] = arr(vs);
            each_row!(1, |r| {
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv[r], acc[r][c]);
                    racc[r][c] = K::mul_add(wv[c], rv[r], K::mul_add(vv[c], dv[r], racc[r][c]));
                }
            });
        }
    } else {
        for ((o, ws), vs) in (0..fo)
            .zip(strided(&w[j0..], fi, fo))
            .zip(strided(&v[j0..], fi, fo))
        {
            let wv: &[f32; C] = arr(ws);
            let vv: &[f32; C] = arr(vs);
            each_row!(R, |r| {
                let (dv, rv) = (d[r][o], rd[r][o]);
                for c in 0..C {
                    acc[r][c] = K::mul_add(wv[c], dv, acc[r][c]);
                    racc[r][c] = K::mul_add(wv[c], rv, K::mul_add(vv[c], dv, racc[r][c]));
                }
            });
        }
    }
    each_row!(R, |r| {
        *arr_mut::<C>(&mut din[(i0 + r) * fi + j0..]) = acc[r];
        *arr_mut::<C>(&mut rdin[(i0 + r) * fi + j0..]) = racc[r];
    });
}

/// Fused backward and R-backward: `din` as [`backward`], and
/// `rdin[i][j] = sum_o (v[o][j] * dout[i][o] + w[o][j] * rdout[i][o])`, each pair one term.
#[inline(always)]
pub(crate) fn r_backward<K: Isa>(
    w: &[f32],
    v: &[f32],
    fi: usize,
    fo: usize,
    dout: &[f32],
    rdout: &[f32],
    n: usize,
    din: &mut [f32],
    rdin: &mut [f32],
) {
    // Columns outer, samples inner, as in [`backward`]: the column blocks of `w` and `v` stay
    // in the L1 cache.
    lanes!(0, fi, |C, j0| {
        rows!(K, R_RB, R_RB_N, 0, n, |R, i0| {
            r_backward_block::<K, R, C>(w, v, fi, fo, dout, rdout, i0, j0, din, rdin);
        });
    });
}

#[inline(always)]
fn arr_mut<const N: usize>(s: &mut [f32]) -> &mut [f32; N] {
    match s.first_chunk_mut::<N>() {
        Some(a) => a,
        None => unreachable_len(),
    }
}

/// The panel of columns holding column `j` of a `fi`-wide layer, as [`panelize`] cuts them:
/// `(first column, width)`.
#[inline(always)]
fn panel_of(fi: usize, j: usize) -> (usize, usize) {
    let full = fi / LW * LW;
    if j < full {
        return (j / LW * LW, LW);
    }
    // The tail: at most one panel of LN and one of LQ, then single columns.
    let mut p0 = full;
    loop {
        let c = cut(p0, fi);
        if j < p0 + c || p0 + c >= fi {
            return (p0, c);
        }
        p0 += c;
    }
}

/// Whether rows of `fi` values, read in place with their stride, would collide in an L1 data
/// cache (64-byte lines in 64 sets, which repeat every 4 KiB): a stride that is a multiple of
/// 1 KiB puts a whole tile's rows into at most 4 sets (3072 inputs, 12 KiB: into one), so the
/// parameter phase reads such a first layer's inputs from panels ([`panelize`]) like the other
/// layers' instead of in place. Measured at L (3072 inputs) on an AMD Zen 4 (32 KiB, 8-way L1):
/// the copy costs 4 ms of a gradient and saves 8 ms of its parameter phase (BENCHMARKS.md).
#[inline(always)]
pub(crate) const fn rows_collide(fi: usize) -> bool {
    (fi * 4) % 1024 == 0
}

/// Copies the sample-major activations `a` (`n` rows of `fi`) into `p` in column panels for
/// the parameter phase: the columns are cut as the lane widths cut them (`LW`, ..., `LW`, then `LN`,
/// `LQ`, then 1s, see [`cut`]) and the panel of columns `j0..j0 + c` is stored at `j0 * n` as `[i][c]`, so that
/// [`accumulate`] streams it and its rows never collide in the cache whatever `fi` is.
#[inline(always)]
pub(crate) fn panelize(a: &[f32], n: usize, fi: usize, p: &mut [f32]) {
    let mut j0 = 0;
    while j0 < fi {
        let (_, c) = panel_of(fi, j0);
        let panel = &mut p[j0 * n..(j0 + c) * n];
        if c == LW {
            copy_rows::<LW>(a, fi, j0, panel);
        } else if c == LN {
            copy_rows::<LN>(a, fi, j0, panel);
        } else if c == LQ {
            copy_rows::<LQ>(a, fi, j0, panel);
        } else {
            copy_rows::<1>(a, fi, j0, panel);
        }
        j0 += c;
    }
}

/// `panel[i * C..][..C] = a[i * fi + j0..][..C]` for every row `i` of `panel`.
#[inline(always)]
fn copy_rows<const C: usize>(a: &[f32], fi: usize, j0: usize, panel: &mut [f32]) {
    for (i, dst) in panel.chunks_exact_mut(C).enumerate() {
        *arr_mut::<C>(dst) = *arr::<C>(&a[i * fi + j0..]);
    }
}

/// One sample's terms of a gradient block: `acc[r][c] += d[r] * x[c]`.
#[inline(always)]
fn grad_step<K: Isa, const R: usize, const C: usize>(
    acc: &mut [[f32; C]; R],
    x: &[f32; C],
    d: &[f32; R],
) {
    each_row!(R, |r| {
        for c in 0..C {
            acc[r][c] = K::mul_add(d[r], x[c], acc[r][c]);
        }
    });
}

/// One sample's terms of an R-gradient block: `acc[r][c] += rd[r] * x[c] + d[r] * rx[c]`.
#[inline(always)]
fn hvp_step<K: Isa, const R: usize, const C: usize>(
    acc: &mut [[f32; C]; R],
    x: &[f32; C],
    rx: &[f32; C],
    d: &[f32; R],
    rd: &[f32; R],
) {
    each_row!(R, |r| {
        for c in 0..C {
            acc[r][c] = K::mul_add(d[r], rx[c], K::mul_add(rd[r], x[c], acc[r][c]));
        }
    });
}

/// One block of [`accumulate`] with the gradient's term: rows `o0..o0 + R`, `C` columns whose
/// per-sample values are at `x[i * stride + off..][..C]`, the accumulators at
/// `g[base + r * fi + c]`.
#[inline(always)]
fn grad_block<K: Isa, const R: usize, const C: usize>(
    d: &[f32],
    x: &[f32],
    stride: usize,
    off: usize,
    fi: usize,
    fo: usize,
    n: usize,
    o0: usize,
    g: &mut [f32],
    base: usize,
) {
    let mut acc = [[0.0f32; C]; R];
    each_row!(R, |r| {
        acc[r] = *arr(&g[base + r * fi..]);
    });
    if stride == C && off == 0 {
        for (i, xs) in x[..n * C].chunks_exact(C).enumerate() {
            grad_step::<K, R, C>(&mut acc, arr(xs), arr(&d[i * fo + o0..]));
        }
    } else {
        // Indexed: zipped `chunks(stride)` divide by the run-time stride to size themselves,
        // once per block (4% of the M gradient with the first layer's rows read in place).
        for i in 0..n {
            let xs = arr::<C>(&x[i * stride + off..]);
            let ds = arr::<R>(&d[i * fo + o0..]);
            grad_step::<K, R, C>(&mut acc, xs, ds);
        }
    }
    each_row!(R, |r| {
        *arr_mut::<C>(&mut g[base + r * fi..]) = acc[r];
    });
}

/// One block of [`accumulate`] with the R-gradient's term.
#[inline(always)]
fn hvp_block<K: Isa, const R: usize, const C: usize>(
    d: &[f32],
    rd: &[f32],
    x: &[f32],
    rx: &[f32],
    stride: usize,
    off: usize,
    fi: usize,
    fo: usize,
    n: usize,
    o0: usize,
    g: &mut [f32],
    base: usize,
) {
    let mut acc = [[0.0f32; C]; R];
    each_row!(R, |r| {
        acc[r] = *arr(&g[base + r * fi..]);
    });
    // Indexed (see `grad_block`).
    if stride == C && off == 0 {
        let xs = x[..n * C].chunks_exact(C).zip(rx[..n * C].chunks_exact(C));
        for (i, (xv, rxv)) in xs.enumerate() {
            let (dv, rv) = (arr(&d[i * fo + o0..]), arr(&rd[i * fo + o0..]));
            hvp_step::<K, R, C>(&mut acc, arr(xv), arr(rxv), dv, rv);
        }
    } else {
        for i in 0..n {
            let (xv, rxv) = (arr(&x[i * stride + off..]), arr(&rx[i * stride + off..]));
            let (dv, rv) = (arr(&d[i * fo + o0..]), arr(&rd[i * fo + o0..]));
            hvp_step::<K, R, C>(&mut acc, xv, rxv, dv, rv);
        }
    }
    each_row!(R, |r| {
        *arr_mut::<C>(&mut g[base + r * fi..]) = acc[r];
    });
}

/// The per-sample term of the parameter phase; the activations are in panels ([`panelize`]),
/// or for the first layer possibly the data rows themselves ([`Term::GradRows`]).
#[derive(Clone, Copy)]
pub(crate) enum Term<'a> {
    /// `d[i][o] * a[i][j]` (the gradient; the R-gradient of the first layer with `d = R(delta)`).
    Grad { d: &'a [f32], a: &'a [f32] },
    /// [`Term::Grad`] with `a` in its sample-major rows of `fi` (the first layer's inputs, read
    /// in place from the data set instead of copied into panels).
    GradRows { d: &'a [f32], a: &'a [f32] },
    /// `rd[i][o] * a[i][j] + d[i][o] * ra[i][j]` (the R-gradient of the other layers).
    Hvp {
        d: &'a [f32],
        rd: &'a [f32],
        a: &'a [f32],
        ra: &'a [f32],
    },
}

/// One block of columns: rows `o0..o0 + R`, the `C` columns from `j0` of the panel starting at
/// column `p0` of width `pw`.
#[inline(always)]
fn term_block<K: Isa, const R: usize, const C: usize>(
    term: Term<'_>,
    fi: usize,
    fo: usize,
    n: usize,
    o0: usize,
    p0: usize,
    pw: usize,
    j0: usize,
    g: &mut [f32],
    base: usize,
) {
    let (start, off) = (p0 * n, j0 - p0);
    match term {
        Term::Grad { d, a } => {
            grad_block::<K, R, C>(d, &a[start..], pw, off, fi, fo, n, o0, g, base)
        }
        Term::GradRows { d, a } => {
            grad_block::<K, R, C>(d, &a[j0..], fi, 0, fi, fo, n, o0, g, base)
        }
        Term::Hvp { d, rd, a, ra } => hvp_block::<K, R, C>(
            d,
            rd,
            &a[start..],
            &ra[start..],
            pw,
            off,
            fi,
            fo,
            n,
            o0,
            g,
            base,
        ),
    }
}

/// Parameter phase of the weights of rows `o_lo..o_hi`, columns `j_lo..j_hi` of a layer with
/// `fi` inputs and `fo` outputs (whole rows, or a part of one row):
/// `g[(o - o_lo) * fi + (j - j_lo)] += term(i, o, j)` for samples `i = 0, 1, ..., n - 1` in
/// order (the accumulator stays in a register over the samples; it is loaded from and stored
/// back to `g`, which is exact).
#[inline(always)]
pub(crate) fn accumulate<K: Isa>(
    term: Term<'_>,
    fi: usize,
    fo: usize,
    n: usize,
    o_lo: usize,
    o_hi: usize,
    j_lo: usize,
    j_hi: usize,
    g: &mut [f32],
) {
    if j_lo == 0 && j_hi == fi {
        // Whole rows: blocks of columns that are whole panels.
        let mut jb = 0;
        while jb < fi {
            let je = (jb + J_P).min(fi);
            // Each term with its own block height (the two-term block has twice the operands
            // per accumulator), and only its own blocks compiled.
            match term {
                Term::Grad { d, a } => rows!(K, R_P, R_P_N, o_lo, o_hi, |R, o0| {
                    lanes!(jb, je, |C, j0| {
                        let base = (o0 - o_lo) * fi + j0;
                        let x = &a[j0 * n..];
                        grad_block::<K, R, C>(d, x, C, 0, fi, fo, n, o0, g, base);
                    });
                }),
                Term::GradRows { d, a } => rows!(K, R_P, R_P_N, o_lo, o_hi, |R, o0| {
                    lanes!(jb, je, |C, j0| {
                        let base = (o0 - o_lo) * fi + j0;
                        grad_block::<K, R, C>(d, &a[j0..], fi, 0, fi, fo, n, o0, g, base);
                    });
                }),
                Term::Hvp { d, rd, a, ra } => rows!(K, R_PH, R_PH_N, o_lo, o_hi, |R, o0| {
                    lanes!(jb, je, |C, j0| {
                        let base = (o0 - o_lo) * fi + j0;
                        let (x, rx) = (&a[j0 * n..], &ra[j0 * n..]);
                        hvp_block::<K, R, C>(d, rd, x, rx, C, 0, fi, fo, n, o0, g, base);
                    });
                }),
            }
            jb = je;
        }
    } else {
        // Part of one row: column by column.
        for j in j_lo..j_hi {
            let (p0, pw) = panel_of(fi, j);
            term_block::<K, 1, 1>(term, fi, fo, n, o_lo, p0, pw, j, g, j - j_lo);
        }
    }
}

/// Parameter phase of the biases `o_lo..o_hi`: `g[o - o_lo] += src[i * fo + o]` for
/// `i = 0, 1, ..., n - 1` in order.
#[inline(always)]
pub(crate) fn accumulate_bias(
    src: &[f32],
    fo: usize,
    n: usize,
    o_lo: usize,
    o_hi: usize,
    g: &mut [f32],
) {
    let g = &mut g[..o_hi - o_lo];
    for i in 0..n {
        let s = &src[i * fo + o_lo..i * fo + o_hi];
        for (acc, &x) in g.iter_mut().zip(s) {
            *acc += x;
        }
    }
}
