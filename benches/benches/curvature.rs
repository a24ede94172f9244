//! Criterion benchmarks of the numerics at the three reference sizes, on seeded random data:
//!
//! - S = 64-32-10 tanh, N = 1797; M = 784-32-32-32-10, N = 1000; L = 3072-200-200-10, N = 5000
//!   (all tanh, mean squared error on one-hot targets, PyTorch's default initialisation);
//! - forward (loss and accuracy), loss + gradient, exact Hessian-vector product (from scratch,
//!   and `hvp_exact_reuse` at the previous product's parameters, which reuses the first layer's
//!   pre-activations), finite-difference Hessian-vector product, power iteration from a random start ("cold") and from the converged
//!   eigenvector ("warm", as sharpness tracking does), warm-started Lanczos stopped at the
//!   tolerance (the default tracker) from the converged eigenvector, Lanczos with 20 steps, and
//!   one full-batch GD training step with warm-started sharpness tracking (gradient, update, and
//!   power iteration or warm-started Lanczos from the predicted eigenvector, `predict_start`);
//! - on the host's engine (`edgewise::engine::ParObjective`), with 1 thread and with all cores
//!   for the gradient and the Hessian-vector product, 1 thread for the rest; and the gradient
//!   by core's portable reference path (`gradient_portable`: `Arch::loss_grad`).
//!
//! - the cost of starting an evaluation's helper threads: a scoped spawn and join against a job
//!   on the persistent pool (`threads/`).
//!
//! Quick by default: sizes S and M, 10 samples, 2 s of measurement per benchmark. Set
//! `EDGEWISE_BENCH_SIZES=S,M,L` for all sizes (L takes a few minutes), and pass criterion's own
//! options after `--` (`cargo bench -p edgewise-benches -- gradient`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use edgewise::engine::{ParObjective, Workspace};
use edgewise_core::eig::lanczos::lanczos_work_len;
use edgewise_core::{
    lanczos, power_iteration, predict_start, warm_lanczos, Activation, Arch, Data, Eigenpair,
    HessianOp, HvpMethod, Init, LanczosConfig, Loss, Objective, PowerConfig, SplitMix64, Targets,
    WarmLanczosConfig, PREDICT_HISTORY,
};

struct Size {
    name: &'static str,
    widths: &'static [usize],
    n: usize,
}

const SIZES: [Size; 3] = [
    Size {
        name: "S",
        widths: &[64, 32, 10],
        n: 1797,
    },
    Size {
        name: "M",
        widths: &[784, 32, 32, 32, 10],
        n: 1000,
    },
    Size {
        name: "L",
        widths: &[3072, 200, 200, 10],
        n: 5000,
    },
];

fn selected() -> Vec<&'static Size> {
    let want = std::env::var("EDGEWISE_BENCH_SIZES").unwrap_or_else(|_| "S,M".into());
    SIZES
        .iter()
        .filter(|s| want.split(',').any(|w| w.trim() == s.name))
        .collect()
}

struct Setup {
    arch: Arch,
    x: Vec<f32>,
    y: Vec<u16>,
    params: Vec<f32>,
    v: Vec<f32>,
}

impl Setup {
    fn new(s: &Size) -> Self {
        let arch = Arch::new(s.widths, Activation::Tanh, Loss::Mse).unwrap();
        let mut rng = SplitMix64::new(0);
        let x = (0..s.n * s.widths[0]).map(|_| rng.normal()).collect();
        let k = *s.widths.last().unwrap() as u64;
        let y = (0..s.n).map(|_| rng.below(k) as u16).collect();
        let mut params = vec![0.0; arch.n_params()];
        arch.init(&mut params, Init::default(), 0).unwrap();
        let v = (0..arch.n_params()).map(|_| rng.normal()).collect();
        Self {
            arch,
            x,
            y,
            params,
            v,
        }
    }

    fn data(&self) -> Data<'_> {
        Data::new(&self.x, self.arch.input_dim(), Targets::Classes(&self.y)).unwrap()
    }
}

fn bench(c: &mut Criterion) {
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for size in selected() {
        let st = Setup::new(size);
        let p = st.arch.n_params();
        let mut g = c.benchmark_group(size.name);
        g.sample_size(10)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        let mut ws = Workspace::default();
        let mut out = vec![0.0f32; p];

        {
            let mut obj = ParObjective::new(&st.arch, st.data(), 1, 32, &mut ws).unwrap();
            g.bench_function("forward", |b| b.iter(|| obj.evaluate(&st.params).unwrap()));
        }
        // The same gradient by core's portable reference path (`Arch::loss_grad`: one thread,
        // `Portable`'s multiply-add), what a library user gets without the host's engine.
        {
            let mut cws = vec![0.0f32; st.arch.workspace_len(64)];
            let data = st.data();
            g.bench_function("gradient_portable", |b| {
                b.iter(|| {
                    st.arch
                        .loss_grad(&st.params, &data, &mut out, &mut cws, 64)
                        .unwrap()
                })
            });
        }
        for threads in [1, all] {
            let mut obj = ParObjective::new(&st.arch, st.data(), threads, 32, &mut ws).unwrap();
            g.bench_function(BenchmarkId::new("gradient", format!("{threads}t")), |b| {
                b.iter(|| obj.loss_grad(&st.params, &mut out).unwrap())
            });
            // From scratch (as at new parameters, and as `jax.jvp(jax.grad(loss))` computes),
            // then at the previous product's parameters, reusing the first layer's
            // pre-activations (power iteration's and Lanczos' later products).
            obj.set_first_layer_cache(false);
            g.bench_function(BenchmarkId::new("hvp_exact", format!("{threads}t")), |b| {
                b.iter(|| obj.hvp(&st.params, &st.v, &mut out).unwrap())
            });
            obj.set_first_layer_cache(true);
            g.bench_function(
                BenchmarkId::new("hvp_exact_reuse", format!("{threads}t")),
                |b| b.iter(|| obj.hvp(&st.params, &st.v, &mut out).unwrap()),
            );
            if all == 1 {
                break;
            }
        }
        let mut obj = ParObjective::new(&st.arch, st.data(), 1, 32, &mut ws).unwrap();
        let mut fd_scratch = vec![0.0f32; 2 * p];
        g.bench_function("hvp_fd", |b| {
            b.iter(|| {
                let mut op = HessianOp::new(
                    &mut obj,
                    &st.params,
                    HvpMethod::FiniteDifference,
                    &mut fd_scratch,
                )
                .unwrap();
                edgewise_core::LinearOperator::apply(&mut op, &st.v, &mut out).unwrap();
            })
        });
        let cfg = PowerConfig {
            tol: 1e-3,
            max_iter: 100,
        };
        let mut vec = vec![0.0f32; p];
        let mut scratch = vec![0.0f32; p];
        g.bench_function("power_cold", |b| {
            b.iter(|| {
                vec.copy_from_slice(&st.v);
                // As at a new measurement: the first product stores the first layer's values.
                obj.set_first_layer_cache(true);
                let mut op = HessianOp::exact(&mut obj, &st.params);
                power_iteration(&mut op, &mut vec, &mut scratch, &cfg).unwrap()
            })
        });
        // The converged vector: warm starts begin here.
        let mut warm = st.v.clone();
        {
            let mut op = HessianOp::exact(&mut obj, &st.params);
            power_iteration(
                &mut op,
                &mut warm,
                &mut scratch,
                &PowerConfig {
                    tol: 1e-5,
                    max_iter: 300,
                },
            )
            .unwrap();
        }
        g.bench_function("power_warm", |b| {
            b.iter(|| {
                vec.copy_from_slice(&warm);
                // As at a new measurement: the first product stores the first layer's values.
                obj.set_first_layer_cache(true);
                let mut op = HessianOp::exact(&mut obj, &st.params);
                power_iteration(&mut op, &mut vec, &mut scratch, &cfg).unwrap()
            })
        });
        let wcfg = WarmLanczosConfig {
            tol: 1e-3,
            max_steps: 50,
            k: 1,
        };
        let mut wbasis = vec![0.0f32; (wcfg.max_steps + 1) * p];
        let mut wwork = vec![0.0f64; lanczos_work_len(wcfg.max_steps)];
        let mut pair = [Eigenpair {
            value: 0.0,
            residual: 0.0,
            iterations: 0,
            converged: false,
        }];
        g.bench_function("lanczos_warm", |b| {
            b.iter(|| {
                vec.copy_from_slice(&warm);
                // As at a new measurement: the first product stores the first layer's values.
                obj.set_first_layer_cache(true);
                let mut op = HessianOp::exact(&mut obj, &st.params);
                warm_lanczos(&mut op, &wcfg, &mut vec, &mut wbasis, &mut wwork, &mut pair).unwrap()
            })
        });
        let steps = 20;
        let mut basis = vec![0.0f32; (steps + 1) * p];
        let mut work = vec![0.0f64; lanczos_work_len(steps)];
        let (mut vals, mut res) = (vec![0.0f32; steps], vec![0.0f32; steps]);
        g.bench_function("lanczos_20", |b| {
            b.iter(|| {
                // As at a new measurement: the first product stores the first layer's values.
                obj.set_first_layer_cache(true);
                let mut op = HessianOp::exact(&mut obj, &st.params);
                lanczos(
                    &mut op,
                    &LanczosConfig { steps },
                    &st.v,
                    &mut basis,
                    &mut work,
                    &mut vals,
                    &mut res,
                )
                .unwrap()
            })
        });
        // One GD step with sharpness tracking: gradient, update, warm-started power iteration.
        let mut theta = st.params.clone();
        let mut grad = vec![0.0f32; p];
        let mut top = warm.clone();
        g.bench_function("train_step_with_sharpness", |b| {
            b.iter(|| {
                obj.loss_grad(&theta, &mut grad).unwrap();
                for (t, gi) in theta.iter_mut().zip(&grad) {
                    *t -= 0.01 * gi;
                }
                let mut op = HessianOp::exact(&mut obj, &theta);
                power_iteration(&mut op, &mut top, &mut scratch, &cfg).unwrap()
            })
        });
        // The same step with the default tracker: warm-started Lanczos from the eigenvector
        // predicted from the previous ones (`predict_start` over a full history, the tracker's
        // steady state; its backtests read the Gram matrix of the history).
        let mut theta = st.params.clone();
        let mut hist: Vec<Vec<f32>> = vec![warm.clone(); PREDICT_HISTORY];
        g.bench_function("train_step_with_sharpness_lanczos", |b| {
            b.iter(|| {
                obj.loss_grad(&theta, &mut grad).unwrap();
                for (t, gi) in theta.iter_mut().zip(&grad) {
                    *t -= 0.01 * gi;
                }
                let refs: Vec<&[f32]> = hist.iter().map(|v| v.as_slice()).collect();
                predict_start(&refs, &mut vec).unwrap();
                let mut op = HessianOp::exact(&mut obj, &theta);
                let r = warm_lanczos(&mut op, &wcfg, &mut vec, &mut wbasis, &mut wwork, &mut pair)
                    .unwrap();
                hist.rotate_right(1);
                hist[0].copy_from_slice(&vec);
                r
            })
        });
        g.finish();
    }
}

/// Starting the helpers of one evaluation: a scoped spawn and join of one thread (what the engine
/// did before `edgewise::pool`) against one job on the persistent pool, each after 200 us of
/// busy work on the calling thread (an idle gap like the one between two evaluations; only the
/// start and join are timed).
fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("threads");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let gap = || {
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(200) {
            std::hint::spin_loop();
        }
    };
    g.bench_function("scope_spawn_join", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                gap();
                let t = Instant::now();
                std::thread::scope(|s| {
                    s.spawn(|| std::hint::black_box(1));
                });
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("pool_run", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                gap();
                let t = Instant::now();
                edgewise::pool::run_on(2, &|| {
                    std::hint::black_box(1);
                })
                .unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench, threads);
criterion_main!(benches);
