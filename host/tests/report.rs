//! Integration tests of `edgewise report`: which runs it averages together and how it names
//! them, the learning rate of `lr x sharpness`, `report.csv`'s quoting, and runs that have only
//! just started.

mod common;

use std::path::Path;

use common::{ok, read, run, s, tmp, SMALL};

/// The fields of one CSV line, quoted fields unquoted (RFC 4180; no line breaks inside).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// `report.csv` in `out` as header and rows of fields, each row as long as the header.
fn report_csv(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = String::from_utf8(read(&out.join("report.csv"))).unwrap();
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap());
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?} vs header {header:?}");
    }
    (header, rows)
}

/// The value of column `name` in `row`.
fn col<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header.iter().position(|h| h == name).unwrap();
    &row[i]
}

fn sweep(out: &Path, arch: &str, extra: &[&str]) {
    let mut a = vec![
        "sweep",
        "--out",
        s(out),
        "--data",
        "digits",
        "--per-class",
        "20",
        "--arch",
        arch,
        "--eig-every",
        "2",
        "--lrs",
        "0.1",
        "--seeds",
        "0,1",
        "--no-plots",
        "-q",
    ];
    a.extend_from_slice(extra);
    ok(&a);
}

#[test]
fn report_averages_only_runs_of_equal_settings_and_names_each_run() {
    let d = tmp("report-groups");
    let (a, b, c, a2) = (d.join("A"), d.join("B"), d.join("C"), d.join("A2"));
    sweep(&a, "64-12-10", &["--steps", "6"]);
    sweep(&b, "64-16-10", &["--steps", "6"]);
    sweep(&c, "64-12-10", &["--steps", "8"]);
    sweep(&a2, "64-12-10", &["--steps", "6"]);
    let rep = d.join("rep");
    ok(&["report", s(&a), s(&b), s(&c), "--out", s(&rep)]);
    let md = String::from_utf8(read(&rep.join("report.md"))).unwrap();
    let svg = String::from_utf8(read(&rep.join("plots/sharpness_vs_lr.svg"))).unwrap();
    // Three groups, named by the settings in which they differ, and numbered (a legend cuts
    // long names); none mixes them.
    for g in [
        "- `#1`: gd bs=full arch=64-12-10 steps=6 (2 runs)",
        "- `#2`: gd bs=full arch=64-12-10 steps=8 (2 runs)",
        "- `#3`: gd bs=full arch=64-16-10 steps=6 (2 runs)",
    ] {
        assert!(md.contains(g), "{g} not in {md}");
    }
    for g in ["#1 gd bs=full arch=64-12-10", "#2 gd bs=", "#3 gd bs="] {
        assert!(svg.contains(g), "{g} not in the plot");
    }
    assert!(!svg.contains("#4 ") && !md.contains("`#4`"), "three groups");
    // report.csv names each run's group as the plots do.
    let (header, rows) = report_csv(&rep);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let dir = col(&header, r, "dir");
        let want = if dir.contains("/B/") {
            "#3 gd bs=full arch=64-16-10 steps=6"
        } else if dir.contains("/C/") {
            "#2 gd bs=full arch=64-12-10 steps=8"
        } else {
            "#1 gd bs=full arch=64-12-10 steps=6"
        };
        assert_eq!(col(&header, r, "group"), want, "{dir}");
    }
    assert!(
        !svg.contains("gd bs=full (mean)"),
        "runs mixed into one group"
    );
    // Every row names its sweep and run, and its settings.
    assert!(md.contains("| run | settings | opt |"), "{md}");
    for row in [
        "| A/lr=0.1_seed=0 | arch=64-12-10 steps=6 | gd | 0.1 |",
        "| B/lr=0.1_seed=0 | arch=64-16-10 steps=6 | gd | 0.1 |",
        "| C/lr=0.1_seed=1 | arch=64-12-10 steps=8 | gd | 0.1 |",
    ] {
        assert!(md.contains(row), "{row} not in {md}");
    }

    // Two sweeps of equal settings: one group (their runs are seeds of one setting), and
    // rows that still tell the sweeps apart.
    let rep2 = d.join("rep2");
    ok(&["report", s(&a), s(&a2), "--out", s(&rep2)]);
    let md = String::from_utf8(read(&rep2.join("report.md"))).unwrap();
    let svg = String::from_utf8(read(&rep2.join("plots/sharpness_vs_lr.svg"))).unwrap();
    assert!(svg.contains("gd bs=full (mean)"), "one group expected");
    assert!(!svg.contains("arch="), "nothing differs to name");
    assert!(md.contains("| A/lr=0.1_seed=0 | gd |"), "{md}");
    assert!(md.contains("| A2/lr=0.1_seed=0 | gd |"), "{md}");

    // One sweep: rows named by their run alone, as before.
    ok(&["report", s(&a)]);
    let md = String::from_utf8(read(&a.join("report.md"))).unwrap();
    assert!(md.contains("| run | opt | lr |"), "{md}");
    assert!(md.contains("| lr=0.1_seed=1 | gd | 0.1 |"), "{md}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn lr_x_sharpness_uses_the_learning_rate_of_the_last_step_and_csv_fields_are_quoted() {
    let d = tmp("report-lr");
    // A directory name with a comma and a quote: report.csv quotes it.
    let sw = d.join("sched,\"x\"");
    sweep(
        &sw,
        "64-12-10",
        &["--steps", "10", "--schedule", "step:5:0.5"],
    );
    ok(&["report", s(&sw)]);
    let (header, rows) = report_csv(&sw);
    assert_eq!(header.len(), 22);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let dir = Path::new(col(&header, r, "dir"));
        assert!(dir.starts_with(&sw), "{}", dir.display());
        let summary: serde_json::Value =
            serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap();
        let want = summary["final_values"]["lr_x_sharpness"].as_f64().unwrap() as f32;
        let sharpness = summary["final_values"]["sharpness"].as_f64().unwrap() as f32;
        let got: f32 = col(&header, r, "lr_x_sharpness").parse().unwrap();
        assert_eq!(got, want, "summary.json's value");
        assert!((got - 0.05 * sharpness).abs() <= 1e-5 * got, "lr 0.05");
    }

    // A summary.json that cannot be read: left out, saying how to rewrite it; rerunning the
    // sweep does (it is no finished run: the sweep used to skip it for good).
    let dir0 = Path::new(col(&header, &rows[0], "dir")).to_path_buf();
    let good = read(&dir0.join("summary.json"));
    std::fs::write(
        dir0.join("summary.json"),
        br#"{"steps": "10", "diverged": false}"#,
    )
    .unwrap();
    let o = ok(&["report", s(&sw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`steps` is `\"10\"`")
            && err.contains("rerunning the sweep, or `train --resume`, rewrites it")
            && err.contains("report of 1 runs (1 left out"),
        "{err}"
    );
    sweep(
        &sw,
        "64-12-10",
        &["--steps", "10", "--schedule", "step:5:0.5"],
    );
    let fixed: serde_json::Value =
        serde_json::from_slice(&read(&dir0.join("summary.json"))).unwrap();
    let good: serde_json::Value = serde_json::from_slice(&good).unwrap();
    assert_eq!(fixed["final_values"], good["final_values"]);
    assert_eq!(fixed["steps"], good["steps"]);
    let o = ok(&["report", s(&sw)]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("left out"));

    // A row repeated in the middle (an edited file): left out, as `train --resume` refuses it.
    let metrics = read(&dir0.join("metrics.csv"));
    let text = String::from_utf8(metrics.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut edited: Vec<&str> = lines[..4].to_vec();
    edited.extend_from_slice(&lines[3..lines.len() - 1]);
    std::fs::write(dir0.join("metrics.csv"), edited.join("\n") + "\n").unwrap();
    let o = ok(&["report", s(&sw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("row 4 is of step 2, not 3") && err.contains("(1 left out"),
        "{err}"
    );
    std::fs::write(dir0.join("metrics.csv"), &metrics).unwrap();

    // A metrics.csv cut short next to a complete summary.json: left out (its statistics would
    // be those of part of the run), and the sweep redoes the run, the same bits again.
    let metrics = read(&dir0.join("metrics.csv"));
    let text = String::from_utf8(metrics.clone()).unwrap();
    let cut: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir0.join("metrics.csv"), cut).unwrap();
    let o = ok(&["report", s(&sw)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("4 rows, but summary.json says the run took 10 steps")
            && err.contains("report of 1 runs (1 left out"),
        "{err}"
    );
    sweep(
        &sw,
        "64-12-10",
        &["--steps", "10", "--schedule", "step:5:0.5"],
    );
    assert_eq!(read(&dir0.join("metrics.csv")), metrics);
    let o = ok(&["report", s(&sw)]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("left out"));

    // An interrupted run: the row measured, with its own lr (0.05 at step 6).
    let cut = d.join("cut");
    let mut a = vec![
        "train",
        "--out",
        s(&cut),
        "--steps",
        "10",
        "--interrupt-after",
        "8",
        "--lr",
        "0.1",
        "--schedule",
        "step:5:0.5",
        "--eig-every",
        "2",
    ];
    a.extend_from_slice(SMALL);
    assert_eq!(run(&a).status.code(), Some(137), "the simulated kill");
    ok(&["report", s(&cut)]);
    let (header, rows) = report_csv(&cut);
    let metrics = String::from_utf8(read(&cut.join("metrics.csv"))).unwrap();
    let rows_m: Vec<Vec<&str>> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let last = rows_m.iter().rev().find(|f| !f[8].is_empty()).unwrap();
    assert_eq!((last[0], last[2]), ("6", "0.05"));
    let got: f32 = col(&header, &rows[0], "lr_x_sharpness").parse().unwrap();
    assert_eq!(got, last[9].parse::<f32>().unwrap());
    assert_eq!(col(&header, &rows[0], "finished"), "false");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn runs_that_have_only_just_started_are_incomplete_not_damaged() {
    let d = tmp("report-started");
    let base = d.join("base");
    let mut a = vec!["train", "--out", s(&base), "--steps", "2"];
    a.extend_from_slice(SMALL);
    ok(&a);
    // r1: config.toml alone (what `train` writes first); r2: metrics.csv's header too.
    let live = d.join("live");
    for r in ["r1", "r2"] {
        std::fs::create_dir_all(live.join(r)).unwrap();
        std::fs::copy(base.join("config.toml"), live.join(r).join("config.toml")).unwrap();
    }
    let metrics = String::from_utf8(read(&base.join("metrics.csv"))).unwrap();
    let header = metrics.lines().next().unwrap();
    std::fs::write(live.join("r2/metrics.csv"), format!("{header}\n")).unwrap();
    // Every run in that state: still a report (exit 0), with nothing left out.
    let o = ok(&["report", s(&live)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("left out"), "{err}");
    assert!(err.contains("report of 2 runs"), "{err}");
    let md = String::from_utf8(read(&live.join("report.md"))).unwrap();
    for r in ["r1", "r2"] {
        assert!(
            md.contains(&format!("| {r} | gd | 0.05 | full | 0 | 0 | incomplete |")),
            "{r}: {md}"
        );
    }
    assert!(!md.contains("Left out"), "{md}");
    for f in ["sharpness_vs_lr", "test_acc_vs_lr", "rotation_vs_lr"] {
        assert!(live.join(format!("plots/{f}.svg")).is_file(), "{f}");
    }
    // A finished run among them is reported as before.
    let o = ok(&["report", s(&live), s(&base), "--out", s(&d.join("rep"))]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("report of 3 runs"));
    let md = String::from_utf8(read(&d.join("rep/report.md"))).unwrap();
    assert!(
        md.contains("| base | gd | 0.05 | full | 0 | 2 | done |"),
        "{md}"
    );
    assert!(
        md.contains("| live/r1 | gd | 0.05 | full | 0 | 0 | incomplete |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(d);
}
