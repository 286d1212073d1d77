//! What differs between boards: the console, the clock, how a run ends.
//!
//! Each board is one file that provides the same items, re-exported here by its feature
//! (and, for QEMU, the target architecture):
//! - `NAME`: the board, for the first line of output;
//! - `write_line(args)`: prints one line;
//! - `exit(success) -> !`: ends the run (an exit code under QEMU, a halt on a board);
//! - `Clock`: `start()`, `now()`, `since(start)` in `Clock::UNIT` (instructions under
//!   QEMU, core cycles on a board) and `describe()` for the log.
//!
//! - `layout()`, only where the runtime crate is not cortex-m-rt or riscv-rt (whose linker
//!   symbols `stack.rs` reads): the memory map for the memory figures.
//!
//! Adding a board: a file here, a feature in `Cargo.toml`, its memory map in `build.rs`,
//! and an alias in `.cargo/config.toml` for its target and runner.

use core::fmt::{self, Write};

#[cfg(any(
    all(feature = "qemu", feature = "nucleo-f411re"),
    all(feature = "qemu", feature = "rp-pico"),
    all(feature = "qemu", feature = "esp32c3"),
    all(feature = "nucleo-f411re", feature = "rp-pico"),
    all(feature = "nucleo-f411re", feature = "esp32c3"),
    all(feature = "rp-pico", feature = "esp32c3"),
))]
compile_error!(
    "choose one board feature: `qemu` (the default), `nucleo-f411re`, `rp-pico` or `esp32c3`"
);

/// A QEMU board's `write_line` and `exit`, through its architecture's semihosting crate
/// (`cortex_m_semihosting`, `riscv_semihosting`: the same API), `$wfi` waiting where the
/// host ignores the exit request.
#[cfg(feature = "qemu")]
macro_rules! semihosting_console {
    ($semihosting:ident, $wfi:path) => {
        /// Writes one line to the host's stdout in a single semihosting call.
        pub fn write_line(args: core::fmt::Arguments) {
            super::with_line(args, |line| {
                if let Ok(mut out) = $semihosting::hio::hstdout() {
                    let _ = out.write_all(line);
                }
            });
        }

        pub fn exit(success: bool) -> ! {
            use $semihosting::debug;
            debug::exit(if success {
                debug::EXIT_SUCCESS
            } else {
                debug::EXIT_FAILURE
            });
            // Only reached when the host ignores the exit request (no semihosting).
            loop {
                $wfi();
            }
        }
    };
}
#[cfg(feature = "qemu")]
use semihosting_console;

#[cfg(any(all(feature = "qemu", target_arch = "arm"), feature = "rp-pico"))]
mod systick;

#[cfg(all(feature = "qemu", target_arch = "arm"))]
mod qemu_arm;
#[cfg(all(feature = "qemu", target_arch = "arm"))]
pub use qemu_arm::*;

#[cfg(all(feature = "qemu", target_arch = "riscv32"))]
mod qemu_riscv;
#[cfg(all(feature = "qemu", target_arch = "riscv32"))]
pub use qemu_riscv::*;

#[cfg(feature = "nucleo-f411re")]
mod nucleo;
#[cfg(feature = "nucleo-f411re")]
pub use nucleo::*;

#[cfg(feature = "rp-pico")]
mod pico;
#[cfg(feature = "rp-pico")]
pub use pico::*;

#[cfg(feature = "esp32c3")]
mod esp32c3;
#[cfg(feature = "esp32c3")]
pub use esp32c3::*;

/// Prints `error: ...` and ends the run as a failure.
pub fn fail(message: fmt::Arguments) -> ! {
    write_line(format_args!("error: {message}"));
    exit(false)
}

/// Ends the run as a success.
pub fn succeed() -> ! {
    exit(true)
}

/// Formats one line with its newline on the stack and hands it to `send` in one piece
/// (one semihosting call). A line longer than the buffer is cut; the longest the firmware
/// prints is 1,580 bytes.
#[cfg_attr(not(feature = "qemu"), allow(dead_code))]
pub fn with_line(args: fmt::Arguments, send: impl FnOnce(&[u8])) {
    let mut line = Line {
        buf: [0; 1700],
        len: 0,
    };
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    send(line.buf.get(..line.len).unwrap_or(&[]));
}

struct Line {
    buf: [u8; 1700],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
