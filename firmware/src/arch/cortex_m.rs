//! Arm Cortex-M (ARMv6-M and ARMv7E-M): cortex-m-rt starts the program; a HardFault ends
//! the run. The assembly uses only Thumb-1 instructions, so that it assembles for the
//! Cortex-M0 as well as the M4F.

use cortex_m_rt::{entry, exception, ExceptionFrame};

#[entry]
fn main() -> ! {
    crate::run()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    crate::board::fail(format_args!(
        "HardFault at pc {:#010x} (lr {:#010x})",
        frame.pc(),
        frame.lr()
    ))
}

/// Fills every word in `[bottom, sp)` with `pattern`, in registers only.
pub fn paint_stack(bottom: usize, pattern: u32) {
    // SAFETY: writes only words in [bottom, sp), memory below the live stack and above
    // the statics that nothing uses yet.
    unsafe {
        core::arch::asm!(
            "mov {end}, sp",
            "2:",
            "cmp {p}, {end}",
            "bhs 3f",
            "str {pattern}, [{p}]",
            "adds {p}, #4",
            "b 2b",
            "3:",
            p = inout(reg) bottom => _,
            end = out(reg) _,
            pattern = in(reg) pattern,
            options(nostack),
        );
    }
}

/// Raises a HardFault (for the tests).
#[cfg(feature = "inject-hardfault")]
pub fn undefined_instruction() {
    // SAFETY: not safe at all: an undefined instruction, to raise a HardFault.
    unsafe {
        core::arch::asm!("udf #0");
    }
}
