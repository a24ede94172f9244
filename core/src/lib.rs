//! # edgewise-core
//!
//! The math of edgewise: fixed-size dense networks, optimizers (GD, SGD, momentum, RMSProp, Adam,
//! AdamW and the paper's clipped preconditioner), exact Hessian-vector products by
//! forward-over-reverse differentiation (Pearlmutter's R-operator), finite-difference ones, and the
//! curvature measures built on them: power iteration, Lanczos, Hutchinson's trace, the
//! preconditioned sharpness, third directional derivatives and eigenvector rotation.
//!
//! The crate is `no_std`, never allocates and never touches files, threads, clocks or terminals.
//! Every buffer is either a fixed-size array (see [`StaticMlp`]) or a slice the caller provides
//! (see [`Arch`]). Every reduction sums in one canonical order (documented in ARCHITECTURE.md and
//! in [`mlp`]), so a result is bit-identical whatever the sample tiling, the number of threads
//! the host uses and the CPU it runs on.
//!
//! ```
//! use edgewise_core::{
//!     sharpness, Activation, Arch, Data, HessianOp, Init, Loss, MlpObjective, PowerConfig, Targets,
//! };
//!
//! // A 2-4-2 tanh network with mean squared error on three samples.
//! let arch = Arch::new(&[2, 4, 2], Activation::Tanh, Loss::Mse).unwrap();
//! let mut params = [0.0f32; 22];
//! arch.init(&mut params, Init::default(), 7).unwrap();
//! let x = [0.5, -1.0, 1.0, 0.25, -0.5, 0.5];
//! let labels = [0u16, 1, 1];
//! let data = Data::new(&x, 2, Targets::Classes(&labels)).unwrap();
//!
//! // Loss and gradient, 2 samples per tile (the tile size never changes a bit of the result).
//! let tile = 2;
//! let mut ws = [0.0f32; 256];
//! assert!(arch.workspace_len(tile) <= ws.len());
//! let mut grad = [0.0f32; 22];
//! let loss = arch.loss_grad(&params, &data, &mut grad, &mut ws, tile).unwrap();
//! assert!(loss > 0.0);
//!
//! // Sharpness: top Hessian eigenvalue by power iteration on exact Hessian-vector products.
//! let mut obj = MlpObjective::new(&arch, data, &mut ws, tile).unwrap();
//! let mut op = HessianOp::exact(&mut obj, &params);
//! let mut v = [1.0f32; 22];
//! let mut scratch = [0.0f32; 22];
//! let top = sharpness(&mut op, &mut v, &mut scratch, &PowerConfig::default()).unwrap();
//! assert!(top.value.is_finite() && top.converged);
//! assert!(top.iterations == op.products());
//! ```
//!
//! ## Training
//!
//! An optimizer is a `Copy` setting; its state lives in a caller buffer of
//! [`Optimizer::state_len`] values (a `const fn`, so the buffer can be a fixed array). Here
//! the paper's clipped Adam ("Clipped-Ada": the preconditioner `sqrt(v_hat)` capped at `c`, so
//! every coordinate's step is at least `lr / (c + eps)`):
//!
//! ```
//! use edgewise_core::{
//!     Activation, AdamConfig, Arch, Clip, Data, Init, Loss, OptState, Optimizer, Schedule,
//!     Targets,
//! };
//!
//! # fn main() -> Result<(), edgewise_core::Error> {
//! let arch = Arch::new(&[2, 4, 2], Activation::Tanh, Loss::Mse)?;
//! let mut params = [0.0f32; 22];
//! arch.init(&mut params, Init::default(), 7)?;
//! let x = [0.5, -1.0, 1.0, 0.25, -0.5, 0.5];
//! let data = Data::new(&x, 2, Targets::Classes(&[0, 1, 1]))?;
//! let (tile, mut ws, mut grad) = (2, [0.0f32; 256], [0.0f32; 22]);
//!
//! const OPT: Optimizer = Optimizer::Adam(AdamConfig {
//!     beta1: 0.9,
//!     beta2: 0.999,
//!     eps: 1e-8,
//!     weight_decay: 0.0,
//!     decoupled: false,
//!     clip: Clip::Upper(0.1),
//! });
//! let mut buf = [0.0f32; OPT.state_len(22)]; // [m | v]
//! let mut state = OptState { t: 0, buf: &mut buf };
//! let schedule = Schedule::default(); // constant
//! let first = arch.loss_grad(&params, &data, &mut grad, &mut ws, tile)?;
//! for t in 0..50 {
//!     arch.loss_grad(&params, &data, &mut grad, &mut ws, tile)?;
//!     OPT.step(schedule.lr(0.01, t), &mut params, &grad, &mut state)?;
//! }
//! let last = arch.loss_grad(&params, &data, &mut grad, &mut ws, tile)?;
//! assert!(last < first && state.t == 50);
//! # Ok(())
//! # }
//! ```
//!
//! Minibatch SGD draws batches with [`EpochSampler`] and views them with [`Data::select`].
//! Non-finite values propagate: a step on a NaN gradient writes NaN parameters and returns
//! `Ok` (the caller checks the loss, as `edgewise train` does); the eigen-solvers return
//! [`Error::NonFinite`].
//!
//! ## Lanczos: both ends of the spectrum and the top eigenvectors
//!
//! ```
//! use edgewise_core::{
//!     lanczos, lanczos_basis_len, lanczos_work_len, ritz_vector, Activation, Arch, Data,
//!     HessianOp, Init, LanczosConfig, Loss, MlpObjective, Targets,
//! };
//!
//! # fn main() -> Result<(), edgewise_core::Error> {
//! # let arch = Arch::new(&[2, 4, 2], Activation::Tanh, Loss::Mse)?;
//! # let mut params = [0.0f32; 22];
//! # arch.init(&mut params, Init::default(), 7)?;
//! # let x = [0.5, -1.0, 1.0, 0.25, -0.5, 0.5];
//! # let data = Data::new(&x, 2, Targets::Classes(&[0, 1, 1]))?;
//! # let (tile, mut ws) = (2, [0.0f32; 256]);
//! const P: usize = 22;
//! const STEPS: usize = 10;
//! let cfg = LanczosConfig { steps: STEPS };
//! let mut basis = [0.0f32; lanczos_basis_len(STEPS, P)]; // (steps + 1) * P
//! let mut work = [0.0f64; lanczos_work_len(STEPS)];
//! let (mut values, mut residuals) = ([0.0f32; STEPS], [0.0f32; STEPS]);
//! let mut obj = MlpObjective::new(&arch, data, &mut ws, tile)?;
//! let mut op = HessianOp::exact(&mut obj, &params);
//! let start = [1.0f32; P]; // any non-zero vector; a random one in practice
//! let r = lanczos(&mut op, &cfg, &start, &mut basis, &mut work, &mut values, &mut residuals)?;
//! let (top, bottom) = (values[0], values[r.steps - 1]); // sharpness and lambda_min estimates
//! let mut v1 = [0.0f32; P];
//! ritz_vector(&basis, &work, &cfg, &r, 0, &mut v1)?; // the top eigenvector
//! assert!(top >= bottom && residuals[0] >= 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! ## Tracking the sharpness during training
//!
//! [`SharpnessTracker`] keeps what warm-started tracking needs (the last eigenvectors, the
//! Lanczos basis) in caller buffers; each measurement starts from the eigenvector predicted from
//! the previous ones ([`predict_start`]) and stops at the tolerance ([`warm_lanczos`]):
//!
//! ```
//! use edgewise_core::{
//!     Activation, Arch, Data, HessianOp, Init, Loss, MlpObjective, SharpnessTracker,
//!     Targets, TrackerBuffers, WarmLanczosConfig,
//! };
//!
//! # fn main() -> Result<(), edgewise_core::Error> {
//! # let arch = Arch::new(&[2, 4, 2], Activation::Tanh, Loss::Mse)?;
//! # let mut params = [0.0f32; 22];
//! # arch.init(&mut params, Init::default(), 7)?;
//! # let x = [0.5, -1.0, 1.0, 0.25, -0.5, 0.5];
//! # let data = Data::new(&x, 2, Targets::Classes(&[0, 1, 1]))?;
//! # let (tile, mut ws, mut grad) = (2, [0.0f32; 256], [0.0f32; 22]);
//! const P: usize = 22;
//! const CFG: WarmLanczosConfig = WarmLanczosConfig { tol: 1e-3, max_steps: 20, k: 1 };
//! let mut storage = [0.0f32; SharpnessTracker::floats(P, CFG.max_steps)];
//! let mut work = [0.0f64; SharpnessTracker::work_len(CFG.max_steps)];
//! let bufs = TrackerBuffers { floats: &mut storage, work: &mut work };
//! let mut tracker = SharpnessTracker::new(P, CFG, bufs, 7)?; // first start drawn from seed 7
//! let lr = 0.5;
//! for _ in 0..20 {
//!     let m = {
//!         let mut obj = MlpObjective::new(&arch, data, &mut ws, tile)?;
//!         let mut op = HessianOp::exact(&mut obj, &params);
//!         tracker.measure(&mut op)?
//!     };
//!     // m.pair.value: the sharpness; lr * m.pair.value > 2: beyond the edge of stability.
//!     assert!(m.pair.converged && m.products >= 1);
//!     arch.loss_grad(&params, &data, &mut grad, &mut ws, tile)?;
//!     for (w, g) in params.iter_mut().zip(&grad) {
//!         *w -= lr * g;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The tracker's basis takes `max_steps + 1` vectors. Where that is too much (a
//! microcontroller: 102 KB at 20 steps for 1,210 parameters), [`lean_lanczos`] measures the top
//! pair from the previous eigenvector in four vectors, running its steps twice (`2 m - 1`
//! products for `m` steps); the firmware demo tracks with it.
//!
//! ## Speed
//!
//! The evaluations here (`Arch::loss_grad`, `Arch::hvp`, [`MlpObjective`]) are the portable
//! reference path: one thread, with [`Portable`]'s multiply-add (`libm::fmaf`, a correctly
//! rounded software FMA where the target has no instruction), which the compiler cannot
//! vectorise. It is what the microcontrollers run. On a PC the `edgewise` crate's engine
//! (`edgewise::engine::ParObjective`, an [`Objective`] like [`MlpObjective`]) gives the same
//! bits with vectorised kernels, hardware FMA and threads, about 75x faster on one core at the
//! 784-32-32-32-10 size (README, "The core library").
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `!(x > 0.0)` is how this crate rejects NaN along with out-of-range values: keep it.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Kernels take the buffers they work on as separate arguments, by design.
#![allow(clippy::too_many_arguments)]

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub mod activation;
pub mod arch;
pub mod curvature;
pub mod data;
pub mod diag_linear;
pub mod eig;
pub mod error;
pub mod init;
mod kernels;
pub mod loss;
pub mod math;
pub mod mlp;
pub mod objective;
pub mod operator;
pub mod optim;
pub mod quadratic;
pub mod rng;
pub mod sampler;
pub mod static_mlp;
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")),
    allow(dead_code)
)]
mod tanh;
pub mod vec;

pub use activation::Activation;
pub use arch::{checked_param_count, param_count, Arch, LayerSpan, MAX_LAYERS};
pub use curvature::{
    dense_hessian, eigenvector_rotation, hutchinson_trace, subspace_score, third_derivative,
    TraceEstimate, MAX_SUBSPACE_K,
};
pub use data::{Data, Features, Targets};
pub use diag_linear::DiagLinearNet;
pub use eig::jacobi::symmetric_eigen;
pub use eig::lanczos::{
    checked_lanczos_basis_len, checked_lanczos_work_len, extrapolate_start, lanczos,
    lanczos_basis_len, lanczos_work_len, predict_start, ritz_vector, warm_lanczos, LanczosConfig,
    LanczosResult, StartPrediction, WarmLanczosConfig, WarmLanczosResult, PREDICT_HISTORY,
};
pub use eig::lean::{lean_lanczos, lean_lanczos_work_len, LeanLanczosConfig};
pub use eig::power::{
    lambda_min, power_iteration, sharpness, top_k_deflation, Eigenpair, PowerConfig,
};
pub use eig::track::{
    track_sharpness, SharpnessTracker, TrackState, Tracked, TrackerBuffers, TRACK_HISTORY,
};
pub use error::Error;
pub use init::Init;
pub use kernels::{Isa, Portable};
pub use loss::Loss;
pub use math::MathBackend;
pub use mlp::Eval;
pub use mlp::FirstLayer;
pub use objective::{MlpObjective, Objective};
pub use operator::{
    fd_step, DenseOp, HessianOp, HvpMethod, LinearOperator, PreconditionedOp, ShiftedOp,
};
pub use optim::{
    AdamConfig, Clip, MomentumConfig, OptState, Optimizer, RmsPropConfig, Schedule, StateFault,
};
pub use quadratic::Quadratic;
pub use rng::SplitMix64;
pub use sampler::EpochSampler;
pub use static_mlp::{static_workspace_len, StaticMlp};
pub use tanh::{tanh_slice, tanhf};
