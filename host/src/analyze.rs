//! `edgewise spectrum` and `edgewise hvp-check`: curvature of one model on one data set.

use serde::Serialize;

use edgewise_core::eig::lanczos::lanczos_work_len;
use edgewise_core::operator::fd_hvp;
use edgewise_core::vec::{dot64, norm64};
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
    let mut shifted = ShiftedOp::new(op, shift);
    top_k_deflation(&mut shifted, &mut vecs, &mut pairs, &mut scratch, pc)?;
    for e in &mut pairs {
        e.value += shift;
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
    let mut ws = Workspace::default();
    let mut obj =
        ParObjective::new(arch, data, s.threads, s.tile, &mut ws).map_err(core_err("data"))?;
    let err = core_err("spectrum");
    let mut hvps = 0;
    let k = s.k.clamp(1, p);
    let mut lanczos_steps = None;
    let ((top, top_res), (bottom, bottom_res)) = {
        let mut op = HessianOp::exact(&mut obj, params);
        let r = match s.method {
            Method::Lanczos => {
                let mut start = vec![0.0f32; p];
                SplitMix64::new(cfg.model.seed).fill_normal(&mut start);
                let most = s.lanczos_max_steps.unwrap_or(0).min(p);
                let mut steps = s.lanczos_steps.max(k).min(p);
                loop {
                    let lc = LanczosConfig { steps };
                    let mut basis = vec![0.0f32; (steps + 1) * p];
                    let mut work = vec![0.0f64; lanczos_work_len(steps)];
                    let (mut vals, mut res) = (vec![0.0f32; steps], vec![0.0f32; steps]);
                    let r = lanczos(
                        &mut op, &lc, &start, &mut basis, &mut work, &mut vals, &mut res,
                    )
                    .map_err(&err)?;
                    let m = r.steps;
                    lanczos_steps = Some(m);
                    let kk = k.min(m);
                    let bottom =
                        |v: &[f32]| -> Vec<f32> { v[m - kk..m].iter().rev().copied().collect() };
                    let ends = (
                        (vals[..kk].to_vec(), res[..kk].to_vec()),
                        (bottom(&vals), bottom(&res)),
                    );
                    // Done when converged, at the most steps, or on an invariant subspace
                    // (fewer steps than asked: more cannot help).
                    let ((t, tr), (b, br)) = &ends;
                    if unconverged(t, tr, b, br).1.is_empty() || steps >= most || m < steps {
                        break ends;
                    }
                    steps = (2 * steps).min(most);
                }
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
