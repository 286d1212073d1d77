//! ESP32-C3 boards such as the ESP32-C3-DevKitM-1 (RV32IMC: no FPU; 4 MiB of external flash,
//! 400 KiB of SRAM): esp-hal starts the program after the ESP-IDF second-stage boot loader
//! (which espflash writes), output through esp-println (UART0 or the built-in
//! USB-Serial-JTAG, whichever the host listens on), cost in core cycles from the chip's
//! own performance counter (the ESP32-C3 has no standard `mcycle`). Runs at 160 MHz.
//!
//! Its memory figures come from esp-hal's linker script, whose symbols differ from
//! cortex-m-rt's and riscv-rt's: [`layout`].

use core::fmt;

use esp_hal::clock::CpuClock;

use crate::stack::Layout;

pub const NAME: &str = "ESP32-C3 (RV32IMC, no FPU, 160 MHz)";

// The application descriptor the boot loader checks and espflash requires, first in flash.
esp_bootloader_esp_idf::esp_app_desc!();

pub fn write_line(args: fmt::Arguments) {
    esp_println::println!("{}", args);
}

/// There is no host to take an exit code: stay here (the watchdogs are off).
pub fn exit(_success: bool) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The performance counter `mpccr` (CSR 0x7E2) counting core clock cycles: the ESP32-C3's
/// own CSRs, `mpcer` (0x7E0) selecting the event and `mpcmr` (0x7E1) enabling it.
pub struct Clock;

impl Clock {
    pub const UNIT: &'static str = "cycles";

    pub fn start() -> Self {
        // Turns off the watchdogs the boot loader leaves running, sets the CPU clock.
        let _peripherals =
            esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::_160MHz));
        // SAFETY: writes this core's performance counter CSRs only: count clock cycles
        // (mpcer = 1), counting on and wrapping at 32 bits (mpcmr = 1).
        unsafe {
            core::arch::asm!("csrwi 0x7e0, 1", "csrwi 0x7e1, 1", options(nomem, nostack));
        }
        Clock
    }

    /// Cycles, 32 bits: one image takes well under 2^32 cycles (27 s at 160 MHz).
    pub fn now(&self) -> u64 {
        u64::from(cycles())
    }

    pub fn since(&self, start: u64) -> u64 {
        u64::from(cycles().wrapping_sub(start as u32))
    }

    pub fn describe(&self) -> &'static str {
        "performance counter mpccr (core cycles on this board)"
    }
}

fn cycles() -> u32 {
    let count: u32;
    // SAFETY: reads a counter CSR.
    unsafe {
        core::arch::asm!("csrr {0}, 0x7e2", out(reg) count, options(nomem, nostack));
    }
    count
}

extern "C" {
    /// Written by build.rs (`esp32c3-report.x`) from esp-hal's sections.
    static __flash_used: u8;
    static __ram_origin: u8;
    /// esp-hal's stack: from `_stack_end` (low) up to `_stack_start`, with its guard word
    /// 60 bytes above the low end, watched by a hardware watchpoint after `esp_hal::init`.
    static _stack_end: u8;
    static _stack_start: u8;
    static __stack_chk_guard: u8;
}

/// esp-hal's memory map. Painting starts above the stack guard, so it neither changes the
/// guard's value nor trips its watchpoint; the stack going past the guard is caught by
/// esp-hal's watchpoint (`error: panic: ... stack guard`) rather than by the paint.
pub fn layout() -> Layout {
    let addr = |symbol: *const u8| symbol as usize;
    Layout {
        flash: addr(&raw const __flash_used),
        ram_origin: addr(&raw const __ram_origin),
        statics_end: addr(&raw const _stack_end),
        paint_bottom: addr(&raw const __stack_chk_guard) + 4,
        stack_top: addr(&raw const _stack_start),
    }
}
