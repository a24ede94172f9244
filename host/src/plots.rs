//! The plots of a run (SVG, in `plots/`): loss, sharpness against the stability threshold
//! `2/lr` (the eigen measurements as points, the `track_every` tracker as a line), lambda_min,
//! eigenvector rotation, the Hessian trace, accuracy, and a dashboard with all of them.

use std::path::Path;

use crate::fsio::{atomic_write, IoError};
use crate::metrics::Row;
use crate::plot::{
    fmt_sig, palette_color, render_grid_svg, render_svg, Chart, RefLine, Series, Style,
};

fn pts(rows: &[Row], f: impl Fn(&Row) -> Option<f32>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| f(r).map(|v| (r.step as f64, v as f64)))
        .collect()
}

/// The colour of the rings that mark measurements which missed their tolerance.
const UNCONVERGED_COLOR: &str = "#000000";

/// The points of the rows whose measurement `name` (one of [`crate::metrics::UNCONVERGED`])
/// missed its tolerance (`metrics.csv`'s `unconverged` column), at `value`.
fn unconverged_points(
    rows: &[Row],
    name: &str,
    value: &dyn Fn(&Row) -> Option<f32>,
) -> Vec<(f64, f64)> {
    let bit = crate::metrics::unconverged_bit(name);
    rows.iter()
        .filter(|r| r.unconverged & bit != 0)
        .filter_map(|r| value(r).map(|v| (r.step as f64, v as f64)))
        .collect()
}

/// Rings over `c`'s series at the measurements that missed their tolerance, for each
/// `(name, value)` (see [`unconverged_points`]): they say which points are estimates.
type RingSource<'a> = (&'a str, &'a dyn Fn(&Row) -> Option<f32>);
fn add_rings(c: &mut Chart, rows: &[Row], which: &[RingSource<'_>]) {
    let points: Vec<(f64, f64)> = which
        .iter()
        .flat_map(|(name, value)| unconverged_points(rows, name, *value))
        .collect();
    if !points.is_empty() {
        c.add_series(
            Series::new("unconverged (estimate)", points, Style::Hollow)
                .with_color(UNCONVERGED_COLOR),
        );
    }
}

/// Whether `points` span more than a factor of [`LOG_SPAN`], drawn on a log axis, as the
/// repro's sharpness charts are (a spike to 36 over a plateau at 0.1, or a diverging run's
/// 1e13, would flatten everything else on a linear one): their positive values do, and at most
/// a fifth of them are not positive (those are drawn at the log axis's floor, and counted).
pub(crate) fn wide(points: &[&[(f64, f64)]]) -> bool {
    let ys: Vec<f64> = points
        .iter()
        .flat_map(|p| p.iter().map(|q| q.1))
        .filter(|y| y.is_finite())
        .collect();
    let pos = ys.iter().filter(|&&y| y > 0.0);
    let lo = pos.clone().fold(f64::INFINITY, |a, &y| a.min(y));
    let hi = pos.clone().fold(0.0f64, |a, &y| a.max(y));
    let non_positive = ys.len() - pos.count();
    lo.is_finite() && hi / lo > LOG_SPAN && non_positive * 5 <= ys.len()
}

/// A chart over steps of a quantity measured every few steps (`measured`) and by the tracker
/// (`tracked`, typically every step; its series is named `NAME (tracked)`): log y when they
/// span decades ([`wide`]); over a tracked curve the coarser measurements are points, so that
/// a line through them does not mask the tracked curve's oscillation.
fn measured_chart(
    title: &str,
    y_label: &str,
    name: &str,
    measured: Vec<(f64, f64)>,
    tracked: Vec<(f64, f64)>,
) -> Chart {
    let mut c = Chart::new(title, "step", y_label);
    if wide(&[&measured, &tracked]) {
        c = c.log_y();
    }
    let style = if tracked.is_empty() {
        Style::LinePoints
    } else {
        c.add_series(Series::line(format!("{name} (tracked)"), tracked));
        Style::Points
    };
    if !measured.is_empty() {
        c.add_series(Series::new(name, measured, style));
    }
    c
}

/// The ratio of the largest to the smallest (positive) value above which a run's sharpness and
/// lr x sharpness charts have a log y axis.
pub const LOG_SPAN: f64 = 30.0;

/// The step of a diverged run: its last row, whose loss or gradient is not finite.
fn diverged_at(rows: &[Row]) -> Option<u64> {
    rows.last()
        .filter(|r| !(r.loss.is_finite() && r.grad_norm.is_finite()))
        .map(|r| r.step)
}

/// The charts of a run. `threshold` is the optimizer's stability threshold of `lr * lambda`
/// (2 for GD); for an `adaptive` optimizer (RMSProp, Adam) it applies to the preconditioned
/// sharpness alone, so the sharpness charts draw no threshold (and their titles name none).
/// A diverged run's charts mark the step where it diverged.
pub fn run_charts(rows: &[Row], threshold: f32, adaptive: bool) -> Vec<(&'static str, Chart)> {
    let mut charts: Vec<(&'static str, Chart)> = Vec::new();
    // The threshold as computed in f32 (e.g. 37.999992 for Adam's 38), rounded for labels.
    let th = fmt_sig(threshold as f64);
    let batches = rows.iter().any(|r| r.full_train_loss.is_some());
    let mut loss = Chart::new("Loss", "step", "loss").log_y();
    let batch = Series::line("train (batch)", pts(rows, |r| Some(r.loss)));
    // Minibatch losses are noisy: light, under the full-split and test curves.
    loss.add_series(if batches {
        batch.with_color(BATCH_COLOR)
    } else {
        batch
    });
    let full = pts(rows, |r| r.full_train_loss);
    if !full.is_empty() {
        loss.add_series(Series::line_points("train (full)", full));
    }
    loss.add_series(Series::line_points("test", pts(rows, |r| r.test_loss)));
    charts.push(("loss", loss));

    let sharp = pts(rows, |r| r.sharpness);
    // The sharpness-only tracker (`track_every`), typically at every step.
    let tracked = pts(rows, |r| r.tracked_sharpness);
    if !sharp.is_empty() || !tracked.is_empty() {
        let title = if adaptive {
            "Sharpness"
        } else {
            "Sharpness and the stability threshold"
        };
        let mut c = measured_chart(title, "lambda_max", "sharpness", sharp, tracked);
        add_rings(
            &mut c,
            rows,
            &[
                ("sharpness", &|r: &Row| r.sharpness),
                ("tracked_sharpness", &|r: &Row| r.tracked_sharpness),
            ],
        );
        let lrs: Vec<f32> = rows.iter().map(|r| r.lr).collect();
        let constant = lrs.windows(2).all(|w| w[0] == w[1]);
        if adaptive {
            c.add_note("the threshold applies to the preconditioned sharpness");
        } else if let (true, Some(&lr)) = (constant, lrs.first()) {
            c.add_ref_line(
                RefLine::at_y(
                    (threshold / lr) as f64,
                    format!("{th}/lr = {}", fmt_sig((threshold / lr) as f64)),
                )
                .with_color(palette_color(3)),
            );
        } else {
            c.add_series(
                Series::line(format!("{th}/lr"), pts(rows, |r| Some(threshold / r.lr)))
                    .with_dashed(true)
                    .with_color(palette_color(3))
                    .as_reference(),
            );
        }
        charts.push(("sharpness", c));
        let lxs = pts(rows, |r| r.lr_x_sharpness);
        let tracked = pts(rows, |r| r.tracked_sharpness.map(|s| r.lr * s));
        let title = if adaptive {
            "lr x sharpness"
        } else {
            "lr x sharpness (unstable above the threshold)"
        };
        let mut c = measured_chart(title, "lr * lambda_max", "lr x sharpness", lxs, tracked);
        add_rings(
            &mut c,
            rows,
            &[
                ("sharpness", &|r: &Row| r.lr_x_sharpness),
                ("tracked_sharpness", &|r: &Row| {
                    r.tracked_sharpness.map(|s| r.lr * s)
                }),
            ],
        );
        if !adaptive {
            c.add_ref_line(
                RefLine::at_y(threshold as f64, format!("threshold {th}"))
                    .with_color(palette_color(3)),
            );
        }
        charts.push(("lr_x_sharpness", c));
    }
    let pre = pts(rows, |r| r.precond_sharpness);
    if !pre.is_empty() {
        // README's `precond_sharpness`: the top eigenvalue of diag(s) H, s the step sizes.
        let mut c = Chart::new(
            "Preconditioned sharpness (unstable above the threshold)",
            "step",
            "lambda_max(diag(s) H)",
        );
        c.add_series(Series::line_points("preconditioned sharpness", pre));
        add_rings(
            &mut c,
            rows,
            &[("precond_sharpness", &|r: &Row| r.precond_sharpness)],
        );
        c.add_ref_line(
            RefLine::at_y(threshold as f64, format!("threshold {th}")).with_color(palette_color(3)),
        );
        c.add_note("s: the step sizes lr / (sqrt(v_hat) + eps)");
        charts.push(("precond_sharpness", c));
    }
    let lmin = pts(rows, |r| r.lambda_min);
    if !lmin.is_empty() {
        let mut c = Chart::new("Smallest Hessian eigenvalue", "step", "lambda_min");
        c.add_series(Series::line_points("lambda_min", lmin));
        add_rings(&mut c, rows, &[("lambda_min", &|r: &Row| r.lambda_min)]);
        c.add_ref_line(RefLine::at_y(0.0, "0"));
        charts.push(("lambda_min", c));
    }
    let rot = pts(rows, |r| r.rotation);
    if !rot.is_empty() {
        let mut c = Chart::new(
            "Top eigenvector rotation between measurements",
            "step",
            "1 - |cos|",
        );
        c.add_series(Series::line_points("rotation", rot));
        let sub = pts(rows, |r| r.subspace_score.map(|s| 1.0 - s));
        if !sub.is_empty() {
            c.add_series(Series::line_points("1 - subspace score", sub));
            add_rings(
                &mut c,
                rows,
                &[("topk", &|r: &Row| r.subspace_score.map(|s| 1.0 - s))],
            );
        }
        charts.push(("rotation", c));
    }
    let hocm = pts(rows, |r| r.hocm);
    if !hocm.is_empty() {
        let mut c = Chart::new(
            "Third derivative along the top eigenvector",
            "step",
            "|T(v,v,v)|",
        );
        c.add_series(Series::line_points("|T(v,v,v)|", hocm));
        charts.push(("hocm", c));
    }
    let trace = pts(rows, |r| r.trace);
    if !trace.is_empty() {
        let mut c = Chart::new("Hessian trace (estimate)", "step", "trace");
        c.add_series(Series::line_points("trace", trace));
        charts.push(("trace", c));
    }
    // Ticks at 0..1, with room for values of exactly 0 or 1 off the frame.
    let mut acc = Chart::new("Accuracy", "step", "accuracy").with_y_range(-0.02, 1.02);
    let batch = Series::line("train (batch)", pts(rows, |r| Some(r.train_acc)));
    acc.add_series(if batches {
        batch.with_color(BATCH_COLOR)
    } else {
        batch
    });
    let full = pts(rows, |r| r.full_train_acc);
    if !full.is_empty() {
        acc.add_series(Series::line_points("train (full)", full));
    }
    acc.add_series(Series::line_points("test", pts(rows, |r| r.test_acc)));
    charts.push(("accuracy", acc));
    let div = diverged_at(rows);
    for (_, c) in &mut charts {
        c.x_integer = true;
        if let Some(step) = div {
            c.add_ref_line(
                RefLine::at_x(step as f64, format!("diverged at step {step}"))
                    .with_color(DIVERGED_COLOR),
            );
        }
    }
    charts
}

/// The minibatch losses' and accuracies' colour: a light blue, under the other curves.
const BATCH_COLOR: &str = "#9DC3E6";
/// The colour of the line marking where a run diverged.
const DIVERGED_COLOR: &str = "#C00000";

/// The files [`write_run_plots`] may write into a run's `plots/` (without `.svg`): one per
/// chart of [`run_charts`] and the dashboard.
pub const RUN_PLOTS: [&str; 10] = [
    "loss",
    "sharpness",
    "lr_x_sharpness",
    "precond_sharpness",
    "lambda_min",
    "rotation",
    "hocm",
    "trace",
    "accuracy",
    "dashboard",
];

/// Removes the plots [`write_run_plots`] wrote into `dir/plots/` (those of [`RUN_PLOTS`]; other
/// files stay): `train --resume` does so before it continues a run, whose plots it writes
/// again when it finishes, so that an extension interrupted in its turn leaves no plots of
/// the shorter run next to the longer run's metrics.
pub fn remove_run_plots(dir: &Path) -> Result<(), IoError> {
    let pd = dir.join("plots");
    for name in RUN_PLOTS {
        crate::fsio::remove_if_present(&pd.join(format!("{name}.svg")))?;
    }
    Ok(())
}

/// Writes the run's plots into `dir/plots/` (one SVG per chart, plus `dashboard.svg`).
pub fn write_run_plots(
    dir: &Path,
    rows: &[Row],
    threshold: f32,
    adaptive: bool,
) -> Result<(), IoError> {
    let pd = dir.join("plots");
    std::fs::create_dir_all(&pd).map_err(|e| IoError::new(&pd, "create", e))?;
    let charts = run_charts(rows, threshold, adaptive);
    for (name, c) in &charts {
        atomic_write(&pd.join(format!("{name}.svg")), render_svg(c).as_bytes())?;
    }
    let all: Vec<Chart> = charts
        .into_iter()
        .map(|(_, c)| c.with_size(640, 400))
        .collect();
    atomic_write(
        &pd.join("dashboard.svg"),
        render_grid_svg(&all, 2).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, sharpness: Option<f32>, tracked: Option<f32>) -> Row {
        Row {
            step,
            lr: 0.5,
            loss: 1.0,
            sharpness,
            lr_x_sharpness: sharpness.map(|s| 0.5 * s),
            tracked_sharpness: tracked,
            ..Default::default()
        }
    }

    fn labels(charts: &[(&str, Chart)], name: &str) -> Vec<String> {
        charts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.series.iter().map(|s| s.label.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_chart_is_a_run_plot_that_resume_removes() {
        // Rows that measure everything, so that every chart is drawn.
        let rows: Vec<Row> = (0..4)
            .map(|t| Row {
                lambda_min: Some(-0.1),
                rotation: Some(0.01),
                hocm: Some(0.5),
                trace: Some(4.0),
                precond_sharpness: Some(1.0),
                test_acc: Some(0.5),
                ..row(t, Some(3.0), None)
            })
            .collect();
        let charts = run_charts(&rows, 2.0, true);
        assert_eq!(charts.len() + 1, RUN_PLOTS.len());
        for (name, _) in &charts {
            assert!(RUN_PLOTS.contains(name), "{name} is not in RUN_PLOTS");
        }
        let dir = tempfile::tempdir().unwrap();
        write_run_plots(dir.path(), &rows, 2.0, true).unwrap();
        let other = dir.path().join("plots/mine.svg");
        std::fs::write(&other, "x").unwrap();
        remove_run_plots(dir.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path().join("plots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["mine.svg"]);
    }

    #[test]
    fn unconverged_measurements_are_ringed_on_their_charts() {
        use crate::metrics::unconverged_bit;
        // Row 1's sharpness and row 2's lambda_min missed their tolerance.
        let rows: Vec<Row> = (0..4)
            .map(|t| Row {
                lambda_min: Some(-0.1 * t as f32),
                unconverged: match t {
                    1 => unconverged_bit("sharpness"),
                    2 => unconverged_bit("lambda_min"),
                    _ => 0,
                },
                ..row(t, Some(3.0 + t as f32), None)
            })
            .collect();
        let charts = run_charts(&rows, 2.0, false);
        let rings = |name: &str| -> Vec<(f64, f64)> {
            let c = &charts.iter().find(|(n, _)| *n == name).unwrap().1;
            c.series
                .iter()
                .filter(|s| s.style == Style::Hollow)
                .flat_map(|s| s.points.clone())
                .collect()
        };
        assert_eq!(rings("sharpness"), [(1.0, 4.0)]);
        assert_eq!(rings("lr_x_sharpness"), [(1.0, 2.0)]);
        assert_eq!(rings("lambda_min"), [(2.0, -0.2f32 as f64)]);
        let c = &charts.iter().find(|(n, _)| *n == "lambda_min").unwrap().1;
        let svg = render_svg(c);
        assert!(
            svg.contains("fill=\"none\" stroke=\"#000000\""),
            "no ring drawn"
        );
        assert!(svg.contains("unconverged (estimate)"));
        // None missed: no rings, no legend entry.
        let fine: Vec<Row> = (0..4).map(|t| row(t, Some(3.0), None)).collect();
        assert!(run_charts(&fine, 2.0, false)
            .iter()
            .all(|(_, c)| c.series.iter().all(|s| s.style != Style::Hollow)));
    }

    #[test]
    fn tracked_sharpness_is_drawn_with_the_measurements() {
        // Spectrum every other step, tracking at every step.
        let rows: Vec<Row> = (0..6)
            .map(|t| row(t, (t % 2 == 0).then_some(3.0), Some(3.0 + t as f32 * 0.1)))
            .collect();
        let charts = run_charts(&rows, 2.0, false);
        assert_eq!(
            labels(&charts, "sharpness"),
            ["sharpness (tracked)", "sharpness"]
        );
        let lxs = charts.iter().find(|(n, _)| *n == "lr_x_sharpness").unwrap();
        assert_eq!(lxs.1.series[0].points.len(), 6);
        assert!((lxs.1.series[0].points[5].1 - 0.5 * 3.5).abs() < 1e-6);
        assert_eq!(lxs.1.series[1].points.len(), 3);
        // Tracking alone still gives both charts; no curvature at all gives neither.
        let only: Vec<Row> = (0..3).map(|t| row(t, None, Some(2.0))).collect();
        assert_eq!(
            labels(&run_charts(&only, 2.0, false), "sharpness"),
            ["sharpness (tracked)"]
        );
        let none: Vec<Row> = (0..3).map(|t| row(t, None, None)).collect();
        assert!(run_charts(&none, 2.0, false)
            .iter()
            .all(|(n, _)| *n != "sharpness"));
    }

    #[test]
    fn the_threshold_is_drawn_where_it_applies_and_rounded() {
        let mut rows: Vec<Row> = (0..4).map(|t| row(t, Some(3.0), None)).collect();
        let refs = |charts: &[(&str, Chart)], name: &str| -> Vec<String> {
            charts
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c.ref_lines.iter().map(|l| l.label.clone()).collect())
                .unwrap_or_default()
        };
        // GD: 2/lr on the sharpness, 2 on lr x sharpness.
        let gd = run_charts(&rows, 2.0, false);
        assert_eq!(refs(&gd, "sharpness"), ["2/lr = 4"]);
        assert_eq!(refs(&gd, "lr_x_sharpness"), ["threshold 2"]);
        // Adam: the threshold (38, 37.999992 in f32) is on the preconditioned sharpness only.
        for r in &mut rows {
            r.precond_sharpness = Some(10.0);
        }
        let adam = run_charts(&rows, 37.999992, true);
        assert!(refs(&adam, "sharpness").is_empty());
        assert!(refs(&adam, "lr_x_sharpness").is_empty());
        assert_eq!(refs(&adam, "precond_sharpness"), ["threshold 38"]);
    }
    fn chart<'a>(charts: &'a [(&str, Chart)], name: &str) -> &'a Chart {
        &charts.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn a_loss_of_zero_is_drawn_at_the_floor_over_the_whole_run() {
        let rows: Vec<Row> = (0..600)
            .map(|t| Row {
                loss: if t < 2 { 0.7 } else { 0.0 },
                ..row(t, None, None)
            })
            .collect();
        let charts = run_charts(&rows, 2.0, false);
        let svg = render_svg(chart(&charts, "loss"));
        assert!(
            svg.contains("598 values &lt;= 0 drawn at the floor"),
            "{svg}"
        );
        assert!(svg.contains(">600<"), "the x axis stops early: {svg}");
    }

    #[test]
    fn a_diverged_run_marks_the_step_on_every_chart() {
        let mut rows: Vec<Row> = (0..5).map(|t| row(t, Some(3.0), None)).collect();
        rows[4].loss = f32::INFINITY;
        rows[4].sharpness = None;
        for (name, c) in run_charts(&rows, 2.0, false) {
            assert!(
                c.ref_lines
                    .iter()
                    .any(|l| !l.horizontal && l.value == 4.0 && l.label == "diverged at step 4"),
                "{name}"
            );
            assert!(c.x_integer, "{name}");
        }
        rows[4].loss = 1.0;
        assert!(run_charts(&rows, 2.0, false)
            .iter()
            .all(|(_, c)| c.ref_lines.iter().all(|l| l.horizontal)));
    }

    #[test]
    fn sharpness_spanning_decades_is_on_a_log_axis() {
        // A plateau at 0.1 with a spike to 36: log. A narrow band: linear.
        let spiky: Vec<Row> = (0..20)
            .map(|t| row(t, Some(if t == 10 { 36.0 } else { 0.1 }), None))
            .collect();
        let charts = run_charts(&spiky, 2.0, false);
        assert!(chart(&charts, "sharpness").y_log);
        assert!(chart(&charts, "lr_x_sharpness").y_log);
        let narrow: Vec<Row> = (0..20)
            .map(|t| row(t, Some(3.0 + t as f32), None))
            .collect();
        assert!(!chart(&run_charts(&narrow, 2.0, false), "sharpness").y_log);
        // Mostly negative (lambda_max of a saddle): linear.
        let neg: Vec<Row> = (0..20)
            .map(|t| row(t, Some(if t == 0 { 40.0 } else { -0.5 }), None))
            .collect();
        assert!(!chart(&run_charts(&neg, 2.0, false), "sharpness").y_log);
    }

    #[test]
    fn adaptive_charts_name_no_threshold_and_label_the_preconditioned_sharpness() {
        let rows: Vec<Row> = (0..4)
            .map(|t| Row {
                precond_sharpness: Some(10.0),
                ..row(t, Some(3.0), None)
            })
            .collect();
        let adam = run_charts(&rows, 37.999992, true);
        assert_eq!(chart(&adam, "sharpness").title, "Sharpness");
        assert_eq!(chart(&adam, "lr_x_sharpness").title, "lr x sharpness");
        let pre = chart(&adam, "precond_sharpness");
        assert_eq!(pre.y_label, "lambda_max(diag(s) H)");
        assert!(pre
            .notes
            .iter()
            .any(|n| n.contains("lr / (sqrt(v_hat) + eps)")));
        let gd = run_charts(&rows, 2.0, false);
        assert!(chart(&gd, "sharpness").title.contains("threshold"));
    }

    #[test]
    fn trace_accuracy_and_measurements_over_tracking() {
        let rows: Vec<Row> = (0..6)
            .map(|t| Row {
                trace: (t % 3 == 0).then_some(12.0),
                train_acc: 1.0,
                ..row(t, (t % 2 == 0).then_some(3.0), Some(3.0))
            })
            .collect();
        let charts = run_charts(&rows, 2.0, false);
        assert_eq!(chart(&charts, "trace").series[0].points.len(), 2);
        // Accuracies of exactly 1 are inside the frame.
        assert_eq!(chart(&charts, "accuracy").y_range, Some((-0.02, 1.02)));
        // Measurements over the tracked curve are points, not a line that masks it.
        assert_eq!(chart(&charts, "sharpness").series[1].style, Style::Points);
        assert_eq!(
            chart(&charts, "lr_x_sharpness").series[1].style,
            Style::Points
        );
        let untracked: Vec<Row> = (0..4).map(|t| row(t, Some(3.0), None)).collect();
        let charts = run_charts(&untracked, 2.0, false);
        assert_eq!(
            chart(&charts, "sharpness").series[0].style,
            Style::LinePoints
        );
        // A 2/lr that varies (a schedule) is a reference curve.
        let mut sched = untracked.clone();
        sched[0].lr = 0.01;
        let charts = run_charts(&sched, 2.0, false);
        let thr = chart(&charts, "sharpness").series.last().unwrap();
        assert!(thr.reference && thr.label == "2/lr");
    }
}
