//! `cargo xtask test`: the project's whole test suite, as CI runs it (`.ci/run`).
//!
//! 1. Makes sure the firmware toolchain is there: an installed rustup target, or Debian's Rust
//!    with the standard library's source, plus `ld.lld` and QEMU. When something is missing and
//!    the user is root it runs `scripts/setup-toolchain.sh`; otherwise it says what to run.
//! 2. Builds `edgewise-core` for `thumbv7em-none-eabihf` (which proves it is `no_std`).
//! 3. Runs `cargo test --workspace` (unit, integration, doc tests, the conformance goldens, and
//!    the QEMU conformance tests on every target).
//! 4. Runs the firmware demo under QEMU on every target and checks its log (`xtask demo`'s
//!    checks: exit status, the in-firmware checks, the summary), and that the embedded digits
//!    subset is up to date with its generator.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::firmware::{self, Options, Target, Toolchain};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn toolchain_ready() -> bool {
    have("qemu-system-arm")
        && have("qemu-system-riscv32")
        && Target::ALL.iter().all(|&t| Toolchain::detect(t).is_ok())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Step 1.
pub fn ensure_toolchain(install: bool) -> Result<()> {
    if toolchain_ready() {
        return Ok(());
    }
    let script = root().join("scripts/setup-toolchain.sh");
    if !install {
        bail!(
            "the firmware toolchain or QEMU is missing; run `sudo {}`",
            script.display()
        );
    }
    if !is_root() {
        bail!("the firmware toolchain or QEMU is missing and installing it needs root: run `sudo {}` once", script.display());
    }
    eprintln!(
        "xtask test: installing the firmware toolchain and QEMU ({})",
        script.display()
    );
    let st = Command::new("bash")
        .arg(&script)
        .status()
        .context("running setup-toolchain.sh")?;
    if !st.success() || !toolchain_ready() {
        bail!(
            "{} did not leave a working firmware toolchain",
            script.display()
        );
    }
    Ok(())
}

/// Step 2: `cargo build -p edgewise-core --target thumbv7em-none-eabihf`.
pub fn build_core_no_std() -> Result<()> {
    let t = Target::Thumbv7em;
    let tc = Toolchain::detect(t)?;
    let target_dir = root().join("target/no_std");
    let mut cmd = match &tc {
        Toolchain::Installed => {
            let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            c.args([
                "build",
                "--release",
                "-p",
                "edgewise-core",
                "--target",
                t.triple(),
            ]);
            c
        }
        Toolchain::BuildStd { cargo, rustc } => {
            let mut c = Command::new(cargo);
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![rustc
                .parent()
                .unwrap_or(Path::new("/usr/bin"))
                .to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            c.env("PATH", std::env::join_paths(dirs).unwrap_or(path))
                .env("RUSTC", rustc)
                .env("RUSTC_BOOTSTRAP", "1")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .args([
                    "build",
                    "--release",
                    "-p",
                    "edgewise-core",
                    "--target",
                    t.triple(),
                    "-Z",
                    "build-std=core",
                ]);
            c
        }
    };
    cmd.current_dir(root()).env("CARGO_TARGET_DIR", &target_dir);
    eprintln!(
        "xtask test: building edgewise-core for {} ({tc})",
        t.triple()
    );
    let st = cmd.status().context("running cargo for the no_std build")?;
    if !st.success() {
        bail!("edgewise-core does not build for {}", t.triple());
    }
    Ok(())
}

/// `cargo xtask test [--no-install] [--host-only]`.
pub fn cmd_test(args: &[String]) -> Result<ExitCode> {
    let install = !args.iter().any(|a| a == "--no-install");
    let host_only = args.iter().any(|a| a == "--host-only");
    if let Some(bad) = args
        .iter()
        .find(|a| *a != "--no-install" && *a != "--host-only")
    {
        bail!("cargo xtask test: unknown flag {bad} (flags: --no-install, --host-only)");
    }
    let started = Instant::now();
    let mut failed: Vec<String> = Vec::new();
    let mut passed = 0usize;
    let mut step = |name: &str, r: Result<()>| match r {
        Ok(()) => {
            passed += 1;
            eprintln!("xtask test: ok: {name}");
        }
        Err(e) => {
            eprintln!("xtask test: FAILED: {name}: {e:#}");
            failed.push(name.to_string());
        }
    };
    if !host_only {
        let r = ensure_toolchain(install);
        let ready = r.is_ok();
        step("firmware toolchain", r);
        if ready {
            step(
                "edgewise-core builds for thumbv7em-none-eabihf (no_std)",
                build_core_no_std(),
            );
        }
    }
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(root()).args(["test", "--workspace"]);
    if host_only {
        cargo.env("EDGEWISE_SKIP_QEMU", "1");
    }
    let st = cargo.status().context("running cargo test")?;
    step(
        "cargo test --workspace",
        if st.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("exit {:?}", st.code()))
        },
    );
    // The API documentation of the two library crates: no broken or private links.
    let mut doc = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    doc.current_dir(root())
        .args([
            "doc",
            "--no-deps",
            "-q",
            "-p",
            "edgewise-core",
            "-p",
            "edgewise",
        ])
        .env("RUSTDOCFLAGS", "-D warnings");
    let st = doc.status().context("running cargo doc")?;
    step(
        "API documentation builds without warnings (cargo doc)",
        if st.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("exit {:?}", st.code()))
        },
    );
    if !host_only {
        let r = crate::digits::cmd_gen_digits(&["--check".to_string()]).and_then(|c| {
            if c == ExitCode::SUCCESS {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "firmware/src/demo/digits.rs is stale: run `cargo xtask gen-digits`"
                ))
            }
        });
        step("embedded digits subset is up to date", r);
        for t in Target::ALL {
            let r = firmware::build_and_run(&Options {
                release: true,
                timeout: Duration::from_secs(300),
                quiet: true,
                ..Options::new(t)
            })
            .and_then(|run| crate::demo::verify(&run).map(|_| ()));
            step(&format!("firmware demo on {} under QEMU", t.name()), r);
        }
    }
    eprintln!(
        "xtask test: finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!("xtask: {} passed, {} failed", passed, failed.len());
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
