//! `edgewise train`: a deterministic training run with curvature tracking.
//!
//! Per step `t` (0-based), at the parameters `theta_t`: the batch gradient and loss; the test
//! metrics every `eval_every` steps; the curvature every `eig_every` steps on the Hessian subset;
//! one row of `metrics.csv`; then the optimizer update to `theta_(t+1)`. Every random choice is a
//! function of the seed and the step or epoch, so a run resumed from a checkpoint continues with
//! the same bits as an uninterrupted one. The thread count never changes a bit.
//!
//! A run directory holds `config.toml` (the resolved configuration), `metrics.csv`,
//! `summary.json`, `checkpoints/` (`final.safetensors`, periodic `step_NNNNNN.safetensors`,
//! and `resume.safetensors` with the optimizer and tracker state), `plots/`, and `run.lock`,
//! locked by the process writing the run ([`LOCK_FILE`]).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgewise_core::vec::norm64;
use edgewise_core::{Arch, Data, EpochSampler, Features, OptState, SplitMix64, Targets};
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint};
use crate::config::{Resolved, TrainConfig};
use crate::data::{self, Dataset, SplitSpec};
use crate::engine::{ParObjective, Workspace};
use crate::error::{core_err, Failure, Result};
use crate::fsio;
use crate::metrics::{self, Row};
use crate::track::{Measured, Tracker};

/// Default number of steps when neither `--steps` nor `--epochs` is given.
pub const DEFAULT_STEPS: u64 = 1000;

const HESSIAN_SUBSET_STREAM: u64 = 0x6873_7562;

/// How to run (what does not change the results).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run directory.
    pub out: PathBuf,
    /// Worker threads (results are identical for every count).
    pub threads: usize,
    /// Samples per tile (a performance knob; results are identical for every value).
    pub tile: usize,
    /// No progress output.
    pub quiet: bool,
    /// Replace an existing run directory.
    pub force: bool,
    /// Continue the run in `out`.
    pub resume: bool,
    /// Write SVG plots at the end.
    pub plots: bool,
    /// Testing aid: exit abruptly (code 137, as if killed) right after this many steps.
    pub interrupt_after: Option<u64>,
}

/// Final values of a run.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct FinalValues {
    /// Loss on the whole training set at the final parameters.
    pub train_loss: f32,
    /// Accuracy on the whole training set.
    pub train_acc: f32,
    /// Test loss.
    pub test_loss: f32,
    /// Test accuracy.
    pub test_acc: f32,
    /// Sharpness at the final parameters (if tracked).
    pub sharpness: Option<f32>,
    /// `lr * sharpness` at the final parameters.
    pub lr_x_sharpness: Option<f32>,
}

/// A fingerprint of the running executable (FNV-1a 64 of its bytes, in hex), written to
/// `summary.json` as `build`. `edgewise repro` reuses a finished run only if the same build
/// wrote it, so that a report never mixes results of different code under one configuration.
/// `None` when the executable cannot be read.
pub fn build_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let bytes = std::fs::read(std::env::current_exe().ok()?).ok()?;
        let mut h = crate::fnv::Fnv64::new();
        h.bytes(&bytes);
        Some(format!("{:016x}", h.finish()))
    })
    .as_deref()
}

/// The build name used when the executable cannot be read, or a checkpoint names none.
const UNKNOWN_BUILD: &str = "unknown";

/// The builds that wrote the steps up to a resume checkpoint, from its `builds` metadata
/// (checkpoints of versions that did not record it give `unknown`).
fn lineage(meta: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let list = meta
        .get("builds")
        .map(|s| {
            s.split(',')
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if list.is_empty() {
        vec![UNKNOWN_BUILD.to_string()]
    } else {
        list
    }
}

/// `summary.json`.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Summary {
    /// edgewise version.
    pub version: String,
    /// Fingerprint of the executable that wrote it ([`build_id`]).
    pub build: Option<String>,
    /// Every build that wrote steps of this run, earliest first: one entry, unless the run was
    /// resumed (`--resume`) by a different build (or from a checkpoint that names none:
    /// `unknown`). Only a run with one build is the run of that build's code.
    pub builds: Vec<String>,
    /// The run stopped on a NaN or infinite loss.
    pub diverged: bool,
    /// Step at which the loss was first non-finite.
    pub diverged_at_step: Option<u64>,
    /// Why the run stopped: `steps` or `epochs` (the length it was given), `until_loss`,
    /// `until_train_acc` or `diverged`.
    pub stopped_by: String,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Epochs begun.
    pub epochs: u64,
    /// Final values (absent when the run diverged before any finite state).
    pub final_values: Option<FinalValues>,
    /// Largest measured sharpness: over the rows of `metrics.csv` and the final parameters'
    /// measurement (`final_values.sharpness`, taken after the last step).
    pub max_sharpness: Option<f32>,
    /// Measured steps above the optimizer's stability threshold: `lr * sharpness` for GD and
    /// momentum, the preconditioned sharpness for RMSProp and Adam.
    pub unstable_measurements: u64,
    /// Steps whose loss exceeded the previous step's (full-batch instabilities).
    pub loss_increases: u64,
    /// Eigen measurements made.
    pub measurements: u64,
    /// Mean Hessian-vector products per eigen measurement (all its quantities: the top-k
    /// eigenpairs, lambda_min, the preconditioned sharpness; not the trace estimates).
    pub mean_hvps_per_measurement: Option<f64>,
    /// Mean Hessian-vector products per sharpness measurement (the top eigenpair alone).
    pub mean_sharpness_hvps: Option<f64>,
    /// Measurements of the sharpness-only tracker (`track_every`).
    pub tracked_measurements: u64,
    /// Its mean Hessian-vector products per measurement.
    pub mean_tracked_hvps: Option<f64>,
    /// Parameters.
    pub n_params: usize,
    /// Training samples.
    pub n_train: usize,
    /// Test samples.
    pub n_test: usize,
    /// Wall-clock seconds of this invocation (not part of the deterministic results).
    pub wall_time_s: f64,
    /// Threads used (`--threads`, a sweep's `--threads-per-run`): not part of the deterministic
    /// results, which are bit-identical for every thread count.
    pub threads: usize,
    /// Measurements of the whole run that missed the residual tolerance (their values are
    /// estimates); `null` when the run was resumed from a checkpoint of an earlier version,
    /// which did not count them.
    pub unconverged: Option<Unconverged>,
    /// The samples whose Hessian the curvature measurements average over (`--hessian-subset`):
    /// their positions in the training split, ascending (0 is the split's first sample);
    /// `null` when the measurements use the whole training split.
    pub hessian_subset: Option<Vec<u32>>,
}

/// `summary.json`'s text: pretty-printed, with the Hessian subset's indices on one line
/// (`serde_json` would give each its own).
fn summary_json(summary: &Summary) -> Result<String> {
    let json =
        serde_json::to_string_pretty(summary).map_err(|e| Failure::internal(e.to_string()))?;
    let key = "\"hessian_subset\": [";
    let Some(start) = json.find(key).map(|i| i + key.len()) else {
        return Ok(json);
    };
    let Some(len) = json[start..].find(']') else {
        return Ok(json);
    };
    let list: String = json[start..start + len]
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!("{}{list}{}", &json[..start], &json[start + len..]))
}

/// The outcome of a run.
pub struct Outcome {
    /// Its summary.
    pub summary: Summary,
}

/// Training and test data, and the Hessian subset, as owned vectors.
pub struct Prepared {
    /// Training set.
    pub train: Dataset,
    /// Test set.
    pub test: Dataset,
    /// Indices of the Hessian subset into the training set (ascending).
    pub hessian_idx: Option<Vec<u32>>,
}

/// A borrowed core view of a data set.
pub fn view(d: &Dataset) -> std::result::Result<Data<'_>, edgewise_core::Error> {
    let targets = match &d.targets {
        Some(t) => Targets::Values(t),
        None => Targets::Classes(&d.labels),
    };
    Data::with_features(Features::F32(&d.x), d.dim, targets)
}

/// Loads and splits the data of `cfg`, and checks it against the network.
pub fn prepare(cfg: &TrainConfig, arch: &Arch) -> Result<Prepared> {
    let seed = cfg.model.seed;
    let loaded = data::load(&cfg.data.name, seed)?;
    let spec = SplitSpec {
        train_size: cfg.data.train_size,
        test_size: cfg.data.test_size,
        per_class: cfg.data.per_class,
        test_per_class: cfg.data.test_per_class,
        seed,
    };
    let (train, test) = data::split(loaded, &spec)?;
    let w = arch.widths();
    if train.dim != arch.input_dim() {
        return Err(Failure::input(format!(
            "--arch {}: the first width is {}, but data set {} has {} features per sample",
            crate::config::format_widths(w),
            arch.input_dim(),
            cfg.data.name,
            train.dim
        )));
    }
    let out_needed = if train.is_regression() {
        train.target_dim()
    } else {
        train.n_classes.max(test.n_classes)
    };
    if arch.output_dim() != out_needed {
        let what = if train.is_regression() {
            "target values"
        } else {
            "classes"
        };
        return Err(Failure::input(format!(
            "--arch {}: the last width is {}, but data set {} has {out_needed} {what}",
            crate::config::format_widths(w),
            arch.output_dim(),
            cfg.data.name
        )));
    }
    if train.is_regression() && arch.loss() == edgewise_core::Loss::CrossEntropy {
        return Err(Failure::input(format!(
            "--loss ce needs class labels, but data set {} is a regression data set",
            cfg.data.name
        )));
    }
    let hessian_idx = match cfg.curvature.hessian_subset {
        Some(k) if k < train.n => {
            let mut idx: Vec<u32> = (0..train.n as u32).collect();
            SplitMix64::derive(seed ^ HESSIAN_SUBSET_STREAM, 0).shuffle(&mut idx);
            idx.truncate(k);
            idx.sort_unstable();
            Some(idx)
        }
        _ => None,
    };
    Ok(Prepared {
        train,
        test,
        hessian_idx,
    })
}

/// A failed read or write of a run's own file: bad input (exit code 2) when the path is at fault
/// ([`fsio::IoError::is_bad_path`]), otherwise a failure to write results (exit code 1).
fn io_err(e: fsio::IoError) -> Failure {
    if e.is_bad_path() {
        Failure::input(e.to_string())
    } else {
        Failure::internal(e.to_string())
    }
}

/// A failure to write into an output directory: bad input (exit code 2) when the path is at
/// fault (missing, not a directory, no permission, a read-only file system), otherwise (a full
/// disk, an I/O error) a failure to write results (exit code 1), as for every other write.
pub(crate) fn out_err(e: fsio::IoError) -> Failure {
    let message = format!("cannot write to output directory: {e}");
    if e.is_bad_path() {
        Failure::input(message)
    } else {
        Failure::internal(message)
    }
}

fn ckpt_err(e: checkpoint::CheckpointError) -> Failure {
    Failure::input(e.to_string())
}

/// The lock file of a run directory: the process writing the run holds an exclusive advisory
/// lock on it (`lock_run`) from before it touches the directory until it exits. The file
/// stays (it is never replaced or deleted, which would let a second process lock another
/// file of the same name); the lock goes with the process, however it ends.
pub const LOCK_FILE: &str = "run.lock";

/// The files a run (and a `report` of it alone) writes at the top of its directory.
pub(crate) const RUN_FILES: [&str; 6] = [
    "config.toml",
    "metrics.csv",
    "summary.json",
    "report.md",
    "report.csv",
    LOCK_FILE,
];

/// The subdirectories a run writes.
pub(crate) const RUN_DIRS: [&str; 2] = ["checkpoints", "plots"];

/// Whether `name` is one of the checkpoints a run writes: `final`, `resume` or
/// `step_NNNNNN.safetensors`.
fn is_run_checkpoint(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".safetensors") else {
        return false;
    };
    stem == "final"
        || stem == "resume"
        || stem
            .strip_prefix("step_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks, without changing anything, that a run can be written into its existing directory
/// `dir` (a resume's, or the one `--force` replaces), before anything in it is deleted: each
/// of the run's files, checkpoints and (with `plots`) plots is absent or a file, not a
/// directory; its subdirectories are directories; files can be created in all three (a
/// read-only directory or file system); and, for a resume (`append`), `metrics.csv` can be
/// appended to. `Err` says what is in the way. (What it cannot foresee: a full disk, a file
/// made immutable.)
pub(crate) fn check_run_paths(
    dir: &Path,
    append: bool,
    plots: bool,
) -> std::result::Result<(), String> {
    let is_dir = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_dir());
    let in_the_way = |p: &Path, what: &str| {
        format!(
            "{} is a directory, where the run keeps its {what}",
            p.display()
        )
    };
    for name in RUN_FILES.iter().filter(|&&n| n != LOCK_FILE) {
        let p = dir.join(name);
        if is_dir(&p) {
            return Err(in_the_way(&p, name));
        }
    }
    let mut writable = vec![dir.to_path_buf()];
    for sub in RUN_DIRS.iter().filter(|&&d| plots || d != "plots") {
        let d = dir.join(sub);
        match std::fs::metadata(&d) {
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "{} is not a directory, where the run keeps its {sub}/",
                    d.display()
                ))
            }
            Ok(_) => writable.push(d),
            Err(_) => {}
        }
    }
    let ck = dir.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&ck) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if is_run_checkpoint(&name) && is_dir(&e.path()) {
                return Err(in_the_way(&e.path(), "checkpoint of that name"));
            }
        }
    }
    if plots {
        for name in crate::plots::RUN_PLOTS {
            let p = dir.join("plots").join(format!("{name}.svg"));
            if is_dir(&p) {
                return Err(in_the_way(&p, "plot of that name"));
            }
        }
    }
    for d in &writable {
        fsio::probe_writable(d).map_err(|e| e.to_string())?;
    }
    if append {
        let m = dir.join("metrics.csv");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&m)
            .map_err(|e| format!("cannot append to {}: {e}", m.display()))?;
    }
    Ok(())
}

/// Whether the entry `e` of a run directory without a `config.toml` can be what a run left
/// when it stopped while its directory was being created: one of the run's own files, a
/// temporary file of an interrupted write of one ([`fsio::temp_target`]: a run killed while
/// writing its first `config.toml` leaves `.config.toml.tmp-PID-N`), or an empty
/// subdirectory of the run's.
pub(crate) fn is_own_entry(e: &std::fs::DirEntry) -> bool {
    let name = e.file_name();
    let name = name.to_string_lossy();
    if RUN_FILES.contains(&name.as_ref())
        || fsio::temp_target(&name).is_some_and(|t| RUN_FILES.contains(&t))
    {
        return true;
    }
    RUN_DIRS.contains(&name.as_ref())
        && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none())
}

/// Removes what interrupted writes of a run left in `out` (which this process has locked):
/// the temporary files of [`fsio::atomic_write`] for the run's files, checkpoints and plots.
/// A killed process leaves them behind; nothing else would remove them. The temporary files
/// of `report.md` / `report.csv` stay (`report` does not lock the run directory).
fn remove_stale_temps(out: &Path) {
    type IsOurs = fn(&str) -> bool;
    let places: [(PathBuf, IsOurs); 3] = [
        (out.to_path_buf(), |t| {
            RUN_FILES.contains(&t) && !t.starts_with("report.") && t != LOCK_FILE
        }),
        (out.join("checkpoints"), |t| t.ends_with(".safetensors")),
        (out.join("plots"), |t| t.ends_with(".svg")),
    ];
    for (dir, ours) in places {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if fsio::temp_target(&name.to_string_lossy()).is_some_and(ours)
                && e.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Whether `--force` may replace the non-empty directory `out`: it holds a run's
/// `config.toml` (one that parses as edgewise's: another tool's `config.toml` does not make
/// a directory ours), or (a run stopped while its directory was being created) nothing but
/// the run's own entries ([`is_own_entry`]). Anything else is not ours to delete.
fn holds_a_run(out: &Path) -> bool {
    let config = out.join("config.toml");
    if TrainConfig::from_file(&config).is_ok() {
        return true;
    }
    if config.exists() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(out) else {
        return false;
    };
    entries
        .into_iter()
        .all(|e| e.is_ok_and(|e| is_own_entry(&e)))
}

/// Takes the lock: `Ok(true)` if it is ours, `Ok(false)` if another open file holds it.
/// `File::try_lock` (`flock(LOCK_EX | LOCK_NB)` on Unix, `LockFileEx` on Windows) is stable
/// since Rust 1.89.
#[rustversion::since(1.89)]
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Compilers before Rust 1.89 (the workspace supports 1.85) have no file locks in `std`:
/// their builds do not lock run directories.
#[rustversion::before(1.89)]
fn try_lock(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// Locks the run directory `out` (which exists) for this process: an exclusive advisory lock
/// (`flock`) on its [`LOCK_FILE`], held while the returned file is open, and released by the
/// operating system when the process exits, however it ends (a killed run leaves no stale
/// lock). Another process (or another run of this process: a sweep's) that holds it is bad
/// input. Where the file system cannot lock at all, the run goes on with a warning.
fn lock_run(out: &Path) -> Result<std::fs::File> {
    let path = out.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            Failure::input(format!(
                "cannot write to output directory {}: {}: {e}",
                out.display(),
                path.display()
            ))
        })?;
    match try_lock(&file) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Failure::input(format!(
                "another edgewise process is writing {} (it holds the lock on {}); wait for it to finish, or stop it",
                out.display(),
                path.display()
            )))
        }
        Err(e) => eprintln!(
            "warning: cannot lock {} ({e}): a second process writing {} at the same time would not be stopped",
            path.display(),
            out.display()
        ),
    }
    Ok(file)
}

/// The entries of `out` other than the lock file.
fn has_entries_besides_lock(out: &Path) -> bool {
    std::fs::read_dir(out)
        .map(|d| d.flatten().any(|e| e.file_name() != LOCK_FILE))
        .unwrap_or(true)
}

/// Creates (or checks, for `--resume`) the run directory and locks it ([`lock_run`]) before
/// it changes anything in it. The returned lock is held for the whole run.
fn prepare_dir(opts: &RunOptions) -> Result<std::fs::File> {
    let out = &opts.out;
    if opts.resume {
        if !out.join("config.toml").is_file()
            || !out.join("checkpoints/resume.safetensors").is_file()
        {
            if crate::report::read_summary(&out.join("summary.json")).is_ok_and(|s| s.diverged) {
                return Err(Failure::input(format!(
                    "--resume {}: the run diverged (non-finite loss, summary.json) and cannot be continued (a diverged run writes no resume checkpoint); start a new run with a smaller --lr",
                    out.display()
                )));
            }
            // A run still writing its first checkpoint: say so, not that it is no run.
            if out.join(LOCK_FILE).is_file() && out.join("config.toml").is_file() {
                drop(lock_run(out)?);
            }
            return Err(Failure::input(format!(
                "--resume {}: not a run directory with a checkpoint (config.toml and checkpoints/resume.safetensors are needed: a run writes its resume state when it finishes and every --checkpoint-every K steps, so a run interrupted before either cannot be resumed)",
                out.display()
            )));
        }
        let lock = lock_run(out)?;
        remove_stale_temps(out);
        return Ok(lock);
    }
    let exists_error = || {
        Failure::input(format!(
            "run directory {} already exists; pass --force to replace it or --resume to continue it",
            out.display()
        ))
    };
    // Checked before the lock, so that a refused run creates no lock file in a directory
    // that is not a run's.
    if out.exists() {
        if !out.is_dir() {
            return Err(Failure::input(format!(
                "--out {}: exists and is not a directory",
                out.display()
            )));
        }
        if has_entries_besides_lock(out) {
            if !opts.force {
                return Err(exists_error());
            }
            if !holds_a_run(out) {
                let what = if out.join("config.toml").exists() {
                    "a config.toml that is not an edgewise run's"
                } else {
                    "files but no config.toml (not an edgewise run)"
                };
                return Err(Failure::input(format!(
                    "--force replaces a run directory, and {} holds {what}: nothing was touched; choose another --out",
                    out.display()
                )));
            }
            // A file where the run keeps a directory (or the reverse) would stop the run
            // after --force had deleted the rest.
            let wrong = RUN_DIRS
                .iter()
                .map(|n| (n, true))
                .chain(RUN_FILES.iter().map(|n| (n, false)))
                .find(|(n, dir)| std::fs::metadata(out.join(n)).is_ok_and(|m| m.is_dir() != *dir));
            if let Some((n, dir)) = wrong {
                return Err(Failure::input(format!(
                    "--force: {} is {}, where the run keeps its {n}: nothing was touched; move it away",
                    out.join(n).display(),
                    if dir { "not a directory" } else { "a directory" }
                )));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| {
        Failure::input(format!(
            "cannot create output directory {}: {e}",
            out.display()
        ))
    })?;
    let lock = lock_run(out)?;
    remove_stale_temps(out);
    if opts.force {
        check_run_paths(out, false, opts.plots).map_err(|why| {
            Failure::input(format!(
                "--force: {why}: the run could not be written there, and nothing was touched"
            ))
        })?;
        remove_run_entries(out)?;
    } else if has_entries_besides_lock(out) {
        // Another process filled the directory between the check and the lock.
        return Err(exists_error());
    }
    std::fs::create_dir_all(out.join("checkpoints")).map_err(|e| {
        Failure::input(format!(
            "cannot create output directory {}: {e}",
            out.display()
        ))
    })?;
    Ok(lock)
}

/// What `--force` deletes of the run in `out`: its files ([`RUN_FILES`], never the lock file:
/// deleting it would let the next process lock a new file of the same name while another
/// still holds the old one), its checkpoints and its plots (and those of a `report` of it),
/// and its subdirectories if that empties them. Other files (a user's notes, a checkpoint of another name, `spectrum`
/// output saved under `plots/`) are not the run's and stay. A file that cannot be deleted is
/// an error: the new run would otherwise be mixed with the old one's files.
fn remove_run_entries(out: &Path) -> Result<()> {
    let remove = |p: PathBuf| {
        fsio::remove_if_present(&p).map_err(|e| Failure::input(format!("--force: {e}")))
    };
    for name in RUN_FILES.iter().filter(|&&n| n != LOCK_FILE) {
        remove(out.join(name))?;
    }
    let ck = out.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&ck) {
        for e in entries.flatten() {
            if is_run_checkpoint(&e.file_name().to_string_lossy()) {
                remove(e.path())?;
            }
        }
    }
    crate::plots::remove_run_plots(out).map_err(|e| Failure::input(format!("--force: {e}")))?;
    // Those of a `report` of the run alone, which wrote its report.md and report.csv.
    for name in crate::report::REPORT_PLOTS {
        remove(out.join("plots").join(name))?;
    }
    for d in RUN_DIRS {
        // Kept when it holds other files.
        let _ = std::fs::remove_dir(out.join(d));
    }
    Ok(())
}

struct State {
    params: Vec<f32>,
    opt_buf: Vec<f32>,
    t: u64,
    /// Measurements of the whole run that missed the tolerance; `None` when it was resumed
    /// from a checkpoint of an earlier version, which did not record them.
    unconverged: Option<Unconverged>,
}

/// Measurements that missed the residual tolerance (`--power-tol`): their values are
/// estimates. Counted over the whole run (kept across `--resume` in the resume checkpoint's
/// `unconverged` metadata) and reported in `summary.json`.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unconverged {
    /// Sharpness measurements (`sharpness`).
    pub sharpness: u64,
    /// Measurements whose top-k eigenvectors (`--eig-k` above 1) did not all converge.
    pub topk: u64,
    /// `lambda_min` estimates (a column without a residual of its own).
    pub lambda_min: u64,
    /// Preconditioned sharpness measurements (power iteration).
    pub precond_sharpness: u64,
    /// Measurements of the sharpness-only tracker (`tracked_sharpness`).
    pub tracked_sharpness: u64,
    /// Measurements (eigen, trace or tracked) left empty in `metrics.csv` because a
    /// Hessian-vector product was not finite although the loss was (an overflow: inputs or
    /// weights too large for f32 curvature); not counted by earlier versions' checkpoints.
    pub non_finite: u64,
}

impl Unconverged {
    /// The counts of `self` and `other` added.
    fn plus(self, other: Self) -> Self {
        Self {
            sharpness: self.sharpness + other.sharpness,
            topk: self.topk + other.topk,
            lambda_min: self.lambda_min + other.lambda_min,
            precond_sharpness: self.precond_sharpness + other.precond_sharpness,
            tracked_sharpness: self.tracked_sharpness + other.tracked_sharpness,
            non_finite: self.non_finite + other.non_finite,
        }
    }

    /// The metadata text: the six counts in field order, comma-separated.
    fn to_meta(self) -> String {
        [
            self.sharpness,
            self.topk,
            self.lambda_min,
            self.precond_sharpness,
            self.tracked_sharpness,
            self.non_finite,
        ]
        .map(|n| n.to_string())
        .join(",")
    }

    /// Reads [`Unconverged::to_meta`]'s text; `None` unless it is six whole numbers, or five
    /// (the previous version's, without `non_finite`).
    fn from_meta(text: &str) -> Option<Self> {
        let v: Vec<u64> = text
            .split(',')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let (counts, non_finite) = match v.len() {
            5 => (&v[..], 0),
            6 => (&v[..5], v[5]),
            _ => return None,
        };
        match *counts {
            [sharpness, topk, lambda_min, precond_sharpness, tracked_sharpness] => Some(Self {
                sharpness,
                topk,
                lambda_min,
                precond_sharpness,
                tracked_sharpness,
                non_finite,
            }),
            _ => None,
        }
    }
}

/// The metadata every checkpoint of a run carries (besides `step`, `epoch`, and the
/// resume checkpoint's `unconverged`).
fn checkpoint_metadata(
    cfg: &TrainConfig,
    builds: &[String],
    data_fingerprint: &str,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(b) = build_id() {
        m.insert("build".into(), b.to_string());
    }
    m.insert("builds".into(), builds.join(","));
    m.insert("seed".into(), cfg.model.seed.to_string());
    m.insert("optimizer".into(), cfg.optim.opt.clone());
    m.insert("lr".into(), cfg.optim.lr.to_string());
    m.insert("data".into(), cfg.data.name.clone());
    m.insert("data_fingerprint".into(), data_fingerprint.to_string());
    // The whole configuration, so that `spectrum` and `hvp-check` measure the Hessian the run
    // measured (split, Hessian subset) from the checkpoint alone, and `--resume` can tell
    // whether config.toml still holds the run's settings.
    m.insert("config".into(), cfg.to_toml());
    m
}

/// Writes a checkpoint of `params`, the parameters after `step` optimizer steps (`epoch` =
/// the epochs completed by then), with the run's `metadata`; `resume` adds the optimizer and
/// tracker state.
fn save_checkpoint(
    path: &Path,
    arch: &Arch,
    metadata: &BTreeMap<String, String>,
    params: &[f32],
    resume: Option<(&State, &[&Tracker])>,
    (step, epoch): (u64, u64),
) -> Result<()> {
    let mut ck = Checkpoint::new(*arch, params.to_vec());
    ck.metadata.clone_from(metadata);
    ck.metadata.insert("step".into(), step.to_string());
    ck.metadata.insert("epoch".into(), epoch.to_string());
    if let Some((st, trackers)) = resume {
        if let Some(u) = st.unconverged {
            ck.metadata.insert("unconverged".into(), u.to_meta());
        }
        if !st.opt_buf.is_empty() {
            ck.extra
                .insert("optimizer.state".into(), st.opt_buf.clone());
        }
        for tr in trackers {
            tr.save(&mut ck.extra);
        }
    }
    checkpoint::save(path, &ck).map_err(|e| match e {
        checkpoint::CheckpointError::Io(io) => io_err(io),
        e => Failure::internal(e.to_string()),
    })
}

/// A fingerprint of the data a run trains and tests on (the split actually used, in its
/// order): FNV-1a (64-bit), one step per 32-bit word, over each set's sample count and
/// dimension, the bits of its features, its labels and its regression targets, training set
/// first. The same on every platform. Every checkpoint carries it (`data_fingerprint`), and
/// `--resume` refuses to continue a run on data that changed since (a data file edited,
/// shuffled or replaced). Hashing is one multiply per value, cheap next to loading.
pub fn data_fingerprint(train: &Dataset, test: &Dataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut word = |w: u32| {
        h ^= u64::from(w);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for d in [train, test] {
        for n in [d.n as u64, d.dim as u64] {
            word(n as u32);
            word((n >> 32) as u32);
        }
        for x in &d.x {
            word(x.to_bits());
        }
        for &l in &d.labels {
            word(u32::from(l));
        }
        match &d.targets {
            Some(t) => {
                word(1);
                word(t.len() as u32);
                word((t.len() as u64 >> 32) as u32);
                for x in t {
                    word(x.to_bits());
                }
            }
            None => word(0),
        }
    }
    format!("{h:016x}")
}

/// Refuses a resume checkpoint trained with other settings than `cfg` (the run's
/// `config.toml`, with the length and the other settings a resume may change): its `config`
/// metadata entry, or, in checkpoints of versions that did not write one, its `seed`,
/// `optimizer`, `lr` and `data` entries. Catches a config.toml edited after the run started,
/// and a resume checkpoint copied from another run.
fn check_checkpoint_settings(
    cfg: &TrainConfig,
    ck: &Checkpoint,
    ck_path: &Path,
    out: &Path,
) -> Result<()> {
    let diff = match ck.metadata.get("config") {
        Some(text) => {
            let origin = format!("{} (its `config` metadata)", ck_path.display());
            let mut stored = TrainConfig::from_toml(text, &origin)?;
            // What a resume may change (cli::train_config takes these from the flags).
            stored.run.steps = cfg.run.steps;
            stored.run.epochs = cfg.run.epochs;
            stored.run.checkpoint_every = cfg.run.checkpoint_every;
            stored.run.until_loss = cfg.run.until_loss;
            stored.run.until_train_acc = cfg.run.until_train_acc;
            stored.differences(cfg)
        }
        None => [
            ("seed", "model.seed", cfg.model.seed.to_string()),
            ("optimizer", "optim.opt", cfg.optim.opt.clone()),
            ("lr", "optim.lr", cfg.optim.lr.to_string()),
            ("data", "data.name", cfg.data.name.clone()),
        ]
        .into_iter()
        .filter_map(|(key, setting, ours)| {
            let theirs = ck.metadata.get(key)?;
            (*theirs != ours).then(|| format!("{setting} = {theirs} vs {ours}"))
        })
        .collect(),
    };
    if diff.is_empty() {
        return Ok(());
    }
    Err(Failure::input(format!(
        "--resume {}: checkpoint {} was trained with other settings than {} holds (the checkpoint's vs config.toml's: {}); a resume may change only the length (--steps / --epochs), --until-loss / --until-train-acc and --checkpoint-every: restore config.toml, or start a new run",
        out.display(),
        ck_path.display(),
        out.join("config.toml").display(),
        diff.join(", ")
    )))
}

/// Restores the optimizer's state from a resume checkpoint's `optimizer.state` into `buf`
/// (`opt.state_len(P)` values): present exactly when the optimizer keeps state, of that
/// length, finite, and with non-negative second moments (RMSProp's and Adam's `v`, whose
/// square root is taken). A missing state would silently restart the moments at zero.
fn restore_optimizer_state(
    opt: &edgewise_core::Optimizer,
    p: usize,
    extra: &BTreeMap<String, Vec<f32>>,
    buf: &mut [f32],
    name: &str,
) -> std::result::Result<(), String> {
    use edgewise_core::StateFault;
    let want = buf.len();
    let Some(b) = extra.get("optimizer.state") else {
        if want == 0 {
            return Ok(());
        }
        return Err(format!(
            "no tensor optimizer.state, but optimizer {name} keeps {want} state values (its moments would restart at zero); is it the checkpoint of a run with another optimizer?"
        ));
    };
    match opt.check_state(p, b) {
        Ok(()) if b.len() == want => {}
        Ok(()) | Err(StateFault::Length { .. }) => {
            return Err(format!(
                "tensor optimizer.state has {} values, but optimizer {name} keeps {want}",
                b.len()
            ))
        }
        Err(StateFault::NonFinite(i)) => {
            return Err(format!(
                "tensor optimizer.state holds a non-finite value ({} at index {i})",
                b[i]
            ))
        }
        Err(StateFault::NegativeSecondMoment(i)) => {
            return Err(format!(
                "tensor optimizer.state holds a negative second moment ({} at index {i})",
                b[i]
            ))
        }
    }
    buf.copy_from_slice(b);
    Ok(())
}

/// The trackers whose state a resume checkpoint holds.
fn trackers<'a>(main: &'a Tracker, tracked: &'a Option<Tracker>) -> Vec<&'a Tracker> {
    std::iter::once(main).chain(tracked).collect()
}

/// Stops a run whose buffers cannot be allocated at all with a clear error, before anything
/// is written ([`crate::mem`]): the parameters, gradient and last finite parameters, the
/// optimizer's state, the trackers' vectors and Lanczos bases, and the engine's buffers for
/// the training batches and evaluations and for the Hessian subset.
fn preflight(
    cfg: &TrainConfig,
    res: &Resolved,
    prep: &Prepared,
    threads: usize,
    tile: usize,
) -> Result<()> {
    let (arch, p) = (&res.arch, res.arch.n_params());
    let n = prep.train.n;
    let batch = cfg.optim.batch_size.unwrap_or(n).clamp(1, n.max(1));
    let hess_n = prep.hessian_idx.as_ref().map_or(n, Vec::len);
    let engine = |m: usize| crate::engine::objective_floats(arch, m.max(1), threads, tile);
    let eval = engine(batch).max(engine(n)).max(engine(prep.test.n));
    let mut floats = 3 * p as u128 + res.opt.state_len(p) as u128 + eval + engine(hess_n);
    let measures = cfg.curvature.eig_every > 0;
    floats += Tracker::floats(&cfg.curvature, res.eig_method, p, measures);
    if cfg.curvature.track_every > 0 {
        floats += Tracker::sharpness_only_floats(&cfg.curvature, p);
    }
    crate::mem::ensure_allocatable(
        crate::mem::f32_bytes(floats),
        &format!("this run ({p} parameters)"),
    )
}

/// How a checked run goes through its data: the batch sampler, its batches per epoch and the
/// run's total length in steps.
pub struct Plan {
    /// The epoch sampler of the run's batches.
    pub sampler: EpochSampler,
    /// Batches (optimizer steps) per epoch, at least 1.
    pub batches_per_epoch: u64,
    /// The run's length in steps.
    pub total: u64,
}

/// The checks of a configuration against its loaded data that `train` makes before it writes
/// anything (after [`TrainConfig::resolve`] and [`prepare`]; `sweep` makes them for every run
/// of its grid before it writes `sweep.json`): the batch size against the training split, the
/// length in steps, and the memory the run needs with `threads` threads and tiles of `tile`.
/// `fresh`: the run starts from scratch (not a resume), which refuses a batch size larger
/// than the training split (the same run as full batch under another name; a run started so
/// by an earlier version still resumes).
pub fn check_plan(
    cfg: &TrainConfig,
    res: &Resolved,
    prep: &Prepared,
    threads: usize,
    tile: usize,
    fresh: bool,
) -> Result<Plan> {
    let n = prep.train.n;
    if let Some(b) = cfg.optim.batch_size.filter(|&b| b > n) {
        if cfg.optim.drop_last {
            return Err(Failure::input(format!(
                "--batch-size {b} with --drop-last: larger than the {n} training samples, so every batch would be dropped"
            )));
        }
        if fresh {
            return Err(Failure::input(format!(
                "--batch-size {b}: larger than the {n} training samples; use full batch (leave --batch-size out, or `full` in --batch-sizes)"
            )));
        }
    }
    // (A run an earlier version started so still resumes: it cannot stop by it either way.)
    if let Some(a) = cfg
        .run
        .until_train_acc
        .filter(|_| fresh && prep.train.is_regression())
    {
        return Err(Failure::input(format!(
            "--until-train-acc {a}: data set {} is a regression data set, whose accuracy is always 0, so the run would never stop by it (use --until-loss)",
            cfg.data.name
        )));
    }
    preflight(cfg, res, prep, threads, tile)?;
    let batch = cfg.optim.batch_size.unwrap_or(n).min(n);
    let sampler = EpochSampler::new(n, batch, cfg.optim.drop_last, cfg.model.seed)
        .map_err(|e| Failure::input(format!("--batch-size: {e}")))?;
    let bpe = sampler.batches_per_epoch() as u64;
    if bpe == 0 {
        return Err(Failure::input(
            "--batch-size with --drop-last leaves no batch",
        ));
    }
    let total = match (cfg.run.steps, cfg.run.epochs) {
        (Some(s), _) => s,
        // At most what --steps may be (config.toml holds signed 64-bit integers).
        (None, Some(e)) => e
            .checked_mul(bpe)
            .filter(|&s| s <= i64::MAX as u64)
            .ok_or_else(|| {
                Failure::input(format!(
                    "--epochs {e}: {e} epochs of {bpe} batches are more steps than --steps may be ({})",
                    i64::MAX
                ))
            })?,
        (None, None) => DEFAULT_STEPS,
    };
    // The schedule's learning rate is smallest (and largest) at the first or the last step
    // (warmup rises, then step decay falls or grows): both must be positive and finite in
    // f32, or the optimizer would refuse a step in the middle of the run.
    if total > 0 {
        for t in [0, total - 1] {
            let lr = res.schedule.lr(cfg.optim.lr, t);
            if !(lr > 0.0 && lr.is_finite()) {
                let mut base = String::new();
                crate::metrics::push_f32(&mut base, cfg.optim.lr);
                return Err(Failure::input(format!(
                    "--schedule {}: the learning rate {} at step {t} of {total} (from --lr {}), which the optimizer cannot take; use fewer steps or a gentler schedule",
                    cfg.optim.schedule,
                    if lr == 0.0 { "falls to 0 in f32" } else { "overflows f32" },
                    base
                )));
            }
        }
    }
    // The top-k eigenpairs cannot outnumber the parameters.
    let p = res.arch.n_params();
    if cfg.curvature.eig_every > 0 && cfg.curvature.eig_k > p {
        return Err(Failure::input(format!(
            "--eig-k {}: more eigenpairs than the network's {p} parameters",
            cfg.curvature.eig_k
        )));
    }
    Ok(Plan {
        sampler,
        batches_per_epoch: bpe,
        total,
    })
}

/// The network, training data, sampler and batches per epoch that fix step `t`'s batch.
type Batches<'a, 'd> = (&'a Arch, Data<'d>, &'a EpochSampler, u64);

/// Loss and gradient of step `t`'s batch (the whole training split at full batch) at `params`,
/// with `order` already the epoch's order: the evaluation a training step starts with.
fn batch_gradient(
    (arch, train, sampler, bpe): Batches<'_, '_>,
    order: &[u32],
    t: u64,
    params: &[f32],
    (threads, tile): (usize, usize),
    ws: &mut Workspace,
    grad: &mut [f32],
) -> Result<edgewise_core::Eval> {
    let bdata = if sampler.is_full_batch() {
        train
    } else {
        let idx = sampler.batch(order, (t % bpe) as usize);
        train.select(idx).map_err(core_err("batch"))?
    };
    ParObjective::new(arch, bdata, threads, tile, ws)
        .and_then(|mut o| o.eval_grad(params, grad))
        .map_err(core_err("gradient"))
}

/// [`batch_gradient`] of step `t` alone (the epoch's order computed into `order`).
fn step_gradient(
    batches: Batches<'_, '_>,
    t: u64,
    params: &[f32],
    exec: (usize, usize),
    order: &mut [u32],
    grad: &mut [f32],
) -> Result<edgewise_core::Eval> {
    let (_, _, sampler, bpe) = batches;
    sampler
        .epoch_order(t / bpe, order)
        .map_err(core_err("shuffle"))?;
    batch_gradient(
        batches,
        order,
        t,
        params,
        exec,
        &mut Workspace::default(),
        grad,
    )
}

/// Runs (or resumes) a training run.
pub fn run(cfg: &TrainConfig, opts: &RunOptions) -> Result<Outcome> {
    let started = Instant::now();
    let res: Resolved = cfg.resolve()?;
    let arch = res.arch;
    let prep = prepare(cfg, &arch)?;
    let n = prep.train.n;
    let Plan {
        sampler,
        batches_per_epoch: bpe,
        total,
    } = check_plan(cfg, &res, &prep, opts.threads, opts.tile, !opts.resume)?;
    if res.hvp == edgewise_core::HvpMethod::FiniteDifference
        && cfg.curvature.eig_every > 0
        && matches!(
            arch.activation(),
            edgewise_core::Activation::Relu | edgewise_core::Activation::Elu
        )
    {
        eprintln!(
            "warning: --hvp fd with {}: finite differences step across the activation's \
             kink at 0 (where relu's gradient, elu's curvature, jumps), so the curvature \
             they measure is not the Hessian's (use --hvp exact)",
            arch.activation().name()
        );
    }
    let p = arch.n_params();
    let seed = cfg.model.seed;
    let train = view(&prep.train).map_err(core_err("training data"))?;
    let test = view(&prep.test).map_err(core_err("test data"))?;
    let hess = match &prep.hessian_idx {
        Some(ix) => train.select(ix).map_err(core_err("Hessian subset"))?,
        None => train,
    };
    let fingerprint = data_fingerprint(&prep.train, &prep.test);

    // Nothing above wrote anything; from here on this process holds the run directory.
    let _lock = prepare_dir(opts)?;
    let out = &opts.out;
    let write_config =
        || fsio::atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes()).map_err(out_err);
    // A resumed run's config.toml is rewritten (with its new length) only once the
    // checkpoint and metrics have been checked against it: a refused resume changes nothing.
    if !opts.resume {
        write_config()?;
    }

    let mut tracker = Tracker::new(&cfg.curvature, res.eig_method, res.hvp, seed, p);
    // The sharpness-only tracker, only when `track_every` asks for it (its warm-start history is
    // several parameter vectors).
    let mut tracked = (cfg.curvature.track_every > 0)
        .then(|| Tracker::sharpness_only(&cfg.curvature, res.hvp, seed, p));
    let mut st = State {
        params: vec![0.0; p],
        opt_buf: vec![0.0; res.opt.state_len(p)],
        t: 0,
        unconverged: Some(Unconverged::default()),
    };
    let metrics_path = out.join("metrics.csv");
    let mut rows: Vec<Row> = Vec::new();
    let mut builds: Vec<String> = Vec::new();
    if opts.resume {
        let ck_path = out.join("checkpoints/resume.safetensors");
        let ck = checkpoint::load_expecting(&ck_path, &arch).map_err(ckpt_err)?;
        // Every refusal below names the checkpoint.
        let refuse = |what: String| {
            Failure::input(format!(
                "--resume {}: checkpoint {}: {what}",
                out.display(),
                ck_path.display()
            ))
        };
        check_checkpoint_settings(cfg, &ck, &ck_path, out)?;
        if let Some(fp) = ck.metadata.get("data_fingerprint") {
            if *fp != fingerprint {
                return Err(refuse(format!(
                    "the run was trained on other data than data set {} holds now (data fingerprint {fp} in the checkpoint, {fingerprint} now): its file changed (edited, shuffled or replaced) since the run started; restore it, or start a new run",
                    cfg.data.name
                )));
            }
        }
        let step: u64 = match ck.metadata.get("step") {
            None => return Err(refuse("no step in the checkpoint metadata".into())),
            Some(s) => s.parse().map_err(|_| {
                refuse(format!(
                    "its step metadata {s:?} is not a step count (a whole number from 0)"
                ))
            })?,
        };
        if total < step {
            return Err(Failure::input(format!(
                "--resume {}: the run has taken {step} steps already, more than the {total} asked for; --steps / --epochs give the new total length",
                out.display()
            )));
        }
        st.params = ck.params;
        restore_optimizer_state(
            &res.opt,
            st.params.len(),
            &ck.extra,
            &mut st.opt_buf,
            &cfg.optim.opt,
        )
        .map_err(refuse)?;
        st.t = step;
        // Checkpoints of earlier versions did not count the unconverged measurements.
        st.unconverged = match ck.metadata.get("unconverged") {
            None => None,
            Some(u) => Some(Unconverged::from_meta(u).ok_or_else(|| {
                refuse(format!(
                    "its unconverged metadata {u:?} is not six (or five) measurement counts"
                ))
            })?),
        };
        tracker
            .restore(&ck.extra)
            .and_then(|()| tracked.as_mut().map_or(Ok(()), |t| t.restore(&ck.extra)))
            .map_err(refuse)?;
        let layout = metrics::read_layout(&metrics_path, true)?;
        if layout.torn {
            eprintln!(
                "warning: {}: its last line is incomplete (the run stopped while writing it); \
                 it is dropped and rewritten",
                metrics_path.display()
            );
        }
        let current = layout.current;
        rows = layout.rows;
        // A run stopped by --until-loss / --until-train-acc saved its state before the step
        // that met the criterion, so resuming with the same criterion stops there again.
        if let Some(r) = rows.iter().find(|r| r.step == step).filter(|_| !opts.quiet) {
            let why = match (cfg.run.until_loss, cfg.run.until_train_acc) {
                (Some(x), _) if r.loss <= x => Some(format!(
                    "its training loss {} reached --until-loss {x}",
                    r.loss
                )),
                (_, Some(a)) if r.train_acc >= a => Some(format!(
                    "its training accuracy {} reached --until-train-acc {a}",
                    r.train_acc
                )),
                _ => None,
            };
            if let Some(why) = why {
                eprintln!(
                    "note: {} stopped at step {step} because {why}, and stops there again; \
                     a lower --until-loss (or a higher --until-train-acc) continues it",
                    out.display()
                );
            }
        }
        let at_step = rows.iter().find(|r| r.step == step).cloned();
        rows.retain(|r| r.step < step);
        if rows.len() as u64 != step {
            return Err(Failure::input(format!(
                "{}: holds {} rows before step {step}; the run directory is inconsistent",
                metrics_path.display(),
                rows.len()
            )));
        }
        // A stopping criterion the run had already met before this step would have stopped a
        // fresh run with it there: continuing would give a run no fresh run gives.
        let met = rows.iter().find_map(|r| match (cfg.run.until_loss, cfg.run.until_train_acc) {
            (Some(x), _) if r.loss <= x => Some(format!(
                "--until-loss {x}: the run's training loss already reached it at step {} ({})",
                r.step, r.loss
            )),
            (_, Some(a)) if r.train_acc >= a => Some(format!(
                "--until-train-acc {a}: the run's training accuracy already reached it at step {} ({})",
                r.step, r.train_acc
            )),
            _ => None,
        });
        if let Some(met) = met {
            return Err(Failure::input(format!(
                "{met}, where a run with it would have stopped; give a lower --until-loss (a higher --until-train-acc), or start a new run"
            )));
        }
        // The trackers' state must be what their measurements before the step left behind,
        // and usable.
        let count = |f: fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
        let main = Measured {
            top: count(|r| r.sharpness.is_some()),
            lambda_min: count(|r| r.lambda_min.is_some()) > 0,
            precond: count(|r| r.precond_sharpness.is_some()) > 0,
        };
        let second = Measured {
            top: count(|r| r.tracked_sharpness.is_some()),
            ..Measured::default()
        };
        tracker
            .check_restored(&main)
            .and_then(|()| {
                tracked
                    .as_ref()
                    .map_or(Ok(()), |t| t.check_restored(&second))
            })
            .map_err(refuse)?;
        builds = lineage(&ck.metadata);
        let this = build_id().unwrap_or(UNKNOWN_BUILD);
        if builds.iter().any(|b| b != this) {
            let known: Vec<&str> = builds
                .iter()
                .map(String::as_str)
                .filter(|&b| b != UNKNOWN_BUILD)
                .collect();
            let who = if known.is_empty() {
                "a version that recorded no build id".to_string()
            } else {
                format!("build {}", known.join(", "))
            };
            eprintln!(
                "warning: {} was written by {who}, and this is build {this}: its {step} steps come \
                 from other code, so the continued run need not match an uninterrupted run of \
                 either (summary.json lists every build under `builds`)",
                ck_path.display()
            );
        }
        // When the run got past the checkpoint's step, metrics.csv holds that step's row, which
        // was computed from the checkpoint's parameters: recomputed, its batch loss and
        // gradient norm are the same bits, unless the parameters and the step metadata do not
        // belong together (an edited or copied-in checkpoint), which would rewrite the later
        // rows from the wrong point. Other builds may round differently (warned about above).
        if let Some(old) = at_step.filter(|_| builds.iter().all(|b| b == this)) {
            let mut order = vec![0u32; n];
            let mut grad = vec![0.0f32; p];
            let ev = step_gradient(
                (&arch, train, &sampler, bpe),
                step,
                &st.params,
                (opts.threads, opts.tile),
                &mut order,
                &mut grad,
            )?;
            let grad_norm = norm64(&grad) as f32;
            // A run that diverged on a checkpoint step (the checkpoint holds the parameters at
            // which the loss was first non-finite): no continuing it, and no suspicion of an
            // edited checkpoint (NaN never equals NaN, and metrics.csv keeps no NaN payload).
            if !old.loss.is_finite() && !ev.loss.is_finite() {
                return Err(refuse(format!(
                    "the run diverged at step {step}, the checkpoint's step (its loss in {} is {}), and a diverged run cannot be continued; start a new run with a smaller --lr",
                    metrics_path.display(),
                    old.loss
                )));
            }
            if ev.loss.to_bits() != old.loss.to_bits()
                || grad_norm.to_bits() != old.grad_norm.to_bits()
            {
                return Err(refuse(format!(
                    "its parameters are not those of its step {step}: at them the training loss and gradient norm are {} and {grad_norm}, and {} row of step {step} holds {} and {} (the checkpoint was edited, or copied from another run or step); restore it, or start a new run",
                    ev.loss,
                    metrics_path.display(),
                    old.loss,
                    old.grad_norm
                )));
            }
        }
        // Nothing in the way of the files the run writes (checked before the deletions below).
        check_run_paths(out, true, opts.plots).map_err(|why| {
            Failure::input(format!(
                "--resume {}: {why}: the run could not be continued there, and nothing was touched",
                out.display()
            ))
        })?;
        // Every check passed. The run is unfinished from here until it writes its summary
        // again: the summary and final parameters of the shorter run it was would mark an
        // interrupted extension as finished (`sweep` and `repro` skip runs with a
        // summary.json, `report` labels them done).
        for stale in ["summary.json", "checkpoints/final.safetensors"] {
            fsio::remove_if_present(&out.join(stale))
                .map_err(|e| Failure::input(format!("cannot write to output directory: {e}")))?;
        }
        if opts.plots {
            // Written again when the run finishes.
            crate::plots::remove_run_plots(out).map_err(out_err)?;
        }
        write_config()?;
        if current {
            fsio::truncate_to_lines(&metrics_path, rows.len() + 1).map_err(io_err)?;
        } else {
            // Written by an earlier version: rewrite it with the current columns.
            let mut text = format!("{}\n", metrics::header());
            for r in &rows {
                text.push_str(&r.to_csv());
                text.push('\n');
            }
            fsio::atomic_write(&metrics_path, text.as_bytes()).map_err(io_err)?;
        }
    } else {
        res.arch
            .init(&mut st.params, res.init, seed)
            .map_err(core_err("initialisation"))?;
        fsio::atomic_write(&metrics_path, format!("{}\n", metrics::header()).as_bytes())
            .map_err(io_err)?;
    }
    let this_build = build_id().unwrap_or(UNKNOWN_BUILD).to_string();
    if !builds.contains(&this_build) {
        builds.push(this_build);
    }
    let meta = checkpoint_metadata(cfg, &builds, &fingerprint);
    let mut log = fsio::AppendFile::open(&metrics_path).map_err(io_err)?;

    let mut grad = vec![0.0f32; p];
    let mut last_finite: Option<Vec<f32>> = None;
    let mut order = vec![0u32; n];
    let mut order_epoch = u64::MAX;
    let mut ws = Workspace::default();
    let mut ws_h = Workspace::default();
    let full_batch = sampler.is_full_batch();
    let threshold = res.opt.stability_threshold();
    // The length the run was given: `--steps`, or `--epochs` (turned into steps).
    let mut stopped_by = if cfg.run.epochs.is_some() {
        "epochs"
    } else {
        "steps"
    }
    .to_string();
    let mut diverged_at = None;
    // Measurements of this invocation that missed the tolerance (warned about at the end;
    // `st.unconverged` counts the whole run's for summary.json).
    let mut missed = Unconverged::default();
    let unconverged_before = st.unconverged;
    let progress = Progress::new(total, st.t, opts.quiet);

    // A new run with periodic checkpoints also keeps its initial parameters (row 0's), so that
    // every measured row up to the last checkpoint has parameters to re-measure from.
    if st.t == 0 && cfg.run.checkpoint_every > 0 && total > 0 {
        save_checkpoint(
            &out.join("checkpoints/step_000000.safetensors"),
            &arch,
            &meta,
            &st.params,
            None,
            (0, 0),
        )?;
    }

    while st.t < total {
        let t = st.t;
        let epoch = t / bpe;
        if epoch != order_epoch {
            sampler
                .epoch_order(epoch, &mut order)
                .map_err(core_err("shuffle"))?;
            order_epoch = epoch;
        }
        let lr = res.schedule.lr(cfg.optim.lr, t);
        let ev = batch_gradient(
            (&arch, train, &sampler, bpe),
            &order,
            t,
            &st.params,
            (opts.threads, opts.tile),
            &mut ws,
            &mut grad,
        )?;
        let mut row = Row {
            step: t,
            epoch,
            lr,
            loss: ev.loss,
            train_acc: ev.accuracy,
            grad_norm: norm64(&grad) as f32,
            ..Default::default()
        };
        let finite = ev.loss.is_finite() && row.grad_norm.is_finite();
        if finite && t % cfg.run.eval_every == 0 {
            let te = ParObjective::new(&arch, test, opts.threads, opts.tile, &mut ws)
                .and_then(|mut o| o.evaluate(&st.params))
                .map_err(core_err("test evaluation"))?;
            row.test_loss = Some(te.loss);
            row.test_acc = Some(te.accuracy);
            if !full_batch {
                let tr = ParObjective::new(&arch, train, opts.threads, opts.tile, &mut ws)
                    .and_then(|mut o| o.evaluate(&st.params))
                    .map_err(core_err("training evaluation"))?;
                row.full_train_loss = Some(tr.loss);
                row.full_train_acc = Some(tr.accuracy);
            }
        }
        let c = &cfg.curvature;
        let eig_due = c.eig_every > 0 && t % c.eig_every == 0;
        let trace_due = c.trace_every > 0 && t % c.trace_every == 0;
        if finite && (eig_due || trace_due) {
            let opt_state = OptState {
                t: st.t,
                buf: &mut st.opt_buf,
            };
            let pre = (res.adaptive && c.precond && st.t > 0).then_some((&res.opt, &opt_state, lr));
            let mut hobj = ParObjective::new(&arch, hess, opts.threads, opts.tile, &mut ws_h)
                .map_err(core_err("Hessian subset"))?;
            match tracker.measure(&mut hobj, &st.params, t, eig_due, trace_due, pre) {
                Ok(m) => {
                    row.sharpness = m.sharpness;
                    row.lr_x_sharpness = m.sharpness.map(|s| lr * s);
                    row.lambda_min = m.lambda_min;
                    row.rotation = m.rotation;
                    row.subspace_score = m.subspace_score;
                    row.hocm = m.hocm;
                    row.trace = m.trace;
                    row.trace_se = m.trace_se;
                    row.precond_sharpness = m.precond_sharpness;
                    row.eig_residual = m.residual;
                    row.hvps = Some(m.hvps);
                    for (converged, count, name) in [
                        (m.lambda_min_converged, &mut missed.lambda_min, "lambda_min"),
                        (m.sharpness_converged, &mut missed.sharpness, "sharpness"),
                        (m.topk_converged, &mut missed.topk, "topk"),
                        (
                            m.precond_converged,
                            &mut missed.precond_sharpness,
                            "precond_sharpness",
                        ),
                    ] {
                        if converged == Some(false) {
                            *count += 1;
                            row.unconverged |= metrics::unconverged_bit(name);
                        }
                    }
                    row.sharpness_hvps = eig_due.then_some(m.sharpness_hvps);
                }
                // A non-finite curvature at a finite loss: the row's cells stay empty, and
                // the measurement is counted (and warned about at the end).
                Err(e) if e.message.contains("non-finite") => {
                    missed.non_finite += 1;
                    row.unconverged |= metrics::unconverged_bit("non_finite");
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(tr) = tracked
            .as_mut()
            .filter(|_| finite && t % c.track_every == 0)
        {
            let mut hobj = ParObjective::new(&arch, hess, opts.threads, opts.tile, &mut ws_h)
                .map_err(core_err("Hessian subset"))?;
            match tr.measure(&mut hobj, &st.params, t, true, false, None) {
                Ok(m) => {
                    row.tracked_sharpness = m.sharpness;
                    row.tracked_residual = m.residual;
                    row.tracked_hvps = Some(m.sharpness_hvps);
                    if m.sharpness_converged == Some(false) {
                        missed.tracked_sharpness += 1;
                        row.unconverged |= metrics::unconverged_bit("tracked_sharpness");
                    }
                }
                Err(e) if e.message.contains("non-finite") => {
                    missed.non_finite += 1;
                    row.unconverged |= metrics::unconverged_bit("non_finite");
                }
                Err(e) => return Err(e),
            }
        }
        log.append_line(&row.to_csv()).map_err(io_err)?;
        let stop_loss = cfg.run.until_loss.is_some_and(|x| ev.loss <= x);
        let stop_acc = cfg.run.until_train_acc.is_some_and(|a| ev.accuracy >= a);
        rows.push(row);
        if !finite {
            diverged_at = Some(t);
            stopped_by = "diverged".into();
            break;
        }
        if stop_loss || stop_acc {
            stopped_by = if stop_loss {
                "until_loss"
            } else {
                "until_train_acc"
            }
            .into();
            break;
        }
        last_finite = Some(st.params.clone());
        let mut os = OptState {
            t: st.t,
            buf: &mut st.opt_buf,
        };
        res.opt
            .step(lr, &mut st.params, &grad, &mut os)
            .map_err(core_err("optimizer step"))?;
        st.t += 1;
        progress.tick(st.t, rows.last());
        let ce = cfg.run.checkpoint_every;
        if ce > 0 && st.t % ce == 0 {
            let at = (st.t, st.t / bpe);
            st.unconverged = unconverged_before.map(|u| u.plus(missed));
            save_checkpoint(
                &out.join(format!("checkpoints/step_{:06}.safetensors", st.t)),
                &arch,
                &meta,
                &st.params,
                None,
                at,
            )?;
            save_checkpoint(
                &out.join("checkpoints/resume.safetensors"),
                &arch,
                &meta,
                &st.params,
                Some((&st, &trackers(&tracker, &tracked))),
                at,
            )?;
        }
        if opts.interrupt_after == Some(st.t) {
            // Simulates a killed process: nothing is finalised.
            std::process::exit(137);
        }
        if crate::interrupt::requested() && st.t < total {
            // Stopped by a signal: the resume state of this step (unless just written), and
            // nothing finalised, as after a kill right after a periodic checkpoint.
            if !(ce > 0 && st.t % ce == 0) {
                st.unconverged = unconverged_before.map(|u| u.plus(missed));
                save_checkpoint(
                    &out.join("checkpoints/resume.safetensors"),
                    &arch,
                    &meta,
                    &st.params,
                    Some((&st, &trackers(&tracker, &tracked))),
                    (st.t, st.t / bpe),
                )?;
            }
            progress.finish();
            return Err(Failure {
                code: crate::interrupt::EXIT_INTERRUPTED,
                message: format!(
                    "interrupted after {} of {total} steps; resume state in {}: continue with `edgewise train --resume {}` (a sweep's run: rerun the sweep)",
                    st.t,
                    out.join("checkpoints/resume.safetensors").display(),
                    out.display()
                ),
            });
        }
    }
    progress.finish();

    let diverged = diverged_at.is_some();
    st.unconverged = unconverged_before.map(|u| u.plus(missed));
    // The final parameters and the steps taken to reach them: a diverged run's are the last
    // with a finite loss, those of the step before the one that diverged.
    let (final_params, final_step) = match diverged_at {
        Some(t) => (last_finite.as_deref(), t.saturating_sub(1)),
        None => (Some(&st.params[..]), st.t),
    };
    let mut final_values = None;
    if let Some(fp) = final_params {
        let tr = ParObjective::new(&arch, train, opts.threads, opts.tile, &mut ws)
            .and_then(|mut o| o.evaluate(fp))
            .map_err(core_err("final evaluation"))?;
        let te = ParObjective::new(&arch, test, opts.threads, opts.tile, &mut ws)
            .and_then(|mut o| o.evaluate(fp))
            .map_err(core_err("final evaluation"))?;
        let mut fv = FinalValues {
            train_loss: tr.loss,
            train_acc: tr.accuracy,
            test_loss: te.loss,
            test_acc: te.accuracy,
            ..Default::default()
        };
        if cfg.curvature.eig_every > 0 && !diverged {
            let mut hobj = ParObjective::new(&arch, hess, opts.threads, opts.tile, &mut ws_h)
                .map_err(core_err("Hessian subset"))?;
            // A copy of the tracker, so that the resume state stays that of the last step.
            let mut tr2 = Tracker::new(&cfg.curvature, res.eig_method, res.hvp, seed, p);
            let mut extra = BTreeMap::new();
            tracker.save(&mut extra);
            tr2.restore(&extra).map_err(Failure::internal)?;
            if let Ok(m) = tr2.measure(&mut hobj, fp, st.t, true, false, None) {
                fv.sharpness = m.sharpness;
                // The learning rate of the last step taken (a schedule's next one never ran).
                let lr_last = res.schedule.lr(cfg.optim.lr, st.t.saturating_sub(1));
                fv.lr_x_sharpness = m.sharpness.map(|s| lr_last * s);
            }
        }
        final_values = Some(fv);
        save_checkpoint(
            &out.join("checkpoints/final.safetensors"),
            &arch,
            &meta,
            fp,
            None,
            (final_step, final_step / bpe),
        )?;
        if !diverged {
            save_checkpoint(
                &out.join("checkpoints/resume.safetensors"),
                &arch,
                &meta,
                &st.params,
                Some((&st, &trackers(&tracker, &tracked))),
                (st.t, st.t / bpe),
            )?;
        }
    }

    let measured: Vec<&Row> = rows.iter().filter(|r| r.sharpness.is_some()).collect();
    let final_sharpness = final_values.as_ref().and_then(|f| f.sharpness);
    let tracked_hvps: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.tracked_hvps.map(f64::from))
        .collect();
    // A row's `hvps` counts every product of its step, a trace estimate's included (one per
    // probe): those are left out of the eigen measurements' mean.
    let probes = u64::from(cfg.curvature.trace_probes);
    let hvp_total: u64 = measured
        .iter()
        .filter_map(|r| {
            r.hvps
                .map(|h| u64::from(h).saturating_sub(if r.trace.is_some() { probes } else { 0 }))
        })
        .sum();
    let summary = Summary {
        version: env!("CARGO_PKG_VERSION").to_string(),
        build: build_id().map(str::to_string),
        builds,
        diverged,
        diverged_at_step: diverged_at,
        stopped_by,
        steps: st.t,
        epochs: if st.t == 0 { 0 } else { (st.t - 1) / bpe + 1 },
        final_values,
        // The rows' measurements and the final parameters' (which has no row of its own).
        max_sharpness: measured
            .iter()
            .filter_map(|r| r.sharpness)
            .chain(final_sharpness)
            .fold(None, |m, s| Some(m.map_or(s, |m: f32| m.max(s)))),
        // Adaptive optimizers are unstable when their preconditioned sharpness passes the
        // threshold; the others when lr * sharpness does.
        unstable_measurements: measured
            .iter()
            .filter(|r| {
                let x = if res.adaptive {
                    r.precond_sharpness
                } else {
                    r.lr_x_sharpness
                };
                x.is_some_and(|x| x > threshold)
            })
            .count() as u64,
        loss_increases: rows.windows(2).filter(|w| w[1].loss > w[0].loss).count() as u64,
        measurements: measured.len() as u64,
        mean_hvps_per_measurement: (!measured.is_empty())
            .then(|| hvp_total as f64 / measured.len() as f64),
        mean_sharpness_hvps: (!measured.is_empty()).then(|| {
            measured
                .iter()
                .filter_map(|r| r.sharpness_hvps)
                .map(f64::from)
                .sum::<f64>()
                / measured.len() as f64
        }),
        tracked_measurements: tracked_hvps.len() as u64,
        mean_tracked_hvps: (!tracked_hvps.is_empty())
            .then(|| tracked_hvps.iter().sum::<f64>() / tracked_hvps.len() as f64),
        n_params: p,
        n_train: prep.train.n,
        n_test: prep.test.n,
        wall_time_s: started.elapsed().as_secs_f64(),
        threads: opts.threads,
        unconverged: st.unconverged,
        hessian_subset: prep.hessian_idx.clone(),
    };
    let json = summary_json(&summary)?;
    // The plots before the summary, which marks the run finished: a run killed in between is
    // unfinished, and resuming it writes them again.
    if opts.plots {
        crate::plots::write_run_plots(out, &rows, threshold, res.adaptive).map_err(io_err)?;
    }
    fsio::atomic_write(&out.join("summary.json"), json.as_bytes()).map_err(io_err)?;
    // Not under --quiet: sweeps and repro run quietly (their metrics hold the residuals).
    let sharpness_unconverged = missed.sharpness + missed.tracked_sharpness;
    if sharpness_unconverged > 0 && !opts.quiet {
        eprintln!(
            "warning: {sharpness_unconverged} sharpness measurement(s) in this invocation missed the \
             residual tolerance (--power-tol times the sharpness; columns eig_residual and \
             tracked_residual): those values may be off by up to their residual; raise \
             --power-max-iter (power), --lanczos-max-steps (warm-lanczos, --track-every) or \
             --lanczos-steps (lanczos)"
        );
    }
    if missed.non_finite > 0 && !opts.quiet {
        eprintln!(
            "warning: {} curvature measurement(s) in this invocation could not be taken: a \
             Hessian-vector product overflowed f32 although the loss was finite (inputs or \
             weights too large: scale the data); their cells in metrics.csv are empty",
            missed.non_finite
        );
    }
    if missed.topk > 0 && !opts.quiet {
        eprintln!(
            "warning: {} eigen measurement(s) in this invocation left some of \
             the top {} eigenvectors short of the residual tolerance: their rotation and \
             subspace_score compare unconverged vectors (off by up to 0.33 with 20 Lanczos \
             steps, BENCHMARKS.md); raise --lanczos-steps (lanczos), --lanczos-max-steps (warm-lanczos) or \
             --power-max-iter (power)",
            missed.topk,
            cfg.curvature.eig_k
        );
    }
    if missed.precond_sharpness > 0 && !opts.quiet {
        eprintln!(
            "warning: {} preconditioned sharpness measurement(s) in this \
             invocation missed the residual tolerance (--power-tol times the value) within \
             --power-max-iter ({}) products of power iteration: those precond_sharpness values \
             are estimates; raise --power-max-iter",
            missed.precond_sharpness, cfg.curvature.power_max_iter
        );
    }
    if missed.lambda_min > 0 && !opts.quiet {
        eprintln!(
            "warning: {} lambda_min measurement(s) in this invocation missed the \
             residual tolerance (--power-tol times the larger of |sharpness| and |lambda_min|): \
             those lambda_min values are estimates; raise --power-max-iter (power iteration) \
             or --lanczos-steps (--eig-method lanczos)",
            missed.lambda_min
        );
    }
    Ok(Outcome { summary })
}

/// Progress output: a bar on a terminal, a line every tenth of the run otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    quiet: bool,
    /// The latest sharpness measurement (value, learning rate, row), shown between
    /// measurements.
    last_sharpness: std::cell::Cell<Option<(f32, f32, u64)>>,
}

impl Progress {
    fn new(total: u64, start: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_position(start);
            b
        });
        Self {
            bar,
            total,
            quiet,
            last_sharpness: std::cell::Cell::new(None),
        }
    }

    fn tick(&self, done: u64, row: Option<&Row>) {
        if let Some(s) = row.and_then(|r| r.sharpness.map(|s| (s, r.lr, r.step))) {
            self.last_sharpness.set(Some(s));
        }
        // Named by metrics.csv's rows: the loss of row `r.step` (measured before that step's
        // update), the sharpness of the latest measured row, which can be older.
        let msg = row
            .map(|r| {
                let loss = format!("row {}: loss {}", r.step, short(r.loss));
                match self.last_sharpness.get() {
                    Some((s, lr, at)) if at == r.step => {
                        format!("{loss}  sharpness {}  lr*S {:.3}", short(s), lr * s)
                    }
                    Some((s, lr, at)) => format!(
                        "{loss}  sharpness {} (row {at})  lr*S {:.3}",
                        short(s),
                        lr * s
                    ),
                    None => loss,
                }
            })
            .unwrap_or_default();
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(msg);
        } else if !self.quiet && (done == self.total || done % (self.total / 10).max(1) == 0) {
            eprintln!("step {done}/{}  {msg}", self.total);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// `x` for the progress line: in scientific notation outside `[1e-3, 1e6)`, else with four
/// decimals below 1 and five significant digits above.
fn short(x: f32) -> String {
    let a = x.abs();
    if x.is_finite() && a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{x:.4e}")
    } else {
        let digits = if a >= 1.0 {
            4usize.saturating_sub(a.log10() as usize)
        } else {
            4
        };
        format!("{x:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(x: &[f32], labels: &[u16]) -> Dataset {
        Dataset {
            x: x.to_vec(),
            labels: labels.to_vec(),
            targets: None,
            n: labels.len(),
            dim: x.len() / labels.len(),
            n_classes: 2,
            name: "t".into(),
        }
    }

    #[test]
    fn the_data_fingerprint_sees_every_bit_and_the_order() {
        let train = set(&[0.5, -1.0, 2.0, 0.0], &[0, 1]);
        let test = set(&[1.0, 1.5], &[1]);
        let fp = data_fingerprint(&train, &test);
        // Pinned (and checked against an independent implementation of the definition):
        // checkpoints of every platform and version carry this value for these data, and a
        // resume refuses any other.
        assert_eq!(fp, "4d0d12a5e0bcf3a4");
        assert_eq!(data_fingerprint(&train, &test), fp);
        let differs = |tr: &Dataset, te: &Dataset| assert_ne!(data_fingerprint(tr, te), fp);
        // Rows swapped, one feature's sign (-0.0), one label, the sets swapped.
        differs(&set(&[2.0, 0.0, 0.5, -1.0], &[1, 0]), &test);
        differs(&set(&[0.5, -1.0, 2.0, -0.0], &[0, 1]), &test);
        differs(&train, &set(&[1.0, 1.5], &[0]));
        differs(&test, &train);
        // The same values in another shape.
        let mut wide = set(&[0.5, -1.0, 2.0, 0.0], &[0]);
        wide.labels = vec![0, 1];
        differs(&wide, &test);
        let mut regression = set(&[0.5, -1.0, 2.0, 0.0], &[0, 0]);
        differs(&regression, &test);
        regression.targets = Some(vec![0.25, 0.75]);
        let fr = data_fingerprint(&regression, &test);
        regression.targets = Some(vec![0.25, 0.5]);
        assert_ne!(data_fingerprint(&regression, &test), fr);
    }

    #[test]
    fn unconverged_counts_round_trip_and_five_counts_are_read() {
        let u = Unconverged {
            sharpness: 1,
            topk: 2,
            lambda_min: 3,
            precond_sharpness: 4,
            tracked_sharpness: 5,
            non_finite: 6,
        };
        assert_eq!(u.to_meta(), "1,2,3,4,5,6");
        assert_eq!(Unconverged::from_meta(&u.to_meta()), Some(u));
        let previous = Unconverged::from_meta("1,2,3,4,5").unwrap();
        assert_eq!(previous, Unconverged { non_finite: 0, ..u });
        for bad in ["1,2,3,4", "1,2,3,4,5,6,7", "1,2,3,4,x", ""] {
            assert_eq!(Unconverged::from_meta(bad), None, "{bad:?}");
        }
    }

    #[rustversion::since(1.89)]
    #[test]
    fn a_locked_run_directory_cannot_be_locked_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_run(dir.path()).unwrap();
        // Another open file of the lock is refused, in this process too (a sweep's runs).
        let e = lock_run(dir.path()).unwrap_err();
        assert_eq!(e.code, crate::error::EXIT_BAD_INPUT);
        assert!(
            e.to_string().contains(&format!(
                "another edgewise process is writing {}",
                dir.path().display()
            )),
            "{e}"
        );
        drop(first);
        let again = lock_run(dir.path()).unwrap();
        // --force leaves the lock file alone.
        assert!(holds_a_run(dir.path()));
        drop(again);
        assert!(dir.path().join(LOCK_FILE).is_file());
    }
}
