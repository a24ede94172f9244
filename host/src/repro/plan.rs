//! What `edgewise repro` runs at each scale: four grids of training runs on the bundled data and
//! the diagonal-network runs. The grids are expanded with [`crate::sweep::expand`], so the run
//! directories carry sweep-style names (`lr=0.4_seed=1`, `bs=50_lr=0.02_seed=0`, ...).

use crate::config::TrainConfig;
use crate::sweep::{expand, Grid, GridRun};

/// How large a reproduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// A smoke test of a few seconds (the test suite's).
    Tiny,
    /// The default: about two minutes on 2 cores.
    Quick,
    /// More seeds, learning rates and steps: about 9 minutes on 2 cores.
    Full,
}

impl Scale {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Quick => "quick",
            Scale::Full => "full",
        }
    }
}

/// Which grid an experiment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Full-batch GD over learning rates and seeds: tanh MLP, MSE, MNIST-1D (EoS-study style).
    MseLr,
    /// Full-batch GD over learning rates and seeds: ReLU MLP, cross-entropy, MNIST subset (paper).
    CeLr,
    /// SGD over batch sizes with lr proportional to the batch size (paper setting).
    CeSgd,
    /// Adam, clipped Adam and RMSProp (paper setting).
    CeAdaptive,
}

/// One grid of training runs.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Which one.
    pub kind: Kind,
    /// Directory under the output directory.
    pub dir: &'static str,
    /// Title.
    pub title: &'static str,
    /// Data and model in words.
    pub setting: String,
    /// The grid in words.
    pub grid_text: String,
    /// The base configuration.
    pub base: TrainConfig,
    /// The runs.
    pub runs: Vec<GridRun>,
}

/// The diagonal-network runs.
#[derive(Clone, Debug)]
pub struct DiagPlan {
    /// Starts `theta_0`.
    pub starts: Vec<[f32; 2]>,
    /// Learning-rate multiples of `2 / lambda_ref`.
    pub multiples: Vec<f64>,
    /// GD steps.
    pub steps: usize,
}

/// Everything a scale runs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scale.
    pub scale: Scale,
    /// The grids.
    pub experiments: Vec<Experiment>,
    /// Experiment 8.
    pub diag: DiagPlan,
}

fn geometric(start: f64, factor: f64, count: usize) -> Vec<f32> {
    // Rounded to 4 significant digits, so names and configurations stay readable.
    let mut v = Vec::with_capacity(count);
    let mut x = start;
    for _ in 0..count {
        let r: f64 = format!("{x:.3e}").parse().unwrap_or(x);
        v.push(r as f32);
        x *= factor;
    }
    v
}

fn seeds(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// The tanh-MSE MNIST-1D base configuration.
fn mse_base(s: Scale) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.name = "mnist1d".into();
    let (train, test) = if s == Scale::Tiny {
        (100, 100)
    } else {
        (1000, 1000)
    };
    c.data.train_size = Some(train);
    c.data.test_size = Some(test);
    c.model.arch = "40-32-32-10".into();
    c.model.act = "tanh".into();
    c.model.loss = "mse".into();
    c.optim.opt = "gd".into();
    c.run.steps = Some(match s {
        Scale::Tiny => 40,
        Scale::Quick => 800,
        Scale::Full => 2500,
    });
    c.run.eval_every = if s == Scale::Tiny { 5 } else { 20 };
    c.curvature.eig_every = if s == Scale::Tiny { 5 } else { 10 };
    c.curvature.eig_method = "lanczos".into();
    c.curvature.eig_k = 3;
    c.curvature.hocm = true;
    // 100 steps, not the 20 of the authors' method: at 20 the second and third Ritz vectors
    // were unconverged (subspace score off by up to 0.33, 0.08 on average, at lr 0.66) and
    // lambda_min off by 8% (median); 60 steps give the subspace score exactly, 100 also
    // lambda_min (BENCHMARKS.md, "Lanczos length of the repro's spectra").
    c.curvature.lanczos_steps = 100;
    c.curvature.track_every = 1;
    c.curvature.hessian_subset = Some(if s == Scale::Tiny { 50 } else { 250 });
    c
}

/// The paper-shaped base: MNIST, 100 training and 20 test images per class, 784-32-32-32-10 ReLU,
/// cross-entropy.
fn ce_base(s: Scale) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.name = "mnist5k".into();
    let (pc, tpc) = if s == Scale::Tiny { (5, 2) } else { (100, 20) };
    c.data.per_class = Some(pc);
    c.data.test_per_class = Some(tpc);
    c.model.arch = "784-32-32-32-10".into();
    c.model.act = "relu".into();
    c.model.loss = "ce".into();
    c.optim.opt = "gd".into();
    c.curvature.hessian_subset = Some(if s == Scale::Tiny { 20 } else { 200 });
    if s == Scale::Tiny {
        c.curvature.power_max_iter = 20;
    }
    c
}

fn ce_n_train(s: Scale) -> usize {
    if s == Scale::Tiny {
        50
    } else {
        1000
    }
}

fn mse_lr(s: Scale) -> Experiment {
    let base = mse_base(s);
    let (lrs, sd) = match s {
        Scale::Tiny => (vec![0.3, 0.9, 1.5], seeds(2)),
        Scale::Quick => (geometric(0.1, 1.6, 6), seeds(3)),
        Scale::Full => (geometric(0.0625, 1.6, 8), seeds(5)),
    };
    let grid = Grid {
        lrs,
        seeds: sd,
        ..Default::default()
    };
    Experiment {
        kind: Kind::MseLr,
        dir: "mse-lr",
        title: "Full-batch GD, tanh MLP, MSE, MNIST-1D",
        setting: format!(
            "MNIST-1D ({} train / {} test), MLP 40-32-32-10 tanh, MSE, PyTorch init",
            base.data.train_size.unwrap_or(0),
            base.data.test_size.unwrap_or(0)
        ),
        grid_text: grid_text(&base, &grid, "full-batch GD"),
        runs: expand(&base, &grid),
        base,
    }
}

fn ce_lr(s: Scale) -> Experiment {
    let mut base = ce_base(s);
    base.run.steps = Some(match s {
        Scale::Tiny => 20,
        Scale::Quick => 400,
        Scale::Full => 400,
    });
    base.run.eval_every = 10;
    base.curvature.eig_every = match s {
        Scale::Tiny => 5,
        Scale::Quick => 20,
        Scale::Full => 10,
    };
    base.curvature.eig_method = "lanczos".into();
    base.curvature.eig_k = 3;
    // 60 steps: lambda_min within 3e-4 of a 160-step reference (8% off at 20 steps; the
    // subspace score was already within 1e-2); 100 would cost a third more time.
    base.curvature.lanczos_steps = 60;
    // No T(v,v,v): ReLU's kinks fall inside its finite-difference step (`--hocm` refuses relu).
    base.curvature.track_every = 1;
    let (lrs, sd) = match s {
        Scale::Tiny => (vec![0.2, 0.8], seeds(1)),
        Scale::Quick => (geometric(0.05, 2.0, 6), seeds(3)),
        Scale::Full => (geometric(0.05, 1.6, 8), seeds(5)),
    };
    let grid = Grid {
        lrs,
        seeds: sd,
        ..Default::default()
    };
    Experiment {
        kind: Kind::CeLr,
        dir: "ce-lr",
        title: "Full-batch GD, ReLU MLP, cross-entropy, MNIST subset (the paper's setting)",
        setting: ce_setting(&base),
        grid_text: grid_text(&base, &grid, "full-batch GD"),
        runs: expand(&base, &grid),
        base,
    }
}

fn ce_setting(base: &TrainConfig) -> String {
    format!(
        "MNIST ({} train / {} test images per class), MLP 784-32-32-32-10 ReLU, cross-entropy, PyTorch init",
        base.data.per_class.unwrap_or(0),
        base.data.test_per_class.unwrap_or(0)
    )
}

fn ce_sgd(s: Scale) -> Experiment {
    let mut base = ce_base(s);
    let n = ce_n_train(s);
    let (lr_full, epochs, bs, sd): (f64, u64, Vec<usize>, Vec<u64>) = match s {
        Scale::Tiny => (0.4, 4, vec![n, 10], seeds(1)),
        Scale::Quick => (0.4, 150, vec![n, 250, 100, 25], seeds(3)),
        Scale::Full => (0.1, 400, vec![n, 500, 250, 100, 25, 10], seeds(3)),
    };
    base.run.epochs = Some(epochs);
    base.run.steps = None;
    base.curvature.eig_method = "warm-lanczos".into();
    base.curvature.eig_k = 1;
    let mut runs = Vec::new();
    for &b in &bs {
        let mut cfg = base.clone();
        let bpe = n.div_ceil(b) as u64;
        // Curvature every 10 epochs (every 5 at full batch, where an epoch is one step), test
        // and full-training evaluation every 5 epochs.
        cfg.curvature.eig_every = if b >= n {
            if s == Scale::Tiny {
                1
            } else {
                5
            }
        } else {
            bpe * if s == Scale::Tiny { 1 } else { 10 }
        };
        cfg.run.eval_every = (bpe * if s == Scale::Tiny { 1 } else { 5 }).max(1);
        let lr = (lr_full * b as f64 / n as f64) as f32;
        let grid = Grid {
            batch_sizes: vec![if b >= n { None } else { Some(b) }],
            lrs: vec![lr],
            seeds: sd.clone(),
            ..Default::default()
        };
        for mut r in expand(&cfg, &grid) {
            r.index = runs.len();
            runs.push(r);
        }
    }
    Experiment {
        kind: Kind::CeSgd,
        dir: "ce-sgd",
        title: "SGD over batch sizes, lr = lr_full * B / N (the paper's data, model and lr scaling)",
        setting: ce_setting(&base),
        grid_text: format!(
            "batch sizes {} (N = {n}), lr = {lr_full} * B / {n}, {epochs} epochs, seeds {}; warm-started Lanczos every 10 epochs \
             (every 5 steps at full batch) on a {}-sample Hessian subset",
            bs.iter().map(|b| if *b >= n { "full".to_string() } else { b.to_string() }).collect::<Vec<_>>().join(", "),
            seeds_range(&sd),
            base.curvature.hessian_subset.unwrap_or(n)
        ),
        runs,
        base,
    }
}

fn ce_adaptive(s: Scale) -> Experiment {
    let mut base = ce_base(s);
    base.optim.lr = 1e-3;
    base.optim.beta1 = 0.9;
    base.optim.beta2 = Some(0.99);
    base.optim.eps = 1e-8;
    base.optim.clip_mode = "upper".into();
    base.run.steps = Some(match s {
        Scale::Tiny => 15,
        Scale::Quick => 150,
        Scale::Full => 400,
    });
    base.run.eval_every = 10;
    base.curvature.eig_method = "warm-lanczos".into();
    base.curvature.eig_k = 1;
    base.curvature.precond = true;
    base.curvature.eig_every = match s {
        Scale::Tiny => 5,
        Scale::Quick => 25,
        Scale::Full => 10,
    };
    if s == Scale::Quick {
        base.curvature.hessian_subset = Some(100);
    }
    let (clips, sd) = match s {
        Scale::Tiny => (vec![1e-3], seeds(1)),
        Scale::Quick => (vec![1e-3, 3e-3, 1e-2], seeds(3)),
        Scale::Full => (vec![1e-3, 2e-3, 5e-3, 1e-2, 3e-2], seeds(3)),
    };
    let grid = Grid {
        opts: vec!["adam".into(), "clipped-adam".into(), "rmsprop".into()],
        clips: clips.clone(),
        seeds: sd.clone(),
        ..Default::default()
    };
    Experiment {
        kind: Kind::CeAdaptive,
        dir: "ce-adaptive",
        title: "Adam vs clipped Adam vs RMSProp (the paper's data and model)",
        setting: ce_setting(&base),
        grid_text: format!(
            "full batch, lr {}, beta1 0.9 (Adam), beta2 0.99, eps 1e-8; clipped Adam (upper bound: min(sqrt v, c)) with c in {{{}}}; \
             RMSProp; {} steps, seeds {}; sharpness by warm-started Lanczos and preconditioned sharpness by warm-started power iteration every {} steps on a \
             {}-sample Hessian subset",
            base.optim.lr,
            clips.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
            base.run.steps.unwrap_or(0),
            seeds_range(&sd),
            base.curvature.eig_every,
            base.curvature.hessian_subset.unwrap_or(0)
        ),
        runs: expand(&base, &grid),
        base,
    }
}

fn seeds_range(s: &[u64]) -> String {
    match s {
        [] => String::new(),
        [one] => one.to_string(),
        _ => format!("{}-{}", s[0], s[s.len() - 1]),
    }
}

fn grid_text(base: &TrainConfig, g: &Grid, what: &str) -> String {
    let c = &base.curvature;
    format!(
        "{what}, lr in {{{}}}, seeds {}, {} steps; {} (k = {}{}) every {} steps on a {}-sample Hessian subset",
        g.lrs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
        seeds_range(&g.seeds),
        base.run.steps.unwrap_or(0),
        match c.eig_method.as_str() {
            "lanczos" => format!("{}-step Lanczos", c.lanczos_steps),
            "warm-lanczos" => "warm-started Lanczos".into(),
            _ => "warm-started power iteration".into(),
        },
        c.eig_k,
        if c.hocm { ", with T(v,v,v)" } else { "" },
        c.eig_every,
        c.hessian_subset.unwrap_or(0)
    ) + &if c.track_every > 0 {
        format!(
            "; the sharpness alone by warm-started Lanczos every {} step(s)",
            c.track_every
        )
    } else {
        String::new()
    }
}

/// A rough cost of a run (multiply-adds), used only to start the longest runs first.
pub fn cost(cfg: &TrainConfig) -> f64 {
    let widths = crate::config::parse_widths(&cfg.model.arch).unwrap_or_default();
    let params: f64 = widths.windows(2).map(|w| (w[0] * w[1] + w[1]) as f64).sum();
    let n = match (cfg.data.per_class, cfg.data.train_size) {
        (Some(pc), _) => pc * 10,
        (None, Some(t)) => t,
        _ => 1000,
    } as f64;
    let b = cfg.optim.batch_size.map_or(n, |b| (b as f64).min(n));
    let steps = match (cfg.run.steps, cfg.run.epochs) {
        (Some(s), _) => s as f64,
        (None, Some(e)) => e as f64 * (n / b).ceil(),
        _ => crate::train::DEFAULT_STEPS as f64,
    };
    let c = &cfg.curvature;
    let per_measure = if c.eig_method == "lanczos" {
        c.lanczos_steps as f64 + 2.0
    } else {
        25.0
    };
    let per_measure = if cfg.optim.opt == "gd" || cfg.optim.opt == "sgd" {
        per_measure
    } else {
        2.0 * per_measure
    };
    let measures = if c.eig_every > 0 {
        steps / c.eig_every as f64
    } else {
        0.0
    };
    let subset = c.hessian_subset.map_or(n, |h| (h as f64).min(n));
    let tracked = if c.track_every > 0 {
        steps / c.track_every as f64 * 5.0
    } else {
        0.0
    };
    params * (steps * (b + 20.0) + (measures * per_measure + tracked) * subset * 2.5)
}

/// The plan of a scale.
pub fn plan(scale: Scale) -> Plan {
    let diag = match scale {
        Scale::Tiny => DiagPlan {
            starts: vec![[4.0, 0.1]],
            multiples: vec![0.5, 0.9, 1.1, 1.25, 1.4],
            steps: 3000,
        },
        _ => DiagPlan {
            starts: vec![[4.0, 0.1], [3.0, 0.2], [5.0, 0.05]],
            multiples: vec![0.5, 0.9, 1.1, 1.25, 1.4, 1.6, 1.8],
            steps: 3000,
        },
    };
    Plan {
        scale,
        experiments: vec![
            mse_lr(scale),
            ce_lr(scale),
            ce_sgd(scale),
            ce_adaptive(scale),
        ],
        diag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_resolve() {
        for s in [Scale::Tiny, Scale::Quick, Scale::Full] {
            let p = plan(s);
            assert_eq!(p.experiments.len(), 4);
            for e in &p.experiments {
                assert!(!e.runs.is_empty());
                for r in &e.runs {
                    r.config.resolve().unwrap();
                }
                let mut names: Vec<&String> = e.runs.iter().map(|r| &r.name).collect();
                names.sort();
                names.dedup();
                assert_eq!(names.len(), e.runs.len(), "{}", e.dir);
            }
        }
        assert_eq!(geometric(0.1, 1.6, 3), vec![0.1, 0.16, 0.256]);
    }
}
