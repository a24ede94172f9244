//! Integration tests of damaged or unusual run directories and output paths: what `sweep`,
//! `report`, `repro` and the writers of user-given paths do with them. Bad input is refused
//! before anything is written; data already written is never lost.

mod common;

use std::path::{Path, PathBuf};

use common::{bad, ok, read, run, s, tmp};

/// A small, fast run's settings (about 20 steps of a tiny net on the bundled digits).
const SMALL: &[&str] = &["--data", "digits", "--arch", "64-16-10", "--quiet"];

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

/// `report.csv`'s run directories (first column), in order.
fn reported_dirs(out: &Path) -> Vec<String> {
    String::from_utf8(read(&out.join("report.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn report_leaves_out_damaged_runs_naming_the_file_and_tolerates_a_torn_last_line() {
    let d = tmp("rd-report");
    let sw = d.join("sw");
    let mut a = sweep_args(&sw, &["--steps", "20"]);
    a[4] = "0.05,0.1,0.2";
    ok(&a);
    let rep = d.join("rep");
    let report = |needles: &[&str]| {
        let o = ok(&["report", s(&sw), "--out", s(&rep)]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
        err
    };
    report(&["report of 3 runs"]);
    assert_eq!(reported_dirs(&rep).len(), 3);

    // A run being extended (its old summary.json still there) and killed while appending a
    // row: the torn line is left out with a warning, not an error.
    let m = sw.join("lr=0.1/metrics.csv");
    let mut bytes = read(&m);
    bytes.extend_from_slice(b"20,0,0.1,2.2");
    std::fs::write(&m, bytes).unwrap();
    report(&["its last line is incomplete", "report of 3 runs"]);
    assert_eq!(reported_dirs(&rep).len(), 3);

    // summary.json of the wrong shape: left out, named with the reason, in the warnings and
    // in report.md; the other runs are reported.
    let bad_summary = sw.join("lr=0.05/summary.json");
    std::fs::write(&bad_summary, b"[1,2,3]").unwrap();
    let err = report(&[
        "warning: run ",
        "left out of the report",
        "not an edgewise summary",
        "report of 2 runs (1 left out",
    ]);
    assert!(err.contains(&bad_summary.display().to_string()), "{err}");
    let md = String::from_utf8(read(&rep.join("report.md"))).unwrap();
    assert!(md.contains("1 run directory left out"), "{md}");
    assert!(md.contains("## Left out"), "{md}");
    assert!(md.contains(&bad_summary.display().to_string()), "{md}");
    let dirs = reported_dirs(&rep);
    assert_eq!(dirs.len(), 2);
    assert!(!dirs.iter().any(|d| d.ends_with("lr=0.05")), "{dirs:?}");

    // A wrong type in a field, a missing metrics.csv, one that is a directory.
    std::fs::write(
        &bad_summary,
        br#"{"steps": 20, "diverged": false, "final_values": {"test_acc": "high"}}"#,
    )
    .unwrap();
    report(&["`final_values.test_acc` is `\"high\"`, not a number"]);
    let m2 = sw.join("lr=0.2/metrics.csv");
    std::fs::remove_file(&m2).unwrap();
    report(&[
        "lr=0.2/metrics.csv: missing",
        "report of 1 runs (2 left out",
    ]);
    std::fs::create_dir(&m2).unwrap();
    report(&["lr=0.2/metrics.csv", "report of 1 runs (2 left out"]);
    assert_eq!(reported_dirs(&rep).len(), 1);

    // When no run can be read, that is bad input, and nothing is written.
    std::fs::remove_file(sw.join("lr=0.1/summary.json")).unwrap();
    std::fs::write(sw.join("lr=0.1/metrics.csv"), b"step,loss\n").unwrap();
    let empty = d.join("nothing");
    let err = bad(
        &["report", s(&sw), "--out", s(&empty)],
        "no run could be read (3 run directories; first: ",
    );
    assert!(err.contains("not an edgewise metrics file"), "{err}");
    assert!(!empty.exists());
    bad(
        &["report", s(&sw.join("lr=0.05")), "--out", s(&empty)],
        "not a number",
    );
    assert!(!empty.exists());
}

#[test]
fn repro_redoes_a_reusable_run_whose_files_cannot_be_read() {
    let d = tmp("rd-repro");
    let out = d.join("repro");
    let repro = || run(&["repro", "--scale", "tiny", "--jobs", "2", "--out", s(&out)]);
    let o = repro();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs: Vec<PathBuf> = snapshot(&out)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.ends_with("summary.json"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    assert_eq!(runs.len(), 13, "{runs:?}");
    let (a, b) = (&runs[0], &runs[5]);
    let (ma, mb) = (read(&a.join("metrics.csv")), read(&b.join("metrics.csv")));
    // A damaged row in the middle of one run's metrics, a summary of the wrong shape in another.
    let text = String::from_utf8(ma.clone()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "garbage";
    std::fs::write(a.join("metrics.csv"), lines.join("\n") + "\n").unwrap();
    std::fs::write(b.join("summary.json"), b"[1,2,3]").unwrap();
    let o = repro();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 runs trained, 11 reused, 0 failed"), "{err}");
    assert!(err.contains("cannot reuse it"), "{err}");
    // Redone to the same bits.
    assert_eq!(read(&a.join("metrics.csv")), ma);
    assert_eq!(read(&b.join("metrics.csv")), mb);
    let s: serde_json::Value = serde_json::from_slice(&read(&b.join("summary.json"))).unwrap();
    assert!(s["steps"].as_u64().is_some(), "{s}");
}

#[test]
fn csv_data_lines_are_limited_and_their_mistakes_named() {
    let d = tmp("rd-csv");
    let train_on = |path: &Path| {
        let spec = format!("csv:{}", path.display());
        run(&[
            "train",
            "--data",
            &spec,
            "--arch",
            "2-4-2",
            "--steps",
            "2",
            "--quiet",
            "--out",
            s(&d.join("run")),
            "--force",
        ])
    };
    let csv_args = |path: &Path, needle: &str| {
        let spec = format!("csv:{}", path.display());
        bad(
            &[
                "train",
                "--data",
                &spec,
                "--arch",
                "2-4-2",
                "--steps",
                "2",
                "--quiet",
                "--out",
                s(&d.join("bad-run")),
            ],
            needle,
        )
    };
    let rows: String = (0..20)
        .map(|i| format!("{i},{},{}\n", i * 2, i % 2))
        .collect();
    let bom = d.join("bom.csv");
    std::fs::write(&bom, format!("\u{FEFF}{rows}")).unwrap();
    let o = train_on(&bom);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let comma = d.join("comma.csv");
    std::fs::write(&comma, format!("{rows}1,2,1,\n")).unwrap();
    csv_args(
        &comma,
        &format!(
            "data file {}, line 21: the line ends with a comma: the last field, the label, is empty",
            comma.display()
        ),
    );

    // 17 MiB without a line break.
    let long = d.join("long.csv");
    std::fs::write(&long, format!("{rows}{}", "5".repeat(17 << 20))).unwrap();
    csv_args(
        &long,
        &format!("data file {}, line 21: longer than 16 MiB", long.display()),
    );
    assert!(!d.join("bad-run").exists());
}

/// What a resume, `--force`, a sweep and `report` would write through: a directory where a
/// file of the run goes is refused before anything is deleted or replaced, so the finished
/// run (its summary.json, final checkpoint, plots) and the previous report stay whole.
#[test]
fn a_directory_in_the_way_of_an_output_is_refused_before_anything_is_deleted() {
    let d = tmp("rd-in-the-way");
    let ck = ["--checkpoint-every", "10", "--eig-every", "5"];
    let fresh = |out: &Path| {
        let mut a = vec!["train", "--out", s(out), "--steps", "20"];
        a.extend_from_slice(SMALL);
        a.extend_from_slice(&ck);
        ok(&a);
    };
    for (i, in_the_way) in [
        "checkpoints/final.safetensors",
        "checkpoints/step_000030.safetensors",
        "plots/loss.svg",
    ]
    .into_iter()
    .enumerate()
    {
        let run_dir = d.join(format!("run{i}"));
        fresh(&run_dir);
        let p = run_dir.join(in_the_way);
        let _ = std::fs::remove_file(&p);
        std::fs::create_dir(&p).unwrap();
        let before = snapshot(&run_dir);
        let err = bad(
            &["train", "--resume", s(&run_dir), "--steps", "40", "--quiet"],
            &format!("{} is a directory, where the run keeps its", p.display()),
        );
        assert!(err.contains("nothing was touched"), "{err}");
        assert_eq!(snapshot(&run_dir), before, "{in_the_way}");
        // --force refuses it too, before deleting the previous run.
        let mut a = vec!["train", "--out", s(&run_dir), "--steps", "10", "--force"];
        a.extend_from_slice(SMALL);
        bad(&a, "is a directory, where the run keeps its");
        assert_eq!(snapshot(&run_dir), before, "--force, {in_the_way}");
        std::fs::remove_dir(&p).unwrap();
    }

    // --force deletes the run's own files only (with those of a report of it alone): others
    // in its directories stay.
    let run_dir = d.join("run0");
    ok(&["report", s(&run_dir)]);
    assert!(run_dir.join("plots/sharpness_vs_lr.svg").is_file());
    std::fs::write(run_dir.join("NOTES.md"), b"mine").unwrap();
    std::fs::write(run_dir.join("checkpoints/best.safetensors"), b"mine").unwrap();
    std::fs::write(run_dir.join("plots/spectrum.json"), b"mine").unwrap();
    let mut a = vec!["train", "--out", s(&run_dir), "--steps", "5", "--force"];
    a.extend_from_slice(SMALL);
    ok(&a);
    for kept in [
        "NOTES.md",
        "checkpoints/best.safetensors",
        "plots/spectrum.json",
    ] {
        assert_eq!(read(&run_dir.join(kept)), b"mine", "{kept}");
    }
    for gone in [
        "checkpoints/step_000010.safetensors",
        "checkpoints/step_000020.safetensors",
        "report.md",
        "plots/sharpness_vs_lr.svg",
    ] {
        assert!(!run_dir.join(gone).exists(), "{gone} of the previous run");
    }
    assert!(run_dir.join("checkpoints/final.safetensors").is_file());

    // A sweep extending its runs refuses before rewriting sweep.json or extending any run.
    let sw = d.join("sw");
    let mut a = sweep_args(&sw, &["--steps", "20", "--checkpoint-every", "10"]);
    a[4] = "0.05,0.1";
    ok(&a);
    let final_dir = sw.join("lr=0.1/checkpoints/final.safetensors");
    std::fs::remove_file(&final_dir).unwrap();
    std::fs::create_dir(&final_dir).unwrap();
    let before = snapshot(&sw);
    let at = a.iter().position(|x| *x == "20").unwrap();
    a[at] = "30";
    let err = bad(&a, "run lr=0.1: ");
    assert!(
        err.contains("final.safetensors is a directory")
            && err.contains("the sweep changed nothing"),
        "{err}"
    );
    assert_eq!(snapshot(&sw), before);

    // `report` checks all its outputs before replacing the first.
    let rep = d.join("rep");
    ok(&["report", s(&sw), "--out", s(&rep)]);
    std::fs::remove_file(rep.join("report.csv")).unwrap();
    std::fs::create_dir(rep.join("report.csv")).unwrap();
    let before = snapshot(&rep);
    bad(
        &["report", s(&sw.join("lr=0.05")), "--out", s(&rep)],
        "report.csv is a directory, where the report writes a file: nothing was written",
    );
    assert_eq!(snapshot(&rep), before);

    // Nor does it replace a report.md (or report.csv) it did not write: a user's notes.
    let notes = d.join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("report.md"), "my notes\n").unwrap();
    let before = snapshot(&notes);
    bad(
        &["report", s(&sw), "--out", s(&notes)],
        "report.md exists and was not written by `edgewise report`",
    );
    assert_eq!(snapshot(&notes), before);
    // A report's own files are replaced as before.
    ok(&["report", s(&sw), "--out", s(&rep.join("again"))]);
    ok(&["report", s(&sw), "--out", s(&rep.join("again"))]);
    let _ = std::fs::remove_dir_all(d);
}
