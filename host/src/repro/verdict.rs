//! The verdicts: one pure function per claim, from run records (metric rows and final values)
//! to `holds` / `does not hold` / `inconclusive` with the evidence as text. The criteria are
//! stated by [`criterion`] from the same constants the functions use, so the report cannot say
//! one thing and compute another.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::diag::DiagRun;
use super::stats::{
    distinct, left_out, median, run_stats, spearman, used, MeanSd, RunRecord, RunStats,
    COLLAPSE_MARGIN, SPIKE_REL,
};

/// Fewest runs (or learning rates, or batch sizes) a criterion needs to decide.
pub const MIN_RUNS: usize = 3;
/// Claim 1: fraction of threshold-crossing runs that must spike and must survive.
pub const C1_HOLD: f64 = 0.8;
/// Claim 1: below this fraction, the claim does not hold.
pub const C1_FAIL: f64 = 0.5;
/// Claim 1: largest fraction of the stable (non-crossing) runs that may spike.
pub const C1_CONTROL: f64 = 0.5;
/// Rank correlation a trend needs (in the claimed direction).
pub const RHO: f64 = 0.5;
/// Fraction of runs (or episodes) that must agree for a within-run comparison to hold.
pub const FRAC_HOLD: f64 = 2.0 / 3.0;
/// At or below this fraction, a within-run comparison does not hold.
pub const FRAC_FAIL: f64 = 1.0 / 3.0;
/// Claim 4: median ratio |lambda_min| (unstable windows) / (stable windows) needed.
pub const C4_RATIO: f64 = 1.1;
/// Fewest measurements in each window class for a run to enter a within-run comparison.
pub const MIN_WINDOWS: usize = 2;
/// Claim 5: a learning rate enters the comparison if its seed-mean final training accuracy is at
/// least this (it fit the training set).
pub const C5_FIT: f64 = 0.9;
/// Claim 8: relative tolerance of the conservation of theta_1^2 - theta_2^2 (stable runs) and of
/// their final sharpness against lambda_ref.
pub const C8_TOL: f64 = 0.05;
/// Claim 8: an unstable run must end at `lambda_max <= (2 / lr) (1 + C8_LAMBDA_TOL)`.
pub const C8_LAMBDA_TOL: f64 = 0.01;
/// Claim 8: an unstable run must end with `|c| < C8_BALANCE |c0|`.
pub const C8_BALANCE: f64 = 0.9;
/// Claim 8: angle (degrees) between a run's final top eigenvector and the one at the valley point
/// gradient flow reaches: a stable run stays below it, an unstable run must exceed it.
pub const C8_ANGLE: f64 = 0.5;

/// A verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The measured data meet the criterion.
    #[serde(rename = "holds")]
    Holds,
    /// The measured data contradict it.
    #[serde(rename = "does not hold")]
    DoesNotHold,
    /// Too few valid runs, or the spread overlaps.
    #[serde(rename = "inconclusive")]
    Inconclusive,
}

impl Verdict {
    /// The words used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Every verdict word.
    pub const WORDS: [&'static str; 3] = ["holds", "does not hold", "inconclusive"];
}

/// A conjunction: does not hold if any part does not hold, holds if all hold, else inconclusive.
pub fn combine(parts: &[Verdict]) -> Verdict {
    if parts.contains(&Verdict::DoesNotHold) {
        Verdict::DoesNotHold
    } else if !parts.is_empty() && parts.iter().all(|&v| v == Verdict::Holds) {
        Verdict::Holds
    } else {
        Verdict::Inconclusive
    }
}

/// A verdict with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// The verdict.
    pub verdict: Verdict,
    /// The numbers behind it.
    pub evidence: String,
}

fn assess(verdict: Verdict, evidence: String) -> Assessment {
    Assessment { verdict, evidence }
}

/// The claims, in report order: (short name, statement).
pub const CLAIMS: [(&str, &str); 8] = [
    ("Instability without divergence", "Beyond the threshold (lr x lambda_max > 2), GD is unstable: the loss spikes, yet training does not diverge."),
    ("Eigenvector rotation (RPE)", "During instabilities the leading Hessian eigenvectors rotate, and the rotation grows with the learning rate."),
    ("Flatness bias", "The sharpness reached at the end of training falls as the learning rate grows past the threshold."),
    ("Higher-order curvature", "Instabilities coincide with growing higher-order curvature (a larger |lambda_min|), and each resolves after a flattening phase."),
    ("Goldilocks zone", "Generalization improves with the learning rate past the threshold up to a point, then degrades."),
    ("SGD", "With minibatches (lr scaled with the batch), the instability-driven flattening persists and outweighs minibatch noise."),
    ("Adam vs clipped Adam", "Adam suppresses instabilities through its preconditioner; restoring them (clipped Adam) improves generalization."),
    ("Mechanism (diagonal network)", "On L = (theta_1 theta_2 - 1)^2 / 2, unstable GD rotates the top eigenvector and moves along the valley to flatter, more balanced minima; stable GD keeps theta_1^2 - theta_2^2."),
];

/// The criterion of claim `i` (1-based), stated from the constants above.
pub fn criterion(i: usize) -> String {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    match i {
        1 => format!(
            "Over the full-batch GD runs whose measured lr x sharpness exceeded 2 at least once (need >= {MIN_RUNS}): \
             holds if >= {} of them have a loss spike (a step whose loss exceeds the previous one by more than {SPIKE_REL:e} relative) \
             AND >= {} of them end without diverging, without collapsing (final training accuracy <= chance + {COLLAPSE_MARGIN}) and below \
             their initial loss, AND at most {} of the runs that never crossed spike; does not hold if either fraction is < {}; \
             otherwise inconclusive. Diverged and collapsed runs are counted separately; the spikes per run and the late lr x S are \
             over the runs that did not diverge (resp. neither diverged nor collapsed).",
            pct(C1_HOLD), pct(C1_HOLD), pct(C1_CONTROL), pct(C1_FAIL)
        ),
        2 => format!(
            "(a) Spearman rho between lr and the run's mean rotation 1 - |cos(v_t, v_t-k)| over the runs that neither diverged nor collapsed \
             (final training accuracy <= chance + {COLLAPSE_MARGIN}: a network that stopped learning sits on a plateau whose eigenvectors say nothing \
             about the training the claim is about; need >= {MIN_RUNS} learning rates); \
             (b) in each threshold-crossing run that neither diverged nor collapsed, with >= {MIN_WINDOWS} measurements of each kind, mean rotation in unstable windows \
             (a loss spike since the previous measurement or right after it) vs stable windows (need >= {MIN_RUNS} runs). \
             Holds if rho >= {RHO}, the subspace measure's rho (1 - subspace score) is >= 0, and >= {} of the runs rotate more in unstable windows; \
             does not hold if rho <= -{RHO} (the opposite trend, as clear as a holding one) or <= {} of the runs rotate more in unstable windows; \
             otherwise inconclusive.",
            pct(FRAC_HOLD), pct(FRAC_FAIL)
        ),
        3 => format!(
            "Final sharpness = mean of the last 20% of the measurements. Over the runs that crossed the threshold and neither diverged nor \
             collapsed (final training accuracy <= chance + {COLLAPSE_MARGIN}: the network stopped learning, so its sharpness says nothing \
             about flatness bias), at the learning rates where such runs are at least half the seeds (need >= {MIN_RUNS} such learning rates): holds if Spearman rho(lr, final sharpness) <= -{RHO} \
             AND mean + sd at the largest such lr < mean - sd at the smallest; does not hold if the opposite trend is as clear: rho >= {RHO} \
             AND mean - sd at the largest lr > mean + sd at the smallest; otherwise inconclusive. (At the edge of stability the sharpness \
             hovers near 2/lr, so a holding verdict says the runs end near the threshold of their own lr: the evidence gives lr x S, \
             whose rise or fall with lr tells whether larger learning rates end flatter than their threshold requires.)"
        ),
        4 => format!(
            "(a) In each threshold-crossing run that neither diverged nor collapsed (final training accuracy <= chance + {COLLAPSE_MARGIN}), with >= {MIN_WINDOWS} lambda_min measurements of each kind, the ratio of mean |lambda_min| in \
             unstable windows to stable windows (need >= {MIN_RUNS} runs): holds if >= {} of the runs have a ratio > 1 and the median ratio \
             is >= {C4_RATIO}, does not hold if <= {} have a ratio > 1. (b) Episodes (consecutive unstable-window measurements followed by a \
             stable one; need >= {MIN_RUNS}): holds if >= {} end with |lambda_min| below its value at the episode's start, does not hold if \
             <= {} do. The claim holds if (a) and (b) hold, does not hold if either does not, otherwise inconclusive.",
            pct(FRAC_HOLD), pct(FRAC_FAIL), pct(FRAC_HOLD), pct(FRAC_FAIL)
        ),
        5 => format!(
            "Per learning rate, mean and sd over seeds of the final test accuracy after the same number of steps; lr_c = the smallest lr \
             at which most seeds crossed the threshold. Only the learning rates whose mean final training accuracy is >= {C5_FIT} (they fit \
             the training set) and at which no seed diverged are compared, since an under-trained, collapsed or diverging run's test \
             accuracy is not a measure of generalization (need >= {MIN_RUNS} of them with >= 2 seeds each); means are over the runs that \
             did not diverge. Holds if the best of them is >= lr_c, is neither the smallest nor the \
             largest of them, and its mean - sd exceeds mean + sd of both; does not hold if one below lr_c has mean - sd above mean + sd \
             of every one >= lr_c (stable training generalizes better); otherwise inconclusive."
        ),
        6 => format!(
            "Batch sizes B from full batch down, lr = lr_full * B / N (the noise scale lr / B is the same for all), final sharpness \
             as in claim 3, over the runs that did not diverge. The claim is about minibatches, so the trend is taken over the minibatch \
             runs (B < N) alone (need >= {MIN_RUNS} minibatch sizes); the full-batch runs are claim 3's setting and are shown for \
             reference only. Holds if Spearman rho(lr, final sharpness) over the minibatch runs <= -{RHO}, mean + sd at the largest \
             minibatch lr < mean - sd at the smallest, AND at least one minibatch size crossed the threshold in most of its seeds \
             (instabilities occur with minibatches too); does not hold if the opposite trend is as clear: rho >= {RHO} AND mean - sd at the \
             largest minibatch lr > mean + sd at the smallest; otherwise inconclusive (including: no minibatch size became unstable)."
        ),
        7 => "Means over the runs that did not diverge. (a) Suppression: a clip value restores instabilities if its mean number of loss spikes minus sd exceeds Adam's \
              mean plus sd; holds if at least half of the clip values do, does not hold if none has more spikes than Adam beyond \
              the spread while at least half have as few or fewer on average (clipping restores none). (b) Generalization, over the \
              clip values that restore instabilities (a clip value that does not cannot test whether restoring them helps; needs \
              >= 2 seeds per optimizer): one improves on Adam if its mean test accuracy minus sd exceeds Adam's mean plus sd, and \
              is worse if its mean plus sd is below Adam's mean minus sd; holds if at least half of them improve and none is worse, \
              does not hold if at least half are worse and none improves; otherwise (or with no clip value that restores \
              instabilities) inconclusive. The claim holds if (a) and (b) hold, does not hold if either does not, otherwise \
              inconclusive."
            .to_string(),
        8 => format!(
            "Learning rates lr = m * 2 / lambda_ref, where lambda_ref = sqrt(c0^2 + 4) is the sharpness of the minimum gradient flow \
             reaches (c = theta_1^2 - theta_2^2). A stable run (m < 1) passes if it converges with |c - c0| <= {} |c0|, its final \
             lambda_max within {} of lambda_ref and its final top eigenvector within {C8_ANGLE} degree of the one at that minimum. An \
             unstable run (m > 1) passes if it converges (loss <= 1e-8) at lambda_max <= (2 / lr)(1 + {C8_LAMBDA_TOL}) with \
             |c| < {C8_BALANCE} |c0| and its final top eigenvector more than {C8_ANGLE} degree away from the gradient-flow minimum's. \
             Holds if every stable run passes, >= {} of the unstable runs pass (need >= {MIN_RUNS}) and, per start, the final \
             lambda_max of converged unstable runs falls with lr (pooled Spearman rho <= -{RHO}); does not hold if a stable run fails \
             or <= {} of the unstable runs pass; otherwise inconclusive.",
            pct(C8_TOL), pct(C8_TOL), pct(FRAC_HOLD), pct(FRAC_FAIL)
        ),
        _ => String::new(),
    }
}

fn frac(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

fn fmt_lr(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s.is_empty() || s == "0" {
        format!("{x:.2e}")
    } else {
        s
    }
}

fn fmt_opt(x: Option<f64>, d: usize) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.d$}"))
}

/// `seeds 0-2` / `seed 0` / `seeds 0, 3`.
pub fn seeds_text(runs: &[&RunRecord]) -> String {
    let mut s: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    s.sort_unstable();
    s.dedup();
    match s.as_slice() {
        [] => "no seeds".into(),
        [one] => format!("seed {one}"),
        _ if s.windows(2).all(|w| w[1] == w[0] + 1) => format!("seeds {}-{}", s[0], s[s.len() - 1]),
        _ => format!(
            "seeds {}",
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// ` (n=2 of 5; 3 diverged)` when a per-group statistic leaves runs out, else empty.
fn n_of(group: &[&RunRecord], drop_collapsed: bool) -> String {
    let k = group.iter().filter(|r| used(r, drop_collapsed)).count();
    left_out(group, drop_collapsed).map_or(String::new(), |w| {
        format!(" (n={k} of {}; {w})", group.len())
    })
}

fn with_stats(runs: &[RunRecord]) -> Vec<(&RunRecord, RunStats)> {
    runs.iter().map(|r| (r, run_stats(r))).collect()
}

/// Groups by learning rate (ascending).
fn by_lr<'a, T>(items: &'a [(&'a RunRecord, T)]) -> BTreeMap<u32, Vec<&'a (&'a RunRecord, T)>> {
    let mut m: BTreeMap<u32, Vec<&(&RunRecord, T)>> = BTreeMap::new();
    for it in items {
        // Positive finite f32 bit patterns sort like the values.
        m.entry(it.0.lr.to_bits()).or_default().push(it);
    }
    m
}

/// Claim 1 over full-batch GD runs.
pub fn claim1(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let crossed: Vec<&(&RunRecord, RunStats)> = st.iter().filter(|(_, s)| s.crossed).collect();
    let control: Vec<&(&RunRecord, RunStats)> = st
        .iter()
        .filter(|(r, s)| !s.crossed && !r.diverged)
        .collect();
    let n = crossed.len();
    let spiking = crossed.iter().filter(|(_, s)| s.spikes > 0).count();
    let n_div = crossed.iter().filter(|(r, _)| r.diverged).count();
    let n_col = crossed.iter().filter(|(r, _)| r.collapsed()).count();
    // Success: neither diverged nor collapsed, and the final loss is below the initial one.
    let survived = crossed
        .iter()
        .filter(|(r, s)| {
            let end = r.train_loss.map(f64::from).or(s.last_loss);
            used(r, true)
                && matches!((end, s.first_loss), (Some(e), Some(f)) if e.is_finite() && e < f)
        })
        .count();
    let ctrl_spiking = control.iter().filter(|(_, s)| s.spikes > 0).count();
    let ok: Vec<&&(&RunRecord, RunStats)> = crossed.iter().filter(|(r, _)| used(r, true)).collect();
    let hover: Vec<f64> = ok.iter().filter_map(|(_, s)| s.hover).collect();
    // A diverged run's spike count is its steps to divergence: left out of the mean.
    let spikes = MeanSd::of(
        &crossed
            .iter()
            .filter(|(r, _)| !r.diverged)
            .map(|(_, s)| s.spikes as f64)
            .collect::<Vec<_>>(),
    );
    let runs_ref: Vec<&RunRecord> = crossed.iter().map(|(r, _)| *r).collect();
    let lrs = distinct(&runs_ref, |r| r.lr as f64);
    let mut ev = format!(
        "{n} of {} runs crossed lr x S = 2 (lr {}; {}). {spiking}/{n} had loss spikes ({} spikes per run over the {} that did not diverge); \
         {survived}/{n} ended below their initial loss without diverging or collapsing ({n_div} diverged, {n_col} collapsed); \
         stable runs with spikes: {ctrl_spiking}/{}.",
        runs.len(),
        lrs.iter().map(|x| fmt_lr(*x)).collect::<Vec<_>>().join(", "),
        seeds_text(&runs_ref),
        spikes.map_or("n/a".into(), |m| m.show(1)),
        n - n_div,
        control.len()
    );
    if let Some(h) = median(&hover) {
        let lo = hover.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = hover.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = write!(
            ev,
            " Edge of stability: lr x S over the second half of training, median {h:.2} (range {lo:.2}..{hi:.2} over the {} crossing runs that neither diverged nor collapsed).",
            hover.len()
        );
    }
    if n < MIN_RUNS {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Fewer than {MIN_RUNS} crossing runs."),
        );
    }
    let (a, b) = (frac(spiking, n), frac(survived, n));
    let ctrl_ok = control.is_empty() || frac(ctrl_spiking, control.len()) <= C1_CONTROL;
    let v = if a < C1_FAIL || b < C1_FAIL {
        Verdict::DoesNotHold
    } else if a >= C1_HOLD && b >= C1_HOLD && ctrl_ok {
        Verdict::Holds
    } else {
        Verdict::Inconclusive
    };
    assess(v, ev)
}

/// Claim 2 over full-batch GD runs with rotation measurements.
pub fn claim2(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let valid: Vec<&(&RunRecord, RunStats)> = st
        .iter()
        .filter(|(r, s)| used(r, true) && s.mean_rotation.is_some())
        .collect();
    let x: Vec<f64> = valid.iter().map(|(r, _)| r.lr as f64).collect();
    let rot: Vec<f64> = valid
        .iter()
        .map(|(_, s)| s.mean_rotation.unwrap_or(f64::NAN))
        .collect();
    let sub: Vec<f64> = valid
        .iter()
        .map(|(_, s)| s.mean_subspace_dev.unwrap_or(f64::NAN))
        .collect();
    let n_lrs = distinct(&valid.iter().map(|(r, _)| *r).collect::<Vec<_>>(), |r| {
        r.lr as f64
    })
    .len();
    let rho = spearman(&x, &rot);
    let rho_sub = spearman(&x, &sub);
    let paired: Vec<(f64, f64)> = st
        .iter()
        .filter(|(r, s)| {
            used(r, true) && s.crossed && s.rot_n.0 >= MIN_WINDOWS && s.rot_n.1 >= MIN_WINDOWS
        })
        .filter_map(|(_, s)| Some((s.rot_unstable?, s.rot_stable?)))
        .collect();
    let more = paired.iter().filter(|(u, s)| u > s).count();
    let ratios: Vec<f64> = paired
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(u, s)| u / s)
        .collect();
    let per_lr: Vec<String> = by_lr(&st)
        .values()
        .filter_map(|g| {
            let v: Vec<f64> = g
                .iter()
                .filter(|(r, _)| used(r, true))
                .filter_map(|(_, s)| s.mean_rotation)
                .collect();
            let all: Vec<&RunRecord> = g.iter().map(|(r, _)| *r).collect();
            // A learning rate whose runs were all left out is still named, as `n/a (n=0 of ..)`.
            let mean = match MeanSd::of(&v) {
                Some(m) => m.show(4),
                None if left_out(&all, true).is_some() => "n/a".into(),
                None => return None,
            };
            Some(format!(
                "{}: {mean}{}",
                fmt_lr(g[0].0.lr as f64),
                n_of(&all, true)
            ))
        })
        .collect();
    let crossing = st.iter().filter(|(_, s)| s.crossed).count();
    let crossed_out: Vec<&RunRecord> = st
        .iter()
        .filter(|(_, s)| s.crossed)
        .map(|(r, _)| *r)
        .collect();
    let ev = format!(
        "Mean rotation per lr over the runs that neither diverged nor collapsed (mean ± sd over {}): {}. Spearman rho(lr, rotation) = {}, \
         subspace measure rho = {} ({} runs that neither diverged nor collapsed, {n_lrs} lrs). Unstable vs stable windows: {more}/{} crossing runs rotate \
         more when unstable (median ratio {}; the crossing runs that neither diverged nor collapsed and have >= {MIN_WINDOWS} measurements of \
         each kind, of {crossing} crossing runs, {}).",
        seeds_text(&valid.iter().map(|(r, _)| *r).collect::<Vec<_>>()),
        per_lr.join("; "),
        fmt_opt(rho, 2),
        fmt_opt(rho_sub, 2),
        valid.len(),
        paired.len(),
        fmt_opt(median(&ratios), 2),
        left_out(&crossed_out, true).unwrap_or_else(|| "none left out".into()),
    );
    let a = match rho {
        _ if n_lrs < MIN_RUNS => Verdict::Inconclusive,
        None => Verdict::Inconclusive,
        Some(r) if r <= -RHO => Verdict::DoesNotHold,
        Some(r) if r >= RHO && rho_sub.is_none_or(|s| s >= 0.0) => Verdict::Holds,
        _ => Verdict::Inconclusive,
    };
    let b = if paired.len() < MIN_RUNS {
        Verdict::Inconclusive
    } else if frac(more, paired.len()) >= FRAC_HOLD {
        Verdict::Holds
    } else if frac(more, paired.len()) <= FRAC_FAIL {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    assess(combine(&[a, b]), ev)
}

/// Trend of the final sharpness over learning rates: (rho, mean at smallest lr, at largest lr,
/// mean per lr).
#[allow(clippy::type_complexity)]
fn sharpness_trend(
    valid: &[(&RunRecord, f64)],
) -> (
    Option<f64>,
    Option<MeanSd>,
    Option<MeanSd>,
    Vec<(f64, MeanSd)>,
) {
    let x: Vec<f64> = valid.iter().map(|(r, _)| r.lr as f64).collect();
    let y: Vec<f64> = valid.iter().map(|(_, s)| *s).collect();
    let rho = spearman(&x, &y);
    let items: Vec<(&RunRecord, f64)> = valid.to_vec();
    let groups = by_lr(&items);
    let ms: Vec<(f64, MeanSd)> = groups
        .values()
        .filter_map(|g| {
            let v: Vec<f64> = g.iter().map(|(_, s)| *s).collect();
            Some((g[0].0.lr as f64, MeanSd::of(&v)?))
        })
        .collect();
    (rho, ms.first().map(|x| x.1), ms.last().map(|x| x.1), ms)
}

fn trend_verdict(rho: Option<f64>, lo: Option<MeanSd>, hi: Option<MeanSd>) -> Verdict {
    match (rho, lo, hi) {
        (Some(r), Some(lo), Some(hi)) => {
            if r <= -RHO && hi.hi() < lo.lo() {
                Verdict::Holds
            } else if r >= RHO && hi.lo() > lo.hi() {
                Verdict::DoesNotHold
            } else {
                Verdict::Inconclusive
            }
        }
        _ => Verdict::Inconclusive,
    }
}

/// The runs claim 3 fits, with their final sharpness: the crossing runs that neither diverged
/// nor collapsed, at the learning rates where they are at least half the seeds. Also returns the
/// learning rates left out, with why.
pub fn claim3_runs(runs: &[RunRecord]) -> (Vec<(&RunRecord, f64)>, Vec<String>) {
    let mut groups: BTreeMap<u32, Vec<(&RunRecord, RunStats)>> = BTreeMap::new();
    for r in runs {
        groups
            .entry(r.lr.to_bits())
            .or_default()
            .push((r, run_stats(r)));
    }
    let mut valid: Vec<(&RunRecord, f64)> = Vec::new();
    let mut dropped = Vec::new();
    for g in groups.values() {
        let ok: Vec<(&RunRecord, f64)> = g
            .iter()
            .filter(|(r, s)| used(r, true) && s.crossed)
            .filter_map(|(r, s)| Some((*r, s.final_s?)))
            .collect();
        if !ok.is_empty() && 2 * ok.len() >= g.len() {
            valid.extend(ok);
        } else {
            let all: Vec<&RunRecord> = g.iter().map(|(r, _)| *r).collect();
            let nc = g.iter().filter(|(_, s)| s.crossed).count();
            dropped.push(format!(
                "{} ({nc} of {} crossed{})",
                fmt_lr(g[0].0.lr as f64),
                g.len(),
                left_out(&all, true).map_or(String::new(), |w| format!("; {w}"))
            ));
        }
    }
    (valid, dropped)
}

/// Where a median of lr x final sharpness lies against the edge 2 (2/lr in sharpness), as
/// words decided by comparing the number with 2.
pub fn edge_words(median: f64) -> &'static str {
    if median < 2.0 {
        "below 2: the typical run ended flatter than the stability threshold 2/lr requires"
    } else {
        "at or above 2: the typical run ended at or beyond the edge of stability 2/lr, not below it"
    }
}

/// Claim 3 over full-batch GD runs.
pub fn claim3(runs: &[RunRecord]) -> Assessment {
    let (valid, dropped) = claim3_runs(runs);
    let n_lrs = distinct(&valid.iter().map(|(r, _)| *r).collect::<Vec<_>>(), |r| {
        r.lr as f64
    })
    .len();
    let (rho, lo, hi, per_lr) = sharpness_trend(&valid);
    let text: Vec<String> = per_lr
        .iter()
        .map(|(lr, m)| {
            let seeds = runs.iter().filter(|r| r.lr as f64 == *lr).count();
            format!(
                "{}: {} (lr x S {:.2}, n={} of {seeds})",
                fmt_lr(*lr),
                m.show(2),
                m.mean * lr,
                m.n
            )
        })
        .collect();
    let lxs: Vec<f64> = valid.iter().map(|(r, s)| s * r.lr as f64).collect();
    let all: Vec<&RunRecord> = runs.iter().collect();
    let crossed_out: Vec<&RunRecord> = with_stats(runs)
        .into_iter()
        .filter(|(r, s)| s.crossed && !used(r, true))
        .map(|(r, _)| r)
        .collect();
    let mut ev = format!(
        "Final sharpness per lr past the threshold, over the crossing runs that neither diverged nor collapsed \
         (mean ± sd over {}): {}. Crossing runs excluded: {}. Learning rates excluded (fewer than half the seeds qualify): {}. \
         Spearman rho(lr, final sharpness) = {} over these {} runs. lr x final sharpness over them: {}",
        seeds_text(&all),
        if text.is_empty() { "none".to_string() } else { text.join("; ") },
        left_out(&crossed_out, true).unwrap_or_else(|| "none".into()),
        if dropped.is_empty() { "none".to_string() } else { dropped.join(", ") },
        fmt_opt(rho, 2),
        valid.len(),
        MeanSd::of(&lxs).map_or("n/a".into(), |m| m.show(2)),
    );
    match median(&lxs) {
        Some(m) => {
            let lo = lxs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = lxs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = write!(
                ev,
                ", median {m:.2} (range {lo:.2}..{hi:.2}), {}.",
                edge_words(m)
            );
        }
        None => ev.push('.'),
    }
    if n_lrs < MIN_RUNS {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Fewer than {MIN_RUNS} learning rates past the threshold."),
        );
    }
    assess(trend_verdict(rho, lo, hi), ev)
}

/// Claim 4 over full-batch GD runs with lambda_min measurements.
pub fn claim4(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let eligible: Vec<&(&RunRecord, RunStats)> = st
        .iter()
        .filter(|(r, s)| {
            used(r, true) && s.crossed && s.lmin_n.0 >= MIN_WINDOWS && s.lmin_n.1 >= MIN_WINDOWS
        })
        .collect();
    let ratios: Vec<f64> = eligible
        .iter()
        .filter_map(|(_, s)| Some((s.lmin_unstable?, s.lmin_stable?)))
        .filter(|(_, b)| *b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    let above = ratios.iter().filter(|&&r| r > 1.0).count();
    let hocm: Vec<f64> = eligible
        .iter()
        .filter_map(|(_, s)| Some((s.hocm_unstable?, s.hocm_stable?)))
        .filter(|(_, b)| *b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    let crossed: Vec<&(&RunRecord, RunStats)> = st
        .iter()
        .filter(|(r, s)| used(r, true) && s.crossed)
        .collect();
    let crossed_out: Vec<&RunRecord> = st
        .iter()
        .filter(|(_, s)| s.crossed)
        .map(|(r, _)| *r)
        .collect();
    let episodes: usize = crossed.iter().map(|(_, s)| s.episodes_ended).sum();
    let lower: usize = crossed.iter().map(|(_, s)| s.episodes_lmin_lower).sum();
    let sharp_lower: usize = crossed.iter().map(|(_, s)| s.episodes_sharp_lower).sum();
    let ev = format!(
        "|lambda_min| unstable/stable window ratio > 1 in {above}/{} crossing runs (the crossing runs that neither diverged nor collapsed and have \
         >= {MIN_WINDOWS} measurements of each kind; median {}; {}); |T(v,v,v)| ratio median {}. {episodes} ended episodes in the {} \
         crossing runs that neither diverged nor collapsed ({}): {lower} ended with |lambda_min| below its start value, {sharp_lower} with lower sharpness.",
        ratios.len(),
        fmt_opt(median(&ratios), 2),
        seeds_text(&eligible.iter().map(|(r, _)| *r).collect::<Vec<_>>()),
        fmt_opt(median(&hocm), 2),
        crossed.len(),
        left_out(&crossed_out, true).map_or("none left out".into(), |w| format!("{w}, excluded")),
    );
    let a = if ratios.len() < MIN_RUNS {
        Verdict::Inconclusive
    } else if frac(above, ratios.len()) >= FRAC_HOLD
        && median(&ratios).is_some_and(|m| m >= C4_RATIO)
    {
        Verdict::Holds
    } else if frac(above, ratios.len()) <= FRAC_FAIL {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    let b = if episodes < MIN_RUNS {
        Verdict::Inconclusive
    } else if frac(lower, episodes) >= FRAC_HOLD {
        Verdict::Holds
    } else if frac(lower, episodes) <= FRAC_FAIL {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    assess(combine(&[a, b]), ev)
}

/// Claim 5 over a learning-rate grid with seeds.
pub fn claim5(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let groups = by_lr(&st);
    struct G {
        lr: f64,
        acc: Option<MeanSd>,
        train: Option<MeanSd>,
        crossed: bool,
        diverged: usize,
        note: String,
    }
    let gs: Vec<G> = groups
        .values()
        .map(|g| {
            // Final accuracies over the runs that did not diverge.
            let acc: Vec<f64> = g
                .iter()
                .filter(|(r, _)| !r.diverged)
                .filter_map(|(r, _)| r.test_acc.map(f64::from))
                .collect();
            let tr: Vec<f64> = g
                .iter()
                .filter(|(r, _)| !r.diverged)
                .filter_map(|(r, _)| r.train_acc.map(f64::from))
                .collect();
            let nc = g.iter().filter(|(_, s)| s.crossed).count();
            let all: Vec<&RunRecord> = g.iter().map(|(r, _)| *r).collect();
            G {
                lr: g[0].0.lr as f64,
                acc: MeanSd::of(&acc),
                train: MeanSd::of(&tr),
                crossed: 2 * nc > g.len(),
                diverged: g.iter().filter(|(r, _)| r.diverged).count(),
                note: n_of(&all, false),
            }
        })
        .collect();
    let lr_c = gs.iter().find(|g| g.crossed).map(|g| g.lr);
    let table: Vec<String> = gs
        .iter()
        .map(|g| {
            format!(
                "{}{}: {} (train {}){}",
                fmt_lr(g.lr),
                if g.crossed { "*" } else { "" },
                g.acc.map_or("n/a".into(), |m| m.show(3)),
                g.train.map_or("n/a".into(), |m| m.show(3)),
                g.note
            )
        })
        .collect();
    let all: Vec<&RunRecord> = runs.iter().collect();
    let mut ev = format!(
        "Test accuracy per lr over the runs that did not diverge (mean ± sd over {}; * = most seeds crossed the threshold): {}.",
        seeds_text(&all),
        table.join("; ")
    );
    let Some(lr_c) = lr_c else {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} No learning rate crossed the threshold."),
        );
    };
    let _ = write!(ev, " lr_c = {}.", fmt_lr(lr_c));
    // Only learning rates that fit the training set are compared: the test accuracy of an
    // under-trained (or collapsed) run says nothing about generalization.
    // A learning rate at which a seed diverged does not reliably train: not compared.
    let fitted: Vec<&G> = gs
        .iter()
        .filter(|g| g.diverged == 0 && g.train.is_some_and(|t| t.mean >= C5_FIT))
        .collect();
    let _ = write!(
        ev,
        " Learning rates that fit the training set (no seed diverged, mean train acc >= {C5_FIT}): {}.",
        if fitted.is_empty() {
            "none".to_string()
        } else {
            fitted
                .iter()
                .map(|g| fmt_lr(g.lr))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if fitted.len() < MIN_RUNS || fitted.iter().any(|g| g.acc.is_none_or(|m| m.n < 2)) {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Needs >= {MIN_RUNS} such learning rates with >= 2 seeds each."),
        );
    }
    let acc = |g: &G| {
        g.acc.unwrap_or(MeanSd {
            mean: f64::NAN,
            sd: 0.0,
            n: 0,
        })
    };
    let below: Vec<&&G> = fitted.iter().filter(|g| g.lr < lr_c).collect();
    let above: Vec<&&G> = fitted.iter().filter(|g| g.lr >= lr_c).collect();
    let bg = fitted
        .iter()
        .copied()
        .max_by(|a, b| acc(a).mean.total_cmp(&acc(b).mean));
    let (first, last) = (fitted[0], fitted[fitted.len() - 1]);
    if let Some(b) = bg {
        let _ = write!(ev, " Best of these: lr {}.", fmt_lr(b.lr));
    }
    // Stable training better: some sub-threshold lr beats every crossing lr beyond the spread.
    if !above.is_empty()
        && below
            .iter()
            .any(|b| above.iter().all(|a| acc(b).lo() > acc(a).hi()))
    {
        return assess(Verdict::DoesNotHold, ev);
    }
    let holds = bg.is_some_and(|b| {
        b.lr >= lr_c
            && b.lr > first.lr
            && b.lr < last.lr
            && acc(b).lo() > acc(first).hi()
            && acc(b).lo() > acc(last).hi()
    });
    assess(
        if holds {
            Verdict::Holds
        } else {
            Verdict::Inconclusive
        },
        ev,
    )
}

/// Claim 6 over a batch-size sweep with lr proportional to the batch size. The trend is taken
/// over the minibatch runs alone: the full-batch runs (claim 3's setting) are shown, but must
/// not carry a claim about minibatches.
pub fn claim6(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let valid: Vec<(&RunRecord, f64)> = st
        .iter()
        .filter(|(r, _)| !r.diverged && r.is_minibatch())
        .filter_map(|(r, s)| Some((*r, s.final_s?)))
        .collect();
    let groups = by_lr(&st);
    let mut mini_crossed = Vec::new();
    let mut rows = Vec::new();
    for g in groups.values() {
        let r0 = g[0].0;
        let nc = g.iter().filter(|(_, s)| s.crossed).count();
        if r0.is_minibatch() && 2 * nc > g.len() {
            mini_crossed.push(r0.batch_label());
        }
        let ok = |f: &dyn Fn(&RunRecord, &RunStats) -> Option<f64>| -> Vec<f64> {
            g.iter()
                .filter(|(r, _)| !r.diverged)
                .filter_map(|(r, s)| f(r, s))
                .collect()
        };
        let fs = ok(&|_, s| s.final_s);
        let acc = ok(&|r, _| r.test_acc.map(f64::from));
        let mx = ok(&|_, s| s.max_lxs);
        let all: Vec<&RunRecord> = g.iter().map(|(r, _)| *r).collect();
        rows.push(format!(
            "B={} (lr {}): S_final {}, max lr x S {}, crossed {nc}/{}, test acc {}{}",
            r0.batch_label(),
            fmt_lr(r0.lr as f64),
            MeanSd::of(&fs).map_or("n/a".into(), |m| m.show(2)),
            MeanSd::of(&mx).map_or("n/a".into(), |m| m.show(2)),
            g.len(),
            MeanSd::of(&acc).map_or("n/a".into(), |m| m.show(3)),
            n_of(&all, false)
        ));
    }
    let (rho, lo, hi, per_lr) = sharpness_trend(&valid);
    let all: Vec<&RunRecord> = runs.iter().collect();
    let ev = format!(
        "{} ({}; means over the runs that did not diverge). Over the minibatch runs alone (B < N): Spearman rho(lr, final sharpness) \
         = {} over {} runs, {} minibatch sizes; final sharpness at the smallest lr {}, at the largest minibatch lr {}. \
         Minibatch sizes that became unstable (most seeds crossed): {}.",
        rows.join("; "),
        seeds_text(&all),
        fmt_opt(rho, 2),
        valid.len(),
        per_lr.len(),
        lo.map_or("n/a".into(), |m| m.show(2)),
        hi.map_or("n/a".into(), |m| m.show(2)),
        if mini_crossed.is_empty() { "none".to_string() } else { mini_crossed.join(", ") }
    );
    if per_lr.len() < MIN_RUNS {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Fewer than {MIN_RUNS} minibatch sizes."),
        );
    }
    let v = match trend_verdict(rho, lo, hi) {
        Verdict::Holds if mini_crossed.is_empty() => Verdict::Inconclusive,
        v => v,
    };
    assess(v, ev)
}

/// Claim 7 over Adam, clipped Adam (several clip values) and RMSProp runs.
pub fn claim7(runs: &[RunRecord]) -> Assessment {
    let st = with_stats(runs);
    let mut groups: BTreeMap<(String, u32), Vec<&(&RunRecord, RunStats)>> = BTreeMap::new();
    for it in &st {
        groups
            .entry((it.0.opt.clone(), it.0.clip.map_or(0, f32::to_bits)))
            .or_default()
            .push(it);
    }
    struct G {
        label: String,
        clipped: bool,
        spikes: Option<MeanSd>,
        acc: Option<MeanSd>,
        pre: Option<MeanSd>,
        threshold: f32,
        n: usize,
        note: String,
    }
    let gs: Vec<G> = groups
        .iter()
        .map(|((opt, _), g)| {
            let r0 = g[0].0;
            // Means over the runs that did not diverge.
            let ok: Vec<&&(&RunRecord, RunStats)> = g.iter().filter(|(r, _)| !r.diverged).collect();
            let spikes: Vec<f64> = ok.iter().map(|(_, s)| s.spikes as f64).collect();
            let acc: Vec<f64> = ok
                .iter()
                .filter_map(|(r, _)| r.test_acc.map(f64::from))
                .collect();
            let pre: Vec<f64> = ok
                .iter()
                .filter_map(|(r, s)| s.final_precond.map(|p| p / r.threshold as f64))
                .collect();
            let all: Vec<&RunRecord> = g.iter().map(|(r, _)| *r).collect();
            G {
                label: match r0.clip {
                    Some(c) => format!("{opt} c={c}"),
                    None => opt.clone(),
                },
                clipped: opt.starts_with("clipped-adam"),
                spikes: MeanSd::of(&spikes),
                acc: MeanSd::of(&acc),
                pre: MeanSd::of(&pre),
                threshold: r0.threshold,
                n: ok.len(),
                note: n_of(&all, false),
            }
        })
        .collect();
    let table: Vec<String> = gs
        .iter()
        .map(|g| {
            format!(
                "{}: test acc {}, spikes {}, final preconditioned sharpness / {} {}{}",
                g.label,
                g.acc.map_or("n/a".into(), |m| m.show(3)),
                g.spikes.map_or("n/a".into(), |m| m.show(1)),
                fmt_lr(g.threshold as f64),
                g.pre.map_or("n/a".into(), |m| m.show(2)),
                g.note
            )
        })
        .collect();
    let all: Vec<&RunRecord> = runs.iter().collect();
    let ev = format!(
        "{} ({}; preconditioned sharpness = lambda_max of the Hessian scaled by the optimizer's per-coordinate step sizes, \
         lr x lambda_max(P^-1 H), divided by its stability threshold).",
        table.join("; "),
        seeds_text(&all)
    );
    let adam = gs.iter().find(|g| g.label == "adam");
    let clipped: Vec<&G> = gs.iter().filter(|g| g.clipped).collect();
    let (Some(adam), false) = (adam, clipped.is_empty()) else {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Needs Adam and at least one clipped-Adam run."),
        );
    };
    let (Some(asp), Some(aacc)) = (adam.spikes, adam.acc) else {
        return assess(Verdict::Inconclusive, format!("{ev} Adam has no results."));
    };
    let half = |n: usize| n.div_ceil(2);
    let restoring: Vec<&G> = clipped
        .iter()
        .copied()
        .filter(|g| g.spikes.is_some_and(|s| s.lo() > asp.hi()))
        .collect();
    let not_more = clipped
        .iter()
        .filter(|g| g.spikes.is_some_and(|s| s.mean <= asp.mean))
        .count();
    let a = if restoring.len() >= half(clipped.len()) {
        Verdict::Holds
    } else if restoring.is_empty() && not_more >= half(clipped.len()) {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    let better = restoring
        .iter()
        .filter(|g| g.acc.is_some_and(|s| s.lo() > aacc.hi()))
        .count();
    let worse = restoring
        .iter()
        .filter(|g| g.acc.is_some_and(|s| s.hi() < aacc.lo()))
        .count();
    let seeds_ok = adam.n >= 2 && restoring.iter().all(|g| g.n >= 2);
    let k = restoring.len();
    let b = if k == 0 || !seeds_ok {
        Verdict::Inconclusive
    } else if better >= half(k) && worse == 0 {
        Verdict::Holds
    } else if worse >= half(k) && better == 0 {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    };
    let names = |v: &[&G]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|g| g.label.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    assess(
        combine(&[a, b]),
        format!(
            "{ev} Clip values that restore instabilities (more spikes than Adam beyond the spread): {k}/{} ({}); of these, with \
             better test accuracy than Adam beyond the spread: {better}/{k}, worse beyond the spread: {worse}/{k}.",
            clipped.len(),
            names(&restoring)
        ),
    )
}

/// Claim 8 over diagonal-network runs.
pub fn claim8(runs: &[DiagRun]) -> Assessment {
    let stable: Vec<&DiagRun> = runs.iter().filter(|r| r.stable()).collect();
    let unstable: Vec<&DiagRun> = runs.iter().filter(|r| !r.stable()).collect();
    let stable_ok = |r: &DiagRun| {
        r.converged
            && (r.c_final - r.c0).abs() <= C8_TOL * r.c0.abs()
            && (r.final_lambda - r.lambda_ref).abs() <= C8_TOL * r.lambda_ref
            && r.angle_from_flow_deg < C8_ANGLE
    };
    let unstable_ok = |r: &DiagRun| {
        r.converged
            && r.final_lambda <= 2.0 / r.lr as f64 * (1.0 + C8_LAMBDA_TOL)
            && r.c_final.abs() < C8_BALANCE * r.c0.abs()
            && r.angle_from_flow_deg > C8_ANGLE
    };
    let s_ok = stable.iter().filter(|r| stable_ok(r)).count();
    let u_ok = unstable.iter().filter(|r| unstable_ok(r)).count();
    // Pooled within-start rank correlation: ranks are taken per start, then correlated.
    let mut starts: BTreeMap<(u32, u32), Vec<&DiagRun>> = BTreeMap::new();
    for r in unstable.iter().filter(|r| r.converged) {
        starts
            .entry((r.start[0].to_bits(), r.start[1].to_bits()))
            .or_default()
            .push(r);
    }
    let (mut xr, mut yr) = (Vec::new(), Vec::new());
    for g in starts.values() {
        let x: Vec<f64> = g.iter().map(|r| r.lr as f64).collect();
        let y: Vec<f64> = g.iter().map(|r| r.final_lambda).collect();
        let (rx, ry) = (super::stats::ranks(&x), super::stats::ranks(&y));
        let n = g.len() as f64;
        // Centre the ranks within the start so that starts do not mix.
        xr.extend(rx.iter().map(|v| v - (n + 1.0) / 2.0));
        yr.extend(ry.iter().map(|v| v - (n + 1.0) / 2.0));
    }
    let rho = pearson(&xr, &yr);
    let examples: Vec<String> = unstable
        .iter()
        .filter(|r| r.converged)
        .take(4)
        .map(|r| {
            format!(
                "m={} (lr {}): lambda_max {} at the start -> {:.2} at the end (lambda_ref {:.2}, 2/lr {:.2}), |c| {:.2} -> {:.2}, \
                 eigenvector {:.1} deg from the gradient-flow minimum's",
                r.multiple,
                fmt_lr(r.lr as f64),
                fmt_opt(r.points.first().map(|q| q.lambda_max as f64), 2),
                r.final_lambda,
                r.lambda_ref,
                2.0 / r.lr as f64,
                r.c0.abs(),
                r.c_final.abs(),
                r.angle_from_flow_deg
            )
        })
        .collect();
    let ev = format!(
        "{} starts x {} learning rates. Stable runs passing: {s_ok}/{}; unstable runs passing: {u_ok}/{} ({} diverged); \
         pooled within-start rho(lr, final lambda_max) = {}. E.g. {}.",
        starts.len().max(runs.iter().map(|r| (r.start[0].to_bits(), r.start[1].to_bits())).collect::<std::collections::BTreeSet<_>>().len()),
        runs.iter().map(|r| r.multiple.to_bits()).collect::<std::collections::BTreeSet<_>>().len(),
        stable.len(),
        unstable.len(),
        unstable.iter().filter(|r| r.diverged).count(),
        fmt_opt(rho, 2),
        if examples.is_empty() { "none".to_string() } else { examples.join("; ") }
    );
    if stable.is_empty() || unstable.len() < MIN_RUNS {
        return assess(
            Verdict::Inconclusive,
            format!("{ev} Needs stable runs and >= {MIN_RUNS} unstable runs."),
        );
    }
    let v = if s_ok < stable.len() || frac(u_ok, unstable.len()) <= FRAC_FAIL {
        Verdict::DoesNotHold
    } else if frac(u_ok, unstable.len()) >= FRAC_HOLD && rho.is_some_and(|r| r <= -RHO) {
        Verdict::Holds
    } else {
        Verdict::Inconclusive
    };
    assess(v, ev)
}

/// Pearson correlation (None with fewer than 3 points or no variance).
fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 3 || x.len() != y.len() {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests;
