//! `edgewise bench`: how fast are a gradient, an exact Hessian-vector product and curvature
//! tracking at a given model size, on this machine, with this many threads?
//!
//! The model is `--arch` with `--act` and `--loss`, initialised with the default scheme from
//! `--seed`; the data are `--n` seeded random samples (features standard normal, labels uniform
//! over the output classes; one-hot targets for MSE). Every quantity is timed on the host's
//! multi-threaded engine ([`crate::engine::ParObjective`]), the one `train` uses, as the median of
//! `--repeats` runs after one warm-up run.
//!
//! # Flop counts
//!
//! A multiply and an add count as two flops; biases, activations and the loss are not counted
//! (they are `O(N * sum of widths)`, small next to the matrix work). With
//! `P_w = sum_l fan_in_l * fan_out_l` (all weight layers) and `P_w' = P_w` without the first
//! layer (whose input needs no delta):
//!
//! - loss + gradient: forward `2 N P_w`, backward `W^T delta` `2 N P_w'`, weight gradient
//!   `2 N P_w`: **`N (4 P_w + 2 P_w')`**;
//! - exact Hessian-vector product (R-operator): forward `2 N P_w`, R-forward `V a + W R(a)`
//!   `2 N P_w + 2 N P_w'`, fused backward `W^T delta`, `V^T delta + W^T R(delta)` `6 N P_w'`,
//!   R-gradient `R(delta) a^T + delta R(a)^T` `2 N P_w + 2 N P_w'`: **`N (6 P_w + 10 P_w')`**.
//!
//! JAX's `value_and_grad` and `jvp(grad)` do the same matrix products (benches/peers/ uses the
//! same formula).

use std::time::Instant;

use clap::Args;
use edgewise_core::{
    power_iteration, Activation, Arch, Data, HessianOp, Init, Loss, Objective, PowerConfig,
    SplitMix64, Targets,
};
use serde::Serialize;

use crate::engine::{ParObjective, Workspace, DEFAULT_TILE};
use crate::error::{core_err, Failure, Result};

/// `edgewise bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Widths, input first: e.g. 784-32-32-32-10.
    #[arg(long, default_value = "784-32-32-32-10")]
    pub arch: String,
    /// Number of random samples.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Hidden activation.
    #[arg(long, default_value = "tanh")]
    pub act: String,
    /// Loss: mse | ce.
    #[arg(long, default_value = "mse")]
    pub loss: String,
    /// Samples per tile (default: automatic, 32, 64 or 128 by samples, threads and layers).
    #[arg(long)]
    pub tile: Option<usize>,
    /// Seed of the data, the parameters and the directions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Timed runs per quantity (the median is reported); at least 1.
    #[arg(long, default_value_t = 7)]
    pub repeats: usize,
    /// Power-iteration steps to time; at least 1.
    #[arg(long, default_value_t = 20)]
    pub power_steps: u32,
    /// Kernels: auto (the widest the CPU has: AVX-512, AVX2 with FMA, or the baseline) |
    /// avx512 | avx2 | baseline (what every x86_64 CPU runs). The results are the same bits with
    /// each.
    #[arg(long, default_value = "auto")]
    pub kernels: String,
    /// Report the fastest run instead of the median (for comparisons on a busy machine).
    #[arg(long)]
    pub min: bool,
}

/// One `edgewise bench` result (printed as one JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Widths.
    pub arch: String,
    /// Activation name.
    pub act: String,
    /// Loss name.
    pub loss: String,
    /// Samples.
    pub n: usize,
    /// Threads.
    pub threads: usize,
    /// Samples per tile.
    pub tile: usize,
    /// Parameters.
    pub params: usize,
    /// Timed runs per quantity (3 at most for power iteration).
    pub repeats: usize,
    /// `median` or `min` (see `--min`).
    pub stat: &'static str,
    /// Median wall seconds of one loss + gradient.
    pub grad_s: f64,
    /// Median wall seconds of one exact Hessian-vector product from scratch (the first-layer
    /// cache off: what `jax.jvp(jax.grad(loss))` computes, and every product at new parameters).
    pub hvp_s: f64,
    /// Median wall seconds of one exact Hessian-vector product at the parameters of the
    /// previous one, which reuses the first layer's pre-activations (the second and later
    /// products of power iteration and Lanczos).
    pub hvp_reuse_s: f64,
    /// Median wall seconds of `power_steps` power-iteration steps (exact products; the first
    /// computes the first layer's pre-activations, the others reuse them).
    pub power_s: f64,
    /// Power-iteration steps timed.
    pub power_steps: u32,
    /// `hvp_s / grad_s`.
    pub hvp_over_grad: f64,
    /// Flops of one gradient (see the module documentation).
    pub grad_flops: f64,
    /// Flops of one Hessian-vector product.
    pub hvp_flops: f64,
    /// Achieved GFLOP/s of the gradient.
    pub grad_gflops: f64,
    /// Achieved GFLOP/s of the Hessian-vector product.
    pub hvp_gflops: f64,
    /// Which kernels ran (`avx512`, `avx2` or `baseline`).
    pub kernels: &'static str,
}

/// Flop counts `(gradient, hvp)` of one evaluation over `n` samples (module documentation).
pub fn flops(widths: &[usize], n: usize) -> (f64, f64) {
    let mut pw = 0.0f64;
    let mut pw1 = 0.0f64;
    for l in 0..widths.len() - 1 {
        let m = (widths[l] * widths[l + 1]) as f64;
        pw += m;
        if l > 0 {
            pw1 += m;
        }
    }
    let n = n as f64;
    (n * (4.0 * pw + 2.0 * pw1), n * (6.0 * pw + 10.0 * pw1))
}

/// Seeded random features (standard normal) and labels (uniform) for `arch`.
pub fn random_data(arch: &Arch, n: usize, seed: u64) -> (Vec<f32>, Vec<u16>) {
    let mut rng = SplitMix64::derive(seed, 0x6461_7461);
    let x: Vec<f32> = (0..n * arch.input_dim()).map(|_| rng.normal()).collect();
    let y: Vec<u16> = (0..n)
        .map(|_| rng.below(arch.output_dim() as u64) as u16)
        .collect();
    (x, y)
}

/// Median (or, with `min`, the fastest) of `reps` timed runs of `f`, after one untimed
/// warm-up run.
pub fn time_secs<F: FnMut() -> Result<()>>(reps: usize, min: bool, mut f: F) -> Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64());
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(if min { t[0] } else { t[t.len() / 2] })
}

/// The most timed runs of one kernel (their times are kept to take the median).
pub const MAX_REPEATS: usize = 1_000_000;

/// Runs the benchmark.
pub fn bench(a: &BenchArgs) -> Result<BenchResult> {
    let widths = crate::config::parse_widths(&a.arch)?;
    let act = Activation::from_name(&a.act)
        .ok_or_else(|| Failure::input(format!("--act {}: unknown activation", a.act)))?;
    let loss = Loss::from_name(&a.loss)
        .ok_or_else(|| Failure::input(format!("--loss {}: unknown loss", a.loss)))?;
    let arch = Arch::new(&widths, act, loss)
        .map_err(|e| Failure::input(format!("--arch {}: {e}", a.arch)))?;
    if a.n == 0 {
        return Err(Failure::input("--n 0: need at least one sample"));
    }
    let threads = match a.threads {
        Some(0) => return Err(Failure::input("--threads 0: must be at least 1")),
        Some(t) => t,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let tile = a.tile.unwrap_or(DEFAULT_TILE);
    use crate::engine::{use_baseline_kernels, use_kernels, Kernels};
    if a.kernels == "auto" {
        use_baseline_kernels(false);
    } else {
        let want = match Kernels::NAMES.iter().find(|(name, _)| *name == a.kernels) {
            Some(&(_, want)) => want,
            None => {
                return Err(Failure::input(format!(
                    "--kernels {}: expected auto, baseline, avx2 or avx512",
                    a.kernels
                )))
            }
        };
        let got = use_kernels(want);
        if got != want {
            return Err(Failure::input(format!(
                "--kernels {}: this CPU (or this build) supports at most {}",
                want.name(),
                got.name()
            )));
        }
    }
    if !(1..=MAX_REPEATS).contains(&a.repeats) {
        return Err(Failure::input(format!(
            "--repeats {}: must be in 1..={MAX_REPEATS}",
            a.repeats
        )));
    }
    if a.power_steps == 0 {
        return Err(Failure::input("--power-steps 0: must be at least 1"));
    }
    let p = arch.n_params();
    // The data (features and labels), six parameter-sized vectors and the engine's buffers.
    let data_bytes =
        crate::mem::f32_bytes(a.n as u128 * arch.input_dim() as u128) + 2 * a.n as u128;
    let floats = 6 * p as u128 + crate::engine::objective_floats(&arch, a.n, threads, tile);
    crate::mem::ensure_allocatable(
        data_bytes + crate::mem::f32_bytes(floats),
        &format!("--arch {} with --n {}", a.arch, a.n),
    )?;
    let (x, y) = random_data(&arch, a.n, a.seed);
    let data = Data::new(&x, arch.input_dim(), Targets::Classes(&y)).map_err(core_err("data"))?;
    let mut params = vec![0.0f32; p];
    arch.init(&mut params, Init::default(), a.seed)
        .map_err(core_err("init"))?;
    let mut v = vec![0.0f32; p];
    SplitMix64::derive(a.seed, 0x7665_6374).fill_normal(&mut v);
    let mut ws = Workspace::default();
    let mut obj =
        ParObjective::new(&arch, data, threads, tile, &mut ws).map_err(core_err("data"))?;
    let tile = obj.tile();
    let mut g = vec![0.0f32; p];
    let mut hv = vec![0.0f32; p];
    let err = core_err("bench");
    let reps = a.repeats;
    let grad_s = time_secs(reps, a.min, || {
        obj.loss_grad(&params, &mut g).map(|_| ()).map_err(&err)
    })?;
    obj.set_first_layer_cache(false);
    let hvp_s = time_secs(reps, a.min, || obj.hvp(&params, &v, &mut hv).map_err(&err))?;
    obj.set_first_layer_cache(true);
    // The warm-up run stores the first layer's pre-activations; the timed runs reuse them.
    let hvp_reuse_s = time_secs(reps, a.min, || obj.hvp(&params, &v, &mut hv).map_err(&err))?;
    let steps = a.power_steps;
    let cfg = PowerConfig {
        tol: 0.0,
        max_iter: steps,
    };
    let mut pv = vec![0.0f32; p];
    let mut scratch = vec![0.0f32; p];
    let power_s = time_secs(reps.min(3), a.min, || {
        pv.copy_from_slice(&v);
        // As a measurement at new parameters: the first step stores, the others reuse.
        obj.set_first_layer_cache(true);
        let mut op = HessianOp::exact(&mut obj, &params);
        power_iteration(&mut op, &mut pv, &mut scratch, &cfg).map_err(&err)?;
        Ok(())
    })?;
    let (gf, hf) = flops(&widths, a.n);
    Ok(BenchResult {
        arch: crate::config::format_widths(&widths),
        act: act.name().into(),
        loss: loss.name().into(),
        n: a.n,
        threads,
        tile,
        params: p,
        repeats: reps,
        stat: if a.min { "min" } else { "median" },
        grad_s,
        hvp_s,
        hvp_reuse_s,
        power_s,
        power_steps: steps,
        hvp_over_grad: hvp_s / grad_s,
        grad_flops: gf,
        hvp_flops: hf,
        grad_gflops: gf / grad_s / 1e9,
        hvp_gflops: hf / hvp_s / 1e9,
        kernels: crate::engine::kernels(),
    })
}

/// Runs `bench` and prints its JSON line.
pub fn cmd_bench(a: &BenchArgs) -> Result<u8> {
    let r = bench(a)?;
    let line = serde_json::to_string(&r).map_err(|e| Failure::internal(e.to_string()))?;
    crate::cli::print_stdout(&format!("{line}\n"))?;
    Ok(0)
}
