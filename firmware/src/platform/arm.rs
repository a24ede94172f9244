//! Cortex-M (thumbv7em-none-eabihf on mps2-an386, thumbv7m-none-eabi on mps2-an385).

// Linked for its single-core critical-section implementation (used by the defmt logger).
use cortex_m as _;
use cortex_m_rt::{entry, exception, ExceptionFrame};

#[entry]
fn main() -> ! {
    crate::app()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let pc = frame.pc();
    // The fault status registers say what faulted (ARMv7-M ARM B3.2.15-B3.2.18): CFSR's
    // MemManage / BusFault / UsageFault bits, HFSR's FORCED / VECTTBL, and the faulting
    // addresses when CFSR marks them valid (MMARVALID bit 7, BFARVALID bit 15).
    // SAFETY: reads of the System Control Block's status registers, which this handler owns.
    let scb = unsafe { &*cortex_m::peripheral::SCB::PTR };
    let (cfsr, hfsr, mmfar, bfar) = (
        scb.cfsr.read(),
        scb.hfsr.read(),
        scb.mmfar.read(),
        scb.bfar.read(),
    );
    let valid = |bit: u32| if cfsr & (1 << bit) != 0 { "" } else { " (not valid)" };
    super::fail(|| {
        defmt::error!(
            "HardFault at pc={=u32:#010x} lr={=u32:#010x}: CFSR={=u32:#010x} HFSR={=u32:#010x} MMFAR={=u32:#010x}{=str} BFAR={=u32:#010x}{=str}",
            pc,
            frame.lr(),
            cfsr,
            hfsr,
            mmfar,
            valid(7),
            bfar,
            valid(15)
        )
    })
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    super::fail(|| defmt::error!("unexpected exception/interrupt {=i16}", irqn))
}
