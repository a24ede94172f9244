//! The plots of a run (SVG, in `plots/`): loss, sharpness against the stability threshold
//! `2/lr` (the eigen measurements as points, the `track_every` tracker as a line), lambda_min,
//! eigenvector rotation, accuracy, and a dashboard with all of them.

use std::path::Path;

use crate::fsio::{atomic_write, IoError};
use crate::metrics::Row;
use crate::plot::{palette_color, render_grid_svg, render_svg, Chart, RefLine, Series};

fn pts(rows: &[Row], f: impl Fn(&Row) -> Option<f32>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| f(r).map(|v| (r.step as f64, v as f64)))
        .collect()
}

/// The charts of a run. `threshold` is the optimizer's stability threshold of `lr * lambda`
/// (2 for GD); for an `adaptive` optimizer (RMSProp, Adam) it applies to the preconditioned
/// sharpness alone, so the sharpness charts draw no threshold.
pub fn run_charts(rows: &[Row], threshold: f32, adaptive: bool) -> Vec<(&'static str, Chart)> {
    let mut charts = Vec::new();
    // The threshold as computed in f32 (e.g. 37.999992 for Adam's 38), rounded for labels.
    let th = format!("{}", ((threshold as f64) * 1e4).round() / 1e4);
    let mut loss = Chart::new("Loss", "step", "loss").log_y();
    loss.add_series(Series::line("train (batch)", pts(rows, |r| Some(r.loss))));
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
        let mut c = Chart::new(
            "Sharpness and the stability threshold",
            "step",
            "lambda_max",
        );
        if !tracked.is_empty() {
            c.add_series(Series::line("sharpness (tracked)", tracked));
        }
        if !sharp.is_empty() {
            c.add_series(Series::line_points("sharpness", sharp));
        }
        let lrs: Vec<f32> = rows.iter().map(|r| r.lr).collect();
        let constant = lrs.windows(2).all(|w| w[0] == w[1]);
        if adaptive {
            // The threshold is on lambda_max(P^-1 H): see the preconditioned-sharpness chart.
        } else if let (true, Some(&lr)) = (constant, lrs.first()) {
            c.add_ref_line(
                RefLine::at_y(
                    (threshold / lr) as f64,
                    format!("{th}/lr = {:.4}", threshold / lr),
                )
                .with_color(palette_color(3)),
            );
        } else {
            c.add_series(
                Series::line(format!("{th}/lr"), pts(rows, |r| Some(threshold / r.lr)))
                    .with_dashed(true)
                    .with_color(palette_color(3)),
            );
        }
        charts.push(("sharpness", c));
        let lxs = pts(rows, |r| r.lr_x_sharpness);
        let tracked = pts(rows, |r| r.tracked_sharpness.map(|s| r.lr * s));
        let mut c = Chart::new(
            "lr x sharpness (unstable above the threshold)",
            "step",
            "lr * lambda_max",
        );
        if !tracked.is_empty() {
            c.add_series(Series::line("lr x sharpness (tracked)", tracked));
        }
        if !lxs.is_empty() {
            c.add_series(Series::line_points("lr x sharpness", lxs));
        }
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
        let mut c = Chart::new(
            "Preconditioned sharpness lambda_max(P^-1 H)",
            "step",
            "lambda_max(P^-1 H)",
        );
        c.add_series(Series::line_points("preconditioned sharpness", pre));
        c.add_ref_line(
            RefLine::at_y(threshold as f64, format!("threshold {th}")).with_color(palette_color(3)),
        );
        charts.push(("precond_sharpness", c));
    }
    let lmin = pts(rows, |r| r.lambda_min);
    if !lmin.is_empty() {
        let mut c = Chart::new("Smallest Hessian eigenvalue", "step", "lambda_min");
        c.add_series(Series::line_points("lambda_min", lmin));
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
    let mut acc = Chart::new("Accuracy", "step", "accuracy").with_y_range(0.0, 1.0);
    acc.add_series(Series::line(
        "train (batch)",
        pts(rows, |r| Some(r.train_acc)),
    ));
    let full = pts(rows, |r| r.full_train_acc);
    if !full.is_empty() {
        acc.add_series(Series::line_points("train (full)", full));
    }
    acc.add_series(Series::line_points("test", pts(rows, |r| r.test_acc)));
    charts.push(("accuracy", acc));
    charts
}

/// The files [`write_run_plots`] may write into a run's `plots/` (without `.svg`): one per
/// chart of [`run_charts`] and the dashboard.
pub const RUN_PLOTS: [&str; 9] = [
    "loss",
    "sharpness",
    "lr_x_sharpness",
    "precond_sharpness",
    "lambda_min",
    "rotation",
    "hocm",
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
        assert_eq!(refs(&gd, "sharpness"), ["2/lr = 4.0000"]);
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
}
