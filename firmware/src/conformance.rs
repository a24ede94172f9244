//! ===========================================================================================
//! CONFORMANCE MODE (`--features conformance`) — STUB, scenarios to be added.
//! ===========================================================================================
//!
//! Here go named scenarios that run a fixed computation with edgewise-core (same inputs, seeds
//! and step counts as the host-side conformance test) and print the bit pattern of every value
//! that must agree across platforms, step by step. Use [`bits`] so that every line has one
//! format the host can parse:
//!
//! ```text
//! conf <scenario> <step> <label> <hex bits>      e.g.  conf gd_tanh_2x4x2 3 loss 3e8a1c2f
//! ```
//!
//! Return `false` from [`run`] (or panic) to make QEMU exit non-zero.

/// Runs every scenario; `true` if all ran (the bit comparison itself happens on the host).
pub fn run() -> bool {
    defmt::println!("conformance: no scenarios yet");
    true
}

/// Prints one value of one step of a scenario as `conf <scenario> <step> <label> <bits>`.
#[allow(dead_code)]
pub fn bits(scenario: &str, step: u32, label: &str, value: f32) {
    defmt::println!(
        "conf {=str} {=u32} {=str} {=u32:08x}",
        scenario,
        step,
        label,
        value.to_bits()
    );
}
