//! Experiment configuration: a TOML file (`--config exp.toml`), overridden by flags, validated
//! into core objects in a second step. The resolved configuration is written to the run
//! directory as `config.toml` and is all that `--resume` needs.
//!
//! ```toml
//! [data]
//! name = "digits"          # digits | mnist1d | mnist5k | csv:PATH | fashion-mnist:DIR | cifar10:DIR | synthetic:teacher
//! per_class = 100          # or train_size / test_size
//! [model]
//! arch = "64-32-32-10"
//! act = "tanh"             # identity | tanh | relu | elu | softplus | gelu
//! loss = "mse"             # mse | ce
//! init = "pytorch"         # pytorch | lecun-normal | kaiming-normal | xavier-uniform
//! seed = 0
//! [optim]
//! opt = "gd"               # gd | sgd | momentum | nesterov | rmsprop | adam | adamw | clipped-adam | clipped-rmsprop
//! lr = 0.05
//! [run]
//! steps = 1000
//! [curvature]
//! eig_every = 10
//! ```

use serde::{Deserialize, Serialize};

use edgewise_core::{
    Activation, AdamConfig, Arch, Clip, HvpMethod, Init, Loss, MathBackend, MomentumConfig,
    Optimizer, RmsPropConfig, Schedule,
};

use crate::error::{Failure, Result};

/// The shortest decimal that reads back as `x`, widened to f64: settings are f32, and TOML and
/// JSON numbers are f64, so `0.05` would otherwise be written as `0.05000000074505806`.
fn short(x: f32) -> f64 {
    format!("{x}")
        .parse::<f64>()
        .ok()
        .filter(|w| *w as f32 == x)
        .unwrap_or(x as f64)
}

fn short_f32<S: serde::Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(short(*x))
}

fn short_opt_f32<S: serde::Serializer>(
    x: &Option<f32>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.serialize_some(&short(*x)),
        None => s.serialize_none(),
    }
}

/// Data selection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Data set spec.
    pub name: String,
    /// Training samples (size mode).
    pub train_size: Option<usize>,
    /// Test samples (size mode).
    pub test_size: Option<usize>,
    /// Training samples per class.
    pub per_class: Option<usize>,
    /// Test samples per class.
    pub test_per_class: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            name: "digits".into(),
            train_size: None,
            test_size: None,
            per_class: None,
            test_per_class: None,
        }
    }
}

/// Network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Widths joined by `-`, input first.
    pub arch: String,
    /// Hidden activation.
    pub act: String,
    /// Loss.
    pub loss: String,
    /// Initialisation scheme.
    pub init: String,
    /// Seed of the initialisation, the split, the shuffles and the probes.
    pub seed: u64,
    /// Math backend: `libm` or `micromath`.
    pub math: String,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: "64-32-32-10".into(),
            act: "tanh".into(),
            loss: "mse".into(),
            init: "pytorch".into(),
            seed: 0,
            math: "libm".into(),
        }
    }
}

/// Optimizer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Optimizer name.
    pub opt: String,
    /// Base learning rate.
    #[serde(serialize_with = "short_f32")]
    pub lr: f32,
    /// Minibatch size (absent: full batch).
    pub batch_size: Option<usize>,
    /// Drop the last partial batch of each epoch.
    pub drop_last: bool,
    /// Momentum coefficient.
    #[serde(serialize_with = "short_f32")]
    pub momentum: f32,
    /// Adam's beta1.
    #[serde(serialize_with = "short_f32")]
    pub beta1: f32,
    /// Adam's / RMSProp's beta2.
    #[serde(serialize_with = "short_opt_f32")]
    pub beta2: Option<f32>,
    /// Denominator epsilon.
    #[serde(serialize_with = "short_f32")]
    pub eps: f32,
    /// Clip value `c` of the clipped variants.
    #[serde(serialize_with = "short_opt_f32")]
    pub clip: Option<f32>,
    /// `upper` (min(sqrt v, c), restores instabilities) or `lower` (max(sqrt v, c)).
    pub clip_mode: String,
    /// Weight decay.
    #[serde(serialize_with = "short_f32")]
    pub weight_decay: f32,
    /// `constant`, `warmup:N`, `step:EVERY:FACTOR`, or `warmup:N,step:EVERY:FACTOR`.
    pub schedule: String,
}

/// The `beta2` an optimizer uses when `--beta2` is not given: Adam's and AdamW's 0.999,
/// 0.99 for RMSProp and the clipped variants (the paper's setting, see the brief); `None`
/// for optimizers without one.
pub fn beta2_default(opt: &str) -> Option<f32> {
    match opt {
        "adam" | "adamw" => Some(0.999),
        "rmsprop" | "clipped-rmsprop" | "clipped-adam" => Some(0.99),
        _ => None,
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            opt: "gd".into(),
            lr: 0.05,
            batch_size: None,
            drop_last: false,
            momentum: 0.9,
            beta1: 0.9,
            beta2: None,
            eps: 1e-8,
            clip: None,
            clip_mode: "upper".into(),
            weight_decay: 0.0,
            schedule: "constant".into(),
        }
    }
}

/// Length and bookkeeping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Optimizer steps.
    pub steps: Option<u64>,
    /// Epochs (steps = epochs * batches per epoch).
    pub epochs: Option<u64>,
    /// Stop once the training loss is at most this.
    #[serde(serialize_with = "short_opt_f32")]
    pub until_loss: Option<f32>,
    /// Stop once the training accuracy is at least this.
    #[serde(serialize_with = "short_opt_f32")]
    pub until_train_acc: Option<f32>,
    /// Evaluate on the test set every this many steps (and at the end).
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (0: only the final one).
    pub checkpoint_every: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            steps: None,
            epochs: None,
            until_loss: None,
            until_train_acc: None,
            eval_every: 10,
            checkpoint_every: 0,
        }
    }
}

/// Curvature tracking.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CurvatureConfig {
    /// Measure the top eigenpairs every this many steps (0: never).
    pub eig_every: u64,
    /// Number of top eigenvectors for the subspace score.
    pub eig_k: usize,
    /// `power` (warm-started), `warm-lanczos` (warm-started, stopped at the tolerance),
    /// `lanczos` (fresh, fixed length) or `lean-lanczos` (warm-started, four vectors of memory:
    /// the firmware's tracker; top pair alone).
    pub eig_method: String,
    /// `exact` (forward-over-reverse) or `fd` (finite differences).
    pub hvp: String,
    /// Number of training samples (a fixed seeded subset) used for curvature (absent: all).
    pub hessian_subset: Option<usize>,
    /// Also measure lambda_min at every eigen measurement with power iteration (Lanczos always
    /// gives it). Off by default: shifted power iteration converges slowly when
    /// `|lambda_min| << lambda_max` (up to `power_max_iter` products per measurement).
    pub lambda_min: bool,
    /// Hutchinson trace every this many steps (0: never).
    pub trace_every: u64,
    /// Rademacher probes per trace estimate.
    pub trace_probes: u32,
    /// Third derivative along the top eigenvector at every eigen measurement.
    pub hocm: bool,
    /// Preconditioned sharpness for adaptive optimizers at every eigen measurement.
    pub precond: bool,
    /// Relative residual tolerance of power iteration.
    #[serde(serialize_with = "short_f32")]
    pub power_tol: f32,
    /// Product cap of one power iteration.
    pub power_max_iter: u32,
    /// Lanczos steps.
    pub lanczos_steps: usize,
    /// Product cap of one warm-started Lanczos measurement (its basis holds this many vectors).
    pub lanczos_max_steps: usize,
    /// Also track the sharpness alone every this many steps (0: never) with warm-started
    /// Lanczos from the predicted eigenvector, independently of the `eig_every` measurements
    /// (columns `tracked_*`): e.g. a sharpness curve at every step between fresh spectrum
    /// measurements of `eig_method = "lanczos"`.
    pub track_every: u64,
}

impl Default for CurvatureConfig {
    fn default() -> Self {
        Self {
            eig_every: 0,
            eig_k: 1,
            eig_method: "warm-lanczos".into(),
            hvp: "exact".into(),
            hessian_subset: None,
            lambda_min: false,
            trace_every: 0,
            trace_probes: 10,
            hocm: false,
            precond: true,
            power_tol: 1e-3,
            power_max_iter: 100,
            lanczos_steps: 20,
            lanczos_max_steps: 50,
            track_every: 0,
        }
    }
}

/// The whole configuration of a training run (what `config.toml` holds).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Data.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Optimizer.
    pub optim: OptimConfig,
    /// Run length.
    pub run: RunConfig,
    /// Curvature tracking.
    pub curvature: CurvatureConfig,
}

impl TrainConfig {
    /// Parses a TOML configuration; errors name the file.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Failure::input(format!(
                "config file {origin}: {}",
                e.to_string().trim_end()
            ))
        })
    }

    /// Reads a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::input(format!("cannot read config file {}: {e}", path.display()))
        })?;
        // An empty file would read as all defaults: for a run directory's config.toml (which
        // lists every setting) that is a truncated file, and a --config file without settings
        // says nothing either.
        if text.trim().is_empty() {
            return Err(Failure::input(format!(
                "config file {} is empty (a run directory's config.toml lists every setting: this one was truncated or emptied; without --config the defaults apply)",
                path.display()
            )));
        }
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        let text = toml::to_string(self).unwrap_or_default();
        // An unset beta2 takes its optimizer's default: say which, as a comment where the
        // setting would be (read back as unset, so the file still describes the same run).
        match (self.optim.beta2, beta2_default(&self.optim.opt)) {
            (None, Some(b2)) => text.replacen(
                "\neps = ",
                &format!(
                    "\n# beta2 = {b2} (not set: the default of --opt {})\neps = ",
                    self.optim.opt
                ),
                1,
            ),
            _ => text,
        }
    }

    /// Every setting as `(section.key, value)`, in the order of the TOML file (the leaves of
    /// `config.toml`; unset optional settings are absent).
    pub fn flat_settings(&self) -> Vec<(String, toml::Value)> {
        fn flat(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flat(&key, v, out);
                    }
                }
                v => out.push((prefix.to_string(), v.clone())),
            }
        }
        let mut out = Vec::new();
        if let Ok(t) = toml::Value::try_from(self) {
            flat("", &t, &mut out);
        }
        out
    }

    /// A setting's value as text: an f32 setting as such (0.9, not 0.8999999761581421), a
    /// string with its TOML quotes when `quoted`.
    pub fn setting_text(v: &toml::Value, quoted: bool) -> String {
        match v {
            toml::Value::Float(x) if (*x as f32) as f64 == *x => format!("{}", *x as f32),
            toml::Value::String(x) if !quoted => x.clone(),
            v => v.to_string(),
        }
    }

    /// The settings in which `self` and `other` differ, as `section.key = this vs that`, in
    /// the order of the TOML file.
    pub fn differences(&self, other: &TrainConfig) -> Vec<String> {
        let table = |c: &TrainConfig| -> Vec<(String, String)> {
            c.flat_settings()
                .into_iter()
                .map(|(k, v)| (k, Self::setting_text(&v, true)))
                .collect()
        };
        let (a, b) = (table(self), table(other));
        let mut diff = Vec::new();
        for (k, va) in &a {
            match b.iter().find(|(kb, _)| kb == k) {
                Some((_, vb)) if vb == va => {}
                Some((_, vb)) => diff.push(format!("{k} = {va} vs {vb}")),
                None => diff.push(format!("{k} = {va} vs unset")),
            }
        }
        for (k, vb) in &b {
            if !a.iter().any(|(ka, _)| ka == k) {
                diff.push(format!("{k} = unset vs {vb}"));
            }
        }
        diff
    }
}

/// Parses `64-32-10` into widths.
pub fn parse_widths(s: &str) -> Result<Vec<usize>> {
    let bad = || {
        Failure::input(format!(
            "--arch {s:?}: expected widths joined by '-', e.g. 64-32-10 (input first, output last)"
        ))
    };
    // Plain decimal widths only (no sign, space or leading zero), so that the text a run
    // stores is the one way to write its widths.
    let widths: Vec<usize> = s
        .split('-')
        .map(|w| {
            let digits = !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
            if !digits || (w.len() > 1 && w.starts_with('0')) {
                return Err(bad());
            }
            w.parse::<usize>()
                .map_err(|_| Failure::input(format!("--arch {s}: width {w} is too large")))
        })
        .collect::<Result<_>>()?;
    if widths.len() < 2 {
        return Err(bad());
    }
    if let Some(i) = widths.iter().position(|&w| w == 0) {
        return Err(Failure::input(format!(
            "--arch {s}: layer {i} has zero width"
        )));
    }
    Ok(widths)
}

/// Formats widths as `64-32-10`.
pub fn format_widths(w: &[usize]) -> String {
    w.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// The validated objects a configuration describes.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Network.
    pub arch: Arch,
    /// Initialisation.
    pub init: Init,
    /// Optimizer.
    pub opt: Optimizer,
    /// Schedule.
    pub schedule: Schedule,
    /// HVP method.
    pub hvp: HvpMethod,
    /// How the top eigenpairs are measured.
    pub eig_method: crate::track::EigMethod,
    /// True for the adaptive optimizers (RMSProp, Adam family).
    pub adaptive: bool,
}

fn one_of<T: Copy>(flag: &str, value: &str, options: &[(&str, T)]) -> Result<T> {
    options
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            Failure::input(format!(
                "{flag} {value:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

/// Parses a schedule string.
pub fn parse_schedule(s: &str) -> Result<Schedule> {
    let bad = || {
        Failure::input(format!(
            "--schedule {s:?}: expected constant, warmup:N, step:EVERY:FACTOR or warmup:N,step:EVERY:FACTOR"
        ))
    };
    let mut sch = Schedule::constant();
    if s == "constant" {
        return Ok(sch);
    }
    let (mut warmup, mut step) = (false, false);
    for part in s.split(',') {
        let f: Vec<&str> = part.split(':').collect();
        let twice = |what: &str| {
            Failure::input(format!(
                "--schedule {s:?}: {what} is given twice (one warmup and one step decay at most)"
            ))
        };
        match f.as_slice() {
            ["warmup", n] => {
                if std::mem::replace(&mut warmup, true) {
                    return Err(twice("warmup"));
                }
                sch.warmup = n.parse().map_err(|_| bad())?
            }
            ["step", e, g] => {
                if std::mem::replace(&mut step, true) {
                    return Err(twice("step"));
                }
                sch.decay_every = e.parse().map_err(|_| bad())?;
                sch.decay_factor = g.parse().map_err(|_| bad())?;
                if sch.decay_every == 0 {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
    }
    sch.validate()
        .map_err(|e| Failure::input(format!("--schedule {s:?}: {e}")))?;
    Ok(sch)
}

fn positive(flag: &str, v: f32) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        let hint = if v == 0.0 {
            " (f32 rounds values below about 7e-46 to 0)"
        } else {
            ""
        };
        Err(Failure::input(format!(
            "{flag} {v}: must be positive and finite{hint}"
        )))
    }
}

impl TrainConfig {
    /// Refuses integer settings above `i64::MAX`: TOML integers are 64-bit signed, so such a
    /// setting could not be written to `config.toml` (nor to the checkpoints' metadata).
    pub fn check_integers(&self) -> Result<()> {
        let (d, r, c) = (&self.data, &self.run, &self.curvature);
        let some = |x: Option<usize>| x.map(|x| x as u128);
        let fields: [(&str, Option<u128>); 16] = [
            ("--seed", Some(self.model.seed as u128)),
            ("--train-size", some(d.train_size)),
            ("--test-size", some(d.test_size)),
            ("--per-class", some(d.per_class)),
            ("--test-per-class", some(d.test_per_class)),
            ("--batch-size", some(self.optim.batch_size)),
            ("--steps", r.steps.map(u128::from)),
            ("--epochs", r.epochs.map(u128::from)),
            ("--eval-every", Some(r.eval_every as u128)),
            ("--checkpoint-every", Some(r.checkpoint_every as u128)),
            ("--eig-every", Some(c.eig_every as u128)),
            ("--hessian-subset", some(c.hessian_subset)),
            ("--trace-every", Some(c.trace_every as u128)),
            ("--lanczos-steps", Some(c.lanczos_steps as u128)),
            ("--lanczos-max-steps", Some(c.lanczos_max_steps as u128)),
            ("--track-every", Some(c.track_every as u128)),
        ];
        for (flag, v) in fields {
            if let Some(v) = v.filter(|&v| v > i64::MAX as u128) {
                return Err(Failure::input(format!(
                    "{flag} {v}: at most {} (config.toml holds 64-bit signed integers)",
                    i64::MAX
                )));
            }
        }
        Ok(())
    }

    /// Validates the configuration into core objects. Data-dependent checks (widths vs data)
    /// happen when the data is loaded.
    pub fn resolve(&self) -> Result<Resolved> {
        self.check_integers()?;
        let m = &self.model;
        let widths = parse_widths(&m.arch)?;
        let acts: Vec<(&str, Activation)> =
            Activation::ALL.iter().map(|a| (a.name(), *a)).collect();
        let act = one_of("--act", &m.act, &acts)?;
        let loss = one_of(
            "--loss",
            &m.loss,
            &[("mse", Loss::Mse), ("ce", Loss::CrossEntropy)],
        )?;
        let inits: Vec<(&str, Init)> = Init::ALL.iter().map(|i| (i.name(), *i)).collect();
        let init = one_of("--init", &m.init, &inits)?;
        let math = one_of(
            "--math",
            &m.math,
            &[
                ("libm", MathBackend::Libm),
                ("micromath", MathBackend::Micromath),
            ],
        )?;
        let arch = Arch::new(&widths, act, loss)
            .map_err(|e| Failure::input(format!("--arch {}: {e}", m.arch)))?
            .with_math(math);

        let o = &self.optim;
        positive("--lr", o.lr)?;
        if o.batch_size == Some(0) {
            return Err(Failure::input("--batch-size 0: must be at least 1"));
        }
        if !(0.0..1.0).contains(&o.momentum) {
            return Err(Failure::input(format!(
                "--momentum {}: must be in [0, 1)",
                o.momentum
            )));
        }
        if !(0.0..1.0).contains(&o.beta1) {
            return Err(Failure::input(format!(
                "--beta1 {}: must be in [0, 1)",
                o.beta1
            )));
        }
        if let Some(b2) = o.beta2 {
            if !(0.0..1.0).contains(&b2) {
                return Err(Failure::input(format!("--beta2 {b2}: must be in [0, 1)")));
            }
        }
        if !(o.eps >= 0.0 && o.eps.is_finite()) {
            return Err(Failure::input(format!("--eps {}: must be >= 0", o.eps)));
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(Failure::input(format!(
                "--weight-decay {}: must be >= 0",
                o.weight_decay
            )));
        }
        let names = [
            "gd",
            "sgd",
            "momentum",
            "nesterov",
            "rmsprop",
            "adam",
            "adamw",
            "clipped-adam",
            "clipped-rmsprop",
        ];
        let opt_name = one_of("--opt", &o.opt, &names.map(|n| (n, n)))?;
        let clip = if opt_name.starts_with("clipped-") {
            let c = o.clip.ok_or_else(|| {
                Failure::input(format!(
                    "--opt {opt_name} needs --clip C (e.g. --clip 0.01)"
                ))
            })?;
            positive("--clip", c)?;
            one_of(
                "--clip-mode",
                &o.clip_mode,
                &[("upper", Clip::Upper(c)), ("lower", Clip::Lower(c))],
            )?
        } else {
            if o.clip.is_some() {
                return Err(Failure::input(format!(
                    "--clip applies to clipped-adam and clipped-rmsprop, not to --opt {opt_name}"
                )));
            }
            Clip::None
        };
        let wd = o.weight_decay;
        let opt = match opt_name {
            "gd" | "sgd" => Optimizer::Gd { weight_decay: wd },
            "momentum" | "nesterov" => Optimizer::Momentum(MomentumConfig {
                momentum: o.momentum,
                nesterov: opt_name == "nesterov",
                weight_decay: wd,
            }),
            "rmsprop" | "clipped-rmsprop" => Optimizer::RmsProp(RmsPropConfig {
                beta2: o.beta2.or(beta2_default(opt_name)).unwrap_or(0.99),
                eps: o.eps,
                weight_decay: wd,
                bias_correction: true,
                clip,
            }),
            _ => Optimizer::Adam(AdamConfig {
                beta1: o.beta1,
                beta2: o.beta2.or(beta2_default(opt_name)).unwrap_or(0.999),
                eps: o.eps,
                weight_decay: wd,
                decoupled: opt_name == "adamw",
                clip,
            }),
        };
        opt.validate()
            .map_err(|e| Failure::input(format!("--opt {opt_name}: {e}")))?;
        let schedule = parse_schedule(&o.schedule)?;

        let r = &self.run;
        if let Some(x) = r.until_loss {
            if !(x >= 0.0 && x.is_finite()) {
                return Err(Failure::input(format!(
                    "--until-loss {x}: must be >= 0 and finite"
                )));
            }
        }
        if r.steps.is_some() && r.epochs.is_some() {
            return Err(Failure::input("give either --steps or --epochs, not both"));
        }
        if r.steps == Some(0) || r.epochs == Some(0) {
            return Err(Failure::input("--steps / --epochs must be at least 1"));
        }
        if r.eval_every == 0 {
            return Err(Failure::input("--eval-every must be at least 1"));
        }
        if let Some(a) = r.until_train_acc {
            if !(0.0..=1.0).contains(&a) {
                return Err(Failure::input(format!(
                    "--until-train-acc {a}: must be in [0, 1]"
                )));
            }
        }

        let c = &self.curvature;
        let hvp = one_of(
            "--hvp",
            &c.hvp,
            &[
                ("exact", HvpMethod::Exact),
                ("fd", HvpMethod::FiniteDifference),
            ],
        )?;
        let eig_method = one_of(
            "--eig-method",
            &c.eig_method,
            &crate::track::EigMethod::NAMES,
        )?;
        let lanczos = eig_method == crate::track::EigMethod::Lanczos;
        if c.eig_k == 0 || c.eig_k > edgewise_core::MAX_SUBSPACE_K {
            return Err(Failure::input(format!(
                "--eig-k {}: must be in 1..=16",
                c.eig_k
            )));
        }
        if lanczos && c.lanczos_steps < c.eig_k {
            return Err(Failure::input("--lanczos-steps must be at least --eig-k"));
        }
        if c.lanczos_steps == 0 {
            return Err(Failure::input("--lanczos-steps must be at least 1"));
        }
        if eig_method == crate::track::EigMethod::LeanLanczos && c.eig_k != 1 {
            return Err(Failure::input(format!(
                "--eig-method lean-lanczos measures the top pair alone: --eig-k {} must be 1 (use warm-lanczos for more)",
                c.eig_k
            )));
        }
        if eig_method == crate::track::EigMethod::WarmLanczos && c.lanczos_max_steps < c.eig_k {
            return Err(Failure::input(
                "--lanczos-max-steps must be at least --eig-k",
            ));
        }
        positive("--power-tol", c.power_tol)?;
        if c.power_tol >= 1.0 {
            return Err(Failure::input(format!(
                "--power-tol {}: a relative residual tolerance must be below 1 (a residual as large as the eigenvalue says nothing about it); the default is 1e-3",
                c.power_tol
            )));
        }
        if c.power_max_iter == 0 {
            return Err(Failure::input("--power-max-iter must be at least 1"));
        }
        if c.trace_probes == 0 {
            return Err(Failure::input("--trace-probes must be at least 1"));
        }
        if c.hessian_subset == Some(0) {
            return Err(Failure::input("--hessian-subset must be at least 1"));
        }
        for (on, flag) in [(c.hocm, "--hocm"), (c.lambda_min, "--lambda-min")] {
            if on && c.eig_every == 0 {
                return Err(Failure::input(format!(
                    "{flag} is measured at the eigen measurements, and there are none: give --eig-every K"
                )));
            }
        }
        if c.hocm && matches!(act, Activation::Relu | Activation::Elu) {
            return Err(Failure::input(format!(
                "--hocm with --act {}: T(v,v,v) is a central difference of Hessian-vector \
                 products, and the activation's kinks (relu's first, elu's second derivative \
                 jumps at 0) fall inside its step: the value is not the third derivative; \
                 use a smooth activation \
                 (tanh, softplus, gelu, identity)",
                act.name()
            )));
        }
        let adaptive = matches!(opt, Optimizer::Adam(_) | Optimizer::RmsProp(_));
        Ok(Resolved {
            arch,
            init,
            opt,
            schedule,
            hvp,
            eig_method,
            adaptive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_and_round_trip() {
        let c = TrainConfig::default();
        c.resolve().unwrap();
        let back = TrainConfig::from_toml(&c.to_toml(), "x").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn an_unset_beta2_is_named_with_its_default_and_read_back_unset() {
        for (opt, clip, line) in [
            (
                "adam",
                None,
                Some("# beta2 = 0.999 (not set: the default of --opt adam)\n"),
            ),
            (
                "adamw",
                None,
                Some("# beta2 = 0.999 (not set: the default of --opt adamw)\n"),
            ),
            (
                "rmsprop",
                None,
                Some("# beta2 = 0.99 (not set: the default of --opt rmsprop)\n"),
            ),
            (
                "clipped-adam",
                Some(0.01),
                Some("# beta2 = 0.99 (not set: the default of --opt clipped-adam)\n"),
            ),
            ("gd", None, None),
            ("momentum", None, None),
        ] {
            let mut c = TrainConfig::default();
            c.optim.opt = opt.into();
            c.optim.clip = clip;
            let text = c.to_toml();
            match line {
                // Where `beta2 = x` stands when set: after beta1, before eps.
                Some(l) => assert!(text.contains(&format!("\n{l}eps = ")), "{opt}: {text}"),
                None => assert!(!text.contains("beta2"), "{opt}: {text}"),
            }
            let back = TrainConfig::from_toml(&text, "x").unwrap();
            assert_eq!(back, c);
            assert_eq!(back.optim.beta2, None);
            // The value named is the one training uses.
            let used = match c.resolve().unwrap().opt {
                Optimizer::Adam(a) => Some(a.beta2),
                Optimizer::RmsProp(r) => Some(r.beta2),
                _ => None,
            };
            assert_eq!(used, beta2_default(opt), "{opt}");
            c.optim.beta2 = Some(0.95);
            let text = c.to_toml();
            assert!(
                !text.contains("# beta2") && text.contains("\nbeta2 = 0.95\neps = "),
                "{opt}: {text}"
            );
        }
    }

    #[test]
    fn floats_are_written_short_and_read_back_exactly() {
        let mut c = TrainConfig::default();
        c.optim.lr = 0.05;
        c.optim.clip = Some(0.01);
        c.optim.beta2 = Some(0.999);
        c.run.until_loss = Some(1e-7);
        c.optim.weight_decay = 5e-4;
        let text = c.to_toml();
        for line in [
            "lr = 0.05\n",
            "clip = 0.01\n",
            "momentum = 0.9\n",
            "eps = 0.00000001\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(!text.contains("until_train_acc"), "{text}");
        let back = TrainConfig::from_toml(&text, "x").unwrap();
        assert_eq!(back, c);
        // Every f32 reads back to the same bits, also those whose shortest form is long.
        for bits in (0..u32::MAX).step_by(7_654_321) {
            let x = f32::from_bits(bits);
            if x.is_finite() {
                let mut c = TrainConfig::default();
                c.optim.lr = x;
                let back = TrainConfig::from_toml(&c.to_toml(), "x").unwrap();
                assert_eq!(back.optim.lr.to_bits(), bits, "{x}");
            }
        }
    }

    #[test]
    fn bad_values_name_the_flag() {
        let mut c = TrainConfig::default();
        c.curvature.hocm = true;
        assert!(c
            .resolve()
            .unwrap_err()
            .message
            .contains("--hocm is measured at the eigen"));
        c.curvature.eig_every = 5;
        c.resolve().unwrap();
        let mut c = TrainConfig::default();
        c.curvature.lambda_min = true;
        assert!(c
            .resolve()
            .unwrap_err()
            .message
            .contains("--lambda-min is measured"));
        let mut c = TrainConfig::default();
        c.optim.lr = -1.0;
        assert!(c.resolve().unwrap_err().message.contains("--lr"));
        let mut c = TrainConfig::default();
        c.model.arch = "64-0-10".into();
        assert!(c.resolve().unwrap_err().message.contains("zero width"));
        // One way to write widths: no leading zeros, signs or spaces.
        assert_eq!(parse_widths("64-16-10").unwrap(), [64, 16, 10]);
        for bad in [
            "064-16-10",
            "64-+16-10",
            "64-16 -10",
            "64--10",
            "64",
            "-64-10",
            "",
        ] {
            let e = parse_widths(bad).unwrap_err().message;
            assert!(e.contains("expected widths joined by '-'"), "{bad:?}: {e}");
        }
        let e = parse_widths("64-99999999999999999999-10")
            .unwrap_err()
            .message;
        assert!(e.contains("width 99999999999999999999 is too large"), "{e}");
        let mut c = TrainConfig::default();
        c.model.act = "sigmoid".into();
        assert!(c.resolve().unwrap_err().message.contains("--act"));
        let mut c = TrainConfig::default();
        c.optim.opt = "clipped-adam".into();
        assert!(c.resolve().unwrap_err().message.contains("--clip"));
        assert!(TrainConfig::from_toml("[model]\nbogus = 1", "f.toml")
            .unwrap_err()
            .message
            .contains("f.toml"));
    }

    #[test]
    fn schedules_parse() {
        assert_eq!(parse_schedule("constant").unwrap(), Schedule::constant());
        let s = parse_schedule("warmup:10,step:100:0.5").unwrap();
        assert_eq!((s.warmup, s.decay_every, s.decay_factor), (10, 100, 0.5));
        assert!(parse_schedule("step:0:0.5").is_err());
        assert!(parse_schedule("cosine").is_err());
        for twice in ["warmup:3,warmup:4", "step:10:0.5,step:20:0.5"] {
            let e = parse_schedule(twice).unwrap_err().message;
            assert!(e.contains("given twice"), "{e}");
        }
    }
}
