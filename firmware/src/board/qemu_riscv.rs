//! QEMU's RISC-V `virt` machine with an RV32IMAC hart (no FPU): semihosting console and
//! exit code, `minstret` as the instruction counter (QEMU counts retired instructions
//! under `-icount shift=0`).

use riscv::register::minstret;

pub const NAME: &str = "QEMU virt (RV32IMAC, no FPU)";

super::semihosting_console!(riscv_semihosting, riscv::asm::wfi);

/// The `minstret` counter: instructions retired since reset.
pub struct Clock;

impl Clock {
    pub const UNIT: &'static str = "instructions";

    pub fn start() -> Self {
        Clock
    }

    pub fn now(&self) -> u64 {
        minstret::read64()
    }

    pub fn since(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }

    pub fn describe(&self) -> &'static str {
        "minstret (instructions retired; QEMU counts them under -icount shift=0 only)"
    }
}
