//! QEMU's RISC-V `virt` machine with an RV32IMAC hart (no FPU): semihosting console and
//! exit code, `minstret` as the instruction counter (QEMU counts retired instructions
//! under `-icount shift=0`).

use core::fmt;

use riscv::register::minstret;
use riscv_semihosting::{debug, hio};

pub const NAME: &str = "QEMU virt (RV32IMAC, no FPU)";

/// Writes one line to the host's stdout in a single semihosting call.
pub fn write_line(args: fmt::Arguments) {
    super::with_line(args, |line| {
        if let Ok(mut out) = hio::hstdout() {
            let _ = out.write_all(line);
        }
    });
}

pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached when the host ignores the exit request (no semihosting).
    loop {
        riscv::asm::wfi();
    }
}

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
