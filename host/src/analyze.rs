//! `edgewise spectrum` and `edgewise hvp-check`: curvature of one model on one data set.

use serde::Serialize;

use edgewise_core::eig::lanczos::{lanczos_work_len, ritz_vector, LanczosResult};
use edgewise_core::operator::fd_hvp;
use edgewise_core::vec::{dot64, norm64, normalize, sub_scaled64};
use edgewise_core::{
    dense_hessian, hutchinson_trace, lambda_min, lanczos, sharpness, symmetric_eigen,
    top_k_deflation, Arch, Eigenpair, HessianOp, LanczosConfig, LinearOperator, Objective,
    PowerConfig, ShiftedOp, SplitMix64,
};

use crate::config::TrainConfig;
use crate::engine::{ParObjective, Workspace};
use crate::error::{core_err, Failure, Result};
use crate::train::{data_fingerprint, prepare, view, Prepared};

/// Loads and splits the data `cfg` describes; with `expect` (the `data_fingerprint` of the
/// checkpoint being measured, given when no flag changed its data or split), data that
/// differ from what the run trained on are bad input, as for `train --resume`: the Hessian
/// would silently be another data set's. Returns the data and their fingerprint.
fn prepare_checked(
    cfg: &TrainConfig,
    arch: &Arch,
    expect: Option<&str>,
) -> Result<(Prepared, String)> {
    let prep = prepare(cfg, arch)?;
    let fp = data_fingerprint(&prep.train, &prep.test);
    if let Some(want) = expect.filter(|&w| w != fp) {
        return Err(Failure::input(format!(
            "the checkpoint's run was trained on other data than data set {} holds now (data \
             fingerprint {want} in the checkpoint, {fp} now): its file changed (edited, \
             shuffled or replaced) since; restore it, or give the data flags (--data, \
             --per-class or --train-size, ...) to measure on the data as they are",
            cfg.data.name
        )));
    }
    Ok((prep, fp))
}

/// Which eigen-solver `spectrum` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Lanczos with full re-orthogonalisation, `--lanczos-steps` steps (default: the run's, 20).
    Lanczos,
    /// Power iteration with deflation on spectrally shifted operators (top-k and bottom-k).
    Power,
}

/// Settings of a spectrum computation.
#[derive(Clone, Debug)]
pub struct SpectrumSettings {
    /// Eigenvalues to report at each end.
    pub k: usize,
    /// Solver.
    pub method: Method,
    /// Lanczos steps (the first run's length when `lanczos_max_steps` is set).
    pub lanczos_steps: usize,
    /// When set, Lanczos is rerun from the same start with twice the steps, up to this many,
    /// until every reported value meets the residual tolerance ([`RESIDUAL_RTOL`]).
    pub lanczos_max_steps: Option<usize>,
    /// Hutchinson probes (0: no trace).
    pub trace_probes: u32,
    /// Compute the full dense spectrum when the model has at most this many parameters.
    pub dense_max: usize,
    /// Threads.
    pub threads: usize,
    /// Tile.
    pub tile: usize,
    /// The checkpoint's `data_fingerprint` when no flag changed its data or split: other data
    /// are refused (see `prepare_checked`).
    pub expect_fingerprint: Option<String>,
}

/// A reported eigenvalue is flagged as unconverged when its residual bound exceeds this
/// fraction of the spectral scale (the largest reported magnitude): the test warm-started
/// Lanczos tracking stops on ([`edgewise_core::WarmLanczosConfig`]'s default tolerance).
pub const RESIDUAL_RTOL: f64 = 1e-3;

/// The training split a spectrum was measured on (the `[data]` settings and the seed).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SplitUsed {
    /// Seed of the split and of the Hessian subset.
    pub seed: u64,
    /// Training samples per class (per-class mode).
    pub per_class: Option<usize>,
    /// Test samples per class (per-class mode).
    pub test_per_class: Option<usize>,
    /// Training samples (size mode).
    pub train_size: Option<usize>,
    /// Test samples (size mode).
    pub test_size: Option<usize>,
}

/// `spectrum`'s JSON output.
#[derive(Serialize, Debug)]
pub struct Spectrum {
    /// The checkpoint or model.
    pub model: String,
    /// Where the data set, split and Hessian subset came from: `checkpoint metadata`, the
    /// run's `config.toml`, or `defaults` (neither: the data set's default split), with
    /// `+ flags` when flags overrode it.
    pub config_source: String,
    /// Data set.
    pub data: String,
    /// The split of the data set.
    pub split: SplitUsed,
    /// Samples of the training split.
    pub train_samples: usize,
    /// The Hessian subset setting (absent: the whole training split).
    pub hessian_subset: Option<usize>,
    /// Samples the Hessian averages over.
    pub samples: usize,
    /// The fingerprint of the split measured on (FNV-1a over both sets, as the
    /// `data_fingerprint` checkpoints of `train` carry).
    pub data_fingerprint: String,
    /// Parameters.
    pub n_params: usize,
    /// Solver.
    pub method: Method,
    /// Lanczos steps run (Lanczos only).
    pub lanczos_steps: Option<usize>,
    /// The check for values the Lanczos run skipped (without `--lanczos-steps`, once it
    /// converged; see `lanczos_ends`).
    pub deflation_check: Option<DeflationCheck>,
    /// Largest eigenvalues, descending.
    pub top: Vec<f32>,
    /// Residual bound of each `top` value (Lanczos: `|beta_m s_mk|`, which bounds the distance
    /// to the nearest eigenvalue; power: `||H v - lambda v||`).
    pub top_residuals: Vec<f32>,
    /// Smallest eigenvalues, ascending.
    pub bottom: Vec<f32>,
    /// Residual bound of each `bottom` value.
    pub bottom_residuals: Vec<f32>,
    /// Residual above which a value counts as unconverged: [`RESIDUAL_RTOL`] times the
    /// largest reported magnitude.
    pub residual_tolerance: f64,
    /// The reported values whose residual exceeds `residual_tolerance`.
    pub unconverged: Vec<f32>,
    /// Hutchinson trace estimate and its standard error.
    pub trace: Option<(f64, f64)>,
    /// Exact trace of the dense Hessian.
    pub dense_trace: Option<f64>,
    /// All eigenvalues of the dense Hessian, descending (small models only).
    pub dense: Option<Vec<f64>>,
    /// Hessian-vector products used (excluding the dense Hessian).
    pub hvps: u32,
}

/// Eigenvalues and residuals at one end of the spectrum.
type End = (Vec<f32>, Vec<f32>);

/// The residual tolerance ([`RESIDUAL_RTOL`] times the largest reported magnitude) and the
/// reported values whose residual bound exceeds it.
fn unconverged(
    top: &[f32],
    top_res: &[f32],
    bottom: &[f32],
    bottom_res: &[f32],
) -> (f64, Vec<f32>) {
    let scale = top
        .iter()
        .chain(bottom)
        .map(|v| v.abs() as f64)
        .fold(0.0f64, f64::max);
    let tol = RESIDUAL_RTOL * scale;
    let mut over: Vec<f32> = Vec::new();
    for (v, r) in top.iter().zip(top_res).chain(bottom.iter().zip(bottom_res)) {
        // A NaN residual is unconverged too. A value at both ends (k beyond half the Krylov
        // dimension) is named once.
        if (r.is_nan() || *r as f64 > tol) && !over.contains(v) {
            over.push(*v);
        }
    }
    (tol, over)
}

/// The check of a converged Lanczos run for skipped values: Lanczos on the Hessian deflated by
/// the reported eigenvectors, from another start.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DeflationCheck {
    /// Steps of its last run.
    pub steps: usize,
    /// Values it found beyond the reported `k`-th at an end, now among the reported ones.
    pub found: usize,
    /// Whether its extreme Ritz values met the residual tolerance (false: the check is
    /// inconclusive, and says so in a warning).
    pub converged: bool,
}

/// What [`lanczos_ends`] found.
struct LanczosEnds {
    top: End,
    bottom: End,
    steps: usize,
    check: Option<DeflationCheck>,
}

/// `P A P` with `P = I - V V^T` for orthonormal rows `V` (`r x dim`): `A` on the orthogonal
/// complement of `V` (and 0 on `V`).
struct Deflated<'a, O: ?Sized> {
    op: &'a mut O,
    v: &'a [f32],
    tmp: Vec<f32>,
}

/// `x -= V (V^T x)` for the rows of `V`, one row at a time (f64 dot products).
fn project_out(v: &[f32], x: &mut [f32]) {
    for row in v.chunks_exact(x.len()) {
        let c = dot64(row, x);
        sub_scaled64(x, c, row);
    }
}

impl<O: LinearOperator + ?Sized> LinearOperator for Deflated<'_, O> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(
        &mut self,
        x: &[f32],
        out: &mut [f32],
    ) -> std::result::Result<(), edgewise_core::Error> {
        self.tmp.copy_from_slice(x);
        project_out(self.v, &mut self.tmp);
        self.op.apply(&self.tmp, out)?;
        project_out(self.v, out);
        Ok(())
    }
}

/// One Lanczos run of up to `steps` steps from `start`.
struct Run {
    cfg: LanczosConfig,
    result: LanczosResult,
    /// Ritz values (descending) and their residual bounds, one per step run.
    vals: Vec<f32>,
    res: Vec<f32>,
    basis: Vec<f32>,
    work: Vec<f64>,
}

impl Run {
    fn new<O: LinearOperator + ?Sized>(
        op: &mut O,
        steps: usize,
        start: &[f32],
    ) -> std::result::Result<Run, edgewise_core::Error> {
        let p = op.dim();
        let cfg = LanczosConfig { steps };
        let mut basis = vec![0.0f32; (steps + 1) * p];
        let mut work = vec![0.0f64; lanczos_work_len(steps)];
        let (mut vals, mut res) = (vec![0.0f32; steps], vec![0.0f32; steps]);
        let result = lanczos(op, &cfg, start, &mut basis, &mut work, &mut vals, &mut res)?;
        vals.truncate(result.steps);
        res.truncate(result.steps);
        Ok(Run {
            cfg,
            result,
            vals,
            res,
            basis,
            work,
        })
    }

    /// The `k` largest values (descending) and the `k` smallest (ascending), with residuals.
    fn ends(&self, k: usize) -> (End, End) {
        let m = self.vals.len();
        let k = k.min(m);
        let rev = |x: &[f32]| -> Vec<f32> { x[m - k..].iter().rev().copied().collect() };
        (
            (self.vals[..k].to_vec(), self.res[..k].to_vec()),
            (rev(&self.vals), rev(&self.res)),
        )
    }

    /// Lanczos from `start`, `first` steps, doubled up to `most` until `done` holds; also
    /// stopped when the basis spans the space (fewer steps than asked: more cannot help).
    fn doubled<O: LinearOperator + ?Sized>(
        op: &mut O,
        start: &[f32],
        first: usize,
        most: usize,
        done: impl Fn(&Run) -> bool,
    ) -> std::result::Result<Run, edgewise_core::Error> {
        let mut steps = first.clamp(1, most.max(1));
        loop {
            let run = Run::new(op, steps, start)?;
            if done(&run) || steps >= most || run.result.steps < steps {
                return Ok(run);
            }
            steps = (2 * steps).min(most);
        }
    }
}

/// The `k` largest and `k` smallest eigenvalues of `op` by Lanczos with full
/// re-orthogonalisation from `start`: `first` steps, doubled up to `most` until every reported
/// value's residual bound meets the tolerance ([`RESIDUAL_RTOL`] of the largest magnitude).
///
/// A converged Ritz value lies near *an* eigenvalue, but a run can skip one whose eigenvector
/// the start (or rounding) barely excites, most easily in a crowded end. With `check` (a seed),
/// a converged run is checked: Lanczos on `op` deflated by the reported Ritz vectors (`P op P`,
/// `P` the projector onto their orthogonal complement), from a random start in the
/// complement, doubled the same way until its extreme Ritz values converge. Its converged
/// values beyond the reported `k`-th at either end are eigenvalues the first run skipped: they
/// join the reported ones, of which the `k` most extreme at each end are kept. Finding nothing
/// is evidence, not proof (the check can skip too, but from an independent start).
fn lanczos_ends<O: LinearOperator + ?Sized>(
    op: &mut O,
    k: usize,
    start: &[f32],
    first: usize,
    most: usize,
    check: Option<u64>,
) -> std::result::Result<LanczosEnds, edgewise_core::Error> {
    let p = op.dim();
    let converged = |(t, b): &(End, End)| unconverged(&t.0, &t.1, &b.0, &b.1).1.is_empty();
    let run = Run::doubled(op, start, first, most, |r| converged(&r.ends(k)))?;
    let m = run.result.steps;
    let ends = run.ends(k);
    let checkable = converged(&ends) && m < p;
    let (mut top, mut bottom) = ends;
    let Some(seed) = check.filter(|_| checkable) else {
        return Ok(LanczosEnds {
            top,
            bottom,
            steps: m,
            check: None,
        });
    };
    // The reported Ritz vectors (both ends', once each), orthonormalised by Gram-Schmidt
    // (twice, in f64) as the rows of V.
    let kk = top.0.len();
    let mut idx: Vec<usize> = (0..kk).chain(m - kk..m).collect();
    idx.dedup();
    let mut v = vec![0.0f32; idx.len() * p];
    let mut rows = 0;
    for &i in &idx {
        let (done, rest) = v.split_at_mut(rows * p);
        let row = &mut rest[..p];
        ritz_vector(&run.basis, &run.work, &run.cfg, &run.result, i, row)?;
        for _ in 0..2 {
            project_out(done, row);
        }
        if normalize(row) > 0.5 {
            rows += 1;
        }
    }
    v.truncate(rows * p);
    drop(run);
    let scale = top
        .0
        .iter()
        .chain(&bottom.0)
        .fold(0.0f32, |a, x| a.max(x.abs()));
    let tol = (RESIDUAL_RTOL * scale as f64) as f32;
    let mut start2 = vec![0.0f32; p];
    SplitMix64::new(seed).fill_normal(&mut start2);
    project_out(&v, &mut start2);
    let mut dop = Deflated {
        op,
        v: &v,
        tmp: vec![0.0f32; p],
    };
    let extremes_converged = |r: &Run| {
        r.res.first().is_some_and(|&x| x <= tol) && r.res.last().is_some_and(|&x| x <= tol)
    };
    let run2 = Run::doubled(
        &mut dop,
        &start2,
        first,
        most.min(p - rows),
        extremes_converged,
    )?;
    // The check's converged values beyond the reported k-th at each end join them.
    let mut found = 0;
    let mut merge = |end: &mut End, outer: fn(f32, f32) -> bool| {
        let kth = end.0[kk - 1];
        let new: Vec<(f32, f32)> = run2
            .vals
            .iter()
            .zip(&run2.res)
            .map(|(&x, &r)| (x, r))
            .filter(|&(x, r)| r <= tol && outer(x, kth))
            .collect();
        let mut all: Vec<(f32, f32)> = end
            .0
            .iter()
            .copied()
            .zip(end.1.iter().copied())
            .chain(new.iter().copied())
            .collect();
        // Most extreme first; a stable sort keeps the reported values ahead of equal new ones.
        all.sort_by(|a, b| match (outer(a.0, b.0), outer(b.0, a.0)) {
            (true, _) => std::cmp::Ordering::Less,
            (_, true) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        all.truncate(kk);
        found += new.iter().filter(|x| all.contains(x)).count();
        *end = (
            all.iter().map(|a| a.0).collect(),
            all.iter().map(|a| a.1).collect(),
        );
    };
    merge(&mut top, |a, b| a > b);
    merge(&mut bottom, |a, b| a < b);
    Ok(LanczosEnds {
        top,
        bottom,
        steps: m,
        check: Some(DeflationCheck {
            steps: run2.result.steps,
            found,
            converged: extremes_converged(&run2),
        }),
    })
}

fn zero_pairs(k: usize) -> Vec<Eigenpair> {
    vec![
        Eigenpair {
            value: 0.0,
            residual: 0.0,
            iterations: 0,
            converged: false
        };
        k
    ]
}

/// The `k` eigenpairs of `op` of largest magnitude after shifting it by `shift`
/// (`top_k_deflation` on `op - shift I`), shifted back; `seed` draws the start vectors.
///
/// The residuals are recomputed on `op` itself, `||H v - lambda v||` for each returned unit
/// vector (one more product per pair): deflation's own residuals are those of the *deflated*
/// operator, which leaves out the error of the pairs found before and so does not bound the
/// distance to an eigenvalue of `H` (a bottom value 5x its deflated residual away from every
/// eigenvalue was reported as converged before this).
fn deflated<O: LinearOperator + ?Sized>(
    op: &mut O,
    shift: f32,
    k: usize,
    seed: u64,
    pc: &PowerConfig,
) -> std::result::Result<Vec<Eigenpair>, edgewise_core::Error> {
    let p = op.dim();
    let mut vecs = vec![0.0f32; k * p];
    SplitMix64::new(seed).fill_normal(&mut vecs);
    let mut scratch = vec![0.0f32; p];
    let mut pairs = zero_pairs(k);
    {
        let mut shifted = ShiftedOp::new(op, shift);
        top_k_deflation(&mut shifted, &mut vecs, &mut pairs, &mut scratch, pc)?;
    }
    for (e, v) in pairs.iter_mut().zip(vecs.chunks_exact(p)) {
        e.value += shift;
        op.apply(v, &mut scratch)?;
        let (mut r2, mut n2) = (0.0f64, 0.0f64);
        for (&hv, &x) in scratch.iter().zip(v) {
            let d = hv as f64 - e.value as f64 * x as f64;
            r2 += d * d;
            n2 += x as f64 * x as f64;
        }
        e.residual = (r2 / n2).sqrt() as f32;
    }
    Ok(pairs)
}

/// Top-k and bottom-k by power iteration. Deflation finds the eigenvalues of largest
/// *magnitude*, so each end is found on a shifted operator whose spectrum has one sign:
/// `H - lambda_min I` (all `>= 0`) for the top, `H - lambda_max I` (all `<= 0`) for the bottom.
/// The top is first tried unshifted (faster when the top dominates) and kept when it is
/// provably the algebraic top: all values positive and the smallest at least `|lambda_min|`.
fn power_ends<O: LinearOperator + ?Sized>(
    op: &mut O,
    k: usize,
    seed: u64,
) -> std::result::Result<(End, End), edgewise_core::Error> {
    let pc = PowerConfig {
        tol: 1e-4,
        max_iter: 1000,
    };
    let p = op.dim();
    let mut scratch = vec![0.0f32; p];
    let mut v = vec![0.0f32; p];
    SplitMix64::new(seed + 1).fill_normal(&mut v);
    let lmax = sharpness(op, &mut v, &mut scratch, &pc)?.value;
    let mut w = vec![0.0f32; p];
    SplitMix64::new(seed + 2).fill_normal(&mut w);
    let lmin = lambda_min(op, lmax, &mut w, &mut scratch, &pc)?.value;
    let mut top = deflated(op, 0.0, k, seed, &pc)?;
    let ok = top.iter().all(|e| e.value > 0.0 && e.value >= lmin.abs());
    if !ok {
        top = deflated(op, lmin.min(0.0), k, seed, &pc)?;
    }
    let mut bottom = deflated(op, lmax.max(0.0), k, seed + 3, &pc)?;
    top.sort_by(|a, b| b.value.total_cmp(&a.value));
    bottom.sort_by(|a, b| a.value.total_cmp(&b.value));
    let split = |v: Vec<Eigenpair>| -> End {
        (
            v.iter().map(|e| e.value).collect(),
            v.iter().map(|e| e.residual).collect(),
        )
    };
    Ok((split(top), split(bottom)))
}

/// Computes the spectrum of `arch` at `params` on the training split described by `cfg`;
/// `config_source` says where `cfg` came from (reported as is).
pub fn spectrum(
    arch: &Arch,
    params: &[f32],
    cfg: &TrainConfig,
    s: &SpectrumSettings,
    model_name: &str,
    config_source: &str,
) -> Result<Spectrum> {
    let (prep, fingerprint) = prepare_checked(cfg, arch, s.expect_fingerprint.as_deref())?;
    let train = view(&prep.train).map_err(core_err("data"))?;
    let data = match &prep.hessian_idx {
        Some(ix) => train.select(ix).map_err(core_err("Hessian subset"))?,
        None => train,
    };
    let p = arch.n_params();
    let k = s.k.clamp(1, p);
    {
        // The basis of the longest Lanczos run, its tridiagonal work (f64), and 2k Ritz
        // vectors; or power iteration's k vectors; and a few parameter-sized vectors.
        let (vectors, work, what) = match s.method {
            Method::Lanczos => {
                let most = s.lanczos_max_steps.unwrap_or(s.lanczos_steps).max(k).min(p);
                let work = 2 * lanczos_work_len(most) as u128;
                (
                    most as u128 + 1 + 2 * k as u128,
                    work,
                    format!("{most} Lanczos steps"),
                )
            }
            Method::Power => (k as u128, 0, "power iteration".to_string()),
        };
        analysis_preflight(
            arch,
            data.len(),
            s.threads,
            s.tile,
            (vectors + 4) * p as u128 + work,
            &format!("the spectrum (--k {}, {what}) of {p} parameters", s.k),
        )?;
    }
    let mut ws = Workspace::default();
    let mut obj =
        ParObjective::new(arch, data, s.threads, s.tile, &mut ws).map_err(core_err("data"))?;
    let err = core_err("spectrum");
    let mut hvps = 0;
    let mut lanczos_steps = None;
    let mut deflation_check = None;
    let ((top, top_res), (bottom, bottom_res)) = {
        let mut op = HessianOp::exact(&mut obj, params);
        let r = match s.method {
            Method::Lanczos => {
                let mut start = vec![0.0f32; p];
                SplitMix64::new(cfg.model.seed).fill_normal(&mut start);
                let first = s.lanczos_steps.max(k).min(p);
                // Given --lanczos-steps: exactly that, unchecked. Otherwise doubled until
                // converged, then checked for skipped values.
                let (most, check) = match s.lanczos_max_steps {
                    Some(m) => (
                        m.min(p),
                        Some(SplitMix64::derive(cfg.model.seed, 0x6465).next_u64()),
                    ),
                    None => (first, None),
                };
                let e = lanczos_ends(&mut op, k, &start, first, most, check).map_err(&err)?;
                lanczos_steps = Some(e.steps);
                deflation_check = e.check;
                (e.top, e.bottom)
            }
            Method::Power => power_ends(
                &mut op,
                k.min(edgewise_core::MAX_SUBSPACE_K),
                cfg.model.seed,
            )
            .map_err(&err)?,
        };
        hvps += op.products();
        r
    };
    let (residual_tolerance, unconverged) = unconverged(&top, &top_res, &bottom, &bottom_res);
    let trace = if s.trace_probes > 0 {
        let mut op = HessianOp::exact(&mut obj, params);
        let (mut z, mut hz) = (vec![0.0f32; p], vec![0.0f32; p]);
        let mut rng = SplitMix64::derive(cfg.model.seed, 0x7472);
        let t =
            hutchinson_trace(&mut op, s.trace_probes, &mut rng, &mut z, &mut hz).map_err(&err)?;
        hvps += op.products();
        Some((t.mean, t.std_err))
    } else {
        None
    };
    let (dense, dense_trace) = if p <= s.dense_max {
        dense_preflight(p)?;
        let mut op = HessianOp::exact(&mut obj, params);
        let mut h = vec![0.0f32; p * p];
        let (mut e, mut col) = (vec![0.0f32; p], vec![0.0f32; p]);
        dense_hessian(&mut op, &mut h, &mut e, &mut col).map_err(&err)?;
        let mut a: Vec<f64> = (0..p * p)
            .map(|k| 0.5 * (h[k] as f64 + h[(k % p) * p + k / p] as f64))
            .collect();
        let tr: f64 = (0..p).map(|i| a[i * p + i]).sum();
        let (mut vecs, mut vals) = (vec![0.0f64; p * p], vec![0.0f64; p]);
        symmetric_eigen(&mut a, p, &mut vecs, &mut vals).map_err(&err)?;
        (Some(vals), Some(tr))
    } else {
        (None, None)
    };
    let d = &cfg.data;
    Ok(Spectrum {
        model: model_name.to_string(),
        config_source: config_source.to_string(),
        data: d.name.clone(),
        split: SplitUsed {
            seed: cfg.model.seed,
            per_class: d.per_class,
            test_per_class: d.test_per_class,
            train_size: d.train_size,
            test_size: d.test_size,
        },
        train_samples: prep.train.n,
        hessian_subset: cfg.curvature.hessian_subset,
        samples: data.len(),
        data_fingerprint: fingerprint,
        n_params: p,
        method: s.method,
        lanczos_steps,
        deflation_check,
        top,
        top_residuals: top_res,
        bottom,
        bottom_residuals: bottom_res,
        residual_tolerance,
        unconverged,
        trace,
        dense_trace,
        dense,
        hvps,
    })
}

/// One line of `hvp-check`.
#[derive(Serialize, Debug)]
pub struct HvpCheckRow {
    /// Direction index.
    pub direction: usize,
    /// `||Hv||` (exact).
    pub norm: f64,
    /// `||exact - fd|| / ||exact||`.
    pub exact_vs_fd: f64,
    /// `||exact - dense v|| / ||exact||` (small models).
    pub exact_vs_dense: Option<f64>,
    /// `||fd - dense v|| / ||dense v||`.
    pub fd_vs_dense: Option<f64>,
    /// `|<u, Hv> - <Hu, v>| / max(|<u, Hv>|, |<Hu, v>|)` against the previous direction.
    pub symmetry: Option<f64>,
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    d / norm64(b).max(1e-300)
}

/// Refuses (bad input, before anything is allocated) an analysis whose `floats` f32 values
/// and the engine's buffers for `n` samples cannot be allocated: see [`crate::mem`].
fn analysis_preflight(
    arch: &Arch,
    n: usize,
    threads: usize,
    tile: usize,
    floats: u128,
    what: &str,
) -> Result<()> {
    let engine = crate::engine::objective_floats(arch, n.max(1), threads, tile);
    crate::mem::ensure_allocatable(crate::mem::f32_bytes(floats + engine), what)
}

/// The dense Hessian of `p` parameters (f32, and its symmetrised f64 copy for the
/// eigensolver) must be allocatable: a `--dense-max` far above the default can ask for more
/// memory than exists ([`crate::mem`]).
fn dense_preflight(p: usize) -> Result<()> {
    let p2 = p as u128 * p as u128;
    crate::mem::ensure_allocatable(
        12 * p2,
        &format!("the dense Hessian of {p} parameters (--dense-max)"),
    )
}

/// Compares exact, finite-difference and dense-Hessian products on `directions` seeded random
/// directions; the dense Hessian is formed when the model has at most `dense_max` parameters.
/// `expect_fingerprint` is a checkpoint's `data_fingerprint` (see `prepare_checked`).
#[allow(clippy::too_many_arguments)]
pub fn hvp_check(
    arch: &Arch,
    params: &[f32],
    cfg: &TrainConfig,
    expect_fingerprint: Option<&str>,
    directions: usize,
    dense_max: usize,
    threads: usize,
    tile: usize,
) -> Result<Vec<HvpCheckRow>> {
    let (prep, _) = prepare_checked(cfg, arch, expect_fingerprint)?;
    let train = view(&prep.train).map_err(core_err("data"))?;
    let data = match &prep.hessian_idx {
        Some(ix) => train.select(ix).map_err(core_err("Hessian subset"))?,
        None => train,
    };
    let p = arch.n_params();
    // Five parameter-sized vectors per direction and the previous direction's two.
    analysis_preflight(
        arch,
        data.len(),
        threads,
        tile,
        7 * p as u128,
        &format!("hvp-check of {p} parameters"),
    )?;
    let mut ws = Workspace::default();
    let mut obj =
        ParObjective::new(arch, data, threads, tile, &mut ws).map_err(core_err("data"))?;
    let err = core_err("hvp-check");
    let dense = if p <= dense_max {
        dense_preflight(p)?;
        let mut op = HessianOp::exact(&mut obj, params);
        let mut h = vec![0.0f32; p * p];
        let (mut e, mut col) = (vec![0.0f32; p], vec![0.0f32; p]);
        dense_hessian(&mut op, &mut h, &mut e, &mut col).map_err(&err)?;
        Some(h)
    } else {
        None
    };
    let mut rng = SplitMix64::new(cfg.model.seed ^ 0x0068_7670);
    let mut rows = Vec::new();
    let mut prev: Option<(Vec<f32>, Vec<f32>)> = None;
    for d in 0..directions.max(1) {
        let mut v = vec![0.0f32; p];
        rng.fill_normal(&mut v);
        let mut hv = vec![0.0f32; p];
        obj.hvp(params, &v, &mut hv).map_err(&err)?;
        let mut fd = vec![0.0f32; p];
        let mut scratch = vec![0.0f32; 2 * p];
        fd_hvp(&mut obj, params, &v, &mut fd, &mut scratch).map_err(&err)?;
        let dv = dense.as_ref().map(|h| {
            (0..p)
                .map(|i| dot64(&h[i * p..(i + 1) * p], &v) as f32)
                .collect::<Vec<f32>>()
        });
        let symmetry = prev.as_ref().map(|(u, hu)| {
            let a = dot64(u, &hv);
            let b = dot64(hu, &v);
            (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
        });
        rows.push(HvpCheckRow {
            direction: d,
            norm: norm64(&hv),
            exact_vs_fd: rel(&fd, &hv),
            exact_vs_dense: dv.as_ref().map(|x| rel(x, &hv)),
            fd_vs_dense: dv.as_ref().map(|x| rel(&fd, x)),
            symmetry,
        });
        prev = Some((v, hv));
    }
    if rows.iter().any(|r| !r.exact_vs_fd.is_finite()) {
        return Err(Failure::internal("non-finite Hessian-vector products"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `diag(d)`.
    struct Diag(Vec<f32>);

    impl LinearOperator for Diag {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn apply(
            &mut self,
            v: &[f32],
            out: &mut [f32],
        ) -> std::result::Result<(), edgewise_core::Error> {
            for ((o, x), d) in out.iter_mut().zip(v).zip(&self.0) {
                *o = x * d;
            }
            Ok(())
        }
    }

    #[test]
    fn the_deflation_check_finds_values_a_converged_run_skipped() {
        // 300 eigenvalues: 10, 9.5, 9, then a bulk in [-0.5, 2], and -3, -2.5 at the bottom.
        let n = 300;
        let mut d: Vec<f32> = (0..n).map(|i| -0.5 + 2.5 * i as f32 / n as f32).collect();
        let special = [(0, 10.0f32), (1, 9.5), (2, 9.0), (3, -3.0), (4, -2.5)];
        for &(i, x) in &special {
            d[i] = x;
        }
        // A start without the eigenvectors of 9.5 and -2.5: no Krylov space from it holds
        // them (up to rounding), so the run converges without them.
        let mut start = vec![0.0f32; n];
        SplitMix64::new(5).fill_normal(&mut start);
        start[1] = 0.0;
        start[4] = 0.0;
        let mut op = Diag(d);
        let plain = lanczos_ends(&mut op, 2, &start, 20, 80, None).unwrap();
        assert_eq!(plain.check, None);
        let near = |got: &[f32], want: &[f32]| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-3)
        };
        assert!(near(&plain.top.0, &[10.0, 9.0]), "{:?}", plain.top);
        // (The bulk's smallest value left: -0.5 + 2.5 * 5 / 300.)
        assert!(
            near(&plain.bottom.0, &[-3.0, -0.458_333]),
            "{:?}",
            plain.bottom
        );
        let checked = lanczos_ends(&mut op, 2, &start, 20, 80, Some(7)).unwrap();
        assert!(near(&checked.top.0, &[10.0, 9.5]), "{:?}", checked.top);
        assert!(
            near(&checked.bottom.0, &[-3.0, -2.5]),
            "{:?}",
            checked.bottom
        );
        assert_eq!(checked.steps, plain.steps);
        let c = checked.check.unwrap();
        assert_eq!((c.found, c.converged), (2, true), "{c:?}");
        // From a start that excites everything, the check finds nothing to add.
        let mut full = vec![0.0f32; n];
        SplitMix64::new(5).fill_normal(&mut full);
        let r = lanczos_ends(&mut op, 2, &full, 20, 80, Some(7)).unwrap();
        assert!(near(&r.top.0, &[10.0, 9.5]), "{:?}", r.top);
        assert!(near(&r.bottom.0, &[-3.0, -2.5]), "{:?}", r.bottom);
        assert_eq!(r.check.unwrap().found, 0);
    }
}
