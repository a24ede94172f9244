//! `cargo xtask demo`: runs the firmware demo under QEMU and checks its output, for CI.
//!
//! The firmware checks its own results (a failed check panics, so QEMU exits non-zero); this
//! also checks, from the decoded log, that every check line reported `ok`, that the memory line
//! is within the budget, and that targets running the same version of the demo (the soft-float
//! ones run a shorter one) end with bit-identical parameters (the hashes in the summary).

use crate::firmware::{self, FirmwareRun, Options, Target};
use anyhow::{bail, ensure, Context, Result};
use std::{process::ExitCode, time::Duration};

/// Checks the demo makes (`check ok: ...` lines).
pub const CHECKS: usize = 10;
/// RAM budget: static data plus peak stack.
pub const RAM_BUDGET: u64 = 64 * 1024;
/// Flash budget.
pub const FLASH_BUDGET: u64 = 256 * 1024;

/// What a demo run reported.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// `full` (hardware float) or `short` (soft float).
    pub version: String,
    /// (run name, FNV-1a of its final parameters).
    pub hashes: Vec<(String, String)>,
    pub static_ram: u64,
    pub peak_stack: u64,
}

/// Checks a decoded demo run.
pub fn verify(run: &FirmwareRun) -> Result<DemoReport> {
    ensure!(run.success(), "{}", run.describe());
    let lines: Vec<&str> = run.lines.iter().map(|l| l.message.as_str()).collect();
    if let Some(bad) = lines.iter().find(|l| l.starts_with("check FAILED")) {
        bail!("{bad}");
    }
    let ok = lines.iter().filter(|l| l.starts_with("check ok:")).count();
    ensure!(ok == CHECKS, "{ok} `check ok` lines, expected {CHECKS}");
    let version = lines
        .iter()
        .find_map(|l| l.strip_prefix("demo ("))
        .and_then(|l| l.split([')', ':']).next())
        .context("no `demo (...)` banner")?
        .to_string();
    let mut hashes = Vec::new();
    for name in ["gd-stable", "gd-eos", "adam-clip"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{name}: S ")))
            .with_context(|| format!("no summary line for {name}"))?;
        let hash = line
            .rsplit_once("params #")
            .map(|(_, h)| h.trim().to_string())
            .with_context(|| format!("no parameter hash in `{line}`"))?;
        hashes.push((name.to_string(), hash));
    }
    let mem = lines
        .iter()
        .find_map(|l| l.strip_prefix("memory: static RAM "))
        .context("no memory line")?;
    let nums: Vec<u64> = mem
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    ensure!(nums.len() >= 2, "cannot read the memory line `{mem}`");
    let (static_ram, peak_stack) = (nums[0], nums[1]);
    ensure!(
        !mem.contains("or more") && static_ram + peak_stack <= RAM_BUDGET,
        "RAM over budget: {mem}"
    );
    Ok(DemoReport {
        version,
        hashes,
        static_ram,
        peak_stack,
    })
}

/// `cargo xtask demo [--target T|all] [--timeout SECS] [--quiet]`
pub fn cmd_demo(args: &[String]) -> Result<ExitCode> {
    let mut targets = Target::ALL.to_vec();
    let mut timeout = Duration::from_secs(300);
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => {
                let v = it.next().context("--target needs a value")?;
                targets = if v == "all" {
                    Target::ALL.to_vec()
                } else {
                    vec![Target::parse(v)?]
                };
            }
            "--timeout" => {
                let v = it.next().context("--timeout needs a value")?;
                timeout = Duration::from_secs_f64(v.parse().context("--timeout")?);
            }
            "--quiet" | "-q" => quiet = true,
            other => bail!(
                "unexpected argument `{other}` (demo [--target T|all] [--timeout SECS] [--quiet])"
            ),
        }
    }
    let mut table = Vec::new();
    let mut failed = false;
    for &t in &targets {
        let opts = Options {
            release: true,
            timeout,
            quiet,
            ..Options::new(t)
        };
        let run = firmware::build_and_run(&opts)?;
        if !quiet {
            println!("=== demo on {}", t.name());
            for l in &run.lines {
                println!("{l}");
            }
        }
        let size = firmware::size_report(&std::fs::read(&run.built.elf)?)?;
        match verify(&run) {
            Ok(r) => {
                let flash_ok = size.flash() <= FLASH_BUDGET;
                if !flash_ok {
                    failed = true;
                    eprintln!("xtask demo: {t}: flash {} B over budget", size.flash());
                }
                table.push((t, r, size.flash(), run.qemu.elapsed));
            }
            Err(e) => {
                failed = true;
                eprintln!("xtask demo: {t}: FAILED: {e:#}");
            }
        }
    }
    eprintln!(
        "xtask demo: {:<10} {:<6} {:>9} {:>10} {:>11} {:>9} {:>8}  params (gd-stable gd-eos adam-clip)",
        "target", "demo", "flash B", "static B", "peak stack", "RAM B", "QEMU s"
    );
    for (t, r, flash, secs) in &table {
        let hashes: Vec<&str> = r.hashes.iter().map(|(_, h)| h.as_str()).collect();
        eprintln!(
            "xtask demo: {:<10} {:<6} {:>9} {:>10} {:>11} {:>9} {:>8.1}  {}",
            t.name(),
            r.version,
            flash,
            r.static_ram,
            r.peak_stack,
            r.static_ram + r.peak_stack,
            secs.as_secs_f64(),
            hashes.join(" ")
        );
    }
    // Same version of the demo => the same bits on every target.
    for (i, (ta, a, ..)) in table.iter().enumerate() {
        for (tb, b, ..) in &table[i + 1..] {
            if a.version == b.version && a.hashes != b.hashes {
                failed = true;
                eprintln!(
                    "xtask demo: {ta} and {tb} ran the same demo but ended with different parameters: {:?} vs {:?}",
                    a.hashes, b.hashes
                );
            }
        }
    }
    if failed {
        eprintln!("xtask demo: FAILED");
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("xtask demo: ok ({} target(s))", table.len());
    Ok(ExitCode::SUCCESS)
}
