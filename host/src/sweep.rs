//! `edgewise sweep`: a grid of training runs, run in parallel, restartable, shardable.
//!
//! The grid is the Cartesian product of the listed optimizers, clip values, batch sizes,
//! learning rates and seeds, in that nesting order (seeds innermost); run `i` of the grid has a
//! fixed name (`opt=adam_clip=0.01_bs=full_lr=0.05_seed=0`) and directory under `--out`.
//! `--shard I/N` (0 <= I < N) runs exactly the runs with `i mod N == I`, so N machines (a Slurm
//! array, GNU parallel) together run the whole grid once. Each run is single-threaded by
//! default and `--jobs` runs go at once; every run is deterministic, so the results are
//! byte-identical to running the grid serially. A run whose `summary.json` can be read is skipped
//! (unless its `metrics.csv` lacks rows: redone);
//! an interrupted one is resumed from its checkpoint when it has one and restarted otherwise.
//! Before anything runs or is written, every run of the grid is checked as `train` checks its
//! configuration (settings, data, split, batch size, length, memory: [`train::prepare`],
//! [`train::check_plan`]), and every existing run directory of the grid (every shard's: the
//! shards of one sweep must agree) must hold the configuration the grid gives it (a sweep re-run
//! with other settings into the same `--out` would otherwise skip or resume runs of the old
//! settings under the new listing), except for its length: a re-run with a larger `--steps` /
//! `--epochs` extends the runs bit-identically from their resume checkpoints, and a length
//! shorter than the steps a run has taken is refused. `--force` redoes the shard's runs from
//! scratch instead. A run directory under `--out` that the grid does not list is refused, and so
//! is an existing `sweep.json` of another sweep (`check_listing`: other base settings, or a
//! grid that leaves out runs it lists; adding runs is allowed). With or without `--force`, a run
//! directory the run could not be written into without deleting something first (a file named
//! `checkpoints`, a directory named `metrics.csv`, a directory of other files) is refused. A
//! refused sweep writes nothing, not even `sweep.json`. A grid that names one run twice (a
//! repeated value) is refused: two jobs would write the same directory. A run that fails does
//! not stop the others; the sweep then fails with the most severe of their failures
//! ([`failure`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{Resolved, TrainConfig};
use crate::error::{Failure, Result};
use crate::train::{self, RunOptions, RUN_DIRS};

/// The grid axes; an empty axis keeps the base configuration's value.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    /// Optimizers.
    pub opts: Vec<String>,
    /// Clip values.
    pub clips: Vec<f32>,
    /// Batch sizes (`None` = full batch).
    pub batch_sizes: Vec<Option<usize>>,
    /// Learning rates.
    pub lrs: Vec<f32>,
    /// Seeds.
    pub seeds: Vec<u64>,
}

/// One run of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct GridRun {
    /// Position in the grid.
    pub index: usize,
    /// Directory name.
    pub name: String,
    /// Its configuration.
    #[serde(skip)]
    pub config: TrainConfig,
}

/// Parses `a,b,c` with `parse` for one item; errors name the flag.
pub fn parse_list<T>(flag: &str, s: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    parse_items(flag, s, |x| {
        parse(x).ok_or_else(|| Failure::input(format!("{flag}: cannot parse {x:?}")))
    })
}

/// [`parse_list`] with the reason for a bad item: `--flag: "x": {reason}`.
pub fn parse_list_with<T>(
    flag: &str,
    s: &str,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    parse_items(flag, s, |x| {
        parse(x).map_err(|why| Failure::input(format!("{flag}: {x:?}: {why}")))
    })
}

/// Items are separated by single commas; an empty item (`0.1,`, `0.1,,0.2`) is refused, as it
/// is more likely a value left out than a separator too many.
fn parse_items<T>(flag: &str, s: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    if s.trim().is_empty() {
        return Err(Failure::input(format!("{flag} {s:?}: no values given")));
    }
    s.split(',')
        .map(|x| x.trim())
        .enumerate()
        .map(|(i, x)| {
            if x.is_empty() {
                Err(Failure::input(format!(
                    "{flag} {s:?}: item {} is empty (a value left out, or a comma too many?)",
                    i + 1
                )))
            } else {
                parse(x)
            }
        })
        .collect()
}

/// Parses one `--batch-sizes` item: `full` (full batch) or an integer of at least 1.
pub fn parse_batch_size(x: &str) -> std::result::Result<Option<usize>, String> {
    if x == "full" {
        return Ok(None);
    }
    match x.parse::<usize>() {
        Ok(0) => Err("a batch size must be at least 1 (or `full` for full batch)".into()),
        Ok(b) => Ok(Some(b)),
        Err(_) => Err("not a batch size (an integer of at least 1, or `full`)".into()),
    }
}

/// The most learning rates of a geometric grid.
const MAX_GRID: usize = 1000;

/// Parses a geometric grid `START:FACTOR:COUNT` (e.g. `0.01:2:6` = 0.01, 0.02, ..., 0.32).
pub fn parse_geometric(s: &str) -> Result<Vec<f32>> {
    let bad = || {
        Failure::input(format!(
            "--lr-grid {s:?}: expected START:FACTOR:COUNT, e.g. 0.01:2:6"
        ))
    };
    let f: Vec<&str> = s.split(':').collect();
    if f.len() != 3 {
        return Err(bad());
    }
    let start: f64 = f[0].parse().map_err(|_| bad())?;
    let factor: f64 = f[1].parse().map_err(|_| bad())?;
    let count: usize = f[2].parse().map_err(|_| bad())?;
    if !(start > 0.0 && start.is_finite() && factor > 0.0 && factor.is_finite()) {
        return Err(Failure::input(format!(
            "--lr-grid {s:?}: START and FACTOR must be positive and finite"
        )));
    }
    if !(1..=MAX_GRID).contains(&count) {
        return Err(Failure::input(format!(
            "--lr-grid {s:?}: COUNT must be in 1..={MAX_GRID}"
        )));
    }
    // Each value is start * factor^i computed in f64 by repeated multiplication, then rounded
    // to 6 significant digits so that names and configurations stay readable.
    let mut v = Vec::with_capacity(count);
    let mut x = start;
    for _ in 0..count {
        let r: f64 = format!("{x:.6e}").parse().unwrap_or(x);
        v.push(r as f32);
        x *= factor;
    }
    Ok(v)
}

fn fmt_value(x: f32) -> String {
    format!("{x}")
}

/// Expands the grid over `base`.
pub fn expand(base: &TrainConfig, g: &Grid) -> Vec<GridRun> {
    let opts: Vec<Option<&String>> = if g.opts.is_empty() {
        vec![None]
    } else {
        g.opts.iter().map(Some).collect()
    };
    let clips: Vec<Option<f32>> = if g.clips.is_empty() {
        vec![None]
    } else {
        g.clips.iter().copied().map(Some).collect()
    };
    let bss: Vec<Option<Option<usize>>> = if g.batch_sizes.is_empty() {
        vec![None]
    } else {
        g.batch_sizes.iter().copied().map(Some).collect()
    };
    let lrs: Vec<Option<f32>> = if g.lrs.is_empty() {
        vec![None]
    } else {
        g.lrs.iter().copied().map(Some).collect()
    };
    let seeds: Vec<Option<u64>> = if g.seeds.is_empty() {
        vec![None]
    } else {
        g.seeds.iter().copied().map(Some).collect()
    };
    let mut runs = Vec::new();
    for o in &opts {
        for c in &clips {
            // A clip value only applies to the clipped optimizers.
            let opt_name = o.cloned().unwrap_or_else(|| base.optim.opt.clone());
            let clipped = opt_name.starts_with("clipped-");
            if c.is_some() && !clipped && clips.first() != Some(c) {
                continue;
            }
            for b in &bss {
                for l in &lrs {
                    for s in &seeds {
                        let mut cfg = base.clone();
                        let mut name = Vec::new();
                        if let Some(o) = o {
                            cfg.optim.opt = (*o).clone();
                            name.push(format!("opt={o}"));
                        }
                        if let (Some(c), true) = (c, clipped) {
                            cfg.optim.clip = Some(*c);
                            name.push(format!("clip={}", fmt_value(*c)));
                        }
                        if let Some(b) = b {
                            cfg.optim.batch_size = *b;
                            name.push(format!("bs={}", b.map_or("full".into(), |x| x.to_string())));
                        }
                        if let Some(l) = l {
                            cfg.optim.lr = *l;
                            name.push(format!("lr={}", fmt_value(*l)));
                        }
                        if let Some(s) = s {
                            cfg.model.seed = *s;
                            name.push(format!("seed={s}"));
                        }
                        let name = if name.is_empty() {
                            "run".to_string()
                        } else {
                            name.join("_")
                        };
                        runs.push(GridRun {
                            index: runs.len(),
                            name,
                            config: cfg,
                        });
                    }
                }
            }
        }
    }
    runs
}

/// Parses `I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Failure::input(format!(
            "--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// What happened to one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunStatus {
    /// Grid position.
    pub index: usize,
    /// Name.
    pub name: String,
    /// `done` (`done (resumed)`, `done (started over: ...)`), `skipped` (already complete;
    /// `skipped (diverged)` when it had diverged), `diverged`,
    /// `interrupted (resume state written)`, `not started (interrupted)` or `failed: ...`.
    pub status: String,
    /// The exit code of a failed run's failure (1: internal error or a failure to write
    /// results; 2: bad input), as `train` would have exited; `None` unless it failed.
    #[serde(skip)]
    pub failure: Option<u8>,
}

/// Settings of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Runs at once.
    pub jobs: usize,
    /// Threads per run.
    pub threads_per_run: usize,
    /// Shard.
    pub shard: (usize, usize),
    /// Progress lines.
    pub quiet: bool,
    /// Write per-run plots.
    pub plots: bool,
    /// Redo every run of the shard from scratch.
    pub force: bool,
}

/// What the sweep does with a run of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Finished at the grid's settings: nothing to do.
    Skip,
    /// Continued from its resume checkpoint (interrupted, or given a new length).
    Resume,
    /// Run from scratch (new, without a resume checkpoint, or `--force`).
    Fresh,
}

/// What the sweep does with `run` (`force`: redo it from scratch). `check_existing` has made
/// sure that an existing run differs at most in its length.
fn action(out: &Path, run: &GridRun, force: bool) -> Action {
    let dir = out.join(&run.name);
    if force {
        return Action::Fresh;
    }
    let same = TrainConfig::from_file(&dir.join("config.toml")).is_ok_and(|c| c == run.config);
    // Finished: a summary.json `report` can read (a damaged one is not the end of a run: the
    // run is continued from its resume checkpoint, which rewrites it, or redone), and a
    // metrics.csv that holds a row for every step it names (a damaged or cut one: redone,
    // the same bits again).
    let summary = same
        .then(|| crate::report::read_summary(&dir.join("summary.json")).ok())
        .flatten();
    if let Some(s) = summary {
        let whole = crate::metrics::read(&dir.join("metrics.csv"))
            .is_ok_and(|rows| rows.len() as u64 >= s.steps);
        if whole {
            Action::Skip
        } else {
            Action::Fresh
        }
    } else if dir.join("checkpoints/resume.safetensors").is_file()
        && dir.join("metrics.csv").is_file()
    {
        // A run whose last row diverged but that was stopped before its summary: when it
        // diverged on a checkpoint step, the resume checkpoint holds the diverging parameters
        // and `train --resume` refuses it; redone from the start, it diverges again with the
        // same bits and writes its summary.
        let diverged = crate::metrics::read(&dir.join("metrics.csv"))
            .is_ok_and(|rows| rows.last().is_some_and(|r| !r.loss.is_finite()));
        if diverged {
            Action::Fresh
        } else {
            Action::Resume
        }
    } else {
        Action::Fresh
    }
}

fn run_one(run: &GridRun, opts: &SweepOptions) -> Result<String> {
    let resume = match action(&opts.out, run, opts.force) {
        Action::Skip => {
            let dir = opts.out.join(&run.name).join("summary.json");
            let diverged = crate::report::read_summary(&dir).is_ok_and(|s| s.diverged);
            return Ok(if diverged {
                "skipped (diverged)".into()
            } else {
                "skipped".into()
            });
        }
        Action::Resume => true,
        Action::Fresh => false,
    };
    let ro = RunOptions {
        out: opts.out.join(&run.name),
        threads: opts.threads_per_run,
        tile: crate::engine::DEFAULT_TILE,
        quiet: true,
        force: !resume,
        resume,
        plots: opts.plots,
        interrupt_after: None,
    };
    // Said in the progress line: a run continued from its resume state, or started over
    // because an earlier attempt left none (or a damaged run).
    let how = if resume {
        " (resumed)"
    } else if !opts.force && ro.out.join("metrics.csv").exists() {
        " (started over: no usable resume state)"
    } else {
        ""
    };
    let o = train::run(&run.config, &ro)?;
    Ok(if o.summary.diverged {
        "diverged".into()
    } else {
        format!("done{how}")
    })
}

/// Runs the shard's part of the grid; returns the status of each of its runs.
///
/// Nothing is written until every check has passed: each run's configuration (as `train`
/// checks it: settings, data, split, batch size, memory), the run directories of the whole
/// grid under `--out` (not only the shard's: shards of one sweep must agree), and the
/// `sweep.json` of an earlier sweep into `--out` (`check_listing`).
pub fn sweep(base: &TrainConfig, grid: &Grid, opts: &SweepOptions) -> Result<Vec<RunStatus>> {
    let runs = expand(base, grid);
    // Validate every configuration before starting anything.
    let resolved: Vec<Resolved> = runs
        .iter()
        .map(|r| {
            r.config
                .resolve()
                .map_err(|e| e.context(format!("grid run {}", r.name)))
        })
        .collect::<Result<_>>()?;
    check_grid(&runs, grid)?;
    let (si, sn) = opts.shard;
    let is_mine = |r: &GridRun| r.index % sn == si;
    let mine: Vec<&GridRun> = runs.iter().filter(|r| is_mine(r)).collect();
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: exists and is not a directory",
            opts.out.display()
        )));
    }
    for r in &mine {
        check_layout(&opts.out, r, opts)?;
    }
    // Every run of the grid, not only the shard's: shards of one sweep must agree. `--force`
    // redoes the shard's runs at the new settings; the other shards' runs are checked (and
    // refused while they hold the old ones) when those shards run without it.
    if !opts.force {
        for r in &runs {
            check_existing(&opts.out, r, (!is_mine(r)).then_some(opts.shard))?;
        }
    }
    check_strays(&opts.out, &runs)?;
    check_listing(&opts.out, base, grid, &runs, opts.force)?;
    check_runs(&runs, &resolved, opts)?;
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        let e = crate::fsio::IoError::new(&opts.out, "create", e);
        let message = format!("cannot create output directory: {e}");
        match e.is_bad_path() {
            true => Failure::input(message),
            false => Failure::internal(message),
        }
    })?;
    let listing = serde_json::json!({
        "runs": runs.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "grid": {
            "opts": grid.opts,
            "clips": grid.clips,
            "batch_sizes": grid.batch_sizes,
            "lrs": grid.lrs,
            "seeds": grid.seeds,
        },
        "base": base,
    });
    let path = opts.out.join("sweep.json");
    {
        // Another sweep into the same --out may have written its listing since the check
        // above: checked again and written under a lock, so that of two sweeps with different
        // grids the one that would drop the other's runs from the listing is refused instead.
        let _lock = lock_listing(&opts.out);
        check_listing(&opts.out, base, grid, &runs, opts.force)?;
        crate::fsio::atomic_write(
            &path,
            serde_json::to_string_pretty(&listing)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(train::out_err)?;
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<RunStatus>> = Mutex::new(Vec::new());
    let total = mine.len();
    let jobs = opts.jobs.clamp(1, total.max(1));
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= total {
                    break;
                }
                let r = mine[k];
                let (status, failure) = if crate::interrupt::requested() {
                    // Stopped by a signal: no new run.
                    let code = crate::interrupt::EXIT_INTERRUPTED;
                    ("not started (interrupted)".to_string(), Some(code))
                } else {
                    match run_one(r, opts) {
                        Ok(s) => (s, None),
                        Err(e) if e.code == crate::interrupt::EXIT_INTERRUPTED => {
                            ("interrupted (resume state written)".into(), Some(e.code))
                        }
                        Err(e) => (format!("failed: {e}"), Some(e.code)),
                    }
                };
                if !opts.quiet {
                    eprintln!("[{}/{}] {}: {status}", k + 1, total, r.name);
                }
                if let Ok(mut v) = results.lock() {
                    v.push(RunStatus {
                        index: r.index,
                        name: r.name.clone(),
                        status,
                        failure,
                    });
                }
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_default();
    v.sort_by_key(|s| s.index);
    Ok(v)
}

/// The failure a sweep whose runs failed ends with (its exit code): the most severe kind among
/// them, an internal error or a failure to write results (exit code 1, e.g. a full disk) before
/// bad input (2), naming the first run in grid order that failed so and counting the others.
/// `None` when no run failed (diverged runs are not failures: a sweep across the stability
/// threshold expects them, and their status and `summary.json` say so).
pub fn failure(statuses: &[RunStatus]) -> Option<Failure> {
    let failed: Vec<&RunStatus> = statuses.iter().filter(|s| s.failure.is_some()).collect();
    let rank = |code: u8| match code {
        crate::error::EXIT_INTERNAL => 0,
        crate::error::EXIT_BAD_INPUT => 1,
        _ => 2,
    };
    let worst = failed
        .iter()
        .min_by_key(|s| (s.failure.map_or(u8::MAX, rank), s.index))?;
    let others = match failed.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other run failed)".into(),
        n => format!(" (and {n} other runs failed)"),
    };
    Some(Failure {
        code: worst.failure.unwrap_or(crate::error::EXIT_INTERNAL),
        message: format!("run {} {}{others}", worst.name, worst.status),
    })
}

/// Checks every run of the grid the sweep will train (not those it skips, finished at the
/// grid's settings) as `train` checks its configuration before it writes anything: the data
/// load and split, the network against the data, the batch size against the training split,
/// the length and the memory the run needs ([`train::prepare`], [`train::check_plan`]). The
/// data are loaded once per distinct data setting (data, split, seed, Hessian subset), one at
/// a time.
fn check_runs(runs: &[GridRun], resolved: &[Resolved], opts: &SweepOptions) -> Result<()> {
    let (si, sn) = opts.shard;
    let key = |r: &GridRun| {
        let c = &r.config;
        let data = serde_json::to_string(&c.data).unwrap_or_default();
        let model = (&c.model.arch, &c.model.loss, c.model.seed);
        (data, format!("{model:?}"), c.curvature.hessian_subset)
    };
    let mut todo: Vec<(usize, Action)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let force = opts.force && r.index % sn == si;
            (i, action(&opts.out, r, force))
        })
        .filter(|&(_, a)| a != Action::Skip)
        .collect();
    todo.sort_by_cached_key(|&(i, _)| (key(&runs[i]), i));
    let mut loaded: Option<(_, train::Prepared)> = None;
    for (i, act) in todo {
        let (r, res) = (&runs[i], &resolved[i]);
        let context = |e: Failure| e.context(format!("grid run {}", r.name));
        let k = key(r);
        let prep = match loaded {
            Some((ref lk, ref prep)) if *lk == k => prep,
            _ => {
                loaded = None;
                let prep = train::prepare(&r.config, &res.arch).map_err(context)?;
                &loaded.insert((k, prep)).1
            }
        };
        train::check_plan(
            &r.config,
            res,
            prep,
            opts.threads_per_run,
            crate::engine::DEFAULT_TILE,
            act == Action::Fresh,
        )
        .map_err(context)?;
    }
    Ok(())
}

/// The file whose exclusive lock serialises the check and write of `sweep.json`.
pub const LISTING_LOCK: &str = "sweep.lock";

/// Waits for the exclusive lock on `out`'s [`LISTING_LOCK`] (held while the returned file is
/// open). Where it cannot be taken (a file system without locks, an unwritable directory) the
/// sweep goes on unlocked: the write of `sweep.json` reports a real problem.
fn lock_listing(out: &Path) -> Option<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(out.join(LISTING_LOCK))
        .ok()?;
    lock_exclusive(&file).ok()?;
    Some(file)
}

/// `File::lock` (blocking `flock(LOCK_EX)`), stable since Rust 1.89.
#[rustversion::since(1.89)]
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    file.lock()
}

/// Compilers before Rust 1.89 have no file locks in `std`: no lock.
#[rustversion::before(1.89)]
fn lock_exclusive(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Refuses a run directory under `out` (a directory with a `config.toml`) that the grid does not
/// list: another grid's run, or `train`'s. A sweep's `--out` holds its grid's runs alone, so that
/// `report` and a restart see one sweep.
fn check_strays(out: &Path, runs: &[GridRun]) -> Result<()> {
    if out.join("config.toml").is_file() {
        return Err(Failure::input(format!(
            "--out {}: a run directory of `train` (it has a config.toml): a sweep's --out holds \
             the runs of its grid alone; use another --out",
            out.display()
        )));
    }
    for dir in run_dirs(out) {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if !runs.iter().any(|r| Some(&r.name) == name.as_ref()) {
            return Err(Failure::input(format!(
                "{} holds a run that this sweep's grid does not list (another grid's, or \
                 train's): a sweep's --out holds the runs of its grid alone; use another --out",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a sweep into an `--out` whose `sweep.json` (written by an earlier sweep, or another
/// shard of this one) describes another sweep. The grid may extend the earlier one: list every
/// run it listed and more (a value added to `--lrs`, `--seeds`, ...), and give the runs a
/// larger `--steps` or `--epochs` (checked run by run: `check_existing`). Any other difference
/// in the base settings (those the grid does not set) is refused naming it, unless `--force`
/// redoes the runs at the new settings; a grid that leaves out a run of the earlier one is
/// refused with or without `--force`, which redoes runs but does not remove them.
fn check_listing(
    out: &Path,
    base: &TrainConfig,
    grid: &Grid,
    runs: &[GridRun],
    force: bool,
) -> Result<()> {
    let path = out.join("sweep.json");
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(());
    };
    let refuse = |why: String| {
        Failure::input(format!(
            "{}: {why}; the sweep changed nothing: use another --out",
            path.display()
        ))
    };
    if !meta.is_file() {
        return Err(refuse("exists and is not a regular file".into()));
    }
    let listing: serde_json::Value = std::fs::read(&path)
        .map_err(|e| refuse(format!("cannot read it: {e}")))
        .and_then(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| refuse(format!("not a sweep listing (invalid JSON: {e})")))
        })?;
    let old_runs: Vec<&str> = listing
        .get("runs")
        .and_then(|r| r.as_array())
        .and_then(|a| a.iter().map(|n| n.as_str()).collect::<Option<_>>())
        .ok_or_else(|| refuse("not a sweep listing (no list of runs)".into()))?;
    let dropped: Vec<&str> = old_runs
        .iter()
        .copied()
        .filter(|n| !runs.iter().any(|r| r.name == *n))
        .collect();
    if !dropped.is_empty() {
        let shown: Vec<&str> = dropped.iter().copied().take(5).collect();
        let more = match dropped.len() - shown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(refuse(format!(
            "the sweep in {} lists runs that this sweep's grid does not ({}{more}): a sweep \
             may add runs to its grid, not leave any out",
            out.display(),
            shown.join(", ")
        )));
    }
    let mut old: TrainConfig = listing
        .get("base")
        .and_then(|b| serde_json::from_value(b.clone()).ok())
        .ok_or_else(|| refuse("not a sweep listing (no readable base settings)".into()))?;
    // The length may grow (checked run by run), and the settings the grid sets are the runs'.
    old.run.steps = base.run.steps;
    old.run.epochs = base.run.epochs;
    if !grid.lrs.is_empty() {
        old.optim.lr = base.optim.lr;
    }
    if !grid.seeds.is_empty() {
        old.model.seed = base.model.seed;
    }
    if !grid.batch_sizes.is_empty() {
        old.optim.batch_size = base.optim.batch_size;
    }
    if !grid.opts.is_empty() {
        old.optim.opt = base.optim.opt.clone();
    }
    if !grid.clips.is_empty() {
        old.optim.clip = base.optim.clip;
    }
    let diff = old.differences(base);
    if diff.is_empty() || force {
        return Ok(());
    }
    Err(Failure::input(format!(
        "{}: the sweep in {} has other settings than this one (sweep.json vs this sweep: {}); \
         the sweep changed nothing: use another --out, or pass --force to redo the sweep's runs",
        path.display(),
        out.display(),
        diff.join(", ")
    )))
}

/// Refuses a grid that names a run twice (a value repeated in a list, or a geometric grid
/// whose rounded values repeat) and clip values that no listed optimizer uses.
fn check_grid(runs: &[GridRun], grid: &Grid) -> Result<()> {
    for (i, r) in runs.iter().enumerate() {
        if runs[..i].iter().any(|q| q.name == r.name) {
            return Err(Failure::input(format!(
                "the grid holds run {} twice (a value repeated in --lrs, --lr-grid, --seeds, --batch-sizes, --opts or --clips): both would write the same directory",
                r.name
            )));
        }
    }
    if !grid.clips.is_empty()
        && !runs
            .iter()
            .any(|r| r.config.optim.opt.starts_with("clipped-"))
    {
        return Err(Failure::input(
            "--clips: no optimizer of the grid uses a clip value (only clipped-adam and clipped-rmsprop do; add one with --opts or --opt)",
        ));
    }
    Ok(())
}

/// Refuses, before anything is written, a run directory the run could not be written into
/// without first deleting what it holds: a file where the run keeps a directory (or the
/// reverse), or a directory with other files but no `config.toml` (not an edgewise run, which
/// `train` would refuse at run time, after the sweep had started). With or without `--force`:
/// `--force` deletes a run's own files, which would not clear the way either.
fn check_layout(out: &Path, run: &GridRun, opts: &SweepOptions) -> Result<()> {
    let dir = out.join(&run.name);
    let Ok(meta) = std::fs::metadata(&dir) else {
        return Ok(());
    };
    let nothing = "the sweep changed nothing: move it away (or use another --out)";
    if !meta.is_dir() {
        return Err(Failure::input(format!(
            "{}: the directory of run {} exists and is not a directory; {nothing}",
            dir.display(),
            run.name
        )));
    }
    let files = [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "checkpoints/resume.safetensors",
    ];
    for f in files {
        let p = dir.join(f);
        if std::fs::metadata(&p).is_ok_and(|m| !m.is_file()) {
            return Err(Failure::input(format!(
                "{}: exists and is not a regular file, where run {} keeps its {f}; {nothing}",
                p.display(),
                run.name
            )));
        }
    }
    for d in RUN_DIRS {
        let p = dir.join(d);
        if std::fs::metadata(&p).is_ok_and(|m| !m.is_dir()) {
            return Err(Failure::input(format!(
                "{}: exists and is not a directory, where run {} keeps its {d}/; {nothing}",
                p.display(),
                run.name
            )));
        }
    }
    if !dir.join("config.toml").is_file() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", dir.display())))?;
        let foreign = entries
            .filter_map(|e| e.ok())
            .find(|e| !train::is_own_entry(e));
        if let Some(e) = foreign {
            return Err(Failure::input(format!(
                "{}: holds {} but no config.toml (not an edgewise run), and the sweep would \
                 write run {} there; {nothing}",
                dir.display(),
                e.file_name().to_string_lossy(),
                run.name
            )));
        }
    } else {
        // What `train` checks before it deletes anything of a run it continues or replaces,
        // for every such run before the first starts (a finished run that is skipped is
        // only read).
        let append = match action(out, run, opts.force) {
            Action::Skip => return Ok(()),
            Action::Resume => true,
            Action::Fresh => false,
        };
        train::check_run_paths(&dir, append, opts.plots)
            .map_err(|why| Failure::input(format!("run {}: {why}; {nothing}", run.name)))?;
    }
    Ok(())
}

/// How far an existing run has got: the steps it has taken (the larger of `summary.json`'s
/// `steps` and the resume checkpoint's `step`, which a resume continues from), and, when
/// known, the (0-based) epoch of the last of them. `None` when neither file tells.
fn progress(dir: &Path) -> Option<(u64, Option<u64>)> {
    let summary: Option<serde_json::Value> = std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let field = |k: &str| {
        summary
            .as_ref()
            .and_then(|s| s.get(k))
            .and_then(|x| x.as_u64())
    };
    let from_summary = field("steps");
    let from_checkpoint = crate::checkpoint::load(&dir.join("checkpoints/resume.safetensors"))
        .ok()
        .and_then(|ck| ck.metadata.get("step").and_then(|s| s.parse::<u64>().ok()));
    let taken = from_summary.max(from_checkpoint)?;
    if taken == 0 {
        return Some((0, None));
    }
    // summary.json's `epochs` counts the epochs its steps touched; otherwise the `epoch`
    // column of the last step's row.
    let last_epoch = match field("epochs") {
        Some(e) if from_summary == Some(taken) && e > 0 => Some(e - 1),
        _ => crate::metrics::read_layout(&dir.join("metrics.csv"), true)
            .ok()
            .and_then(|l| l.rows.iter().find(|r| r.step == taken - 1).map(|r| r.epoch)),
    };
    Some((taken, last_epoch))
}

/// Refuses a length shorter than the steps the existing run in `dir` has taken: `train
/// --resume` would refuse it at run time, and a run without a resume checkpoint would be
/// redone from scratch, losing the longer one.
fn check_length(dir: &Path, run: &GridRun, other_shard: Option<(usize, usize)>) -> Result<()> {
    let Some((taken, last_epoch)) = progress(dir) else {
        return Ok(());
    };
    let advice = format!(
        "a sweep extends runs, never shortens them: {}",
        advice(other_shard)
    );
    let short = match (run.config.run.steps, run.config.run.epochs) {
        (None, Some(epochs)) => last_epoch.filter(|&e| e >= epochs).map(|e| {
            format!(
                "the run has taken {taken} steps already, into epoch {} (counting from 1), more \
                 than the {epochs} epochs (--epochs) this sweep gives it",
                e + 1
            )
        }),
        (steps, _) => {
            let total = steps.unwrap_or(crate::train::DEFAULT_STEPS);
            (taken > total).then(|| {
                format!(
                    "the run has taken {taken} steps already, more than the {total} (--steps) \
                     this sweep gives it"
                )
            })
        }
    };
    match short {
        Some(why) => Err(Failure::input(format!(
            "{}: {why}; {advice}",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// What to do about an existing run the sweep refuses (`other_shard`: see `check_existing`).
fn advice(other_shard: Option<(usize, usize)>) -> String {
    match other_shard {
        None => "use another --out, or pass --force to redo the sweep's runs".into(),
        Some((i, n)) => format!(
            "it is another shard's run (this is shard {i}/{n}): use another --out, or pass \
             --force to redo the sweep's runs (a shard's --force redoes its own: give it to \
             every shard)"
        ),
    }
}

/// Refuses an existing run directory of `run` that holds another configuration than the
/// grid's, or no readable one; a different length alone (`--steps`, `--epochs`) is allowed:
/// the run is extended from its resume checkpoint, as `train --resume --steps` does.
/// `other_shard`: `Some((i, n))` when the run belongs to another shard than this one, `I/N`,
/// whose `--force` would not redo it.
fn check_existing(out: &Path, run: &GridRun, other_shard: Option<(usize, usize)>) -> Result<()> {
    let dir = out.join(&run.name);
    let path = dir.join("config.toml");
    if !path.is_file() {
        return Ok(());
    }
    let old = TrainConfig::from_file(&path).map_err(|e| {
        Failure::input(format!(
            "{e}; the sweep cannot tell whether {} is its run (pass --force to redo it)",
            dir.display()
        ))
    })?;
    let mut same_but_length = old.clone();
    same_but_length.run.steps = run.config.run.steps;
    same_but_length.run.epochs = run.config.run.epochs;
    let diff = same_but_length.differences(&run.config);
    if diff.is_empty() {
        return if old == run.config {
            Ok(())
        } else {
            check_length(&dir, run, other_shard)
        };
    }
    Err(Failure::input(format!(
        "{} holds a run with other settings than this sweep gives it (existing vs this sweep: {}); {}",
        dir.display(),
        diff.join(", "),
        advice(other_shard)
    )))
}

/// Run directories under `dir` (those holding a `config.toml`), sorted by name.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("config.toml").is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_fails_with_its_most_severe_run_failure() {
        let st = |index: usize, failure: Option<u8>| RunStatus {
            index,
            name: format!("run{index}"),
            status: match failure {
                Some(c) => format!("failed: code {c}"),
                None => "diverged".into(),
            },
            failure,
        };
        assert!(failure(&[st(0, None), st(1, None)]).is_none());
        let f = failure(&[st(0, None), st(1, Some(2)), st(2, Some(1)), st(3, Some(1))]).unwrap();
        assert_eq!(f.code, crate::error::EXIT_INTERNAL);
        assert_eq!(
            f.message,
            "run run2 failed: code 1 (and 2 other runs failed)"
        );
        let f = failure(&[st(4, Some(2)), st(5, None)]).unwrap();
        assert_eq!((f.code, f.message.as_str()), (2, "run run4 failed: code 2"));
    }

    #[test]
    fn grid_names_and_shards() {
        let base = TrainConfig::default();
        let g = Grid {
            lrs: vec![0.01, 0.02],
            seeds: vec![0, 1, 2],
            ..Default::default()
        };
        let runs = expand(&base, &g);
        assert_eq!(runs.len(), 6);
        assert_eq!(runs[0].name, "lr=0.01_seed=0");
        assert_eq!(runs[5].name, "lr=0.02_seed=2");
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
        let lrs = parse_geometric("0.01:2:4").unwrap();
        assert_eq!(lrs, vec![0.01, 0.02, 0.04, 0.08]);
        let e = |r: Result<Vec<f32>>| r.unwrap_err().to_string();
        assert!(e(parse_geometric("0.1:2:0")).contains("COUNT must be in 1..=1000"));
        assert!(e(parse_geometric("0.1:2:1001")).contains("COUNT must be in 1..=1000"));
        assert!(e(parse_geometric("0.1:-2:3")).contains("positive and finite"));
        assert!(e(parse_geometric("inf:2:3")).contains("positive and finite"));
        assert!(e(parse_geometric("0.1:2")).contains("expected START:FACTOR:COUNT"));
        let list = |s: &str| parse_list("--lrs", s, |x| x.parse::<f32>().ok());
        assert_eq!(list(" 0.1, 0.2 ").unwrap(), vec![0.1, 0.2]);
        assert!(e(list(" ")).contains("--lrs \" \": no values given"));
        assert!(e(list(" 0.1, ,0.2 ")).contains("item 2 is empty"));
        assert!(e(list("0.1,")).contains("--lrs \"0.1,\": item 2 is empty"));
        assert!(e(list("0.1,x")).contains("--lrs: cannot parse \"x\""));
        let sizes = |s: &str| parse_list_with("--batch-sizes", s, parse_batch_size);
        assert_eq!(sizes("full, 25").unwrap(), vec![None, Some(25)]);
        assert_eq!(
            sizes("25,0").unwrap_err().to_string(),
            "--batch-sizes: \"0\": a batch size must be at least 1 (or `full` for full batch)"
        );
        assert_eq!(
            sizes("x").unwrap_err().to_string(),
            "--batch-sizes: \"x\": not a batch size (an integer of at least 1, or `full`)"
        );
        let g = Grid {
            opts: vec!["adam".into(), "clipped-adam".into()],
            clips: vec![0.1, 1.0],
            ..Default::default()
        };
        let names: Vec<String> = expand(&base, &g).into_iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            vec![
                "opt=adam",
                "opt=clipped-adam_clip=0.1",
                "opt=clipped-adam_clip=1"
            ]
        );
    }
}
