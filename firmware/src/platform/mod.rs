//! Target-specific glue: reset entry (calls [`crate::app`]), exit status, panics and faults.

#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "riscv32")]
mod riscv;
#[cfg_attr(feature = "conformance", allow(dead_code))]
pub mod stack;

use core::sync::atomic::{AtomicBool, Ordering};

/// Ends the run: a semihosting exit, so QEMU exits with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    // RTT (real boards): let the probe read the last frames first (returns at once when no
    // probe is attached). A debug probe running `probe-rs run` then sees the semihosting exit.
    #[cfg(feature = "rtt")]
    {
        defmt::flush();
        // Without a debugger attached, a semihosting call is a breakpoint nobody handles: a
        // HardFault, whose handler's own exit then locks the core up. Stop here instead (the
        // log has gone out over RTT, or nobody reads it).
        #[cfg(target_arch = "arm")]
        if !cortex_m::peripheral::DCB::is_debugger_attached() {
            loop {
                cortex_m::asm::wfi();
            }
        }
    }
    semihosting::process::exit(if ok { 0 } else { 1 })
}

static FAILING: AtomicBool = AtomicBool::new(false);

/// Logs a fatal error (once: a fault while reporting one just exits) and exits with failure.
pub(crate) fn fail(report: impl FnOnce()) -> ! {
    if !FAILING.load(Ordering::Relaxed) {
        FAILING.store(true, Ordering::Relaxed);
        report();
    }
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail(|| defmt::error!("panic: {}", defmt::Display2Format(info)))
}

/// `defmt::panic!` has logged its message (`panicked at '...'`): end the run. (defmt's default
/// calls `core::panic!`, whose handler would log a second line pointing into defmt.)
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    fail(|| {})
}
