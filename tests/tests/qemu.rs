//! The firmware against the host: builds `firmware/` with `--features conformance` for every
//! bare-metal target, runs it under QEMU, decodes its defmt output and asserts that every record
//! of every scenario equals the host's golden bit for bit.
//!
//! Environment:
//! - `EDGEWISE_SKIP_QEMU=1`: skip (prints that it did). Without it, a missing firmware
//!   toolchain or QEMU is a failure that says to run `scripts/setup-toolchain.sh`.
//! - `EDGEWISE_QEMU_TARGETS=thumbv7m,riscv32`: only these targets (default: all three).
//! - `EDGEWISE_QEMU_TIMEOUT=SECS`: QEMU timeout per target (default 300).
//!
//! The firmware is built by `xtask::firmware` (release profile, its own target directory
//! `firmware/target`, so running cargo from inside `cargo test` does not contend for this
//! workspace's build lock). A cold build takes about 30 s per target.

mod common;

use std::collections::BTreeMap;
use std::env;
use std::path::Path;
use std::time::Duration;

use common::{first_difference, read_golden, Record};
use edgewise_tests::Scenario;
use xtask::firmware::{self, Options, Target, Toolchain};

fn env_flag(name: &str) -> bool {
    env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn targets() -> Vec<Target> {
    match env::var("EDGEWISE_QEMU_TARGETS") {
        Ok(list) if !list.trim().is_empty() && list.trim() != "all" => list
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| Target::parse(s).unwrap_or_else(|e| panic!("EDGEWISE_QEMU_TARGETS: {e}")))
            .collect(),
        _ => Target::ALL.to_vec(),
    }
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|p| env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Everything the targets need that is missing (empty when all is there).
fn missing_tools(targets: &[Target]) -> Vec<String> {
    let mut missing = Vec::new();
    for &t in targets {
        if let Err(e) = Toolchain::detect(t) {
            missing.push(format!("{}: {e:#}", t.triple()));
        }
        let (qemu, _) = t.qemu();
        if !on_path(qemu) {
            missing.push(format!("{}: `{qemu}` is not on PATH", t.triple()));
        }
    }
    missing
}

/// What the firmware printed, parsed.
#[derive(Default)]
struct FirmwareTrace {
    records: BTreeMap<String, Vec<Record>>,
    ended: BTreeMap<String, u32>,
    errors: Vec<String>,
    /// `conf-summary` fields: scenarios, failed, tile, static RAM, peak stack.
    summary: Option<String>,
    bad_lines: Vec<String>,
}

fn parse_firmware(lines: &[firmware::Line]) -> FirmwareTrace {
    let mut t = FirmwareTrace::default();
    for line in lines {
        let msg = line.message.trim();
        if let Some(rest) = msg.strip_prefix("conf ") {
            let Some((name, rec)) = rest.split_once(' ') else {
                t.bad_lines.push(msg.to_string());
                continue;
            };
            match Record::parse(rec) {
                Ok(r) => t.records.entry(name.to_string()).or_default().push(r),
                Err(e) => t.bad_lines.push(format!("{msg}: {e}")),
            }
        } else if let Some(rest) = msg.strip_prefix("conf-end ") {
            let mut f = rest.split_whitespace();
            match (f.next(), f.next().and_then(|n| n.parse().ok())) {
                (Some(name), Some(n)) => {
                    t.ended.insert(name.to_string(), n);
                }
                _ => t.bad_lines.push(msg.to_string()),
            }
        } else if let Some(rest) = msg.strip_prefix("conf-error ") {
            t.errors.push(rest.to_string());
        } else if let Some(rest) = msg.strip_prefix("conf-summary ") {
            t.summary = Some(rest.to_string());
        } else if line.level == Some("error") {
            t.errors.push(msg.to_string());
        }
    }
    t
}

fn describe_summary(summary: &str) -> String {
    let f: Vec<&str> = summary.split_whitespace().collect();
    match f.as_slice() {
        [n, failed, tile, ram, stack, rest @ ..] => format!(
            "{n} scenarios, {failed} failed, tile {tile}, static RAM {ram} B, peak stack {stack} B{}",
            if rest.is_empty() { String::new() } else { format!(" {}", rest.join(" ")) }
        ),
        _ => summary.to_string(),
    }
}

/// Compares one target's output with the goldens; returns the failures.
fn check_target(
    target: Target,
    goldens: &[(Scenario, Vec<Record>)],
    timeout: Duration,
) -> Vec<String> {
    let name = target.name();
    let opts = Options {
        features: vec!["conformance".into()],
        release: true,
        timeout,
        quiet: true,
        ..Options::new(target)
    };
    let run = match firmware::build_and_run(&opts) {
        Ok(run) => run,
        Err(e) => {
            return vec![format!(
                "target {name}: building or running the firmware failed: {e:#}"
            )]
        }
    };
    eprintln!(
        "qemu: {} (built in {:.1} s with {})",
        run.describe(),
        run.built.build_time.as_secs_f64(),
        run.built.toolchain
    );
    let fw = parse_firmware(&run.lines);
    let mut failures = Vec::new();
    if !run.success() {
        let tail: Vec<String> = run
            .lines
            .iter()
            .rev()
            .take(8)
            .rev()
            .map(|l| format!("    {l}"))
            .collect();
        let stderr = run.qemu.stderr.trim();
        failures.push(format!(
            "target {name}: the firmware run failed: {}\n  last lines:\n{}{}",
            run.describe(),
            tail.join("\n"),
            if stderr.is_empty() {
                String::new()
            } else {
                format!("\n  QEMU stderr: {stderr}")
            }
        ));
    }
    for e in &fw.errors {
        failures.push(format!("target {name}: firmware reported: {e}"));
    }
    for l in &fw.bad_lines {
        failures.push(format!("target {name}: unparsable conformance line: {l}"));
    }
    for (s, golden) in goldens {
        match fw.records.get(s.name()) {
            None => failures.push(format!(
                "target {name}: scenario {}: no records in the firmware output",
                s.name()
            )),
            Some(recs) => {
                if let Some(d) = first_difference(s.name(), golden, recs, ("host golden", name)) {
                    failures.push(format!("target {name}: {d}"));
                } else if fw.ended.get(s.name()) != Some(&(recs.len() as u32)) {
                    failures.push(format!(
                        "target {name}: scenario {}: no matching conf-end line (ended: {:?})",
                        s.name(),
                        fw.ended.get(s.name())
                    ));
                }
            }
        }
    }
    for extra in fw
        .records
        .keys()
        .filter(|n| Scenario::from_name(n).is_none())
    {
        failures.push(format!(
            "target {name}: unknown scenario `{extra}` in the firmware output"
        ));
    }
    match &fw.summary {
        Some(s) => eprintln!("qemu: {name}: {}", describe_summary(s)),
        None => failures.push(format!(
            "target {name}: no conf-summary line (the run did not finish)"
        )),
    }
    if failures.is_empty() {
        eprintln!(
            "qemu: {name}: all {} scenarios bit-identical to the host goldens ({} records)",
            goldens.len(),
            goldens.iter().map(|(_, g)| g.len()).sum::<usize>()
        );
    }
    failures
}

#[test]
fn firmware_matches_the_host_goldens_on_every_target() {
    if env_flag("EDGEWISE_SKIP_QEMU") {
        eprintln!(
            "qemu: SKIPPED (EDGEWISE_SKIP_QEMU is set): the firmware was not built or compared"
        );
        return;
    }
    let targets = targets();
    let missing = missing_tools(&targets);
    let setup = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("scripts/setup-toolchain.sh");
    assert!(
        missing.is_empty(),
        "the firmware toolchain is incomplete:\n  {}\nRun `sudo scripts/setup-toolchain.sh` ({}) to \
         install it (or `rustup target add` the triples and install QEMU), or set \
         EDGEWISE_SKIP_QEMU=1 to skip this test.",
        missing.join("\n  "),
        setup.display()
    );
    let goldens: Vec<(Scenario, Vec<Record>)> = Scenario::ALL
        .iter()
        .map(|&s| {
            let g = read_golden(s).unwrap_or_else(|e| {
                panic!(
                    "scenario {}: {e} (bless the goldens first, see tests/README.md)",
                    s.name()
                )
            });
            (s, g)
        })
        .collect();
    let timeout = env::var("EDGEWISE_QEMU_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(300));
    let mut failures = Vec::new();
    for &t in &targets {
        failures.extend(check_target(t, &goldens, timeout));
    }
    assert!(
        failures.is_empty(),
        "firmware conformance failed ({} problems):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
