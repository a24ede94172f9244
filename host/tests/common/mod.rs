//! Helpers shared by the integration tests that run the `edgewise` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgewise"))
}

/// A fresh, empty directory for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgewise-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run(args: &[&str]) -> Output {
    exe().args(args).output().expect("run edgewise")
}

/// Runs `edgewise ARGS`, which must succeed.
pub fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "edgewise {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}

/// Bad input: exit code 2, an error naming `needle`, no panic. Returns the standard error.
pub fn bad(args: &[&str], needle: &str) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "edgewise {args:?}: expected exit 2, got {:?}; stderr: {err}",
        o.status.code()
    );
    assert!(
        err.contains(needle),
        "edgewise {args:?}: stderr does not mention {needle:?}: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "panic: {err}"
    );
    err
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A small, fast training setting (digits, 20 per class, 64-12-10), quiet.
pub const SMALL: &[&str] = &[
    "--data",
    "digits",
    "--per-class",
    "20",
    "--arch",
    "64-12-10",
    "--quiet",
];

/// `edgewise train --out OUT SMALL EXTRA`, which must succeed.
pub fn train(out: &Path, extra: &[&str]) -> Output {
    let mut a: Vec<&str> = vec!["train", "--out", out.to_str().unwrap()];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(extra);
    ok(&a)
}

/// A path as the `&str` an argument list takes.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A classification data set of `n` rows, 4 features and 3 classes, as a csv file.
pub fn write_csv(path: &Path, n: usize) -> Vec<String> {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let f = |k: usize| ((i * 7 + k * 13) % 17) as f32 / 8.0 - 1.0;
            format!("{},{},{},{},{}", f(0), f(1), f(2), f(3), i % 3)
        })
        .collect();
    std::fs::write(path, rows.join("\n") + "\n").unwrap();
    rows
}
