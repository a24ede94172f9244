//! The default program. PLACEHOLDER: logs a few lines and a libm result as raw bits; the
//! edge-of-stability demo built on edgewise-core goes here (and in sibling modules).

use core::hint::black_box;

/// Runs the demo; `true` means success (QEMU exits 0).
pub fn run() -> bool {
    defmt::info!("demo: placeholder program");

    // black_box keeps LLVM from folding the math at compile time, so the target's own float
    // code (hardware FPU on the M4F, soft float on the M3 and RV32) computes these bits.
    let x = black_box(0.5f32);
    let t = libm::tanhf(x);
    defmt::println!("tanhf(0.5) = {=u32:08x}", t.to_bits());

    // A short recurrence mixing libm and plain f32 arithmetic; every target must print the
    // same bits as the host.
    let mut z = black_box(0.25f32);
    let mut acc = 0.0f32;
    for _ in 0..16 {
        let y = libm::tanhf(z);
        acc = acc * 0.5 + y * y;
        z = z * 1.5 - 0.3;
    }
    defmt::println!("demo checksum = {=u32:08x}", acc.to_bits());
    true
}
