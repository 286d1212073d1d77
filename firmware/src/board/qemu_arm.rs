//! QEMU's Arm machines, `mps2-an386` (Cortex-M4F) and `microbit` (nRF51, Cortex-M0):
//! semihosting console and exit code, SysTick as an instruction counter under
//! `-icount shift=0`.

use core::fmt;
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::{debug, hio};

#[cfg(target_abi = "eabihf")]
pub const NAME: &str = "QEMU mps2-an386 (Cortex-M4F)";
#[cfg(not(target_abi = "eabihf"))]
pub const NAME: &str = "QEMU microbit (nRF51, Cortex-M0)";

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
        cortex_m::asm::wfi();
    }
}

/// SysTick wraps counted by its exception, extending the 24-bit counter to 64 bits.
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

/// SysTick on the core clock. QEMU clocks it at 25 MHz (mps2-an386) or 16 MHz
/// (microbit) of virtual time, and with `-icount shift=0` virtual time is one nanosecond
/// per instruction: each tick is 40 or 62.5 instructions. The ratio is measured at start on a loop of known length rather than
/// assumed, and costs are printed in instructions.
pub struct Clock {
    /// Calibration: ticks taken by `CALIBRATION_INSTRUCTIONS` instructions (never 0, so
    /// dividing by it cannot panic).
    calibration_ticks: NonZeroU64,
}

/// Instructions in the calibration loop: 100,000 rounds of `subs` + `bne`.
const CALIBRATION_ROUNDS: u32 = 100_000;
const CALIBRATION_INSTRUCTIONS: u64 = 2 * CALIBRATION_ROUNDS as u64;

impl Clock {
    pub const UNIT: &'static str = "instructions";

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
        let mut clock = Clock {
            calibration_ticks: NonZeroU64::MIN,
        };
        let start = clock.ticks();
        // SAFETY: a register-only countdown loop.
        unsafe {
            core::arch::asm!(
                "2:",
                "subs {n}, {n}, #1",
                "bne 2b",
                n = inout(reg) CALIBRATION_ROUNDS => _,
                options(nomem, nostack),
            );
        }
        clock.calibration_ticks = NonZeroU64::new(clock.ticks() - start).unwrap_or(NonZeroU64::MIN);
        clock
    }

    /// Ticks since start, as a 64-bit count.
    fn ticks(&self) -> u64 {
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

    /// Now, in instructions.
    pub fn now(&self) -> u64 {
        self.ticks() * CALIBRATION_INSTRUCTIONS / self.calibration_ticks
    }

    /// Instructions since `start`.
    pub fn since(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }

    pub fn describe(&self) -> Describe {
        Describe(self.calibration_ticks)
    }
}

/// How the clock was calibrated, for the log.
pub struct Describe(NonZeroU64);

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SysTick, {CALIBRATION_INSTRUCTIONS} instructions took {} ticks ({} per tick); \
             instruction counts hold under QEMU -icount shift=0 only",
            self.0,
            crate::Hundredths(CALIBRATION_INSTRUCTIONS * 100 / self.0)
        )
    }
}
