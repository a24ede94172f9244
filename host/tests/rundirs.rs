//! Integration tests of damaged or unusual run directories and output paths: what `sweep`,
//! `report`, `repro` and the writers of user-given paths do with them. Bad input is refused
//! before anything is written; data already written is never lost.

mod common;

use std::path::Path;

use common::{ok, read, tmp};

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
