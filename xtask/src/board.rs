//! `cargo xtask firmware-board`: builds the firmware's real-board profile (it cannot run here)
//! and checks that the image fits the board's memory.
//!
//! A board is a cargo feature of the firmware (`board-<name>`) that swaps QEMU's memory map for
//! the board's (`firmware/boards/<name>/memory.x`) and the semihosting log transport for RTT
//! (`defmt-rtt`). `firmware/boards/<name>/config.toml` sets the probe-rs runner, so
//! `cargo run --release --features board-<name> --config boards/<name>/config.toml` inside
//! `firmware/` flashes and runs it on a connected board (see firmware/README.md).

use crate::firmware::{self, Options, Target};
use anyhow::{bail, Context, Result};
use std::process::ExitCode;

/// A board the firmware has a profile for.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// `--board` name; the cargo feature is `board-<name>`, the files are in `firmware/boards/<name>/`.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// probe-rs `--chip` name.
    pub chip: &'static str,
    pub target: Target,
    /// Flash and RAM sizes (bytes), as in its memory.x.
    pub flash: u64,
    pub ram: u64,
}

/// The boards with a profile.
pub const BOARDS: [Board; 1] = [Board {
    name: "blackpill-f401",
    description:
        "WeAct \"Black Pill\" STM32F401CCU6 (Cortex-M4F, up to 84 MHz (run at its 16 MHz reset clock), 256 KiB flash, 64 KiB SRAM)",
    chip: "STM32F401CCUx",
    target: Target::Thumbv7em,
    flash: 256 * 1024,
    ram: 64 * 1024,
}];

/// `cargo xtask firmware-board [--board NAME] [--dev]`
pub fn cmd_firmware_board(args: &[String]) -> Result<ExitCode> {
    let mut board = BOARDS[0];
    let mut release = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--board" => {
                let name = it.next().context("--board needs a name")?;
                board = *BOARDS
                    .iter()
                    .find(|b| b.name == name.as_str())
                    .with_context(|| {
                        let names: Vec<_> = BOARDS.iter().map(|b| b.name).collect();
                        format!("unknown board `{name}` (known: {})", names.join(", "))
                    })?;
            }
            "--dev" => release = false,
            "--release" => release = true,
            other => bail!("unexpected argument `{other}` (firmware-board [--board NAME] [--dev])"),
        }
    }
    let opts = Options {
        features: vec![format!("board-{}", board.name)],
        release,
        ..Options::new(board.target)
    };
    // Its own target directory: the board ELF must not replace the QEMU one.
    let dir = firmware::firmware_target_dir()
        .join("board")
        .join(board.name);
    let built = firmware::build_in(&opts, &dir)?;
    let r = firmware::size_report(&std::fs::read(&built.elf)?)?;
    println!("{}: {}", board.name, board.description);
    println!("  elf: {}", built.elf.display());
    println!(
        "  flash {} B of {} ({:.1}%), static RAM {} B of {} ({:.1}%; the stack takes the rest)",
        r.flash(),
        board.flash,
        100.0 * r.flash() as f64 / board.flash as f64,
        r.ram(),
        board.ram,
        100.0 * r.ram() as f64 / board.ram as f64
    );
    println!(
        "  flash and run it (board on a debug probe, in firmware/):\n    \
         cargo run --release --features board-{n} --config boards/{n}/config.toml\n  \
         or: probe-rs run --chip {chip} {elf}",
        n = board.name,
        chip = board.chip,
        elf = built.elf.display()
    );
    if r.flash() > board.flash || r.ram() > board.ram {
        bail!("the image does not fit {}", board.name);
    }
    Ok(ExitCode::SUCCESS)
}
