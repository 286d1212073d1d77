//! RISC-V RV32 (machine mode). The runtime differs by board: riscv-rt under QEMU, esp-hal's
//! (esp-riscv-rt, riscv-rt wrapped with the chip's own start-up) on the ESP32-C3. Any
//! exception ends the run: here under QEMU, through esp-hal's handler and its panic on the
//! ESP32-C3 (it also recognises a write to the stack guard), each printing `error: ...`.

#[cfg(feature = "qemu")]
use riscv::interrupt::Trap;
#[cfg(feature = "qemu")]
use riscv::register::{mcause, mepc, mtval};

#[cfg(feature = "qemu")]
#[riscv_rt::entry]
fn main() -> ! {
    crate::run()
}

#[cfg(feature = "esp32c3")]
#[esp_hal::main]
fn main() -> ! {
    crate::run()
}

/// Every exception (riscv-rt calls this one where no specific handler is defined).
#[cfg(feature = "qemu")]
#[export_name = "ExceptionHandler"]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    let cause = match mcause::read().cause() {
        Trap::Exception(code) => code,
        Trap::Interrupt(code) => code,
    };
    crate::board::fail(format_args!(
        "exception {cause} at pc {:#010x} (mtval {:#010x})",
        mepc::read(),
        mtval::read()
    ))
}

/// Fills every word in `[bottom, sp)` with `pattern`, in registers only.
pub fn paint_stack(bottom: usize, pattern: u32) {
    // SAFETY: writes only words in [bottom, sp), memory below the live stack and above
    // the statics that nothing uses yet.
    unsafe {
        core::arch::asm!(
            "mv {end}, sp",
            "2:",
            "bgeu {p}, {end}, 3f",
            "sw {pattern}, 0({p})",
            "addi {p}, {p}, 4",
            "j 2b",
            "3:",
            p = inout(reg) bottom => _,
            end = out(reg) _,
            pattern = in(reg) pattern,
            options(nostack),
        );
    }
}

/// Raises an illegal-instruction exception (for the tests).
#[cfg(feature = "inject-hardfault")]
pub fn undefined_instruction() {
    // SAFETY: not safe at all: an illegal instruction, to raise an exception.
    unsafe {
        core::arch::asm!("unimp");
    }
}
