//! Standalone micro-benchmark behind the FMA decision (BENCHMARKS.md, "FMA on this machine"):
//! the packed forward micro-kernel's inner loop, `acc[r][c] += w[j][c] * a[j][r]` over `j` in
//! order, with the data in L1 (K = 256 inputs), computed as edgewise does (a multiply, rounded,
//! then an add) and fused (one rounding), with 256-bit (AVX2) and 512-bit (AVX-512) vectors and
//! R rows of V vectors of accumulators. Written with explicit intrinsics, so that what is measured
//! is the hardware, not the compiler's choices. Prints GFLOP/s (a multiply-add = 2 flops), the
//! fastest of 30 runs. Build and run: `benches/fma.sh` (plain `rustc -O`, no dependencies).
use std::arch::x86_64::*;
use std::hint::black_box;
use std::time::Instant;

const K: usize = 256;

macro_rules! kernel {
    ($name:ident, $feat:literal, $vec:ty, $lanes:literal, $zero:ident, $load:ident, $set1:ident,
     $store:ident, $r:literal, $v:literal, |$acc:ident, $w:ident, $x:ident| $step:expr) => {
        #[target_feature(enable = $feat)]
        unsafe fn $name(w: &[f32], a: &[[f32; 8]; K], reps: usize, out: &mut [f32]) {
            assert!(w.len() >= K * $lanes * $v && out.len() >= $r * $v * $lanes);
            let mut acc: [[$vec; $v]; $r] = [[$zero(); $v]; $r];
            for _ in 0..reps {
                for j in 0..K {
                    let mut wv: [$vec; $v] = [$zero(); $v];
                    for v in 0..$v {
                        wv[v] = $load(w.as_ptr().add((j * $v + v) * $lanes));
                    }
                    for r in 0..$r {
                        let $x = $set1(a[j][r]);
                        for v in 0..$v {
                            let ($acc, $w) = (acc[r][v], wv[v]);
                            acc[r][v] = $step;
                        }
                    }
                }
            }
            for r in 0..$r {
                for v in 0..$v {
                    $store(out.as_mut_ptr().add((r * $v + v) * $lanes), acc[r][v]);
                }
            }
        }
    };
}

macro_rules! avx2 {
    ($name:ident, $feat:literal, $r:literal, $v:literal, $f:expr) => {
        kernel!($name, $feat, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_set1_ps,
                _mm256_storeu_ps, $r, $v, |acc, w, x| $f(acc, w, x));
    };
}
macro_rules! avx512 {
    ($name:ident, $r:literal, $v:literal, $f:expr) => {
        kernel!($name, "avx512f", __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps,
                _mm512_storeu_ps, $r, $v, |acc, w, x| $f(acc, w, x));
    };
}

avx2!(avx2_4x2, "avx2", 4, 2, |a, w, x| _mm256_add_ps(a, _mm256_mul_ps(w, x)));
avx2!(avx2_4x2_fma, "avx2,fma", 4, 2, |a, w, x| _mm256_fmadd_ps(w, x, a));
avx2!(avx2_6x2, "avx2", 6, 2, |a, w, x| _mm256_add_ps(a, _mm256_mul_ps(w, x)));
avx2!(avx2_6x2_fma, "avx2,fma", 6, 2, |a, w, x| _mm256_fmadd_ps(w, x, a));
avx512!(avx512_4x1, 4, 1, |a, w, x| _mm512_add_ps(a, _mm512_mul_ps(w, x)));
avx512!(avx512_4x1_fma, 4, 1, |a, w, x| _mm512_fmadd_ps(w, x, a));
avx512!(avx512_4x2, 4, 2, |a, w, x| _mm512_add_ps(a, _mm512_mul_ps(w, x)));
avx512!(avx512_4x2_fma, 4, 2, |a, w, x| _mm512_fmadd_ps(w, x, a));
avx512!(avx512_8x2, 8, 2, |a, w, x| _mm512_add_ps(a, _mm512_mul_ps(w, x)));
avx512!(avx512_8x2_fma, 8, 2, |a, w, x| _mm512_fmadd_ps(w, x, a));

type Kernel = unsafe fn(&[f32], &[[f32; 8]; K], usize, &mut [f32]);

fn main() {
    let has512 = is_x86_feature_detected!("avx512f");
    let has2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let w: Vec<f32> = (0..K * 32).map(|i| 1.0 + (i % 7) as f32 * 1e-7).collect();
    let a = [[1e-7f32; 8]; K];
    let mut out = vec![0.0f32; 8 * 32];
    // (name, kernel, accumulators, lanes each, supported)
    let cases: [(&str, Kernel, usize, usize, bool); 10] = [
        ("AVX2 4 rows x 2 vectors, mul + add", avx2_4x2, 8, 8, has2),
        ("AVX2 4 rows x 2 vectors, fma", avx2_4x2_fma, 8, 8, has2),
        ("AVX2 6 rows x 2 vectors, mul + add", avx2_6x2, 12, 8, has2),
        ("AVX2 6 rows x 2 vectors, fma", avx2_6x2_fma, 12, 8, has2),
        ("AVX-512 4 rows x 1 vector, mul + add", avx512_4x1, 4, 16, has512),
        ("AVX-512 4 rows x 1 vector, fma", avx512_4x1_fma, 4, 16, has512),
        ("AVX-512 4 rows x 2 vectors, mul + add", avx512_4x2, 8, 16, has512),
        ("AVX-512 4 rows x 2 vectors, fma", avx512_4x2_fma, 8, 16, has512),
        ("AVX-512 8 rows x 2 vectors, mul + add", avx512_8x2, 16, 16, has512),
        ("AVX-512 8 rows x 2 vectors, fma", avx512_8x2_fma, 16, 16, has512),
    ];
    let reps = 2000;
    for (name, f, accs, lanes, ok) in cases {
        if !ok {
            println!("{name}: not supported by this CPU");
            continue;
        }
        let mut best = f64::MAX;
        for _ in 0..30 {
            let t = Instant::now();
            // SAFETY: the CPU has the kernel's features (checked above).
            unsafe { f(black_box(&w), black_box(&a), reps, &mut out) };
            best = best.min(t.elapsed().as_secs_f64());
            black_box(&out);
        }
        let flops = 2.0 * (reps * K * accs * lanes) as f64;
        println!("{name}: {:.1} GFLOP/s", flops / best / 1e9);
    }
}
