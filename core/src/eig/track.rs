//! Warm-started sharpness tracking: one measurement per training step (or every few steps),
//! each started from the eigenvector predicted from the previous measurements
//! ([`predict_start`]) and stopped at the tolerance ([`warm_lanczos`]).
//!
//! [`track_sharpness`] is the one implementation, over a [`TrackState`] in caller buffers
//! (`edgewise train` keeps those in its checkpoints); [`SharpnessTracker`] holds the state and
//! the Lanczos buffers together for callers who just want the next sharpness.

use crate::eig::lanczos::{
    checked_lanczos_basis_len, checked_lanczos_work_len, predict_start, warm_lanczos,
    StartPrediction, WarmLanczosConfig, PREDICT_HISTORY,
};
use crate::eig::power::Eigenpair;
use crate::error::{check_len, check_min, Error};
use crate::operator::LinearOperator;
use crate::rng::SplitMix64;

/// Earlier eigenvectors a [`TrackState`] keeps (with the latest, all [`predict_start`] reads).
pub const TRACK_HISTORY: usize = PREDICT_HISTORY - 1;

/// The state of warm-started tracking, in caller buffers of `dim` values per vector.
#[derive(Debug)]
pub struct TrackState<'a> {
    /// The latest top eigenvector; before the first measurement, the start vector (any
    /// non-zero finite vector, a random one in practice).
    pub latest: &'a mut [f32],
    /// Earlier top eigenvectors, most recent first: [`TRACK_HISTORY`] slots of `dim` values.
    pub history: &'a mut [f32],
    /// Valid vectors in `history` (at most [`TRACK_HISTORY`]).
    pub history_len: usize,
    /// Whether `latest` is a measured eigenvector (`false`: the first start vector).
    pub measured: bool,
}

/// What one tracked measurement found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tracked {
    /// The sharpness (top Ritz value), its residual, the products of the run and whether the
    /// tolerance was met within `max_steps` (see [`warm_lanczos`], "What convergence
    /// certifies").
    pub pair: Eigenpair,
    /// Products until the top pair met the tolerance (`pair.iterations` if it never did).
    pub products: u32,
    /// How the start was predicted (`None` for the first measurement's start vector).
    pub prediction: Option<StartPrediction>,
}

/// One warm-started measurement of the top eigenpair of `op` (`cfg.k` must be 1): predicts
/// the start from `state.latest` and `state.history` (after the first measurement), runs
/// [`warm_lanczos`] from it, moves the previous latest into the history and writes the new
/// eigenvector into `state.latest`. `basis` and `work` are [`warm_lanczos`]'s
/// (`(cfg.max_steps + 1) * dim` f32 and [`crate::lanczos_work_len`]`(cfg.max_steps)` f64); the
/// prediction is written into `basis[..dim]` first, so no other buffer is needed. Settings
/// and buffers are checked before the state changes; an error of the products themselves
/// (a non-finite Hessian-vector product) leaves the prediction in `latest`.
pub fn track_sharpness<O: LinearOperator + ?Sized>(
    op: &mut O,
    cfg: &WarmLanczosConfig,
    state: &mut TrackState<'_>,
    basis: &mut [f32],
    work: &mut [f64],
) -> Result<Tracked, Error> {
    let n = op.dim();
    if cfg.k != 1 {
        return Err(Error::InvalidConfig(
            "sharpness tracking measures the top pair alone (k = 1)",
        ));
    }
    check_len("latest eigenvector", state.latest, n)?;
    let hist_len = TRACK_HISTORY.checked_mul(n).ok_or(Error::InvalidConfig(
        "tracking history length overflows a usize",
    ))?;
    check_len("eigenvector history", state.history, hist_len)?;
    if state.history_len > TRACK_HISTORY || (state.history_len > 0 && !state.measured) {
        return Err(Error::InvalidConfig(
            "tracking history: at most TRACK_HISTORY vectors, and only after a measurement",
        ));
    }
    // Everything warm_lanczos checks, checked before the state changes: a refused call
    // leaves the state as it was.
    if cfg.max_steps == 0 || !(cfg.tol >= 0.0 && cfg.tol.is_finite()) {
        return Err(Error::InvalidConfig(
            "sharpness tracking needs max_steps > 0 and a finite tol >= 0",
        ));
    }
    let basis_len = checked_lanczos_basis_len(cfg.max_steps, n);
    let work_len = checked_lanczos_work_len(cfg.max_steps);
    let (Some(basis_len), Some(work_len)) = (basis_len, work_len) else {
        return Err(Error::InvalidConfig(
            "Lanczos storage for this many steps overflows a usize",
        ));
    };
    check_min("Lanczos basis", basis, basis_len)?;
    check_min("Lanczos work", work, work_len)?;
    let mut prediction = None;
    if state.measured {
        let mut hist: [&[f32]; PREDICT_HISTORY] = [&[]; PREDICT_HISTORY];
        hist[0] = state.latest;
        for (i, slot) in hist[1..=state.history_len].iter_mut().enumerate() {
            *slot = &state.history[i * n..(i + 1) * n];
        }
        prediction = Some(predict_start(&hist[..=state.history_len], &mut basis[..n])?);
        // The latest becomes the most recent history vector; the oldest drops out when full.
        state.history.copy_within(..(TRACK_HISTORY - 1) * n, n);
        state.history[..n].copy_from_slice(state.latest);
        state.history_len = (state.history_len + 1).min(TRACK_HISTORY);
        state.latest.copy_from_slice(&basis[..n]);
    }
    let mut pairs = [Eigenpair {
        value: 0.0,
        residual: 0.0,
        iterations: 0,
        converged: false,
    }];
    let r = warm_lanczos(op, cfg, state.latest, basis, work, &mut pairs)?;
    state.measured = true;
    Ok(Tracked {
        pair: pairs[0],
        products: u32::try_from(r.top_steps).unwrap_or(u32::MAX),
        prediction,
    })
}

/// The buffers of a [`SharpnessTracker`].
#[derive(Debug)]
pub struct TrackerBuffers<'a> {
    /// [`SharpnessTracker::floats`]`(dim, max_steps)` values (or more).
    pub floats: &'a mut [f32],
    /// [`SharpnessTracker::work_len`]`(max_steps)` values (or more).
    pub work: &'a mut [f64],
}

/// Warm-started sharpness tracking over caller buffers ([`track_sharpness`] with its state and
/// Lanczos buffers in one place). The first measurement starts from a seeded random vector.
#[derive(Debug)]
pub struct SharpnessTracker<'a> {
    cfg: WarmLanczosConfig,
    state: TrackState<'a>,
    basis: &'a mut [f32],
    work: &'a mut [f64],
}

impl<'a> SharpnessTracker<'a> {
    /// f32 values a tracker of `dim` parameters needs for at most `max_steps` products per
    /// measurement: the latest eigenvector, [`TRACK_HISTORY`] earlier ones and the Lanczos
    /// basis, `(TRACK_HISTORY + max_steps + 2) * dim` (saturating at `usize::MAX`).
    pub const fn floats(dim: usize, max_steps: usize) -> usize {
        match checked_lanczos_basis_len(max_steps, dim) {
            Some(basis) => match (TRACK_HISTORY + 1).checked_mul(dim) {
                Some(vectors) => basis.saturating_add(vectors),
                None => usize::MAX,
            },
            None => usize::MAX,
        }
    }

    /// f64 values of its Lanczos work buffer, [`crate::lanczos_work_len`]`(max_steps)`.
    pub const fn work_len(max_steps: usize) -> usize {
        match checked_lanczos_work_len(max_steps) {
            Some(len) => len,
            None => usize::MAX,
        }
    }

    /// A tracker for an operator of dimension `dim`, measuring with `cfg` (`k` must be 1),
    /// whose first measurement starts from a standard normal vector drawn from `seed`.
    pub fn new(
        dim: usize,
        cfg: WarmLanczosConfig,
        bufs: TrackerBuffers<'a>,
        seed: u64,
    ) -> Result<Self, Error> {
        if cfg.k != 1 || cfg.max_steps == 0 || !(cfg.tol >= 0.0 && cfg.tol.is_finite()) {
            return Err(Error::InvalidConfig(
                "sharpness tracker needs k = 1, max_steps > 0 and a finite tol >= 0",
            ));
        }
        let floats = Self::floats(dim, cfg.max_steps);
        if dim == 0 || floats == usize::MAX {
            return Err(Error::InvalidConfig(
                "sharpness tracker: dim must be positive and its storage fit a usize",
            ));
        }
        check_min("tracker floats", bufs.floats, floats)?;
        check_min("tracker work", bufs.work, Self::work_len(cfg.max_steps))?;
        let (latest, rest) = bufs.floats.split_at_mut(dim);
        let (history, basis) = rest.split_at_mut(TRACK_HISTORY * dim);
        SplitMix64::new(seed).fill_normal(latest);
        Ok(Self {
            cfg,
            state: TrackState {
                latest,
                history,
                history_len: 0,
                measured: false,
            },
            basis,
            work: bufs.work,
        })
    }

    /// Measures the sharpness of `op` (of the tracker's dimension) from the predicted start.
    pub fn measure<O: LinearOperator + ?Sized>(&mut self, op: &mut O) -> Result<Tracked, Error> {
        track_sharpness(op, &self.cfg, &mut self.state, self.basis, self.work)
    }

    /// The latest top eigenvector (the start vector before the first measurement).
    pub fn eigenvector(&self) -> &[f32] {
        self.state.latest
    }

    /// Measurements taken so far that the next prediction can use (at most
    /// [`PREDICT_HISTORY`]).
    pub fn history(&self) -> usize {
        if self.state.measured {
            self.state.history_len + 1
        } else {
            0
        }
    }
}
