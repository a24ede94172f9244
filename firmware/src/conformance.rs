//! CONFORMANCE MODE (`--features conformance`): runs every named scenario of `edgewise-tests`
//! (defined once in `../tests/src`, shared with the host tests) and prints each record as one
//! defmt line, which the host test (`tests/tests/qemu.rs`) parses and compares bit for bit with
//! the host's golden traces:
//!
//! ```text
//! conf <scenario> <step> <loss_bits> <sharpness_bits> <param_hash>    e.g.
//! conf gd_stable 10 3e377b53 3ff851a5 f25384c21e162e59
//! conf-end <scenario> <records>            after a scenario that ran to the end
//! conf-error <scenario> <error>            a scenario failed (the run then exits with failure)
//! conf-summary <scenarios> <failed> <tile> <static RAM bytes> <peak stack bytes>
//! ```
//!
//! Bits are hex (8 digits for f32, 16 for the FNV-1a 64 hash); `sharpness_bits` is `ffffffff`
//! at steps without a measurement. The objective is core's `MlpObjective` over a stack
//! workspace in tiles of [`TILE`] samples (the host checks other tilings and thread counts).

use edgewise_tests::{workspace_len, CoreEvaluator, Scenario, Sink};

use crate::platform::stack;

/// Samples per tile (a size the host tests do not use, on purpose).
pub const TILE: usize = 4;

/// Prints records as `conf ...` lines.
struct DefmtSink;

impl Sink for DefmtSink {
    fn record(&mut self, scenario: &str, step: u32, loss: u32, sharpness: u32, hash: u64) {
        defmt::println!(
            "conf {=str} {=u32} {=u32:08x} {=u32:08x} {=u64:016x}",
            scenario,
            step,
            loss,
            sharpness,
            hash
        );
    }
}

/// Runs every scenario; `true` if all ran (the bit comparison itself happens on the host).
pub fn run() -> bool {
    stack::paint();
    let failed = run_all();
    let used = stack::high_water();
    defmt::println!(
        "conf-summary {=usize} {=u32} {=usize} {=usize} {=usize}{=str}",
        Scenario::ALL.len(),
        failed,
        TILE,
        stack::static_ram(),
        used.peak,
        if used.saturated { " (saturated)" } else { "" }
    );
    failed == 0
}

/// Runs the scenarios one after another; returns how many failed. Kept out of line so that
/// its frame (with the tile workspace) is below the painted stack's top and gets measured.
#[inline(never)]
fn run_all() -> u32 {
    let mut ws = [0.0f32; workspace_len(TILE)];
    let mut eval = match CoreEvaluator::new(&mut ws, TILE) {
        Ok(e) => e,
        Err(e) => {
            defmt::error!("conf-error workspace {}", defmt::Display2Format(&e));
            return Scenario::ALL.len() as u32;
        }
    };
    let mut failed = 0;
    for s in Scenario::ALL {
        match s.run(&mut eval, &mut DefmtSink) {
            Ok(n) => defmt::println!("conf-end {=str} {=u32}", s.name(), n),
            Err(e) => {
                defmt::println!("conf-error {=str} {}", s.name(), defmt::Display2Format(&e));
                failed += 1;
            }
        }
    }
    failed
}
