//! Times core's tile passes alone (no engine, no threads): one thread, the AVX-512 instances,
//! seeded synthetic data, the fastest of `REPS` runs over all tiles. BENCHMARKS.md ("Evening
//! version", "Where the time goes now") used it beside `perf annotate` to split a gradient and a
//! Hessian-vector product into the forward pass, the sample phase and the parameter phase.
//!
//!   cargo run --release -p edgewise --example passes -- 3072-200-200-10 5000 128
//!   WHICH=0,2 REPS=20 cargo run --release -p edgewise --example passes -- 784-32-32-32-10 1000 64
//!
//! WHICH picks the quantities: 0 forward, 1 forward + backward (the gradient's sample phase),
//! 2 gradient (sample and parameter phase), 3 HVP sample phase, 4 HVP; 5 `tanh_slice` alone over
//! as many values as the first hidden layer has in a forward pass (`N x fan_out(0)`, a tile at
//! a time; BENCHMARKS.md, "Zen 4 machine"). The GFLOP/s column counts only the forward's flops
//! (`2 N sum(fan_in fan_out)`), to compare the quantities.

#[cfg(target_arch = "x86_64")]
mod probe {
    use edgewise_core::{Activation, Arch, Data, Init, Isa, Loss, Targets};
    use std::time::Instant;

    /// `f32::mul_add`: the FMA instruction inside the `avx512` functions below.
    struct Fma512;

    impl Isa for Fma512 {
        #[inline(always)]
        fn mul_add(a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
    }

    /// `tanh_slice` over `z`, `chunk` values at a time.
    ///
    /// # Safety
    /// Only on a CPU with AVX-512F/VL/BW/DQ and FMA (`main` checks).
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")]
    unsafe fn tanh512(z: &[f32], out: &mut [f32], chunk: usize) {
        for (zc, oc) in z.chunks(chunk).zip(out.chunks_mut(chunk)) {
            edgewise_core::tanh_slice(zc, oc);
        }
    }

    /// Runs quantity `which` over all tiles.
    ///
    /// # Safety
    /// Only on a CPU with AVX-512F/VL/BW/DQ and FMA (`main` checks).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")]
    unsafe fn avx512(
        which: usize,
        arch: &Arch,
        p: &[f32],
        (wt, v, vt): (&[f32], &[f32], &[f32]),
        d: &Data<'_>,
        tile: usize,
        ws: &mut [f32],
        g: &mut [f32],
    ) -> Result<(), edgewise_core::Error> {
        let (n, all) = (d.len(), 0..arch.n_params());
        let mut s = 0;
        while s < n {
            let m = tile.min(n - s);
            match which {
                0 => arch.tile_eval_pass_packed::<Fma512>(p, wt, d, s, m, ws, tile)?,
                1 | 2 => arch.tile_grad_pass_packed::<Fma512>(p, wt, d, s, m, ws, tile)?,
                _ => arch.tile_hvp_pass_packed::<Fma512>(p, wt, v, vt, d, s, m, ws, tile)?,
            }
            match which {
                2 => arch.tile_accumulate_grad::<Fma512>(ws, tile, d, s, m, all.clone(), g)?,
                4 => arch.tile_accumulate_hvp::<Fma512>(ws, tile, d, s, m, all.clone(), g)?,
                _ => {}
            }
            s += m;
        }
        Ok(())
    }

    pub fn main() -> Result<(), String> {
        let usage = "usage: passes ARCH N TILE (e.g. 784-32-32-32-10 1000 64)";
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [arch_s, n_s, tile_s] = &args[..] else {
            return Err(usage.into());
        };
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{s}: not a number; {usage}"))
        };
        let widths = arch_s.split('-').map(num).collect::<Result<Vec<_>, _>>()?;
        let (n, tile) = (num(n_s)?, num(tile_s)?);
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.into());
        let which: Vec<usize> = env("WHICH", "0,1,2,3,4")
            .split(',')
            .map(num)
            .collect::<Result<_, _>>()?;
        let reps = num(&env("REPS", "7"))?.max(1);
        let detected = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("fma");
        if !detected {
            return Err("this probe needs AVX-512 and FMA".into());
        }
        let e = |e: edgewise_core::Error| e.to_string();
        let arch = Arch::new(&widths, Activation::Tanh, Loss::Mse).map_err(e)?;
        if n == 0 || tile == 0 || which.iter().any(|&w| w > 5) {
            return Err(usage.into());
        }
        let (d0, k) = (arch.input_dim(), arch.output_dim());
        let mut p = vec![0.0f32; arch.n_params()];
        arch.init(&mut p, Init::default(), 1).map_err(e)?;
        let x: Vec<f32> = (0..n * d0)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let y: Vec<u16> = (0..n).map(|i| (i % k) as u16).collect();
        let data = Data::new(&x, d0, Targets::Classes(&y)).map_err(e)?;
        let v: Vec<f32> = (0..p.len())
            .map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let (mut wt, mut vt) = (vec![0.0; arch.packed_len()], vec![0.0; arch.packed_len()]);
        arch.pack_transposed(&p, &mut wt).map_err(e)?;
        arch.pack_transposed(&v, &mut vt).map_err(e)?;
        let mut ws = vec![0.0f32; arch.workspace_len(tile)];
        let mut g = vec![0.0f32; arch.n_params()];
        let flops: f64 =
            2.0 * n as f64 * widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>();
        let names = [
            "forward",
            "forward + backward",
            "gradient",
            "HVP sample phase",
            "HVP",
            "tanh of the first hidden layer",
        ];
        let h = n * arch.first_layer().fan_out;
        let z: Vec<f32> = (0..h)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let mut a = vec![0.0f32; h];
        for w in which {
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t = Instant::now();
                if w == 5 {
                    // SAFETY: AVX-512F/VL/BW/DQ and FMA were detected above.
                    unsafe { tanh512(&z, &mut a, tile * arch.first_layer().fan_out) };
                    best = best.min(t.elapsed().as_secs_f64());
                    continue;
                }
                // SAFETY: AVX-512F/VL/BW/DQ and FMA were detected above.
                unsafe { avx512(w, &arch, &p, (&wt, &v, &vt), &data, tile, &mut ws, &mut g) }
                    .map_err(e)?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            if w == 5 {
                println!(
                    "{}: {:.1} us, {:.2} ns per value ({h} values)",
                    names[w],
                    best * 1e6,
                    best * 1e9 / h as f64
                );
                continue;
            }
            println!(
                "{}: {:.3} ms, {:.1} GFLOP/s of forward flops",
                names[w],
                best * 1e3,
                flops / best / 1e9
            );
        }
        Ok(())
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    let r = probe::main();
    #[cfg(not(target_arch = "x86_64"))]
    let r: Result<(), String> = Err("this probe needs an x86_64 CPU with AVX-512".into());
    if let Err(msg) = r {
        eprintln!("passes: {msg}");
        std::process::exit(2);
    }
}
