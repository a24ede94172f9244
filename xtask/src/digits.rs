//! `cargo xtask gen-digits`: the UCI digits subset that the firmware demo embeds in flash.
//!
//! Reads `host/data/digits.csv.gz` (1797 samples, 64 features 0..16, label last) and draws a
//! stratified subset with **the host's split rule** (`host/src/data/split.rs`, per-class mode):
//! a seeded Fisher–Yates permutation of `0..1797` (SplitMix64, `j = (next_u64() * (i + 1)) >> 64`
//! for `i` from 1796 down to 1), then walking it, the first `per_class` samples of each class go
//! to the training set and the next `test_per_class` to the test set, each set in permutation
//! order. So `edgewise train --data digits --per-class K --test-per-class T --seed S` trains on
//! exactly the samples of `gen-digits --per-class K --test-per-class T --seed S`, with the same
//! features (`byte / 16`, exact in f32).
//!
//! The output is Rust source (`firmware/src/demo/digits.rs` by default): the feature bytes and
//! labels as `static` arrays, which the firmware reads in place from flash with
//! `Features::U8 { bytes, scale: 1.0 / 16.0 }`.

use anyhow::{bail, ensure, Context, Result};
use std::{fmt::Write as _, io::Read, path::Path};

/// Features per sample (8x8 image).
pub const DIM: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub per_class: usize,
    pub test_per_class: usize,
    pub seed: u64,
}

/// The subset the committed firmware file holds.
pub const DEFAULT_SPEC: Spec = Spec {
    per_class: 20,
    test_per_class: 10,
    seed: 0,
};

/// One sample: 64 pixel counts (0..16) and its label.
pub type Sample = ([u8; DIM], u16);

/// Parses the gzip'd CSV.
pub fn read_digits(path: &Path) -> Result<Vec<Sample>> {
    let gz = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .with_context(|| format!("decompressing {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        ensure!(
            fields.len() == DIM + 1,
            "{} line {}: {} fields, expected {}",
            path.display(),
            n + 1,
            fields.len(),
            DIM + 1
        );
        let mut x = [0u8; DIM];
        for (xi, f) in x.iter_mut().zip(&fields[..DIM]) {
            let v: u8 = f
                .parse()
                .with_context(|| format!("line {}: bad pixel `{f}`", n + 1))?;
            ensure!(v <= 16, "line {}: pixel {v} outside 0..16", n + 1);
            *xi = v;
        }
        let label: u16 = fields[DIM]
            .parse()
            .with_context(|| format!("line {}: bad label", n + 1))?;
        ensure!((label as usize) < CLASSES, "line {}: label {label}", n + 1);
        out.push((x, label));
    }
    Ok(out)
}

/// SplitMix64, as in `edgewise-core` and the host's data module.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The host's seeded permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// Pool indices of the training and test sets (the host's per-class rule).
pub fn split(labels: &[u16], spec: Spec) -> Result<(Vec<usize>, Vec<usize>)> {
    ensure!(
        spec.per_class > 0 && spec.test_per_class > 0,
        "--per-class and --test-per-class must be at least 1"
    );
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut tr, mut te) = ([0usize; CLASSES], [0usize; CLASSES]);
    for i in permutation(labels.len(), spec.seed) {
        let c = labels[i] as usize;
        if tr[c] < spec.per_class {
            tr[c] += 1;
            train.push(i);
        } else if te[c] < spec.test_per_class {
            te[c] += 1;
            test.push(i);
        }
    }
    for c in 0..CLASSES {
        if tr[c] < spec.per_class || te[c] < spec.test_per_class {
            bail!(
                "class {c} has only {} samples, {} + {} asked",
                tr[c] + te[c],
                spec.per_class,
                spec.test_per_class
            );
        }
    }
    Ok((train, test))
}

/// The Rust source of the subset.
pub fn render(samples: &[Sample], spec: Spec) -> Result<String> {
    let labels: Vec<u16> = samples.iter().map(|s| s.1).collect();
    let (train, test) = split(&labels, spec)?;
    let mut s = String::new();
    let Spec {
        per_class: k,
        test_per_class: t,
        seed,
    } = spec;
    writeln!(
        s,
        "//! GENERATED by `cargo xtask gen-digits --per-class {k} --test-per-class {t} --seed {seed}`:\n\
         //! do not edit. A stratified subset of the UCI digits (host/data/digits.csv.gz, 1797\n\
         //! samples of 8x8 pixel counts 0..16; CC BY 4.0), drawn with the host's split rule, so\n\
         //! `edgewise train --data digits --per-class {k} --test-per-class {t} --seed {seed}` uses the\n\
         //! same samples in the same order. Features are read as `byte * (1/16)`.\n"
    )?;
    writeln!(s, "/// Features per sample (8x8 pixels).")?;
    writeln!(s, "pub const DIM: usize = {DIM};")?;
    writeln!(s, "/// Classes.")?;
    writeln!(s, "pub const CLASSES: usize = {CLASSES};")?;
    writeln!(s, "/// Training samples ({k} per class).")?;
    writeln!(s, "pub const N_TRAIN: usize = {};", train.len())?;
    writeln!(s, "/// Test samples ({t} per class).")?;
    writeln!(s, "pub const N_TEST: usize = {};", test.len())?;
    for (name, what, idx) in [("TRAIN", "Training", &train), ("TEST", "Test", &test)] {
        writeln!(
            s,
            "\n/// {what} features, row-major, one row of `DIM` pixel counts per sample."
        )?;
        writeln!(s, "#[rustfmt::skip]")?;
        writeln!(s, "pub static {name}_X: [u8; N_{name} * DIM] = [")?;
        for &i in idx.iter() {
            let row: Vec<String> = samples[i].0.iter().map(|v| v.to_string()).collect();
            writeln!(s, "    {}, // #{i}", row.join(","))?;
        }
        writeln!(s, "];")?;
        writeln!(s, "/// {what} labels (0..9).")?;
        writeln!(s, "#[rustfmt::skip]")?;
        writeln!(s, "pub static {name}_Y: [u16; N_{name}] = [")?;
        for chunk in idx.chunks(25) {
            let row: Vec<String> = chunk.iter().map(|&i| samples[i].1.to_string()).collect();
            writeln!(s, "    {},", row.join(","))?;
        }
        writeln!(s, "];")?;
    }
    Ok(s)
}

/// `cargo xtask gen-digits [--per-class K] [--test-per-class T] [--seed S] [--out FILE] [--check]`
pub fn cmd_gen_digits(args: &[String]) -> Result<std::process::ExitCode> {
    let root = crate::firmware::firmware_dir()
        .parent()
        .expect("repo root")
        .to_path_buf();
    let mut spec = DEFAULT_SPEC;
    let mut out = root.join("firmware/src/demo/digits.rs");
    let mut check = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--per-class" => spec.per_class = val()?.parse().context("--per-class")?,
            "--test-per-class" => {
                spec.test_per_class = val()?.parse().context("--test-per-class")?
            }
            "--seed" => spec.seed = val()?.parse().context("--seed")?,
            "--out" => out = val()?.into(),
            "--check" => check = true,
            other => bail!(
                "unexpected argument `{other}` (gen-digits [--per-class K] [--test-per-class T] \
                 [--seed S] [--out FILE] [--check])"
            ),
        }
    }
    let samples = read_digits(&root.join("host/data/digits.csv.gz"))?;
    let text = render(&samples, spec)?;
    if check {
        let have = std::fs::read_to_string(&out).unwrap_or_default();
        if have != text {
            eprintln!(
                "xtask: {} is out of date: run `cargo xtask gen-digits`",
                out.display()
            );
            return Ok(std::process::ExitCode::FAILURE);
        }
        eprintln!("xtask: {} is up to date", out.display());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "xtask: wrote {} ({} + {} samples)",
        out.display(),
        spec.per_class * CLASSES,
        spec.test_per_class * CLASSES
    );
    Ok(std::process::ExitCode::SUCCESS)
}
