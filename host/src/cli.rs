//! Command-line parsing (clap) and dispatch. Arguments are parsed here and validated into core
//! objects by [`crate::config`]; `main` only maps the result to an exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::TrainConfig;
use crate::error::{Failure, Result, EXIT_DIVERGED};
use crate::train::{self, RunOptions};

/// edgewise: deterministic edge-of-stability experiments with exact curvature tracking.
#[derive(Parser, Debug)]
#[command(name = "edgewise", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network and track its curvature.
    Train(TrainArgs),
}

/// Settings that override the configuration file (all optional).
#[derive(Args, Debug, Clone, Default)]
pub struct Overrides {
    /// Data: digits | mnist1d | mnist5k | csv:PATH | fashion-mnist:DIR | cifar10:DIR | synthetic:teacher[?n=..&dim=..&out=..]
    #[arg(long, help_heading = "Data")]
    pub data: Option<String>,
    /// Training samples (seeded split).
    #[arg(long, help_heading = "Data")]
    pub train_size: Option<usize>,
    /// Test samples.
    #[arg(long, help_heading = "Data")]
    pub test_size: Option<usize>,
    /// Training samples per class (the paper uses 100).
    #[arg(long, help_heading = "Data")]
    pub per_class: Option<usize>,
    /// Test samples per class (default per-class / 5).
    #[arg(long, help_heading = "Data")]
    pub test_per_class: Option<usize>,

    /// Widths, input first: e.g. 64-32-32-10.
    #[arg(long, help_heading = "Model")]
    pub arch: Option<String>,
    /// Hidden activation: identity | tanh | relu | elu | softplus | gelu.
    #[arg(long, help_heading = "Model")]
    pub act: Option<String>,
    /// Loss: mse | ce.
    #[arg(long, help_heading = "Model")]
    pub loss: Option<String>,
    /// Initialisation: pytorch | lecun-normal | kaiming-normal | xavier-uniform.
    #[arg(long, help_heading = "Model")]
    pub init: Option<String>,
    /// Seed of initialisation, split, shuffles and probes.
    #[arg(long, help_heading = "Model")]
    pub seed: Option<u64>,
    /// Math backend: libm | micromath.
    #[arg(long, help_heading = "Model")]
    pub math: Option<String>,

    /// Optimizer: gd | sgd | momentum | nesterov | rmsprop | adam | adamw | clipped-adam | clipped-rmsprop.
    #[arg(long, help_heading = "Optimizer")]
    pub opt: Option<String>,
    /// Learning rate.
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub lr: Option<f32>,
    /// Minibatch size (default: full batch).
    #[arg(long, help_heading = "Optimizer")]
    pub batch_size: Option<usize>,
    /// Drop the last partial batch of each epoch.
    #[arg(long, help_heading = "Optimizer")]
    pub drop_last: bool,
    /// Momentum coefficient (momentum, nesterov).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub momentum: Option<f32>,
    /// Adam beta1.
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub beta1: Option<f32>,
    /// Adam / RMSProp beta2 (default 0.999 for Adam, 0.99 for RMSProp and the clipped variants).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub beta2: Option<f32>,
    /// Denominator epsilon.
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub eps: Option<f32>,
    /// Clip value c of clipped-adam / clipped-rmsprop.
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub clip: Option<f32>,
    /// upper: min(sqrt v, c) (restores instabilities) | lower: max(sqrt v, c).
    #[arg(long, help_heading = "Optimizer")]
    pub clip_mode: Option<String>,
    /// Weight decay (decoupled for adamw).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub weight_decay: Option<f32>,
    /// constant | warmup:N | step:EVERY:FACTOR | warmup:N,step:EVERY:FACTOR.
    #[arg(long, help_heading = "Optimizer")]
    pub schedule: Option<String>,

    /// Optimizer steps (default 1000).
    #[arg(long, help_heading = "Length")]
    pub steps: Option<u64>,
    /// Epochs instead of steps.
    #[arg(long, help_heading = "Length")]
    pub epochs: Option<u64>,
    /// Stop once the training loss is at most X.
    #[arg(long, help_heading = "Length")]
    pub until_loss: Option<f32>,
    /// Stop once the training accuracy is at least A (0..1).
    #[arg(long, help_heading = "Length")]
    pub until_train_acc: Option<f32>,
    /// Test evaluation every K steps (default 10).
    #[arg(long, help_heading = "Length")]
    pub eval_every: Option<u64>,
    /// Checkpoint every K steps (enables --resume).
    #[arg(long, help_heading = "Length")]
    pub checkpoint_every: Option<u64>,

    /// Measure sharpness and the other eigen quantities every K steps (0: never).
    #[arg(long, help_heading = "Curvature")]
    pub eig_every: Option<u64>,
    /// Top-k eigenvectors for the subspace score.
    #[arg(long, help_heading = "Curvature")]
    pub eig_k: Option<usize>,
    /// power (warm-started) | lanczos.
    #[arg(long, help_heading = "Curvature")]
    pub eig_method: Option<String>,
    /// exact (forward-over-reverse) | fd (finite differences).
    #[arg(long, help_heading = "Curvature")]
    pub hvp: Option<String>,
    /// Size of the fixed seeded training subset used for curvature.
    #[arg(long, help_heading = "Curvature")]
    pub hessian_subset: Option<usize>,
    /// Also measure lambda_min by shifted power iteration (Lanczos always gives it).
    #[arg(long, help_heading = "Curvature")]
    pub lambda_min: bool,
    /// Hutchinson trace every K steps.
    #[arg(long, help_heading = "Curvature")]
    pub trace_every: Option<u64>,
    /// Rademacher probes per trace.
    #[arg(long, help_heading = "Curvature")]
    pub trace_probes: Option<u32>,
    /// Third derivative along the top eigenvector (higher-order curvature).
    #[arg(long, help_heading = "Curvature")]
    pub hocm: bool,
    /// Power-iteration relative residual tolerance (default 1e-3).
    #[arg(long, help_heading = "Curvature")]
    pub power_tol: Option<f32>,
    /// Power-iteration product cap (default 100).
    #[arg(long, help_heading = "Curvature")]
    pub power_max_iter: Option<u32>,
    /// Lanczos steps (default 20).
    #[arg(long, help_heading = "Curvature")]
    pub lanczos_steps: Option<usize>,
}

macro_rules! set {
    ($src:expr, $dst:expr) => {
        if let Some(v) = $src.clone() {
            $dst = v;
        }
    };
    ($src:expr, $dst:expr, opt) => {
        if let Some(v) = $src.clone() {
            $dst = Some(v);
        }
    };
}

impl Overrides {
    /// Applies the flags given over `cfg`.
    pub fn apply(&self, cfg: &mut TrainConfig) {
        set!(self.data, cfg.data.name);
        set!(self.train_size, cfg.data.train_size, opt);
        set!(self.test_size, cfg.data.test_size, opt);
        set!(self.per_class, cfg.data.per_class, opt);
        set!(self.test_per_class, cfg.data.test_per_class, opt);
        set!(self.arch, cfg.model.arch);
        set!(self.act, cfg.model.act);
        set!(self.loss, cfg.model.loss);
        set!(self.init, cfg.model.init);
        set!(self.seed, cfg.model.seed);
        set!(self.math, cfg.model.math);
        set!(self.opt, cfg.optim.opt);
        set!(self.lr, cfg.optim.lr);
        set!(self.batch_size, cfg.optim.batch_size, opt);
        if self.drop_last {
            cfg.optim.drop_last = true;
        }
        set!(self.momentum, cfg.optim.momentum);
        set!(self.beta1, cfg.optim.beta1);
        set!(self.beta2, cfg.optim.beta2, opt);
        set!(self.eps, cfg.optim.eps);
        set!(self.clip, cfg.optim.clip, opt);
        set!(self.clip_mode, cfg.optim.clip_mode);
        set!(self.weight_decay, cfg.optim.weight_decay);
        set!(self.schedule, cfg.optim.schedule);
        if self.steps.is_some() {
            cfg.run.steps = self.steps;
            cfg.run.epochs = None;
        }
        if self.epochs.is_some() {
            cfg.run.epochs = self.epochs;
            if self.steps.is_none() {
                cfg.run.steps = None;
            }
        }
        set!(self.until_loss, cfg.run.until_loss, opt);
        set!(self.until_train_acc, cfg.run.until_train_acc, opt);
        set!(self.eval_every, cfg.run.eval_every);
        set!(self.checkpoint_every, cfg.run.checkpoint_every);
        set!(self.eig_every, cfg.curvature.eig_every);
        set!(self.eig_k, cfg.curvature.eig_k);
        set!(self.eig_method, cfg.curvature.eig_method);
        set!(self.hvp, cfg.curvature.hvp);
        set!(self.hessian_subset, cfg.curvature.hessian_subset, opt);
        if self.lambda_min {
            cfg.curvature.lambda_min = true;
        }
        set!(self.trace_every, cfg.curvature.trace_every);
        set!(self.trace_probes, cfg.curvature.trace_probes);
        if self.hocm {
            cfg.curvature.hocm = true;
        }
        set!(self.power_tol, cfg.curvature.power_tol);
        set!(self.power_max_iter, cfg.curvature.power_max_iter);
        set!(self.lanczos_steps, cfg.curvature.lanczos_steps);
    }

    /// Names of the flags that change results, other than the run length, that were given.
    fn result_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut chk = |given: bool, name: &'static str| {
            if given {
                v.push(name)
            }
        };
        chk(self.data.is_some(), "--data");
        chk(self.arch.is_some(), "--arch");
        chk(self.act.is_some(), "--act");
        chk(self.loss.is_some(), "--loss");
        chk(self.seed.is_some(), "--seed");
        chk(self.opt.is_some(), "--opt");
        chk(self.lr.is_some(), "--lr");
        chk(self.batch_size.is_some(), "--batch-size");
        chk(self.eig_every.is_some(), "--eig-every");
        chk(self.init.is_some(), "--init");
        chk(self.clip.is_some(), "--clip");
        chk(self.schedule.is_some(), "--schedule");
        chk(self.hvp.is_some(), "--hvp");
        chk(self.eig_method.is_some(), "--eig-method");
        v
    }
}

/// How a command runs (never changes results).
#[derive(Args, Debug, Clone)]
pub struct Execution {
    /// Worker threads (default: all cores). Results are bit-identical for every count.
    #[arg(long, help_heading = "Execution")]
    pub threads: Option<usize>,
    /// Samples per tile (performance only; results are bit-identical for every value).
    #[arg(long, default_value_t = crate::engine::DEFAULT_TILE, help_heading = "Execution")]
    pub tile: usize,
    /// No progress output.
    #[arg(long, short, help_heading = "Execution")]
    pub quiet: bool,
}

impl Execution {
    /// The thread count to use.
    pub fn threads(&self) -> Result<usize> {
        match self.threads {
            Some(0) => Err(Failure::input("--threads 0: must be at least 1")),
            Some(t) => Ok(t),
            None => Ok(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        }
    }
}

/// `edgewise train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML configuration; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted (or finished) run in DIR, bit-identically; --steps/--epochs may extend it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "force"])]
    pub resume: Option<PathBuf>,
    /// Do not write plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Testing aid: exit abruptly after N steps, as if killed.
    #[arg(long, hide = true)]
    pub interrupt_after: Option<u64>,
    #[command(flatten)]
    pub settings: Overrides,
    #[command(flatten)]
    pub exec: Execution,
}

/// Builds the configuration of a `train` invocation.
pub fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    if let Some(dir) = &a.resume {
        let given = a.settings.result_flags();
        if !given.is_empty() {
            return Err(Failure::input(format!(
                "--resume continues the configuration in {}; {} cannot change it (only --steps / --epochs and execution flags may be given)",
                dir.join("config.toml").display(),
                given.join(", ")
            )));
        }
        let mut cfg = TrainConfig::from_file(&dir.join("config.toml"))?;
        if a.settings.steps.is_some() || a.settings.epochs.is_some() {
            cfg.run.steps = a.settings.steps;
            cfg.run.epochs = a.settings.epochs;
        }
        return Ok(cfg);
    }
    let mut cfg = match &a.config {
        Some(p) => TrainConfig::from_file(p)?,
        None => TrainConfig::default(),
    };
    a.settings.apply(&mut cfg);
    Ok(cfg)
}

/// Runs `train`; returns the exit code.
pub fn cmd_train(a: &TrainArgs) -> Result<u8> {
    let cfg = train_config(a)?;
    let opts = RunOptions {
        out: a.resume.clone().unwrap_or_else(|| a.out.clone()),
        threads: a.exec.threads()?,
        tile: a.exec.tile.max(1),
        quiet: a.exec.quiet,
        force: a.force,
        resume: a.resume.is_some(),
        plots: !a.no_plots,
        interrupt_after: a.interrupt_after,
    };
    let o = train::run(&cfg, &opts)?;
    let s = &o.summary;
    if !a.exec.quiet {
        match &s.final_values {
            Some(f) => eprintln!(
                "{}: {} steps, train loss {:.5} acc {:.4}, test loss {:.5} acc {:.4}{}",
                opts.out.display(),
                s.steps,
                f.train_loss,
                f.train_acc,
                f.test_loss,
                f.test_acc,
                f.sharpness.map(|x| format!(", sharpness {x:.4}")).unwrap_or_default()
            ),
            None => eprintln!("{}: diverged at the first step", opts.out.display()),
        }
    }
    if s.diverged {
        eprintln!(
            "edgewise: the run diverged at step {} (non-finite loss); metrics and the last finite checkpoint are in {}",
            s.diverged_at_step.unwrap_or(0),
            opts.out.display()
        );
        return Ok(EXIT_DIVERGED);
    }
    Ok(0)
}

/// Parses the arguments and runs the command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Train(a) => cmd_train(a),
    }
}
