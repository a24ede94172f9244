//! Conformance scenarios shared by the host and the firmware.
//!
//! Every scenario is a fixed computation with `edgewise-core` — same data, seeds, settings and
//! step counts everywhere — that reports, step by step, three numbers through a [`Sink`]:
//!
//! - `loss_bits`: the f32 bit pattern of the loss at that step;
//! - `sharpness_bits`: the f32 bit pattern of the scenario's curvature measure at that step, or
//!   [`NOT_MEASURED`] when the scenario does not measure one at that step;
//! - `param_hash`: [`Fnv64`] (FNV-1a 64) over the f32 bit patterns of the parameters in layout
//!   order, followed, for some scenarios, by more state (an eigenvector, a product vector, Ritz
//!   values; see [`Scenario::describe`]).
//!
//! The host collects the records into golden files (`tests/golden/<scenario>.txt`); the
//! firmware prints them as defmt lines. Bit-identical records on x86_64, Cortex-M4F (hardware
//! single precision), Cortex-M3 and RISC-V 32 (soft float), for every tile size and thread
//! count, are what the conformance tests assert.
//!
//! How the network objective is evaluated is the caller's choice: scenarios are generic over an
//! [`Evaluator`], which turns an architecture and a data view into an
//! [`edgewise_core::Objective`]. [`CoreEvaluator`] is core's single-threaded
//! [`MlpObjective`] with a caller's workspace and tile size; the host tests add one backed by the
//! host's multi-threaded `ParObjective`.
//!
//! The crate is `no_std`, allocation-free, and keeps every buffer on the stack: the largest
//! scenario needs a few KiB (see [`MAX_PARAMS`], [`workspace_len`]).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod problem;
mod scenarios;

use edgewise_core::{Arch, Data, Error, MlpObjective, Objective};

pub use problem::{Problem, MAX_PARAMS, MAX_WIDTH_SUM};

/// `sharpness_bits` of a step at which the scenario measures no curvature. (An all-ones NaN:
/// no FPU produces it as its default NaN, so it cannot be confused with a computed value.)
pub const NOT_MEASURED: u32 = 0xffff_ffff;

/// Where a scenario's per-step records go.
pub trait Sink {
    /// One step of one scenario.
    fn record(
        &mut self,
        scenario: &str,
        step: u32,
        loss_bits: u32,
        sharpness_bits: u32,
        param_hash: u64,
    );
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn record(&mut self, scenario: &str, step: u32, loss: u32, sharpness: u32, hash: u64) {
        (**self).record(scenario, step, loss, sharpness, hash)
    }
}

/// Turns a network and a data view into an objective (loss, gradient, exact Hessian-vector
/// products). Every implementation must give core's bits; the conformance tests check it.
pub trait Evaluator {
    /// The objective of `arch` on `data`.
    fn objective<'a>(
        &'a mut self,
        arch: &'a Arch,
        data: Data<'a>,
    ) -> Result<impl Objective + 'a, Error>;
}

/// Workspace length (f32 values) that [`CoreEvaluator`] needs for tiles of `tile` samples, for
/// every scenario's network.
pub const fn workspace_len(tile: usize) -> usize {
    6 * tile * MAX_WIDTH_SUM + 2 * tile
}

/// Core's single-threaded [`MlpObjective`], over a borrowed workspace, in tiles of `tile`
/// samples.
#[derive(Debug)]
pub struct CoreEvaluator<'w> {
    ws: &'w mut [f32],
    tile: usize,
}

impl<'w> CoreEvaluator<'w> {
    /// `ws` must hold at least [`workspace_len`]`(tile)` values; `tile` must be positive.
    pub fn new(ws: &'w mut [f32], tile: usize) -> Result<Self, Error> {
        if tile == 0 {
            return Err(Error::InvalidConfig("tile size must be positive"));
        }
        if ws.len() < workspace_len(tile) {
            return Err(Error::BufferTooSmall {
                what: "conformance workspace",
                need: workspace_len(tile),
                got: ws.len(),
            });
        }
        Ok(Self { ws, tile })
    }

    /// The tile size.
    pub fn tile(&self) -> usize {
        self.tile
    }
}

impl Evaluator for CoreEvaluator<'_> {
    fn objective<'a>(
        &'a mut self,
        arch: &'a Arch,
        data: Data<'a>,
    ) -> Result<impl Objective + 'a, Error> {
        MlpObjective::new(arch, data, self.ws, self.tile)
    }
}

/// FNV-1a, 64 bits, over bytes; values are fed as the little-endian bytes of their bit
/// patterns, so the hash is the same on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The empty hash (FNV offset basis).
    pub const fn new() -> Self {
        Self(Self::OFFSET)
    }

    /// Feeds bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(Self::PRIME);
        }
        self
    }

    /// Feeds a `u32` (4 bytes, little-endian).
    pub fn u32(&mut self, x: u32) -> &mut Self {
        self.bytes(&x.to_le_bytes())
    }

    /// Feeds a `u64` (8 bytes, little-endian).
    pub fn u64(&mut self, x: u64) -> &mut Self {
        self.bytes(&x.to_le_bytes())
    }

    /// Feeds the bit pattern of each value, in order.
    pub fn f32s(&mut self, xs: &[f32]) -> &mut Self {
        for &x in xs {
            self.u32(x.to_bits());
        }
        self
    }

    /// Feeds the bit pattern of an f64.
    pub fn f64(&mut self, x: f64) -> &mut Self {
        self.u64(x.to_bits())
    }

    /// The hash value.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of the bit patterns of `params`.
pub fn param_hash(params: &[f32]) -> u64 {
    Fnv64::new().f32s(params).finish()
}

/// The named scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Full-batch GD below the stability threshold, sharpness every 5 steps.
    GdStable,
    /// Full-batch GD beyond the threshold (`lr * sharpness > 2` at the start).
    GdEos,
    /// Minibatch SGD with a seeded shuffle per epoch and a partial last batch, byte features.
    SgdShuffle,
    /// Heavy-ball momentum.
    MomentumHeavyBall,
    /// Nesterov momentum.
    MomentumNesterov,
    /// Adam, with the preconditioned sharpness.
    Adam,
    /// Adam with the upper clip of the preconditioner (Clipped-Ada).
    AdamClipped,
    /// Exact Hessian-vector products along a GD trajectory.
    HvpExact,
    /// Finite-difference Hessian-vector products along a GD trajectory (regression targets).
    HvpFd,
    /// Warm-started power iteration at every step.
    PowerWarm,
    /// Lanczos with full re-orthogonalisation.
    Lanczos,
    /// Warm-started Lanczos with the extrapolated start at every step.
    LanczosWarm,
    /// Warm-started Lanczos with the predicted start (`predict_start`) at every step.
    LanczosPredicted,
    /// Warm-started Lanczos in four vectors of memory (`lean_lanczos`) at every step.
    LeanLanczos,
    /// Hutchinson's trace estimate.
    Hutchinson,
    /// The two-parameter diagonal linear network under unstable GD.
    DiagLinear,
    /// GD with the micromath backend.
    Micromath,
    /// The dense Hessian's spectrum and a Lanczos run longer than 64 steps (the Householder + QL
    /// eigen-solver of core, beyond the Jacobi range).
    DenseSpectrum,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 18] = [
        Scenario::GdStable,
        Scenario::GdEos,
        Scenario::SgdShuffle,
        Scenario::MomentumHeavyBall,
        Scenario::MomentumNesterov,
        Scenario::Adam,
        Scenario::AdamClipped,
        Scenario::HvpExact,
        Scenario::HvpFd,
        Scenario::PowerWarm,
        Scenario::Lanczos,
        Scenario::LanczosWarm,
        Scenario::LanczosPredicted,
        Scenario::LeanLanczos,
        Scenario::Hutchinson,
        Scenario::DiagLinear,
        Scenario::Micromath,
        Scenario::DenseSpectrum,
    ];

    /// The scenario's name (also its golden file's stem).
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::GdStable => "gd_stable",
            Scenario::GdEos => "gd_eos",
            Scenario::SgdShuffle => "sgd_shuffle",
            Scenario::MomentumHeavyBall => "momentum_heavy_ball",
            Scenario::MomentumNesterov => "momentum_nesterov",
            Scenario::Adam => "adam",
            Scenario::AdamClipped => "adam_clipped",
            Scenario::HvpExact => "hvp_exact",
            Scenario::HvpFd => "hvp_fd",
            Scenario::PowerWarm => "power_warm",
            Scenario::Lanczos => "lanczos",
            Scenario::LanczosWarm => "lanczos_warm",
            Scenario::LanczosPredicted => "lanczos_predicted",
            Scenario::LeanLanczos => "lean_lanczos",
            Scenario::Hutchinson => "hutchinson",
            Scenario::DiagLinear => "diag_linear",
            Scenario::Micromath => "micromath",
            Scenario::DenseSpectrum => "dense_spectrum",
        }
    }

    /// The scenario with this name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// What the scenario computes and what its three columns hold (one line).
    pub const fn describe(self) -> &'static str {
        scenarios::describe(self)
    }

    /// Runs the scenario, sending its records to `sink`; returns the number of records.
    pub fn run<E: Evaluator + ?Sized, S: Sink + ?Sized>(
        self,
        eval: &mut E,
        sink: &mut S,
    ) -> Result<u32, Error> {
        scenarios::run(self, eval, sink)
    }
}
