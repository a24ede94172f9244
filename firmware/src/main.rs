//! edgewise firmware: runs edgewise-core on bare-metal Cortex-M and RISC-V (under QEMU for now).
//!
//! Layout:
//! * `platform/` — everything target-specific: reset entry, exit status, fault handlers.
//!   Each platform's entry point calls [`app`], which never returns.
//! * `demo/` — the default program: edge-of-stability training with curvature tracking
//!   (see README.md).
//! * `conformance.rs` — built with `--features conformance`: runs named scenarios and prints
//!   per-step bit patterns for the host to compare.
//!
//! All output is defmt over semihosting (`defmt-semihosting`): QEMU's stdout carries the raw
//! frames and `cargo xtask firmware` decodes them with this ELF. The run ends with a semihosting
//! exit, so QEMU's exit status is the firmware's verdict (0 = pass).
#![no_std]
#![no_main]

#[cfg(feature = "conformance")]
mod conformance;
#[cfg(not(feature = "conformance"))]
mod demo;
mod platform;

// The global defmt logger (semihosting stdout).
#[cfg(not(feature = "rtt"))]
use defmt_semihosting as _;
// On a real board (feature `rtt`, set by the `board-*` features): RTT, read by the debug probe.
#[cfg(feature = "rtt")]
use defmt_rtt as _;
// The math under test. Linked in now so that the firmware build keeps compiling it for the
// bare-metal targets; the demo and the conformance scenarios will call into it.
use edgewise_core as _;

/// Target triple this image was built for.
pub const TARGET: &str = env!("EDGEWISE_FIRMWARE_TARGET");

/// What the image runs: the default demo or the conformance scenarios.
pub const MODE: &str = if cfg!(feature = "conformance") {
    "conformance"
} else {
    "demo"
};

/// The program, called by the platform's entry point once the runtime is up.
fn app() -> ! {
    defmt::println!(
        "edgewise firmware up: target={=str} mode={=str}",
        TARGET,
        MODE
    );
    #[cfg(feature = "conformance")]
    let ok = conformance::run();
    #[cfg(not(feature = "conformance"))]
    let ok = demo::run();
    if ok {
        defmt::println!("edgewise firmware done: ok");
    } else {
        defmt::println!("edgewise firmware done: FAILED");
    }
    platform::exit(ok)
}
