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
    extrapolate_start, lanczos, predict_start, warm_lanczos, LanczosConfig, LanczosResult,
    StartPrediction, WarmLanczosConfig, WarmLanczosResult, PREDICT_HISTORY,
};
pub use eig::power::{
    lambda_min, power_iteration, sharpness, top_k_deflation, Eigenpair, PowerConfig,
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
pub use optim::{AdamConfig, Clip, MomentumConfig, OptState, Optimizer, RmsPropConfig, Schedule};
pub use quadratic::Quadratic;
pub use rng::SplitMix64;
pub use sampler::EpochSampler;
pub use static_mlp::StaticMlp;
pub use tanh::{tanh_slice, tanhf};
