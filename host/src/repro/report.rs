//! Writes `report.md`, `claims.json` and the cross-run plots (`plots/*.svg`) of a reproduction.
//! Everything written here is a function of the run directories and the plan, so it is the same
//! on every rerun (no timestamps, no wall times).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{Failure, Result};
use crate::metrics::Row;
use crate::plot::{palette_color, render_grid_svg, render_svg, Chart, RefLine, Series};

use super::diag::{self, DiagRun};
use super::plan::{Kind, Plan};
use super::stats::{mean, median, run_stats, used_text, MeanSd, RunRecord, COLLAPSE_MARGIN};
use super::verdict::{criterion, Assessment, Verdict, CLAIMS};

/// The assessment of one claim: the primary experiment's verdict and, where another setting
/// also speaks to it, that setting's verdict as secondary evidence.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    /// 1-based claim number.
    pub id: usize,
    /// Short name.
    pub name: String,
    /// The claim.
    pub claim: String,
    /// The experiment that decides the verdict.
    pub experiment: String,
    /// The verdict criterion.
    pub criterion: String,
    /// Verdict and evidence.
    pub primary: Assessment,
    /// Another setting's verdict and evidence (not part of the verdict).
    pub secondary: Option<(String, Assessment)>,
}

/// HVP statistics of one experiment.
#[derive(Clone, Debug, Serialize)]
pub struct HvpStats {
    /// Experiment directory.
    pub experiment: String,
    /// `power`, `warm-lanczos` or `lanczos`.
    pub method: String,
    /// Sharpness measurements.
    pub measurements: usize,
    /// Mean products per sharpness measurement.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Share of measurements with at most 4 products.
    pub share_le_4: Option<f64>,
    /// Mean products per measurement, all quantities (lambda_min, T, preconditioned sharpness).
    pub mean_total: Option<f64>,
}

/// Per-step warm-started tracking (`track_every`) in one experiment at one learning rate.
#[derive(Clone, Debug, Serialize)]
pub struct TrackedStats {
    /// Experiment directory.
    pub experiment: String,
    /// Learning rate.
    pub lr: f32,
    /// Runs (seeds).
    pub runs: usize,
    /// Measurements over all runs.
    pub measurements: usize,
    /// Mean products per measurement.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// Largest `lr * tracked sharpness` of all runs.
    pub max_lr_x_sharpness: Option<f64>,
    /// Mean of `lr * tracked sharpness` over the second half of the runs' steps.
    pub late_lr_x_sharpness: Option<f64>,
    /// Runs that diverged: counted in the products, left out of the two `lr x sharpness` values.
    pub diverged_runs: usize,
    /// Rows holding both the tracked sharpness and a fresh spectrum's (`sharpness`, from a
    /// random start), of the runs that did not diverge.
    pub compared: usize,
    /// Largest `|tracked - fresh| / |fresh|` over those rows.
    pub max_rel_diff: Option<f64>,
    /// Rows where it exceeds [`AGREE_TOL`].
    pub disagree: usize,
}

/// The relative difference above which the tracked and the fresh sharpness disagree: the
/// tolerance of the residual test, which bounds the eigenvalue's error far more tightly.
pub const AGREE_TOL: f64 = 1e-3;

/// Per-learning-rate statistics of the sharpness-only tracker of an experiment's runs (empty
/// when it did not track).
pub fn tracked_stats(dir: &str, runs: &[RunRecord]) -> Vec<TrackedStats> {
    let mut lrs: Vec<f32> = runs.iter().map(|r| r.lr).collect();
    lrs.sort_by(f32::total_cmp);
    lrs.dedup();
    let mut out = Vec::new();
    for lr in lrs {
        let (mut hv, mut lxs, mut late, mut diffs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut n, mut diverged) = (0, 0);
        for r in runs.iter().filter(|r| r.lr == lr) {
            n += 1;
            diverged += usize::from(r.diverged);
            let half = r.rows.len() / 2;
            for (i, x) in r.rows.iter().enumerate() {
                if let Some(h) = x.tracked_hvps {
                    hv.push(f64::from(h));
                }
                if r.diverged {
                    continue;
                }
                if let Some(s) = x.tracked_sharpness {
                    let v = f64::from(lr) * f64::from(s);
                    lxs.push(v);
                    if i >= half {
                        late.push(v);
                    }
                    if let Some(f) = x.sharpness.filter(|f| f.is_finite() && *f != 0.0) {
                        let d = (f64::from(s) - f64::from(f)).abs() / f64::from(f).abs();
                        if d.is_finite() {
                            diffs.push(d);
                        }
                    }
                }
            }
        }
        if hv.is_empty() {
            continue;
        }
        out.push(TrackedStats {
            experiment: dir.to_string(),
            lr,
            runs: n,
            measurements: hv.len(),
            mean: mean(&hv),
            median: median(&hv),
            max_lr_x_sharpness: lxs.iter().copied().reduce(f64::max),
            late_lr_x_sharpness: mean(&late),
            diverged_runs: diverged,
            compared: diffs.len(),
            max_rel_diff: diffs.iter().copied().reduce(f64::max),
            disagree: diffs.iter().filter(|&&d| d > AGREE_TOL).count(),
        });
    }
    out
}

/// Everything the report is made of.
pub struct Inputs<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Run records per experiment (same order as the plan's experiments).
    pub records: &'a [Vec<RunRecord>],
    /// Experiment 8.
    pub diag: &'a [DiagRun],
    /// The claims.
    pub claims: &'a [ClaimResult],
    /// Runs that failed (labels and messages).
    pub failed: &'a [(String, String)],
}

/// A failed write: bad input when the path is at fault, else a failure to write results.
fn io(e: crate::fsio::IoError) -> Failure {
    crate::train::out_err(e)
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn fmt_lr(x: f64) -> String {
    let s = format!("{x:.4}");
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() || t == "0" {
        format!("{x:.2e}")
    } else {
        t.to_string()
    }
}

fn o(v: Option<f64>, d: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.d$}"))
}

fn ms(v: &[f64], d: usize) -> String {
    MeanSd::of(v).map_or("n/a".into(), |m| m.show(d))
}

fn pts(rows: &[Row], f: impl Fn(&Row) -> Option<f32>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| f(r).map(|v| (r.step as f64, v as f64)))
        .collect()
}

fn first_seed(runs: &[RunRecord]) -> Vec<&RunRecord> {
    let s0 = runs.iter().map(|r| r.seed).min().unwrap_or(0);
    let mut v: Vec<&RunRecord> = runs.iter().filter(|r| r.seed == s0).collect();
    v.sort_by(|a, b| a.lr.total_cmp(&b.lr));
    v
}

/// `h` over the runs of `st` that did not diverge: the tables' means leave diverged runs out.
fn undiverged(
    st: &[(&RunRecord, super::stats::RunStats)],
    h: impl Fn(&RunRecord, &super::stats::RunStats) -> Option<f64>,
) -> Vec<f64> {
    st.iter()
        .filter(|(r, _)| !r.diverged)
        .filter_map(|(r, s)| h(r, s))
        .collect()
}

fn group_lr(runs: &[RunRecord]) -> Vec<(f64, Vec<&RunRecord>)> {
    let mut m: BTreeMap<u32, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        m.entry(r.lr.to_bits()).or_default().push(r);
    }
    m.into_values().map(|g| (g[0].lr as f64, g)).collect()
}

struct Plots<'a> {
    dir: &'a Path,
    written: Vec<String>,
}

impl Plots<'_> {
    fn put(&mut self, name: &str, c: &Chart) -> Result<String> {
        crate::fsio::atomic_write(&self.dir.join(name), render_svg(c).as_bytes()).map_err(io)?;
        self.written.push(name.to_string());
        Ok(format!("plots/{name}"))
    }

    fn put_grid(&mut self, name: &str, charts: &[Chart], cols: usize) -> Result<String> {
        crate::fsio::atomic_write(
            &self.dir.join(name),
            render_grid_svg(charts, cols).as_bytes(),
        )
        .map_err(io)?;
        self.written.push(name.to_string());
        Ok(format!("plots/{name}"))
    }
}

/// A run's sharpness (`times_lr`: lr x sharpness, the step's lr) over the steps: the per-step
/// tracker's line when the run tracked (`track_every`), else the eigen measurements as points.
fn sharpness_series(r: &RunRecord, label: String, times_lr: bool) -> Series {
    let k = |x: &Row| if times_lr { x.lr } else { 1.0 };
    let tracked = pts(&r.rows, |x| x.tracked_sharpness.map(|s| k(x) * s));
    if tracked.is_empty() {
        Series::line_points(label, pts(&r.rows, |x| x.sharpness.map(|s| k(x) * s)))
    } else {
        Series::line(label, tracked)
    }
}

fn sharpness_chart(title: &str, runs: &[RunRecord]) -> Chart {
    let mut c = Chart::new(title, "step", "sharpness (dashed: 2/lr)").log_y();
    for (i, r) in first_seed(runs).iter().enumerate() {
        let col = palette_color(i);
        c.add_series(
            sharpness_series(r, format!("lr {}", fmt_lr(r.lr as f64)), false).with_color(col),
        );
        c.add_ref_line(RefLine::at_y(r.threshold as f64 / r.lr as f64, "").with_color(col));
    }
    c
}

fn loss_chart(
    title: &str,
    runs: &[&RunRecord],
    label: impl Fn(&RunRecord) -> String,
    x_scale: impl Fn(&RunRecord) -> f64,
    x_label: &str,
) -> Chart {
    let mut c = Chart::new(title, x_label, "training loss").log_y();
    for (i, r) in runs.iter().enumerate() {
        let k = x_scale(r);
        let p: Vec<(f64, f64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.step as f64 * k,
                    x.full_train_loss.unwrap_or(x.loss) as f64,
                )
            })
            .collect();
        let p = if r.is_minibatch() {
            // Minibatch runs: the whole-training-set loss at the evaluation steps.
            r.rows
                .iter()
                .filter_map(|x| x.full_train_loss.map(|l| (x.step as f64 * k, l as f64)))
                .collect()
        } else {
            p
        };
        c.add_series(Series::line(label(r), p).with_color(palette_color(i)));
    }
    c
}

fn lxs_chart(title: &str, runs: &[RunRecord]) -> Chart {
    let series: Vec<Series> = first_seed(runs)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            sharpness_series(r, format!("lr {}", fmt_lr(r.lr as f64)), true)
                .with_color(palette_color(i))
        })
        .collect();
    // Spikes far above the band around 2 (cross-entropy runs: up to ~60) would flatten it on
    // a linear axis: log, by the rule of the runs' own charts.
    let points: Vec<&[(f64, f64)]> = series.iter().map(|s| s.points.as_slice()).collect();
    let mut c = Chart::new(title, "step", "lr x sharpness");
    if crate::plots::wide(&points) {
        c = c.log_y();
    }
    for s in series {
        c.add_series(s);
    }
    c.add_ref_line(RefLine::at_y(2.0, "threshold 2"));
    c
}

/// Mean line and per-seed scatter of `f` against lr.
fn add_vs_lr(
    c: &mut Chart,
    name: &str,
    color: &str,
    runs: &[RunRecord],
    f: &dyn Fn(&RunRecord) -> Option<f64>,
) {
    let mut means = Vec::new();
    let mut all = Vec::new();
    for (lr, g) in group_lr(runs) {
        let v: Vec<f64> = g
            .iter()
            .filter_map(|r| f(r))
            .filter(|x| x.is_finite())
            .collect();
        all.extend(v.iter().map(|y| (lr, *y)));
        if let Some(m) = mean(&v) {
            means.push((lr, m));
        }
    }
    c.add_series(Series::line_points(format!("{name} (mean)"), means).with_color(color));
    c.add_series(Series::scatter(format!("{name} (seeds)"), all).with_color(color));
}

/// The crossing runs of a group, and the statistics of those that did not diverge.
fn crossing_used<'a>(g: &[&'a RunRecord]) -> (Vec<&'a RunRecord>, Vec<super::stats::RunStats>) {
    let mut crossing = Vec::new();
    let mut st = Vec::new();
    for r in g {
        let s = run_stats(r);
        if s.crossed {
            crossing.push(*r);
            if !r.diverged {
                st.push(s);
            }
        }
    }
    (crossing, st)
}

fn lr_table(md: &mut String, runs: &[RunRecord]) {
    let _ = writeln!(
        md,
        "Initial sharpness is over all seeds; every other mean ± sd is over the seeds that did not diverge (a diverged run's \
         metrics after its divergence are meaningless), whose number is `used`. Collapsed runs (final training accuracy at most \
         chance + {COLLAPSE_MARGIN}) are in the means and counted in `collapsed`; claims 1 and 3 treat them separately. The \
         sharpness columns are the Hessian subset's (final: the mean of the last 20% of the measurements), except `lr x S \
         whole split`: lr times the top eigenvalue at the final parameters over the whole training split, the full-data value \
         the subset stands for (at one point of the final oscillation, not a mean).\n"
    );
    md.push_str("| lr | seeds | crossed | diverged | collapsed | used | initial sharpness | final sharpness | lr x final sharpness | lr x S whole split | loss spikes | mean rotation | test acc | train acc |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (lr, g) in group_lr(runs) {
        let st: Vec<_> = g.iter().map(|r| (*r, run_stats(r))).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {}/{} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_lr(lr),
            g.len(),
            st.iter().filter(|(_, s)| s.crossed).count(),
            g.len(),
            g.iter().filter(|r| r.diverged).count(),
            g.len(),
            g.iter().filter(|r| r.collapsed()).count(),
            g.len(),
            g.iter().filter(|r| !r.diverged).count(),
            ms(&st.iter().filter_map(|(_, s)| s.s0).collect::<Vec<_>>(), 2),
            ms(&undiverged(&st, |_, s| s.final_s), 2),
            ms(&undiverged(&st, |_, s| s.final_lxs), 2),
            ms(
                &undiverged(&st, |r, _| r.full_sharpness.map(|x| x * r.lr as f64)),
                2
            ),
            ms(&undiverged(&st, |_, s| Some(s.spikes as f64)), 1),
            ms(&undiverged(&st, |_, s| s.mean_rotation), 4),
            ms(&undiverged(&st, |r, _| r.test_acc.map(f64::from)), 3),
            ms(&undiverged(&st, |r, _| r.train_acc.map(f64::from)), 3),
        );
    }
    md.push('\n');
}

fn dashboards(md: &mut String, dir: &str, runs: &[RunRecord]) {
    let links: Vec<String> = first_seed(runs)
        .iter()
        .map(|r| format!("[{}]({dir}/{}/plots/dashboard.svg)", r.name, r.name))
        .collect();
    if !links.is_empty() {
        let _ = writeln!(
            md,
            "Per-run dashboards (first seed): {}.\n",
            links.join(", ")
        );
    }
}

/// HVP statistics of an experiment's runs.
pub fn hvp_stats(dir: &str, method: &str, runs: &[RunRecord]) -> HvpStats {
    let mut sh = Vec::new();
    let mut tot = Vec::new();
    for r in runs {
        for x in &r.rows {
            if x.sharpness.is_some() {
                if let Some(h) = x.sharpness_hvps {
                    sh.push(h as f64);
                }
                if let Some(h) = x.hvps {
                    tot.push(h as f64);
                }
            }
        }
    }
    HvpStats {
        experiment: dir.to_string(),
        method: method.to_string(),
        measurements: sh.len(),
        mean: mean(&sh),
        median: median(&sh),
        max: sh.iter().copied().reduce(f64::max),
        share_le_4: (!sh.is_empty())
            .then(|| sh.iter().filter(|&&h| h <= 4.0).count() as f64 / sh.len() as f64),
        mean_total: mean(&tot),
    }
}

fn diag_plots(p: &mut Plots<'_>, runs: &[DiagRun]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Some(first) = runs.first() else {
        return Ok(out);
    };
    let start0 = first.start;
    let r0: Vec<&DiagRun> = runs.iter().filter(|r| r.start == start0).collect();
    let title_start = format!("theta_0 = ({}, {})", start0[0], start0[1]);
    // Trajectories in the theta plane, with the valley theta_1 theta_2 = 1.
    let mut c = Chart::new(
        format!("GD from {title_start}; dashed: valley theta_1 theta_2 = 1"),
        "theta_1",
        "theta_2",
    )
    .with_x_range(-3.5, 5.5)
    .with_y_range(-3.5, 5.5)
    .with_size(700, 700);
    let pos: Vec<(f64, f64)> = (0..=200)
        .map(|i| 0.18 + i as f64 * (5.5 - 0.18) / 200.0)
        .map(|a| (a, 1.0 / a))
        .collect();
    let neg: Vec<(f64, f64)> = pos.iter().map(|(a, b)| (-a, -b)).collect();
    c.add_series(
        Series::line("valley", pos)
            .with_dashed(true)
            .with_color("#888888"),
    );
    c.add_series(
        Series::line("", neg)
            .with_dashed(true)
            .with_color("#888888"),
    );
    for (i, r) in r0.iter().enumerate() {
        let t: Vec<(f64, f64)> = r
            .points
            .iter()
            .map(|q| (q.theta[0] as f64, q.theta[1] as f64))
            .collect();
        c.add_series(
            Series::line_points(format!("m={} lr {}", r.multiple, fmt_lr(r.lr as f64)), t)
                .with_color(palette_color(i)),
        );
    }
    out.push(p.put("diag_trajectories.svg", &c)?);
    let xs = |r: &DiagRun, f: &dyn Fn(&diag::DiagPoint) -> f64| -> Vec<(f64, f64)> {
        r.points
            .iter()
            .enumerate()
            .map(|(k, q)| ((k + 1) as f64, f(q)))
            .collect()
    };
    let mut l = Chart::new(
        format!("lambda_max along the run ({title_start}; dashed: 2/lr)"),
        "step + 1",
        "lambda_max",
    )
    .log_x()
    .log_y();
    let mut a = Chart::new(
        format!("Top eigenvector angle ({title_start})"),
        "step + 1",
        "angle (degrees, mod 180)",
    )
    .log_x();
    for (i, r) in r0.iter().enumerate() {
        let col = palette_color(i);
        let name = format!("m={}", r.multiple);
        l.add_series(Series::line(name.clone(), xs(r, &|q| q.lambda_max as f64)).with_color(col));
        l.add_ref_line(RefLine::at_y(2.0 / r.lr as f64, "").with_color(col));
        a.add_series(Series::line(name, xs(r, &|q| q.angle_deg as f64)).with_color(col));
    }
    a.add_ref_line(RefLine::at_y(
        diag::flow_angle_deg(start0),
        "at the gradient-flow minimum",
    ));
    out.push(p.put("diag_lambda.svg", &l)?);
    out.push(p.put("diag_angle.svg", &a)?);
    // lambda_max along the valley, with where each run ended.
    let mut v = Chart::new(
        "lambda_max along the valley (theta_1, 1/theta_1)",
        "|theta_1|",
        "lambda_max",
    )
    .log_x()
    .log_y();
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| 0.18 * (5.5f64 / 0.18).powf(i as f64 / 200.0))
        .map(|a| (a, a * a + 1.0 / (a * a)))
        .collect();
    v.add_series(Series::line("valley", curve).with_color("#888888"));
    let starts: Vec<(f64, f64)> = {
        let mut s: Vec<&DiagRun> = runs.iter().collect();
        s.dedup_by(|a, b| a.start == b.start);
        s.iter()
            .map(|r| {
                let a2 = (r.c0 + (r.c0 * r.c0 + 4.0).sqrt()) / 2.0;
                (a2.sqrt(), r.lambda_ref)
            })
            .collect()
    };
    // Drawn first, in grey, under the runs' ends: a stable run ends on its start's limit, and
    // its colour then covers the grey point.
    v.add_series(
        Series::scatter("gradient-flow limit of each start", starts).with_color("#9a9a9a"),
    );
    let mut by_m: BTreeMap<u64, Vec<&DiagRun>> = BTreeMap::new();
    for r in runs {
        by_m.entry(r.multiple.to_bits()).or_default().push(r);
    }
    for (i, g) in by_m.values().enumerate() {
        let p2: Vec<(f64, f64)> = g
            .iter()
            .filter(|r| r.converged)
            .filter_map(|r| {
                r.points
                    .last()
                    .map(|q| ((q.theta[0] as f64).abs(), r.final_lambda))
            })
            .collect();
        v.add_series(
            Series::scatter(format!("end, m={}", g[0].multiple), p2).with_color(not_black(i)),
        );
    }
    out.push(p.put("diag_valley.svg", &v)?);
    Ok(out)
}

/// Palette colour `i` without the palette's black (black reads as a reference or an outline).
fn not_black(i: usize) -> &'static str {
    let colours: Vec<&str> = crate::plot::PALETTE
        .iter()
        .copied()
        .filter(|c| *c != "#000000")
        .collect();
    colours[i % colours.len()]
}

fn img(md: &mut String, alt: &str, path: &str) {
    let _ = writeln!(md, "![{alt}]({path})\n");
}

/// Writes the report into `out`.
pub fn write(out: &Path, inp: &Inputs<'_>) -> Result<()> {
    let pdir = out.join("plots");
    std::fs::create_dir_all(&pdir)
        .map_err(|e| Failure::input(format!("cannot create {}: {e}", pdir.display())))?;
    let mut p = Plots {
        dir: &pdir,
        written: Vec::new(),
    };
    let plan = inp.plan;
    let find = |k: Kind| plan.experiments.iter().position(|e| e.kind == k);
    let empty: Vec<RunRecord> = Vec::new();
    let recs = |k: Kind| find(k).and_then(|i| inp.records.get(i)).unwrap_or(&empty);
    let exp = |k: Kind| find(k).map(|i| &plan.experiments[i]);
    let (mse, ce, sgd, ada) = (
        recs(Kind::MseLr),
        recs(Kind::CeLr),
        recs(Kind::CeSgd),
        recs(Kind::CeAdaptive),
    );

    let mut md = String::new();
    let _ = writeln!(md, "# edgewise repro ({} scale)\n", plan.scale.name());
    md.push_str(
        "Reproduction of the claims of L. Wang and S. J. Roberts, \"Training Instabilities Induce Flatness Bias in Gradient \
         Descent\" (arXiv 2511.12558) on the data bundled with edgewise. Every number here is computed from the run directories \
         next to this file, and every verdict by the criterion stated under [Criteria](#criteria): none is written by hand. A \
         claim that does not hold on our data is reported as plainly as one that does. All runs are deterministic: rerunning \
         gives byte-identical metrics.\n\n",
    );
    if !inp.failed.is_empty() {
        let _ = writeln!(
            md,
            "**{} runs failed** and are missing from the analysis: {}.\n",
            inp.failed.len(),
            inp.failed
                .iter()
                .map(|(l, m)| format!("{l} ({})", cell(m)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    md.push_str("## Verdicts\n\n| # | claim | evidence | verdict | other setting (not part of the verdict) |\n|---|---|---|---|---|\n");
    for c in inp.claims {
        let sec = c.secondary.as_ref().map_or("—".to_string(), |(name, a)| {
            format!("{name}: {} — {}", a.verdict.as_str(), a.evidence)
        });
        let _ = writeln!(
            md,
            "| {} | **{}** {} | {} (experiment: {}) | {} | {} |",
            c.id,
            cell(&c.name),
            cell(&c.claim),
            cell(&c.primary.evidence),
            cell(&c.experiment),
            c.primary.verdict.as_str(),
            cell(&sec)
        );
    }
    let count = |v: Verdict| inp.claims.iter().filter(|c| c.primary.verdict == v).count();
    let _ = writeln!(
        md,
        "\n{} hold, {} do not hold, {} inconclusive.\n",
        count(Verdict::Holds),
        count(Verdict::DoesNotHold),
        count(Verdict::Inconclusive)
    );

    md.push_str("## Criteria\n\n");
    for c in inp.claims {
        let _ = writeln!(md, "{}. **{}** {}\n", c.id, c.name, c.criterion);
    }
    md.push_str(
        "Shared definitions. *Crossing the threshold*: some measured lr x sharpness (sharpness = top Hessian eigenvalue on the \
         fixed Hessian subset) exceeds 2. *Loss spike*: a step whose full-batch loss exceeds the previous step's by more than \
         0.1% (relative). *Unstable window* of a measurement: a spike between the previous measurement and the step right \
         after this one; otherwise *stable*. *Final sharpness*: mean of the last 20% of the sharpness measurements. Means are \
         over seeds, ± is the sample standard deviation over seeds.",
    );
    let _ = writeln!(
        md,
        " *Diverged*: the run stopped on a non-finite loss; its metrics after the divergence are meaningless, so every mean of a \
         final or late quantity (final sharpness, accuracies, spikes, rotation, lr x S) leaves diverged runs out, and each \
         table and claim shows how many it left out. *Collapsed*: a run that did not diverge but ended with a training accuracy \
         of at most chance (1 / classes) + {COLLAPSE_MARGIN}, e.g. predicting one class or the uniform distribution; it is not \
         a success in claim 1 and is left out of claim 3's fit (its sharpness is that of a network that stopped learning).\n"
    );

    md.push_str("## Experiments\n\n| directory | experiment | data and model | grid | runs |\n|---|---|---|---|---|\n");
    for (i, e) in plan.experiments.iter().enumerate() {
        let _ = writeln!(
            md,
            "| `{}/` | {} | {} | {} | {} |",
            e.dir,
            cell(e.title),
            cell(&e.setting),
            cell(&e.grid_text),
            inp.records.get(i).map_or(0, |r| r.len())
        );
    }
    let d = &plan.diag;
    let _ = writeln!(
        md,
        "| `diag/` | Diagonal linear network (core `DiagLinearNet`, full-batch GD) | L = (theta_1 theta_2 - 1)^2 / 2 | starts {}; lr = m * 2 / lambda_ref, m in {{{}}}; {} steps | {} |\n",
        d.starts.iter().map(|s| format!("({}, {})", s[0], s[1])).collect::<Vec<_>>().join(", "),
        d.multiples.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", "),
        d.steps,
        inp.diag.len()
    );
    md.push_str("The settings follow the paper (MNIST stands in for Fashion-MNIST, which is not bundled: 100 training and 20 test images per class, 3 hidden layers of 32 ReLU units, cross-entropy) and the edge-of-stability studies (a tanh MLP with MSE on MNIST-1D).\n\n");

    // 1 + 2: edge of stability and flatness.
    md.push_str("## Experiments 1-2: edge of stability and flatness bias\n\n");
    if !mse.is_empty() {
        img(
            &mut md,
            "sharpness vs step (MSE)",
            &p.put(
                "eos_sharpness_mse.svg",
                &sharpness_chart(
                    "Sharpness, tanh MLP / MSE / MNIST-1D (first seed; dashed: 2/lr)",
                    mse,
                ),
            )?,
        );
        let fs = first_seed(mse);
        img(
            &mut md,
            "loss vs step (MSE)",
            &p.put(
                "eos_loss_mse.svg",
                &loss_chart(
                    "Training loss, tanh MLP / MSE / MNIST-1D (first seed)",
                    &fs,
                    |r| format!("lr {}", fmt_lr(r.lr as f64)),
                    |_| 1.0,
                    "step",
                ),
            )?,
        );
        img(
            &mut md,
            "lr x sharpness vs step (MSE)",
            &p.put(
                "eos_lr_x_sharpness_mse.svg",
                &lxs_chart("lr x sharpness over time, MSE (first seed)", mse),
            )?,
        );
    }
    if !ce.is_empty() {
        img(
            &mut md,
            "sharpness vs step (CE)",
            &p.put(
                "eos_sharpness_ce.svg",
                &sharpness_chart(
                    "Sharpness, ReLU MLP / CE / MNIST subset (first seed; dashed: 2/lr)",
                    ce,
                ),
            )?,
        );
        let fs = first_seed(ce);
        img(
            &mut md,
            "loss vs step (CE)",
            &p.put(
                "eos_loss_ce.svg",
                &loss_chart(
                    "Training loss, ReLU MLP / CE / MNIST subset (first seed)",
                    &fs,
                    |r| format!("lr {}", fmt_lr(r.lr as f64)),
                    |_| 1.0,
                    "step",
                ),
            )?,
        );
        img(
            &mut md,
            "lr x sharpness vs step (CE)",
            &p.put(
                "eos_lr_x_sharpness_ce.svg",
                &lxs_chart("lr x sharpness over time, CE (first seed)", ce),
            )?,
        );
    }
    let mut fsh = Chart::new(
        "Final sharpness vs learning rate (dashed: 2/lr)",
        "learning rate",
        "final sharpness",
    )
    .log_x()
    .log_y();
    let mut all_lrs: Vec<f64> = Vec::new();
    for (i, (name, runs)) in [("MSE / MNIST-1D", mse), ("CE / MNIST", ce)]
        .iter()
        .enumerate()
    {
        if runs.is_empty() {
            continue;
        }
        add_vs_lr(&mut fsh, name, palette_color(i), runs, &|r| {
            if r.diverged || r.collapsed() {
                None
            } else {
                run_stats(r).final_s
            }
        });
        all_lrs.extend(group_lr(runs).iter().map(|(lr, _)| *lr));
    }
    all_lrs.sort_by(|a, b| a.total_cmp(b));
    all_lrs.dedup();
    fsh.add_series(
        Series::line("2/lr", all_lrs.iter().map(|lr| (*lr, 2.0 / lr)).collect())
            .with_dashed(true)
            .with_color("#888888")
            .as_reference(),
    );
    // Collapsed runs (at chance) are left out as the claims' verdicts leave them out.
    let both: Vec<&RunRecord> = mse.iter().chain(ce.iter()).collect();
    let left = super::stats::left_out(&both, true);
    if let Some(why) = &left {
        fsh.add_note(format!("left out: {why}"));
    }
    img(
        &mut md,
        "final sharpness vs lr",
        &p.put("flatness_final_sharpness.svg", &fsh)?,
    );
    if let Some(why) = &left {
        let _ = writeln!(
            md,
            "The plot leaves out the diverged and collapsed runs ({why}), as the verdicts do.\n"
        );
    }
    for (title, dir, runs) in [
        ("tanh MLP / MSE / MNIST-1D", "mse-lr", mse),
        ("ReLU MLP / CE / MNIST subset", "ce-lr", ce),
    ] {
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(md, "**{title}** (`{dir}/`):\n");
        lr_table(&mut md, runs);
        dashboards(&mut md, dir, runs);
    }

    // 3: rotation.
    md.push_str("## Experiment 3: eigenvector rotation\n\n");
    let mut rot = Chart::new(
        "Eigenvector rotation vs learning rate",
        "learning rate",
        "1 - |cos| (single) / 1 - subspace score",
    )
    .log_x()
    .log_y();
    for (i, (name, runs)) in [("MSE", mse), ("CE", ce)].iter().enumerate() {
        if runs.is_empty() {
            continue;
        }
        add_vs_lr(
            &mut rot,
            &format!("{name} single vector"),
            palette_color(2 * i),
            runs,
            &|r| {
                if r.diverged || r.collapsed() {
                    None
                } else {
                    run_stats(r).mean_rotation
                }
            },
        );
        add_vs_lr(
            &mut rot,
            &format!("{name} top-3 subspace"),
            palette_color(2 * i + 1),
            runs,
            &|r| {
                if r.diverged || r.collapsed() {
                    None
                } else {
                    run_stats(r).mean_subspace_dev
                }
            },
        );
    }
    if let Some(why) = &left {
        rot.add_note(format!("left out: {why}"));
    }
    img(
        &mut md,
        "rotation vs lr",
        &p.put("rotation_vs_lr.svg", &rot)?,
    );
    if let Some(why) = &left {
        let _ = writeln!(
            md,
            "The plot leaves out the diverged and collapsed runs ({why}), as the verdicts do.\n"
        );
    }
    let mut win = Chart::new(
        "Rotation, unstable vs stable windows (crossing runs)",
        "learning rate",
        "mean 1 - |cos|",
    )
    .log_x()
    .log_y();
    md.push_str("Over the crossing runs that did not diverge (`crossing runs used`: of the crossing runs at that lr). T(v,v,v) is measured in the MSE (tanh) runs only: it is a central difference of Hessian-vector products, and ReLU's kinks fall inside its step.\n\n");
    md.push_str("| setting | lr | crossing runs used | rotation, unstable windows | rotation, stable windows | measurements unstable / stable |\n|---|---|---|---|---|---|\n");
    for (i, (name, runs)) in [("MSE", mse), ("CE", ce)].iter().enumerate() {
        let (mut u, mut s) = (Vec::new(), Vec::new());
        for (lr, g) in group_lr(runs) {
            let (crossing, st) = crossing_used(&g);
            if st.is_empty() {
                continue;
            }
            let uu: Vec<f64> = st.iter().filter_map(|s| s.rot_unstable).collect();
            let ss: Vec<f64> = st.iter().filter_map(|s| s.rot_stable).collect();
            if let Some(m) = mean(&uu) {
                u.push((lr, m));
            }
            if let Some(m) = mean(&ss) {
                s.push((lr, m));
            }
            let nu: usize = st.iter().map(|s| s.rot_n.0).sum();
            let ns: usize = st.iter().map(|s| s.rot_n.1).sum();
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {nu} / {ns} |",
                fmt_lr(lr),
                used_text(&crossing, false),
                ms(&uu, 4),
                ms(&ss, 4)
            );
        }
        win.add_series(
            Series::line_points(format!("{name} unstable"), u).with_color(palette_color(2 * i)),
        );
        win.add_series(
            Series::line_points(format!("{name} stable"), s)
                .with_color(palette_color(2 * i))
                .with_dashed(true),
        );
    }
    md.push('\n');
    img(
        &mut md,
        "rotation in unstable vs stable windows",
        &p.put("rotation_windows.svg", &win)?,
    );

    // 4: higher-order curvature.
    md.push_str("## Experiment 4: higher-order curvature around instabilities\n\n");
    for (tag, name, runs) in [
        ("mse", "tanh MLP / MSE / MNIST-1D", mse),
        ("ce", "ReLU MLP / CE / MNIST subset", ce),
    ] {
        // The first-seed crossing run with the most ended episodes (ties: the smaller lr).
        let pick = first_seed(runs)
            .into_iter()
            .filter(|r| !r.diverged)
            .map(|r| (run_stats(r), r))
            .filter(|(s, _)| s.crossed)
            .max_by(|(a, ra), (b, rb)| {
                a.episodes_ended
                    .cmp(&b.episodes_ended)
                    .then(rb.lr.total_cmp(&ra.lr))
            });
        let Some((_, r)) = pick else { continue };
        let lr = r.lr as f64;
        let mut l = Chart::new(format!("Loss, lr {}", fmt_lr(lr)), "step", "loss").log_y();
        l.add_series(Series::line("loss", pts(&r.rows, |x| Some(x.loss))));
        let mut s = Chart::new("Sharpness (dashed: 2/lr)", "step", "lambda_max");
        s.add_series(Series::line_points(
            "sharpness",
            pts(&r.rows, |x| x.sharpness),
        ));
        s.add_ref_line(RefLine::at_y(2.0 / lr, "2/lr"));
        let mut m = Chart::new("|lambda_min|", "step", "|lambda_min|");
        m.add_series(
            Series::line_points("|lambda_min|", pts(&r.rows, |x| x.lambda_min.map(f32::abs)))
                .with_color(palette_color(2)),
        );
        let hocm = pts(&r.rows, |x| x.hocm.map(f32::abs));
        let mut charts = vec![l, s, m];
        // Not measured with ReLU (see the note under the table): no empty panel.
        if !hocm.is_empty() {
            let mut t = Chart::new("|T(v,v,v)| along the top eigenvector", "step", "|T(v,v,v)|");
            t.add_series(Series::line_points("|T(v,v,v)|", hocm).with_color(palette_color(3)));
            charts.push(t);
        }
        let charts: Vec<Chart> = charts.into_iter().map(|c| c.with_size(640, 360)).collect();
        let path = p.put_grid(&format!("hocm_{tag}.svg"), &charts, 2)?;
        let _ = writeln!(md, "{name}, run `{}`:\n", r.name);
        img(&mut md, &format!("higher-order curvature ({tag})"), &path);
    }
    md.push_str("Over the crossing runs that did not diverge (`crossing runs used`: of the crossing runs at that lr). T(v,v,v) is measured in the MSE (tanh) runs only: it is a central difference of Hessian-vector products, and ReLU's kinks fall inside its step.\n\n");
    md.push_str("| setting | lr | crossing runs used | mean abs(lambda_min), unstable / stable | mean abs(T(v,v,v)), unstable / stable | ended episodes | of which abs(lambda_min) fell |\n|---|---|---|---|---|---|---|\n");
    for (name, runs) in [("MSE", mse), ("CE", ce)] {
        for (lr, g) in group_lr(runs) {
            let (crossing, st) = crossing_used(&g);
            if st.is_empty() {
                continue;
            }
            let v = |f: &dyn Fn(&super::stats::RunStats) -> Option<f64>| {
                ms(&st.iter().filter_map(f).collect::<Vec<_>>(), 3)
            };
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} / {} | {} / {} | {} | {} |",
                fmt_lr(lr),
                used_text(&crossing, false),
                v(&|s| s.lmin_unstable),
                v(&|s| s.lmin_stable),
                v(&|s| s.hocm_unstable),
                v(&|s| s.hocm_stable),
                st.iter().map(|s| s.episodes_ended).sum::<usize>(),
                st.iter().map(|s| s.episodes_lmin_lower).sum::<usize>()
            );
        }
    }
    md.push('\n');

    // 5: generalization.
    md.push_str("## Experiment 5: generalization vs learning rate\n\n");
    let mut acc = Chart::new(
        "Final test accuracy vs learning rate (vertical: lr_c)",
        "learning rate",
        "test accuracy",
    )
    .log_x();
    for (i, (name, runs)) in [("CE / MNIST (paper setting)", ce), ("MSE / MNIST-1D", mse)]
        .iter()
        .enumerate()
    {
        if runs.is_empty() {
            continue;
        }
        add_vs_lr(&mut acc, name, palette_color(i), runs, &|r| {
            r.test_acc.filter(|_| !r.diverged).map(f64::from)
        });
        let lr_c = group_lr(runs)
            .into_iter()
            .find(|(_, g)| 2 * g.iter().filter(|r| run_stats(r).crossed).count() > g.len())
            .map(|x| x.0);
        if let Some(lc) = lr_c {
            acc.add_ref_line(
                RefLine::at_x(lc, format!("lr_c {}", fmt_lr(lc))).with_color(palette_color(i)),
            );
        }
    }
    img(
        &mut md,
        "test accuracy vs lr",
        &p.put("test_acc_vs_lr.svg", &acc)?,
    );
    md.push_str("Accuracies are after the same number of steps for every learning rate (the paper's fixed epoch budget), over the runs that did not diverge; the tables above give the training accuracy reached.\n\n");

    // 6: SGD.
    if let (Some(e), false) = (exp(Kind::CeSgd), sgd.is_empty()) {
        md.push_str("## Experiment 6: SGD with the learning rate scaled with the batch size\n\n");
        let _ = writeln!(md, "{}.\n", e.grid_text);
        let mut c = Chart::new(
            "SGD: final sharpness vs lr (dashed: 2/lr)",
            "learning rate (= lr_full * B / N)",
            "final sharpness",
        )
        .log_x()
        .log_y();
        add_vs_lr(&mut c, "SGD", palette_color(0), sgd, &|r| {
            if r.diverged {
                None
            } else {
                run_stats(r).final_s
            }
        });
        let lrs: Vec<f64> = group_lr(sgd).iter().map(|x| x.0).collect();
        c.add_series(
            Series::line("2/lr", lrs.iter().map(|lr| (*lr, 2.0 / lr)).collect())
                .with_dashed(true)
                .with_color("#888888"),
        );
        img(
            &mut md,
            "SGD final sharpness",
            &p.put("sgd_final_sharpness.svg", &c)?,
        );
        let mut s = Chart::new(
            "Sharpness vs epoch per batch size (first seed; dashed: 2/lr)",
            "epoch",
            "sharpness",
        )
        .log_y();
        for (i, r) in first_seed(sgd).iter().rev().enumerate() {
            let k = r.batch.map_or(1.0, |b| b as f64) / r.n_train.max(1) as f64;
            let k = if r.is_minibatch() { k } else { 1.0 };
            let col = palette_color(i);
            s.add_series(
                Series::line_points(
                    format!("B={}", r.batch_label()),
                    r.rows
                        .iter()
                        .filter_map(|x| x.sharpness.map(|v| (x.step as f64 * k, v as f64)))
                        .collect(),
                )
                .with_color(col),
            );
            s.add_ref_line(RefLine::at_y(2.0 / r.lr as f64, "").with_color(col));
        }
        img(
            &mut md,
            "SGD sharpness vs epoch",
            &p.put("sgd_sharpness.svg", &s)?,
        );
        md.push_str("Means ± sd over the seeds that did not diverge. Claim 6's trend is over the minibatch rows (B < N) alone; the full-batch row is for reference.\n\n");
        md.push_str("| B | lr | seeds | crossed | diverged | final sharpness | lr x final sharpness | max lr x sharpness | test acc | train acc |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for (lr, g) in group_lr(sgd).into_iter().rev() {
            let st: Vec<_> = g.iter().map(|r| (*r, run_stats(r))).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {}/{} | {}/{} | {} | {} | {} | {} | {} |",
                g[0].batch_label(),
                fmt_lr(lr),
                g.len(),
                st.iter().filter(|(_, s)| s.crossed).count(),
                g.len(),
                g.iter().filter(|r| r.diverged).count(),
                g.len(),
                ms(&undiverged(&st, |_, s| s.final_s), 2),
                ms(&undiverged(&st, |_, s| s.final_lxs), 2),
                ms(&undiverged(&st, |_, s| s.max_lxs), 2),
                ms(&undiverged(&st, |r, _| r.test_acc.map(f64::from)), 3),
                ms(&undiverged(&st, |r, _| r.train_acc.map(f64::from)), 3),
            );
        }
        md.push('\n');
        dashboards(&mut md, e.dir, sgd);
    }

    // 7: adaptive.
    if let (Some(e), false) = (exp(Kind::CeAdaptive), ada.is_empty()) {
        md.push_str("## Experiment 7: Adam, clipped Adam and RMSProp\n\n");
        let _ = writeln!(md, "{}.\n", e.grid_text);
        let label = |r: &RunRecord| match r.clip {
            Some(c) => format!("{} c={c}", r.opt),
            None => r.opt.clone(),
        };
        let mut fs: Vec<&RunRecord> = first_seed(ada);
        fs.sort_by_key(|r| label(r));
        let mut pre = Chart::new(
            "Preconditioned sharpness / threshold (first seed)",
            "step",
            "lr x lambda_max(P^-1 H) / threshold",
        )
        .log_y();
        let mut sh = Chart::new("Sharpness (first seed)", "step", "lambda_max(H)").log_y();
        let mut ta = Chart::new("Test accuracy (first seed)", "step", "test accuracy");
        for (i, r) in fs.iter().enumerate() {
            let col = palette_color(i);
            let thr = r.threshold;
            pre.add_series(
                Series::line_points(
                    label(r),
                    pts(&r.rows, |x| x.precond_sharpness.map(|v| v / thr)),
                )
                .with_color(col),
            );
            sh.add_series(
                Series::line_points(label(r), pts(&r.rows, |x| x.sharpness)).with_color(col),
            );
            ta.add_series(Series::line(label(r), pts(&r.rows, |x| x.test_acc)).with_color(col));
        }
        pre.add_ref_line(RefLine::at_y(1.0, "threshold"));
        img(
            &mut md,
            "preconditioned sharpness",
            &p.put("adaptive_precond_sharpness.svg", &pre)?,
        );
        img(
            &mut md,
            "adaptive loss",
            &p.put(
                "adaptive_loss.svg",
                &loss_chart(
                    "Training loss (first seed)",
                    &fs,
                    |r| label(r),
                    |_| 1.0,
                    "step",
                ),
            )?,
        );
        img(
            &mut md,
            "adaptive sharpness",
            &p.put("adaptive_sharpness.svg", &sh)?,
        );
        img(
            &mut md,
            "adaptive test accuracy",
            &p.put("adaptive_test_acc.svg", &ta)?,
        );
        let mut groups: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
        for r in ada {
            groups.entry(label(r)).or_default().push(r);
        }
        let mut thresholds: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for g in groups.values() {
            let opt = g[0].opt.clone();
            let t = thresholds
                .entry(fmt_lr(f64::from(g[0].threshold)))
                .or_default();
            if !t.contains(&opt) {
                t.push(opt);
            }
        }
        let _ = writeln!(
            md,
            "The preconditioned sharpness is lambda_max of the Hessian scaled by the optimizer's per-coordinate step sizes, \
             lr x lambda_max(P^-1 H) (P = sqrt(v) + eps, or its clipped bound; metrics column `precond_sharpness`, which includes lr). \
             It is compared with the optimizer's stability threshold: {} (Adam's (2 + 2 beta1) / (1 - beta1) with beta1 0.9 is 38, \
             RMSProp's is 2, as for GD). The ratio is computed per run and averaged; means ± sd are over the seeds that did not diverge.\n",
            thresholds
                .iter()
                .map(|(t, opts)| format!("{t} for {}", opts.join(" and ")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        md.push_str("| optimizer | seeds | diverged | loss spikes | final sharpness | threshold | final preconditioned sharpness / threshold | test acc | train acc |\n|---|---|---|---|---|---|---|---|---|\n");
        for (name, g) in &groups {
            let st: Vec<_> = g.iter().map(|r| (*r, run_stats(r))).collect();
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                g.len(),
                g.iter().filter(|r| r.diverged).count(),
                ms(&undiverged(&st, |_, s| Some(s.spikes as f64)), 1),
                ms(&undiverged(&st, |_, s| s.final_s), 2),
                fmt_lr(f64::from(g[0].threshold)),
                ms(
                    &undiverged(&st, |r, s| s.final_precond.map(|p| p / r.threshold as f64)),
                    2
                ),
                ms(&undiverged(&st, |r, _| r.test_acc.map(f64::from)), 3),
                ms(&undiverged(&st, |r, _| r.train_acc.map(f64::from)), 3),
            );
        }
        md.push('\n');
        dashboards(&mut md, e.dir, ada);
    }

    // 8: diagonal network.
    md.push_str("## Experiment 8: the diagonal linear network\n\n");
    md.push_str(
        "Full-batch GD on L = (theta_1 theta_2 - 1)^2 / 2 with core's `DiagLinearNet` (f32, exact 2x2 Hessian in closed form). \
         Each start is off the valley at an unbalanced point; gradient flow would reach the valley point whose sharpness is \
         lambda_ref = sqrt(c0^2 + 4), c0 = theta_1^2 - theta_2^2, so lr = m * 2 / lambda_ref is stable there for m < 1. The \
         trajectories are in `diag/<run>/trajectory.csv`.\n\n",
    );
    for path in diag_plots(&mut p, inp.diag)? {
        img(&mut md, "diagonal network", &path);
    }
    md.push_str("| start | m | lr | lambda_ref | initial lambda_max | final lambda_max | 2/lr | abs(c0) | abs(c_final) | final top eigenvector vs gradient-flow minimum's (deg) | loss spikes | outcome |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in inp.diag {
        let _ = writeln!(
            md,
            "| ({}, {}) | {} | {} | {:.3} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} |",
            r.start[0],
            r.start[1],
            r.multiple,
            fmt_lr(r.lr as f64),
            r.lambda_ref,
            o(r.points.first().map(|q| f64::from(q.lambda_max)), 3),
            r.final_lambda,
            2.0 / r.lr as f64,
            r.c0.abs(),
            r.c_final.abs(),
            r.angle_from_flow_deg,
            r.spikes,
            if r.diverged {
                "diverged"
            } else if r.converged {
                "converged"
            } else {
                "not converged"
            }
        );
    }
    md.push('\n');

    // HVPs.
    md.push_str("## Hessian-vector products per sharpness measurement\n\n");
    let mut hv = Vec::new();
    for (i, e) in plan.experiments.iter().enumerate() {
        if let Some(r) = inp.records.get(i) {
            hv.push(hvp_stats(e.dir, &e.base.curvature.eig_method, r));
        }
    }
    md.push_str("| experiment | method | steps between measurements | sharpness measurements | mean HVPs per sharpness measurement | median | max | share <= 4 | mean HVPs per measurement, all quantities |\n|---|---|---|---|---|---|---|---|---|\n");
    for (h, e) in hv.iter().zip(&plan.experiments) {
        let mut every: Vec<u64> = e
            .runs
            .iter()
            .map(|r| r.config.curvature.eig_every)
            .collect();
        every.sort_unstable();
        every.dedup();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            h.experiment,
            h.method,
            every
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            h.measurements,
            o(h.mean, 2),
            o(h.median, 1),
            o(h.max, 0),
            h.share_le_4
                .map_or("n/a".into(), |s| format!("{:.0}%", s * 100.0)),
            o(h.mean_total, 2)
        );
    }
    let warm: Vec<f64> = plan
        .experiments
        .iter()
        .zip(inp.records)
        .filter(|(e, _)| e.base.curvature.eig_method != "lanczos")
        .flat_map(|(_, rs)| {
            rs.iter().flat_map(|r| {
                r.rows
                    .iter()
                    .filter(|x| x.sharpness.is_some())
                    .filter_map(|x| x.sharpness_hvps.map(f64::from))
            })
        })
        .collect();
    let d = crate::config::CurvatureConfig::default();
    let _ = writeln!(
        md,
        "\nWarm-started tracking (tolerance {:e} relative residual, cap {} products for `warm-lanczos`, {} for `power`) needed {} HVPs per \
         sharpness measurement on average over all warm-started measurements of this reproduction ({} measurements). The warm start is \
         predicted from the eigenvectors of the previous measurements, the number of steps in the settings above earlier (the first \
         measurement of a run starts cold). Lanczos runs the fixed number of steps in the table's HVP column from a random start and \
         gives both ends of the spectrum. Issue 6 \
         targets <= 4 at this tolerance; BENCHMARKS.md measures the count per regime when the sharpness is tracked at every step.\n",
        d.power_tol,
        d.lanczos_max_steps,
        d.power_max_iter,
        o(mean(&warm), 2),
        warm.len()
    );

    // Per-step tracking in the GD runs.
    let mut tracked = Vec::new();
    for (e, r) in plan.experiments.iter().zip(inp.records) {
        tracked.extend(tracked_stats(e.dir, r));
    }
    if !tracked.is_empty() {
        md.push_str(
            "### Sharpness tracked at every step in the GD runs\n\n\
             The full-batch GD experiments also track the sharpness alone at every step (`track_every = 1`, columns \
             `tracked_*` of `metrics.csv`), by warm-started Lanczos from the eigenvector predicted from the previous \
             measurements (`edgewise_core::predict_start`: the linear extrapolation of the last two, or, when GD oscillates \
             with period two across the sharpest direction, the vector two steps back or its extrapolation within the \
             orbit, whichever predicted the latest measurements best), stopped at the same tolerance. `lr x S` is the \
             largest and the late mean (second half of the steps) of lr x tracked sharpness over the seeds that did not \
             diverge (a diverged run's last measurements are meaningless); above 2 the run is at or beyond the edge of stability. \
             The HVP counts are over every measurement, of diverged runs too (they were paid). \
             A converged warm start puts *an* eigenvalue within its residual, not necessarily the top one (when the top \
             two cross, a warm start can follow the one falling behind): the last column compares the tracked sharpness \
             with the fresh Lanczos spectrum's top value (random start) at the steps where both were measured, in the \
             runs that did not diverge: rows compared, the largest relative difference, and how many exceed 1e-3.\n\n\
             | experiment | lr | runs | diverged | measurements | mean HVPs per measurement | median | max / late mean lr x S | tracked vs fresh: rows / max rel. diff / > 1e-3 |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for t in &tracked {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} / {} |",
                t.experiment,
                fmt_lr(f64::from(t.lr)),
                t.runs,
                t.diverged_runs,
                t.measurements,
                o(t.mean, 2),
                o(t.median, 1),
                o(t.max_lr_x_sharpness, 2),
                o(t.late_lr_x_sharpness, 2),
                t.compared,
                t.max_rel_diff
                    .map_or("n/a".to_string(), |d| format!("{d:.1e}")),
                t.disagree
            );
        }
        // Pooled over learning rates: each one's mean weighted by its measurements.
        let pooled = |keep: &dyn Fn(&TrackedStats) -> bool| {
            let (n, sum) = tracked
                .iter()
                .filter(|t| keep(t))
                .fold((0, 0.0), |(n, s), t| {
                    (
                        n + t.measurements,
                        s + t.mean.unwrap_or(0.0) * t.measurements as f64,
                    )
                });
            (n, (n > 0).then(|| sum / n as f64))
        };
        let (n_all, mean_all) = pooled(&|_| true);
        let (n_stable, mean_stable) = pooled(&|t| t.late_lr_x_sharpness.is_some_and(|x| x <= 2.0));
        let _ = writeln!(
            md,
            "\nOver all {} per-step measurements of the GD runs: {} HVPs per measurement on average ({} over the {} \
             measurements of learning rates whose late mean lr x S is at most 2). Issue 6 targets <= 4.\n",
            n_all,
            o(mean_all, 2),
            o(mean_stable, 2),
            n_stable
        );
    }

    md.push_str("## Notes\n\n");
    md.push_str(
        "- The sharpness, lambda_min, rotation and T(v,v,v) are measured on a fixed, seeded subset of the training set (the \
         Hessian subset), as in the authors' code; lr x sharpness can exceed 2 on it while the full-data value does not. The \
         tables of experiments 1-2 give lr x sharpness at the final parameters on the whole training split next to the \
         subset's (`edgewise spectrum RUN/checkpoints/final.safetensors --hessian-subset N`, N the training split's size, \
         measures any run so): where they differ, a run counted as crossing the threshold on the subset may not have crossed \
         it on the full data.\n\
         - Rotation is measured between consecutive measurements, a fixed number of steps apart; a larger learning rate moves \
         the parameters further in that many steps, which by itself rotates the eigenvectors more: claim 2's trend over \
         learning rates cannot separate the two; its within-run comparison of unstable and stable windows can.\n\
         - The flatness bias (claim 3) is judged by the final sharpness falling with the learning rate; at the edge of stability \
         the sharpness hovers near 2/lr, so this follows from the edge of stability itself. Whether larger learning rates end \
         flatter than their own threshold requires shows in lr x final sharpness (claim 3's evidence gives its median against \
         2).\n\
         - SGD (claim 6) keeps lr / B fixed, so the minibatch noise scale is the same for every batch size: the experiment tests \
         whether the flattening persists with minibatches, not whether it outweighs more noise. The paper's setting is lr_full \
         0.1, 400 epochs and batch sizes down to 1; see the experiment table for this scale's.\n\
         - Adam (claim 7) runs at lr 0.001 (the paper: 0.005 on CIFAR-10 subsets) and stays below its stability threshold 38 \
         (its final preconditioned sharpness / 38 in the evidence): part (a) tests whether clipping creates instabilities Adam \
         does not have, not whether Adam suppressed ones it would otherwise have had.\n\
         - Test accuracies compare learning rates at a fixed number of steps: small learning rates may not have converged \
         (see the training accuracies).\n\
         - MNIST replaces Fashion-MNIST; the results are for these data and networks, not a claim about the paper's.\n",
    );
    if plan.scale != super::plan::Scale::Full {
        md.push_str("- This is the quick scale: fewer seeds, learning rates and steps than `--full`; more verdicts may be inconclusive.\n");
    }
    crate::fsio::atomic_write(&out.join("report.md"), md.as_bytes()).map_err(io)?;

    #[derive(Serialize)]
    struct ClaimsJson<'a> {
        scale: &'a str,
        claims: &'a [ClaimResult],
        hvp: &'a [HvpStats],
        tracked: &'a [TrackedStats],
        plots: &'a [String],
    }
    let j = ClaimsJson {
        scale: plan.scale.name(),
        claims: inp.claims,
        hvp: &hv,
        tracked: &tracked,
        plots: &p.written,
    };
    let text = serde_json::to_string_pretty(&j).map_err(|e| Failure::internal(e.to_string()))?;
    crate::fsio::atomic_write(&out.join("claims.json"), text.as_bytes()).map_err(io)?;
    Ok(())
}

/// The claim rows, from the records and the diagonal runs.
pub fn assess(plan: &Plan, records: &[Vec<RunRecord>], diag: &[DiagRun]) -> Vec<ClaimResult> {
    use super::verdict::{claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8};
    let find = |k: Kind| plan.experiments.iter().position(|e| e.kind == k);
    let empty: Vec<RunRecord> = Vec::new();
    let recs = |k: Kind| find(k).and_then(|i| records.get(i)).unwrap_or(&empty);
    let (mse, ce, sgd, ada) = (
        recs(Kind::MseLr),
        recs(Kind::CeLr),
        recs(Kind::CeSgd),
        recs(Kind::CeAdaptive),
    );
    type F = fn(&[RunRecord]) -> Assessment;
    let mk = |i: usize, exp: &str, a: Assessment, sec: Option<(String, Assessment)>| ClaimResult {
        id: i,
        name: CLAIMS[i - 1].0.to_string(),
        claim: CLAIMS[i - 1].1.to_string(),
        experiment: exp.to_string(),
        criterion: criterion(i),
        primary: a,
        secondary: sec,
    };
    let pair = |i: usize, f: F, prim: (&str, &[RunRecord]), sec: (&str, &[RunRecord])| {
        let s = (!sec.1.is_empty()).then(|| (sec.0.to_string(), f(sec.1)));
        mk(i, prim.0, f(prim.1), s)
    };
    vec![
        pair(1, claim1, ("mse-lr", mse), ("ce-lr", ce)),
        pair(2, claim2, ("mse-lr", mse), ("ce-lr", ce)),
        pair(3, claim3, ("mse-lr", mse), ("ce-lr", ce)),
        pair(4, claim4, ("mse-lr", mse), ("ce-lr", ce)),
        pair(5, claim5, ("ce-lr", ce), ("mse-lr", mse)),
        mk(6, "ce-sgd", claim6(sgd), None),
        mk(7, "ce-adaptive", claim7(ada), None),
        mk(8, "diag", claim8(diag), None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lr: f32, diverged: bool, tracked: &[f32]) -> RunRecord {
        RunRecord {
            lr,
            diverged,
            threshold: 2.0,
            rows: tracked
                .iter()
                .enumerate()
                .map(|(i, &s)| Row {
                    step: i as u64,
                    lr,
                    loss: 1.0,
                    tracked_sharpness: Some(s),
                    tracked_hvps: Some(3),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tracked_lr_x_sharpness_leaves_diverged_runs_out() {
        let runs = [
            run(0.5, false, &[2.0, 4.0, 5.0, 4.0]),
            run(0.5, true, &[4.0, 1e9, 1e12]),
            run(0.25, true, &[4.0, 1e9]),
        ];
        let t = tracked_stats("x", &runs);
        assert_eq!(t.len(), 2);
        // Sorted by lr; the lr whose every run diverged has no lr x S.
        assert_eq!(t[0].lr, 0.25);
        assert_eq!(t[0].diverged_runs, 1);
        assert_eq!(t[0].max_lr_x_sharpness, None);
        assert_eq!(t[0].late_lr_x_sharpness, None);
        assert_eq!(t[1].runs, 2);
        assert_eq!(t[1].diverged_runs, 1);
        // lr x S of the surviving run: 1, 2, 2.5, 2; late half: rows 2 and 3.
        assert_eq!(t[1].max_lr_x_sharpness, Some(2.5));
        assert_eq!(t[1].late_lr_x_sharpness, Some(2.25));
        // The HVPs of every measurement count, the diverged run's too.
        assert_eq!(t[1].measurements, 7);
    }

    #[test]
    fn tracked_sharpness_is_compared_with_the_fresh_spectra() {
        let mut ok = run(0.5, false, &[2.0, 4.0, 5.0, 4.0]);
        ok.rows[1].sharpness = Some(4.0001); // 2.5e-5 apart
        ok.rows[3].sharpness = Some(4.1); // the tracker on the second eigenvalue: 2.4e-2
        let mut gone = run(0.5, true, &[4.0, 1e9]);
        gone.rows[1].sharpness = Some(1.0); // a diverged run's rows are not compared
        let t = tracked_stats("x", &[ok, gone]);
        assert_eq!(t[0].compared, 2);
        assert_eq!(t[0].disagree, 1);
        let d = t[0].max_rel_diff.unwrap();
        assert!((d - 0.1 / 4.1).abs() < 1e-6, "{d}");
        // Nothing to compare: no fresh spectrum.
        let t = tracked_stats("x", &[run(0.5, false, &[2.0])]);
        assert_eq!(
            (t[0].compared, t[0].max_rel_diff, t[0].disagree),
            (0, None, 0)
        );
    }

    #[test]
    fn lr_x_sharpness_spanning_decades_is_on_a_log_axis() {
        let mut runs = vec![
            run(0.1, false, &[0.1, 0.2, 0.5, 2.0]),
            run(1.6, false, &[1.0, 30.0, 0.1, 0.1]),
        ];
        assert!(lxs_chart("t", &runs).y_log, "0.01 to 48");
        runs.pop();
        assert!(!lxs_chart("t", &runs).y_log, "0.01 to 0.2");
    }

    #[test]
    fn lr_table_states_its_runs_and_leaves_diverged_ones_out() {
        let mut runs = vec![run(0.5, false, &[2.0, 4.0]), run(0.5, true, &[4.0, 1e9])];
        for (i, r) in runs.iter_mut().enumerate() {
            r.seed = i as u64;
            r.classes = 10;
            r.train_acc = Some(if r.diverged { 0.1 } else { 0.9 });
            r.test_acc = r.train_acc;
            r.rows[0].sharpness = Some(3.0);
            r.rows[1].sharpness = Some(if r.diverged { 1e9 } else { 5.0 });
            r.full_sharpness = Some(if r.diverged { 1e9 } else { 4.5 });
        }
        let mut md = String::new();
        lr_table(&mut md, &runs);
        let row = md.lines().find(|l| l.starts_with("| 0.5 |")).unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // lr, seeds, crossed, diverged, collapsed, used, initial, final, lr x final,
        // lr x S whole split, spikes, rotation, test acc, ...
        assert_eq!(&cells[1..7], ["0.5", "2", "2/2", "1/2", "0/2", "1"]);
        assert_eq!(cells[7], "3.00 ± 0.00", "initial sharpness over all seeds");
        assert_eq!(cells[8], "5.00", "final sharpness without the diverged run");
        assert_eq!(
            cells[10], "2.25",
            "lr x whole-split sharpness without the diverged run"
        );
        assert_eq!(cells[13], "0.900");
        assert!(md.contains("over the seeds that did not diverge"));
    }
}
