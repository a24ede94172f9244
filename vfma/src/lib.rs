//! The single-precision fused multiply-add instruction of the Arm FPv4-SP and later FPUs
//! (`vfma.f32`: Cortex-M4F, M7, M33) as one safe function, [`fmaf`], for `edgewise-core`'s
//! `arm-vfma` feature.
//!
//! Why a crate of its own: `edgewise-core` forbids `unsafe` code, and stable Rust has no safe
//! way to reach the instruction from `no_std` code (`f32::mul_add` is not in `core`; an inline
//! `asm!` block with the single-precision register class is rejected on
//! `thumbv7em-none-eabihf` before Rust 1.97 because rustc does not report the `vfp2` feature that
//! the FPU implies, and enabling `vfp2` would also allow double-precision instructions that the
//! Cortex-M4F lacks). So the instruction is a three-instruction leaf function in `global_asm!`
//! (arguments and result in s0-s2 by the AAPCS-VFP calling convention of `extern "C"` on
//! hard-float targets), and the unsafe call is confined to this file.
//!
//! On every other target [`fmaf`] is `libm::fmaf`, which returns the same bits (both are the
//! correctly rounded `a * b + c`): the crate builds anywhere, the instruction is only used where
//! it exists. The conformance tests compare the Cortex-M4F under QEMU with the host's goldens.
#![no_std]

/// `a * b + c` rounded once to nearest, ties to even: `vfma.f32` on hard-float Arm targets,
/// `libm::fmaf` elsewhere.
#[inline(always)]
pub fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    {
        // SAFETY: `edgewise_vfma_f32` (below) follows the AAPCS-VFP convention of `extern "C"`
        // on this ABI: it reads s0-s2, writes s0 and s2 (caller-saved), touches no memory and
        // no other register, and returns.
        unsafe { edgewise_vfma_f32(a, b, c) }
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        libm::fmaf(a, b, c)
    }
}

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
core::arch::global_asm!(
    ".section .text.edgewise_vfma_f32,\"ax\",%progbits",
    ".global edgewise_vfma_f32",
    ".type edgewise_vfma_f32,%function",
    ".syntax unified",
    ".thumb",
    ".fpu fpv4-sp-d16",
    ".thumb_func",
    "edgewise_vfma_f32:",
    "vfma.f32 s2, s0, s1",
    "vmov.f32 s0, s2",
    "bx lr",
    ".size edgewise_vfma_f32, . - edgewise_vfma_f32",
);

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
extern "C" {
    fn edgewise_vfma_f32(a: f32, b: f32, c: f32) -> f32;
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_is_the_correctly_rounded_multiply_add() {
        let (a, b) = (1.0 + f32::EPSILON, 1.0 - f32::EPSILON);
        // The product rounds to 1.0 on its own; fused, the residual survives.
        assert_eq!(super::fmaf(a, b, -1.0), -f32::EPSILON * f32::EPSILON);
        assert_eq!(super::fmaf(2.0, 3.0, 1.0), 7.0);
    }
}
