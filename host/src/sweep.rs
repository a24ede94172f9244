//! `edgewise sweep`: a grid of training runs, run in parallel, restartable, shardable.
//!
//! The grid is the Cartesian product of the listed optimizers, clip values, batch sizes,
//! learning rates and seeds, in that nesting order (seeds innermost); run `i` of the grid has a
//! fixed name (`opt=adam_clip=0.01_bs=full_lr=0.05_seed=0`) and directory under `--out`.
//! `--shard I/N` (0 <= I < N) runs exactly the runs with `i mod N == I`, so N machines (a Slurm
//! array, GNU parallel) together run the whole grid once. Each run is single-threaded by
//! default and `--jobs` runs go at once; every run is deterministic, so the results are
//! byte-identical to running the grid serially. A run whose `summary.json` exists is skipped;
//! an interrupted one is resumed from its checkpoint when it has one and restarted otherwise.
//! Before anything runs or is written, every existing run directory of the shard must hold the
//! configuration the grid gives it (a sweep re-run with other settings into the same `--out`
//! would otherwise skip or resume runs of the old settings under the new listing), except for
//! its length: a re-run with a larger `--steps` / `--epochs` extends the runs bit-identically
//! from their resume checkpoints, and a length shorter than the steps a run has taken is
//! refused. `--force` redoes the shard's runs from scratch instead. With or without it, a run
//! directory the run could not be written into without deleting something first (a file named
//! `checkpoints`, a directory named `metrics.csv`, a directory of other files) is refused. A
//! refused sweep writes nothing, not even `sweep.json`. A grid that names one run twice (a
//! repeated value) is refused: two jobs would write the same directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::TrainConfig;
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

fn parse_items<T>(flag: &str, s: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    let v: Vec<T> = s
        .split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(parse)
        .collect::<Result<_>>()?;
    if v.is_empty() {
        return Err(Failure::input(format!("{flag} {s:?}: no values given")));
    }
    Ok(v)
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
    /// `done`, `skipped` (already complete), `diverged` or `failed: ...`.
    pub status: String,
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

fn run_one(run: &GridRun, opts: &SweepOptions) -> Result<String> {
    let dir = opts.out.join(&run.name);
    // `check_existing` has made sure that an existing run differs at most in its length.
    let same = TrainConfig::from_file(&dir.join("config.toml")).is_ok_and(|c| c == run.config);
    if !opts.force && same && dir.join("summary.json").is_file() {
        return Ok("skipped".into());
    }
    // An interrupted run, or a finished one given a new length, continues from its checkpoint.
    let resume = !opts.force
        && dir.join("checkpoints/resume.safetensors").is_file()
        && dir.join("metrics.csv").is_file();
    let ro = RunOptions {
        out: dir,
        threads: opts.threads_per_run,
        tile: crate::engine::DEFAULT_TILE,
        quiet: true,
        force: !resume,
        resume,
        plots: opts.plots,
        interrupt_after: None,
    };
    let o = train::run(&run.config, &ro)?;
    Ok(if o.summary.diverged {
        "diverged".into()
    } else {
        "done".into()
    })
}

/// Runs the shard's part of the grid; returns the status of each of its runs.
pub fn sweep(base: &TrainConfig, grid: &Grid, opts: &SweepOptions) -> Result<Vec<RunStatus>> {
    let runs = expand(base, grid);
    // Validate every configuration before starting anything.
    for r in &runs {
        r.config
            .resolve()
            .map_err(|e| e.context(format!("grid run {}", r.name)))?;
    }
    check_grid(&runs, grid)?;
    let (si, sn) = opts.shard;
    let mine: Vec<&GridRun> = runs.iter().filter(|r| r.index % sn == si).collect();
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: exists and is not a directory",
            opts.out.display()
        )));
    }
    for r in &mine {
        check_layout(&opts.out, r)?;
        if !opts.force {
            check_existing(&opts.out, r)?;
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        Failure::input(format!(
            "cannot create output directory {}: {e}",
            opts.out.display()
        ))
    })?;
    let listing = serde_json::json!({
        "runs": runs.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "base": base,
    });
    let path = opts.out.join("sweep.json");
    crate::fsio::atomic_write(
        &path,
        serde_json::to_string_pretty(&listing)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| Failure::input(format!("cannot write to output directory: {e}")))?;
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
                let status = match run_one(r, opts) {
                    Ok(s) => s,
                    Err(e) => format!("failed: {e}"),
                };
                if !opts.quiet {
                    eprintln!("[{}/{}] {}: {status}", k + 1, total, r.name);
                }
                if let Ok(mut v) = results.lock() {
                    v.push(RunStatus {
                        index: r.index,
                        name: r.name.clone(),
                        status,
                    });
                }
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_default();
    v.sort_by_key(|s| s.index);
    Ok(v)
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
fn check_layout(out: &Path, run: &GridRun) -> Result<()> {
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
fn check_length(dir: &Path, run: &GridRun) -> Result<()> {
    let Some((taken, last_epoch)) = progress(dir) else {
        return Ok(());
    };
    let advice = "a sweep extends runs, never shortens them: use another --out, or pass \
                  --force to redo the sweep's runs";
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

/// Refuses an existing run directory of `run` that holds another configuration than the
/// grid's, or no readable one; a different length alone (`--steps`, `--epochs`) is allowed:
/// the run is extended from its resume checkpoint, as `train --resume --steps` does.
fn check_existing(out: &Path, run: &GridRun) -> Result<()> {
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
            check_length(&dir, run)
        };
    }
    Err(Failure::input(format!(
        "{} holds a run with other settings than this sweep gives it (existing vs this sweep: {}); use another --out, or pass --force to redo the sweep's runs",
        dir.display(),
        diff.join(", ")
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
        assert_eq!(list(" 0.1, ,0.2 ").unwrap(), vec![0.1, 0.2]);
        assert!(e(list(" , ")).contains("--lrs \" , \": no values given"));
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
