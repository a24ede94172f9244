//! `edgewise spectrum` and `edgewise hvp-check`: curvature of one model on one data set.

use serde::Serialize;

use edgewise_core::eig::lanczos::lanczos_work_len;
use edgewise_core::operator::fd_hvp;
use edgewise_core::vec::{dot64, norm64};
use edgewise_core::{
    dense_hessian, hutchinson_trace, lambda_min, lanczos, sharpness, symmetric_eigen,
    top_k_deflation, Arch, Eigenpair, HessianOp, LanczosConfig, Objective, PowerConfig, SplitMix64,
};

use crate::config::TrainConfig;
use crate::engine::{ParObjective, Workspace};
use crate::error::{core_err, Failure, Result};
use crate::train::{prepare, view};

/// Which eigen-solver `spectrum` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// 20-step (or `--lanczos-steps`) Lanczos with full re-orthogonalisation.
    Lanczos,
    /// Power iteration with deflation (top-k) and a spectral shift (bottom).
    Power,
}

/// Settings of a spectrum computation.
#[derive(Clone, Debug)]
pub struct SpectrumSettings {
    /// Eigenvalues to report at each end.
    pub k: usize,
    /// Solver.
    pub method: Method,
    /// Lanczos steps.
    pub lanczos_steps: usize,
    /// Hutchinson probes (0: no trace).
    pub trace_probes: u32,
    /// Compute the full dense spectrum when the model has at most this many parameters.
    pub dense_max: usize,
    /// Threads.
    pub threads: usize,
    /// Tile.
    pub tile: usize,
}

/// `spectrum`'s JSON output.
#[derive(Serialize, Debug)]
pub struct Spectrum {
    /// The checkpoint or model.
    pub model: String,
    /// Data set.
    pub data: String,
    /// Samples the Hessian averages over.
    pub samples: usize,
    /// Parameters.
    pub n_params: usize,
    /// Solver.
    pub method: Method,
    /// Largest eigenvalues, descending.
    pub top: Vec<f32>,
    /// Smallest eigenvalues, ascending.
    pub bottom: Vec<f32>,
    /// Hutchinson trace estimate and its standard error.
    pub trace: Option<(f64, f64)>,
    /// Exact trace of the dense Hessian.
    pub dense_trace: Option<f64>,
    /// All eigenvalues of the dense Hessian, descending (small models only).
    pub dense: Option<Vec<f64>>,
    /// Hessian-vector products used (excluding the dense Hessian).
    pub hvps: u32,
}

/// Computes the spectrum of `arch` at `params` on the training split described by `cfg`.
pub fn spectrum(
    arch: &Arch,
    params: &[f32],
    cfg: &TrainConfig,
    s: &SpectrumSettings,
    model_name: &str,
) -> Result<Spectrum> {
    let prep = prepare(cfg, arch)?;
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
    let (top, bottom) = {
        let mut op = HessianOp::exact(&mut obj, params);
        let r = match s.method {
            Method::Lanczos => {
                let steps = s.lanczos_steps.max(k).min(p);
                let lc = LanczosConfig { steps };
                let mut basis = vec![0.0f32; (steps + 1) * p];
                let mut work = vec![0.0f64; lanczos_work_len(steps)];
                let (mut vals, mut res) = (vec![0.0f32; steps], vec![0.0f32; steps]);
                let mut start = vec![0.0f32; p];
                SplitMix64::new(cfg.model.seed).fill_normal(&mut start);
                let r = lanczos(
                    &mut op, &lc, &start, &mut basis, &mut work, &mut vals, &mut res,
                )
                .map_err(&err)?;
                let m = r.steps;
                let kk = k.min(m);
                (
                    vals[..kk].to_vec(),
                    vals[m - kk..m].iter().rev().copied().collect(),
                )
            }
            Method::Power => {
                let pc = PowerConfig {
                    tol: 1e-4,
                    max_iter: 1000,
                };
                let kk = k.min(edgewise_core::MAX_SUBSPACE_K);
                let mut vecs = vec![0.0f32; kk * p];
                SplitMix64::new(cfg.model.seed).fill_normal(&mut vecs);
                let mut scratch = vec![0.0f32; p];
                let mut pairs = vec![
                    Eigenpair {
                        value: 0.0,
                        residual: 0.0,
                        iterations: 0,
                        converged: false
                    };
                    kk
                ];
                top_k_deflation(&mut op, &mut vecs, &mut pairs, &mut scratch, &pc).map_err(&err)?;
                let mut v = vec![0.0f32; p];
                SplitMix64::new(cfg.model.seed + 1).fill_normal(&mut v);
                let top = sharpness(&mut op, &mut v, &mut scratch, &pc).map_err(&err)?;
                let mut w = vec![0.0f32; p];
                SplitMix64::new(cfg.model.seed + 2).fill_normal(&mut w);
                let bot =
                    lambda_min(&mut op, top.value, &mut w, &mut scratch, &pc).map_err(&err)?;
                let mut t: Vec<f32> = pairs.iter().map(|e| e.value).collect();
                t.sort_by(|a, b| b.total_cmp(a));
                (t, vec![bot.value])
            }
        };
        hvps += op.products();
        r
    };
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
    Ok(Spectrum {
        model: model_name.to_string(),
        data: cfg.data.name.clone(),
        samples: data.len(),
        n_params: p,
        method: s.method,
        top,
        bottom,
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
pub fn hvp_check(
    arch: &Arch,
    params: &[f32],
    cfg: &TrainConfig,
    directions: usize,
    dense_max: usize,
    threads: usize,
    tile: usize,
) -> Result<Vec<HvpCheckRow>> {
    let prep = prepare(cfg, arch)?;
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
