//! What differs between QEMU and a real board: the console, the clock, how a run ends.

#[cfg(all(feature = "qemu", feature = "nucleo-f411re"))]
compile_error!("choose one board feature: `qemu` (the default) or `nucleo-f411re`");

#[cfg(feature = "qemu")]
mod qemu;
#[cfg(feature = "qemu")]
pub use qemu::*;

#[cfg(feature = "nucleo-f411re")]
mod nucleo;
#[cfg(feature = "nucleo-f411re")]
pub use nucleo::*;

/// Prints `error: ...` and ends the run as a failure.
pub fn fail(message: core::fmt::Arguments) -> ! {
    write_line(format_args!("error: {message}"));
    exit(false)
}

/// Ends the run as a success.
pub fn succeed() -> ! {
    exit(true)
}
