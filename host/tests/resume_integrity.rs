//! `train --resume` refuses what would not continue the run it claims to continue: a resume
//! checkpoint missing or corrupting optimizer or tracker state, trained with other settings
//! or other data than the run's, or whose parameters are not its step's (that step's row
//! recomputed), and a run directory another process is writing. A refused resume changes
//! nothing on disk; an accepted one that is interrupted leaves an unfinished run behind (no stale summary.json), which `sweep` completes. Fresh runs refuse an `--epochs`
//! count whose steps overflow.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use edgewise::checkpoint::{self, Checkpoint};

/// Every file under `dir` with its contents: what a refused command must leave unchanged.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), read(&p));
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, &mut m);
    m
}

fn resume_ckpt(run: &Path) -> PathBuf {
    run.join("checkpoints/resume.safetensors")
}

/// Loads `run`'s resume checkpoint, changes it with `f` and writes it back.
fn edit_ckpt(run: &Path, f: impl FnOnce(&mut Checkpoint)) {
    let path = resume_ckpt(run);
    let mut ck = checkpoint::load(&path).unwrap();
    f(&mut ck);
    checkpoint::save(&path, &ck).unwrap();
}

/// A copy of the run directory `from` at `to` (replacing it).
fn copy_run(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for (p, bytes) in snapshot(from) {
        let dst = to.join(p.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(dst, bytes).unwrap();
    }
}

/// `train --resume RUN --steps 30` must be refused (exit 2) naming the checkpoint and
/// `needle`, and leave the run directory as it was.
fn refused(run: &Path, needle: &str) -> String {
    let before = snapshot(run);
    let err = bad(&["train", "--resume", s(run), "--steps", "30"], needle);
    assert!(
        err.contains(s(&resume_ckpt(run))),
        "the message names the checkpoint: {err}"
    );
    assert!(
        before == snapshot(run),
        "a refused resume changed {}",
        run.display()
    );
    err
}

#[test]
fn a_checkpoint_without_the_optimizers_state_is_refused() {
    let d = tmp("ri-opt");
    let (adam, gd, work) = (d.join("adam"), d.join("gd"), d.join("work"));
    let len = ["--steps", "20", "--checkpoint-every", "10"];
    train(
        &adam,
        &[&["--opt", "adam", "--lr", "0.01"][..], &len].concat(),
    );
    train(&gd, &len);

    // Adam's moments are gone: they would restart at zero.
    copy_run(&adam, &work);
    edit_ckpt(&work, |ck| {
        assert!(ck.extra.remove("optimizer.state").is_some());
    });
    refused(&work, "no tensor optimizer.state, but optimizer adam keeps");

    // A GD run's resume checkpoint in an Adam run: its configuration says so; without the
    // configuration (a checkpoint of an older version), its `optimizer` entry does; without
    // either, the missing state does.
    copy_run(&adam, &work);
    std::fs::copy(resume_ckpt(&gd), resume_ckpt(&work)).unwrap();
    refused(&work, "optim.opt = \"gd\" vs \"adam\"");
    edit_ckpt(&work, |ck| {
        assert!(ck.metadata.remove("config").is_some());
    });
    refused(&work, "optim.opt = gd vs adam");
    edit_ckpt(&work, |ck| {
        ck.metadata.remove("optimizer");
        ck.metadata.remove("lr");
    });
    refused(&work, "no tensor optimizer.state");

    // Corrupt moments.
    for (i, x, needle) in [
        (
            3,
            f32::NAN,
            "optimizer.state holds a non-finite value (NaN at index 3)",
        ),
        (7, f32::INFINITY, "non-finite value (inf at index 7)"),
    ] {
        copy_run(&adam, &work);
        edit_ckpt(&work, |ck| {
            ck.extra.get_mut("optimizer.state").unwrap()[i] = x
        });
        refused(&work, needle);
    }
    // Adam's second moments (the state's second half) cannot be negative.
    copy_run(&adam, &work);
    edit_ckpt(&work, |ck| {
        let v = ck.extra.get_mut("optimizer.state").unwrap();
        let last = v.len() - 1;
        v[last] = -1.0;
    });
    refused(&work, "negative second moment");
    // The untouched copy resumes.
    copy_run(&adam, &work);
    ok(&["train", "--resume", s(&work), "--steps", "30", "--quiet"]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn missing_or_corrupt_tracker_state_is_refused() {
    let d = tmp("ri-tracker");
    let (full, cut, work) = (d.join("full"), d.join("cut"), d.join("work"));
    // GD with lambda_min and the sharpness-only tracker; Adam adds the preconditioned
    // sharpness.
    let gd = [
        "--lr",
        "0.2",
        "--eig-every",
        "3",
        "--lambda-min",
        "--track-every",
        "1",
        "--checkpoint-every",
        "10",
    ];
    train(&full, &[&gd[..], &["--steps", "30"]].concat());
    train(&cut, &[&gd[..], &["--steps", "20"]].concat());
    for (tensor, needle) in [
        (
            "tracker.topk",
            "no tensor tracker.topk, although the run measured the sharpness 7 time(s)",
        ),
        (
            "tracker.min",
            "no tensor tracker.min, although the run measured lambda_min",
        ),
        ("tracker.history", "no tensor tracker.history"),
        (
            "tracked.topk",
            "no tensor tracked.topk, although the run measured the sharpness 20 time(s)",
        ),
        ("tracked.history", "no tensor tracked.history"),
    ] {
        copy_run(&cut, &work);
        edit_ckpt(&work, |ck| {
            assert!(ck.extra.remove(tensor).is_some(), "{tensor}");
        });
        let err = refused(&work, needle);
        assert!(err.contains("metrics.csv"), "{err}");
    }
    // Zero vectors (a solver's start) and non-finite values.
    let zero = |v: &mut Vec<f32>| v.iter_mut().for_each(|x| *x = 0.0);
    type Edit = fn(&mut Vec<f32>);
    let edits: [(&str, Edit, &str); 5] = [
        (
            "tracker.topk",
            zero,
            "tensor tracker.topk: vector 0 is zero",
        ),
        (
            "tracker.topk",
            |v| v[5] = f32::INFINITY,
            "tracker.topk holds a non-finite value (inf at index 5)",
        ),
        ("tracker.min", zero, "tensor tracker.min: vector 0 is zero"),
        (
            "tracker.history",
            |v| v[1] = f32::NAN,
            "tracker.history holds a non-finite value (NaN at index 1)",
        ),
        (
            "tracked.topk",
            zero,
            "tensor tracked.topk: vector 0 is zero",
        ),
    ];
    for (tensor, edit, needle) in edits {
        copy_run(&cut, &work);
        edit_ckpt(&work, |ck| edit(ck.extra.get_mut(tensor).unwrap()));
        refused(&work, needle);
    }
    // The intact state resumes to the longer run's bits.
    ok(&["train", "--resume", s(&cut), "--steps", "30", "--quiet"]);
    assert_eq!(
        read(&full.join("metrics.csv")),
        read(&cut.join("metrics.csv"))
    );

    let adam = d.join("adam");
    train(
        &adam,
        &[
            "--opt",
            "adam",
            "--lr",
            "0.01",
            "--eig-every",
            "5",
            "--steps",
            "20",
            "--checkpoint-every",
            "10",
        ],
    );
    copy_run(&adam, &work);
    edit_ckpt(&work, |ck| {
        assert!(ck.extra.remove("tracker.precond").is_some());
    });
    refused(
        &work,
        "no tensor tracker.precond, although the run measured the preconditioned sharpness",
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_edited_config_toml_is_refused() {
    let d = tmp("ri-config");
    let run = d.join("run");
    train(
        &run,
        &["--lr", "0.05", "--steps", "20", "--checkpoint-every", "10"],
    );
    let path = run.join("config.toml");
    let original = String::from_utf8(read(&path)).unwrap();
    for (from, to, needle) in [
        ("lr = 0.05", "lr = 0.07", "optim.lr = 0.05 vs 0.07"),
        ("seed = 0", "seed = 3", "model.seed = 0 vs 3"),
        (
            "eval_every = 10",
            "eval_every = 5",
            "run.eval_every = 10 vs 5",
        ),
    ] {
        assert!(original.contains(from), "{original}");
        std::fs::write(&path, original.replace(from, to)).unwrap();
        let err = refused(&run, needle);
        assert!(err.contains("restore config.toml"), "{err}");
    }
    // What a resume may change is not compared: the length, the checkpoint interval.
    std::fs::write(
        &path,
        original
            .replace("\nsteps = 20", "\nsteps = 25")
            .replace("checkpoint_every = 10", "checkpoint_every = 5"),
    )
    .unwrap();
    ok(&["train", "--resume", s(&run), "--quiet"]);
    let summary = String::from_utf8(read(&run.join("summary.json"))).unwrap();
    assert!(summary.contains("\"steps\": 25"), "{summary}");
    // A step count that does not parse is named as such (was "no step in the metadata").
    for bad_step in ["abc", "-1", "18446744073709551616"] {
        edit_ckpt(&run, |ck| {
            ck.metadata.insert("step".into(), bad_step.into());
        });
        refused(
            &run,
            &format!("its step metadata \"{bad_step}\" is not a step count"),
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_checkpoint_whose_parameters_are_not_its_steps_is_refused() {
    let d = tmp("ri-step");
    let (run, work, whole) = (d.join("run"), d.join("work"), d.join("whole"));
    // Minibatches (each step's own batch) and two threads; resumed with one.
    let len = [
        "--opt",
        "sgd",
        "--batch-size",
        "64",
        "--threads",
        "2",
        "--checkpoint-every",
        "10",
        "--eig-every",
        "5",
    ];
    train(&run, &[&len[..], &["--steps", "30"]].concat());
    train(&whole, &[&len[..], &["--steps", "30"]].concat());
    // What a run killed after step 25 leaves: rows 0-24 and the checkpoint of step 20.
    let _ = std::fs::remove_dir_all(&run);
    let o = run_cmd(&run, &len, "25");
    assert_eq!(o.status.code(), Some(137), "{o:?}");
    // Resumed as it is (its row of step 20 recomputed: the same bits), it is the whole run.
    copy_run(&run, &work);
    ok(&["train", "--resume", s(&work), "--threads", "1", "--quiet"]);
    assert_eq!(
        read(&work.join("metrics.csv")),
        read(&whole.join("metrics.csv"))
    );
    // The step metadata moved back to 10 (the parameters stay step 20's): rows 10-24 would be
    // rewritten from the wrong point.
    copy_run(&run, &work);
    edit_ckpt(&work, |ck| {
        ck.metadata.insert("step".into(), "10".into());
    });
    let err = refused(&work, "its parameters are not those of its step 10");
    assert!(err.contains("row of step 10 holds"), "{err}");
    // Step 10's parameters with step 20's metadata (and optimizer state).
    copy_run(&run, &work);
    let other = checkpoint::load(&work.join("checkpoints/step_000010.safetensors")).unwrap();
    edit_ckpt(&work, |ck| ck.params = other.params);
    refused(&work, "its parameters are not those of its step 20");
    // One bit of its last tensor (tracker or optimizer state) flipped on disk: the checksum.
    copy_run(&run, &work);
    let path = resume_ckpt(&work);
    let mut bytes = read(&path);
    let last = bytes.len() - 4;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    refused(&work, "do not match its checksum metadata");
    let _ = std::fs::remove_dir_all(d);
}

/// `train --out OUT SMALL LEN --steps 30 --interrupt-after AT` (a simulated kill).
fn run_cmd(out: &Path, len: &[&str], at: &str) -> std::process::Output {
    let mut a = vec!["train", "--out", s(out)];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(len);
    a.extend(["--steps", "30", "--interrupt-after", at]);
    run(&a)
}

#[test]
fn data_that_changed_since_the_run_started_is_refused() {
    let d = tmp("ri-data");
    let csv = d.join("data.csv");
    let rows = write_csv(&csv, 60);
    let run = d.join("run");
    let spec = format!("csv:{}", csv.display());
    ok(&[
        "train",
        "--out",
        s(&run),
        "--data",
        &spec,
        "--arch",
        "4-8-3",
        "--steps",
        "20",
        "--checkpoint-every",
        "10",
        "--quiet",
    ]);
    // The same rows in another order: other batches, another split.
    let mut shuffled = rows.clone();
    shuffled.reverse();
    std::fs::write(&csv, shuffled.join("\n") + "\n").unwrap();
    let err = refused(&run, "the run was trained on other data");
    // Every checkpoint carries the fingerprint; the message names it and the data set.
    let fp = checkpoint::load(&resume_ckpt(&run)).unwrap().metadata["data_fingerprint"].clone();
    assert_eq!(fp.len(), 16);
    assert!(err.contains(&fp) && err.contains(&spec), "{err}");
    for name in ["final", "step_000010"] {
        let ck = checkpoint::load(&run.join(format!("checkpoints/{name}.safetensors"))).unwrap();
        assert_eq!(ck.metadata["data_fingerprint"], fp);
    }
    // One value changed.
    let mut edited = rows.clone();
    edited[5] = format!("{},1", edited[5].rsplit_once(',').unwrap().0);
    assert_ne!(edited, rows);
    std::fs::write(&csv, edited.join("\n") + "\n").unwrap();
    refused(&run, "data fingerprint");
    // A checkpoint of a version that recorded no fingerprint is accepted.
    let work = d.join("work");
    copy_run(&run, &work);
    edit_ckpt(&work, |ck| {
        assert!(ck.metadata.remove("data_fingerprint").is_some());
    });
    ok(&["train", "--resume", s(&work), "--steps", "30", "--quiet"]);
    // The original data resume.
    std::fs::write(&csv, rows.join("\n") + "\n").unwrap();
    ok(&["train", "--resume", s(&run), "--steps", "30", "--quiet"]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_epoch_count_whose_steps_overflow_is_refused_before_anything_is_written() {
    let d = tmp("ri-epochs");
    let out = d.join("run");
    // 200 training samples in batches of 50: 4 batches per epoch. (Above i64::MAX, the
    // epoch count itself is refused: config.toml could not hold it.)
    // 2^61 epochs are 2^63 steps: they fit in 64 bits, but not in what --steps may be.
    for epochs in ["9223372036854775807", "2305843009213693952"] {
        let err = bad(
            &[
                &["train", "--out", s(&out)][..],
                SMALL,
                &["--epochs", epochs, "--batch-size", "50"],
            ]
            .concat(),
            &format!(
                "--epochs {epochs}: {epochs} epochs of 4 batches are more steps than --steps may \
                 be (9223372036854775807)"
            ),
        );
        assert!(!out.exists(), "{err}");
    }
    let _ = std::fs::remove_dir_all(d);
}

/// (Builds by compilers before Rust 1.89 do not lock.)
#[rustversion::since(1.89)]
#[test]
fn a_run_directory_is_written_by_one_process_at_a_time() {
    let d = tmp("ri-lock");
    let run = d.join("run");
    let mut a: Vec<&str> = vec!["train", "--out", s(&run)];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(&[
        "--steps",
        "100000000",
        "--checkpoint-every",
        "5",
        "--no-plots",
    ]);
    let mut first = exe()
        .args(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for its first resume checkpoint.
    let started = Instant::now();
    while !resume_ckpt(&run).is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = read(&run.join("config.toml"));
    for args in [
        // (`--steps 1`, fewer than taken, so that without a lock this fails at once.)
        vec!["train", "--resume", s(&run), "--steps", "1", "--quiet"],
        [
            &["train", "--out", s(&run), "--force", "--steps", "3"][..],
            SMALL,
        ]
        .concat(),
    ] {
        let err = bad(
            &args,
            &format!("another edgewise process is writing {}", run.display()),
        );
        assert!(err.contains("run.lock"), "{err}");
    }
    // Nothing was deleted or rewritten under the running process.
    assert_eq!(read(&run.join("config.toml")), config);
    assert!(resume_ckpt(&run).is_file());
    // A killed process holds no lock: its run resumes.
    first.kill().unwrap();
    first.wait().unwrap();
    let step = checkpoint::load(&resume_ckpt(&run)).unwrap().metadata["step"].clone();
    ok(&["train", "--resume", s(&run), "--steps", &step, "--quiet"]);
    assert!(run.join("summary.json").is_file());
    let _ = std::fs::remove_dir_all(d);
}

/// An extension interrupted after it started leaves an unfinished run (no summary.json, no
/// final.safetensors of the shorter run), which a sweep then completes to the bits of a fresh
/// sweep of that length.
#[test]
fn an_interrupted_extension_is_unfinished_and_a_sweep_completes_it() {
    let d = tmp("ri-extend");
    let base: Vec<&str> = vec![
        "--data",
        "digits",
        "--per-class",
        "15",
        "--arch",
        "64-8-10",
        "--eig-every",
        "1",
        "--lambda-min",
        "--lrs",
        "0.05,0.1",
        "--quiet",
        "--no-plots",
    ];
    let sweep = |out: &Path, steps: &str| {
        let mut a = vec!["sweep", "--out", s(out), "--steps", steps, "--jobs", "1"];
        a.extend_from_slice(&base);
        ok(&a);
    };
    let (ext, fresh) = (d.join("ext"), d.join("fresh"));
    sweep(&ext, "20");
    sweep(&fresh, "40");
    let names = ["lr=0.05", "lr=0.1"];
    // What a sweep with --steps 40 killed during its runs leaves behind.
    for n in names {
        let dir = ext.join(n);
        let o = run(&[
            "train",
            "--resume",
            s(&dir),
            "--steps",
            "40",
            "--interrupt-after",
            "30",
            "--quiet",
        ]);
        assert_eq!(o.status.code(), Some(137));
        assert!(
            !dir.join("summary.json").exists(),
            "{n}: stale summary.json"
        );
        assert!(!dir.join("checkpoints/final.safetensors").exists(), "{n}");
    }
    // `report` sees unfinished runs.
    let rep = d.join("report");
    ok(&["report", s(&ext.join(names[0])), "--out", s(&rep)]);
    let md = String::from_utf8(read(&rep.join("report.md"))).unwrap();
    assert!(
        md.contains("| incomplete |") && !md.contains("| done |"),
        "{md}"
    );
    sweep(&ext, "40");
    for n in names {
        for f in ["metrics.csv", "checkpoints/final.safetensors"] {
            assert!(
                read(&ext.join(n).join(f)) == read(&fresh.join(n).join(f)),
                "{n}: {f} differs from a fresh sweep's"
            );
        }
        let summary = String::from_utf8(read(&ext.join(n).join("summary.json"))).unwrap();
        assert!(summary.contains("\"steps\": 40"), "{summary}");
    }
    let _ = std::fs::remove_dir_all(d);
}

/// `summary.json`'s counts of measurements that missed the tolerance cover the whole run: a
/// run interrupted and resumed reports those of an uninterrupted one. The interrupted
/// extension in between leaves no plots of the shorter run; the finished run has them again.
#[test]
fn unconverged_counts_and_plots_survive_an_interrupted_resume() {
    let d = tmp("ri-unconverged");
    // Power iteration capped at 3 products: many lambda_min (and sharpness) estimates miss.
    let extra = |steps: &'static str| -> Vec<&'static str> {
        vec![
            "--steps",
            steps,
            "--eig-every",
            "2",
            "--eig-method",
            "power",
            "--lambda-min",
            "--power-max-iter",
            "3",
            "--checkpoint-every",
            "10",
        ]
    };
    let unconverged = |run: &Path| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_slice(&read(&run.join("summary.json"))).unwrap();
        v["unconverged"].clone()
    };
    let (fresh, resumed) = (d.join("fresh"), d.join("resumed"));
    train(&fresh, &extra("40"));
    let want = unconverged(&fresh);
    for key in ["sharpness", "lambda_min"] {
        assert!(want[key].as_u64().is_some_and(|n| n > 0), "{key}: {want}");
    }
    // metrics.csv's `unconverged` column names them row by row: its names count to the
    // summary's counts, and only rows with a measurement name any.
    let rows = edgewise::metrics::read(&fresh.join("metrics.csv")).unwrap();
    for (i, key) in edgewise::metrics::UNCONVERGED.iter().enumerate() {
        let named = rows
            .iter()
            .filter(|r| r.unconverged & (1 << i) != 0)
            .count() as u64;
        assert_eq!(Some(named), want[key].as_u64(), "{key}: {want}");
    }
    assert!(rows
        .iter()
        .all(|r| r.unconverged == 0 || r.sharpness.is_some()));
    train(&resumed, &extra("20"));
    let first = unconverged(&resumed);
    assert!(
        first["lambda_min"].as_u64() < want["lambda_min"].as_u64(),
        "{first} {want}"
    );
    assert!(resumed.join("plots/sharpness.svg").is_file());
    let resume = |more: &[&str]| {
        let mut a = vec!["train", "--resume", s(&resumed), "--steps", "40", "--quiet"];
        a.extend_from_slice(more);
        run(&a)
    };
    assert_eq!(
        resume(&["--interrupt-after", "30"]).status.code(),
        Some(137)
    );
    assert!(!resumed.join("plots/sharpness.svg").exists());
    assert!(!resumed.join("plots/dashboard.svg").exists());
    assert!(resume(&[]).status.success());
    assert_eq!(unconverged(&resumed), want);
    assert!(resumed.join("plots/sharpness.svg").is_file());
    assert!(read(&resumed.join("metrics.csv")) == read(&fresh.join("metrics.csv")));
    let _ = std::fs::remove_dir_all(d);
}

/// Every checkpoint names the steps its parameters have taken (`step`) and the epochs
/// completed (`epoch`); a diverged run's final checkpoint holds the last parameters with a
/// finite loss, one step before the step that diverged, and says so.
#[test]
fn checkpoints_name_their_step_and_a_diverged_runs_final_one_its_own() {
    let d = tmp("ri-ckpt-step");
    let meta = |p: &Path, key: &str| -> u64 {
        checkpoint::load(p).unwrap().metadata[key].parse().unwrap()
    };
    let run_dir = d.join("ok");
    train(&run_dir, &["--steps", "12", "--checkpoint-every", "5"]);
    let ck = run_dir.join("checkpoints");
    assert_eq!(meta(&ck.join("step_000005.safetensors"), "step"), 5);
    assert_eq!(meta(&ck.join("step_000010.safetensors"), "step"), 10);
    assert_eq!(meta(&ck.join("final.safetensors"), "step"), 12);
    assert_eq!(meta(&ck.join("final.safetensors"), "epoch"), 12);
    let div = d.join("diverged");
    let mut a: Vec<&str> = vec!["train", "--out", s(&div)];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(&["--steps", "50", "--lr", "60", "--loss", "mse"]);
    assert_eq!(run(&a).status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&read(&div.join("summary.json"))).unwrap();
    let at = v["diverged_at_step"].as_u64().unwrap();
    assert!(at >= 2, "{v}");
    let fin = div.join("checkpoints/final.safetensors");
    assert_eq!(meta(&fin, "step"), at - 1);
    assert_eq!(meta(&fin, "epoch"), at - 1);
    // Its parameters are the ones of row at - 1, whose loss is finite.
    let csv = String::from_utf8(read(&div.join("metrics.csv"))).unwrap();
    let loss = |step: u64| -> f32 {
        let line = csv.lines().nth(step as usize + 1).unwrap();
        line.split(',').nth(3).unwrap().parse().unwrap()
    };
    assert!(loss(at - 1).is_finite() && !loss(at).is_finite());
    let _ = std::fs::remove_dir_all(d);
}

/// A process killed inside an atomic write leaves its temporary file (`.NAME.tmp-PID-N`). A
/// run killed while writing its first `config.toml` left only that, `run.lock` and an empty
/// `checkpoints/`, and every later sweep and `train --force` refused the directory as "not an
/// edgewise run" for good. Now such a directory is a run's, and the run that takes the
/// directory's lock removes the run's leftover temporary files (not other files).
#[test]
fn temporary_files_of_killed_writes_neither_block_a_run_nor_pile_up() {
    let d = tmp("ri-temps");
    let sweep = |out: &Path| {
        let mut a = vec![
            "sweep",
            "--out",
            s(out),
            "--lrs",
            "0.05",
            "--steps",
            "10",
            "--jobs",
            "1",
        ];
        a.extend_from_slice(SMALL);
        ok(&a);
    };
    // What a kill during the first config.toml write leaves.
    let out = d.join("sw");
    let run_dir = out.join("lr=0.05");
    std::fs::create_dir_all(run_dir.join("checkpoints")).unwrap();
    std::fs::write(run_dir.join("run.lock"), b"").unwrap();
    std::fs::write(run_dir.join(".config.toml.tmp-99999-3"), b"").unwrap();
    sweep(&out);
    assert!(run_dir.join("summary.json").is_file());
    assert!(!run_dir.join(".config.toml.tmp-99999-3").exists());
    // The same state under train: refused without --force (it exists), run with it.
    let one = d.join("one");
    std::fs::create_dir_all(one.join("checkpoints")).unwrap();
    std::fs::write(one.join(".config.toml.tmp-99999-4"), b"").unwrap();
    let mut a = vec!["train", "--out", s(&one), "--steps", "10"];
    a.extend_from_slice(SMALL);
    bad(&a, "already exists; pass --force");
    a.push("--force");
    ok(&a);
    assert!(!one.join(".config.toml.tmp-99999-4").exists());
    // Leftovers of killed writes in a finished run go when it is resumed; others stay.
    let leftovers = [
        ".metrics.csv.tmp-12-0",
        "checkpoints/.resume.safetensors.tmp-12-1",
        "checkpoints/.step_000010.safetensors.tmp-12-2",
        "plots/.loss.svg.tmp-12-3",
    ];
    let kept = [
        ".report.md.tmp-12-4",
        ".notes.txt.tmp-12-5",
        "checkpoints/mine.tmp-1-2",
    ];
    for f in leftovers.iter().chain(&kept) {
        std::fs::write(one.join(f), b"x").unwrap();
    }
    ok(&["train", "--resume", s(&one), "--steps", "15", "--quiet"]);
    for f in leftovers {
        assert!(!one.join(f).exists(), "{f} left");
    }
    for f in kept {
        assert!(one.join(f).is_file(), "{f} removed");
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn ctrl_c_stops_after_a_step_with_the_resume_state_and_the_resumed_run_has_the_same_bits() {
    // SIGINT (and SIGTERM) set a flag the training loop reads after every step: the run writes
    // its resume state there and exits 130; without periodic checkpoints this used to lose the
    // whole run.
    let d = tmp("ctrl-c");
    for signal in ["-INT", "-TERM"] {
        let run = d.join(format!("run{signal}"));
        let mut a: Vec<&str> = vec!["train", "--out", s(&run)];
        a.extend_from_slice(SMALL);
        a.extend_from_slice(&["--steps", "100000000", "--eig-every", "3", "--no-plots"]);
        let child = exe()
            .args(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let metrics = run.join("metrics.csv");
        let started = Instant::now();
        while std::fs::read(&metrics).map_or(0, |m| m.iter().filter(|&&b| b == b'\n').count()) < 20
        {
            assert!(started.elapsed() < Duration::from_secs(120), "no rows");
            std::thread::sleep(Duration::from_millis(20));
        }
        let killed = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{err}");
        assert!(
            err.contains("resume state in") && err.contains("--resume"),
            "{err}"
        );
        assert!(resume_ckpt(&run).is_file());
        assert!(
            !run.join("summary.json").exists(),
            "an interrupted run is not finished"
        );
        let taken = checkpoint::load(&resume_ckpt(&run)).unwrap().metadata["step"].clone();
        let rows = String::from_utf8(read(&metrics)).unwrap().lines().count() - 1;
        assert_eq!(taken, rows.to_string(), "one row per step taken");
        // Resumed to a few steps more: the same bits as a run of that length from the start.
        let steps = (rows + 7).to_string();
        ok(&["train", "--resume", s(&run), "--steps", &steps, "--quiet"]);
        let fresh = d.join(format!("fresh{signal}"));
        let mut f: Vec<&str> = vec!["train", "--out", s(&fresh)];
        f.extend_from_slice(SMALL);
        f.extend_from_slice(&["--steps", &steps, "--eig-every", "3", "--no-plots"]);
        ok(&f);
        assert_eq!(read(&metrics), read(&fresh.join("metrics.csv")), "{signal}");
        assert_eq!(
            read(&run.join("checkpoints/final.safetensors")),
            read(&fresh.join("checkpoints/final.safetensors")),
            "{signal}"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}
