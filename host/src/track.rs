//! Curvature tracking during training: sharpness, lambda_min, eigenvector rotation, subspace
//! score, third derivative, Hutchinson trace and preconditioned sharpness, measured on the
//! fixed Hessian subset at the parameters *before* a step's update.
//!
//! - `power`: warm-started power iteration (the previous measurement's eigenvector is the next
//!   start; the first start is a seeded random vector). With `eig_k > 1`, the top-k come from
//!   deflation, warm-started likewise, and the top vector is the first of them.
//! - `warm-lanczos`: Lanczos from the previous measurement's top eigenvector (the sum of the
//!   previous top-k when `eig_k > 1`; with `eig_k = 1`, from the eigenvector *predicted* from
//!   the last (up to eight) measurements, `edgewise_core::predict_start`: the linear
//!   extrapolation `2 v_1 - v_2`, or, when gradient descent oscillates with period two, `v_2` or
//!   its extrapolation within the orbit, whichever predicted the latest measurements best),
//!   stopped as soon as the top `eig_k` Ritz pairs meet the tolerance (`power_tol`, at most
//!   `lanczos_max_steps` products). Same warm start, same residual test as `power`, but it
//!   needs far fewer products at the edge of stability, where the top eigenvector turns between
//!   measurements and the top of the spectrum is crowded.
//! - `lanczos`: a fresh Lanczos run from a seeded random start (seeded by the step, so a resumed
//!   run draws the same start), giving both ends of the spectrum; the top-k Ritz vectors are the
//!   eigenvectors.
//!
//! Every random draw is `SplitMix64::derive(seed ^ PURPOSE, step)`: stateless, so resuming from
//! a checkpoint reproduces the same bits. The warm-start vectors are the tracker's only state and
//! are saved in resume checkpoints (`tracker.*`).
//!
//! [`Tracker::sharpness_only`] is the second tracker of `track_every`: the top eigenpair alone
//! by `warm-lanczos`, on its own schedule (typically every step, between fresh `lanczos`
//! spectrum measurements), with its own state (`tracked.*` in checkpoints).

use std::collections::BTreeMap;

use edgewise_core::eig::lanczos::{lanczos_work_len, ritz_vector};
use edgewise_core::{
    eigenvector_rotation, hutchinson_trace, lambda_min, lanczos, lean_lanczos,
    lean_lanczos_work_len, sharpness, subspace_score, third_derivative, top_k_deflation,
    track_sharpness, warm_lanczos, Eigenpair, HessianOp, HvpMethod, LanczosConfig,
    LeanLanczosConfig, Objective, OptState, Optimizer, PowerConfig, PreconditionedOp, SplitMix64,
    TrackState, WarmLanczosConfig, TRACK_HISTORY,
};

use crate::config::CurvatureConfig;
use crate::error::{core_err, Result};

const TOP_STREAM: u64 = 0x746f_7031;
const MIN_STREAM: u64 = 0x6d69_6e31;
const PRE_STREAM: u64 = 0x7072_6531;
const LANCZOS_STREAM: u64 = 0x6c61_6e31;
const TRACE_STREAM: u64 = 0x7472_6331;
const TRACKED_SEED: u64 = 0x7472_6b31;

/// Older top eigenvectors kept for the warm start's prediction (with the latest, all that
/// `edgewise_core::predict_start` reads).
const HISTORY: usize = TRACK_HISTORY;

/// What one measurement found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measurement {
    /// Top eigenvalue.
    pub sharpness: Option<f32>,
    /// Residual of the top eigenpair.
    pub residual: Option<f32>,
    /// Smallest eigenvalue.
    pub lambda_min: Option<f32>,
    /// `1 - |cos|` to the previous top eigenvector.
    pub rotation: Option<f32>,
    /// Score against the previous top-k eigenspace.
    pub subspace_score: Option<f32>,
    /// `|T(v, v, v)|` along the top eigenvector (the sign of `T` follows the eigenvector's,
    /// which is arbitrary).
    pub hocm: Option<f32>,
    /// Whether the `lambda_min` estimate met the residual tolerance (`power_tol` times the
    /// larger of `|sharpness|` and `|lambda_min|`).
    pub lambda_min_converged: Option<bool>,
    /// Whether the sharpness met the residual tolerance (`power_tol`; false when power
    /// iteration or warm-started Lanczos hit its product cap, or a fixed-length Lanczos run
    /// was too short).
    pub sharpness_converged: Option<bool>,
    /// With `eig_k > 1`: whether all top-k eigenvectors met the residual tolerance (the
    /// rotation and subspace score compare them).
    pub topk_converged: Option<bool>,
    /// Hutchinson trace.
    pub trace: Option<f32>,
    /// Its standard error.
    pub trace_se: Option<f32>,
    /// `lambda_max(P^-1 H)`.
    pub precond_sharpness: Option<f32>,
    /// Whether the preconditioned sharpness met the residual tolerance (`power_tol`) within
    /// `power_max_iter` products.
    pub precond_converged: Option<bool>,
    /// Products spent.
    pub hvps: u32,
    /// Products spent on the top eigenpair alone.
    pub sharpness_hvps: u32,
}

/// How the top eigenpairs are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EigMethod {
    /// Warm-started power iteration (deflation for top-k).
    Power,
    /// Warm-started Lanczos stopped at the tolerance.
    WarmLanczos,
    /// A fresh fixed-length Lanczos run from a seeded random start.
    Lanczos,
    /// Warm-started Lanczos in four vectors of memory (`edgewise_core::lean_lanczos`, the
    /// firmware's tracker): the top pair alone, from the previous eigenvector, stopped at the
    /// tolerance; two passes, `2 m - 1` products for `m` steps.
    LeanLanczos,
}

impl EigMethod {
    /// The names accepted by `--eig-method`.
    pub const NAMES: [(&'static str, EigMethod); 4] = [
        ("power", EigMethod::Power),
        ("warm-lanczos", EigMethod::WarmLanczos),
        ("lanczos", EigMethod::Lanczos),
        ("lean-lanczos", EigMethod::LeanLanczos),
    ];
}

const NO_PAIR: Eigenpair = Eigenpair {
    value: 0.0,
    residual: 0.0,
    iterations: 0,
    converged: false,
};

/// What a tracker measured before a resume checkpoint (from the run's `metrics.csv`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Measurements of the top eigenpair.
    pub top: usize,
    /// Whether lambda_min was measured.
    pub lambda_min: bool,
    /// Whether the preconditioned sharpness was measured.
    pub precond: bool,
}

/// The tracker's warm-start state.
pub struct Tracker {
    /// Name prefix of its checkpoint tensors.
    prefix: &'static str,
    cfg: CurvatureConfig,
    method: EigMethod,
    hvp: HvpMethod,
    seed: u64,
    p: usize,
    /// Top-k eigenvectors (k * p), the latest measured.
    topk: Vec<f32>,
    has_top: bool,
    min_vec: Vec<f32>,
    has_min: bool,
    pre_vec: Vec<f32>,
    has_pre: bool,
    /// The top eigenvectors of the measurements before the latest, most recent first
    /// (`warm-lanczos`, `eig_k = 1`; `history_len` of them are valid).
    history: Vec<f32>,
    history_len: usize,
    /// Lanczos basis and work buffers, kept between measurements (grown on first use).
    basis: Vec<f32>,
    work: Vec<f64>,
}

/// The previous eigenvectors a tracker keeps for its predicted start (warm-started Lanczos).
fn history_vectors(method: EigMethod) -> usize {
    if method == EigMethod::WarmLanczos {
        HISTORY
    } else {
        0
    }
}

/// Grows `v` to at least `len` values (never shrinks: the solvers take longer buffers).
fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

fn random(seed: u64, stream: u64, step: u64, out: &mut [f32]) {
    SplitMix64::derive(seed ^ stream, step).fill_normal(out);
}

impl Tracker {
    /// A tracker for `p` parameters.
    pub fn new(
        cfg: &CurvatureConfig,
        method: EigMethod,
        hvp: HvpMethod,
        seed: u64,
        p: usize,
    ) -> Self {
        Self {
            prefix: "tracker",
            cfg: cfg.clone(),
            method,
            hvp,
            seed,
            p,
            topk: vec![0.0; cfg.eig_k * p],
            has_top: false,
            min_vec: vec![0.0; p],
            has_min: false,
            pre_vec: vec![0.0; p],
            has_pre: false,
            history: vec![0.0; history_vectors(method) * p],
            history_len: 0,
            basis: Vec::new(),
            work: Vec::new(),
        }
    }

    /// The f32 values a tracker allocates (for [`crate::mem`]'s preflight): its vectors
    /// ([`Tracker::new`]) and, when it measures (`measures`), the Lanczos basis and work
    /// buffers it grows at the first measurement (f64 counted as two f32).
    pub fn floats(cfg: &CurvatureConfig, method: EigMethod, p: usize, measures: bool) -> u128 {
        let vectors = (cfg.eig_k + 2 + history_vectors(method)) as u128 * p as u128;
        let steps = match method {
            _ if !measures => return vectors,
            EigMethod::Lanczos => cfg.lanczos_steps.min(p),
            EigMethod::WarmLanczos => cfg.lanczos_max_steps.min(p).max(cfg.eig_k),
            EigMethod::Power => return vectors,
            // Three vectors and `lean_lanczos_work_len` f64 (5 per step).
            EigMethod::LeanLanczos => {
                let steps = cfg.lanczos_max_steps.min(p) as u128;
                return vectors + 3 * p as u128 + 2 * 5 * steps;
            }
        };
        let basis = (steps as u128 + 1) * p as u128;
        // `lanczos_work_len(steps)` f64 values, in u128 (which cannot overflow here).
        let work = 2 * (2 * steps as u128 * steps as u128 + 3 * steps as u128);
        vectors + basis + work
    }

    /// [`Tracker::floats`] of [`Tracker::sharpness_only`].
    pub fn sharpness_only_floats(cfg: &CurvatureConfig, p: usize) -> u128 {
        let c = CurvatureConfig {
            eig_k: 1,
            ..cfg.clone()
        };
        Self::floats(&c, EigMethod::WarmLanczos, p, true)
    }

    /// The sharpness-only tracker of `track_every`: warm-started Lanczos from the predicted
    /// eigenvector, the top eigenpair alone (no lambda_min, third derivative or preconditioned
    /// sharpness), its own random stream and checkpoint tensors (`tracked.*`).
    pub fn sharpness_only(cfg: &CurvatureConfig, hvp: HvpMethod, seed: u64, p: usize) -> Self {
        let c = CurvatureConfig {
            eig_k: 1,
            lambda_min: false,
            hocm: false,
            precond: false,
            ..cfg.clone()
        };
        Self {
            prefix: "tracked",
            ..Self::new(&c, EigMethod::WarmLanczos, hvp, seed ^ TRACKED_SEED, p)
        }
    }

    /// Saves the warm-start state into checkpoint tensors.
    pub fn save(&self, extra: &mut BTreeMap<String, Vec<f32>>) {
        let name = |what: &str| format!("{}.{what}", self.prefix);
        if self.has_top {
            extra.insert(name("topk"), self.topk.clone());
        }
        if self.has_min {
            extra.insert(name("min"), self.min_vec.clone());
        }
        if self.has_pre {
            extra.insert(name("precond"), self.pre_vec.clone());
        }
        if self.history_len > 0 {
            extra.insert(
                name("history"),
                self.history[..self.history_len * self.p].to_vec(),
            );
        }
    }

    /// Restores the warm-start state from checkpoint tensors.
    pub fn restore(
        &mut self,
        extra: &BTreeMap<String, Vec<f32>>,
    ) -> std::result::Result<(), String> {
        let prefix = self.prefix;
        let name = |what: &str| format!("{prefix}.{what}");
        let take = |what: &str, dst: &mut Vec<f32>, flag: &mut bool| {
            let name = name(what);
            if let Some(v) = extra.get(&name) {
                if v.len() != dst.len() {
                    return Err(format!(
                        "tensor {name} has {} values, expected {}",
                        v.len(),
                        dst.len()
                    ));
                }
                dst.copy_from_slice(v);
                *flag = true;
            }
            Ok(())
        };
        take("topk", &mut self.topk, &mut self.has_top)?;
        take("min", &mut self.min_vec, &mut self.has_min)?;
        // `tracker.before` is the one-vector history of checkpoints from earlier versions.
        let hist = extra
            .get(&name("history"))
            .or_else(|| extra.get(&name("before")));
        if let Some(v) = hist {
            let p = self.p.max(1);
            if v.len() % p != 0 || v.len() / p > HISTORY || self.history.len() < v.len() {
                return Err(format!(
                    "tensor {prefix}.history has {} values, expected up to {HISTORY} vectors of {}",
                    v.len(),
                    self.p
                ));
            }
            self.history[..v.len()].copy_from_slice(v);
            self.history_len = v.len() / p;
        }
        take("precond", &mut self.pre_vec, &mut self.has_pre)
    }

    /// Checks the state [`Tracker::restore`] read from a resume checkpoint: it holds what the
    /// measurements before the checkpoint left behind (`before`, from the run's
    /// `metrics.csv`), every value is finite, and every vector a solver starts from (or
    /// predicts a start from) is non-zero. A missing tensor would silently restart the
    /// tracker cold, a zero `tracker.topk` fail the next measurement, a NaN spread into the
    /// measured curvature.
    pub fn check_restored(&self, before: &Measured) -> std::result::Result<(), String> {
        self.require(before)?;
        self.check_values()
    }

    /// Every value of the warm-start state finite, and every vector a solver starts from (or
    /// predicts a start from) non-zero.
    fn check_values(&self) -> std::result::Result<(), String> {
        let p = self.p.max(1);
        let k = self.cfg.eig_k;
        // The top eigenvector is always the output of a solver (a unit vector); so are the
        // other top-k vectors of power iteration and warm-started Lanczos, which start from
        // them. Fresh Lanczos runs write only as many Ritz vectors as they took steps.
        let nonzero_top = if self.method == EigMethod::Lanczos {
            1
        } else {
            k
        };
        let checks: [(&str, bool, &[f32], usize); 4] = [
            ("topk", self.has_top, &self.topk, nonzero_top),
            ("min", self.has_min, &self.min_vec, 1),
            ("precond", self.has_pre, &self.pre_vec, 1),
            (
                "history",
                self.history_len > 0,
                &self.history[..self.history_len * self.p],
                self.history_len,
            ),
        ];
        for (what, present, v, nonzero) in checks {
            if !present {
                continue;
            }
            let name = format!("{}.{what}", self.prefix);
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "tensor {name} holds a non-finite value ({} at index {i})",
                    v[i]
                ));
            }
            if let Some(j) = v
                .chunks(p)
                .take(nonzero)
                .position(|c| c.iter().all(|&x| x == 0.0))
            {
                return Err(format!(
                    "tensor {name}: vector {j} is zero (a start vector of the eigen-solvers must be non-zero)"
                ));
            }
        }
        Ok(())
    }

    /// The state holds what the measurements `before` left behind.
    fn require(&self, before: &Measured) -> std::result::Result<(), String> {
        let missing = |what: &str, why: String| {
            Err(format!(
                "no tensor {}.{what}, although {why} (metrics.csv): the tracker's warm-start state is missing",
                self.prefix
            ))
        };
        if before.top > 0 && !self.has_top {
            return missing(
                "topk",
                format!("the run measured the sharpness {} time(s)", before.top),
            );
        }
        if before.lambda_min && self.method != EigMethod::Lanczos && !self.has_min {
            return missing("min", "the run measured lambda_min".into());
        }
        if before.precond && !self.has_pre {
            return missing(
                "precond",
                "the run measured the preconditioned sharpness".into(),
            );
        }
        // Every measurement after the first pushes the one before into the history.
        if self.method == EigMethod::WarmLanczos
            && self.cfg.eig_k == 1
            && before.top >= 2
            && self.history_len == 0
        {
            return missing(
                "history",
                format!("the run measured the sharpness {} times", before.top),
            );
        }
        Ok(())
    }

    fn power_cfg(&self) -> PowerConfig {
        PowerConfig {
            tol: self.cfg.power_tol,
            max_iter: self.cfg.power_max_iter,
        }
    }

    /// Measures the curvature of `obj` at `params`: the eigen quantities when `eig`, a trace
    /// estimate when `trace`; `precond` (optimizer, state, learning rate) adds the
    /// preconditioned sharpness to an eigen measurement.
    pub fn measure<O: Objective>(
        &mut self,
        obj: &mut O,
        params: &[f32],
        step: u64,
        eig: bool,
        trace: bool,
        precond: Option<(&Optimizer, &OptState<'_>, f32)>,
    ) -> Result<Measurement> {
        let p = self.p;
        let k = self.cfg.eig_k;
        let mut m = Measurement::default();
        let mut fd_scratch = vec![
            0.0f32;
            if self.hvp == HvpMethod::FiniteDifference {
                2 * p
            } else {
                0
            }
        ];
        let mut scratch = vec![0.0f32; p];
        let prev = if self.has_top {
            Some(self.topk.clone())
        } else {
            None
        };
        let err = core_err("curvature measurement");
        let pc = self.power_cfg();

        let mut op = HessianOp::new(obj, params, self.hvp, &mut fd_scratch).map_err(&err)?;
        if eig {
            let (top, bottom) = if self.method == EigMethod::Lanczos {
                let steps = self.cfg.lanczos_steps.min(p);
                let cfg = LanczosConfig { steps };
                grow(&mut self.basis, (steps + 1) * p);
                grow(&mut self.work, lanczos_work_len(steps));
                let (mut vals, mut res) = (vec![0.0f32; steps], vec![0.0f32; steps]);
                let mut start = vec![0.0f32; p];
                random(self.seed, LANCZOS_STREAM, step, &mut start);
                let r = lanczos(
                    &mut op,
                    &cfg,
                    &start,
                    &mut self.basis,
                    &mut self.work,
                    &mut vals,
                    &mut res,
                )
                .map_err(&err)?;
                for i in 0..k.min(r.steps) {
                    ritz_vector(
                        &self.basis,
                        &self.work,
                        &cfg,
                        &r,
                        i,
                        &mut self.topk[i * p..(i + 1) * p],
                    )
                    .map_err(&err)?;
                }
                m.residual = Some(res[0]);
                m.sharpness_hvps = op.products();
                let (top, bottom) = (vals[0], vals[r.steps - 1]);
                // Relative to the sharpness, as warm_lanczos stops (a scale that took in a large
                // negative bottom would accept a top value far off).
                let scale = top.abs();
                m.sharpness_converged = Some(res[0] <= self.cfg.power_tol * scale);
                m.topk_converged = (k > 1).then(|| {
                    res[..k.min(r.steps)]
                        .iter()
                        .all(|&x| x <= self.cfg.power_tol * scale)
                });
                m.lambda_min_converged =
                    Some(res[r.steps - 1] <= self.cfg.power_tol * top.abs().max(bottom.abs()));
                (top, Some(bottom))
            } else {
                if !self.has_top {
                    random(self.seed, TOP_STREAM, 0, &mut self.topk);
                }
                let top = if self.method == EigMethod::WarmLanczos {
                    let max_steps = self.cfg.lanczos_max_steps.min(p).max(k);
                    let wc = WarmLanczosConfig {
                        tol: self.cfg.power_tol,
                        max_steps,
                        k,
                    };
                    grow(&mut self.basis, (max_steps + 1) * p);
                    grow(&mut self.work, lanczos_work_len(max_steps));
                    let (top, steps, converged) = if k == 1 {
                        // From the eigenvector predicted from the previous measurements.
                        let mut state = TrackState {
                            latest: &mut self.topk[..p],
                            history: &mut self.history,
                            history_len: self.history_len,
                            measured: prev.is_some(),
                        };
                        let t = track_sharpness(
                            &mut op,
                            &wc,
                            &mut state,
                            &mut self.basis,
                            &mut self.work,
                        )
                        .map_err(&err)?;
                        self.history_len = state.history_len;
                        (t.pair, t.products, t.pair.converged)
                    } else {
                        let mut pairs = vec![NO_PAIR; k];
                        let r = warm_lanczos(
                            &mut op,
                            &wc,
                            &mut self.topk,
                            &mut self.basis,
                            &mut self.work,
                            &mut pairs,
                        )
                        .map_err(&err)?;
                        (pairs[0], r.top_steps as u32, r.converged)
                    };
                    m.residual = Some(top.residual);
                    m.sharpness_hvps = steps;
                    m.sharpness_converged =
                        Some(converged || top.residual <= self.cfg.power_tol * top.value.abs());
                    m.topk_converged = (k > 1).then_some(converged);
                    top.value
                } else if self.method == EigMethod::LeanLanczos {
                    // k == 1: the configuration refuses more.
                    let lc = LeanLanczosConfig {
                        tol: self.cfg.power_tol,
                        max_steps: self.cfg.lanczos_max_steps.min(p),
                    };
                    grow(&mut self.basis, 3 * p);
                    grow(&mut self.work, lean_lanczos_work_len(lc.max_steps));
                    let e = lean_lanczos(
                        &mut op,
                        &lc,
                        &mut self.topk[..p],
                        &mut self.basis,
                        &mut self.work,
                    )
                    .map_err(&err)?;
                    m.residual = Some(e.residual);
                    m.sharpness_hvps = e.iterations;
                    m.sharpness_converged = Some(e.converged);
                    e.value
                } else if k == 1 {
                    let e = sharpness(&mut op, &mut self.topk, &mut scratch, &pc).map_err(&err)?;
                    m.residual = Some(e.residual);
                    m.sharpness_converged = Some(e.converged);
                    e.value
                } else {
                    let mut pairs = vec![NO_PAIR; k];
                    top_k_deflation(&mut op, &mut self.topk, &mut pairs, &mut scratch, &pc)
                        .map_err(&err)?;
                    m.residual = Some(pairs[0].residual);
                    m.sharpness_converged = Some(pairs[0].converged);
                    m.topk_converged = Some(pairs.iter().all(|p| p.converged));
                    pairs[0].value
                };
                if self.method == EigMethod::Power {
                    m.sharpness_hvps = op.products();
                }
                let bottom = if self.cfg.lambda_min {
                    if !self.has_min {
                        random(self.seed, MIN_STREAM, 0, &mut self.min_vec);
                    }
                    let e = lambda_min(&mut op, top, &mut self.min_vec, &mut scratch, &pc)
                        .map_err(&err)?;
                    self.has_min = true;
                    // A value above the shift is not the bottom of the spectrum (core flags it
                    // too); otherwise the test is relative to the larger end of the spectrum.
                    m.lambda_min_converged = Some(
                        e.value <= top
                            && e.residual <= self.cfg.power_tol * top.abs().max(e.value.abs()),
                    );
                    Some(e.value)
                } else {
                    None
                };
                (top, bottom)
            };
            self.has_top = true;
            m.sharpness = Some(top);
            m.lambda_min = bottom;
            if let Some(prev) = &prev {
                m.rotation = Some(eigenvector_rotation(&prev[..p], &self.topk[..p]).map_err(&err)?);
                if k > 1 {
                    m.subspace_score = Some(subspace_score(prev, &self.topk, k).map_err(&err)?);
                }
            }
        }
        if trace {
            let (mut z, mut hz) = (vec![0.0f32; p], vec![0.0f32; p]);
            let mut rng = SplitMix64::derive(self.seed ^ TRACE_STREAM, step);
            let t = hutchinson_trace(&mut op, self.cfg.trace_probes, &mut rng, &mut z, &mut hz)
                .map_err(&err)?;
            m.trace = Some(t.mean as f32);
            m.trace_se = Some(t.std_err as f32);
        }
        if let (true, Some((opt, state, lr))) = (eig, precond) {
            let mut d = vec![0.0f32; p];
            opt.step_sizes(lr, state, &mut d).map_err(&err)?;
            for x in d.iter_mut() {
                *x = x.sqrt();
            }
            let mut tmp = vec![0.0f32; p];
            let mut pop = PreconditionedOp::new(&mut op, &d, &mut tmp).map_err(&err)?;
            if !self.has_pre {
                random(self.seed, PRE_STREAM, 0, &mut self.pre_vec);
                self.has_pre = true;
            }
            let e = sharpness(&mut pop, &mut self.pre_vec, &mut scratch, &pc).map_err(&err)?;
            m.precond_sharpness = Some(e.value);
            m.precond_converged = Some(e.converged);
        }
        m.hvps = op.products();
        if eig && self.cfg.hocm {
            let mut s2 = vec![0.0f32; 2 * p];
            let v: Vec<f32> = self.topk[..p].to_vec();
            // |T(v, v, v)|: the eigenvector's sign is arbitrary, and T is odd in v.
            m.hocm = Some(
                third_derivative(obj, params, &v, &mut s2)
                    .map_err(&err)?
                    .abs(),
            );
            m.hvps += 2;
        }
        Ok(m)
    }

    /// The latest top eigenvector (after at least one measurement).
    pub fn top_vector(&self) -> Option<&[f32]> {
        self.has_top.then(|| &self.topk[..self.p])
    }
}
