//! Integration tests of what `sweep` checks before it writes anything (the settings of every
//! shard's runs, `sweep.json`, base flags the grid overrides, every run's configuration as
//! `train` checks it) and of the exit code of a sweep whose runs fail.

mod common;

use std::path::{Path, PathBuf};

use common::{bad, ok, read, run, s, tmp};

/// A small, fast sweep setting: 6 steps, quiet.
const SMALL: &[&str] = &["--steps", "6", "--no-plots", "--quiet"];

/// `sweep --out OUT SMALL EXTRA`, on `--data digits --arch 64-16-10` unless `EXTRA` gives
/// other ones.
fn sweep_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["sweep", "--out", s(out)];
    a.extend_from_slice(SMALL);
    for (flag, value) in [("--data", "digits"), ("--arch", "64-16-10")] {
        if !extra.contains(&flag) {
            a.extend_from_slice(&[flag, value]);
        }
    }
    a.extend_from_slice(extra);
    a
}

/// Every file under `dir` with its content (directories as markers), sorted; empty when `dir`
/// does not exist.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                v.push((p, None));
            } else {
                let bytes = read(&p);
                v.push((p, Some(bytes)));
            }
        }
    }
    v.sort();
    v
}

/// The run names `sweep.json` lists.
fn listed(out: &Path) -> Vec<String> {
    let j: serde_json::Value = serde_json::from_slice(&read(&out.join("sweep.json"))).unwrap();
    j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_shard_with_other_settings_is_refused_before_it_writes() {
    let d = tmp("sw-shards");
    let out = d.join("mix");
    let grid = ["--lrs", "0.05,0.1"];
    let shard = |i: &'static str, extra: &[&'static str]| -> Vec<&str> {
        let mut e: Vec<&'static str> = grid.to_vec();
        e.extend_from_slice(&["--shard", i]);
        e.extend_from_slice(extra);
        sweep_args(&out, &e)
    };
    let first = shard("0/2", &[]);
    ok(&first);
    assert!(out.join("lr=0.05/summary.json").is_file());
    let listing = read(&out.join("sweep.json"));
    let before = snapshot(&out);

    // Shard 1 with another architecture: shard 0's run holds the old one.
    let other = shard("1/2", &["--arch", "64-12-10"]);
    let err = bad(
        &other,
        "holds a run with other settings than this sweep gives it (existing vs this sweep: model.arch = \"64-16-10\" vs \"64-12-10\")",
    );
    assert!(
        err.contains("it is another shard's run (this is shard 1/2)"),
        "{err}"
    );
    assert_eq!(snapshot(&out), before, "nothing written, sweep.json kept");

    // With no run of shard 0 on disk (killed before its first run), sweep.json still tells.
    std::fs::remove_dir_all(out.join("lr=0.05")).unwrap();
    let before = snapshot(&out);
    let err = bad(
        &other,
        "has other settings than this one (sweep.json vs this sweep: model.arch = \"64-16-10\" vs \"64-12-10\")",
    );
    assert!(err.contains("sweep.json"), "{err}");
    assert_eq!(snapshot(&out), before);

    // The same settings join the sweep; sweep.json is the same listing.
    ok(&shard("1/2", &[]));
    assert!(out.join("lr=0.1/summary.json").is_file());
    assert_eq!(read(&out.join("sweep.json")), listing);

    // A grid may add runs (an extension: sweep.json lists the new grid), not leave any out.
    let mut wider = sweep_args(&out, &["--lrs", "0.05,0.1,0.2"]);
    ok(&wider);
    assert_eq!(listed(&out), ["lr=0.05", "lr=0.1", "lr=0.2"]);
    let before = snapshot(&out);
    let k = wider.iter().position(|&x| x == "0.05,0.1,0.2").unwrap();
    wider[k] = "0.05,0.2";
    bad(
        &wider,
        "holds a run that this sweep's grid does not list (another grid's, or train's)",
    );
    wider.push("--force");
    bad(&wider, "lr=0.1");
    assert_eq!(snapshot(&out), before);

    // A listed run that was never written is left out by the grid: sweep.json tells.
    let half = d.join("half");
    ok(&sweep_args(&half, &["--lrs", "0.05,0.1", "--shard", "1/2"]));
    assert_eq!(listed(&half), ["lr=0.05", "lr=0.1"]);
    let before = snapshot(&half);
    bad(
        &sweep_args(&half, &["--lrs", "0.1,0.2"]),
        "lists runs that this sweep's grid does not (lr=0.05): a sweep may add runs to its grid, not leave any out",
    );
    assert_eq!(snapshot(&half), before);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn base_flags_the_grid_sets_are_refused() {
    let d = tmp("sw-overridden");
    let out = d.join("sw");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--lr", "0.5", "--lrs", "0.1"],
            "--lr 0.5 with --lrs: the grid gives every run its learning rate",
        ),
        (
            &["--lr", "0.5", "--lr-grid", "0.1:2:2"],
            "--lr 0.5 with --lr-grid",
        ),
        (
            &["--seed", "7", "--seeds", "0"],
            "--seed 7 with --seeds: the grid gives every run its seed",
        ),
        (
            &["--opt", "adam", "--opts", "gd,momentum"],
            "--opt adam with --opts: the grid gives every run its optimizer",
        ),
        (
            &["--batch-size", "32", "--batch-sizes", "full,64"],
            "--batch-size 32 with --batch-sizes: the grid gives every run its batch size",
        ),
        (
            &[
                "--opt",
                "clipped-adam",
                "--clip",
                "0.5",
                "--clips",
                "0.1,0.2",
            ],
            "--clip 0.5 with --clips: the grid gives every run its clip value",
        ),
    ];
    for (extra, needle) in cases {
        bad(&sweep_args(&out, extra), needle);
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // Both at once are named together.
    let err = bad(
        &sweep_args(
            &out,
            &["--lr", "0.5", "--lrs", "0.1", "--seed", "7", "--seeds", "0"],
        ),
        "flags without effect on any run of this sweep",
    );
    assert!(
        err.contains("--lr 0.5") && err.contains("--seed 7"),
        "{err}"
    );
    // A value from --config is the base the grid replaces.
    let cfg = d.join("base.toml");
    std::fs::write(&cfg, "[optim]\nlr = 0.5\n").unwrap();
    ok(&sweep_args(&out, &["--config", s(&cfg), "--lrs", "0.1"]));
    let run_cfg = String::from_utf8(read(&out.join("lr=0.1/config.toml"))).unwrap();
    assert!(run_cfg.contains("lr = 0.1\n"), "{run_cfg}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_sweep_checks_every_run_as_train_does_before_it_writes() {
    let d = tmp("sw-runs");
    let out = d.join("sw");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--data", "csv:/nonexistent/edgewise.csv", "--lrs", "0.1"],
            "grid run lr=0.1: data file /nonexistent/edgewise.csv",
        ),
        (
            &["--arch", "64-100000-100000-10", "--lrs", "0.1"],
            "needs about 634.93 GiB of memory, more than this process can allocate",
        ),
        (
            &["--per-class", "100000", "--lrs", "0.1"],
            "per_class = 100000",
        ),
        (
            &["--batch-sizes", "2000", "--drop-last", "--lrs", "0.1"],
            "grid run bs=2000_lr=0.1: --batch-size 2000 with --drop-last: larger than the",
        ),
        (
            &["--batch-sizes", "full,100000", "--lrs", "0.1"],
            "grid run bs=100000_lr=0.1: --batch-size 100000: larger than the 1438 training samples; use full batch",
        ),
    ];
    for (extra, needle) in cases {
        bad(&sweep_args(&out, extra), needle);
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // `train` refuses a batch larger than the training set too (it is full batch).
    let t = d.join("t");
    bad(
        &[
            "train",
            "--out",
            s(&t),
            "--data",
            "digits",
            "--arch",
            "64-16-10",
            "--batch-size",
            "100000",
            "-q",
        ],
        "--batch-size 100000: larger than the 1438 training samples; use full batch",
    );
    assert!(!t.exists());
    // Into an existing sweep: a new length that no run can have is refused before sweep.json
    // is rewritten.
    // (1438 samples in batches of 500: 3 steps an epoch.)
    let length = |epochs: &'static str| {
        let mut a = sweep_args(
            &out,
            &["--lrs", "0.1", "--batch-size", "500", "--epochs", epochs],
        );
        a.retain(|&x| x != "--steps" && x != "6");
        a
    };
    ok(&length("1"));
    let before = snapshot(&out);
    bad(
        &length("9223372036854775807"),
        "--epochs 9223372036854775807: 9223372036854775807 epochs of 3 batches are more steps than --steps may be",
    );
    assert_eq!(snapshot(&out), before);
    let _ = std::fs::remove_dir_all(d);
}

/// Runs `edgewise ARGS` with files limited to `blocks` 512-byte blocks (`ulimit -f`) and
/// SIGXFSZ ignored, so that writing past the limit fails as on a full disk.
#[cfg(unix)]
fn run_with_file_limit(blocks: u32, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {blocks} && trap '' XFSZ && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_edgewise"))
        .args(args)
        .output()
        .expect("run sh")
}

#[cfg(unix)]
#[test]
fn runs_that_cannot_write_their_results_fail_the_sweep_with_exit_code_1() {
    let d = tmp("sw-write");
    let out = d.join("sw");
    // 4 KiB files: config.toml, metrics.csv and sweep.json fit; a checkpoint does not.
    let o = run_with_file_limit(8, &sweep_args(&out, &["--lrs", "0.05,0.1"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("run lr=0.05 failed: cannot write")
            && err.contains("File too large")
            && err.contains("(and 1 other run failed)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // As `train` exits for the same failure.
    let t = d.join("t");
    let o = run_with_file_limit(
        8,
        &[
            "train",
            "--out",
            s(&t),
            "--data",
            "digits",
            "--arch",
            "64-16-10",
            "--steps",
            "6",
            "--no-plots",
            "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    // Without the limit the sweep finishes the runs (restarted from scratch: no checkpoint).
    ok(&sweep_args(&out, &["--lrs", "0.05,0.1"]));
    assert!(out.join("lr=0.1/summary.json").is_file());
    // Runs that diverge do not fail the sweep (exit 0), unlike `train` (exit 3).
    let div = d.join("div");
    let o = run(&sweep_args(&div, &["--lrs", "0.05,1000000"]));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&div.join("lr=1000000/summary.json"))).unwrap();
    assert_eq!(summary["diverged"], true);
    let _ = std::fs::remove_dir_all(d);
}

/// A finished run whose `metrics.csv` was cut short is no finished run: the next sweep redoes
/// it (the same bits again) instead of skipping it for good.
#[test]
fn a_finished_run_with_cut_metrics_is_redone() {
    let d = tmp("sw-cut");
    let out = d.join("sw");
    let args = sweep_args(&out, &["--lrs", "0.1", "--seeds", "0"]);
    ok(&args);
    let metrics = out.join("lr=0.1_seed=0/metrics.csv");
    let whole = read(&metrics);
    let text = String::from_utf8(whole.clone()).unwrap();
    let cut: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(&metrics, cut.join("\n") + "\n").unwrap();
    ok(&args);
    assert_eq!(read(&metrics), whole);
    // Whole again: skipped, untouched.
    let before = snapshot(&out);
    ok(&args);
    assert_eq!(snapshot(&out), before);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_run_that_diverged_on_a_checkpoint_step_and_was_stopped_before_its_summary_is_redone() {
    // lr 3 diverges at step 12, a checkpoint step of --checkpoint-every 3: the resume
    // checkpoint holds the diverging parameters. Without its summary (a sweep killed between
    // the diverging row and summary.json) the run used to fail every rerun of the sweep.
    let d = tmp("sw-div-ckpt");
    let out = d.join("sw");
    let mut args = vec![
        "sweep",
        "--out",
        s(&out),
        "--data",
        "digits",
        "--arch",
        "64-32-10",
    ];
    args.extend_from_slice(&["--lrs", "3", "--steps", "60", "--checkpoint-every", "3"]);
    args.extend_from_slice(&["--no-plots", "--quiet"]);
    run(&args);
    let dir = out.join("lr=3");
    let summary = String::from_utf8(read(&dir.join("summary.json"))).unwrap();
    assert!(summary.contains("\"diverged_at_step\": 12"), "{summary}");
    let metrics = read(&dir.join("metrics.csv"));
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let o = run(&args);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let again = String::from_utf8(read(&dir.join("summary.json"))).unwrap();
    let strip = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.contains("wall_time_s"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&again), strip(&summary));
    assert_eq!(read(&dir.join("metrics.csv")), metrics);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_sweep_into_a_train_run_directory_is_refused() {
    let d = tmp("sw-into-train");
    let out = d.join("run");
    ok(&[
        "train",
        "--out",
        s(&out),
        "--data",
        "digits",
        "--arch",
        "64-16-10",
        "--steps",
        "3",
        "--no-plots",
        "--quiet",
    ]);
    let before = snapshot(&out);
    bad(
        &sweep_args(&out, &["--lrs", "0.1,0.2"]),
        "a run directory of `train` (it has a config.toml)",
    );
    assert_eq!(snapshot(&out), before);
    let _ = std::fs::remove_dir_all(d);
}

#[rustversion::since(1.89)]
#[test]
fn sweep_json_is_checked_and_written_under_a_lock() {
    // Two sweeps into one --out with different grids used to race on sweep.json (the last
    // writer won, dropping the other's runs from the listing). The check and the write now
    // wait for the exclusive lock on sweep.lock: held here, the second sweep waits.
    let d = tmp("sw-listing-lock");
    let out = d.join("sw");
    ok(&sweep_args(&out, &["--lrs", "0.1"]));
    assert_eq!(listed(&out).len(), 1);
    let lock = std::fs::File::create(out.join("sweep.lock")).unwrap();
    lock.lock().unwrap();
    let args = sweep_args(&out, &["--lrs", "0.1,0.2"]);
    let mut child = common::exe()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sweep did not wait"
    );
    assert_eq!(listed(&out).len(), 1);
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert_eq!(listed(&out).len(), 2);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn ctrl_c_stops_a_sweep_and_a_rerun_resumes_its_runs() {
    let d = tmp("sw-ctrl-c");
    let out = d.join("sw");
    let mut args = sweep_args(&out, &["--lrs", "0.1,0.2,0.3", "--jobs", "2"]);
    // Long enough to be interrupted (SMALL's 6 steps replaced).
    let at = args.iter().position(|a| *a == "6").unwrap();
    args[at] = "20000";
    args.retain(|a| *a != "--quiet");
    let child = common::exe()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = out.join("lr=0.1/metrics.csv");
    let started = std::time::Instant::now();
    while std::fs::read(&metrics).map_or(0, |m| m.len()) < 2000 {
        assert!(started.elapsed().as_secs() < 120, "no rows");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("lr=0.1: interrupted (resume state written)")
            && err.contains("lr=0.3: not started (interrupted)")
            && err.contains("rerun the same command to continue"),
        "{err}"
    );
    assert!(out.join("lr=0.1/checkpoints/resume.safetensors").is_file());
    let o = ok(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lr=0.1: done (resumed)"), "{err}");
    // The same bits as an uninterrupted sweep of that run.
    let fresh = d.join("fresh");
    let f: Vec<&str> = args
        .iter()
        .map(|a| match *a {
            "0.1,0.2,0.3" => "0.1",
            a if a == s(&out) => s(&fresh),
            a => a,
        })
        .collect();
    ok(&f);
    assert_eq!(read(&metrics), read(&fresh.join("lr=0.1/metrics.csv")));
    let _ = std::fs::remove_dir_all(d);
}
