//! Command-line parsing (clap) and dispatch. Arguments are parsed here and validated into core
//! objects by [`crate::config`]; `main` only maps the result to an exit code.

use std::path::{Path, PathBuf};

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
    /// Run a grid of training runs in parallel (restartable, shardable).
    Sweep(SweepArgs),
    /// Merge runs and sweeps (and shards) into a table and plots across runs.
    Report(ReportArgs),
    /// Top-k / bottom-k eigenvalues, trace and (small models) the dense spectrum of a checkpoint.
    // --init (a model flag shared with hvp-check) cannot apply to a checkpoint: not listed.
    #[command(after_help = SPECTRUM_AFTER_HELP, mut_arg("init", |a| a.hide(true)))]
    Spectrum(SpectrumArgs),
    /// Compare exact, finite-difference and dense-Hessian Hessian-vector products.
    HvpCheck(HvpCheckArgs),
    /// Time a gradient, an exact Hessian-vector product and power iteration on random data (JSON).
    Bench(crate::bench::BenchArgs),
    /// Reproduce the paper's experiments on the bundled data and report which claims hold.
    Repro(crate::repro::ReproArgs),
}

/// `edgewise sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Base TOML configuration; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory (one subdirectory per run).
    #[arg(long, default_value = "runs/sweep")]
    pub out: PathBuf,
    /// Learning rates, comma-separated.
    #[arg(long, value_name = "LR,LR,...", help_heading = "Grid")]
    pub lrs: Option<String>,
    /// Geometric learning-rate grid START:FACTOR:COUNT (e.g. 0.01:2:6).
    #[arg(
        long,
        value_name = "START:FACTOR:COUNT",
        conflicts_with = "lrs",
        help_heading = "Grid"
    )]
    pub lr_grid: Option<String>,
    /// Seeds, comma-separated.
    #[arg(long, value_name = "S,S,...", help_heading = "Grid")]
    pub seeds: Option<String>,
    /// Batch sizes, comma-separated (`full` for full batch).
    #[arg(long, value_name = "B,B,...", help_heading = "Grid")]
    pub batch_sizes: Option<String>,
    /// Optimizers, comma-separated.
    #[arg(long, value_name = "OPT,OPT,...", help_heading = "Grid")]
    pub opts: Option<String>,
    /// Clip values (for clipped-adam / clipped-rmsprop), comma-separated.
    #[arg(long, value_name = "C,C,...", help_heading = "Grid")]
    pub clips: Option<String>,
    /// Run only slice I of N of the grid (runs with index mod N == I), 0 <= I < N.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Runs at once (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Threads per run (default 1).
    #[arg(long, default_value_t = 1)]
    pub threads_per_run: usize,
    /// Skip per-run plots.
    #[arg(long)]
    pub no_plots: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Redo every run of this shard from scratch (by default finished runs are skipped,
    /// interrupted ones resumed, and a run directory holding other settings is an error).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub settings: Overrides,
}

/// `edgewise report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run directories or directories of runs (sweeps, shards).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write report.md, report.csv and plots/ (default: the only input, else runs/report).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The end of `edgewise spectrum --help`.
const SPECTRUM_AFTER_HELP: &str = "\
The Hessian is the one the run measured: the data set, split (--per-class or --train-size) and
--hessian-subset come from the checkpoint's `config` metadata, or, for checkpoints of earlier
versions, from RUN/config.toml when the checkpoint is RUN/checkpoints/*.safetensors; otherwise
the data set's default split and every training sample, with a warning. Data flags override
them (a --hessian-subset at least the training-split size means the whole split); the output's
config_source, split, train_samples, hessian_subset and samples say what was used.
--arch, --act, --loss and --math are read from the checkpoint; a flag contradicting it is an
error.
Every reported eigenvalue comes with a residual bound (top_residuals, bottom_residuals);
values whose bound exceeds 1e-3 of the largest magnitude are listed in `unconverged` and named
in a warning. Without --lanczos-steps, Lanczos reruns with twice the steps (from the run's
length, at most 320) until every reported value meets that tolerance, and then checks for
values it skipped (deflation_check: Lanczos on the Hessian deflated by the reported
eigenvectors, from another start; what it finds beyond the k-th joins the reported values);
--lanczos-steps N runs exactly N steps, unchecked.";

/// The most Lanczos steps `spectrum` runs to converge the reported values when
/// `--lanczos-steps` is not given.
const SPECTRUM_MAX_STEPS: usize = 320;

/// The largest Lanczos basis `spectrum` grows to on its own (bytes).
const SPECTRUM_BASIS_BYTES: usize = 512 << 20;

/// `edgewise spectrum`.
#[derive(Args, Debug)]
pub struct SpectrumArgs {
    /// A checkpoint (.safetensors) written by edgewise; the run's data split and Hessian subset
    /// are used unless flags say otherwise.
    pub checkpoint: PathBuf,
    /// Eigenvalues at each end (at most the parameter count; at most 16 with --method power).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// lanczos | power (both give --k values at each end).
    #[arg(long, value_enum, default_value_t = crate::analyze::Method::Lanczos)]
    pub method: crate::analyze::Method,
    /// Hutchinson probes (0: no trace estimate).
    #[arg(long, default_value_t = 20)]
    pub probes: u32,
    /// Dense spectrum when the model has at most this many parameters.
    #[arg(long, default_value_t = 600)]
    pub dense_max: usize,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Lanczos steps, exactly (default: the run's, doubled until the reported values converge).
    #[arg(long)]
    pub lanczos_steps: Option<usize>,
    #[command(flatten)]
    pub flags: MeasureFlags,
    #[command(flatten)]
    pub exec: Execution,
}

impl SpectrumArgs {
    /// The flags as overrides of the checkpoint's configuration.
    fn settings(&self) -> Overrides {
        Overrides {
            lanczos_steps: self.lanczos_steps,
            ..self.flags.overrides()
        }
    }
}

/// The data, model and Hessian flags of the commands that measure a network without training
/// it (`spectrum`, `hvp-check`): the only training settings they may override.
#[derive(Args, Debug, Clone, Default)]
pub struct MeasureFlags {
    #[command(flatten)]
    pub input: DataFlags,
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub hessian: HessianFlags,
}

impl MeasureFlags {
    /// The flags as overrides of a checkpoint's (or the default) configuration.
    fn overrides(&self) -> Overrides {
        Overrides {
            input: self.input.clone(),
            model: self.model.clone(),
            hessian: self.hessian.clone(),
            ..Default::default()
        }
    }
}

/// `edgewise hvp-check`.
#[derive(Args, Debug)]
pub struct HvpCheckArgs {
    /// A checkpoint to check at (default: a fresh network from --arch/--act/--loss/--seed).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Random directions.
    #[arg(long, default_value_t = 5)]
    pub directions: usize,
    /// Form the dense Hessian when the model has at most this many parameters.
    #[arg(long, default_value_t = 2000)]
    pub dense_max: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: MeasureFlags,
    #[command(flatten)]
    pub exec: Execution,
}

/// Settings that override the configuration file (all optional).
#[derive(Args, Debug, Clone, Default)]
pub struct Overrides {
    #[command(flatten)]
    pub input: DataFlags,
    #[command(flatten)]
    pub model: ModelFlags,

    /// Optimizer: gd | sgd | momentum | nesterov | rmsprop | adam | adamw | clipped-adam | clipped-rmsprop
    /// (default gd).
    #[arg(long, help_heading = "Optimizer")]
    pub opt: Option<String>,
    /// Learning rate (default 0.05).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub lr: Option<f32>,
    /// Minibatch size (default: full batch).
    #[arg(long, help_heading = "Optimizer")]
    pub batch_size: Option<usize>,
    /// Drop the last partial batch of each epoch.
    #[arg(long, help_heading = "Optimizer")]
    pub drop_last: bool,
    /// Momentum coefficient (momentum, nesterov; default 0.9).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub momentum: Option<f32>,
    /// Adam beta1 (default 0.9).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub beta1: Option<f32>,
    /// Adam / RMSProp beta2 (default 0.999 for Adam, 0.99 for RMSProp and the clipped variants).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub beta2: Option<f32>,
    /// Denominator epsilon (default 1e-8).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub eps: Option<f32>,
    /// Clip value c of clipped-adam / clipped-rmsprop.
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub clip: Option<f32>,
    /// upper: min(sqrt v, c) (restores instabilities) | lower: max(sqrt v, c).
    #[arg(long, help_heading = "Optimizer")]
    pub clip_mode: Option<String>,
    /// Weight decay (decoupled for adamw; default 0).
    #[arg(long, allow_negative_numbers = true, help_heading = "Optimizer")]
    pub weight_decay: Option<f32>,
    /// constant | warmup:N | step:EVERY:FACTOR | warmup:N,step:EVERY:FACTOR (default constant).
    #[arg(long, help_heading = "Optimizer")]
    pub schedule: Option<String>,

    /// Optimizer steps (default 1000).
    #[arg(long, help_heading = "Length")]
    pub steps: Option<u64>,
    /// Epochs instead of steps.
    #[arg(long, help_heading = "Length")]
    pub epochs: Option<u64>,
    /// Stop once the training loss is at most X (the step's batch loss: with minibatches,
    /// that of the batch, not of the whole training set).
    #[arg(long, allow_negative_numbers = true, help_heading = "Length")]
    pub until_loss: Option<f32>,
    /// Stop once the training accuracy is at least A (0..1) (the step's batch accuracy, as
    /// for --until-loss).
    #[arg(long, allow_negative_numbers = true, help_heading = "Length")]
    pub until_train_acc: Option<f32>,
    /// Test evaluation every K steps (default 10).
    #[arg(long, help_heading = "Length")]
    pub eval_every: Option<u64>,
    /// Checkpoint every K steps (step_NNNNNN.safetensors, and the resume state, so that an
    /// interrupted run resumes from there; a finished run's resume state is always written).
    #[arg(long, help_heading = "Length")]
    pub checkpoint_every: Option<u64>,

    /// Measure sharpness and the other eigen quantities every K steps (default 0: never, so a
    /// plain `train` measures no curvature).
    #[arg(long, help_heading = "Curvature")]
    pub eig_every: Option<u64>,
    /// Top-k eigenvectors for the subspace score (default 1).
    #[arg(long, help_heading = "Curvature")]
    pub eig_k: Option<usize>,
    /// power | warm-lanczos (both warm-started, stopped at --power-tol) | lanczos (fresh,
    /// --lanczos-steps long) | lean-lanczos (warm-started, four vectors of memory: the
    /// firmware's tracker; --eig-k 1). Default warm-lanczos.
    #[arg(long, help_heading = "Curvature")]
    pub eig_method: Option<String>,
    /// exact (forward-over-reverse) | fd (finite differences) (default exact).
    #[arg(long, help_heading = "Curvature")]
    pub hvp: Option<String>,
    /// Also measure lambda_min by shifted power iteration (Lanczos always gives it).
    #[arg(long, help_heading = "Curvature")]
    pub lambda_min: bool,
    /// Hutchinson trace every K steps (default 0: never).
    #[arg(long, help_heading = "Curvature")]
    pub trace_every: Option<u64>,
    /// Rademacher probes per trace (default 10).
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
    /// Step cap of one warm-lanczos or lean-lanczos measurement (default 50; lean-lanczos
    /// runs each step twice).
    #[arg(long, help_heading = "Curvature")]
    pub lanczos_max_steps: Option<usize>,
    /// Also track the sharpness alone every K steps (0: never) by warm-started Lanczos from the
    /// predicted eigenvector, besides the --eig-every measurements (columns tracked_*).
    #[arg(long, help_heading = "Curvature")]
    pub track_every: Option<u64>,
    #[command(flatten)]
    pub hessian: HessianFlags,
}

/// The data flags (`train`, `sweep`, `spectrum`, `hvp-check`).
#[derive(Args, Debug, Clone, Default)]
pub struct DataFlags {
    /// Data: digits | mnist1d | mnist5k | csv:PATH | fashion-mnist:DIR | cifar10:DIR | synthetic:teacher[?n=..&dim=..&hidden=..&out=..&seed=..] (default digits)
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
}

/// The model flags (`train`, `sweep`, `spectrum`, `hvp-check`).
#[derive(Args, Debug, Clone, Default)]
pub struct ModelFlags {
    /// Widths, input first (default 64-32-32-10).
    #[arg(long, help_heading = "Model")]
    pub arch: Option<String>,
    /// Hidden activation: identity | tanh | relu | elu | softplus | gelu (default tanh).
    #[arg(long, help_heading = "Model")]
    pub act: Option<String>,
    /// Loss: mse | ce (default mse).
    #[arg(long, help_heading = "Model")]
    pub loss: Option<String>,
    /// Initialisation: pytorch | lecun-normal | kaiming-normal | xavier-uniform (default pytorch).
    #[arg(long, help_heading = "Model")]
    pub init: Option<String>,
    /// Seed of initialisation, split, shuffles and probes (default 0).
    #[arg(long, help_heading = "Model")]
    pub seed: Option<u64>,
    /// Math backend: libm | micromath (default libm).
    #[arg(long, help_heading = "Model")]
    pub math: Option<String>,
}

/// The Hessian subset flag (every command that measures curvature).
#[derive(Args, Debug, Clone, Default)]
pub struct HessianFlags {
    /// Size of the fixed seeded training subset used for curvature (at least the training
    /// split's size: the whole split).
    #[arg(long, help_heading = "Curvature")]
    pub hessian_subset: Option<usize>,
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
    /// The flags given that have no effect on a run of `cfg` (the configuration they were
    /// applied to), as `(flag, why)`: e.g. `--momentum` with `--opt adam`. A flag silently
    /// ignored usually means the user expected something else (`--momentum` for Adam's
    /// `beta1`), so `train` refuses them.
    pub fn without_effect(&self, cfg: &TrainConfig) -> Vec<(&'static str, String)> {
        let c = &cfg.curvature;
        let opt = cfg.optim.opt.as_str();
        let adam = matches!(opt, "adam" | "adamw" | "clipped-adam");
        let adaptive = adam || matches!(opt, "rmsprop" | "clipped-rmsprop");
        let eig = c.eig_every > 0;
        let method = c.eig_method.as_str();
        let mut out = Vec::new();
        let mut check = |given: bool, effect: bool, flag: &'static str, why: &str| {
            if given && !effect {
                out.push((flag, why.to_string()));
            }
        };
        let with_opt = |applies: &str| format!("applies to --opt {applies}, not to --opt {opt}");
        check(
            self.momentum.is_some(),
            matches!(opt, "momentum" | "nesterov"),
            "--momentum",
            &format!("{} (Adam's is --beta1)", with_opt("momentum and nesterov")),
        );
        check(
            self.beta1.is_some(),
            adam,
            "--beta1",
            &with_opt("adam, adamw and clipped-adam"),
        );
        let adaptive_opts = "rmsprop, adam, adamw, clipped-adam and clipped-rmsprop";
        check(
            self.beta2.is_some(),
            adaptive,
            "--beta2",
            &with_opt(adaptive_opts),
        );
        check(
            self.eps.is_some(),
            adaptive,
            "--eps",
            &with_opt(adaptive_opts),
        );
        check(
            self.clip_mode.is_some(),
            opt.starts_with("clipped-"),
            "--clip-mode",
            &with_opt("clipped-adam and clipped-rmsprop"),
        );
        check(
            self.drop_last,
            cfg.optim.batch_size.is_some(),
            "--drop-last",
            "needs minibatches (--batch-size B)",
        );
        let none = "needs eigen measurements (--eig-every K)";
        check(self.eig_k.is_some(), eig, "--eig-k", none);
        check(self.eig_method.is_some(), eig, "--eig-method", none);
        check(
            self.lambda_min,
            eig && method != "lanczos",
            "--lambda-min",
            match eig {
                false => none,
                true => "--eig-method lanczos gives lambda_min at every measurement anyway",
            },
        );
        check(
            self.lanczos_steps.is_some(),
            eig && method == "lanczos",
            "--lanczos-steps",
            "sets the length of --eig-method lanczos, not used here",
        );
        check(
            self.lanczos_max_steps.is_some(),
            (eig && (method == "warm-lanczos" || method == "lean-lanczos")) || c.track_every > 0,
            "--lanczos-max-steps",
            "caps --eig-method warm-lanczos / lean-lanczos and --track-every, none used here",
        );
        check(
            self.power_max_iter.is_some(),
            eig && (method == "power" || (c.lambda_min && method != "lanczos") || adaptive),
            "--power-max-iter",
            "caps power iteration (--eig-method power, --lambda-min, the preconditioned sharpness of adaptive optimizers), not used here",
        );
        let any = eig || c.trace_every > 0 || c.track_every > 0;
        let nothing = "needs curvature measurements (--eig-every, --trace-every or --track-every)";
        check(self.hvp.is_some(), any, "--hvp", nothing);
        check(
            self.hessian.hessian_subset.is_some(),
            any,
            "--hessian-subset",
            nothing,
        );
        check(
            self.power_tol.is_some(),
            eig || c.track_every > 0,
            "--power-tol",
            "needs eigen measurements (--eig-every K or --track-every K)",
        );
        check(
            self.trace_probes.is_some(),
            c.trace_every > 0,
            "--trace-probes",
            "needs trace estimates (--trace-every K)",
        );
        out
    }

    /// Applies the flags given over `cfg`.
    pub fn apply(&self, cfg: &mut TrainConfig) {
        set!(self.input.data, cfg.data.name);
        // A flag of one split mode (sizes or per class) replaces the other mode's settings
        // from a config file or checkpoint, rather than conflicting with them.
        let sizes = self.input.train_size.is_some() || self.input.test_size.is_some();
        let per_class = self.input.per_class.is_some() || self.input.test_per_class.is_some();
        if sizes && !per_class {
            cfg.data.per_class = None;
            cfg.data.test_per_class = None;
        }
        if per_class && !sizes {
            cfg.data.train_size = None;
            cfg.data.test_size = None;
        }
        set!(self.input.train_size, cfg.data.train_size, opt);
        set!(self.input.test_size, cfg.data.test_size, opt);
        set!(self.input.per_class, cfg.data.per_class, opt);
        set!(self.input.test_per_class, cfg.data.test_per_class, opt);
        set!(self.model.arch, cfg.model.arch);
        set!(self.model.act, cfg.model.act);
        set!(self.model.loss, cfg.model.loss);
        set!(self.model.init, cfg.model.init);
        set!(self.model.seed, cfg.model.seed);
        set!(self.model.math, cfg.model.math);
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
        set!(
            self.hessian.hessian_subset,
            cfg.curvature.hessian_subset,
            opt
        );
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
        set!(self.lanczos_max_steps, cfg.curvature.lanczos_max_steps);
        set!(self.track_every, cfg.curvature.track_every);
    }
}

/// How a command runs (never changes results).
#[derive(Args, Debug, Clone)]
pub struct Execution {
    /// Worker threads (default: all cores). Results are bit-identical for every count.
    #[arg(long, help_heading = "Execution")]
    pub threads: Option<usize>,
    /// Samples per tile (performance only; results are bit-identical for every value). Default
    /// 0: automatic (`engine::auto_tile`: 128, 64 or 32 by the samples, threads and layers).
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
            None => Ok(std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)),
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
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "force", "out"])]
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
        if !dir.join("config.toml").is_file() {
            return Err(Failure::input(format!(
                "--resume {}: not a run directory (no config.toml)",
                dir.display()
            )));
        }
        let mut cfg = TrainConfig::from_file(&dir.join("config.toml"))?;
        if a.settings.steps.is_some() || a.settings.epochs.is_some() {
            cfg.run.steps = a.settings.steps;
            cfg.run.epochs = a.settings.epochs;
        }
        if let Some(k) = a.settings.checkpoint_every {
            cfg.run.checkpoint_every = k;
        }
        // Stopping criteria only decide when the run ends, so they may change too.
        if a.settings.until_loss.is_some() {
            cfg.run.until_loss = a.settings.until_loss;
        }
        if a.settings.until_train_acc.is_some() {
            cfg.run.until_train_acc = a.settings.until_train_acc;
        }
        // Any other flag that would change the run's settings is refused (not silently
        // ignored): the checkpoint holds the state of those settings.
        let mut asked = cfg.clone();
        a.settings.apply(&mut asked);
        (asked.run.steps, asked.run.epochs) = (cfg.run.steps, cfg.run.epochs);
        let diff = cfg.differences(&asked);
        if !diff.is_empty() {
            return Err(Failure::input(format!(
                "--resume continues the configuration in {}; flags cannot change it (the run's vs the flags': {}; only --steps / --epochs, --until-loss / --until-train-acc, --checkpoint-every and execution flags may be given)",
                dir.join("config.toml").display(),
                diff.join(", ")
            )));
        }
        return Ok(cfg);
    }
    let cfg = base_config(&a.config, &a.settings)?;
    let inert = a.settings.without_effect(&cfg);
    if !inert.is_empty() {
        let list: Vec<String> = inert.iter().map(|(f, why)| format!("{f} {why}")).collect();
        return Err(Failure::input(format!(
            "flags without effect on this run (remove them): {}",
            list.join("; ")
        )));
    }
    Ok(cfg)
}

/// Runs `train`; returns the exit code.
pub fn cmd_train(a: &TrainArgs) -> Result<u8> {
    let cfg = train_config(a)?;
    let opts = RunOptions {
        out: a.resume.clone().unwrap_or_else(|| a.out.clone()),
        threads: a.exec.threads()?,
        tile: a.exec.tile,
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
                "{}: {} steps, train loss {} acc {:.4}, test loss {} acc {:.4}{}",
                opts.out.display(),
                s.steps,
                loss_text(f.train_loss),
                f.train_acc,
                loss_text(f.test_loss),
                f.test_acc,
                f.sharpness
                    .map(|x| format!(", sharpness {x:.4}"))
                    .unwrap_or_default()
            ),
            None => eprintln!("{}: diverged at the first step", opts.out.display()),
        }
    }
    if s.diverged {
        let kept = if opts.out.join("checkpoints/final.safetensors").is_file() {
            "metrics and the last finite checkpoint (checkpoints/final.safetensors)"
        } else {
            "metrics (no checkpoint: the initial parameters had no finite loss)"
        };
        eprintln!(
            "edgewise: the run diverged at step {} (non-finite loss); {kept} are in {}; a diverged run cannot be resumed: start a new one with a smaller --lr",
            s.diverged_at_step.unwrap_or(0),
            opts.out.display()
        );
        return Ok(EXIT_DIVERGED);
    }
    Ok(0)
}

fn base_config(config: &Option<PathBuf>, settings: &Overrides) -> Result<TrainConfig> {
    let mut cfg = match config {
        Some(p) => TrainConfig::from_file(p)?,
        None => TrainConfig::default(),
    };
    settings.apply(&mut cfg);
    cfg.data.name = crate::data::absolute_spec(&cfg.data.name);
    Ok(cfg)
}

/// Runs `sweep`.
pub fn cmd_sweep(a: &SweepArgs) -> Result<u8> {
    use crate::sweep::{
        parse_batch_size, parse_geometric, parse_list, parse_list_with, parse_shard, sweep, Grid,
        SweepOptions,
    };
    let base = base_config(&a.config, &a.settings)?;
    let mut grid = Grid::default();
    if let Some(s) = &a.lrs {
        grid.lrs = parse_list("--lrs", s, |x| x.parse().ok())?;
    }
    if let Some(s) = &a.lr_grid {
        grid.lrs = parse_geometric(s)?;
    }
    if let Some(s) = &a.seeds {
        grid.seeds = parse_list("--seeds", s, |x| x.parse().ok())?;
    }
    if let Some(s) = &a.batch_sizes {
        grid.batch_sizes = parse_list_with("--batch-sizes", s, parse_batch_size)?;
    }
    if let Some(s) = &a.opts {
        grid.opts = parse_list("--opts", s, |x| Some(x.to_string()))?;
    }
    if let Some(s) = &a.clips {
        grid.clips = parse_list("--clips", s, |x| x.parse().ok())?;
    }
    // A base flag the grid sets for every run would have no effect: refused, not ignored (a
    // value from --config is the base the grid replaces, as for any other flag).
    let lr_axis = if a.lr_grid.is_some() {
        "--lr-grid"
    } else {
        "--lrs"
    };
    let overridden: Vec<String> = [
        (
            a.settings.lr.map(|x| x.to_string()),
            !grid.lrs.is_empty(),
            "--lr",
            lr_axis,
            "learning rate",
        ),
        (
            a.settings.model.seed.map(|x| x.to_string()),
            !grid.seeds.is_empty(),
            "--seed",
            "--seeds",
            "seed",
        ),
        (
            a.settings.opt.clone(),
            !grid.opts.is_empty(),
            "--opt",
            "--opts",
            "optimizer",
        ),
        (
            a.settings.batch_size.map(|x| x.to_string()),
            !grid.batch_sizes.is_empty(),
            "--batch-size",
            "--batch-sizes",
            "batch size",
        ),
        (
            a.settings.clip.map(|x| x.to_string()),
            !grid.clips.is_empty(),
            "--clip",
            "--clips",
            "clip value",
        ),
    ]
    .into_iter()
    .filter_map(|(given, axis, flag, grid_flag, what)| {
        let v = given.filter(|_| axis)?;
        Some(format!(
            "{flag} {v} with {grid_flag}: the grid gives every run its {what}"
        ))
    })
    .collect();
    if !overridden.is_empty() {
        return Err(Failure::input(format!(
            "flags without effect on any run of this sweep (remove them, or put the value in the grid): {}",
            overridden.join("; ")
        )));
    }
    let shard = match &a.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let jobs = match a.jobs {
        Some(0) => return Err(Failure::input("--jobs 0: must be at least 1")),
        Some(j) => j,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    if a.threads_per_run == 0 {
        return Err(Failure::input("--threads-per-run 0: must be at least 1"));
    }
    // A flag is refused only when no run of the grid uses it (`--momentum` with `--opts
    // gd,momentum` applies to half of them).
    let runs = crate::sweep::expand(&base, &grid);
    let mut inert = runs
        .first()
        .map(|r| a.settings.without_effect(&r.config))
        .unwrap_or_default();
    for r in runs.iter().skip(1) {
        let here = a.settings.without_effect(&r.config);
        inert.retain(|(f, _)| here.iter().any(|(g, _)| g == f));
    }
    if !inert.is_empty() {
        let list: Vec<String> = inert.iter().map(|(f, why)| format!("{f} {why}")).collect();
        return Err(Failure::input(format!(
            "flags without effect on any run of this sweep (remove them): {}",
            list.join("; ")
        )));
    }
    let opts = SweepOptions {
        out: a.out.clone(),
        jobs,
        threads_per_run: a.threads_per_run,
        shard,
        quiet: a.quiet,
        plots: !a.no_plots,
        force: a.force,
    };
    let st = sweep(&base, &grid, &opts)?;
    if crate::interrupt::requested() {
        let stopped = st
            .iter()
            .filter(|s| s.status.starts_with("interrupted"))
            .count();
        let waiting = st
            .iter()
            .filter(|s| s.status.starts_with("not started"))
            .count();
        return Err(Failure {
            code: crate::interrupt::EXIT_INTERRUPTED,
            message: format!(
                "sweep {} interrupted: {stopped} runs stopped with their resume state, {waiting} not started; rerun the same command to continue (finished runs are skipped, the others resume)",
                a.out.display()
            ),
        });
    }
    let failed: Vec<_> = st
        .iter()
        .filter(|s| s.status.starts_with("failed"))
        .collect();
    // Finished earlier or now: a skipped run that had diverged counts too.
    let diverged = st
        .iter()
        .filter(|s| s.status == "diverged" || s.status == "skipped (diverged)")
        .count();
    if !a.quiet {
        eprintln!(
            "sweep {}: {} runs in this shard, {} diverged, {} failed",
            a.out.display(),
            st.len(),
            diverged,
            failed.len()
        );
    }
    // The runs' own failure kinds: a write failure exits 1, bad input 2 (`sweep::failure`).
    if let Some(f) = crate::sweep::failure(&st) {
        return Err(f);
    }
    Ok(0)
}

/// Runs `report`.
pub fn cmd_report(a: &ReportArgs) -> Result<u8> {
    let out = match (&a.out, a.dirs.as_slice()) {
        (Some(o), _) => o.clone(),
        (None, [one]) => one.clone(),
        _ => PathBuf::from("runs/report"),
    };
    let r = crate::report::report(&a.dirs, &out)?;
    let left_out = match r.left_out.len() {
        0 => String::new(),
        n => format!(" ({n} left out: their files could not be read, see the warnings)"),
    };
    eprintln!(
        "report of {} runs{left_out}: {}",
        r.runs.len(),
        out.join("report.md").display()
    );
    Ok(0)
}

fn load_ckpt(path: &std::path::Path) -> Result<crate::checkpoint::Checkpoint> {
    crate::checkpoint::load(path).map_err(|e| Failure::input(e.to_string()))
}

/// The run directory of a checkpoint at `RUN/checkpoints/NAME.safetensors`, where `train`
/// writes them.
fn run_dir_of(checkpoint: &Path) -> Option<PathBuf> {
    let dir = checkpoint.parent()?;
    if dir.file_name()? != "checkpoints" {
        return None;
    }
    let parent = dir.parent()?;
    Some(if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.to_path_buf()
    })
}

/// Why `cfg` (a run's `config.toml`) does not describe checkpoint `ck`, if it does not.
fn config_mismatch(cfg: &TrainConfig, ck: &crate::checkpoint::Checkpoint) -> Option<String> {
    let arch = crate::config::format_widths(ck.arch.widths());
    let mut diffs = Vec::new();
    let mut chk = |what: &str, run: &str, ckpt: &str| {
        if run != ckpt {
            diffs.push(format!("{what} {run} vs {ckpt}"));
        }
    };
    chk("arch", &cfg.model.arch, &arch);
    chk("act", &cfg.model.act, ck.arch.activation().name());
    chk("loss", &cfg.model.loss, ck.arch.loss().name());
    if let Some(d) = ck.metadata.get("data") {
        chk("data", &cfg.data.name, d);
    }
    if let Some(s) = ck.metadata.get("seed") {
        chk("seed", &cfg.model.seed.to_string(), s);
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// The configuration a checkpoint was trained with, overridden by flags, and where it came
/// from. In order: the `config` metadata entry (every checkpoint `train` writes carries it),
/// the run's `config.toml` when the checkpoint lies in `RUN/checkpoints/` (checkpoints of
/// earlier versions carry the configuration only in resume checkpoints), else the data set
/// and seed of the metadata with the default split and the whole training split for the
/// Hessian (with a warning unless data flags were given). Flags contradicting the checkpoint's
/// architecture, activation, loss or math backend are bad input. The third value is the
/// checkpoint's `data_fingerprint` when no flag changed its data, split or seed: the data
/// loaded must then be those the run trained on (unless the split is the defaults' guess).
fn ckpt_config(
    ck: &crate::checkpoint::Checkpoint,
    path: &Path,
    settings: &Overrides,
) -> Result<(TrainConfig, String, Option<String>)> {
    let from_metadata = |c: &mut TrainConfig| {
        if let Some(d) = ck.metadata.get("data") {
            c.data.name = d.clone();
        }
        if let Some(s) = ck.metadata.get("seed").and_then(|s| s.parse().ok()) {
            c.model.seed = s;
        }
    };
    let (mut cfg, mut source) = if let Some(t) = ck.metadata.get("config") {
        (
            TrainConfig::from_toml(t, &format!("{} (metadata)", path.display()))?,
            "checkpoint metadata".to_string(),
        )
    } else {
        let run_cfg = run_dir_of(path)
            .map(|d| d.join("config.toml"))
            .filter(|c| c.is_file());
        let mut found = None;
        if let Some(file) = run_cfg {
            // What `--resume` reads.
            let c = TrainConfig::from_file(&file)?;
            match config_mismatch(&c, ck) {
                None => found = Some((c, file.display().to_string())),
                Some(why) => eprintln!(
                    "warning: {} does not describe {} ({why}); ignoring it",
                    file.display(),
                    path.display()
                ),
            }
        }
        match found {
            Some(f) => f,
            None => {
                let mut c = TrainConfig::default();
                from_metadata(&mut c);
                let d = &settings;
                let data_flags = d.input.data.is_some()
                    || d.input.per_class.is_some()
                    || d.input.train_size.is_some()
                    || d.input.test_size.is_some()
                    || d.hessian.hessian_subset.is_some();
                if !data_flags {
                    eprintln!(
                        "warning: {} carries no split, and no run's config.toml describes it \
                         (one is read for checkpoints in RUN/checkpoints/): using the default \
                         split of {} and every training sample for the Hessian; give \
                         --per-class or --train-size and --hessian-subset to match the run",
                        path.display(),
                        c.data.name
                    );
                }
                (c, "defaults".to_string())
            }
        }
    };
    let w = ck.arch.widths();
    let (arch, act, loss) = (
        crate::config::format_widths(w),
        ck.arch.activation().name(),
        ck.arch.loss().name(),
    );
    let math = crate::checkpoint::math_name(ck.arch.math());
    cfg.model.arch = arch.clone();
    cfg.model.act = act.into();
    cfg.model.loss = loss.into();
    cfg.model.math = math.into();
    // The commands on a checkpoint take only data, model and Hessian flags; of the model
    // flags, --init would have no effect (the parameters are the checkpoint's).
    if let Some(i) = &settings.model.init {
        return Err(Failure::input(format!(
            "--init {i} has no effect on a checkpoint, whose parameters are used: omit it"
        )));
    }
    settings.apply(&mut cfg);
    cfg.check_integers()?;
    let sizes = settings.input.train_size.is_some() || settings.input.test_size.is_some();
    let per_class = settings.input.per_class.is_some() || settings.input.test_per_class.is_some();
    for (flag, given, ours) in [
        ("--arch", &cfg.model.arch, arch.as_str()),
        ("--act", &cfg.model.act, act),
        ("--loss", &cfg.model.loss, loss),
        ("--math", &cfg.model.math, math),
    ] {
        if given != ours {
            return Err(Failure::input(format!(
                "{flag} {given} contradicts the checkpoint, which is {ours} (omit {flag}: it \
                 is read from the checkpoint)"
            )));
        }
    }
    if cfg.curvature.hessian_subset == Some(0) {
        return Err(Failure::input("--hessian-subset 0: must be at least 1"));
    }
    let overridden = settings.input.data.is_some()
        || sizes
        || per_class
        || settings.model.seed.is_some()
        || settings.hessian.hessian_subset.is_some();
    if overridden {
        source.push_str(" + flags");
    }
    // The Hessian subset is drawn from the split: changing it leaves the data as they were.
    // A split guessed from defaults (already warned about) is not the run's to check.
    let data_changed =
        settings.input.data.is_some() || sizes || per_class || settings.model.seed.is_some();
    let fingerprint = match data_changed || source.starts_with("defaults") {
        true => None,
        false => ck.metadata.get("data_fingerprint").cloned(),
    };
    Ok((cfg, source, fingerprint))
}

/// Runs `spectrum`.
pub fn cmd_spectrum(a: &SpectrumArgs) -> Result<u8> {
    use crate::analyze::Method;
    if a.k == 0 {
        return Err(Failure::input("--k 0: must be at least 1"));
    }
    let most = edgewise_core::MAX_SUBSPACE_K;
    if a.method == Method::Power && a.k > most {
        return Err(Failure::input(format!(
            "--k {}: power iteration with deflation gives at most {most} eigenvalues; \
             --method lanczos gives more",
            a.k
        )));
    }
    if let (Some(n), Method::Power) = (a.lanczos_steps, a.method) {
        return Err(Failure::input(format!(
            "--lanczos-steps {n} applies to --method lanczos, not to --method power"
        )));
    }
    if let Some(n) = a.lanczos_steps.filter(|&n| n < a.k) {
        if a.method == Method::Lanczos {
            return Err(Failure::input(format!(
                "--lanczos-steps {n}: Lanczos gives at most one value per step at each end; \
                 give at least --k ({})",
                a.k
            )));
        }
    }
    let ck = load_ckpt(&a.checkpoint)?;
    let p = ck.arch.n_params();
    if a.k > p {
        return Err(Failure::input(format!(
            "--k {}: the model has {p} parameters, so {p} eigenvalues (give at most {p})",
            a.k
        )));
    }
    let (cfg, source, fingerprint) = ckpt_config(&ck, &a.checkpoint, &a.settings())?;
    let s = crate::analyze::SpectrumSettings {
        k: a.k,
        method: a.method,
        lanczos_steps: cfg.curvature.lanczos_steps.max(a.k),
        // Given on the command line: exactly that many steps. Otherwise doubled from the
        // run's until the reported values converge, within SPECTRUM_MAX_STEPS and a basis of
        // SPECTRUM_BASIS_BYTES.
        lanczos_max_steps: a.lanczos_steps.is_none().then(|| {
            let p = ck.arch.n_params().max(1);
            SPECTRUM_MAX_STEPS
                .min(SPECTRUM_BASIS_BYTES / (4 * p))
                .max(cfg.curvature.lanczos_steps.max(a.k))
        }),
        trace_probes: a.probes,
        dense_max: a.dense_max,
        threads: a.exec.threads()?,
        tile: a.exec.tile,
        expect_fingerprint: fingerprint,
    };
    // A --json path that cannot hold the file is refused before the computation, not after.
    if let Some(p) = &a.json {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if p.is_dir() || !parent.is_dir() {
            return Err(Failure::input(format!(
                "--json {}: {}",
                p.display(),
                if p.is_dir() {
                    "is a directory"
                } else {
                    "its directory does not exist"
                }
            )));
        }
    }
    let sp = crate::analyze::spectrum(
        &ck.arch,
        &ck.params,
        &cfg,
        &s,
        &a.checkpoint.display().to_string(),
        &source,
    )?;
    if !sp.unconverged.is_empty() {
        let vals: Vec<String> = sp.unconverged.iter().map(|v| v.to_string()).collect();
        let advice = match a.method {
            Method::Lanczos => format!(
                "raise --lanczos-steps (now {})",
                sp.lanczos_steps.unwrap_or(s.lanczos_steps)
            ),
            Method::Power => "try --method lanczos with more --lanczos-steps".to_string(),
        };
        eprintln!(
            "warning: {} of the reported eigenvalues may be unconverged (residual bound above \
             {:.3e}, {} of the largest magnitude): {}; {advice}",
            vals.len(),
            sp.residual_tolerance,
            crate::analyze::RESIDUAL_RTOL,
            vals.join(", ")
        );
    }
    if let Some(c) = sp.deflation_check.as_ref().filter(|c| !c.converged) {
        eprintln!(
            "warning: the check for eigenvalues the Lanczos run skipped did not converge within \
             {} steps: the reported values are converged but unchecked (a value beyond them may \
             be missing); --method power finds both ends independently",
            c.steps
        );
    }
    let json = serde_json::to_string_pretty(&sp).map_err(|e| Failure::internal(e.to_string()))?;
    match &a.json {
        // A path that cannot hold the file is bad input; a failed write (a full disk) is not.
        Some(p) => {
            crate::fsio::atomic_write(p, json.as_bytes()).map_err(|e| match e.is_bad_path() {
                true => Failure::input(format!("--json: {e}")),
                false => Failure::internal(format!("--json: {e}")),
            })?
        }
        None => print_stdout(&format!("{json}\n"))?,
    }
    Ok(0)
}

/// A loss for the end-of-run line: 5 decimals, or 6 significant digits in exponent form when
/// that would print a long run of digits (a diverging run's 1e35) or hide a tiny value.
fn loss_text(x: f32) -> String {
    if x.is_finite() && x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:.5e}")
    } else {
        format!("{x:.5}")
    }
}

/// Writes `text` to standard output; a failed write (a closed pipe, a full disk) is exit code 1
/// with a message, not a panic as with `println!`.
pub fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("cannot write to standard output: {e}")))
}

/// Runs `hvp-check`.
pub fn cmd_hvp_check(a: &HvpCheckArgs) -> Result<u8> {
    if a.directions == 0 {
        return Err(Failure::input("--directions 0: must be at least 1"));
    }
    let (arch, params, cfg, fingerprint) = match &a.checkpoint {
        Some(p) => {
            let ck = load_ckpt(p)?;
            let (cfg, _, fingerprint) = ckpt_config(&ck, p, &a.flags.overrides())?;
            (ck.arch, ck.params, cfg, fingerprint)
        }
        None => {
            let mut cfg = TrainConfig::default();
            a.flags.overrides().apply(&mut cfg);
            cfg.check_integers()?;
            let res = cfg.resolve()?;
            let p = res.arch.n_params();
            crate::mem::ensure_allocatable(
                crate::mem::f32_bytes(8 * p as u128),
                &format!("hvp-check of {p} parameters"),
            )?;
            let mut params = vec![0.0f32; p];
            res.arch
                .init(&mut params, res.init, cfg.model.seed)
                .map_err(crate::error::core_err("init"))?;
            (res.arch, params, cfg, None)
        }
    };
    if matches!(
        arch.activation(),
        edgewise_core::Activation::Relu | edgewise_core::Activation::Elu
    ) {
        eprintln!(
            "warning: with {}, finite differences step across the activation's kink at 0 \
             (where relu's gradient, elu's curvature, jumps), so they do not approximate the \
             Hessian of the piece the parameters lie in: exact vs fd is not expected to agree \
             to the 1e-4..1e-3 of smooth activations",
            arch.activation().name()
        );
    }
    let rows = crate::analyze::hvp_check(
        &arch,
        &params,
        &cfg,
        fingerprint.as_deref(),
        a.directions,
        a.dense_max,
        a.exec.threads()?,
        a.exec.tile,
    )?;
    use std::fmt::Write;
    let mut text = String::new();
    if a.json {
        for r in &rows {
            let _ = writeln!(text, "{}", serde_json::to_string(r).unwrap_or_default());
        }
    } else {
        let _ = writeln!(
            text,
            "model {} {} {} ({} parameters) on {}",
            crate::config::format_widths(arch.widths()),
            arch.activation().name(),
            arch.loss().name(),
            arch.n_params(),
            cfg.data.name
        );
        let _ = writeln!(
            text,
            "{:>4} {:>12} {:>14} {:>16} {:>14} {:>12}",
            "dir", "|Hv|", "exact vs fd", "exact vs dense", "fd vs dense", "symmetry"
        );
        let o = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3e}"));
        for r in &rows {
            let _ = writeln!(
                text,
                "{:>4} {:>12.5e} {:>14.3e} {:>16} {:>14} {:>12}",
                r.direction,
                r.norm,
                r.exact_vs_fd,
                o(r.exact_vs_dense),
                o(r.fd_vs_dense),
                o(r.symmetry)
            );
        }
    }
    print_stdout(&text)?;
    Ok(0)
}

/// Parses the arguments and runs the command; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Train(a) => {
            crate::interrupt::install();
            cmd_train(a)
        }
        Command::Sweep(a) => {
            crate::interrupt::install();
            cmd_sweep(a)
        }
        Command::Report(a) => cmd_report(a),
        Command::Spectrum(a) => cmd_spectrum(a),
        Command::HvpCheck(a) => cmd_hvp_check(a),
        Command::Bench(a) => crate::bench::cmd_bench(a),
        Command::Repro(a) => {
            crate::interrupt::install();
            crate::repro::cmd_repro(a)
        }
    }
}
