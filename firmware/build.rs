//! Picks the memory layout for the target and passes the linker scripts.
use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    // A real board's memory map (feature `board-<name>`, files in boards/<name>/), else QEMU's.
    let board = env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_BOARD_").map(str::to_owned))
        .map(|f| f.to_lowercase().replace('_', "-"))
        .next();
    if let Some(b) = &board {
        if arch != "arm" {
            panic!("board {b} is a Cortex-M board: build it with --target thumbv7em-none-eabihf");
        }
    }
    let board_memory = board.map(|b| format!("boards/{b}/memory.x"));
    let memory = match arch.as_str() {
        _ if board_memory.is_some() => board_memory.as_deref().unwrap(),
        "arm" => "memory/arm-mps2.x",
        "riscv32" => "memory/riscv-virt.x",
        _ => {
            // Host `cargo check` etc.: nothing to link against.
            println!("cargo:warning=edgewise-firmware: unsupported target {target}; build with --target thumbv7em-none-eabihf, thumbv7m-none-eabi or riscv32imac-unknown-none-elf");
            return;
        }
    };
    println!("cargo:rustc-env=EDGEWISE_FIRMWARE_TARGET={target}");
    fs::copy(memory, out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=build.rs");

    // Here rather than in rustflags so a RUSTFLAGS in the environment cannot drop them.
    if arch == "arm" {
        println!("cargo:rustc-link-arg-bins=--nmagic");
    }
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
