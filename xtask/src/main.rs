//! `cargo xtask` — project automation.
//!
//! ```text
//! cargo xtask test [--no-install] [--host-only]
//!     The whole test suite, as CI runs it: installs the firmware toolchain and QEMU if missing
//!     (as root), builds edgewise-core for thumbv7em-none-eabihf, runs `cargo test --workspace`
//!     (including the QEMU conformance tests), checks that the API documentation builds without
//!     warnings, and runs the firmware demo on every target.
//!
//! cargo xtask firmware [--target thumbv7em|thumbv7m|riscv32|all] [--features F[,G]] [--release]
//!                      [--timeout SECS] [--locations] [--quiet]
//!     Build the firmware, run it under QEMU, decode its defmt output to stdout (one line per
//!     frame: `LEVEL message`, or just `message` for defmt::println!). Build progress and a
//!     summary go to stderr; the raw frames are saved next to the ELF (`.defmt`). Exits non-zero
//!     if the build fails, QEMU exits non-zero, times out (default 120 s) or a frame is malformed.
//!     `--target all` runs the three targets one after another. Default target: thumbv7em.
//!
//! cargo xtask firmware-size [--target ...|all] [--features F] [--dev]
//!     Build (release unless --dev) and print .text/.data/.bss sizes of the firmware ELF.
//!
//! cargo xtask defmt-decode --elf ELF [RAW_FILE]
//!     Decode a raw defmt stream (file, or stdin), e.g.
//!     `(cd firmware && cargo run --release) | cargo xtask defmt-decode --elf firmware/target/thumbv7em-none-eabihf/release/edgewise-firmware`
//!
//! cargo xtask demo [--target thumbv7em|thumbv7m|riscv32|all] [--timeout SECS] [--quiet]
//!     Run the firmware demo (release) under QEMU on the targets (default all) and check its
//!     log: every in-firmware check ok, RAM within 64 KiB, flash within 256 KiB, and the same
//!     final parameters on targets that run the same version of the demo. Prints a size table.
//!
//! cargo xtask gen-digits [--per-class K] [--test-per-class T] [--seed S] [--out FILE] [--check]
//!     Write the UCI digits subset the firmware demo embeds (default 20 + 10 per class, seed 0,
//!     into firmware/src/demo/digits.rs) with the host's split rule; `--check` only verifies
//!     that the file is up to date (exit 1 if not).
//!
//! cargo xtask firmware-board [--board blackpill-f401] [--dev]
//!     Build the real-board profile (defmt over RTT, no QEMU) and print its size; flash it with
//!     `probe-rs run --chip ...` (see firmware/README.md).
//! ```
//!
//! Tests can either use the library (`xtask::firmware::build_and_run`) or run
//! `cargo xtask firmware --target T --features conformance --release --quiet` and parse stdout.

use anyhow::{bail, Context, Result};
use std::{io::Read, path::PathBuf, process::ExitCode, time::Duration};
use xtask::firmware::{self, Options, SectionClass, Target};

const USAGE: &str = "usage:
  cargo xtask test [--no-install] [--host-only]
  cargo xtask firmware [--target thumbv7em|thumbv7m|riscv32|all] [--features F] [--release] [--timeout SECS] [--locations] [--quiet]
  cargo xtask firmware-size [--target thumbv7em|thumbv7m|riscv32|all] [--features F] [--dev]
  cargo xtask defmt-decode --elf ELF [RAW_FILE]
  cargo xtask demo [--target thumbv7em|thumbv7m|riscv32|all] [--timeout SECS] [--quiet]
  cargo xtask gen-digits [--per-class K] [--test-per-class T] [--seed S] [--out FILE] [--check]
  cargo xtask firmware-board [--board blackpill-f401] [--dev]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    match cmd.as_str() {
        "test" => xtask::ci::cmd_test(rest),
        "firmware" => cmd_firmware(rest),
        "firmware-size" => cmd_size(rest),
        "defmt-decode" => cmd_decode(rest),
        "demo" => xtask::demo::cmd_demo(rest),
        "gen-digits" => xtask::digits::cmd_gen_digits(rest),
        "firmware-board" => xtask::board::cmd_firmware_board(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// Parsed flags shared by the firmware commands.
struct Flags {
    targets: Vec<Target>,
    features: Vec<String>,
    release: Option<bool>,
    timeout: Duration,
    locations: bool,
    quiet: bool,
}

fn parse_flags(args: &[String], allow: &[&str]) -> Result<Flags> {
    let mut f = Flags {
        targets: vec![Target::Thumbv7em],
        features: Vec::new(),
        release: None,
        timeout: firmware::DEFAULT_TIMEOUT,
        locations: false,
        quiet: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !allow.contains(&flag) {
            bail!("unexpected argument `{arg}`\n{USAGE}");
        }
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--target" => {
                let v = value()?;
                f.targets = if v == "all" {
                    Target::ALL.to_vec()
                } else {
                    vec![Target::parse(&v)?]
                };
            }
            "--features" => f.features.extend(
                value()?
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            "--release" => f.release = Some(true),
            "--dev" => f.release = Some(false),
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .with_context(|| format!("--timeout {v}: not a number of seconds"))?;
                f.timeout = Duration::from_secs_f64(secs);
            }
            "--locations" => f.locations = true,
            "--quiet" | "-q" => f.quiet = true,
            _ => unreachable!(),
        }
    }
    Ok(f)
}

fn cmd_firmware(args: &[String]) -> Result<ExitCode> {
    let f = parse_flags(
        args,
        &[
            "--target",
            "--features",
            "--release",
            "--timeout",
            "--locations",
            "--quiet",
            "-q",
        ],
    )?;
    let mut failed = false;
    for &target in &f.targets {
        let opts = Options {
            target,
            features: f.features.clone(),
            release: f.release.unwrap_or(false),
            timeout: f.timeout,
            quiet: f.quiet,
        };
        let built = firmware::build(&opts)?;
        if !f.quiet {
            eprintln!(
                "xtask: built {} ({}) in {:.1} s: {}",
                target,
                built.toolchain,
                built.build_time.as_secs_f64(),
                built.elf.display()
            );
        }
        let run = firmware::run_built(built, opts.timeout)?;
        if f.targets.len() > 1 {
            println!("=== {}", target.name());
        }
        for line in &run.lines {
            match (&line.location, f.locations) {
                (Some(loc), true) => println!("{line}  ({loc})"),
                _ => println!("{line}"),
            }
        }
        if !run.qemu.stderr.trim().is_empty() {
            eprintln!("xtask: QEMU stderr:\n{}", run.qemu.stderr.trim_end());
        }
        if !run.success() || !f.quiet {
            eprintln!("xtask: {}", run.describe());
        }
        if !run.success() {
            failed = true;
            if f.targets.len() == 1 {
                // Pass QEMU's status through (124 on timeout, like timeout(1)).
                let code = match (run.qemu.timed_out, run.qemu.exit_code) {
                    (true, _) => 124,
                    (false, Some(c)) if c != 0 => c.clamp(1, 255) as u8,
                    _ => 1,
                };
                return Ok(ExitCode::from(code));
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_size(args: &[String]) -> Result<ExitCode> {
    let f = parse_flags(
        args,
        &[
            "--target",
            "--features",
            "--release",
            "--dev",
            "--quiet",
            "-q",
        ],
    )?;
    for &target in &f.targets {
        let opts = Options {
            target,
            features: f.features.clone(),
            release: f.release.unwrap_or(true),
            timeout: f.timeout,
            quiet: true,
        };
        let built = firmware::build(&opts)?;
        let elf = std::fs::read(&built.elf)?;
        let r = firmware::size_report(&elf)?;
        let profile = if opts.release { "release" } else { "dev" };
        let feats = if f.features.is_empty() {
            String::new()
        } else {
            format!(", features {}", f.features.join(","))
        };
        println!("{} ({profile}{feats}): {}", target, built.elf.display());
        println!("  {:<20} {:>10} {:>10}  kind", "section", "address", "size");
        for (name, addr, size, class) in &r.sections {
            let kind = match class {
                SectionClass::Text => "text",
                SectionClass::Data => "data",
                SectionClass::Bss => "bss",
                SectionClass::Reserved => "reserved (not counted)",
            };
            println!("  {name:<20} {addr:#010x} {size:>10}  {kind}");
        }
        println!(
            "  text {}  data {}  bss {}  => flash {} B, static RAM {} B{}",
            r.text,
            r.data,
            r.bss,
            r.flash(),
            r.ram(),
            if r.reserved > 0 {
                format!(" (+ {} B stack/heap reserved)", r.reserved)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_decode(args: &[String]) -> Result<ExitCode> {
    let mut elf: Option<PathBuf> = None;
    let mut input: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--elf" => elf = Some(it.next().context("--elf needs a path")?.into()),
            s if s.starts_with("--elf=") => elf = Some(s["--elf=".len()..].into()),
            s if !s.starts_with('-') && input.is_none() => input = Some(s.into()),
            s => bail!("unexpected argument `{s}`\n{USAGE}"),
        }
    }
    let elf = elf.context("--elf ELF is required")?;
    let elf_bytes = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let raw = match &input {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
    };
    let decoded = firmware::decode(&elf_bytes, &raw)?;
    for line in &decoded.lines {
        println!("{line}");
    }
    if decoded.malformed > 0 {
        eprintln!("xtask: {} malformed frames", decoded.malformed);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
