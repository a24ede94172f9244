//! RISC-V 32 (riscv32imac-unknown-none-elf on QEMU `virt`, machine mode, one hart).

#[riscv_rt::entry]
fn main() -> ! {
    crate::app()
}

#[export_name = "ExceptionHandler"]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    let mcause = riscv::register::mcause::read().bits() as u32;
    let mepc = riscv::register::mepc::read() as u32;
    super::fail(|| {
        defmt::error!(
            "exception mcause={=u32:#x} at mepc={=u32:#010x}",
            mcause,
            mepc
        )
    })
}
