//! The scenarios themselves. Every constant here is part of the golden traces: changing one is a
//! change of the traces (bless them again, see tests/README.md).

use edgewise_core::eig::lanczos::{lanczos_work_len, ritz_vector};
use edgewise_core::vec::dot64;
use edgewise_core::{
    dense_hessian, extrapolate_start, lanczos, lean_lanczos, lean_lanczos_work_len, param_count,
    predict_start, sharpness, symmetric_eigen, warm_lanczos, Activation, AdamConfig, Arch, Clip,
    Data, DiagLinearNet, Eigenpair, EpochSampler, Error, HessianOp, HvpMethod, Init, LanczosConfig,
    LeanLanczosConfig, LinearOperator, Loss, MathBackend, MomentumConfig, Objective, OptState,
    Optimizer, PowerConfig, PreconditionedOp, SplitMix64, WarmLanczosConfig, PREDICT_HISTORY,
};

use crate::problem::{deep, shallow, Problem, MAX_PARAMS, N, SHALLOW};
use crate::{Evaluator, Fnv64, Scenario, Sink, NOT_MEASURED};

/// Seed of the data set of every network scenario.
const DATA_SEED: u64 = 0x0ed6_e000_0000_0001;
/// Power iteration: relative residual tolerance and iteration cap.
const POWER: PowerConfig = PowerConfig {
    tol: 1e-3,
    max_iter: 40,
};
/// Seed of the first start vector of power iteration (then warm starts).
const START_SEED: u64 = 0x5747_2a11;

pub(crate) const fn describe(s: Scenario) -> &'static str {
    match s {
        Scenario::GdStable => {
            "8-6-3 tanh, MSE, full-batch GD at lr 0.5 (lr * sharpness ~ 1), 30 steps; \
             sharpness every 10 steps (power iteration on exact HVPs, warm-started from the \
             previous eigenvector)"
        }
        Scenario::GdEos => {
            "8-6-3 tanh, MSE, full-batch GD at lr 1.2 (lr * sharpness = 2.46 at the start, the \
             loss goes up and down while the sharpness drops below 2 / lr), 30 steps; sharpness \
             every 10 steps"
        }
        Scenario::SgdShuffle => {
            "8-6-3 softplus, cross-entropy, byte features, SGD batch 10 of 32 (partial last \
             batch), seeded shuffle per epoch, weight decay 1e-3, 4 epochs; minibatch loss per \
             step, last step the full-data loss; no sharpness"
        }
        Scenario::MomentumHeavyBall => {
            "8-6-3 gelu, MSE, heavy ball mu 0.9, lr 0.1, 30 steps; sharpness every 10 steps"
        }
        Scenario::MomentumNesterov => {
            "8-6-5-3 elu, cross-entropy, Nesterov mu 0.9, weight decay 1e-4, lr 0.1, 30 steps; \
             sharpness every 10 steps"
        }
        Scenario::Adam => {
            "8-6-5-3 relu (Kaiming init), cross-entropy, Adam lr 1e-2, 30 steps; \
             preconditioned sharpness lambda_max(diag(step sizes) H) every 5 steps from step 5"
        }
        Scenario::AdamClipped => {
            "8-6-3 tanh, cross-entropy, AdamW (decoupled wd 1e-2), beta2 0.99, preconditioner \
             clipped above at 0.05, lr 1e-2, 30 steps; preconditioned sharpness every 5 steps"
        }
        Scenario::HvpExact => {
            "8-6-5-3 tanh (LeCun init), cross-entropy, GD lr 0.5, 12 steps; at each step an \
             exact HVP along a seeded normal v: sharpness column = v.Hv / v.v, hash = params \
             then Hv"
        }
        Scenario::HvpFd => {
            "8-6-3 tanh, MSE on real-valued targets, GD lr 0.3, 12 steps; at each step a \
             finite-difference HVP along a seeded normal v: sharpness column = v.Hv / v.v, \
             hash = params then Hv"
        }
        Scenario::PowerWarm => {
            "8-6-5-3 softplus (Xavier init), MSE, GD lr 0.5, 20 steps; sharpness at every step \
             by power iteration warm-started from the previous eigenvector; hash = params, \
             eigenvector, product count"
        }
        Scenario::Lanczos => {
            "8-6-5-3 gelu, cross-entropy, GD lr 0.5, 6 steps; at each step 8 Lanczos steps from \
             a fixed start: sharpness column = top Ritz value, hash = params, Ritz values, \
             residuals, top Ritz vector"
        }
        Scenario::LanczosWarm => {
            "8-6-5-3 softplus (Xavier init), MSE, GD lr 0.5, 20 steps; sharpness at every step \
             by warm-started Lanczos (tolerance 1e-3, at most 8 steps) from the extrapolation of \
             the two previous eigenvectors; hash = params, Ritz vector, residual, product counts"
        }
        Scenario::LanczosPredicted => {
            "as lanczos_warm, but GD lr 0.9 and the start predicted from up to 8 previous \
             eigenvectors (predict_start: linear or period-two extrapolation, chosen by \
             backtests); hash = params, Ritz vector, residual, product counts, prediction"
        }
        Scenario::LeanLanczos => {
            "8-6-5-3 softplus (Xavier init), MSE, GD lr 0.9, 20 steps; sharpness at every step \
             by lean_lanczos (Lanczos in four vectors, two passes; tolerance 1e-3, at most 8 \
             steps) warm-started from the previous Ritz vector, of the Hessian at even steps \
             and of a preconditioned D^1/2 H D^1/2 (D^1/2 = 1 / (1 + |grad|)) at odd \
             steps; hash = params, Ritz vector, residual, product count, converged"
        }
        Scenario::Hutchinson => {
            "8-6-3 elu, MSE, GD lr 0.3, 8 steps; at each step Hutchinson's trace with 4 \
             Rademacher probes: sharpness column = trace estimate, hash = params, mean and \
             standard error (f64 bits)"
        }
        Scenario::DiagLinear => {
            "diagonal linear network (theta1 theta2 - 1)^2 / 2 from (2.5, 0.2), GD lr 0.35 \
             (lr * sharpness = 2.19 at the start, 1.57 at the flatter minimum it settles in), \
             40 steps; sharpness column = closed-form lambda_max, hash = \
             theta, eigenvector, lambda_min, power-iteration value and vector"
        }
        Scenario::Micromath => {
            "8-6-3 tanh, cross-entropy, micromath backend (exp, ln, tanh), GD lr 1, 30 steps; \
             sharpness every 10 steps"
        }
        Scenario::DenseSpectrum => {
            "8-6-3 tanh (75 parameters), MSE, GD lr 0.5, 3 steps; at each step the dense \
             Hessian's eigen-decomposition (Householder + QL: more than 64 rows) and a 72-step \
             Lanczos run (its tridiagonal matrix by QL): sharpness column = top dense \
             eigenvalue, hash = params, dense eigenvalues and top eigenvector (f64 bits), \
             Lanczos steps, Ritz values, residuals"
        }
    }
}

pub(crate) fn run<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    s: Scenario,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    let prob = Problem::generate(DATA_SEED);
    let classes = prob.classes()?;
    let name = s.name();
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let fit = |arch: Arch, init: Init, seed: u64, opt: Optimizer, lr: f32| Train {
        arch,
        init,
        init_seed: seed,
        opt,
        lr,
        steps: 30,
        sharp_every: 10,
        preconditioned: false,
        hash_eigvec: false,
    };
    let pytorch = Init::PytorchDefault;
    match s {
        Scenario::GdStable => {
            let arch = shallow(Activation::Tanh, Loss::Mse)?;
            train(name, &fit(arch, pytorch, 1, gd, 0.5), classes, eval, sink)
        }
        Scenario::GdEos => {
            let arch = shallow(Activation::Tanh, Loss::Mse)?;
            train(name, &fit(arch, pytorch, 1, gd, 1.2), classes, eval, sink)
        }
        Scenario::SgdShuffle => sgd(name, &prob, eval, sink),
        Scenario::MomentumHeavyBall => {
            let arch = shallow(Activation::Gelu, Loss::Mse)?;
            let opt = Optimizer::Momentum(MomentumConfig::default());
            train(name, &fit(arch, pytorch, 3, opt, 0.1), classes, eval, sink)
        }
        Scenario::MomentumNesterov => {
            let arch = deep(Activation::Elu, Loss::CrossEntropy)?;
            let opt = Optimizer::Momentum(MomentumConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
            });
            train(name, &fit(arch, pytorch, 4, opt, 0.1), classes, eval, sink)
        }
        Scenario::Adam => {
            let arch = deep(Activation::Relu, Loss::CrossEntropy)?;
            let opt = Optimizer::Adam(AdamConfig::default());
            let t = Train {
                preconditioned: true,
                sharp_every: 5,
                ..fit(arch, Init::KaimingNormal, 5, opt, 1e-2)
            };
            train(name, &t, classes, eval, sink)
        }
        Scenario::AdamClipped => {
            let arch = shallow(Activation::Tanh, Loss::CrossEntropy)?;
            let opt = Optimizer::Adam(AdamConfig {
                beta2: 0.99,
                weight_decay: 1e-2,
                decoupled: true,
                clip: Clip::Upper(0.05),
                ..AdamConfig::default()
            });
            let t = Train {
                preconditioned: true,
                sharp_every: 5,
                ..fit(arch, pytorch, 6, opt, 1e-2)
            };
            train(name, &t, classes, eval, sink)
        }
        Scenario::HvpExact => {
            let arch = deep(Activation::Tanh, Loss::CrossEntropy)?;
            let h = Hvp {
                arch,
                init: Init::LecunNormal,
                seed: 7,
                method: HvpMethod::Exact,
                lr: 0.5,
                steps: 12,
            };
            hvp(name, &h, classes, eval, sink)
        }
        Scenario::HvpFd => {
            let arch = shallow(Activation::Tanh, Loss::Mse)?;
            let h = Hvp {
                arch,
                init: pytorch,
                seed: 8,
                method: HvpMethod::FiniteDifference,
                lr: 0.3,
                steps: 12,
            };
            hvp(name, &h, prob.regression()?, eval, sink)
        }
        Scenario::PowerWarm => {
            let arch = deep(Activation::Softplus, Loss::Mse)?;
            let t = Train {
                steps: 20,
                sharp_every: 1,
                hash_eigvec: true,
                ..fit(arch, Init::XavierUniform, 9, gd, 0.5)
            };
            train(name, &t, classes, eval, sink)
        }
        Scenario::Lanczos => lanczos_scenario(name, classes, eval, sink),
        Scenario::LanczosWarm => lanczos_warm(name, classes, eval, sink, false),
        Scenario::LanczosPredicted => lanczos_warm(name, classes, eval, sink, true),
        Scenario::LeanLanczos => lean_lanczos_scenario(name, classes, eval, sink),
        Scenario::Hutchinson => hutchinson(name, classes, eval, sink),
        Scenario::DiagLinear => diag_linear(name, sink),
        Scenario::Micromath => {
            let arch =
                shallow(Activation::Tanh, Loss::CrossEntropy)?.with_math(MathBackend::Micromath);
            train(name, &fit(arch, pytorch, 12, gd, 1.0), classes, eval, sink)
        }
        Scenario::DenseSpectrum => dense_spectrum(name, classes, eval, sink),
    }
}

/// A training run with optional sharpness measurements.
struct Train {
    arch: Arch,
    init: Init,
    init_seed: u64,
    opt: Optimizer,
    lr: f32,
    steps: u32,
    /// Measure every this many steps (0: never).
    sharp_every: u32,
    /// Measure `lambda_max(diag(step sizes) H)` instead of `lambda_max(H)` (from step 1 on).
    preconditioned: bool,
    /// Also hash the eigenvector and the number of products of each measurement.
    hash_eigvec: bool,
}

/// Records are taken at steps `0..=steps`, before each update: the loss at the current
/// parameters, the measurement (if any) and the parameter hash.
fn train<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    t: &Train,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    let p = t.arch.n_params();
    t.opt.validate()?;
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    t.arch.init(params, t.init, t.init_seed)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut v = [0.0f32; MAX_PARAMS];
    let v = &mut v[..p];
    SplitMix64::new(START_SEED ^ t.init_seed).fill_normal(v);
    let mut scratch = [0.0f32; MAX_PARAMS];
    let scratch = &mut scratch[..p];
    let mut sqrt_d = [0.0f32; MAX_PARAMS];
    let sqrt_d = &mut sqrt_d[..p];
    let mut tmp = [0.0f32; MAX_PARAMS];
    let tmp = &mut tmp[..p];
    let mut state_buf = [0.0f32; 2 * MAX_PARAMS];
    let mut state = OptState {
        t: 0,
        buf: &mut state_buf[..t.opt.state_len(p)],
    };
    for step in 0..=t.steps {
        let measure =
            t.sharp_every > 0 && step % t.sharp_every == 0 && !(t.preconditioned && step == 0);
        let (loss, sharp, products) = {
            let mut obj = eval.objective(&t.arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            if measure {
                let mut op = HessianOp::exact(&mut obj, params);
                let e = if t.preconditioned {
                    t.opt.step_sizes(t.lr, &state, sqrt_d)?;
                    for d in sqrt_d.iter_mut() {
                        *d = edgewise_core::math::sqrt(*d);
                    }
                    let mut pop = PreconditionedOp::new(&mut op, sqrt_d, tmp)?;
                    sharpness(&mut pop, v, scratch, &POWER)?
                } else {
                    sharpness(&mut op, v, scratch, &POWER)?
                };
                (loss, e.value.to_bits(), e.iterations)
            } else {
                (loss, NOT_MEASURED, 0)
            }
        };
        check_finite(loss)?;
        let mut h = Fnv64::new();
        h.f32s(params);
        if t.hash_eigvec {
            h.f32s(v).u32(products);
        }
        sink.record(name, step, loss.to_bits(), sharp, h.finish());
        if step < t.steps {
            t.opt.step(t.lr, params, grad, &mut state)?;
        }
    }
    Ok(t.steps + 1)
}

/// A scenario must stay finite: NaN bit patterns differ between FPUs (x86's default NaN is
/// negative, ARM's positive), so a NaN would make the comparison meaningless.
fn check_finite(loss: f32) -> Result<(), Error> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite("scenario loss (retune the scenario)"))
    }
}

/// Minibatch SGD over byte features: batch 10 of 32 samples (batches of 10, 10, 10, 2).
fn sgd<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    prob: &Problem,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    const EPOCHS: u64 = 4;
    let arch = shallow(Activation::Softplus, Loss::CrossEntropy)?;
    let data = prob.byte_classes()?;
    let p = arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    arch.init(params, Init::PytorchDefault, 2)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let opt = Optimizer::Gd { weight_decay: 1e-3 };
    let lr = 0.5;
    let mut state = OptState { t: 0, buf: &mut [] };
    let sampler = EpochSampler::new(N, 10, false, SGD_SEED)?;
    let mut order = [0u32; N];
    let mut step = 0u32;
    for epoch in 0..EPOCHS {
        sampler.epoch_order(epoch, &mut order)?;
        for b in 0..sampler.batches_per_epoch() {
            let batch = data.select(sampler.batch(&order, b))?;
            let loss = eval.objective(&arch, batch)?.loss_grad(params, grad)?;
            check_finite(loss)?;
            let hash = Fnv64::new().f32s(params).finish();
            sink.record(name, step, loss.to_bits(), NOT_MEASURED, hash);
            opt.step(lr, params, grad, &mut state)?;
            step += 1;
        }
    }
    let loss = eval.objective(&arch, data)?.loss(params)?;
    check_finite(loss)?;
    let hash = Fnv64::new().f32s(params).finish();
    sink.record(name, step, loss.to_bits(), NOT_MEASURED, hash);
    Ok(step + 1)
}

/// The SGD shuffle seed.
const SGD_SEED: u64 = 0x5eed_5600;

struct Hvp {
    arch: Arch,
    init: Init,
    seed: u64,
    method: HvpMethod,
    lr: f32,
    steps: u32,
}

/// GD; at each step one Hessian-vector product along `SplitMix64::derive(seed, step)` normals.
fn hvp<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    h: &Hvp,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    let p = h.arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    h.arch.init(params, h.init, h.seed)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut v = [0.0f32; MAX_PARAMS];
    let v = &mut v[..p];
    let mut hv = [0.0f32; MAX_PARAMS];
    let hv = &mut hv[..p];
    let mut fd_scratch = [0.0f32; 2 * MAX_PARAMS];
    let fd_scratch = &mut fd_scratch[..2 * p];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=h.steps {
        SplitMix64::derive(h.seed, step as u64).fill_normal(v);
        let loss = {
            let mut obj = eval.objective(&h.arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            let mut op = HessianOp::new(&mut obj, params, h.method, fd_scratch)?;
            op.apply(v, hv)?;
            loss
        };
        check_finite(loss)?;
        let q = (dot64(v, hv) / dot64(v, v)) as f32;
        let hash = Fnv64::new().f32s(params).f32s(hv).finish();
        sink.record(name, step, loss.to_bits(), q.to_bits(), hash);
        if step < h.steps {
            gd.step(h.lr, params, grad, &mut state)?;
        }
    }
    Ok(h.steps + 1)
}

/// GD; at each step warm-started Lanczos from the extrapolated start (`predicted`: from the
/// start [`predict_start`] predicts from the history of eigenvectors).
fn lanczos_warm<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
    predicted: bool,
) -> Result<u32, Error> {
    const K: usize = 8;
    const STEPS: u32 = 20;
    let cfg = WarmLanczosConfig {
        tol: 1e-3,
        max_steps: K,
        k: 1,
    };
    let arch = deep(Activation::Softplus, Loss::Mse)?;
    let p = arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    arch.init(params, Init::XavierUniform, 9)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut v = [0.0f32; MAX_PARAMS];
    let v = &mut v[..p];
    SplitMix64::new(START_SEED ^ 9).fill_normal(v);
    let mut latest = [0.0f32; MAX_PARAMS];
    let latest = &mut latest[..p];
    let mut before = [0.0f32; MAX_PARAMS];
    let before = &mut before[..p];
    let mut basis = [0.0f32; (K + 1) * MAX_PARAMS];
    let basis = &mut basis[..(K + 1) * p];
    let mut work = [0.0f64; lanczos_work_len(K)];
    let mut pair = [Eigenpair {
        value: 0.0,
        residual: 0.0,
        iterations: 0,
        converged: false,
    }];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let lr = if predicted { 0.9 } else { 0.5 };
    let mut state = OptState { t: 0, buf: &mut [] };
    // Previous eigenvectors, newest first (`predicted`).
    let mut hist = [[0.0f32; MAX_PARAMS]; PREDICT_HISTORY];
    let mut kind = 0u32;
    for step in 0..=STEPS {
        let s = step as usize;
        if predicted && s >= 1 {
            let mut refs: [&[f32]; PREDICT_HISTORY] = [&[]; PREDICT_HISTORY];
            let h = s.min(PREDICT_HISTORY);
            for (r, v) in refs.iter_mut().zip(&hist).take(h) {
                *r = &v[..p];
            }
            kind = predict_start(&refs[..h], v)? as u32;
        } else if !predicted && step >= 2 {
            extrapolate_start(latest, before, v)?;
        }
        before.copy_from_slice(latest);
        let (loss, r) = {
            let mut obj = eval.objective(&arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            let mut op = HessianOp::exact(&mut obj, params);
            let r = warm_lanczos(&mut op, &cfg, v, basis, &mut work, &mut pair)?;
            (loss, r)
        };
        latest.copy_from_slice(v);
        hist.copy_within(..PREDICT_HISTORY - 1, 1);
        hist[0][..p].copy_from_slice(v);
        check_finite(loss)?;
        let mut hash = Fnv64::new();
        hash.f32s(params)
            .f32s(v)
            .f32s(&[pair[0].residual])
            .u32(r.steps as u32)
            .u32(r.top_steps as u32);
        if predicted {
            hash.u32(kind);
        }
        sink.record(
            name,
            step,
            loss.to_bits(),
            pair[0].value.to_bits(),
            hash.finish(),
        );
        if step < STEPS {
            gd.step(lr, params, grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}

fn lean_lanczos_scenario<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    const K: usize = 8;
    const STEPS: u32 = 20;
    let cfg = LeanLanczosConfig {
        tol: 1e-3,
        max_steps: K,
    };
    let arch = deep(Activation::Softplus, Loss::Mse)?;
    let p = arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    arch.init(params, Init::XavierUniform, 9)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut v = [0.0f32; MAX_PARAMS];
    let v = &mut v[..p];
    SplitMix64::new(START_SEED ^ 10).fill_normal(v);
    let mut scratch = [0.0f32; 3 * MAX_PARAMS];
    let scratch = &mut scratch[..3 * p];
    let mut sqrt_d = [0.0f32; MAX_PARAMS];
    let sqrt_d = &mut sqrt_d[..p];
    let mut tmp = [0.0f32; MAX_PARAMS];
    let tmp = &mut tmp[..p];
    let mut work = [0.0f64; lean_lanczos_work_len(K)];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=STEPS {
        let (loss, e) = {
            let mut obj = eval.objective(&arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            let mut op = HessianOp::exact(&mut obj, params);
            let e = if step % 2 == 0 {
                lean_lanczos(&mut op, &cfg, v, scratch, &mut work)?
            } else {
                for (d, &g) in sqrt_d.iter_mut().zip(grad.iter()) {
                    *d = 1.0 / (1.0 + if g < 0.0 { -g } else { g });
                }
                let mut pre = PreconditionedOp::new(&mut op, sqrt_d, tmp)?;
                lean_lanczos(&mut pre, &cfg, v, scratch, &mut work)?
            };
            (loss, e)
        };
        check_finite(loss)?;
        let mut hash = Fnv64::new();
        hash.f32s(params)
            .f32s(v)
            .f32s(&[e.residual])
            .u32(e.iterations)
            .u32(e.converged as u32);
        sink.record(name, step, loss.to_bits(), e.value.to_bits(), hash.finish());
        if step < STEPS {
            gd.step(0.9, params, grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}

fn lanczos_scenario<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    const K: usize = 8;
    const STEPS: u32 = 6;
    let arch = deep(Activation::Gelu, Loss::CrossEntropy)?;
    let cfg = LanczosConfig { steps: K };
    let p = arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    arch.init(params, Init::PytorchDefault, 10)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut start = [0.0f32; MAX_PARAMS];
    let start = &mut start[..p];
    SplitMix64::new(START_SEED).fill_normal(start);
    let mut basis = [0.0f32; (K + 1) * MAX_PARAMS];
    let basis = &mut basis[..(K + 1) * p];
    let mut work = [0.0f64; lanczos_work_len(K)];
    let mut values = [0.0f32; K];
    let mut residuals = [0.0f32; K];
    let mut ritz = [0.0f32; MAX_PARAMS];
    let ritz = &mut ritz[..p];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=STEPS {
        let (loss, m) = {
            let mut obj = eval.objective(&arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            let mut op = HessianOp::exact(&mut obj, params);
            let r = lanczos(
                &mut op,
                &cfg,
                start,
                basis,
                &mut work,
                &mut values,
                &mut residuals,
            )?;
            ritz_vector(basis, &work, &cfg, &r, 0, ritz)?;
            (loss, r.steps)
        };
        check_finite(loss)?;
        let hash = Fnv64::new()
            .f32s(params)
            .u32(m as u32)
            .f32s(&values[..m])
            .f32s(&residuals[..m])
            .f32s(ritz)
            .finish();
        sink.record(name, step, loss.to_bits(), values[0].to_bits(), hash);
        if step < STEPS {
            gd.step(0.5, params, grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}

/// GD; at each step Hutchinson's trace with probes from `SplitMix64::derive(seed, step)`.
fn hutchinson<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    const STEPS: u32 = 8;
    const SEED: u64 = 0x7ace;
    let arch = shallow(Activation::Elu, Loss::Mse)?;
    let p = arch.n_params();
    let mut params = [0.0f32; MAX_PARAMS];
    let params = &mut params[..p];
    arch.init(params, Init::PytorchDefault, 11)?;
    let mut grad = [0.0f32; MAX_PARAMS];
    let grad = &mut grad[..p];
    let mut z = [0.0f32; MAX_PARAMS];
    let z = &mut z[..p];
    let mut az = [0.0f32; MAX_PARAMS];
    let az = &mut az[..p];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=STEPS {
        let (loss, est) = {
            let mut obj = eval.objective(&arch, data)?;
            let loss = obj.loss_grad(params, grad)?;
            let mut op = HessianOp::exact(&mut obj, params);
            let mut rng = SplitMix64::derive(SEED, step as u64);
            let est = edgewise_core::hutchinson_trace(&mut op, 4, &mut rng, z, az)?;
            (loss, est)
        };
        check_finite(loss)?;
        let hash = Fnv64::new()
            .f32s(params)
            .f64(est.mean)
            .f64(est.std_err)
            .finish();
        sink.record(
            name,
            step,
            loss.to_bits(),
            (est.mean as f32).to_bits(),
            hash,
        );
        if step < STEPS {
            gd.step(0.3, params, grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}

/// GD on the diagonal linear network beyond the stability threshold.
fn diag_linear<S: Sink + ?Sized>(name: &str, sink: &mut S) -> Result<u32, Error> {
    const STEPS: u32 = 40;
    const LR: f32 = 0.35;
    let mut net = DiagLinearNet { target: 1.0 };
    let mut theta = [2.5f32, 0.2];
    let mut grad = [0.0f32; 2];
    let mut v = [1.0f32, 0.0];
    let mut scratch = [0.0f32; 2];
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=STEPS {
        let loss = net.loss_grad(&theta, &mut grad)?;
        check_finite(loss)?;
        let (l_max, l_min, ev) = net.eigen(theta);
        let power = {
            let mut op = HessianOp::exact(&mut net, &theta);
            sharpness(&mut op, &mut v, &mut scratch, &POWER)?
        };
        let hash = Fnv64::new()
            .f32s(&theta)
            .f32s(&ev)
            .u32(l_min.to_bits())
            .u32(power.value.to_bits())
            .f32s(&v)
            .finish();
        sink.record(name, step, loss.to_bits(), l_max.to_bits(), hash);
        if step < STEPS {
            gd.step(LR, &mut theta, &grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}

/// GD on the 8-6-3 network (75 parameters, more than the Jacobi method's 64 rows); at each step
/// the dense Hessian's eigen-decomposition and a 72-step Lanczos run.
fn dense_spectrum<E: Evaluator + ?Sized, S: Sink + ?Sized>(
    name: &str,
    data: Data<'_>,
    eval: &mut E,
    sink: &mut S,
) -> Result<u32, Error> {
    const P: usize = param_count(&SHALLOW);
    const K: usize = 72;
    const STEPS: u32 = 3;
    let arch = shallow(Activation::Tanh, Loss::Mse)?;
    if arch.n_params() != P {
        return Err(Error::InvalidArch(
            "dense_spectrum: unexpected parameter count",
        ));
    }
    let mut params = [0.0f32; P];
    arch.init(&mut params, Init::PytorchDefault, 13)?;
    let mut grad = [0.0f32; P];
    let (mut h, mut e, mut col) = ([0.0f32; P * P], [0.0f32; P], [0.0f32; P]);
    // The dense matrix and its eigenvectors, then the Lanczos work buffer.
    let mut big = [0.0f64; 2 * P * P];
    let mut values = [0.0f64; P];
    let mut start = [0.0f32; P];
    SplitMix64::new(START_SEED).fill_normal(&mut start);
    let mut basis = [0.0f32; (K + 1) * P];
    let (mut ritz, mut res) = ([0.0f32; K], [0.0f32; K]);
    let cfg = LanczosConfig { steps: K };
    let gd = Optimizer::Gd { weight_decay: 0.0 };
    let mut state = OptState { t: 0, buf: &mut [] };
    for step in 0..=STEPS {
        let mut obj = eval.objective(&arch, data)?;
        let loss = obj.loss_grad(&params, &mut grad)?;
        check_finite(loss)?;
        let mut op = HessianOp::exact(&mut obj, &params);
        dense_hessian(&mut op, &mut h, &mut e, &mut col)?;
        let (a, vecs) = big.split_at_mut(P * P);
        for (k, x) in a.iter_mut().enumerate() {
            *x = 0.5 * (h[k] as f64 + h[(k % P) * P + k / P] as f64);
        }
        symmetric_eigen(a, P, vecs, &mut values)?;
        let mut hash = Fnv64::new();
        hash.f32s(&params);
        for &v in values.iter() {
            hash.f64(v);
        }
        for r in 0..P {
            hash.f64(vecs[r * P]);
        }
        let r = lanczos(
            &mut op,
            &cfg,
            &start,
            &mut basis,
            &mut big[..lanczos_work_len(K)],
            &mut ritz,
            &mut res,
        )?;
        let m = r.steps;
        let hash = hash.u32(m as u32).f32s(&ritz[..m]).f32s(&res[..m]).finish();
        sink.record(
            name,
            step,
            loss.to_bits(),
            (values[0] as f32).to_bits(),
            hash,
        );
        if step < STEPS {
            gd.step(0.5, &mut params, &grad, &mut state)?;
        }
    }
    Ok(STEPS + 1)
}
