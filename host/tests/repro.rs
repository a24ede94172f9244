//! `edgewise repro` end to end at its tiny scale: the report's structure, the reuse of finished
//! runs, and byte-identical metrics between two independent reproductions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_edgewise");
const VERDICTS: [&str; 3] = ["holds", "does not hold", "inconclusive"];

fn repro(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["repro", "--scale", "tiny", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("run edgewise")
}

/// All files under `dir` whose name is `name`, relative to `dir`, sorted.
fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    fn walk(root: &Path, d: &Path, name: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, name, out);
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, name, &mut v);
    v.sort();
    v
}

/// The cells of a Markdown table row (escaped pipes stay inside their cell).
fn cells(line: &str) -> Vec<String> {
    let t = line.replace("\\|", "\u{1}");
    let t = t.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|')
        .map(|c| c.trim().replace('\u{1}', "|"))
        .collect()
}

fn check_report(out: &Path) {
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    // The verdict table: one row per claim, 1..=8, with a verdict from the allowed set.
    let table: Vec<&str> = md
        .split("## Verdicts")
        .nth(1)
        .expect("verdict section")
        .lines()
        .skip_while(|l| !l.starts_with("| #"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(table.len(), 8, "one row per claim:\n{}", table.join("\n"));
    for (i, row) in table.iter().enumerate() {
        let c = cells(row);
        assert_eq!(c.len(), 5, "{row}");
        assert_eq!(c[0], (i + 1).to_string());
        assert!(
            VERDICTS.contains(&c[3].as_str()),
            "verdict cell {:?} in {row}",
            c[3]
        );
        assert!(!c[2].is_empty());
    }
    assert!(md.contains("## Criteria"));
    for i in 1..=8 {
        assert!(md.contains(&format!("\n{i}. **")), "criterion {i} stated");
    }
    // Every linked SVG exists, and every plot written is linked.
    let mut linked = BTreeSet::new();
    for part in md.split("](").skip(1) {
        let target = part.split(')').next().unwrap_or("");
        if target.ends_with(".svg") {
            assert!(out.join(target).is_file(), "linked plot {target} exists");
            linked.insert(target.to_string());
        }
    }
    let plots: Vec<String> = std::fs::read_dir(out.join("plots"))
        .expect("plots/")
        .flatten()
        .map(|e| format!("plots/{}", e.file_name().to_string_lossy()))
        .collect();
    assert!(plots.len() >= 10, "{plots:?}");
    for p in &plots {
        assert!(linked.contains(p), "plot {p} is embedded in the report");
    }
    assert!(
        linked.iter().any(|l| l.ends_with("dashboard.svg")),
        "per-run plots are linked"
    );
    // claims.json agrees with the table.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap()).unwrap();
    let claims = j["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 8);
    for (c, row) in claims.iter().zip(&table) {
        assert_eq!(c["primary"]["verdict"].as_str().unwrap(), cells(row)[3]);
    }
    // The diagonal network's mechanism is clear even at the tiny scale.
    assert_eq!(cells(table[7])[3], "holds");
    check_whole_split(out, &md);
}

/// The `lr x S whole split` column of the first `mse-lr` table row: the mean over its seeds of
/// lr times `spectrum`'s top eigenvalue at the run's final parameters on the whole training
/// split (`--hessian-subset` larger than the split).
fn check_whole_split(out: &Path, md: &str) {
    let section = md.split("(`mse-lr/`)").nth(1).expect("mse-lr table");
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| lr |"));
    let header = cells(lines.next().expect("header"));
    let col = header
        .iter()
        .position(|c| c == "lr x S whole split")
        .expect("column");
    let row = cells(lines.nth(1).expect("first row"));
    let lr = &row[0];
    let mut got = Vec::new();
    for e in std::fs::read_dir(out.join("mse-lr")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("lr={lr}_seed=")) {
            continue;
        }
        let o = Command::new(BIN)
            .args(["spectrum", "--k", "1", "--hessian-subset", "1000000"])
            .arg(e.path().join("checkpoints/final.safetensors"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["samples"], j["train_samples"], "the whole split");
        let top = j["top"][0].as_f64().unwrap();
        got.push(top * lr.parse::<f64>().unwrap());
    }
    assert!(!got.is_empty(), "runs of lr {lr}");
    let mean = got.iter().sum::<f64>() / got.len() as f64;
    let cell = &row[col];
    assert!(
        cell.starts_with(&format!("{mean:.2}")),
        "lr {lr}: {cell} against spectrum's {got:?}"
    );
}

#[test]
fn tiny_repro_end_to_end_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = repro(&a, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_report(&a);

    let metrics = files_named(&a, "metrics.csv");
    assert_eq!(metrics.len(), 13, "{metrics:?}");
    for dir in ["mse-lr", "ce-lr", "ce-sgd", "ce-adaptive"] {
        assert!(metrics.iter().any(|m| m.starts_with(dir)), "{dir} has runs");
    }
    for m in &metrics {
        let d = a.join(m).parent().unwrap().to_path_buf();
        assert!(d.join("summary.json").is_file() && d.join("config.toml").is_file());
    }
    let traj = files_named(&a, "trajectory.csv");
    assert!(!traj.is_empty());

    // An independent reproduction on one worker: byte-identical metrics, trajectories, report.
    let o = repro(&b, &["--jobs", "1", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(files_named(&b, "metrics.csv"), metrics);
    for f in metrics
        .iter()
        .chain(&traj)
        .chain([&PathBuf::from("report.md"), &PathBuf::from("claims.json")])
    {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{} differs between two reproductions", f.display());
    }

    // A rerun reuses every finished run and regenerates the same report.
    std::fs::remove_file(a.join("report.md")).unwrap();
    let o = repro(&a, &[]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("0 runs trained, 13 reused"), "{err}");
    assert_eq!(
        std::fs::read(a.join("report.md")).unwrap(),
        std::fs::read(b.join("report.md")).unwrap()
    );

    // A run written by another build is redone, not reused.
    let run = a.join(&metrics[0]).parent().unwrap().to_path_buf();
    let spath = run.join("summary.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spath).unwrap()).unwrap();
    assert!(s["build"].as_str().is_some_and(|b| b.len() == 16));
    s["build"] = serde_json::Value::from("0000000000000000");
    std::fs::write(&spath, s.to_string()).unwrap();
    let o = repro(&a, &[]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 runs trained, 12 reused"), "{err}");
    assert_eq!(
        std::fs::read(a.join(&metrics[0])).unwrap(),
        std::fs::read(b.join(&metrics[0])).unwrap()
    );

    // So is a run of this build that resumed steps written by another build.
    let spath = a.join(&metrics[1]).parent().unwrap().join("summary.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spath).unwrap()).unwrap();
    let this = s["build"].clone();
    assert_eq!(s["builds"], serde_json::json!([this.clone()]));
    s["builds"] = serde_json::json!(["0000000000000000", this]);
    std::fs::write(&spath, s.to_string()).unwrap();
    let o = repro(&a, &[]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 runs trained, 12 reused"), "{err}");
}

#[test]
fn repro_bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let o = repro(&tmp.path().join("x"), &["--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jobs"));
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let o = repro(&file, &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(BIN)
        .args(["repro", "--full", "--scale", "tiny"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `repro` writes only into a new, empty or earlier reproduction's directory: another tool's
/// (a sweep's, with its own report.md) is refused, exit 2, and left as it was.
#[test]
fn repro_refuses_a_directory_that_is_not_a_reproduction() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    std::fs::create_dir_all(sweep.join("plots")).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{}").unwrap();
    std::fs::write(sweep.join("report.md"), "my notes").unwrap();
    let o = repro(&sweep, &["--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"sweep.json\", which is not a reproduction's"),
        "{err}"
    );
    assert_eq!(std::fs::read(sweep.join("report.md")).unwrap(), b"my notes");
    let mut left: Vec<_> = std::fs::read_dir(&sweep)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["plots", "report.md", "sweep.json"]);
}
