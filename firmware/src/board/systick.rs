//! SysTick as a 64-bit tick counter on the core clock, for the Arm boards: its 24-bit
//! count extended by counting wraps in its exception.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

/// SysTick wraps counted by its exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Load and store rather than `fetch_add`, which ARMv6-M lacks: this handler is the
    // only writer.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

const RELOAD: u32 = 0x00FF_FFFF;

/// The running counter (owns SysTick).
pub struct SysTicks;

impl SysTicks {
    /// Starts SysTick on the core clock, wrapping every 2^24 ticks.
    pub fn start() -> Self {
        let Some(mut peripherals) = cortex_m::Peripherals::take() else {
            super::fail(format_args!("core peripherals already taken"));
        };
        let syst: &mut SYST = &mut peripherals.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // The counter reads 0 until its first reload; start counting after that.
        while SYST::get_current() == 0 {}
        SysTicks
    }

    /// Ticks since start.
    pub fn now(&self) -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            // A wrap between the two reads shows as a changed count: read again.
            if WRAPS.load(Ordering::Relaxed) == wraps {
                // The counter runs RELOAD, ..., 1, 0, RELOAD, ...; the exception is taken on
                // reaching 0, which is the last tick of the period just counted.
                let period = u64::from(wraps) * (u64::from(RELOAD) + 1);
                return match current {
                    0 => period.saturating_sub(1),
                    _ => period + u64::from(RELOAD - current),
                };
            }
        }
    }
}
