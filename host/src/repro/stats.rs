//! Pure statistics over metric rows: summary statistics, Spearman's rank correlation, and the
//! per-run quantities the verdicts use (threshold crossing, final sharpness, loss spikes,
//! instability windows and episodes). No I/O; everything is a function of its arguments.

use crate::metrics::Row;

/// Relative loss increase that counts as a spike: `loss[t] > loss[t-1] * (1 + SPIKE_REL)`.
pub const SPIKE_REL: f64 = 1e-3;

/// Fraction of the (last) measurements averaged into the "final" sharpness.
pub const FINAL_FRACTION: f64 = 0.2;

/// A run that did not diverge has *collapsed* when its final training accuracy is at most chance
/// (`1 / classes`) plus this: it ended (close to) predicting one class or the uniform
/// distribution, so its final loss, sharpness and accuracies do not describe a trained network.
/// With 10 classes the bound is 0.2, twice chance.
pub const COLLAPSE_MARGIN: f64 = 0.1;

/// Mean of the finite values (None when there are none).
pub fn mean(xs: &[f64]) -> Option<f64> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Sample standard deviation of the finite values (0 for one value, None for none).
pub fn std(xs: &[f64]) -> Option<f64> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let m = mean(&v)?;
    if v.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (v.len() - 1) as f64).sqrt())
}

/// Median of the finite values.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Mean, standard deviation and count of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub sd: f64,
    /// Number of finite values.
    pub n: usize,
}

impl MeanSd {
    /// Of the finite values of `xs` (None when there are none).
    pub fn of(xs: &[f64]) -> Option<MeanSd> {
        let n = xs.iter().filter(|x| x.is_finite()).count();
        Some(MeanSd {
            mean: mean(xs)?,
            sd: std(xs)?,
            n,
        })
    }

    /// `mean ± sd (n=..)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:.d$} ± {:.d$}", self.mean, self.sd, d = digits)
        } else {
            format!("{:.d$}", self.mean, d = digits)
        }
    }

    /// `mean - sd`.
    pub fn lo(&self) -> f64 {
        self.mean - self.sd
    }

    /// `mean + sd`.
    pub fn hi(&self) -> f64 {
        self.mean + self.sd
    }
}

/// Average ranks (1-based; ties share their mean rank).
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of the pairs with both values finite. None with fewer than 3
/// pairs or when either variable is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .unzip();
    if xs.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(&xs), ranks(&ys));
    let (mx, my) = (mean(&rx)?, mean(&ry)?);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// What the verdicts need of one training run: its settings, its outcome and its metric rows.
#[derive(Clone, Debug, Default)]
pub struct RunRecord {
    /// Run name (directory name in its experiment).
    pub name: String,
    /// Learning rate.
    pub lr: f32,
    /// Seed.
    pub seed: u64,
    /// Minibatch size (None: full batch).
    pub batch: Option<usize>,
    /// Training set size.
    pub n_train: usize,
    /// Number of classes (the network's output width; 0 when unknown: never collapsed).
    pub classes: usize,
    /// Optimizer name.
    pub opt: String,
    /// Clip value of the clipped optimizers.
    pub clip: Option<f32>,
    /// Stability threshold of `lr * lambda` (2 for GD; 38 for Adam's preconditioned sharpness).
    pub threshold: f32,
    /// The run stopped on a non-finite loss.
    pub diverged: bool,
    /// Final test accuracy (at the final, or last finite, parameters).
    pub test_acc: Option<f32>,
    /// Final training accuracy on the whole training set.
    pub train_acc: Option<f32>,
    /// Final training loss on the whole training set.
    pub train_loss: Option<f32>,
    /// The rows of `metrics.csv`, in step order.
    pub rows: Vec<Row>,
    /// The top Hessian eigenvalue at the final parameters over the whole training split, for a
    /// run whose curvature columns measure a Hessian subset (`None`: no subset, or diverged).
    pub full_sharpness: Option<f64>,
}

impl RunRecord {
    /// `bs=full` or `bs=B`.
    pub fn batch_label(&self) -> String {
        self.batch.map_or("full".into(), |b| b.to_string())
    }

    /// Minibatch (not full batch).
    pub fn is_minibatch(&self) -> bool {
        self.batch.is_some_and(|b| b < self.n_train)
    }

    /// Accuracy of guessing: `1 / classes` (None when the number of classes is unknown).
    pub fn chance(&self) -> Option<f64> {
        (self.classes > 0).then(|| 1.0 / self.classes as f64)
    }

    /// Did not diverge but ended with a training accuracy of at most chance plus
    /// [`COLLAPSE_MARGIN`].
    pub fn collapsed(&self) -> bool {
        match (self.chance(), self.train_acc) {
            // f32 accuracies: 0.2f32 is 0.2000000030 in f64.
            (Some(c), Some(a)) => !self.diverged && f64::from(a) <= c + COLLAPSE_MARGIN + 1e-6,
            _ => false,
        }
    }
}

/// The runs of `runs` a statistic leaves out, as text (`3 diverged`, `1 diverged, 2 collapsed`;
/// None when it uses them all): diverged runs always, collapsed runs when `drop_collapsed`.
pub fn left_out(runs: &[&RunRecord], drop_collapsed: bool) -> Option<String> {
    let d = runs.iter().filter(|r| r.diverged).count();
    let c = if drop_collapsed {
        runs.iter().filter(|r| r.collapsed()).count()
    } else {
        0
    };
    let mut why = Vec::new();
    if d > 0 {
        why.push(format!("{d} diverged"));
    }
    if c > 0 {
        why.push(format!("{c} collapsed"));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Whether a statistic uses run `r`: it did not diverge and, with `drop_collapsed`, did not
/// collapse.
pub fn used(r: &RunRecord, drop_collapsed: bool) -> bool {
    !(r.diverged || (drop_collapsed && r.collapsed()))
}

/// The run count of a statistic over `runs`: `5`, or `2 of 5 (3 diverged, excluded)`.
pub fn used_text(runs: &[&RunRecord], drop_collapsed: bool) -> String {
    let n = runs.len();
    let k = runs.iter().filter(|r| used(r, drop_collapsed)).count();
    match left_out(runs, drop_collapsed) {
        None => format!("{n}"),
        Some(w) => format!("{k} of {n} ({w}, excluded)"),
    }
}

/// Per-run quantities derived from the rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Some measured `lr * sharpness` exceeded the threshold.
    pub crossed: bool,
    /// Largest measured `lr * sharpness`.
    pub max_lxs: Option<f64>,
    /// First measured sharpness.
    pub s0: Option<f64>,
    /// Mean sharpness over the last [`FINAL_FRACTION`] of the measurements.
    pub final_s: Option<f64>,
    /// `lr * final_s`.
    pub final_lxs: Option<f64>,
    /// Mean preconditioned sharpness over the last [`FINAL_FRACTION`] of its measurements.
    pub final_precond: Option<f64>,
    /// Median `lr * sharpness` over the second half of the measurements.
    pub hover: Option<f64>,
    /// Loss spikes (relative increase above [`SPIKE_REL`]) over the whole run.
    pub spikes: usize,
    /// Loss at the first and the last row.
    pub first_loss: Option<f64>,
    /// Loss of the last row.
    pub last_loss: Option<f64>,
    /// Mean single-vector rotation `1 - |cos|` over the measurements after the first.
    pub mean_rotation: Option<f64>,
    /// Mean `1 - subspace score`.
    pub mean_subspace_dev: Option<f64>,
    /// Mean rotation over measurements in unstable windows / in stable windows.
    pub rot_unstable: Option<f64>,
    /// See `rot_unstable`.
    pub rot_stable: Option<f64>,
    /// Mean |lambda_min| in unstable / stable windows.
    pub lmin_unstable: Option<f64>,
    /// See `lmin_unstable`.
    pub lmin_stable: Option<f64>,
    /// Mean |T(v,v,v)| in unstable / stable windows.
    pub hocm_unstable: Option<f64>,
    /// See `hocm_unstable`.
    pub hocm_stable: Option<f64>,
    /// Rotation measurements in unstable / stable windows.
    pub rot_n: (usize, usize),
    /// |lambda_min| measurements in unstable / stable windows.
    pub lmin_n: (usize, usize),
    /// Instability episodes followed by a stable measurement.
    pub episodes_ended: usize,
    /// Of which |lambda_min| after the episode is below its value at the episode's start.
    pub episodes_lmin_lower: usize,
    /// Of which the sharpness after the episode is below its value at the episode's start.
    pub episodes_sharp_lower: usize,
}

fn finite(v: Option<f32>) -> Option<f64> {
    v.map(f64::from).filter(|x| x.is_finite())
}

/// `spike[i]`: the loss of row `i` exceeds that of row `i - 1` by more than [`SPIKE_REL`].
pub fn spike_flags(rows: &[Row]) -> Vec<bool> {
    let mut v = vec![false; rows.len()];
    for i in 1..rows.len() {
        let (a, b) = (rows[i - 1].loss as f64, rows[i].loss as f64);
        v[i] = a.is_finite() && b.is_finite() && b > a * (1.0 + SPIKE_REL);
    }
    v
}

/// For each measured row (one with a sharpness), whether its window holds a loss spike. The
/// window of a measurement at row `i` whose previous measurement is at row `j` is the rows
/// `j+1 ..= i+1` (the steps since the previous measurement and the step right after it); the
/// first measurement's window is rows `i ..= i+1`. Returns `(row index, unstable)` pairs.
pub fn window_flags(rows: &[Row]) -> Vec<(usize, bool)> {
    let spikes = spike_flags(rows);
    let mut out = Vec::new();
    let mut prev: Option<usize> = None;
    for (i, r) in rows.iter().enumerate() {
        if r.sharpness.is_none() {
            continue;
        }
        let start = prev.map_or(i, |j| j + 1);
        let end = (i + 1).min(rows.len().saturating_sub(1));
        let unstable = (start..=end).any(|k| k < spikes.len() && spikes[k]);
        out.push((i, unstable));
        prev = Some(i);
    }
    out
}

fn split_means(
    rows: &[Row],
    flags: &[(usize, bool)],
    f: impl Fn(&Row) -> Option<f64>,
) -> (Option<f64>, Option<f64>, usize, usize) {
    let (mut u, mut s) = (Vec::new(), Vec::new());
    for &(i, unstable) in flags {
        if let Some(x) = f(&rows[i]).filter(|x| x.is_finite()) {
            if unstable {
                u.push(x)
            } else {
                s.push(x)
            }
        }
    }
    (mean(&u), mean(&s), u.len(), s.len())
}

/// Computes the per-run quantities of `r`.
pub fn run_stats(r: &RunRecord) -> RunStats {
    let rows = &r.rows;
    let lr = r.lr as f64;
    let meas: Vec<&Row> = rows
        .iter()
        .filter(|x| finite(x.sharpness).is_some())
        .collect();
    let sharp: Vec<f64> = meas.iter().filter_map(|x| finite(x.sharpness)).collect();
    let lxs: Vec<f64> = sharp.iter().map(|s| s * lr).collect();
    let max_lxs = lxs.iter().copied().reduce(f64::max);
    let tail = ((sharp.len() as f64 * FINAL_FRACTION).ceil() as usize).clamp(1, sharp.len().max(1));
    let final_s = if sharp.is_empty() {
        None
    } else {
        mean(&sharp[sharp.len() - tail..])
    };
    let pre: Vec<f64> = rows
        .iter()
        .filter_map(|x| finite(x.precond_sharpness))
        .collect();
    let ptail = ((pre.len() as f64 * FINAL_FRACTION).ceil() as usize).clamp(1, pre.len().max(1));
    let final_precond = if pre.is_empty() {
        None
    } else {
        mean(&pre[pre.len() - ptail..])
    };
    let hover = if lxs.is_empty() {
        None
    } else {
        median(&lxs[lxs.len() / 2..])
    };
    let flags = window_flags(rows);
    let rot: Vec<f64> = meas.iter().filter_map(|x| finite(x.rotation)).collect();
    let sub: Vec<f64> = meas
        .iter()
        .filter_map(|x| finite(x.subspace_score))
        .map(|s| 1.0 - s)
        .collect();
    let (rot_u, rot_s, rnu, rns) = split_means(rows, &flags, |x| finite(x.rotation));
    let (lmin_u, lmin_s, lnu, lns) =
        split_means(rows, &flags, |x| finite(x.lambda_min).map(f64::abs));
    let (hocm_u, hocm_s, _, _) = split_means(rows, &flags, |x| finite(x.hocm).map(f64::abs));
    // Episodes: maximal runs of unstable-window measurements followed by a stable one.
    let (mut ended, mut lmin_lower, mut sharp_lower) = (0, 0, 0);
    let mut start: Option<usize> = None;
    for &(i, unstable) in &flags {
        match (unstable, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                ended += 1;
                let (a, b) = (&rows[s], &rows[i]);
                if let (Some(x), Some(y)) = (finite(a.lambda_min), finite(b.lambda_min)) {
                    if y.abs() < x.abs() {
                        lmin_lower += 1;
                    }
                }
                if let (Some(x), Some(y)) = (finite(a.sharpness), finite(b.sharpness)) {
                    if y < x {
                        sharp_lower += 1;
                    }
                }
                start = None;
            }
            _ => {}
        }
    }
    RunStats {
        crossed: max_lxs.is_some_and(|m| m > r.threshold as f64),
        max_lxs,
        s0: sharp.first().copied(),
        final_s,
        final_lxs: final_s.map(|s| s * lr),
        final_precond,
        hover,
        spikes: spike_flags(rows).iter().filter(|&&b| b).count(),
        first_loss: rows.first().map(|x| x.loss as f64),
        last_loss: rows.last().map(|x| x.loss as f64),
        mean_rotation: mean(&rot),
        mean_subspace_dev: mean(&sub),
        rot_unstable: rot_u,
        rot_stable: rot_s,
        lmin_unstable: lmin_u,
        lmin_stable: lmin_s,
        hocm_unstable: hocm_u,
        hocm_stable: hocm_s,
        rot_n: (rnu, rns),
        lmin_n: (lnu, lns),
        episodes_ended: ended,
        episodes_lmin_lower: lmin_lower,
        episodes_sharp_lower: sharp_lower,
    }
}

/// Distinct values of `key` over `runs`, ascending.
pub fn distinct(runs: &[&RunRecord], key: impl Fn(&RunRecord) -> f64) -> Vec<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .map(|r| key(r))
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_statistics() {
        assert_eq!(mean(&[1.0, 2.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(std(&[5.0]), Some(0.0));
        assert!((std(&[1.0, 2.0, 3.0]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
    }

    #[test]
    fn spearman_known_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&x, &[2.0, 4.0, 8.0, 16.0, 32.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&x, &[1.0; 5]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
        // Ties: x = 1,2,3,4 ; y = 1,3,2,4 -> 0.8
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap() - 0.8).abs() < 1e-12
        );
    }

    fn row(step: u64, loss: f32, sharp: Option<f32>) -> Row {
        Row {
            step,
            loss,
            sharpness: sharp,
            lr: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn windows_and_spikes() {
        // Loss falls, spikes at rows 5 and 6, falls again; measurements every 2 rows.
        let losses = [1.0, 0.9, 0.8, 0.7, 0.6, 0.8, 0.9, 0.5, 0.4, 0.3];
        let rows: Vec<Row> = losses
            .iter()
            .enumerate()
            .map(|(i, &l)| row(i as u64, l, (i % 2 == 0).then_some(10.0 + i as f32)))
            .collect();
        assert_eq!(spike_flags(&rows).iter().filter(|&&b| b).count(), 2);
        let w = window_flags(&rows);
        // Measurement rows 0,2,4,6,8: windows [0,1], [1,3], [3,5], [5,7], [7,9].
        assert_eq!(
            w,
            vec![(0, false), (2, false), (4, true), (6, true), (8, false)]
        );
        let rec = RunRecord {
            lr: 0.1,
            threshold: 2.0,
            rows,
            ..Default::default()
        };
        let s = run_stats(&rec);
        assert_eq!(s.spikes, 2);
        assert_eq!(s.episodes_ended, 1);
        // Sharpness 18 after the episode vs 14 at its start: not lower.
        assert_eq!(s.episodes_sharp_lower, 0);
        assert_eq!(s.s0, Some(10.0));
        assert_eq!(s.final_s, Some(18.0));
        // The largest lr x sharpness is 0.1 * 18 = 1.8, below the threshold 2.
        assert!(!s.crossed);
        assert!((s.max_lxs.unwrap() - 1.8).abs() < 1e-6);
    }

    #[test]
    fn collapse_rule_and_run_counts() {
        let rec = |acc: f32, diverged: bool, classes: usize| RunRecord {
            classes,
            diverged,
            train_acc: Some(acc),
            ..Default::default()
        };
        // Chance 0.1 with 10 classes: collapsed at or below 0.1 + COLLAPSE_MARGIN = 0.2.
        assert_eq!(rec(0.5, false, 10).chance(), Some(0.1));
        assert!(rec(0.1, false, 10).collapsed());
        assert!(rec(0.2, false, 10).collapsed());
        assert!(!rec(0.21, false, 10).collapsed());
        assert!(rec(0.5, false, 2).collapsed(), "two classes: chance 0.5");
        // A diverged run is diverged, not collapsed; unknown classes never collapse.
        assert!(!rec(0.1, true, 10).collapsed());
        assert!(!rec(0.0, false, 0).collapsed());
        assert!(!RunRecord {
            classes: 10,
            ..Default::default()
        }
        .collapsed());

        let runs = [
            rec(0.9, false, 10),
            rec(0.1, true, 10),
            rec(0.1, true, 10),
            rec(0.15, false, 10),
            rec(0.95, false, 10),
        ];
        let refs: Vec<&RunRecord> = runs.iter().collect();
        assert_eq!(left_out(&refs, false).as_deref(), Some("2 diverged"));
        assert_eq!(
            left_out(&refs, true).as_deref(),
            Some("2 diverged, 1 collapsed")
        );
        assert_eq!(used_text(&refs, false), "3 of 5 (2 diverged, excluded)");
        assert_eq!(
            used_text(&refs, true),
            "2 of 5 (2 diverged, 1 collapsed, excluded)"
        );
        assert_eq!(used_text(&refs[..1], true), "1");
        assert_eq!(left_out(&refs[4..], true), None);
        assert!(used(&runs[3], false) && !used(&runs[3], true) && !used(&runs[1], false));
    }
}
