//! Raspberry Pi Pico (RP2040: Cortex-M0+, 2 MiB QSPI flash, 264 KiB RAM): the boot
//! loader the boot ROM expects in the first 256 bytes of flash (`rp2040-boot2`), RTT
//! console (read by probe-rs), SysTick counting core cycles. Runs from the ring
//! oscillator the chip starts on (about 6 MHz); cycle counts do not depend on it.

use core::fmt;

use super::systick::SysTicks;

pub const NAME: &str = "Raspberry Pi Pico (RP2040, Cortex-M0+, ring oscillator)";

/// The second-stage boot loader for the Pico's W25Q080 flash, placed by `memory.x`.
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

pub fn write_line(args: fmt::Arguments) {
    rtt_target::rprintln!("{}", args);
}

/// There is no host to take an exit code: stay here, awake, for the debugger.
pub fn exit(_success: bool) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}

/// SysTick on the core clock: core cycles (the M0+ has no DWT cycle counter).
pub struct Clock(SysTicks);

impl Clock {
    pub const UNIT: &'static str = "cycles";

    pub fn start() -> Self {
        rtt_target::rtt_init_print!();
        Clock(SysTicks::start())
    }

    pub fn now(&self) -> u64 {
        self.0.now()
    }

    pub fn since(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }

    pub fn describe(&self) -> &'static str {
        "SysTick on the core clock (core cycles on this board)"
    }
}
