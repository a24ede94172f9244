//! Integration tests of damaged or unusual run directories and output paths: what `sweep`,
//! `report`, `repro` and the writers of user-given paths do with them. Bad input is refused
//! before anything is written; data already written is never lost.

mod common;

use std::path::{Path, PathBuf};

use common::{bad, ok, read, run, tmp};

/// A small, fast run's settings (about 20 steps of a tiny net on the bundled digits).
const SMALL: &[&str] = &["--data", "digits", "--arch", "64-16-10", "--quiet"];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains a 20-step run into `out`.
fn train(out: &Path) {
    let mut a = vec!["train", "--out", s(out), "--steps", "20"];
    a.extend_from_slice(SMALL);
    ok(&a);
}

/// The arguments of `sweep --out OUT --lrs 0.05` on the small settings, then `extra`.
fn sweep_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["sweep", "--out", s(out), "--lrs", "0.05"];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(extra);
    a
}

/// Every file under `dir` with its content (directories and other files as markers), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
                v.push((p, None));
            } else if m.is_file() {
                let bytes = read(&p);
                v.push((p, Some(bytes)));
            } else {
                v.push((p, None));
            }
        }
    }
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn spectrum_json_follows_a_symbolic_link() {
    let d = tmp("rd-spectrum-link");
    let out = d.join("run");
    train(&out);
    let target = d.join("results/spectrum.json");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, b"old").unwrap();
    let link = d.join("latest.json");
    std::os::unix::fs::symlink("results/spectrum.json", &link).unwrap();
    let ck = out.join("checkpoints/final.safetensors");
    ok(&["spectrum", s(&ck), "--k", "1", "--json", s(&link)]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let j: serde_json::Value = serde_json::from_slice(&read(&target)).unwrap();
    assert!(j["top"][0].as_f64().is_some(), "{j}");
}

#[test]
fn a_sweep_refused_for_a_shorter_length_changes_nothing() {
    let d = tmp("rd-sweep-short");
    let out = d.join("sw");
    ok(&sweep_args(&out, &["--steps", "20"]));
    let before = snapshot(&out);
    let err = bad(
        &sweep_args(&out, &["--steps", "10"]),
        "the run has taken 20 steps already, more than the 10 (--steps) this sweep gives it",
    );
    assert!(err.contains("lr=0.05"), "{err}");
    assert_eq!(
        snapshot(&out),
        before,
        "sweep.json and the run are untouched"
    );
    // The same length skips the run; a longer one extends it.
    ok(&sweep_args(&out, &["--steps", "20"]));
    assert_eq!(snapshot(&out), before);
    ok(&sweep_args(&out, &["--steps", "25"]));
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&out.join("lr=0.05/summary.json"))).unwrap();
    assert_eq!(summary["steps"], 25);
}

#[test]
fn a_sweep_refuses_fewer_epochs_than_an_interrupted_run_has_started() {
    let d = tmp("rd-sweep-epochs");
    let out = d.join("sw");
    // 1437 training samples in batches of 200: 8 steps an epoch. Killed after step 12, with a
    // resume checkpoint at step 10 (in the second epoch) and no summary.json.
    let len = [
        "--epochs",
        "2",
        "--batch-size",
        "200",
        "--checkpoint-every",
        "5",
    ];
    let run_dir = out.join("lr=0.05");
    let mut a = vec!["train", "--out", s(&run_dir), "--lr", "0.05"];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(&len);
    a.extend_from_slice(&["--interrupt-after", "12"]);
    assert_eq!(run(&a).status.code(), Some(137));
    assert!(!run_dir.join("summary.json").exists());
    let before = snapshot(&out);
    let mut short = sweep_args(&out, &["--epochs", "1"]);
    short.extend_from_slice(&len[2..]);
    bad(
        &short,
        "the run has taken 10 steps already, into epoch 2 (counting from 1), more than the 1 \
         epochs (--epochs) this sweep gives it",
    );
    assert_eq!(snapshot(&out), before);
    // The run's own length resumes it to the end.
    ok(&sweep_args(&out, &len));
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&run_dir.join("summary.json"))).unwrap();
    assert_eq!(
        (summary["steps"].as_u64(), summary["epochs"].as_u64()),
        (Some(16), Some(2))
    );
}

#[test]
fn a_sweep_refuses_run_directories_it_cannot_write_into_before_deleting_anything() {
    let d = tmp("rd-sweep-layout");
    let out = d.join("sw");
    let args = sweep_args(&out, &["--steps", "20"]);
    ok(&args);
    let run_dir = out.join("lr=0.05");
    // An interrupted run (no summary) whose checkpoints/ has become a file: the sweep used to
    // delete config.toml and metrics.csv, then fail to create checkpoints/.
    std::fs::remove_file(run_dir.join("summary.json")).unwrap();
    std::fs::remove_dir_all(run_dir.join("checkpoints")).unwrap();
    std::fs::write(run_dir.join("checkpoints"), b"not a directory").unwrap();
    let before = snapshot(&out);
    for force in [false, true] {
        let mut a = args.clone();
        if force {
            a.push("--force");
        }
        let err = bad(&a, "checkpoints: exists and is not a directory");
        assert!(err.contains("the sweep changed nothing"), "{err}");
        assert_eq!(snapshot(&out), before, "--force {force}");
    }
    std::fs::remove_file(run_dir.join("checkpoints")).unwrap();
    std::fs::remove_file(run_dir.join("metrics.csv")).unwrap();
    std::fs::create_dir(run_dir.join("metrics.csv")).unwrap();
    let before = snapshot(&out);
    bad(&args, "metrics.csv: exists and is not a regular file");
    assert_eq!(snapshot(&out), before);
    std::fs::remove_dir(run_dir.join("metrics.csv")).unwrap();

    // A directory of the grid's that holds something else than a run.
    let other = out.join("lr=0.1");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let mut a = sweep_args(&out, &["--steps", "20"]);
    a[4] = "0.05,0.1";
    let before = snapshot(&out);
    bad(
        &a,
        "holds notes.txt but no config.toml (not an edgewise run)",
    );
    assert_eq!(snapshot(&out), before);
    std::fs::remove_file(other.join("notes.txt")).unwrap();
    // With the way clear, the sweep restarts the interrupted run and runs the new one.
    ok(&a);
    assert!(run_dir.join("summary.json").is_file() && other.join("summary.json").is_file());

    bad(
        &sweep_args(&out, &["--steps", "20", "--batch-sizes", "full,0"]),
        "--batch-sizes: \"0\": a batch size must be at least 1 (or `full` for full batch)",
    );
}
