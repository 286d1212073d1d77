//! ST NUCLEO-F411RE: RTT console (read by probe-rs), DWT cycle counter. Runs from the
//! 16 MHz internal oscillator as it comes out of reset.

use core::fmt;

use cortex_m::peripheral::DWT;

pub const NAME: &str = "NUCLEO-F411RE (STM32F411RE, Cortex-M4F, 16 MHz HSI)";

pub fn write_line(args: fmt::Arguments) {
    rtt_target::rprintln!("{}", args);
}

/// There is no host to take an exit code: stay here, awake (not `WFI`, which on the
/// STM32 stops the clocks the debugger reads RTT through).
pub fn exit(_success: bool) -> ! {
    loop {
        cortex_m::asm::nop();
    }
}

/// The DWT cycle counter: real core cycles, only on hardware (QEMU does not model it).
pub struct Clock;

impl Clock {
    pub const UNIT: &'static str = "cycles";

    pub fn start() -> Self {
        rtt_target::rtt_init_print!();
        let Some(mut peripherals) = cortex_m::Peripherals::take() else {
            super::fail(format_args!("core peripherals already taken"));
        };
        // Trace must be on before the DWT counts.
        peripherals.DCB.enable_trace();
        peripherals.DWT.enable_cycle_counter();
        Clock
    }

    /// Cycles since the counter started, extended from 32 bits by the caller's short
    /// intervals (one image takes well under 2^32 cycles).
    pub fn now(&self) -> u64 {
        u64::from(DWT::cycle_count())
    }

    pub fn since(&self, start: u64) -> u64 {
        u64::from((DWT::cycle_count()).wrapping_sub(start as u32))
    }

    pub fn describe(&self) -> &'static str {
        "DWT cycle counter (core cycles on this board)"
    }
}
