//! `edgewise report`: merges runs (sweeps, shards) into a table and cross-run plots.
//!
//! Each argument is a run directory (with `config.toml`) or a directory of runs (a sweep, or one
//! shard's output). A group holds the runs whose whole configuration (`config.toml`) is the same
//! except the learning rate and the seed; it is named by its optimizer, clip value and batch
//! size, and by the other settings that differ among the reported runs (`arch=64-16-10`), so
//! runs of different sweeps, architectures, data, lengths, ... are never averaged together.
//! Within a group the learning rate is the x axis and the seeds at one learning rate are
//! aggregated (mean, with each seed's point shown). Plots: final sharpness vs lr with the
//! threshold curve `2/lr`; test accuracy vs lr and rotation vs lr, each with the critical
//! learning rate `lr* = 2 / sharpness_0` marked (past it GD is unstable from the first step;
//! `sharpness_0`, which no learning rate has acted on yet, is the mean initial sharpness over
//! the group's runs at every learning rate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::TrainConfig;
use crate::error::{Failure, Result};
use crate::metrics::{self, Row};
use crate::plot::{fmt_sig, palette_color, render_svg, Chart, RefLine, Series, PALETTE};

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
    /// Learning rate (the base one, before any schedule).
    pub lr: f32,
    /// Seed.
    pub seed: u64,
    /// Every setting of `config.toml` but the learning rate and the seed, as `(section.key,
    /// value)` in the file's order: runs with equal settings differ only in lr and seed.
    pub settings: Vec<(String, String)>,
    /// Stability threshold of lr * lambda for the optimizer.
    pub threshold: f32,
    /// An adaptive optimizer (RMSProp, Adam family): `threshold` applies to the preconditioned
    /// sharpness, not to the sharpness.
    pub adaptive: bool,
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
    /// `lr * sharpness` with the learning rate of the last step taken (a schedule's, not the
    /// base one): `summary.json`'s `final_values.lr_x_sharpness` when present; for an
    /// incomplete run, that of the last measured row (its own `lr` column).
    pub lr_x_sharpness: Option<f32>,
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

/// What the report and `repro` read of a run's `summary.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummaryFile {
    /// `diverged`.
    pub diverged: bool,
    /// `steps`: the steps taken.
    pub steps: u64,
    /// `n_train`, when present.
    pub n_train: Option<u64>,
    /// `final_values.train_loss` (null when not finite, or no final values).
    pub train_loss: Option<f32>,
    /// `final_values.train_acc`.
    pub train_acc: Option<f32>,
    /// `final_values.test_acc`.
    pub test_acc: Option<f32>,
    /// `final_values.sharpness`.
    pub sharpness: Option<f32>,
    /// `final_values.lr_x_sharpness` (with the learning rate of the last step taken).
    pub lr_x_sharpness: Option<f32>,
    /// `mean_sharpness_hvps`.
    pub mean_sharpness_hvps: Option<f64>,
    /// `mean_tracked_hvps`.
    pub mean_tracked_hvps: Option<f64>,
}

/// `v` as short JSON text for a message.
fn json_excerpt(v: &serde_json::Value) -> String {
    let t = v.to_string();
    match t.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t,
    }
}

/// Reads and checks a run's `summary.json`: a JSON object with a boolean `diverged`, an
/// integer `steps`, and, where present, numbers (or null) for the final values and HVP means.
/// Other fields are not read. Anything else is bad input naming the file and the field.
pub fn read_summary(path: &Path) -> Result<SummaryFile> {
    let bad = |what: String| Failure::input(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(bad(format!(
            "not an edgewise summary: expected a JSON object with `steps`, `diverged` and \
             `final_values`, found `{}`",
            json_excerpt(&v)
        )));
    };
    let wrong = |k: &str, x: &serde_json::Value, want: &str| {
        bad(format!("`{k}` is `{}`, not {want}", json_excerpt(x)))
    };
    let required = |k: &str| {
        obj.get(k)
            .ok_or_else(|| bad(format!("not an edgewise summary: no `{k}` field")))
    };
    let steps = required("steps")?;
    let steps = steps
        .as_u64()
        .ok_or_else(|| wrong("steps", steps, "a step count"))?;
    let diverged = required("diverged")?;
    let diverged = diverged
        .as_bool()
        .ok_or_else(|| wrong("diverged", diverged, "true or false"))?;
    // A number, or null (how non-finite values and unmeasured quantities are written).
    let number =
        |o: &serde_json::Map<String, serde_json::Value>, k: &str, name: &str| match o.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| wrong(name, x, "a number")),
        };
    let n_train = match obj.get("n_train") {
        None | Some(serde_json::Value::Null) => None,
        Some(x) => Some(
            x.as_u64()
                .ok_or_else(|| wrong("n_train", x, "a sample count"))?,
        ),
    };
    let mut out = SummaryFile {
        diverged,
        steps,
        n_train,
        mean_sharpness_hvps: number(obj, "mean_sharpness_hvps", "mean_sharpness_hvps")?,
        mean_tracked_hvps: number(obj, "mean_tracked_hvps", "mean_tracked_hvps")?,
        ..Default::default()
    };
    match obj.get("final_values") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(fv)) => {
            let f = |k: &str| -> Result<Option<f32>> {
                Ok(number(fv, k, &format!("final_values.{k}"))?.map(|x| x as f32))
            };
            out.train_loss = f("train_loss")?;
            out.train_acc = f("train_acc")?;
            out.test_acc = f("test_acc")?;
            out.sharpness = f("sharpness")?;
            out.lr_x_sharpness = f("lr_x_sharpness")?;
        }
        Some(x) => return Err(wrong("final_values", x, "an object of final values")),
    }
    Ok(out)
}

/// Every setting of `cfg` but the learning rate and the seed, as `(section.key, value)` in the
/// order of `config.toml` (strings without their quotes, f32 settings as such: `0.9`).
pub fn settings(cfg: &TrainConfig) -> Vec<(String, String)> {
    cfg.flat_settings()
        .into_iter()
        .filter(|(k, _)| k != "optim.lr" && k != "model.seed")
        .map(|(k, v)| (k, TrainConfig::setting_text(&v, false)))
        .collect()
}

/// Reads one run directory.
///
/// A run is finished when it has a `summary.json`, which must then be well-formed
/// ([`read_summary`]); without one it is interrupted (or still running) and reported as
/// incomplete from its rows. Either way `metrics.csv` must be there and readable, except that
/// an incomplete last line (what a run stopped while appending a row leaves, also a run being
/// extended by `--resume` or a sweep) is left out with a warning, and that a run that has only
/// just started (no `summary.json`, no resume checkpoint, and no `metrics.csv` yet: `train`
/// writes `config.toml` first) is incomplete with 0 steps. Anything else is bad input naming
/// the file; [`report`] leaves such a run out.
pub fn read_run(dir: &Path) -> Result<RunRecord> {
    let cfg = TrainConfig::from_file(&dir.join("config.toml"))?;
    let res = cfg
        .resolve()
        .map_err(|e| e.context(dir.join("config.toml").display()))?;
    let mpath = dir.join("metrics.csv");
    let spath = dir.join("summary.json");
    let summary = match std::fs::metadata(&spath) {
        // Say how to rewrite it: `sweep` continues such a run (it is not finished).
        Ok(_) => Some(read_summary(&spath).map_err(|mut e| {
            if dir.join("checkpoints/resume.safetensors").is_file() {
                e.message.push_str(
                    " (rerunning the sweep, or `train --resume`, rewrites it from the run's \
                     resume checkpoint)",
                );
            }
            e
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::input(format!(
                "cannot read {}: {e}",
                spath.display()
            )))
        }
    };
    let just_started = summary.is_none()
        && !dir.join("checkpoints/resume.safetensors").exists()
        && matches!(std::fs::symlink_metadata(&mpath), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let rows: Vec<Row> = if just_started {
        Vec::new()
    } else {
        if !mpath.exists() {
            return Err(Failure::input(format!(
                "{}: missing (every run writes its metrics there from its start{})",
                mpath.display(),
                if summary.is_some() {
                    ", and this one has a summary.json"
                } else {
                    ", and this one has a resume checkpoint"
                }
            )));
        }
        let layout = metrics::read_layout(&mpath, true)?;
        if layout.torn {
            eprintln!(
                "warning: {}: its last line is incomplete (the run was interrupted while \
                 writing it); left out",
                mpath.display()
            );
        }
        layout.rows
    };
    // One row per step, in order from step 0: a row deleted or repeated in the middle (an
    // edited file) is refused as `train --resume` refuses it.
    if let Some((i, r)) = rows.iter().enumerate().find(|(i, r)| r.step != *i as u64) {
        return Err(Failure::input(format!(
            "{}: row {} is of step {}, not {i} (rows deleted, repeated or reordered: the file was edited)",
            mpath.display(),
            i + 1,
            r.step
        )));
    }
    // A finished run has a row for every step summary.json names (a diverged one, one more):
    // fewer is a cut or damaged metrics.csv, whose statistics would be those of part of the
    // run next to the summary's final values. `sweep` redoes such a run; here it is left out.
    if let Some(s) = summary.as_ref().filter(|s| (rows.len() as u64) < s.steps) {
        return Err(Failure::input(format!(
            "{}: {} rows, but summary.json says the run took {} steps (cut or damaged; rerunning the sweep, or the run, redoes it)",
            mpath.display(),
            rows.len(),
            s.steps
        )));
    }
    let measured: Vec<&Row> = rows.iter().filter(|r| r.sharpness.is_some()).collect();
    let sm = summary.clone().unwrap_or_default();
    // summary.json's step count; the rows of a diverged run include the non-finite last one.
    let steps = summary.as_ref().map_or(rows.len() as u64, |s| s.steps);
    // The final sharpness is summary.json's (null for a diverged run); only an interrupted run
    // (no summary) falls back to its last measurement. `lr x sharpness` takes the learning
    // rate of the last step taken (a schedule's), as summary.json does: its own value, or for
    // a summary without one the schedule's lr of that step; for an interrupted run the `lr`
    // column of the row measured.
    let (sharpness, lr_x_sharpness) = match &summary {
        Some(s) => {
            let lr_last = res.schedule.lr(cfg.optim.lr, s.steps.saturating_sub(1));
            (
                s.sharpness,
                s.lr_x_sharpness
                    .or_else(|| s.sharpness.map(|x| x * lr_last)),
            )
        }
        None => match measured.last() {
            Some(r) => (
                r.sharpness,
                r.lr_x_sharpness.or_else(|| r.sharpness.map(|x| x * r.lr)),
            ),
            None => (None, None),
        },
    };
    // Likewise its losses and accuracies: those of its last test evaluation, with the
    // training set's from the same row (the evaluated columns with minibatches, the step's own
    // at full batch, which has none).
    let last_eval = rows.iter().rev().find(|r| r.test_acc.is_some());
    let (train_loss, train_acc, test_acc) = match (&summary, last_eval) {
        (None, Some(r)) => (
            Some(r.full_train_loss.unwrap_or(r.loss)),
            Some(r.full_train_acc.unwrap_or(r.train_acc)),
            r.test_acc,
        ),
        _ => (sm.train_loss, sm.train_acc, sm.test_acc),
    };
    Ok(RunRecord {
        dir: dir.to_path_buf(),
        opt: cfg.optim.opt.clone(),
        clip: cfg.optim.clip,
        batch_size: cfg.optim.batch_size,
        lr: cfg.optim.lr,
        seed: cfg.model.seed,
        settings: settings(&cfg),
        threshold: res.opt.stability_threshold(),
        adaptive: res.adaptive,
        steps,
        diverged: sm.diverged,
        finished: summary.is_some(),
        train_loss: train_loss.filter(|x| x.is_finite()),
        train_acc,
        test_acc,
        sharpness,
        lr_x_sharpness,
        sharpness_0: measured.first().and_then(|r| r.sharpness),
        max_sharpness: measured
            .iter()
            .filter_map(|r| r.sharpness)
            .chain(sm.sharpness)
            .reduce(f32::max),
        mean_rotation: mean(measured.iter().filter_map(|r| r.rotation)),
        mean_subspace_score: mean(measured.iter().filter_map(|r| r.subspace_score)),
        precond_sharpness: measured.iter().rev().find_map(|r| r.precond_sharpness),
        mean_sharpness_hvps: sm.mean_sharpness_hvps,
        mean_tracked_hvps: sm.mean_tracked_hvps,
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

/// The settings named in a group's label before the others: optimizer, clip value, batch size.
const LABEL_KEYS: [&str; 3] = ["optim.opt", "optim.clip", "optim.batch_size"];

/// The settings (`section.key`) other than [`LABEL_KEYS`] whose values are not the same in all
/// of `recs` (set in some and unset in others counts), in the order of `config.toml`.
fn varying_settings(recs: &[RunRecord]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in recs {
        for (k, _) in &r.settings {
            if !keys.contains(k) && !LABEL_KEYS.contains(&k.as_str()) {
                keys.push(k.clone());
            }
        }
    }
    let value = |r: &RunRecord, k: &str| {
        r.settings
            .iter()
            .find(|(rk, _)| rk == k)
            .map(|(_, v)| v.clone())
    };
    keys.retain(|k| {
        let first = value(&recs[0], k);
        recs.iter().any(|r| value(r, k) != first)
    });
    keys
}

/// A setting's name in a label: its key without the section (`data` for `data.name`), or the
/// whole key when another of `keys` has the same last part.
fn short_key<'a>(k: &'a str, keys: &[String]) -> &'a str {
    if k == "data.name" {
        return "data";
    }
    fn leaf(k: &str) -> &str {
        k.rsplit('.').next().unwrap_or(k)
    }
    let l = leaf(k);
    if keys.iter().filter(|o| leaf(o) == l).count() > 1 {
        k
    } else {
        l
    }
}

/// The group of a run: optimizer, clip value and batch size (`gd bs=full`,
/// `clipped-adam clip=0.1 bs=32`), then the run's values of the `varying` settings (those of
/// them it sets: `arch=64-16-10 steps=200`). Two runs have the same label exactly when all
/// their settings but the learning rate and the seed are equal, provided `varying` holds
/// every other setting in which the reported runs differ ([`varying_settings`]).
fn group_label(r: &RunRecord, varying: &[String]) -> String {
    let mut k = r.opt.clone();
    if let Some(c) = r.clip {
        let _ = write!(k, " clip={c}");
    }
    let _ = write!(
        k,
        " bs={}",
        r.batch_size.map_or("full".into(), |b| b.to_string())
    );
    let extra = settings_label(r, varying);
    if !extra.is_empty() {
        k.push(' ');
        k.push_str(&extra);
    }
    k
}

/// The run's values of the `varying` settings it sets, as `key=value` joined by spaces.
fn settings_label(r: &RunRecord, varying: &[String]) -> String {
    varying
        .iter()
        .filter_map(|k| {
            r.settings
                .iter()
                .find(|(rk, _)| rk == k)
                .map(|(_, v)| format!("{}={v}", short_key(k, varying)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A field of `report.csv`, quoted as RFC 4180 says when it holds a comma, a quote or a line
/// break (a quote doubled inside).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Text for a cell of a Markdown table: `|` escaped, line breaks as spaces.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The deepest directory holding every one of `dirs` (component by component; empty when they
/// share none, e.g. relative paths of different top directories).
fn common_dir(dirs: &[&Path]) -> PathBuf {
    let mut it = dirs.iter();
    let Some(first) = it.next() else {
        return PathBuf::new();
    };
    let mut common: Vec<std::path::Component> = first.components().collect();
    for d in it {
        let n = common
            .iter()
            .zip(d.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(n);
    }
    common.iter().collect()
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

/// What [`report`] read.
#[derive(Debug)]
pub struct Reported {
    /// The runs in the report.
    pub runs: Vec<RunRecord>,
    /// Run directories left out, with why (their files could not be read).
    pub left_out: Vec<(PathBuf, String)>,
}

/// The plots `report` writes into `plots/` (a run's own when it reports the run alone:
/// `--force` deletes them with the run's `report.md`).
pub(crate) const REPORT_PLOTS: [&str; 3] = [
    "sharpness_vs_lr.svg",
    "test_acc_vs_lr.svg",
    "rotation_vs_lr.svg",
];

/// The report's charts (final sharpness, test accuracy and rotation vs lr) of `groups`, each
/// a name and its runs. Per group: the mean over the seeds that did not diverge at each
/// learning rate (a line with points) and each seed's value (points, when some learning rate
/// has more than one); learning rates with diverged runs as crosses on the top edge, counted
/// in the legend; for non-adaptive optimizers the threshold `thr/lr` (a dashed reference
/// curve; a reference line with a single learning rate) and `lr* = thr/S0`. The thresholds of
/// RMSProp and Adam apply to the preconditioned sharpness, which these charts do not show:
/// they get neither.
fn report_charts(groups: &[(String, Vec<&RunRecord>)]) -> [Chart; 3] {
    let mut sharp = Chart::new(
        "Final sharpness vs learning rate",
        "learning rate",
        "final sharpness",
    )
    .log_x()
    .log_y();
    // Ticks at 0..1, with room for values of exactly 0 or 1 off the frame.
    let mut acc = Chart::new(
        "Test accuracy vs learning rate",
        "learning rate",
        "test accuracy",
    )
    .log_x()
    .with_y_range(-0.02, 1.02);
    let mut rot = Chart::new(
        "Eigenvector rotation vs learning rate",
        "learning rate",
        "mean 1 - |cos|",
    )
    .log_x();
    for (gi, (name, runs)) in groups.iter().enumerate() {
        let color = palette_color(gi);
        // Past the palette's 8 colours, groups differ by their dashes too.
        let dashed = (gi / PALETTE.len()) % 2 == 1;
        let mut by_lr: BTreeMap<u32, Vec<&RunRecord>> = BTreeMap::new();
        for r in runs {
            by_lr.entry(r.lr.to_bits()).or_default().push(r);
        }
        let lrs: Vec<f32> = {
            let mut v: Vec<f32> = by_lr.keys().map(|b| f32::from_bits(*b)).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v
        };
        let n_diverged = runs.iter().filter(|r| r.diverged).count();
        let diverged_lrs: Vec<(f64, f64)> = lrs
            .iter()
            .filter(|lr| by_lr[&lr.to_bits()].iter().any(|r| r.diverged))
            .map(|&lr| (lr as f64, f64::NAN))
            .collect();
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
            // Seeds are drawn where some learning rate has more values than its mean.
            let seeds = all.len() > means.len();
            chart.add_series(
                Series::line_points(format!("{name} (mean)"), means)
                    .with_color(color)
                    .with_dashed(dashed),
            );
            if seeds {
                chart.add_series(Series::scatter(format!("{name} (seeds)"), all).with_color(color));
            }
            if !diverged_lrs.is_empty() {
                chart.add_series(
                    Series::top_marks(
                        format!("{n_diverged} diverged: {name}"),
                        diverged_lrs.clone(),
                    )
                    .with_color(color),
                );
            }
        }
        if runs.iter().any(|r| r.adaptive) {
            continue;
        }
        let thr = runs[0].threshold;
        let th = fmt_sig(thr as f64);
        if let [lr] = lrs[..] {
            // One learning rate: a line, not a one-point curve that would read as data.
            let v = (thr / lr) as f64;
            sharp.add_ref_line(
                RefLine::at_y(v, format!("{th}/lr = {} ({name})", fmt_sig(v))).with_color(color),
            );
        } else {
            let curve: Vec<(f64, f64)> = lrs
                .iter()
                .map(|&lr| (lr as f64, (thr / lr) as f64))
                .collect();
            sharp.add_series(
                Series::line(format!("{th}/lr ({name})"), curve)
                    .with_dashed(true)
                    .with_color(color)
                    .as_reference(),
            );
        }
        if let Some(s0) = mean(runs.iter().filter_map(|r| r.sharpness_0)) {
            let lr_star = (thr / s0) as f64;
            acc.add_ref_line(
                RefLine::at_x(
                    lr_star,
                    format!("lr* = {th}/S0 = {} ({name})", fmt_sig(lr_star)),
                )
                .with_color(color),
            );
            rot.add_ref_line(RefLine::at_x(lr_star, format!("lr* ({name})")).with_color(color));
        }
    }
    [sharp, acc, rot]
}

/// Writes `report.md`, `report.csv` and `plots/*.svg` into `out`; returns the records and the
/// run directories left out.
pub fn report(inputs: &[PathBuf], out: &Path) -> Result<Reported> {
    let dirs = collect(inputs)?;
    // A run whose files cannot be read is left out with a warning, so that one damaged run
    // among hundreds does not stop the report of the others; report.md lists it. Only when no
    // run can be read is that bad input.
    let mut recs: Vec<RunRecord> = Vec::new();
    let mut left_out: Vec<(PathBuf, String)> = Vec::new();
    for d in &dirs {
        match read_run(d) {
            Ok(r) => recs.push(r),
            Err(e) => {
                eprintln!("warning: run {} left out of the report: {e}", d.display());
                left_out.push((d.clone(), e.message));
            }
        }
    }
    if recs.is_empty() {
        if let Some((d, why)) = left_out.first() {
            return Err(Failure::input(format!(
                "no run could be read ({} run director{}; first: {}: {why})",
                left_out.len(),
                if left_out.len() == 1 { "y" } else { "ies" },
                d.display()
            )));
        }
    }
    sort_runs(&mut recs);
    // A directory where an output file goes would fail its write after the others had
    // replaced the previous report's: checked before the first.
    let outputs = ["report.md", "report.csv"]
        .map(|n| out.join(n))
        .into_iter()
        .chain(REPORT_PLOTS.map(|n| out.join("plots").join(n)));
    for p in outputs {
        if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Err(Failure::input(format!(
                "{} is a directory, where the report writes a file: nothing was written; move it away",
                p.display()
            )));
        }
    }
    // A report.md or report.csv that an earlier report did not write (a user's notes) is not
    // replaced: it begins as every report's does, or the report goes elsewhere.
    for (name, start) in [
        ("report.md", "# edgewise report"),
        ("report.csv", "dir,opt,"),
    ] {
        let p = out.join(name);
        let Ok(mut f) = std::fs::File::open(&p) else {
            continue;
        };
        let mut head = vec![0u8; start.len()];
        let ours = std::io::Read::read_exact(&mut f, &mut head).is_ok() && head == start.as_bytes();
        if !ours {
            return Err(Failure::input(format!(
                "{} exists and was not written by `edgewise report` (it does not begin with `{start}`): nothing was written; give another --out or move it away",
                p.display()
            )));
        }
    }
    std::fs::create_dir_all(out.join("plots"))
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", out.display())))?;
    // Runs are averaged (and drawn as one curve) only with runs of the same settings but the
    // learning rate and the seed; groups are named by the settings in which they differ.
    let varying = if recs.is_empty() {
        Vec::new()
    } else {
        varying_settings(&recs)
    };
    // Keyed by the label and, so that two groups never merge whatever their values spell, the
    // settings themselves.
    type GroupKey<'a> = (String, &'a [(String, String)]);
    let mut groups: BTreeMap<GroupKey, Vec<&RunRecord>> = BTreeMap::new();
    for r in &recs {
        groups
            .entry((group_label(r, &varying), &r.settings))
            .or_default()
            .push(r);
    }
    // With settings that vary, a group's name starts with its number (`#2 gd bs=full
    // arch=64-16-10`), which report.md explains: a plot's legend cuts long names short.
    let group_name = |gi: usize, label: &str| {
        if varying.is_empty() {
            label.to_string()
        } else {
            format!("#{} {label}", gi + 1)
        }
    };
    let named: Vec<(String, Vec<&RunRecord>)> = groups
        .iter()
        .enumerate()
        .map(|(gi, ((label, _), runs))| (group_name(gi, label), runs.clone()))
        .collect();
    let [sharp, acc, rot] = report_charts(&named);
    let pd = out.join("plots");
    let w = |name: &str, c: &Chart| {
        crate::fsio::atomic_write(&pd.join(name), render_svg(c).as_bytes())
            .map_err(crate::train::out_err)
    };
    for (name, chart) in REPORT_PLOTS.iter().zip([&sharp, &acc, &rot]) {
        w(name, chart)?;
    }

    let mut csv = String::from("dir,opt,clip,batch_size,lr,seed,steps,diverged,finished,train_loss,train_acc,test_acc,sharpness,lr_x_sharpness,sharpness_0,max_sharpness,mean_rotation,mean_subspace_score,precond_sharpness,mean_sharpness_hvps,mean_tracked_hvps,group\n");
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
    if !left_out.is_empty() {
        let _ = writeln!(
            md,
            "**{} run director{} left out: {} files could not be read** (see the end of this \
             report).\n",
            left_out.len(),
            if left_out.len() == 1 { "y" } else { "ies" },
            if left_out.len() == 1 { "its" } else { "their" },
        );
    }
    if !varying.is_empty() {
        let _ = writeln!(
            md,
            "The runs differ in more settings than optimizer, clip value, batch size, learning \
             rate and seed; only runs whose settings are the same but the learning rate and \
             the seed are averaged (and drawn) together, in these groups:\n"
        );
        for (gi, ((label, _), runs)) in groups.iter().enumerate() {
            let _ = writeln!(
                md,
                "- `#{}`: {} ({} run{})",
                gi + 1,
                md_cell(label),
                runs.len(),
                if runs.len() == 1 { "" } else { "s" }
            );
        }
        md.push('\n');
    }
    md.push_str("![final sharpness vs lr](plots/sharpness_vs_lr.svg)\n![test accuracy vs lr](plots/test_acc_vs_lr.svg)\n![rotation vs lr](plots/rotation_vs_lr.svg)\n\n");
    // Runs are named by their directory below the one holding them all (a sweep's run names
    // for one sweep, `SWEEP/RUN` for several), and, when the reported runs differ in other
    // settings than optimizer, clip value, batch size, learning rate and seed, by those.
    if varying.is_empty() {
        md.push_str("| run | opt | lr | batch | seed | steps | status | train loss | test acc | sharpness | lr x sharpness | max sharpness | mean rotation |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    } else {
        md.push_str("| run | settings | opt | lr | batch | seed | steps | status | train loss | test acc | sharpness | lr x sharpness | max sharpness | mean rotation |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    }
    let parents: Vec<&Path> = recs
        .iter()
        .map(|r| r.dir.parent().unwrap_or(Path::new("")))
        .collect();
    let base = common_dir(&parents);
    // Each run's group as the plots and report.md name it (report.csv's last column).
    let group_of = |r: &RunRecord| -> String {
        let key = (group_label(r, &varying), r.settings.as_slice());
        let gi = groups.keys().position(|k| *k == key).unwrap_or(0);
        group_name(gi, &key.0)
    };
    for r in &recs {
        let rel = r.dir.strip_prefix(&base).unwrap_or(&r.dir);
        let mut name = md_cell(&rel.display().to_string());
        if !varying.is_empty() {
            let _ = write!(name, " | {}", md_cell(&settings_label(r, &varying)));
        }
        let status = if r.diverged {
            "diverged"
        } else if r.finished {
            "done"
        } else {
            "incomplete"
        };
        let lxs = r.lr_x_sharpness;
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
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&r.dir.display().to_string()),
            csv_field(&r.opt),
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
            csv_field(&group_of(r)),
        );
    }
    if !left_out.is_empty() {
        md.push_str("\n## Left out\n\nRun directories whose files could not be read:\n\n");
        for (d, why) in &left_out {
            let _ = writeln!(md, "- `{}`: {}", d.display(), why.replace('\n', " "));
        }
    }
    // A path at fault (read-only, not a directory) is bad input; a full disk is not.
    let io = crate::train::out_err;
    crate::fsio::atomic_write(&out.join("report.md"), md.as_bytes()).map_err(io)?;
    crate::fsio::atomic_write(&out.join("report.csv"), csv.as_bytes()).map_err(io)?;
    Ok(Reported {
        runs: recs,
        left_out,
    })
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
            settings: Vec::new(),
            threshold: 2.0,
            adaptive: false,
            steps: 0,
            diverged: false,
            finished: true,
            train_loss: None,
            train_acc: None,
            test_acc: None,
            sharpness: None,
            lr_x_sharpness: None,
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
        // Its losses and accuracies: the last test evaluation's row (step 1 here), with the
        // row's own training loss at full batch, the evaluated columns with minibatches.
        assert_eq!(
            (r.train_loss, r.test_acc),
            (None, None),
            "no evaluation yet"
        );
        let mut csv = metrics::header() + "\n";
        for (i, r) in [
            row(0, 1.0, Some(3.0)),
            row(1, 0.9, None),
            row(2, 0.8, Some(4.0)),
        ]
        .into_iter()
        .enumerate()
        {
            let r = Row {
                train_acc: 0.5 + i as f32 / 10.0,
                test_acc: (i < 2).then_some(0.4 + i as f32 / 10.0),
                full_train_loss: (i < 2).then_some(2.0 - i as f32),
                full_train_acc: (i < 2).then_some(0.25),
                ..r
            };
            csv.push_str(&r.to_csv());
            csv.push('\n');
        }
        std::fs::write(d.join("metrics.csv"), &csv).unwrap();
        let r = read_run(d).unwrap();
        assert_eq!(
            (r.train_loss, r.train_acc, r.test_acc),
            (Some(1.0), Some(0.25), Some(0.5))
        );
        let csv = csv.replace(",2,0.25,", ",,,").replace(",1,0.25,", ",,,");
        std::fs::write(d.join("metrics.csv"), &csv).unwrap();
        let r = read_run(d).unwrap();
        assert_eq!(
            (r.train_loss, r.train_acc, r.test_acc),
            (Some(0.9), Some(0.6), Some(0.5))
        );
    }

    #[test]
    fn a_summary_of_the_wrong_shape_is_bad_input_naming_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        let check = |text: &str, needle: &str| {
            std::fs::write(&p, text).unwrap();
            let e = read_summary(&p).unwrap_err();
            assert_eq!(e.code, crate::error::EXIT_BAD_INPUT);
            assert!(
                e.message.starts_with(&format!("{}: ", p.display()))
                    || e.message.starts_with("cannot read"),
                "{e}"
            );
            assert!(e.message.contains(needle), "{text}: {e}");
        };
        check("[1,2,3]", "not an edgewise summary: expected a JSON object");
        check("{}", "no `steps` field");
        check(
            r#"{"steps": "20", "diverged": false}"#,
            "`steps` is `\"20\"`",
        );
        check(r#"{"steps": -1, "diverged": false}"#, "not a step count");
        check(
            r#"{"steps": 20, "diverged": "no"}"#,
            "`diverged` is `\"no\"`",
        );
        check(
            r#"{"steps": 20, "diverged": false, "final_values": [1]}"#,
            "`final_values` is `[1]`",
        );
        check(
            r#"{"steps": 20, "diverged": false, "final_values": {"test_acc": "0.9"}}"#,
            "`final_values.test_acc` is `\"0.9\"`, not a number",
        );
        check(
            r#"{"steps": 20, "diverged": false, "mean_tracked_hvps": true}"#,
            "`mean_tracked_hvps`",
        );
        check("{\"steps\": 2", "not valid JSON");
        let ok = r#"{"steps": 20, "diverged": true, "n_train": 100, "extra": [1],
            "final_values": {"train_loss": 0.5, "test_acc": null}, "mean_sharpness_hvps": 7}"#;
        std::fs::write(&p, ok).unwrap();
        let s = read_summary(&p).unwrap();
        assert_eq!(
            s,
            SummaryFile {
                diverged: true,
                steps: 20,
                n_train: Some(100),
                train_loss: Some(0.5),
                mean_sharpness_hvps: Some(7.0),
                ..Default::default()
            }
        );
    }

    #[test]
    fn groups_are_runs_of_equal_settings_but_lr_and_seed_named_by_what_differs() {
        let cfg = |arch: &str, steps: Option<u64>, lr: f32, seed: u64| {
            let mut c = TrainConfig::default();
            c.model.arch = arch.into();
            c.run.steps = steps;
            c.optim.lr = lr;
            c.model.seed = seed;
            c
        };
        let with = |dir: &str, c: &TrainConfig| RunRecord {
            settings: settings(c),
            ..rec(dir, c.optim.lr, c.model.seed, c.optim.batch_size)
        };
        let recs = vec![
            with("a/r1", &cfg("64-32-10", Some(100), 0.1, 0)),
            with("a/r2", &cfg("64-32-10", Some(100), 0.2, 1)),
            with("b/r1", &cfg("64-16-10", Some(100), 0.1, 0)),
            with("c/r1", &cfg("64-32-10", None, 0.1, 0)),
        ];
        // The learning rate and the seed never separate runs; they are not settings here.
        assert!(recs[0]
            .settings
            .iter()
            .all(|(k, _)| k != "optim.lr" && k != "model.seed"));
        assert_eq!(recs[0].settings, recs[1].settings);
        let varying = varying_settings(&recs);
        assert_eq!(varying, ["model.arch", "run.steps"]);
        let labels: Vec<String> = recs.iter().map(|r| group_label(r, &varying)).collect();
        assert_eq!(
            labels,
            [
                "gd bs=full arch=64-32-10 steps=100",
                "gd bs=full arch=64-32-10 steps=100",
                "gd bs=full arch=64-16-10 steps=100",
                "gd bs=full arch=64-32-10",
            ]
        );
        // One sweep: nothing varies, the label is the optimizer's and the batch size's alone.
        let varying = varying_settings(&recs[..2]);
        assert!(varying.is_empty());
        assert_eq!(group_label(&recs[1], &varying), "gd bs=full");
        // The data set is named `data`, not `name`.
        let mut other = cfg("64-32-10", Some(100), 0.1, 0);
        other.data.name = "mnist5k".into();
        let two = vec![recs[0].clone(), with("d/r1", &other)];
        let varying = varying_settings(&two);
        assert_eq!(settings_label(&two[1], &varying), "data=mnist5k");
    }

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(csv_field("runs/lr=0.1"), "runs/lr=0.1");
        assert_eq!(csv_field("SCH,x/lr=0.2"), "\"SCH,x/lr=0.2\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
        assert_eq!(csv_field(""), "");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn runs_are_named_below_the_directory_holding_them_all() {
        let p = |s: &str| PathBuf::from(s);
        let c = |v: &[PathBuf]| common_dir(&v.iter().map(|x| x.as_path()).collect::<Vec<_>>());
        assert_eq!(c(&[p("runs/A"), p("runs/A")]), p("runs/A"));
        assert_eq!(c(&[p("runs/A"), p("runs/S16")]), p("runs"));
        assert_eq!(c(&[p("A"), p("S16")]), p(""));
        assert_eq!(c(&[p("/x/runs/A"), p("/x/runs/B/c")]), p("/x/runs"));
        assert_eq!(c(&[]), p(""));
    }

    #[test]
    fn lr_x_sharpness_takes_the_learning_rate_of_the_last_step_taken() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut cfg = TrainConfig::default();
        cfg.optim.lr = 0.2;
        cfg.optim.schedule = "step:2:0.5".into();
        cfg.run.steps = Some(4);
        cfg.curvature.eig_every = 2;
        std::fs::write(d.join("config.toml"), cfg.to_toml()).unwrap();
        let mut csv = metrics::header() + "\n";
        for (t, lr) in [(0u64, 0.2f32), (1, 0.2), (2, 0.1), (3, 0.1)] {
            let r = Row {
                lr,
                lr_x_sharpness: (t % 2 == 0).then_some(lr * 8.0),
                ..row(t, 1.0, (t % 2 == 0).then_some(8.0))
            };
            csv.push_str(&r.to_csv());
            csv.push('\n');
        }
        std::fs::write(d.join("metrics.csv"), &csv).unwrap();
        // Interrupted: the last measured row's own lr (0.1 at step 2), not the base lr 0.2.
        let r = read_run(d).unwrap();
        assert_eq!((r.sharpness, r.lr_x_sharpness), (Some(8.0), Some(0.8)));
        // Finished: summary.json's value; without one (an older summary), the schedule's lr
        // of the last step (step 3 of 4: 0.1).
        let summary = serde_json::json!({
            "diverged": false,
            "steps": 4,
            "final_values": {"sharpness": 10.0, "lr_x_sharpness": 1.25}
        });
        std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
        assert_eq!(read_run(d).unwrap().lr_x_sharpness, Some(1.25));
        let summary = serde_json::json!({
            "diverged": false,
            "steps": 4,
            "final_values": {"sharpness": 10.0}
        });
        std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
        assert_eq!(read_run(d).unwrap().lr_x_sharpness, Some(10.0 * 0.1));
    }

    #[test]
    fn a_run_that_has_only_just_started_is_incomplete_with_no_steps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("config.toml"), TrainConfig::default().to_toml()).unwrap();
        // config.toml alone (train writes it before metrics.csv), then metrics.csv's header.
        for header_only in [false, true] {
            if header_only {
                std::fs::write(d.join("metrics.csv"), metrics::header() + "\n").unwrap();
            }
            let r = read_run(d).unwrap();
            assert!(!r.finished && !r.diverged);
            assert_eq!((r.steps, r.sharpness, r.test_acc), (0, None, None));
        }
        // Without metrics.csv, a run with a summary or a resume checkpoint has lost it.
        std::fs::remove_file(d.join("metrics.csv")).unwrap();
        std::fs::create_dir(d.join("checkpoints")).unwrap();
        std::fs::write(d.join("checkpoints/resume.safetensors"), b"x").unwrap();
        let e = read_run(d).unwrap_err();
        assert!(
            e.message.contains("metrics.csv: missing") && e.message.contains("resume checkpoint"),
            "{e}"
        );
        std::fs::remove_file(d.join("checkpoints/resume.safetensors")).unwrap();
        std::fs::write(d.join("summary.json"), r#"{"steps": 3, "diverged": false}"#).unwrap();
        let e = read_run(d).unwrap_err();
        assert!(e.message.contains("has a summary.json"), "{e}");
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
    fn series<'a>(c: &'a Chart, label: &str) -> Option<&'a Series> {
        c.series.iter().find(|s| s.label == label)
    }

    #[test]
    fn report_charts_draw_thresholds_for_gd_like_groups_only() {
        let mk = |lr: f32, seed: u64, thr: f32, adaptive: bool| RunRecord {
            threshold: thr,
            adaptive,
            sharpness: Some(10.0),
            sharpness_0: Some(5.0),
            test_acc: Some(0.9),
            ..rec("r", lr, seed, None)
        };
        let adam: Vec<RunRecord> = [0.001, 0.01]
            .iter()
            .map(|&lr| mk(lr, 0, 37.999992, true))
            .collect();
        let nesterov: Vec<RunRecord> = [0.01, 0.1]
            .iter()
            .map(|&lr| mk(lr, 0, 1.3571428, false))
            .collect();
        let one: Vec<RunRecord> = vec![mk(0.5, 0, 2.0, false)];
        let groups = vec![
            ("adam".to_string(), adam.iter().collect()),
            ("nesterov".to_string(), nesterov.iter().collect()),
            ("one".to_string(), one.iter().collect()),
        ];
        let [sharp, acc, rot] = report_charts(&groups);
        // Adam: no thr/lr curve, no lr* line.
        assert!(sharp.series.iter().all(|s| !s.label.contains("(adam)")));
        assert!(acc.ref_lines.iter().all(|l| !l.label.contains("(adam)")));
        assert!(rot.ref_lines.iter().all(|l| !l.label.contains("(adam)")));
        // Nesterov: a reference curve, labelled without f32 noise.
        let curve = series(&sharp, "1.357/lr (nesterov)").expect("nesterov's threshold");
        assert!(curve.reference && curve.dashed);
        assert!(acc
            .ref_lines
            .iter()
            .any(|l| l.label == "lr* = 1.357/S0 = 0.2714 (nesterov)"));
        // One learning rate: a reference line, not a one-point series.
        assert!(sharp.series.iter().all(|s| !s.label.contains("/lr (one)")));
        assert!(sharp
            .ref_lines
            .iter()
            .any(|l| l.horizontal && l.label == "2/lr = 4 (one)"));
        assert_eq!(acc.y_range, Some((-0.02, 1.02)));
    }

    #[test]
    fn report_charts_mark_diverged_learning_rates_and_show_every_seed() {
        // lr 0.1: two seeds; lr 1: both diverged (no value).
        let mk = |lr: f32, seed: u64, diverged: bool| RunRecord {
            diverged,
            sharpness: (!diverged).then_some(10.0 + seed as f32),
            ..rec("r", lr, seed, None)
        };
        let runs = [
            mk(0.1, 0, false),
            mk(0.1, 1, false),
            mk(1.0, 0, true),
            mk(1.0, 1, true),
        ];
        let groups = vec![("g".to_string(), runs.iter().collect())];
        let [sharp, ..] = report_charts(&groups);
        let mean = series(&sharp, "g (mean)").unwrap();
        assert_eq!(mean.style, crate::plot::Style::LinePoints);
        assert_eq!(mean.points, [(0.1f32 as f64, 10.5)]);
        let seeds = series(&sharp, "g (seeds)").expect("the two seeds at lr 0.1");
        assert_eq!(seeds.points.len(), 2);
        let div = series(&sharp, "2 diverged: g").expect("diverged marks");
        assert_eq!(div.style, crate::plot::Style::TopMarks);
        assert_eq!(div.points.len(), 1);
        assert_eq!(div.points[0].0, 1.0);
        let svg = render_svg(&sharp);
        assert!(svg.contains("2 diverged: g"));
        // No diverged run: no marks.
        let ok = [mk(0.1, 0, false)];
        let [sharp, ..] = report_charts(&[("g".to_string(), ok.iter().collect())]);
        assert!(sharp.series.iter().all(|s| !s.label.contains("diverged")));
    }
}
