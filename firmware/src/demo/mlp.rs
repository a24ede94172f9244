//! A 64-16-10 tanh network on the embedded digits, full batch, with the sharpness tracked by
//! warm-started Lanczos in four vectors of memory (`lean_lanczos`) on exact Hessian-vector
//! products.

use super::digits::{self, DIM, N_TEST, N_TRAIN, TEST_X, TEST_Y, TRAIN_X, TRAIN_Y};
use super::{fnv1a, show};
use core::sync::atomic::{AtomicBool, Ordering};
use edgewise_core::{
    eigenvector_rotation, lean_lanczos, lean_lanczos_work_len, param_count,
    static_mlp::static_workspace_len, Activation, Arch, Data, Eigenpair, Features, HessianOp, Init,
    LeanLanczosConfig, Loss, MlpObjective, OptState, Optimizer, PreconditionedOp, SplitMix64,
    Targets,
};

/// Layer widths: 64 pixels, 16 tanh units, 10 linear outputs.
pub const WIDTHS: [usize; 3] = [digits::DIM, 16, digits::CLASSES];
/// Parameters (1210).
pub const P: usize = param_count(&WIDTHS);
/// Samples per tile of the forward/backward passes (memory only: results do not depend on it).
pub const TILE: usize = 4;
/// Workspace floats for gradients and Hessian-vector products over one tile.
pub const WS: usize = static_workspace_len(&WIDTHS, TILE);

/// The network: tanh hidden layer, mean squared error against one-hot targets.
pub const ARCH: Arch = match Arch::new(&WIDTHS, Activation::Tanh, Loss::Mse) {
    Ok(a) => a,
    Err(_) => panic!("bad widths"),
};
const _: () = assert!(ARCH.n_params() == P && ARCH.workspace_len(TILE) == WS);

/// Seed of the initialisation (PyTorch's default scheme) and of the first measurement's start
/// vector. Seed 0 with the split seed 0 is what `edgewise train --seed 0` does.
pub const SEED: u64 = 0;

/// The sharpness tracker: Lanczos without a stored basis (`lean_lanczos`: two passes of the
/// three-term recurrence, `2 m - 1` products for `m` steps), relative residual 1e-3, at most 20
/// steps (12 on the soft-float targets). The stored-basis tracker of the host
/// (`SharpnessTracker`) would need 21 vectors at 20 steps, 102 KB for this model; warm-started
/// power iteration (two vectors), which the demo used before, stopped at its cap of 20 products
/// short of the tolerance at the edge of stability, up to 6% below `lambda_max`.
pub const LANCZOS: LeanLanczosConfig = LeanLanczosConfig {
    tol: 1e-3,
    max_steps: if super::FULL { 20 } else { 12 },
};

/// Length of the tracker's f64 work buffer (on the stack: 800 bytes at 20 steps).
const LANCZOS_WORK: usize = lean_lanczos_work_len(LANCZOS.max_steps);

/// The demo's buffers: 57,072 bytes of f32, zero-initialised (`.bss`, no flash image).
pub struct Buffers {
    params: [f32; P],
    grad: [f32; P],
    /// Current top-eigenvector estimate (the warm start of the next measurement).
    v: [f32; P],
    /// The previous measurement's eigenvector, for the rotation.
    v_prev: [f32; P],
    /// The tracker's three vectors (the Lanczos recurrence's `q_(j-1)`, `q_j`, `A q_j`).
    scratch: [f32; 3 * P],
    /// The preconditioned operator's scratch.
    tmp: [f32; P],
    /// Optimizer state (Adam: first and second moments).
    opt: [f32; 2 * P],
    ws: [f32; WS],
}

impl Buffers {
    /// The buffers, once: `None` on a second call. They live in a `static` rather than on the
    /// stack so that the stack stays small and the linker accounts for them.
    pub fn take() -> Option<&'static mut Buffers> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        static mut BUFFERS: Buffers = Buffers {
            params: [0.0; P],
            grad: [0.0; P],
            v: [0.0; P],
            v_prev: [0.0; P],
            scratch: [0.0; 3 * P],
            tmp: [0.0; P],
            opt: [0.0; 2 * P],
            ws: [0.0; WS],
        };
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: TAKEN makes this the only reference ever handed out to BUFFERS, and nothing
        // else names it.
        Some(unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) })
    }
}

/// The first `n` samples of the training set (200 samples, 20 per class, in a seeded random
/// order), read in place from flash.
pub fn train_data(n: usize) -> Data<'static> {
    let n = n.min(N_TRAIN);
    data(&TRAIN_X[..n * DIM], &TRAIN_Y[..n])
}

/// The test set (100 samples, 10 per class).
pub fn test_data() -> Data<'static> {
    data(&TEST_X, &TEST_Y)
}

fn data(x: &'static [u8], y: &'static [u16]) -> Data<'static> {
    let features = Features::U8 {
        bytes: x,
        scale: 1.0 / 16.0,
    };
    match Data::with_features(features, DIM, Targets::Classes(y)) {
        Ok(d) => d,
        Err(_) => panic!("embedded data set has a bad shape"),
    }
}

const _: () = assert!(TRAIN_X.len() == N_TRAIN * DIM && TEST_X.len() == N_TEST * DIM);

/// One training run.
#[derive(Clone, Copy)]
pub struct Run {
    /// Short name for the log.
    pub name: &'static str,
    pub opt: Optimizer,
    pub lr: f32,
    pub steps: u32,
    /// Measure the sharpness every `every` steps (and after the last one).
    pub every: u32,
    /// Training samples: the first `n_train` of the embedded 200.
    pub n_train: usize,
}

impl Run {
    /// GD's threshold is on `lr * S` (2); Adam's on the preconditioned sharpness
    /// `lambda_max(P^-1 H)` ((2 + 2 beta1) / (1 - beta1), 38 at beta1 = 0.9).
    pub fn threshold(&self) -> f32 {
        self.opt.stability_threshold()
    }

    /// Whether the run is tracked by the preconditioned sharpness (adaptive optimizers).
    pub fn preconditioned(&self) -> bool {
        !matches!(self.opt, Optimizer::Gd { .. })
    }
}

/// What a run ended with.
#[derive(Clone, Copy, Default)]
pub struct Outcome {
    pub final_loss: f32,
    /// Sharpness `lambda_max(H)` at the end.
    pub final_sharpness: f32,
    /// The tracked stability quantity at the end: `lr * S` for GD, `lambda_max(P^-1 H)` for
    /// Adam; compare with [`Run::threshold`].
    pub final_stab: f32,
    /// Its largest measured value.
    pub max_stab: f32,
    pub train_acc: f32,
    pub test_acc: f32,
    /// Steps whose loss exceeded the previous step's (uphill steps).
    pub uphill: u32,
    /// Measurements beyond the threshold.
    pub above: u32,
    pub measurements: u32,
    /// Largest eigenvector rotation between consecutive measurements.
    pub max_rotation: f32,
    /// Hessian-vector products spent on curvature.
    pub hvps: u32,
    /// Measurements that stopped at the step cap short of the tolerance.
    pub unconverged: u32,
    /// FNV-1a of the final parameters' bits (identical on every target).
    pub hash: u32,
}

/// Trains from the seeded initialisation; every `run.every` steps measures, before the step,
/// the sharpness (GD) or the preconditioned sharpness (Adam) and logs it.
pub fn train(b: &mut Buffers, run: &Run) -> Outcome {
    let train = train_data(run.n_train);
    let n_opt = run.opt.state_len(P);
    let Buffers {
        params,
        grad,
        v,
        v_prev,
        scratch,
        tmp,
        opt,
        ws,
    } = b;
    expect(ARCH.init(params, Init::PytorchDefault, SEED), "init");
    opt.fill(0.0);
    let mut state = OptState {
        t: 0,
        buf: &mut opt[..n_opt],
    };
    SplitMix64::new(SEED ^ 0x5eed).fill_normal(v);
    let mut work = [0.0f64; LANCZOS_WORK];

    let mut out = Outcome::default();
    let mut prev_loss = f32::INFINITY;
    for step in 0..=run.steps {
        // Adam's preconditioner is undefined before its first step: start measuring after it.
        let first = if run.preconditioned() { run.every } else { 0 };
        let measure = step >= first && (step % run.every == 0 || step == run.steps);
        let mut e = None;
        if measure {
            v_prev.copy_from_slice(v);
            let mut obj = expect(MlpObjective::new(&ARCH, train, ws, TILE), "objective");
            let mut h = HessianOp::exact(&mut obj, params);
            let pair = if run.preconditioned() {
                // P^-1 = diag(per-coordinate step sizes of the next update); the operator is
                // D^1/2 H D^1/2 with D = P^-1 (`grad` is free until the gradient below).
                expect(run.opt.step_sizes(run.lr, &state, grad), "step sizes");
                grad.iter_mut().for_each(|d| *d = libm::sqrtf(*d));
                let mut pre = expect(PreconditionedOp::new(&mut h, grad, tmp), "preconditioner");
                expect(
                    lean_lanczos(&mut pre, &LANCZOS, v, scratch, &mut work),
                    "Lanczos",
                )
            } else {
                expect(
                    lean_lanczos(&mut h, &LANCZOS, v, scratch, &mut work),
                    "Lanczos",
                )
            };
            out.hvps += pair.iterations;
            out.unconverged += !pair.converged as u32;
            e = Some(pair);
        }
        let loss = expect(ARCH.loss_grad(params, &train, grad, ws, TILE), "gradient");
        if !loss.is_finite() {
            defmt::panic!("{=str}: the loss diverged at step {=u32}", run.name, step);
        }
        if loss > prev_loss {
            out.uphill += 1;
        }
        prev_loss = loss;
        out.final_loss = loss;
        if let Some(e) = e {
            let stab = if run.preconditioned() {
                e.value
            } else {
                run.lr * e.value
            };
            let beyond = stab > run.threshold();
            out.above += beyond as u32;
            out.max_stab = out.max_stab.max(stab);
            out.final_stab = stab;
            out.measurements += 1;
            // The first measurement starts from a random vector: no rotation to report.
            let rot = if out.measurements == 1 {
                None
            } else {
                Some(expect(eigenvector_rotation(v_prev, v), "rotation"))
            };
            out.max_rotation = out.max_rotation.max(rot.unwrap_or(0.0));
            log_measurement(run, step, loss, &e, stab, beyond, rot);
        }
        if step < run.steps {
            expect(run.opt.step(run.lr, params, grad, &mut state), "step");
        }
    }
    out.final_sharpness = if run.preconditioned() {
        // The plain sharpness too, for the summary (warm start: the preconditioned vector).
        let mut obj = expect(MlpObjective::new(&ARCH, train, ws, TILE), "objective");
        let mut h = HessianOp::exact(&mut obj, params);
        let e = expect(
            lean_lanczos(&mut h, &LANCZOS, v, scratch, &mut work),
            "Lanczos",
        );
        out.hvps += e.iterations;
        out.unconverged += !e.converged as u32;
        e.value
    } else {
        out.final_stab / run.lr
    };
    let ev = expect(ARCH.evaluate(params, &train, ws, TILE), "evaluate");
    out.train_acc = ev.accuracy;
    let ev = expect(ARCH.evaluate(params, &test_data(), ws, TILE), "evaluate");
    out.test_acc = ev.accuracy;
    out.hash = fnv1a(params);
    out
}

/// One log line: `name step N  loss L  S s  lr*S x [>]  rot r  (hvps k)` for GD,
/// `name step N  loss L  P^-1 S x [>]  rot r  (hvps k)` for Adam; `>` marks a value beyond the
/// threshold, `(hvps k, unconverged)` a measurement short of the tolerance.
fn log_measurement(
    run: &Run,
    step: u32,
    loss: f32,
    e: &Eigenpair,
    stab: f32,
    beyond: bool,
    rot: Option<f32>,
) {
    let mark = if beyond { " >" } else { "  " };
    let (name, lam, st, k) = (run.name, show(e.value), show(stab), e.iterations);
    let unc = if e.converged { "" } else { ", unconverged" };
    let loss = show(loss);
    match (run.preconditioned(), rot) {
        (false, Some(r)) => defmt::println!(
            "{=str} step {=u32:03}  loss {=f32}  S {=f32}  lr*S {=f32}{=str}  rot {=f32}  (hvps {=u32}{=str})",
            name, step, loss, lam, st, mark, show(r), k, unc
        ),
        (false, None) => defmt::println!(
            "{=str} step {=u32:03}  loss {=f32}  S {=f32}  lr*S {=f32}{=str}  (hvps {=u32}{=str})",
            name, step, loss, lam, st, mark, k, unc
        ),
        (true, Some(r)) => defmt::println!(
            "{=str} step {=u32:03}  loss {=f32}  P^-1 S {=f32}{=str}  rot {=f32}  (hvps {=u32}{=str})",
            name, step, loss, lam, mark, show(r), k, unc
        ),
        (true, None) => defmt::println!(
            "{=str} step {=u32:03}  loss {=f32}  P^-1 S {=f32}{=str}  (hvps {=u32}{=str})",
            name, step, loss, lam, mark, k, unc
        ),
    }
}

/// Unwraps a core result; core validates every input, so an error here is a bug in the demo.
fn expect<T>(r: Result<T, edgewise_core::Error>, what: &'static str) -> T {
    match r {
        Ok(x) => x,
        Err(e) => defmt::panic!("{=str}: {}", what, defmt::Display2Format(&e)),
    }
}
