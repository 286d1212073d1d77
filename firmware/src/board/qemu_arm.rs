//! QEMU's Arm machines, `mps2-an386` (Cortex-M4F) and `microbit` (nRF51, Cortex-M0):
//! semihosting console and exit code, SysTick as an instruction counter under
//! `-icount shift=0`.

use core::fmt;
use core::num::NonZeroU64;

use super::systick::SysTicks;

#[cfg(target_abi = "eabihf")]
pub const NAME: &str = "QEMU mps2-an386 (Cortex-M4F)";
#[cfg(not(target_abi = "eabihf"))]
pub const NAME: &str = "QEMU microbit (nRF51, Cortex-M0)";

super::semihosting_console!(cortex_m_semihosting, cortex_m::asm::wfi);

/// SysTick on the core clock. QEMU clocks it at 25 MHz (mps2-an386) or 16 MHz
/// (microbit) of virtual time, and with `-icount shift=0` virtual time is one nanosecond
/// per instruction: each tick is 40 or 62.5 instructions. The ratio is measured at
/// start on a loop of known length rather than assumed, and costs are printed in
/// instructions.
pub struct Clock {
    ticks: SysTicks,
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
        let mut clock = Clock {
            ticks: SysTicks::start(),
            calibration_ticks: NonZeroU64::MIN,
        };
        let start = clock.ticks.now();
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
        clock.calibration_ticks =
            NonZeroU64::new(clock.ticks.now() - start).unwrap_or(NonZeroU64::MIN);
        clock
    }

    /// Now, in instructions.
    pub fn now(&self) -> u64 {
        self.ticks.now() * CALIBRATION_INSTRUCTIONS / self.calibration_ticks
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
