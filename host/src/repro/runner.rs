//! Runs the training runs of a plan on a pool of worker threads (one thread per run, the longest
//! runs first) and reads them back as [`RunRecord`]s. A run whose directory already holds a
//! `summary.json` written by this very build ([`crate::train::build_id`]) and the same
//! `config.toml`, and whose `metrics.csv` and `summary.json` read back, is reused unless
//! `force`; any other state of the directory is replaced (a run of another build is redone: its
//! numbers may differ; so is a run with a damaged file). Every run is deterministic and single-threaded, so the results do not
//! depend on the number of workers or on the order in which the runs finish.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::TrainConfig;
use crate::error::Result;
use crate::metrics;
use crate::train::{self, RunOptions};

use super::plan::{cost, Plan};
use super::stats::RunRecord;

/// One training run to do.
#[derive(Clone, Debug)]
pub struct Job {
    /// Experiment index in the plan.
    pub exp: usize,
    /// Run index in the experiment.
    pub run: usize,
    /// `experiment/run` (for messages).
    pub label: String,
    /// Run directory.
    pub dir: PathBuf,
    /// Configuration.
    pub config: TrainConfig,
}

/// What happened to a job.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Trained now.
    Done,
    /// Trained now; diverged.
    Diverged,
    /// Already complete with the same configuration.
    Reused,
    /// Failed with this message.
    Failed(String),
}

/// The jobs of a plan under `out`.
pub fn jobs(plan: &Plan, out: &Path) -> Vec<Job> {
    let mut v = Vec::new();
    for (ei, e) in plan.experiments.iter().enumerate() {
        for (ri, r) in e.runs.iter().enumerate() {
            v.push(Job {
                exp: ei,
                run: ri,
                label: format!("{}/{}", e.dir, r.name),
                dir: out.join(e.dir).join(&r.name),
                config: r.config.clone(),
            });
        }
    }
    v
}

/// Whether `dir` holds a finished run of exactly `cfg`, written by this build alone (a run
/// resumed across builds lists more than one in `builds` and is redone).
pub fn is_complete(dir: &Path, cfg: &TrainConfig) -> bool {
    let Some(this) = crate::train::build_id() else {
        return false;
    };
    let summary = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let same_build = summary.as_ref().is_some_and(|s| {
        s.get("build").and_then(|b| b.as_str()) == Some(this)
            && s.get("builds")
                .and_then(|b| b.as_array())
                .is_none_or(|bs| bs.iter().all(|b| b.as_str() == Some(this)))
    });
    same_build
        && dir.join("metrics.csv").is_file()
        && TrainConfig::from_file(&dir.join("config.toml")).is_ok_and(|c| &c == cfg)
}

fn run_job(job: &Job, force: bool, quiet: bool) -> Status {
    if !force && is_complete(&job.dir, &job.config) {
        // Only a run that reads back is reused: one with a damaged metrics.csv or summary.json
        // is redone, like a run of another build.
        match load(&job.dir, &job.config, "") {
            Ok(_) => return Status::Reused,
            Err(e) if !quiet => eprintln!("{}: cannot reuse it ({e}); redoing it", job.label),
            Err(_) => {}
        }
    }
    if crate::interrupt::requested() {
        return Status::Failed("not started (interrupted)".into());
    }
    let ro = RunOptions {
        out: job.dir.clone(),
        threads: 1,
        tile: crate::engine::DEFAULT_TILE,
        quiet: true,
        force: true,
        resume: false,
        plots: true,
        interrupt_after: None,
    };
    match train::run(&job.config, &ro) {
        Ok(o) if o.summary.diverged => Status::Diverged,
        Ok(_) => Status::Done,
        Err(e) => Status::Failed(e.to_string()),
    }
}

/// Runs `jobs` on `workers` threads, the most expensive first; returns the statuses in job order.
pub fn execute(jobs: &[Job], workers: usize, force: bool, quiet: bool) -> Vec<Status> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Longest first (ties by position), which keeps the last worker from running alone long.
    order.sort_by(|&a, &b| {
        cost(&jobs[b].config)
            .total_cmp(&cost(&jobs[a].config))
            .then(a.cmp(&b))
    });
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Status>>> = Mutex::new(vec![None; jobs.len()]);
    let total = jobs.len();
    let workers = workers.clamp(1, total.max(1));
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= total {
                    break;
                }
                let i = order[k];
                let started = Instant::now();
                let status = run_job(&jobs[i], force, quiet);
                let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
                if !quiet {
                    let what = match &status {
                        Status::Done => format!("done in {:.1} s", started.elapsed().as_secs_f64()),
                        Status::Diverged => {
                            format!("diverged ({:.1} s)", started.elapsed().as_secs_f64())
                        }
                        Status::Reused => "reused".into(),
                        Status::Failed(m) => format!("FAILED: {m}"),
                    };
                    eprintln!("[{done}/{total}] {}: {what}", jobs[i].label);
                }
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(status);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Status::Failed("not run".into())))
        .collect()
}

/// Reads a finished run directory back.
pub fn load(dir: &Path, cfg: &TrainConfig, name: &str) -> Result<RunRecord> {
    let res = cfg.resolve()?;
    let rows = metrics::read(&dir.join("metrics.csv"))?;
    let s = crate::report::read_summary(&dir.join("summary.json"))?;
    Ok(RunRecord {
        name: name.to_string(),
        lr: cfg.optim.lr,
        seed: cfg.model.seed,
        batch: cfg.optim.batch_size,
        n_train: s.n_train.unwrap_or(0) as usize,
        classes: res.arch.output_dim(),
        opt: cfg.optim.opt.clone(),
        clip: cfg.optim.clip,
        threshold: res.opt.stability_threshold(),
        diverged: s.diverged,
        test_acc: s.test_acc,
        train_acc: s.train_acc,
        train_loss: s.train_loss,
        rows,
        full_sharpness: None,
    })
}

/// The top Hessian eigenvalue at the run's final parameters (`checkpoints/final.safetensors`)
/// over its whole training split, when its curvature was measured on a smaller Hessian subset:
/// what the subset's sharpness stands for. `None` without a subset. Lanczos as `spectrum`
/// runs it (restarted with twice the steps until the value meets the residual tolerance),
/// with `threads` threads: the same bits for any count.
pub fn full_split_sharpness(dir: &Path, cfg: &TrainConfig, threads: usize) -> Result<Option<f64>> {
    let mut whole = cfg.clone();
    if whole.curvature.hessian_subset.take().is_none() {
        return Ok(None);
    }
    let res = cfg.resolve()?;
    let path = dir.join("checkpoints/final.safetensors");
    let ck = crate::checkpoint::load_expecting(&path, &res.arch)
        .map_err(|e| crate::error::Failure::input(e.to_string()))?;
    let settings = crate::analyze::SpectrumSettings {
        k: 1,
        method: crate::analyze::Method::Lanczos,
        lanczos_steps: 30,
        lanczos_max_steps: Some(240),
        trace_probes: 0,
        dense_max: 0,
        threads,
        tile: crate::engine::DEFAULT_TILE,
        expect_fingerprint: ck.metadata.get("data_fingerprint").cloned(),
    };
    let sp = crate::analyze::spectrum(&res.arch, &ck.params, &whole, &settings, "final", "repro")?;
    Ok(sp.top.first().map(|&x| x as f64))
}
