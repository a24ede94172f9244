//! `edgewise repro`: reproduces the experiments of Wang and Roberts, "Training Instabilities
//! Induce Flatness Bias in Gradient Descent", on the bundled data, and reports which of its
//! claims hold, computed from the measured data.
//!
//! # Experiments
//!
//! Two settings: the paper's (an MNIST subset shaped like its Fashion-MNIST one: 100 training and
//! 20 test images per class, an MLP 784-32-32-32-10 with ReLU, cross-entropy) and the
//! edge-of-stability studies' (a tanh MLP 40-32-32-10 with MSE on 1000 MNIST-1D samples).
//!
//! | directory | runs | serves |
//! |---|---|---|
//! | `mse-lr/` | full-batch GD, geometric lr grid (factor 1.6) x seeds, 100-step Lanczos (top-3, lambda_min, T(v,v,v)) every 10 steps, and the sharpness alone at every step by warm-started Lanczos (`track_every = 1`) | 1 EoS, 2 rotation, 3 flatness, 4 higher-order curvature (verdicts); 5 (secondary) |
//! | `ce-lr/` | the same on the paper's setting (factor 2 quick, 1.6 full), without T(v,v,v) (ReLU) | 5 Goldilocks zone (verdict); 1-4 (secondary) |
//! | `ce-sgd/` | SGD, batch sizes from full batch down, lr = lr_full B / N, warm-started Lanczos every 10 epochs | 6 SGD |
//! | `ce-adaptive/` | Adam, clipped Adam (upper bound, several c), RMSProp, beta2 = 0.99; sharpness and preconditioned sharpness | 7 adaptive |
//! | `diag/` | core's `DiagLinearNet` under GD from unbalanced starts, lr = m 2 / lambda_ref | 8 mechanism |
//!
//! [`plan`] holds the exact grids of each scale (`--scale tiny`, the default quick scale of about
//! two minutes, `--full` about nine on two cores). [`stats`] and [`verdict`] are pure functions
//! from metric rows to verdicts, each claim's criterion stated by [`verdict::criterion`];
//! [`report`] writes `report.md`, `claims.json` and `plots/`. [`runner`] runs the training runs
//! on a pool of threads (one thread per run, bit-identical to running them one by one), reusing
//! finished runs whose configuration is unchanged.

pub mod diag;
pub mod plan;
pub mod report;
pub mod runner;
pub mod stats;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use crate::error::{Failure, Result};

pub use plan::Scale;
use report::ClaimResult;
use runner::Status;

/// `edgewise repro`.
#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The larger reproduction: more seeds, learning rates and steps (about 9 minutes on 2 cores).
    #[arg(long, conflicts_with = "scale")]
    pub full: bool,
    /// Output directory (run directories, plots/, report.md).
    #[arg(long, default_value = "runs/repro")]
    pub out: PathBuf,
    /// Runs at once (default: all cores). Results are identical for every value.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Redo finished runs instead of reusing them.
    #[arg(long)]
    pub force: bool,
    /// Scale: quick (default), full, or tiny (a seconds-long smoke test).
    #[arg(long, value_enum, hide = true)]
    pub scale: Option<Scale>,
}

/// What a reproduction produced.
pub struct Outcome {
    /// `report.md`.
    pub report: PathBuf,
    /// The claim rows.
    pub claims: Vec<ClaimResult>,
    /// Runs trained now / reused / failed.
    pub trained: usize,
    /// See `trained`.
    pub reused: usize,
    /// Failed runs: label and message.
    pub failed: Vec<(String, String)>,
}

/// Runs (or reuses) every run of `scale` under `out` and writes the report.
pub fn repro(
    scale: Scale,
    out: &Path,
    workers: usize,
    force: bool,
    quiet: bool,
) -> Result<Outcome> {
    if workers == 0 {
        return Err(Failure::input("--jobs 0: must be at least 1"));
    }
    if out.exists() && !out.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: exists and is not a directory",
            out.display()
        )));
    }
    if let Some(other) = foreign_entry(out) {
        return Err(Failure::input(format!(
            "--out {}: holds {other:?}, which is not a reproduction's (its entries are report.md, claims.json, plots/, diag/ and one directory per experiment); give a new or empty directory, or a previous repro's",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        Failure::input(format!(
            "cannot create output directory {}: {e}",
            out.display()
        ))
    })?;
    let plan = plan::plan(scale);
    let jobs = runner::jobs(&plan, out);
    // What would stop a run, or the report, after others had run: checked before any runs.
    for name in ["report.md", "claims.json"] {
        let p = out.join(name);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Err(Failure::input(format!(
                "{} is a directory, where the reproduction writes a file: nothing was run; move it away",
                p.display()
            )));
        }
    }
    for j in &jobs {
        if j.dir.is_dir() && (force || !runner::is_complete(&j.dir, &j.config)) {
            crate::train::check_run_paths(&j.dir, false, true).map_err(|why| {
                Failure::input(format!(
                    "{}: {why}: the run could not be redone there, and nothing was run; move it away",
                    j.label
                ))
            })?;
        }
    }
    if !quiet {
        eprintln!(
            "repro ({} scale): {} training runs on {workers} workers into {}",
            scale.name(),
            jobs.len(),
            out.display()
        );
    }
    let statuses = runner::execute(&jobs, workers, force, quiet);
    if crate::interrupt::requested() {
        // No report of a partial set of runs; the finished ones are reused next time.
        return Err(Failure {
            code: crate::interrupt::EXIT_INTERRUPTED,
            message: format!(
                "repro interrupted: rerun the same command to continue (finished runs in {} are reused, the interrupted ones redone)",
                out.display()
            ),
        });
    }

    let mut diag_runs = Vec::new();
    for s in &plan.diag.starts {
        for &m in &plan.diag.multiples {
            diag_runs.push(diag::run(*s, m, plan.diag.steps)?);
        }
    }
    diag::write_runs(&out.join("diag"), &diag_runs)?;

    let mut records: Vec<Vec<stats::RunRecord>> = vec![Vec::new(); plan.experiments.len()];
    let mut failed = Vec::new();
    let (mut trained, mut reused) = (0, 0);
    for (j, st) in jobs.iter().zip(&statuses) {
        match st {
            Status::Failed(m) => {
                failed.push((j.label.clone(), m.clone()));
                continue;
            }
            Status::Reused => reused += 1,
            _ => trained += 1,
        }
        let name = &plan.experiments[j.exp].runs[j.run].name;
        match runner::load(&j.dir, &j.config, name) {
            Ok(mut r) => {
                if !r.diverged {
                    match runner::full_split_sharpness(&j.dir, &j.config, workers) {
                        Ok(s) => r.full_sharpness = s,
                        Err(e) => eprintln!(
                            "warning: {}: no sharpness on the whole training split ({e})",
                            j.label
                        ),
                    }
                }
                records[j.exp].push(r)
            }
            Err(e) => failed.push((j.label.clone(), e.to_string())),
        }
    }
    let claims = report::assess(&plan, &records, &diag_runs);
    report::write(
        out,
        &report::Inputs {
            plan: &plan,
            records: &records,
            diag: &diag_runs,
            claims: &claims,
            failed: &failed,
        },
    )?;
    Ok(Outcome {
        report: out.join("report.md"),
        claims,
        trained,
        reused,
        failed,
    })
}

/// The first entry of the existing directory `out` that a reproduction does not write (a
/// sweep's `sweep.json`, a run's `config.toml`, a user's file): a reproduction replaces its
/// report and plots, so it may only write into a new, empty or earlier reproduction's
/// directory. Temporary files of its interrupted writes are its own.
fn foreign_entry(out: &Path) -> Option<String> {
    let entries = std::fs::read_dir(out).ok()?;
    let mut names = vec!["report.md", "claims.json", "plots", "diag"];
    for s in [Scale::Tiny, Scale::Quick, Scale::Full] {
        names.extend(plan::plan(s).experiments.iter().map(|e| e.dir));
    }
    let own = |name: &str| names.contains(&name);
    entries.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = own(&name) || crate::fsio::temp_target(&name).is_some_and(own);
        (!ours).then_some(name)
    })
}

/// Runs `edgewise repro`; returns the exit code.
pub fn cmd_repro(a: &ReproArgs) -> Result<u8> {
    let scale = if a.full {
        Scale::Full
    } else {
        a.scale.unwrap_or(Scale::Quick)
    };
    let workers = match a.jobs {
        Some(0) => return Err(Failure::input("--jobs 0: must be at least 1")),
        Some(j) => j,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let started = Instant::now();
    let o = repro(scale, &a.out, workers, a.force, a.quiet)?;
    if !a.quiet {
        for c in &o.claims {
            eprintln!("  {}. {:<34} {}", c.id, c.name, c.primary.verdict.as_str());
        }
        eprintln!(
            "repro: {} runs trained, {} reused, {} failed in {:.1} s; report: {}",
            o.trained,
            o.reused,
            o.failed.len(),
            started.elapsed().as_secs_f64(),
            o.report.display()
        );
    }
    if let Some((label, msg)) = o.failed.first() {
        return Err(Failure::internal(format!(
            "{} of the runs failed (first: {label}: {msg}); the report covers the others: {}",
            o.failed.len(),
            o.report.display()
        )));
    }
    Ok(0)
}
