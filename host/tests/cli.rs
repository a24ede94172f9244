//! Integration tests of the `edgewise` binary: every subcommand, determinism across thread
//! counts, resume bit-identity, sweeps and shards, and each class of bad input.

mod common;

use std::path::Path;

use common::{bad, exe, ok, read, run, run as run_cmd, s, tmp, train, SMALL};

#[test]
fn train_writes_every_output() {
    let d = tmp("outputs");
    let out = d.join("run");
    train(
        &out,
        &[
            "--lr",
            "0.2",
            "--steps",
            "30",
            "--eig-every",
            "5",
            "--eig-k",
            "2",
            "--trace-every",
            "10",
            "--hocm",
            "--checkpoint-every",
            "10",
            "--lambda-min",
        ],
    );
    let metrics = String::from_utf8(read(&out.join("metrics.csv"))).unwrap();
    let mut lines = metrics.lines();
    let header = lines.next().unwrap();
    for col in [
        "step",
        "epoch",
        "lr",
        "loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "grad_norm",
        "sharpness",
        "lr_x_sharpness",
        "lambda_min",
        "rotation",
        "subspace_score",
        "hocm",
        "trace",
        "precond_sharpness",
    ] {
        assert!(header.split(',').any(|c| c == col), "missing column {col}");
    }
    assert_eq!(lines.count(), 30);
    // The trace's standard error is given exactly where the trace is (steps 0, 10, 20), and
    // is positive (Rademacher probes of a Hessian that is no multiple of the identity).
    let cell = |line: &str, name: &str| {
        let i = header.split(',').position(|c| c == name).unwrap();
        line.split(',').nth(i).unwrap().to_string()
    };
    let mut traced = 0;
    for line in metrics.lines().skip(1) {
        let (t, se) = (cell(line, "trace"), cell(line, "trace_se"));
        assert_eq!(t.is_empty(), se.is_empty(), "{line}");
        if !se.is_empty() {
            assert!(se.parse::<f32>().unwrap() > 0.0, "{line}");
            traced += 1;
        }
    }
    assert_eq!(traced, 3);
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["diverged"], false);
    assert_eq!(summary["steps"], 30);
    assert_eq!(summary["stopped_by"], "steps");
    assert!(summary["final_values"]["test_acc"].as_f64().unwrap() > 0.1);
    assert!(summary["wall_time_s"].as_f64().is_some());
    assert!(summary["version"].as_str().is_some());
    // The largest sharpness is over the rows and the final parameters' measurement.
    let col = header.split(',').position(|c| c == "sharpness").unwrap();
    let measured: Vec<f64> = metrics
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(col).and_then(|x| x.parse().ok()))
        .collect();
    assert!(!measured.is_empty());
    let last = summary["final_values"]["sharpness"].as_f64().unwrap();
    let max = measured.iter().copied().fold(last, f64::max);
    assert_eq!(summary["max_sharpness"].as_f64().unwrap(), max);
    let cfg = String::from_utf8(read(&out.join("config.toml"))).unwrap();
    assert!(cfg.contains("lr = 0.2") && cfg.contains("arch = \"64-12-10\""));
    for f in [
        "final.safetensors",
        "step_000000.safetensors",
        "step_000010.safetensors",
        "step_000030.safetensors",
        "resume.safetensors",
    ] {
        assert!(
            out.join("checkpoints").join(f).is_file(),
            "missing checkpoint {f}"
        );
    }
    // step_000000 holds the initial parameters: its top eigenvalue is row 0's sharpness.
    let o = ok(&[
        "spectrum",
        out.join("checkpoints/step_000000.safetensors")
            .to_str()
            .unwrap(),
        "--k",
        "1",
        "--probes",
        "0",
        "--dense-max",
        "0",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = j["top"][0].as_f64().unwrap();
    let row0 = measured[0];
    assert!((top - row0).abs() <= 2e-3 * row0, "{top} vs row 0's {row0}");
    for f in [
        "loss.svg",
        "sharpness.svg",
        "lambda_min.svg",
        "rotation.svg",
        "accuracy.svg",
        "dashboard.svg",
    ] {
        let svg = String::from_utf8(read(&out.join("plots").join(f))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f}"
        );
    }
    // A checkpoint in safetensors with PyTorch names: check the header independently.
    let bytes = read(&out.join("checkpoints/final.safetensors"));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(
        header["layers.0.weight"]["shape"],
        serde_json::json!([12, 64])
    );
    assert_eq!(header["layers.1.bias"]["shape"], serde_json::json!([10]));
    assert_eq!(header["__metadata__"]["activation"], "tanh");
    // Existing run directory without --force or --resume.
    bad(
        &[
            "train",
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "1",
            "--quiet",
        ],
        "already exists",
    );
    // A resume asking for fewer steps than the run has taken is refused, and leaves the run's
    // config.toml as it was.
    let config = read(&out.join("config.toml"));
    bad(
        &[
            "train",
            "--resume",
            out.to_str().unwrap(),
            "--steps",
            "10",
            "--quiet",
        ],
        "the run has taken 30 steps already, more than the 10 asked for",
    );
    assert_eq!(read(&out.join("config.toml")), config);
    // --force replaces a run, but never deletes a directory that is not one.
    let mine = d.join("mine");
    std::fs::create_dir_all(mine.join("plots")).unwrap();
    std::fs::create_dir_all(mine.join("checkpoints")).unwrap();
    std::fs::write(mine.join("plots/figure1.svg"), "<svg/>").unwrap();
    std::fs::write(mine.join("checkpoints/model.pt"), "weights").unwrap();
    bad(
        &[
            "train",
            "--out",
            mine.to_str().unwrap(),
            "--steps",
            "1",
            "--force",
            "--quiet",
        ],
        "holds files but no config.toml (not an edgewise run): nothing was touched",
    );
    assert_eq!(read(&mine.join("plots/figure1.svg")), b"<svg/>");
    assert_eq!(read(&mine.join("checkpoints/model.pt")), b"weights");
    // Nor one with another tool's config.toml (any config.toml used to be enough).
    std::fs::write(mine.join("config.toml"), "title = \"my project\"\n").unwrap();
    bad(
        &[
            "train",
            "--out",
            mine.to_str().unwrap(),
            "--steps",
            "1",
            "--force",
            "--quiet",
        ],
        "holds a config.toml that is not an edgewise run's: nothing was touched",
    );
    assert_eq!(read(&mine.join("plots/figure1.svg")), b"<svg/>");
    assert_eq!(read(&mine.join("config.toml")), b"title = \"my project\"\n");
    // A run whose checkpoints/ became a file: --force used to delete the run's other files
    // and then fail to create checkpoints/.
    let odd = d.join("odd");
    train(&odd, &["--steps", "2", "--no-plots"]);
    std::fs::remove_dir_all(odd.join("checkpoints")).unwrap();
    std::fs::write(odd.join("checkpoints"), "x").unwrap();
    let metrics = read(&odd.join("metrics.csv"));
    bad(
        &[
            "train",
            "--out",
            odd.to_str().unwrap(),
            "--steps",
            "1",
            "--force",
            "--quiet",
        ],
        "checkpoints is not a directory, where the run keeps its checkpoints: nothing was touched",
    );
    assert_eq!(read(&odd.join("metrics.csv")), metrics);
    // A run stopped while creating its directory (an empty checkpoints/) is replaced.
    let half = d.join("half");
    std::fs::create_dir_all(half.join("checkpoints")).unwrap();
    train(&half, &["--epochs", "2", "--batch-size", "100", "--force"]);
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&half.join("summary.json"))).unwrap();
    // 2 epochs of 200 training samples (20 per class) in batches of 100: 4 steps.
    assert_eq!(summary["stopped_by"], "epochs");
    assert_eq!(summary["steps"], 4);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn metrics_are_identical_for_one_and_two_threads() {
    let d = tmp("threads");
    for (tag, extra) in [
        (
            "gd-power",
            vec![
                "--lr",
                "0.3",
                "--steps",
                "25",
                "--eig-every",
                "3",
                "--eig-k",
                "2",
                "--hocm",
                "--trace-every",
                "5",
                "--lambda-min",
            ],
        ),
        (
            "sgd-lanczos",
            vec![
                "--opt",
                "momentum",
                "--batch-size",
                "32",
                "--lr",
                "0.05",
                "--steps",
                "25",
                "--eig-every",
                "4",
                "--eig-method",
                "lanczos",
                "--eig-k",
                "3",
                "--hessian-subset",
                "100",
            ],
        ),
        (
            "adam-fd",
            vec![
                "--opt",
                "clipped-adam",
                "--clip",
                "0.05",
                "--lr",
                "0.01",
                "--steps",
                "20",
                "--eig-every",
                "5",
                "--hvp",
                "fd",
            ],
        ),
    ] {
        let a = d.join(format!("{tag}-1"));
        let b = d.join(format!("{tag}-2"));
        let mut e1 = extra.clone();
        e1.extend(["--threads", "1", "--tile", "7"]);
        let mut e2 = extra.clone();
        e2.extend(["--threads", "2", "--tile", "32"]);
        train(&a, &e1);
        train(&b, &e2);
        assert_eq!(
            read(&a.join("metrics.csv")),
            read(&b.join("metrics.csv")),
            "{tag}: metrics differ between 1 and 2 threads"
        );
        assert_eq!(
            read(&a.join("checkpoints/final.safetensors")),
            read(&b.join("checkpoints/final.safetensors")),
            "{tag}"
        );
        // The narrower kernel sets (the default is the widest the CPU has).
        for var in ["EDGEWISE_NO_AVX512", "EDGEWISE_NO_AVX2"] {
            let c = d.join(format!("{tag}-{var}"));
            let mut args: Vec<&str> = vec!["train", "--out", c.to_str().unwrap()];
            args.extend_from_slice(SMALL);
            args.extend_from_slice(&e2);
            let o = exe()
                .args(&args)
                .env(var, "1")
                .output()
                .expect("run edgewise");
            assert!(
                o.status.success(),
                "{tag} {var}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                read(&a.join("metrics.csv")),
                read(&c.join("metrics.csv")),
                "{tag}: metrics differ with {var}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(d);
}

/// Run directories written before the `tracked_*` columns (21 columns) or `trace_se` (24)
/// existed resume: their metrics file is rewritten with the current columns, and the result
/// equals an uninterrupted run's.
#[test]
fn a_legacy_metrics_file_resumes() {
    let d = tmp("legacy");
    let full = d.join("full");
    let extra = [
        "--eig-every",
        "3",
        "--trace-every",
        "6",
        "--trace-probes",
        "3",
        "--checkpoint-every",
        "5",
        "--steps",
        "12",
    ];
    let train = |dir: &Path, interrupt: Option<&str>| {
        let mut a: Vec<&str> = vec!["train", "--out", dir.to_str().unwrap()];
        if let Some(i) = interrupt {
            a.extend(["--interrupt-after", i]);
        }
        a.extend_from_slice(SMALL);
        a.extend_from_slice(&extra);
        let o = run(&a);
        assert_eq!(
            o.status.code(),
            Some(if interrupt.is_some() { 137 } else { 0 })
        );
    };
    train(&full, None);
    for columns in [21, 24, 25] {
        let cut = d.join(format!("cut{columns}"));
        train(&cut, Some("8"));
        let path = cut.join("metrics.csv");
        let text = String::from_utf8(read(&path)).unwrap();
        let legacy: String = text
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                assert_eq!(cells.len(), 26);
                format!("{}\n", cells[..columns].join(","))
            })
            .collect();
        assert!(legacy.starts_with("step,") && !legacy.contains("unconverged"));
        assert_eq!(legacy.contains("trace_se"), columns == 25);
        assert_eq!(legacy.contains("tracked"), columns >= 24);
        std::fs::write(&path, legacy).unwrap();
        ok(&["train", "--resume", cut.to_str().unwrap(), "--quiet"]);
        // The uninterrupted run's rows, except that the steps before the resume checkpoint
        // (step 5) lack the columns the earlier version did not write (the trace's standard
        // error, the unconverged measurements), and the tracked ones too (this run has none).
        let want = String::from_utf8(read(&full.join("metrics.csv"))).unwrap();
        let got = String::from_utf8(read(&path)).unwrap();
        assert_eq!(want.lines().count(), got.lines().count());
        for (w, g) in want.lines().zip(got.lines()) {
            let (w, g): (Vec<&str>, Vec<&str>) = (w.split(',').collect(), g.split(',').collect());
            assert_eq!(w[..columns], g[..columns], "{columns}");
            let kept = w[0].parse::<u64>().map_or(true, |step| step >= 5);
            for i in columns..26 {
                assert_eq!(g[i], if kept { w[i] } else { "" }, "{columns}: {g:?}");
            }
        }
        assert!(
            want.lines().nth(1).unwrap().split(',').nth(24) != Some(""),
            "step 0 traced"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

/// A run resumed by a different build warns and records both builds in summary.json; an
/// uninterrupted run and a run resumed by its own build record one.
#[test]
fn a_run_resumed_by_another_build_says_so() {
    let d = tmp("lineage");
    let (full, cut) = (d.join("full"), d.join("cut"));
    let extra = ["--checkpoint-every", "4", "--steps", "10"];
    for (dir, interrupt) in [(&full, None), (&cut, Some("4"))] {
        let mut a: Vec<&str> = vec!["train", "--out", dir.to_str().unwrap()];
        if let Some(i) = interrupt {
            a.extend(["--interrupt-after", i]);
        }
        a.extend_from_slice(SMALL);
        a.extend_from_slice(&extra);
        run(&a);
    }
    let builds = |dir: &Path| -> Vec<String> {
        let s: serde_json::Value =
            serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap();
        let this = s["build"].as_str().unwrap().to_string();
        let list: Vec<String> = s["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect();
        assert_eq!(list.last(), Some(&this));
        list
    };
    assert_eq!(builds(&full).len(), 1);
    let ck_path = cut.join("checkpoints/resume.safetensors");
    let mut ck = edgewise::checkpoint::load(&ck_path).unwrap();
    assert_eq!(ck.metadata["builds"], builds(&full)[0]);
    ck.metadata
        .insert("builds".into(), "00000000000000aa".into());
    edgewise::checkpoint::save(&ck_path, &ck).unwrap();
    let o = ok(&["train", "--resume", cut.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("00000000000000aa"),
        "{err}"
    );
    assert_eq!(
        builds(&cut),
        vec!["00000000000000aa".to_string(), builds(&full)[0].clone()]
    );
    // The continuation itself is the same computation.
    assert_eq!(
        read(&full.join("metrics.csv")),
        read(&cut.join("metrics.csv"))
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_interrupted_run_resumes_bit_identically() {
    let d = tmp("resume");
    let full = d.join("full");
    let cut = d.join("cut");
    for (label, extra) in [
        (
            "adam-sgd",
            vec![
                "--opt",
                "adam",
                "--lr",
                "0.01",
                "--batch-size",
                "50",
                "--eig-every",
                "4",
                "--eig-k",
                "2",
                "--checkpoint-every",
                "6",
                "--steps",
                "20",
            ],
        ),
        (
            "gd-lanczos",
            vec![
                "--lr",
                "0.3",
                "--eig-every",
                "3",
                "--eig-method",
                "lanczos",
                "--track-every",
                "1",
                "--checkpoint-every",
                "5",
                "--steps",
                "17",
                "--hocm",
            ],
        ),
    ] {
        let _ = std::fs::remove_dir_all(&full);
        let _ = std::fs::remove_dir_all(&cut);
        train(&full, &extra);
        let mut a: Vec<&str> = vec![
            "train",
            "--out",
            cut.to_str().unwrap(),
            "--interrupt-after",
            "8",
        ];
        a.extend_from_slice(SMALL);
        a.extend_from_slice(&extra);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(137), "{label}: the simulated kill");
        assert!(!cut.join("summary.json").exists());
        // A kill (or a full disk) while appending a row leaves an unterminated line behind:
        // resume drops it with a warning.
        let mut torn = read(&cut.join("metrics.csv"));
        torn.extend_from_slice(b"8,0,0.01,0.2");
        std::fs::write(cut.join("metrics.csv"), torn).unwrap();
        // `report` of the interrupted run leaves the torn line out, too.
        let rep = d.join("report");
        let o = ok(&[
            "report",
            cut.to_str().unwrap(),
            "--out",
            rep.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("its last line is incomplete"),
            "{label}: {err}"
        );
        let o = ok(&["train", "--resume", cut.to_str().unwrap(), "--quiet"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("metrics.csv: its last line is incomplete"),
            "{label}: {err}"
        );
        assert_eq!(
            read(&full.join("metrics.csv")),
            read(&cut.join("metrics.csv")),
            "{label}: metrics differ after resume"
        );
        assert_eq!(
            read(&full.join("checkpoints/final.safetensors")),
            read(&cut.join("checkpoints/final.safetensors")),
            "{label}"
        );
    }
    // Resume can extend a finished run; it equals a longer run.
    let long = d.join("long");
    train(
        &long,
        &[
            "--lr",
            "0.2",
            "--eig-every",
            "4",
            "--checkpoint-every",
            "5",
            "--steps",
            "30",
        ],
    );
    let short = d.join("short");
    train(
        &short,
        &[
            "--lr",
            "0.2",
            "--eig-every",
            "4",
            "--checkpoint-every",
            "5",
            "--steps",
            "20",
        ],
    );
    ok(&[
        "train",
        "--resume",
        short.to_str().unwrap(),
        "--steps",
        "30",
        "--quiet",
    ]);
    assert_eq!(
        read(&long.join("metrics.csv")),
        read(&short.join("metrics.csv"))
    );
    // Flags that would change the run's settings are refused, not ignored; naming the
    // settings and both values.
    let config = read(&short.join("config.toml"));
    for (flag, value, needle) in [
        ("--lr", "0.5", "optim.lr = "),
        ("--momentum", "0.5", "optim.momentum = 0.9 vs 0.5"),
        ("--weight-decay", "0.01", "optim.weight_decay = 0 vs 0.01"),
        ("--eval-every", "3", "run.eval_every = 10 vs 3"),
    ] {
        bad(
            &["train", "--resume", short.to_str().unwrap(), flag, value],
            needle,
        );
    }
    assert_eq!(read(&short.join("config.toml")), config);
    // --checkpoint-every (files only, not results) may change on a resume.
    ok(&[
        "train",
        "--resume",
        short.to_str().unwrap(),
        "--steps",
        "35",
        "--checkpoint-every",
        "7",
        "--quiet",
    ]);
    assert!(short.join("checkpoints/step_000035.safetensors").is_file());
    let cfg = String::from_utf8(read(&short.join("config.toml"))).unwrap();
    assert!(cfg.contains("checkpoint_every = 7"), "{cfg}");
    bad(
        &["train", "--resume", d.join("nothing").to_str().unwrap()],
        "--resume",
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn sweep_shards_union_equals_the_full_sweep_and_restarts_skip() {
    let d = tmp("sweep");
    let base: Vec<&str> = vec![
        "--data",
        "digits",
        "--per-class",
        "15",
        "--arch",
        "64-8-10",
        "--steps",
        "12",
        "--eig-every",
        "4",
        "--quiet",
        "--no-plots",
    ];
    let grid = [
        "--lrs",
        "0.05,0.2",
        "--seeds",
        "0,1",
        "--opts",
        "gd,momentum",
        // Applies to half of the runs: accepted.
        "--momentum",
        "0.8",
    ];
    let full = d.join("full");
    let mut a = vec!["sweep", "--out", full.to_str().unwrap(), "--jobs", "2"];
    a.extend_from_slice(&base);
    a.extend_from_slice(&grid);
    ok(&a);
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&full)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names.len(), 8);
    let shards = d.join("shards");
    for i in 0..3 {
        let s = format!("{i}/3");
        let mut a = vec![
            "sweep",
            "--out",
            shards.to_str().unwrap(),
            "--jobs",
            "1",
            "--shard",
            &s,
        ];
        a.extend_from_slice(&base);
        a.extend_from_slice(&grid);
        ok(&a);
    }
    for n in &names {
        assert_eq!(
            read(&full.join(n).join("metrics.csv")),
            read(&shards.join(n).join("metrics.csv")),
            "run {n}"
        );
    }
    // Restarting skips finished runs (their files are untouched).
    let before = std::fs::metadata(full.join(&names[0]).join("summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    let mut a = vec!["sweep", "--out", full.to_str().unwrap()];
    a.extend_from_slice(&base);
    a.extend_from_slice(&grid);
    ok(&a);
    let after = std::fs::metadata(full.join(&names[0]).join("summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    // A re-run with other settings into the same directory is refused before anything is
    // written (it would skip or resume runs of the old settings), naming the setting.
    let listing = read(&full.join("sweep.json"));
    let config0 = read(&full.join(&names[0]).join("config.toml"));
    let with = |from: &str, to: &'static str| -> Vec<&str> {
        let mut v: Vec<&str> = vec!["sweep", "--out", full.to_str().unwrap()];
        v.extend(base.iter().map(|&x| if x == from { to } else { x }));
        v.extend_from_slice(&grid);
        v
    };
    let mut a = with("4", "3");
    bad(
        &a,
        "holds a run with other settings than this sweep gives it (existing vs this sweep: curvature.eig_every = 4 vs 3)",
    );
    assert_eq!(read(&full.join("sweep.json")), listing);
    assert_eq!(read(&full.join(&names[0]).join("config.toml")), config0);
    // --force redoes the runs with the new settings.
    a.push("--force");
    ok(&a);
    let cfg = String::from_utf8(read(&full.join(&names[0]).join("config.toml"))).unwrap();
    assert!(cfg.contains("eig_every = 3"), "{cfg}");
    // The same settings again: nothing to do.
    ok(&with("4", "3"));
    // A larger --steps extends every run from its checkpoint, bit-identically: the same rows
    // as a fresh sweep of the longer length.
    let fresh = d.join("fresh");
    let mut a = vec!["sweep", "--out", fresh.to_str().unwrap()];
    let longer: Vec<&str> = with("4", "3")[3..]
        .iter()
        .map(|&x| if x == "12" { "14" } else { x })
        .collect();
    a.extend_from_slice(&longer);
    ok(&a);
    let mut a = vec!["sweep", "--out", full.to_str().unwrap()];
    a.extend_from_slice(&longer);
    ok(&a);
    for n in &names {
        let rows = read(&full.join(n).join("metrics.csv"));
        assert_eq!(rows, read(&fresh.join(n).join("metrics.csv")), "run {n}");
        assert_eq!(rows.iter().filter(|&&b| b == b'\n').count(), 14 + 1);
    }
    // A repeated grid value would make two jobs write one directory; clip values need a
    // clipped optimizer.
    let dup = d.join("dup");
    let mut a = vec!["sweep", "--out", dup.to_str().unwrap(), "--lrs", "0.1,0.1"];
    a.extend_from_slice(&base);
    bad(&a, "the grid holds run lr=0.1 twice");
    assert!(!dup.exists());
    let mut a = vec!["sweep", "--out", dup.to_str().unwrap(), "--clips", "0.1"];
    a.extend_from_slice(&base);
    bad(&a, "--clips: no optimizer of the grid uses a clip value");
    // A flag no run of the grid uses is refused.
    let mut a = vec!["sweep", "--out", dup.to_str().unwrap(), "--opts", "gd,adam"];
    a.extend_from_slice(&["--momentum", "0.8"]);
    a.extend_from_slice(&base);
    bad(
        &a,
        "flags without effect on any run of this sweep (remove them): --momentum applies to --opt momentum and nesterov",
    );
    assert!(!dup.exists());
    // The report merges the shards.
    ok(&["report", shards.to_str().unwrap()]);
    let md = String::from_utf8(read(&shards.join("report.md"))).unwrap();
    assert_eq!(md.lines().filter(|l| l.starts_with("| opt=")).count(), 8);
    for f in [
        "sharpness_vs_lr.svg",
        "test_acc_vs_lr.svg",
        "rotation_vs_lr.svg",
    ] {
        assert!(shards.join("plots").join(f).is_file());
    }
    bad(
        &[
            "sweep",
            "--shard",
            "3/3",
            "--out",
            d.join("x").to_str().unwrap(),
        ],
        "--shard",
    );
    bad(&["report", d.join("missing").to_str().unwrap()], "missing");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn spectrum_and_hvp_check() {
    let d = tmp("spectrum");
    let out = d.join("run");
    ok(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--data",
        "digits",
        "--per-class",
        "10",
        "--arch",
        "64-4-10",
        "--steps",
        "5",
        "--quiet",
    ]);
    let o = ok(&[
        "spectrum",
        out.join("checkpoints/final.safetensors").to_str().unwrap(),
        "--k",
        "3",
        "--dense-max",
        "1000",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = j["top"][0].as_f64().unwrap();
    let dense = j["dense"].as_array().unwrap();
    assert_eq!(dense.len(), 64 * 4 + 4 + 4 * 10 + 10);
    let dtop = dense[0].as_f64().unwrap();
    assert!(
        (top - dtop).abs() < 1e-3 * dtop.abs(),
        "Lanczos {top} vs dense {dtop}"
    );
    let dbot = dense.last().unwrap().as_f64().unwrap();
    assert!((j["bottom"][0].as_f64().unwrap() - dbot).abs() < 1e-2 * dtop.abs());
    let tr = j["dense_trace"].as_f64().unwrap();
    let (est, se) = (
        j["trace"][0].as_f64().unwrap(),
        j["trace"][1].as_f64().unwrap(),
    );
    assert!(
        (est - tr).abs() < 5.0 * se + 1e-3,
        "trace {est} ± {se} vs {tr}"
    );
    let o = ok(&[
        "hvp-check",
        "--data",
        "digits",
        "--per-class",
        "10",
        "--arch",
        "64-6-10",
        "--loss",
        "ce",
        "--directions",
        "3",
        "--json",
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 3);
    for l in text.lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(r["exact_vs_fd"].as_f64().unwrap() < 1e-2);
        assert!(r["exact_vs_dense"].as_f64().unwrap() < 1e-5);
    }
    // With relu, finite differences are not a check of the Hessian: a warning says so.
    let o = ok(&[
        "hvp-check",
        "--data",
        "digits",
        "--per-class",
        "5",
        "--arch",
        "64-4-10",
        "--act",
        "relu",
        "--directions",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("with relu, finite differences step across"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_diverging_run_stops_cleanly_and_keeps_what_it_measured() {
    let d = tmp("diverge");
    let out = d.join("run");
    let mut a = vec![
        "train",
        "--out",
        out.to_str().unwrap(),
        "--lr",
        "5",
        "--steps",
        "200",
        "--eig-every",
        "2",
    ];
    a.extend_from_slice(SMALL);
    let o = run(&a);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(s["diverged"], true);
    let at = s["diverged_at_step"].as_u64().unwrap();
    let metrics = String::from_utf8(read(&out.join("metrics.csv"))).unwrap();
    assert_eq!(
        metrics.lines().count() as u64,
        at + 2,
        "header + rows up to the diverged step"
    );
    assert!(
        out.join("checkpoints/final.safetensors").is_file(),
        "last finite checkpoint kept"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("metrics and the last finite checkpoint (checkpoints/final.safetensors)"),
        "{err}"
    );
    // Resuming it says why it cannot continue, not that the directory is no run.
    common::bad(
        &["train", "--resume", out.to_str().unwrap()],
        "the run diverged (non-finite loss, summary.json) and cannot be continued",
    );
    ok(&[
        "spectrum",
        out.join("checkpoints/final.safetensors").to_str().unwrap(),
        "--dense-max",
        "0",
        "--probes",
        "0",
    ]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn adam_with_eps_zero_trains_on_data_with_constant_pixels() {
    // digits' top-left pixel is 0 in every image: its weights' gradients are all zero, a 0 / 0
    // update with eps = 0 before (the run "diverged" at step 1).
    let d = tmp("eps0");
    let out = d.join("run");
    for opt in ["adam", "rmsprop"] {
        train(
            &out,
            &[
                "--opt",
                opt,
                "--eps",
                "0",
                "--lr",
                "0.01",
                "--steps",
                "6",
                "--eig-every",
                "5",
                "--force",
                "--no-plots",
            ],
        );
        let s: serde_json::Value =
            serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
        assert_eq!(s["diverged"], false, "{opt}: {s}");
        // The preconditioned sharpness at step 5 (step sizes 0 for those weights) is finite.
        let csv = String::from_utf8(read(&out.join("metrics.csv"))).unwrap();
        let col = csv
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == "precond_sharpness");
        let last = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .nth(col.unwrap())
            .unwrap();
        assert!(
            last.parse::<f64>().is_ok_and(f64::is_finite),
            "{opt}: {last:?} in {csv}"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn bad_input_gets_one_clear_message_and_exit_code_2() {
    let d = tmp("bad");
    let o = |n: &str| d.join(n).to_str().unwrap().to_string();
    let t = |extra: &[&str], needle: &str| {
        let out = o("r");
        let _ = std::fs::remove_dir_all(&out);
        let mut a = vec!["train", "--out", out.as_str(), "--steps", "2", "--quiet"];
        a.extend_from_slice(extra);
        bad(&a, needle);
    };
    t(&["--act", "sigmoid"], "--act");
    // A resumed run continues in its own directory.
    t(
        &["--resume", "elsewhere"],
        "'--out <OUT>' cannot be used with '--resume <DIR>'",
    );
    t(&["--hocm"], "--hocm is measured at the eigen measurements");
    // Settings that would fail in the middle of the run are refused before it starts, and
    // leave no run directory: a schedule whose learning rate falls to 0 in f32 (0.05 x 0.5^199
    // at the last step), more eigenpairs than parameters (4 here).
    bad(
        &[
            "train",
            "--out",
            &o("r"),
            "--steps",
            "200",
            "--schedule",
            "step:1:0.5",
        ],
        "--schedule step:1:0.5: the learning rate falls to 0 in f32 at step 199 of 200",
    );
    t(
        &["--lr", "1e-45", "--schedule", "warmup:10"],
        "falls to 0 in f32 at step 0",
    );
    t(
        &[
            "--data",
            "synthetic:teacher?dim=1&hidden=1&out=1&n=50",
            "--arch",
            "1-1-1",
            "--eig-every",
            "1",
            "--eig-k",
            "5",
        ],
        "--eig-k 5: more eigenpairs than the network's 4 parameters",
    );
    t(
        &[
            "--data",
            "synthetic:teacher",
            "--arch",
            "16-8-4",
            "--until-train-acc",
            "0.5",
        ],
        "--until-train-acc 0.5: data set synthetic:teacher is a regression data set",
    );
    assert!(!d.join("r").exists(), "a refused run writes nothing");
    t(
        &["--lr", "1e-50"],
        "f32 rounds values below about 7e-46 to 0",
    );
    t(
        &["--eig-every", "5", "--power-tol", "4294967296"],
        "--power-tol 4294967300: a relative residual tolerance must be below 1",
    );
    // Analyses that could never allocate their buffers are refused, not aborted.
    bad(
        &[
            "hvp-check",
            "--data",
            "digits",
            "--arch",
            "64-100000-100000-10",
            "--dense-max",
            "0",
        ],
        "hvp-check of 10007600010 parameters needs about",
    );
    // Flags that would have no effect on the run are refused, each named with the reason.
    t(
        &["--opt", "adam", "--momentum", "0.5"],
        "--momentum applies to --opt momentum and nesterov, not to --opt adam (Adam's is --beta1)",
    );
    t(
        &["--opt", "rmsprop", "--beta1", "0.5"],
        "--beta1 applies to --opt adam",
    );
    t(&["--beta2", "0.9"], "--beta2 applies to --opt rmsprop");
    t(&["--eps", "1e-6"], "--eps applies to --opt rmsprop");
    t(
        &["--opt", "adam", "--clip-mode", "lower"],
        "--clip-mode applies to --opt clipped-adam",
    );
    t(&["--drop-last"], "--drop-last needs minibatches");
    t(&["--eig-k", "3"], "--eig-k needs eigen measurements");
    t(
        &["--eig-method", "power"],
        "--eig-method needs eigen measurements",
    );
    t(&["--hvp", "fd"], "--hvp needs curvature measurements");
    t(
        &["--hessian-subset", "50"],
        "--hessian-subset needs curvature measurements",
    );
    t(
        &["--power-tol", "1e-4"],
        "--power-tol needs eigen measurements",
    );
    t(
        &["--trace-probes", "4"],
        "--trace-probes needs trace estimates",
    );
    t(
        &["--eig-every", "1", "--lanczos-steps", "5"],
        "--lanczos-steps sets the length of --eig-method lanczos",
    );
    t(
        &[
            "--eig-every",
            "1",
            "--eig-method",
            "lanczos",
            "--lanczos-max-steps",
            "5",
        ],
        "--lanczos-max-steps caps --eig-method warm-lanczos",
    );
    t(
        &["--eig-every", "1", "--power-max-iter", "5"],
        "--power-max-iter caps power iteration",
    );
    t(&["--lambda-min"], "--lambda-min needs eigen measurements");
    t(
        &[
            "--eig-every",
            "1",
            "--eig-method",
            "lanczos",
            "--lambda-min",
        ],
        "--lambda-min --eig-method lanczos gives lambda_min at every measurement anyway",
    );
    // All of them at once, in one message.
    let err = bad(
        &[
            "train",
            "--out",
            &o("r"),
            "--steps",
            "2",
            "--opt",
            "adam",
            "--momentum",
            "0.5",
            "--eig-k",
            "2",
        ],
        "flags without effect on this run (remove them): --momentum",
    );
    assert!(err.contains("; --eig-k needs eigen measurements"), "{err}");
    t(
        &["--schedule", "warmup:3,warmup:4"],
        "warmup is given twice",
    );
    // Integers TOML cannot hold made config.toml empty (exit 0); a NaN threshold was stored.
    t(
        &["--seed", "9223372036854775808"],
        "--seed 9223372036854775808: at most 9223372036854775807",
    );
    assert!(!d.join("r").exists());
    for act in ["relu", "elu"] {
        t(
            &["--act", act, "--eig-every", "1", "--hocm"],
            &format!("--hocm with --act {act}: T(v,v,v) is a central difference"),
        );
    }
    t(
        &["--until-loss", "nan"],
        "--until-loss NaN: must be >= 0 and finite",
    );
    t(&["--until-loss", "-1"], "--until-loss -1: must be >= 0");
    // hvp-check takes no training flags (they would have no effect).
    bad(
        &["hvp-check", "--arch", "8-4", "--lr", "3", "--steps", "3"],
        "unexpected argument '--lr'",
    );
    t(
        &["--batch-size", "100000", "--drop-last"],
        "--drop-last: larger than the",
    );
    t(&["--opt", "lbfgs"], "--opt");
    t(&["--lr", "-0.1"], "--lr");
    t(&["--lr", "0"], "--lr");
    t(&["--arch", "64-0-10"], "zero width");
    t(&["--arch", "32-10"], "first width");
    t(&["--arch", "64-16-7"], "last width");
    t(&["--data", "imagenet"], "imagenet");
    t(
        &["--data", "csv:/nonexistent/file.csv", "--arch", "3-2"],
        "/nonexistent/file.csv",
    );
    t(&["--threads", "0"], "--threads");
    t(&["--schedule", "cosine"], "--schedule");
    t(&["--opt", "clipped-adam"], "--clip");
    t(&["--config", "/nonexistent.toml"], "/nonexistent.toml");
    let cfgp = o("bad.toml");
    std::fs::write(&cfgp, "[optim]\nlr = \"fast\"\n").unwrap();
    t(&["--config", &cfgp], "bad.toml");
    // CSV files: wrong feature count, label out of range, NaN, garbage, truncated gzip.
    let csv = |name: &str, text: &[u8]| {
        let p = o(name);
        std::fs::write(&p, text).unwrap();
        format!("csv:{p}")
    };
    let c = csv("short.csv", b"1,2,3,0\n1,2,3,1\n1,2,1\n4,5,6,0\n1,1,1,1\n");
    t(&["--data", &c, "--arch", "3-4-2"], "line 3");
    let c = csv("nan.csv", b"1,2,3,0\n1,NaN,3,1\n4,5,6,0\n1,1,1,1\n");
    t(&["--data", &c, "--arch", "3-4-2"], "line 2");
    let c = csv("garbage.csv", b"1,2,3,0\n1,x,3,1\n");
    t(&["--data", &c, "--arch", "3-4-2"], "garbage.csv");
    let c = csv("header.csv", b"a,b,c,label\n1,2,3,1\n");
    t(
        &["--data", &c, "--arch", "3-4-2"],
        "line 1: field 1: cannot parse `a` as a number (a header line?",
    );
    let c = csv(
        "labels.csv",
        b"1,2,3,0\n1,2,3,1\n1,2,3,4\n1,2,3,1\n1,2,3,0\n",
    );
    t(&["--data", &c, "--arch", "3-4-2"], "last width");
    let c = csv("trunc.csv.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2]);
    t(&["--data", &c, "--arch", "3-4-2"], "trunc.csv.gz");
    // Empty or out-of-range lists and counts of the other commands.
    bad(
        &["hvp-check", "--directions", "0"],
        "--directions 0: must be at least 1",
    );
    bad(
        &["spectrum", "--k", "0", "x.safetensors"],
        "--k 0: must be at least 1",
    );
    bad(
        &[
            "spectrum",
            "--method",
            "power",
            "--k",
            "17",
            "x.safetensors",
        ],
        "gives at most 16 eigenvalues",
    );
    let sw = o("sweep");
    bad(
        &["sweep", "--out", &sw, "--lrs", " "],
        "--lrs \" \": no values given",
    );
    bad(
        &["sweep", "--out", &sw, "--lrs", "0.1,"],
        "--lrs \"0.1,\": item 2 is empty",
    );
    bad(
        &["sweep", "--out", &sw, "--lr-grid", "0.1:2:5000"],
        "COUNT must be in 1..=1000",
    );
    assert!(!Path::new(&sw).exists(), "a rejected sweep created {sw}");
    // Unwritable output directory (a path below a regular file).
    let file = o("file");
    std::fs::write(&file, b"x").unwrap();
    bad(
        &[
            "train",
            "--out",
            &format!("{file}/run"),
            "--steps",
            "1",
            "--quiet",
        ],
        "output directory",
    );
    // Corrupt and mismatched checkpoints.
    let ck = o("corrupt.safetensors");
    std::fs::write(&ck, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}xxxxxx").unwrap();
    bad(&["spectrum", &ck], "corrupt.safetensors");
    let run_dir = o("run");
    ok(&[
        "train",
        "--out",
        &run_dir,
        "--data",
        "digits",
        "--per-class",
        "5",
        "--arch",
        "64-4-10",
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--quiet",
    ]);
    let cfg = std::fs::read_to_string(format!("{run_dir}/config.toml")).unwrap();
    std::fs::write(
        format!("{run_dir}/config.toml"),
        cfg.replace("64-4-10", "64-5-10"),
    )
    .unwrap();
    bad(&["train", "--resume", &run_dir, "--quiet"], "architecture");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn user_data_formats_train() {
    let d = tmp("formats");
    // Fashion-MNIST IDX files (small, generated here): 20 train and 10 test 28x28 images.
    let fm = d.join("fm");
    std::fs::create_dir_all(&fm).unwrap();
    let idx = |name: &str, n: usize, images: bool| {
        let mut b = Vec::new();
        if images {
            b.extend_from_slice(&0x0803u32.to_be_bytes());
            b.extend_from_slice(&(n as u32).to_be_bytes());
            b.extend_from_slice(&28u32.to_be_bytes());
            b.extend_from_slice(&28u32.to_be_bytes());
            b.extend((0..n * 784).map(|i| (i * 7 % 256) as u8));
        } else {
            b.extend_from_slice(&0x0801u32.to_be_bytes());
            b.extend_from_slice(&(n as u32).to_be_bytes());
            b.extend((0..n).map(|i| (i % 10) as u8));
        }
        std::fs::write(fm.join(name), b).unwrap();
    };
    idx("train-images-idx3-ubyte", 20, true);
    idx("train-labels-idx1-ubyte", 20, false);
    idx("t10k-images-idx3-ubyte", 10, true);
    idx("t10k-labels-idx1-ubyte", 10, false);
    let spec = format!("fashion-mnist:{}", fm.display());
    ok(&[
        "train",
        "--out",
        d.join("r1").to_str().unwrap(),
        "--data",
        &spec,
        "--arch",
        "784-8-10",
        "--steps",
        "3",
        "--quiet",
    ]);
    ok(&[
        "train",
        "--out",
        d.join("r2").to_str().unwrap(),
        "--data",
        "synthetic:teacher",
        "--arch",
        "16-8-4",
        "--steps",
        "3",
        "--eig-every",
        "1",
        "--quiet",
    ]);
    ok(&[
        "train",
        "--out",
        d.join("r3").to_str().unwrap(),
        "--data",
        "mnist1d",
        "--arch",
        "40-8-10",
        "--steps",
        "2",
        "--quiet",
    ]);
    // A CSV file named relative to the working directory: the run's config.toml names it
    // absolutely, so that the run resumes from any directory.
    let csv: String = (0..30)
        .map(|i| format!("{},{},{},{},{}\n", i % 7, i % 5, i % 3, i % 2, i % 3))
        .collect();
    std::fs::write(d.join("small.csv"), csv).unwrap();
    let o = exe()
        .current_dir(&d)
        .args([
            "train",
            "--out",
            "r4",
            "--data",
            "csv:small.csv",
            "--arch",
            "4-3-3",
            "--steps",
            "2",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = String::from_utf8(read(&d.join("r4/config.toml"))).unwrap();
    let expected = format!("csv:{}", d.join("small.csv").display());
    assert!(cfg.contains(&expected), "{cfg}");
    ok(&[
        "train",
        "--resume",
        d.join("r4").to_str().unwrap(),
        "--steps",
        "4",
        "--quiet",
    ]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn bench_prints_one_json_line_with_its_timings_and_flop_counts() {
    let o = ok(&[
        "bench",
        "--arch",
        "12-7-5-3",
        "--n",
        "40",
        "--threads",
        "2",
        "--repeats",
        "2",
        "--power-steps",
        "3",
        "--loss",
        "ce",
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let r: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(r["arch"], "12-7-5-3");
    assert_eq!(r["loss"], "ce");
    assert_eq!(r["n"], 40);
    assert_eq!(r["threads"], 2);
    assert_eq!(r["power_steps"], 3);
    assert_eq!(r["params"], 12 * 7 + 7 + 7 * 5 + 5 + 5 * 3 + 3);
    // Flops: gradient N (4 P_w + 2 P_w'), product N (6 P_w + 10 P_w') (`host/src/bench.rs`).
    let (pw, pw1) = (12.0 * 7.0 + 7.0 * 5.0 + 5.0 * 3.0, 7.0 * 5.0 + 5.0 * 3.0);
    assert_eq!(
        r["grad_flops"].as_f64(),
        Some(40.0 * (4.0 * pw + 2.0 * pw1))
    );
    assert_eq!(
        r["hvp_flops"].as_f64(),
        Some(40.0 * (6.0 * pw + 10.0 * pw1))
    );
    for key in ["grad_s", "hvp_s", "hvp_reuse_s", "power_s"] {
        let t = r[key].as_f64().unwrap_or(-1.0);
        assert!(t > 0.0 && t < 60.0, "{key} = {t}");
    }
    let ratio = r["hvp_s"].as_f64().unwrap() / r["grad_s"].as_f64().unwrap();
    // (serde_json's default float parsing may be one unit in the last place off.)
    let reported = r["hvp_over_grad"].as_f64().unwrap();
    assert!(
        (reported - ratio).abs() <= 1e-12 * ratio,
        "{reported} vs {ratio}"
    );
    assert!(["avx512", "avx2", "baseline"].contains(&r["kernels"].as_str().unwrap()));
    assert_eq!(r["stat"], "median");
}

/// `--kernels` runs the set asked for, or says that the CPU lacks it.
#[test]
fn bench_runs_the_kernels_asked_for() {
    for k in ["baseline", "avx2", "avx512"] {
        let o = run(&[
            "bench",
            "--arch",
            "6-4-3",
            "--n",
            "20",
            "--repeats",
            "1",
            "--kernels",
            k,
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(r["kernels"], k);
        } else {
            assert_eq!(o.status.code(), Some(2), "{k}: {stderr}");
            assert!(stderr.contains("supports at most"), "{k}: {stderr}");
            assert_ne!(k, "baseline", "every CPU runs the baseline");
        }
    }
}

#[test]
fn bench_rejects_bad_arguments() {
    bad(&["bench", "--arch", "8-4", "--n", "0"], "--n 0");
    bad(&["bench", "--arch", "8-4", "--threads", "0"], "--threads 0");
    bad(&["bench", "--arch", "8-4", "--act", "sine"], "--act sine");
    bad(
        &["bench", "--arch", "8-4", "--loss", "hinge"],
        "--loss hinge",
    );
    bad(
        &["bench", "--arch", "8-4", "--kernels", "sse9"],
        "--kernels sse9",
    );
    bad(&["bench", "--arch", "8-x-4"], "8-x-4");
    bad(&["bench", "--arch", "8-4", "--repeats", "0"], "--repeats 0");
    // Was a panic ("capacity overflow") and an allocation abort.
    bad(
        &[
            "bench",
            "--arch",
            "8-4",
            "--repeats",
            "18446744073709551615",
        ],
        "must be in 1..=1000000",
    );
    bad(
        &["bench", "--arch", "8-4", "--repeats", "4000000000"],
        "--repeats",
    );
    // Was exit 1 (train says 2 for the same architecture).
    bad(
        &["bench", "--arch", "64-4-4-4-4-4-4-4-4-4-10", "--n", "10"],
        "too many layers",
    );
    bad(
        &["bench", "--arch", "8-4", "--power-steps", "0"],
        "--power-steps 0",
    );
}

/// A model or data set that needs more memory than can ever be allocated (two layers of 2^24
/// units: about 8 PiB of weights) is refused with a clear error before anything is written,
/// not an out-of-memory abort.
#[test]
fn impossible_memory_requests_are_bad_input() {
    let huge = "64-16777216-16777216-10";
    bad(&["bench", "--arch", huge, "--n", "10"], "PiB of memory");
    bad(
        &["bench", "--arch", "100000-100000-10", "--n", "100000000"],
        "of memory, more than this process can allocate",
    );
    let out = tmp("impossible-memory").join("run");
    let o = out.to_str().unwrap();
    bad(
        &[
            "train", "--data", "digits", "--arch", huge, "--steps", "1", "--out", o,
        ],
        "PiB of memory",
    );
    assert!(
        !out.exists(),
        "nothing is written for a run that cannot start"
    );
    // 75 million parameters fit, but not a Lanczos basis of a billion (capped at 75 million)
    // steps of them.
    let args = [
        "train",
        "--data",
        "digits",
        "--arch",
        "64-1000000-10",
        "--steps",
        "1",
        "--eig-every",
        "1",
        "--eig-method",
        "lanczos",
        "--lanczos-steps",
        "1000000000",
        "--out",
        o,
    ];
    bad(&args, "PiB of memory");
    assert!(!out.exists());
    // A tile larger than the data is cut to the data, not allocated.
    let huge_tile = ["--tile", "1000000000"];
    ok(&[
        &["hvp-check", "--arch", "64-32-10", "--directions", "1"][..],
        &huge_tile,
    ]
    .concat());
    bad(
        &[
            "hvp-check",
            "--arch",
            "64-3000-10",
            "--dense-max",
            "100000000",
        ],
        "the dense Hessian of 225010 parameters (--dense-max) needs about",
    );
}

/// A write to standard output that fails (here a full disk, `/dev/full`) ends with exit code 1
/// and a message, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_to_standard_output_is_exit_code_1() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let args = [
        "hvp-check",
        "--data",
        "digits",
        "--per-class",
        "5",
        "--arch",
        "64-4-10",
        "--directions",
        "1",
    ];
    for json in [false, true] {
        let mut a = args.to_vec();
        if json {
            a.push("--json");
        }
        let o = exe().args(&a).stdout(full()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{a:?}: {err}");
        assert!(
            err.contains("cannot write to standard output: No space left on device"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // A failed write to standard error is ignored: bad input keeps its exit code 2 (was 101,
    // a panic), and a run writing progress lines finishes with all its files.
    let o = exe()
        .args(["train", "--data", "nope"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let d = tmp("stderr-full");
    let out = d.join("run");
    let o = exe()
        .args([
            "train",
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "3",
            "--no-plots",
        ])
        .args(SMALL.iter().filter(|&&a| a != "--quiet"))
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(out.join("summary.json").is_file());
    // spectrum --json: a full device is a failed write (1), a path that cannot be a file is
    // bad input (2).
    let ck = out.join("checkpoints/final.safetensors");
    let missing = d.join("no/such/dir.json");
    for (json, code, needle) in [
        ("/dev/full", 1, "--json: cannot"),
        // Refused before the computation.
        (missing.to_str().unwrap(), 2, "its directory does not exist"),
        (d.to_str().unwrap(), 2, ": is a directory"),
    ] {
        let o = run(&[
            "spectrum",
            s(&ck),
            "--k",
            "1",
            "--probes",
            "0",
            "--json",
            json,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{json}: {err}");
        assert!(err.contains(needle), "{err}");
        if code == 1 {
            assert!(err.contains("No space left on device"), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(d);
}

/// A flag of one split mode replaces the other mode's settings of a config file (they used to
/// conflict: "per_class cannot be combined").
#[test]
fn a_split_flag_replaces_the_config_files_other_split_mode() {
    let d = tmp("splitmode");
    let cfg = d.join("exp.toml");
    std::fs::write(
        &cfg,
        "[data]\nname = \"digits\"\nper_class = 10\n\n[model]\narch = \"64-4-10\"\n",
    )
    .unwrap();
    let summary = |out: &Path| -> serde_json::Value {
        serde_json::from_slice(&read(&out.join("summary.json"))).unwrap()
    };
    let a = d.join("a");
    let c = cfg.to_str().unwrap();
    ok(&[
        "train",
        "--config",
        c,
        "--out",
        a.to_str().unwrap(),
        "--steps",
        "1",
        "--quiet",
    ]);
    assert_eq!(summary(&a)["n_train"], 100);
    let b = d.join("b");
    ok(&[
        "train",
        "--config",
        c,
        "--out",
        b.to_str().unwrap(),
        "--steps",
        "1",
        "--train-size",
        "300",
        "--test-size",
        "50",
        "--quiet",
    ]);
    assert_eq!(summary(&b)["n_train"], 300);
    assert_eq!(summary(&b)["n_test"], 50);
    let _ = std::fs::remove_dir_all(d);
}

/// `hocm` is `|T(v,v,v)|` (the eigenvector's sign is arbitrary); a `lambda_min` that missed the
/// tolerance is warned about; `--hvp fd` with relu is warned about.
#[test]
fn curvature_caveats_are_reported() {
    let d = tmp("caveats");
    let out = d.join("run");
    // Not --quiet (which silences the warning).
    let o = ok(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--data",
        "digits",
        "--per-class",
        "20",
        "--arch",
        "64-12-10",
        "--lr",
        "0.1",
        "--steps",
        "21",
        "--eig-every",
        "5",
        "--lambda-min",
        "--hocm",
        "--power-max-iter",
        "5",
        "--no-plots",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lambda_min measurement(s) in this invocation missed the residual tolerance"),
        "{err}"
    );
    // The sharpness (warm-started Lanczos, up to 50 products) met the tolerance.
    assert!(!err.contains("sharpness measurement(s)"), "{err}");
    // A fixed-length Lanczos run of one step gives a sharpness that misses it: said so.
    let short = d.join("short");
    let o = ok(&[
        "train",
        "--out",
        short.to_str().unwrap(),
        "--data",
        "digits",
        "--per-class",
        "20",
        "--arch",
        "64-12-10",
        "--steps",
        "6",
        "--eig-every",
        "5",
        "--eig-method",
        "lanczos",
        "--lanczos-steps",
        "1",
        "--no-plots",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "warning: 2 sharpness measurement(s) in this invocation missed the residual tolerance"
        ),
        "{err}"
    );
    assert!(!err.contains("top 1 eigenvectors"), "{err}");
    // Four steps converge the top eigenvalue far better than the second and third vectors.
    let o = ok(&[
        "train",
        "--out",
        short.to_str().unwrap(),
        "--force",
        "--data",
        "digits",
        "--per-class",
        "20",
        "--arch",
        "64-12-10",
        "--steps",
        "6",
        "--eig-every",
        "5",
        "--eig-method",
        "lanczos",
        "--eig-k",
        "3",
        "--lanczos-steps",
        "4",
        "--no-plots",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: 2 eigen measurement(s) in this invocation left some of the top 3 eigenvectors short"),
        "{err}"
    );
    let metrics = String::from_utf8(read(&out.join("metrics.csv"))).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|&c| c == "hocm").unwrap();
    let hocm: Vec<f64> = metrics
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(col).and_then(|x| x.parse().ok()))
        .collect();
    assert_eq!(hocm.len(), 5);
    assert!(hocm.iter().all(|&t| t > 0.0), "{hocm:?}");
    for act in ["relu", "elu"] {
        let o = train(
            &d.join(format!("fd-{act}")),
            &[
                "--act",
                act,
                "--hvp",
                "fd",
                "--steps",
                "2",
                "--eig-every",
                "1",
                "--no-plots",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("--hvp fd with {act}")), "{err}");
    }
    let _ = std::fs::remove_dir_all(d);
}

/// A run stopped by `--until-loss` says why it stops again when resumed with the same
/// threshold, and continues, bit-identically to a fresh run, with a lower one.
#[test]
fn a_run_stopped_by_until_loss_continues_with_a_lower_threshold() {
    let d = tmp("until");
    let (a, b) = (d.join("a"), d.join("b"));
    let c = [
        "--data",
        "digits",
        "--per-class",
        "20",
        "--arch",
        "64-12-10",
        "--lr",
        "0.2",
        "--eig-every",
        "5",
        "--steps",
        "300",
        "--no-plots",
        "--quiet",
    ];
    let mut args = vec!["train", "--out", a.to_str().unwrap(), "--until-loss", "0.2"];
    args.extend_from_slice(&c);
    ok(&args);
    let steps = |dir: &Path| -> u64 {
        let s: serde_json::Value =
            serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap();
        assert_eq!(s["stopped_by"], "until_loss");
        s["steps"].as_u64().unwrap()
    };
    let first = steps(&a);
    assert!(first < 300, "{first}");
    let o = ok(&["train", "--resume", a.to_str().unwrap(), "--no-plots"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "stopped at step {first} because its training loss"
        )) && err.contains("reached --until-loss 0.2, and stops there again"),
        "{err}"
    );
    assert_eq!(steps(&a), first);
    ok(&[
        "train",
        "--resume",
        a.to_str().unwrap(),
        "--until-loss",
        "0.15",
        "--no-plots",
        "--quiet",
    ]);
    let mut args = vec![
        "train",
        "--out",
        b.to_str().unwrap(),
        "--until-loss",
        "0.15",
    ];
    args.extend_from_slice(&c);
    ok(&args);
    assert!(steps(&a) > first);
    assert_eq!(steps(&a), steps(&b));
    assert_eq!(read(&a.join("metrics.csv")), read(&b.join("metrics.csv")));
    // A higher threshold the run had already met earlier (a fresh run with it stops sooner)
    // is refused, changing nothing.
    let before = read(&a.join("summary.json"));
    let err = common::bad(
        &[
            "train",
            "--resume",
            a.to_str().unwrap(),
            "--until-loss",
            "0.3",
        ],
        "--until-loss 0.3: the run's training loss already reached it at step",
    );
    assert!(err.contains("give a lower --until-loss"), "{err}");
    assert_eq!(read(&a.join("summary.json")), before);
    let _ = std::fs::remove_dir_all(d);
}

/// `mean_hvps_per_measurement` counts the eigen measurements' products, not those of trace
/// estimates that fall on the same steps.
#[test]
fn trace_products_stay_out_of_the_eigen_measurements_mean() {
    let d = tmp("hvpmean");
    let mean = |extra: &[&str], name: &str| -> f64 {
        let out = d.join(name);
        let mut a = vec!["--steps", "40", "--eig-every", "10", "--no-plots"];
        a.extend_from_slice(extra);
        train(&out, &a);
        let s: serde_json::Value =
            serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
        s["mean_hvps_per_measurement"].as_f64().unwrap()
    };
    let plain = mean(&[], "plain");
    assert!(plain > 0.0);
    let traced = mean(&["--trace-every", "5", "--trace-probes", "7"], "traced");
    assert_eq!(plain, traced);
    let _ = std::fs::remove_dir_all(d);
}

/// `summary.json`'s `unstable_measurements` counts the measured steps above the optimizer's
/// threshold: `lr x sharpness > 2` for GD, the preconditioned sharpness above 38 for Adam.
#[test]
fn unstable_measurements_count_the_rows_above_the_threshold() {
    let d = tmp("cli-unstable");
    let count = |run: &std::path::Path, col: &str, threshold: f32| -> (u64, u64) {
        let text = String::from_utf8(read(&run.join("metrics.csv"))).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let i = header.iter().position(|h| *h == col).unwrap();
        let cells: Vec<String> = lines
            .map(|l| l.split(',').nth(i).unwrap().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        let above = cells
            .iter()
            .filter(|c| c.parse::<f32>().unwrap() > threshold)
            .count();
        (above as u64, cells.len() as u64)
    };
    let unstable = |run: &std::path::Path| -> u64 {
        let v: serde_json::Value =
            serde_json::from_slice(&read(&run.join("summary.json"))).unwrap();
        v["unstable_measurements"].as_u64().unwrap()
    };
    let gd = d.join("gd");
    train(
        &gd,
        &[
            "--lr",
            "0.25",
            "--steps",
            "60",
            "--eig-every",
            "1",
            "--no-plots",
        ],
    );
    let (above, measured) = count(&gd, "lr_x_sharpness", 2.0);
    assert!(0 < above && above < measured, "{above} of {measured}");
    assert_eq!(unstable(&gd), above);
    let adam = d.join("adam");
    train(
        &adam,
        &[
            "--opt",
            "adam",
            "--lr",
            "0.03",
            "--steps",
            "60",
            "--eig-every",
            "1",
            "--no-plots",
        ],
    );
    let (above, measured) = count(&adam, "precond_sharpness", 38.0);
    assert!(0 < above && above < measured, "{above} of {measured}");
    assert_eq!(unstable(&adam), above);
    assert_ne!(
        count(&adam, "lr_x_sharpness", 2.0).0,
        above,
        "the choice is tested"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A curvature measurement that overflows f32 at a finite loss (inputs near 3.5e18) leaves its
/// cells empty, is counted in summary.json's `unconverged.non_finite` and warned about; the
/// run itself finishes.
#[test]
fn curvature_that_overflows_at_a_finite_loss_is_counted_and_warned_about() {
    let d = tmp("overflow");
    let csv = d.join("huge.csv");
    let mut text = String::new();
    for i in 0..30u32 {
        let x = (i as f32 * 0.37).sin() * 3.5e18;
        let y = (i as f32 * 0.71).cos() * 3.5e18;
        text.push_str(&format!("{x},{y},{}\n", i % 2));
    }
    std::fs::write(&csv, text).unwrap();
    let out = d.join("run");
    let data = format!("csv:{}", csv.display());
    let o = ok(&[
        "train",
        "--out",
        out.to_str().unwrap(),
        "--data",
        &data,
        "--arch",
        "2-2-2",
        "--act",
        "identity",
        "--lr",
        "1e-40",
        "--steps",
        "3",
        "--eig-every",
        "1",
        "--trace-every",
        "1",
        "--no-plots",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: 3 curvature measurement(s) in this invocation could not be taken"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary["unconverged"]["non_finite"], 3);
    assert_eq!(summary["measurements"], 0);
    let metrics = String::from_utf8(read(&out.join("metrics.csv"))).unwrap();
    for line in metrics.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert!(
            cells[3].parse::<f32>().unwrap().is_finite(),
            "finite loss: {line}"
        );
        assert_eq!(cells[8], "", "no sharpness: {line}");
        assert_eq!(cells[25], "non_finite", "the row says why: {line}");
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn lean_lanczos_tracks_the_sharpness_of_warm_lanczos_in_two_passes() {
    // The firmware's tracker on the host: the same sharpness as the stored-basis tracker (both
    // stop at a relative residual of 1e-3, so both are within a few parts per million of the
    // top eigenvalue), at 2 m - 1 products for m steps, beyond the edge of stability (lr 0.25:
    // lr * sharpness above 2 in most of this run).
    let d = tmp("lean-lanczos");
    let columns = |dir: &Path| {
        let text = String::from_utf8(read(&dir.join("metrics.csv"))).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
        let (s, h, lxs) = (
            col("sharpness"),
            col("sharpness_hvps"),
            col("lr_x_sharpness"),
        );
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[s].parse::<f64>().unwrap(),
                    f[h].parse::<u32>().unwrap(),
                    f[lxs].parse::<f64>().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let common = ["--lr", "0.25", "--steps", "60", "--eig-every", "1"];
    let (warm, lean) = (d.join("warm"), d.join("lean"));
    train(&warm, &common);
    let mut args = common.to_vec();
    args.extend(["--eig-method", "lean-lanczos"]);
    train(&lean, &args);
    let (w, l) = (columns(&warm), columns(&lean));
    assert_eq!(w.len(), l.len());
    let beyond = l.iter().filter(|r| r.2 > 2.0).count();
    assert!(
        beyond > l.len() / 2,
        "only {beyond} measurements beyond the edge"
    );
    for (i, (a, b)) in w.iter().zip(&l).enumerate() {
        assert!(
            (a.0 - b.0).abs() <= 1e-4 * a.0.abs(),
            "step {i}: warm-lanczos {} vs lean-lanczos {}",
            a.0,
            b.0
        );
        assert_eq!(b.1 % 2, 1, "step {i}: {} products is not 2 m - 1", b.1);
    }
    let config = String::from_utf8(read(&lean.join("config.toml"))).unwrap();
    assert!(config.contains("eig_method = \"lean-lanczos\""), "{config}");
    bad(
        &[
            "train",
            "--out",
            s(&d.join("k2")),
            "--data",
            "digits",
            "--eig-every",
            "1",
            "--eig-method",
            "lean-lanczos",
            "--eig-k",
            "2",
        ],
        "lean-lanczos measures the top pair alone",
    );
    assert!(!d.join("k2").exists());
}

#[test]
fn a_run_that_diverged_on_a_checkpoint_step_is_refused_as_diverged() {
    // The resume checkpoint then holds the parameters of the diverging step: the message must
    // say so, not that the checkpoint was edited (NaN gradient norms never compare equal).
    let d = tmp("diverged-on-checkpoint");
    let run = d.join("run");
    let o = run_cmd(&[
        "train",
        "--out",
        s(&run),
        "--data",
        "digits",
        "--arch",
        "64-32-10",
        "--lr",
        "3",
        "--steps",
        "200",
        "--checkpoint-every",
        "3",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(3), "the run diverges");
    let summary = read(&run.join("summary.json"));
    assert!(String::from_utf8_lossy(&summary).contains("\"diverged_at_step\": 12"));
    let err = bad(
        &["train", "--resume", s(&run), "--quiet"],
        "the run diverged at step 12, the checkpoint's step",
    );
    assert!(!err.contains("edited"), "{err}");
    assert_eq!(read(&run.join("summary.json")), summary);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn train_help_states_the_defaults_of_the_configuration() {
    // The defaults live in the configuration (a flag that is absent leaves config.toml's value,
    // or the default): `--help` states them in words, and must not drift from them.
    let c = edgewise::config::TrainConfig::default();
    let help = String::from_utf8(ok(&["train", "--help"]).stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        format!("(default {})", c.data.name),
        format!("(default {})", c.model.arch),
        format!("(default {})", c.model.act),
        format!("(default {})", c.model.loss),
        format!("(default {})", c.model.init),
        format!("(default {})", c.model.seed),
        format!("(default {})", c.model.math),
        format!("(default {})", c.optim.opt),
        format!("(default {})", c.optim.lr),
        format!("default {})", c.optim.momentum),
        format!("(default {})", c.optim.beta1),
        format!("(default {:e})", c.optim.eps),
        format!("default {})", c.optim.weight_decay),
        format!("(default {})", c.optim.schedule),
        format!("(default {}: never, so", c.curvature.eig_every),
        format!("(default {})", c.curvature.eig_k),
        format!("Default {}", c.curvature.eig_method),
        format!("(default {})", c.curvature.hvp),
        format!("(default {}: never)", c.curvature.trace_every),
        format!("(default {})", c.curvature.trace_probes),
        format!("(default {})", c.run.eval_every),
        format!("(default {})", c.curvature.lanczos_steps),
        format!("(default {})", c.curvature.power_max_iter),
    ] {
        assert!(help.contains(&want), "`train --help` lacks {want:?}");
    }
}

#[test]
fn an_empty_config_file_is_bad_input_not_all_defaults() {
    // Read as all defaults, an emptied config.toml of a run made resume name an architecture
    // mismatch instead of the damage.
    let d = tmp("empty-config");
    std::fs::create_dir_all(&d).unwrap();
    let empty = d.join("empty.toml");
    std::fs::write(&empty, " \n").unwrap();
    bad(
        &["train", "--config", s(&empty), "--out", s(&d.join("a"))],
        "is empty",
    );
    assert!(!d.join("a").exists());
    let run = d.join("run");
    train(&run, &["--steps", "3", "--no-plots"]);
    std::fs::write(run.join("config.toml"), "").unwrap();
    let err = bad(&["train", "--resume", s(&run), "--steps", "5"], "is empty");
    assert!(err.contains("config.toml"), "{err}");
    let _ = std::fs::remove_dir_all(d);
}
