//! Memory accounting: static RAM from the linker's symbols, and the peak stack by painting.
//!
//! Both runtimes (cortex-m-rt and riscv-rt) lay RAM out as `.data`, `.bss`, `.uninit` from
//! `__sdata` up to `__euninit`, and put the initial stack pointer at `_stack_start` (the top of
//! the stack region), the stack growing down toward `__euninit`. So:
//!
//! * static RAM = `__euninit - __sdata` (the `.data` + `.bss` + `.uninit` the image needs);
//! * [`paint`] fills the free stack below the current stack pointer with [`PATTERN`], and
//!   [`high_water`] later finds the lowest word that no longer holds it: everything above it
//!   was used at some point, so `_stack_start - that address` is the peak stack use.
//!
//! Only the [`PAINT_WINDOW`] bytes below `_stack_start` are painted (QEMU gives the MPS2 machines
//! 4 MiB of RAM and `virt` 16 MiB; a real board's stack region is its free RAM), so a stack
//! deeper than the window is reported as "at least the window".
//!
//! The unsafe code here is confined to reading linker symbols' addresses and to volatile word
//! accesses in the free part of the stack region (below the live stack, above the statics),
//! which no Rust object owns. It runs single-threaded with no interrupt enabled.

/// Word written into the free stack.
pub const PATTERN: u32 = 0x5afe_57ac;

/// Bytes below the stack top that are painted (and so the largest stack that can be measured).
pub const PAINT_WINDOW: usize = 512 * 1024;

/// Bytes left unpainted just below the stack pointer of [`paint`], for its own frame.
const GUARD: usize = 256;

extern "C" {
    static __sdata: u32;
    static __euninit: u32;
    static _stack_start: u32;
}

fn sym(s: &'static u32) -> usize {
    s as *const u32 as usize
}

/// (`__sdata`, `__euninit`, `_stack_start`).
fn layout() -> (usize, usize, usize) {
    // SAFETY: only the symbols' addresses are taken; nothing is read through them.
    unsafe { (sym(&__sdata), sym(&__euninit), sym(&_stack_start)) }
}

/// Static RAM in bytes: `.data` + `.bss` + `.uninit` (`__euninit - __sdata`).
pub fn static_ram() -> usize {
    let (sdata, euninit, _) = layout();
    euninit - sdata
}

/// The painted range `[lo, hi)`, word aligned: from `max(__euninit, top - PAINT_WINDOW)` up to
/// `sp - GUARD`.
fn paint_range(sp: usize) -> (usize, usize) {
    let (_, euninit, top) = layout();
    let lo = euninit.max(top.saturating_sub(PAINT_WINDOW));
    let lo = (lo + 3) & !3;
    let hi = sp.saturating_sub(GUARD) & !3;
    (lo, hi.max(lo))
}

/// An address in the caller's frame: an upper bound of the current stack pointer.
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u32;
    core::hint::black_box(&marker) as *const u32 as usize
}

/// Fills the free stack (below the current frame, within [`PAINT_WINDOW`] of the top) with
/// [`PATTERN`]. Call once, early.
#[inline(never)]
pub fn paint() {
    let (lo, hi) = paint_range(stack_pointer());
    let mut p = lo;
    while p < hi {
        // SAFETY: `[lo, hi)` lies between the end of the statics and the live stack (minus a
        // guard for this frame): memory that no Rust object owns. Word aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// Peak stack use so far.
#[derive(Clone, Copy, Debug)]
pub struct StackUse {
    /// Bytes from the stack top down to the lowest overwritten word.
    pub peak: usize,
    /// True if that word is the bottom of the painted window: the stack may have gone deeper.
    pub saturated: bool,
}

/// The high-water mark of the stack since [`paint`].
#[inline(never)]
pub fn high_water() -> StackUse {
    let (_, euninit, top) = layout();
    let lo = (euninit.max(top.saturating_sub(PAINT_WINDOW)) + 3) & !3;
    let mut p = lo;
    while p < top {
        // SAFETY: as in `paint`; words below the live stack are read only.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != PATTERN {
            break;
        }
        p += 4;
    }
    StackUse {
        peak: top - p,
        saturated: p == lo,
    }
}
