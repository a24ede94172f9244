//! `edgewise report`: merges runs (sweeps, shards) into a table and cross-run plots.
//!
//! Each argument is a run directory (with `config.toml`) or a directory of runs (a sweep, or one
//! shard's output). Runs are grouped by optimizer, clip value and batch size; within a group the
//! learning rate is the x axis and seeds are aggregated (mean, with each seed's point shown).
//! Plots: final sharpness vs lr with the threshold curve `2/lr`; test accuracy vs lr and
//! rotation vs lr, each with the critical learning rate `lr* = 2 / sharpness_0` marked (past it
//! GD is unstable from the first step; `sharpness_0` is the group's mean initial sharpness).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::TrainConfig;
use crate::error::{Failure, Result};
use crate::metrics::{self, Row};
use crate::plot::{palette_color, render_svg, Chart, RefLine, Series};

/// What the report keeps of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// Run directory.
    pub dir: PathBuf,
    /// Optimizer.
    pub opt: String,
    /// Clip value.
    pub clip: Option<f32>,
    /// Batch size (None = full batch).
    pub batch_size: Option<usize>,
    /// Learning rate.
    pub lr: f32,
    /// Seed.
    pub seed: u64,
    /// Stability threshold of lr * lambda for the optimizer.
    pub threshold: f32,
    /// Steps taken.
    pub steps: u64,
    /// Diverged.
    pub diverged: bool,
    /// Whether summary.json exists (finished).
    pub finished: bool,
    /// Final training loss.
    pub train_loss: Option<f32>,
    /// Final training accuracy.
    pub train_acc: Option<f32>,
    /// Final test accuracy.
    pub test_acc: Option<f32>,
    /// Final sharpness.
    pub sharpness: Option<f32>,
    /// First measured sharpness.
    pub sharpness_0: Option<f32>,
    /// Largest measured sharpness.
    pub max_sharpness: Option<f32>,
    /// Mean rotation over the measurements after the first.
    pub mean_rotation: Option<f32>,
    /// Mean subspace score.
    pub mean_subspace_score: Option<f32>,
    /// Final preconditioned sharpness.
    pub precond_sharpness: Option<f32>,
    /// Mean HVPs per sharpness measurement.
    pub mean_sharpness_hvps: Option<f64>,
    /// Mean HVPs per measurement of the sharpness-only tracker (`track_every`).
    pub mean_tracked_hvps: Option<f64>,
}

fn mean(v: impl Iterator<Item = f32>) -> Option<f32> {
    let (mut s, mut n) = (0.0f64, 0usize);
    for x in v.filter(|x| x.is_finite()) {
        s += x as f64;
        n += 1;
    }
    (n > 0).then(|| (s / n as f64) as f32)
}

/// Reads one run directory.
pub fn read_run(dir: &Path) -> Result<RunRecord> {
    let cfg = TrainConfig::from_file(&dir.join("config.toml"))?;
    let res = cfg
        .resolve()
        .map_err(|e| e.context(dir.join("config.toml").display()))?;
    let mpath = dir.join("metrics.csv");
    let spath = dir.join("summary.json");
    // A run without a summary was interrupted: a torn last row is what a kill leaves behind.
    let rows: Vec<Row> = if mpath.is_file() {
        let layout = metrics::read_layout(&mpath, !spath.is_file())?;
        if layout.torn {
            eprintln!(
                "warning: {}: its last line is incomplete (the run was interrupted while \
                 writing it); left out",
                mpath.display()
            );
        }
        layout.rows
    } else {
        Vec::new()
    };
    let summary: Option<serde_json::Value> = if spath.is_file() {
        let text = std::fs::read_to_string(&spath)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", spath.display())))?;
        Some(
            serde_json::from_str(&text)
                .map_err(|e| Failure::input(format!("{}: not valid JSON: {e}", spath.display())))?,
        )
    } else {
        None
    };
    let fv = summary
        .as_ref()
        .and_then(|s| s.get("final_values"))
        .filter(|v| !v.is_null());
    let get = |k: &str| {
        fv.and_then(|v| v.get(k))
            .and_then(|x| x.as_f64())
            .map(|x| x as f32)
    };
    let measured: Vec<&Row> = rows.iter().filter(|r| r.sharpness.is_some()).collect();
    let diverged = summary
        .as_ref()
        .and_then(|s| s.get("diverged"))
        .and_then(|d| d.as_bool())
        .unwrap_or(false);
    // summary.json's step count; the rows of a diverged run include the non-finite last one.
    let steps = summary
        .as_ref()
        .and_then(|s| s.get("steps"))
        .and_then(|x| x.as_u64())
        .unwrap_or(rows.len() as u64);
    // The final sharpness is summary.json's (null for a diverged run); only an interrupted run
    // (no summary) falls back to its last measurement.
    let sharpness = match &summary {
        Some(_) => get("sharpness"),
        None => measured.last().and_then(|r| r.sharpness),
    };
    Ok(RunRecord {
        dir: dir.to_path_buf(),
        opt: cfg.optim.opt.clone(),
        clip: cfg.optim.clip,
        batch_size: cfg.optim.batch_size,
        lr: cfg.optim.lr,
        seed: cfg.model.seed,
        threshold: res.opt.stability_threshold(),
        steps,
        diverged,
        finished: summary.is_some(),
        train_loss: get("train_loss"),
        train_acc: get("train_acc"),
        test_acc: get("test_acc"),
        sharpness,
        sharpness_0: measured.first().and_then(|r| r.sharpness),
        max_sharpness: measured
            .iter()
            .filter_map(|r| r.sharpness)
            .chain(get("sharpness"))
            .reduce(f32::max),
        mean_rotation: mean(measured.iter().filter_map(|r| r.rotation)),
        mean_subspace_score: mean(measured.iter().filter_map(|r| r.subspace_score)),
        precond_sharpness: measured.iter().rev().find_map(|r| r.precond_sharpness),
        mean_sharpness_hvps: summary
            .as_ref()
            .and_then(|s| s.get("mean_sharpness_hvps"))
            .and_then(|x| x.as_f64()),
        mean_tracked_hvps: summary
            .as_ref()
            .and_then(|s| s.get("mean_tracked_hvps"))
            .and_then(|x| x.as_f64()),
    })
}

/// All run directories named by `inputs` (each a run or a directory of runs).
pub fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for d in inputs {
        if d.join("config.toml").is_file() {
            dirs.push(d.clone());
        } else if d.is_dir() {
            let sub = crate::sweep::run_dirs(d);
            if sub.is_empty() {
                return Err(Failure::input(format!(
                    "{}: holds no run (no config.toml in it or its subdirectories)",
                    d.display()
                )));
            }
            dirs.extend(sub);
        } else {
            return Err(Failure::input(format!(
                "{}: no such run directory",
                d.display()
            )));
        }
    }
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}

fn group_key(r: &RunRecord) -> String {
    let mut k = r.opt.clone();
    if let Some(c) = r.clip {
        let _ = write!(k, " clip={c}");
    }
    let _ = write!(
        k,
        " bs={}",
        r.batch_size.map_or("full".into(), |b| b.to_string())
    );
    k
}

/// `digits` decimals, or scientific notation with as many for magnitudes of a million and
/// more (a diverging run's loss would otherwise print dozens of digits).
fn opt_str(v: Option<f32>, digits: usize) -> String {
    v.map_or("".into(), |x| {
        if x.abs() >= 1e6 {
            format!("{x:.digits$e}")
        } else {
            format!("{x:.digits$}")
        }
    })
}

/// Orders runs by their grid values, numerically: parent directory, optimizer, clip value, batch
/// size (full batch last), learning rate, seed, then directory (`lr=0.1` before `lr=0.16`).
pub fn sort_runs(recs: &mut [RunRecord]) {
    recs.sort_by(|a, b| {
        a.dir
            .parent()
            .cmp(&b.dir.parent())
            .then_with(|| a.opt.cmp(&b.opt))
            .then_with(|| {
                let c = |r: &RunRecord| r.clip.unwrap_or(f32::NEG_INFINITY);
                c(a).total_cmp(&c(b))
            })
            .then_with(|| {
                let k = |r: &RunRecord| r.batch_size.unwrap_or(usize::MAX);
                k(a).cmp(&k(b))
            })
            .then_with(|| a.lr.total_cmp(&b.lr))
            .then_with(|| a.seed.cmp(&b.seed))
            .then_with(|| a.dir.cmp(&b.dir))
    });
}

/// Writes `report.md`, `report.csv` and `plots/*.svg` into `out`; returns the records.
pub fn report(inputs: &[PathBuf], out: &Path) -> Result<Vec<RunRecord>> {
    let dirs = collect(inputs)?;
    let mut recs: Vec<RunRecord> = dirs.iter().map(|d| read_run(d)).collect::<Result<_>>()?;
    sort_runs(&mut recs);
    std::fs::create_dir_all(out.join("plots"))
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", out.display())))?;
    let mut groups: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for r in &recs {
        groups.entry(group_key(r)).or_default().push(r);
    }
    let mut sharp = Chart::new(
        "Final sharpness vs learning rate",
        "learning rate",
        "final sharpness",
    )
    .log_x()
    .log_y();
    let mut acc = Chart::new(
        "Test accuracy vs learning rate",
        "learning rate",
        "test accuracy",
    )
    .log_x();
    let mut rot = Chart::new(
        "Eigenvector rotation vs learning rate",
        "learning rate",
        "mean 1 - |cos|",
    )
    .log_x();
    for (gi, (name, runs)) in groups.iter().enumerate() {
        let color = palette_color(gi);
        let mut by_lr: BTreeMap<u32, Vec<&RunRecord>> = BTreeMap::new();
        for r in runs {
            by_lr.entry(r.lr.to_bits()).or_default().push(r);
        }
        let lrs: Vec<f32> = {
            let mut v: Vec<f32> = by_lr.keys().map(|b| f32::from_bits(*b)).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v
        };
        type Points = Vec<(f64, f64)>;
        let agg = |f: &dyn Fn(&RunRecord) -> Option<f32>| -> (Points, Points) {
            let mut means = Vec::new();
            let mut all = Vec::new();
            for lr in &lrs {
                let rs = &by_lr[&lr.to_bits()];
                for r in rs {
                    if let Some(v) = f(r).filter(|_| !r.diverged) {
                        all.push((*lr as f64, v as f64));
                    }
                }
                if let Some(m) = mean(rs.iter().filter(|r| !r.diverged).filter_map(|r| f(r))) {
                    means.push((*lr as f64, m as f64));
                }
            }
            (means, all)
        };
        for (chart, f) in [
            (
                &mut sharp,
                &(|r: &RunRecord| r.sharpness) as &dyn Fn(&RunRecord) -> Option<f32>,
            ),
            (&mut acc, &|r: &RunRecord| r.test_acc),
            (&mut rot, &|r: &RunRecord| r.mean_rotation),
        ] {
            let (means, all) = agg(f);
            chart.add_series(Series::line(format!("{name} (mean)"), means).with_color(color));
            if all.len() > lrs.len() {
                chart.add_series(Series::scatter(format!("{name} (seeds)"), all).with_color(color));
            }
        }
        let thr = runs[0].threshold;
        let curve: Vec<(f64, f64)> = lrs
            .iter()
            .map(|&lr| (lr as f64, (thr / lr) as f64))
            .collect();
        sharp.add_series(
            Series::line(format!("{thr}/lr ({name})"), curve)
                .with_dashed(true)
                .with_color(color),
        );
        if let Some(s0) = mean(runs.iter().filter_map(|r| r.sharpness_0)) {
            let lr_star = (thr / s0) as f64;
            acc.add_ref_line(
                RefLine::at_x(lr_star, format!("lr* = {thr}/S0 = {lr_star:.3} ({name})"))
                    .with_color(color),
            );
            rot.add_ref_line(RefLine::at_x(lr_star, format!("lr* ({name})")).with_color(color));
        }
    }
    let pd = out.join("plots");
    let w = |name: &str, c: &Chart| {
        crate::fsio::atomic_write(&pd.join(name), render_svg(c).as_bytes())
            .map_err(|e| Failure::internal(e.to_string()))
    };
    w("sharpness_vs_lr.svg", &sharp)?;
    w("test_acc_vs_lr.svg", &acc)?;
    w("rotation_vs_lr.svg", &rot)?;

    let mut csv = String::from("dir,opt,clip,batch_size,lr,seed,steps,diverged,finished,train_loss,train_acc,test_acc,sharpness,lr_x_sharpness,sharpness_0,max_sharpness,mean_rotation,mean_subspace_score,precond_sharpness,mean_sharpness_hvps,mean_tracked_hvps\n");
    let mut md = String::from("# edgewise report\n\n");
    let _ = writeln!(
        md,
        "{} runs from {}.\n",
        recs.len(),
        inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    md.push_str("![final sharpness vs lr](plots/sharpness_vs_lr.svg)\n![test accuracy vs lr](plots/test_acc_vs_lr.svg)\n![rotation vs lr](plots/rotation_vs_lr.svg)\n\n");
    md.push_str("| run | opt | lr | batch | seed | steps | status | train loss | test acc | sharpness | lr x sharpness | max sharpness | mean rotation |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &recs {
        let name = r
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let status = if r.diverged {
            "diverged"
        } else if r.finished {
            "done"
        } else {
            "incomplete"
        };
        let lxs = r.sharpness.map(|s| s * r.lr);
        let bs = r.batch_size.map_or("full".into(), |b| b.to_string());
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {bs} | {} | {} | {status} | {} | {} | {} | {} | {} | {} |",
            r.opt,
            r.lr,
            r.seed,
            r.steps,
            opt_str(r.train_loss, 5),
            opt_str(r.test_acc, 4),
            opt_str(r.sharpness, 3),
            opt_str(lxs, 3),
            opt_str(r.max_sharpness, 3),
            opt_str(r.mean_rotation, 4),
        );
        let o = |v: Option<f32>| v.map_or(String::new(), |x| x.to_string());
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.dir.display(),
            r.opt,
            o(r.clip),
            r.batch_size.map_or(String::new(), |b| b.to_string()),
            r.lr,
            r.seed,
            r.steps,
            r.diverged,
            r.finished,
            o(r.train_loss),
            o(r.train_acc),
            o(r.test_acc),
            o(r.sharpness),
            o(lxs),
            o(r.sharpness_0),
            o(r.max_sharpness),
            o(r.mean_rotation),
            o(r.mean_subspace_score),
            o(r.precond_sharpness),
            r.mean_sharpness_hvps
                .map_or(String::new(), |x| x.to_string()),
            r.mean_tracked_hvps.map_or(String::new(), |x| x.to_string()),
        );
    }
    let io = |e: crate::fsio::IoError| Failure::internal(e.to_string());
    crate::fsio::atomic_write(&out.join("report.md"), md.as_bytes()).map_err(io)?;
    crate::fsio::atomic_write(&out.join("report.csv"), csv.as_bytes()).map_err(io)?;
    Ok(recs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(dir: &str, lr: f32, seed: u64, batch: Option<usize>) -> RunRecord {
        RunRecord {
            dir: PathBuf::from(dir),
            opt: "gd".into(),
            clip: None,
            batch_size: batch,
            lr,
            seed,
            threshold: 2.0,
            steps: 0,
            diverged: false,
            finished: true,
            train_loss: None,
            train_acc: None,
            test_acc: None,
            sharpness: None,
            sharpness_0: None,
            max_sharpness: None,
            mean_rotation: None,
            mean_subspace_score: None,
            precond_sharpness: None,
            mean_sharpness_hvps: None,
            mean_tracked_hvps: None,
        }
    }

    #[test]
    fn runs_sort_by_their_grid_values_numerically() {
        let mut v = vec![
            rec("s/lr=0.16_seed=0", 0.16, 0, None),
            rec("s/lr=0.1_seed=10", 0.1, 10, None),
            rec("s/lr=0.1_seed=2", 0.1, 2, None),
            rec("s/bs=100_lr=0.1_seed=0", 0.1, 0, Some(100)),
            rec("s/bs=25_lr=0.1_seed=0", 0.1, 0, Some(25)),
            rec("s/lr=1_seed=0", 1.0, 0, None),
        ];
        sort_runs(&mut v);
        let names: Vec<String> = v.iter().map(|r| r.dir.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "s/bs=25_lr=0.1_seed=0",
                "s/bs=100_lr=0.1_seed=0",
                "s/lr=0.1_seed=2",
                "s/lr=0.1_seed=10",
                "s/lr=0.16_seed=0",
                "s/lr=1_seed=0",
            ]
        );
    }

    fn row(step: u64, loss: f32, sharpness: Option<f32>) -> Row {
        Row {
            step,
            epoch: step,
            lr: 0.5,
            loss,
            sharpness,
            ..Default::default()
        }
    }

    #[test]
    fn a_diverged_run_reports_its_summary_steps_and_no_final_sharpness() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut cfg = TrainConfig::default();
        cfg.optim.lr = 0.5;
        std::fs::write(d.join("config.toml"), cfg.to_toml()).unwrap();
        // Three rows (steps 0, 1 and the non-finite step 2); 2 steps were taken.
        let mut csv = metrics::header() + "\n";
        for r in [
            row(0, 1.0, Some(3.0)),
            row(1, 1e30, Some(7e9)),
            row(2, f32::INFINITY, None),
        ] {
            csv.push_str(&r.to_csv());
            csv.push('\n');
        }
        std::fs::write(d.join("metrics.csv"), &csv).unwrap();
        let summary = serde_json::json!({
            "diverged": true,
            "steps": 2,
            "final_values": {"train_loss": 1e30, "train_acc": 0.1, "test_acc": 0.1, "sharpness": null}
        });
        std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
        let r = read_run(d).unwrap();
        assert!(r.diverged && r.finished);
        assert_eq!(r.steps, 2);
        assert_eq!(r.sharpness, None, "not the last measured 7e9");
        assert_eq!(r.sharpness_0, Some(3.0));

        // A finished run: summary.json's sharpness. An interrupted one (no summary): the last
        // measurement and the rows' count.
        let summary = serde_json::json!({
            "diverged": false,
            "steps": 3,
            "final_values": {"sharpness": 4.5}
        });
        std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
        let mut csv = metrics::header() + "\n";
        for r in [
            row(0, 1.0, Some(3.0)),
            row(1, 0.9, None),
            row(2, 0.8, Some(4.0)),
        ] {
            csv.push_str(&r.to_csv());
            csv.push('\n');
        }
        std::fs::write(d.join("metrics.csv"), &csv).unwrap();
        let r = read_run(d).unwrap();
        assert_eq!((r.steps, r.sharpness), (3, Some(4.5)));
        std::fs::remove_file(d.join("summary.json")).unwrap();
        let r = read_run(d).unwrap();
        assert!(!r.finished);
        assert_eq!((r.steps, r.sharpness), (3, Some(4.0)));
    }

    #[test]
    fn large_values_are_printed_in_scientific_notation() {
        assert_eq!(opt_str(Some(0.123456), 5), "0.12346");
        assert_eq!(opt_str(Some(999_999.0), 1), "999999.0");
        assert_eq!(opt_str(Some(3.4e37), 5), "3.40000e37");
        assert_eq!(opt_str(Some(-2.5e6), 3), "-2.500e6");
        assert_eq!(opt_str(Some(f32::INFINITY), 3), "inf");
        assert_eq!(opt_str(None, 3), "");
    }
}
