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
    super::fail(|| defmt::error!("HardFault at pc={=u32:#010x}", pc))
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    super::fail(|| defmt::error!("unexpected exception/interrupt {=i16}", irqn))
}
