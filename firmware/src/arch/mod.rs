//! What differs between instruction sets: the runtime crate that starts the program and
//! calls [`crate::run`], the CPU fault handler (`error: ...` through the board), and the
//! few instructions the firmware writes in assembly.
//!
//! Each architecture file provides:
//! - the entry point (the runtime crate's `#[entry]`), which calls [`crate::run`];
//! - a fault handler that ends the run with `board::fail`;
//! - `paint_stack(bottom, pattern)`: fills `[bottom, sp)` with `pattern` without using
//!   the stack itself;
//! - `undefined_instruction()`: executes one, for the fault tests.

#[cfg(target_arch = "arm")]
mod cortex_m;
#[cfg(target_arch = "arm")]
pub use cortex_m::*;

#[cfg(target_arch = "riscv32")]
mod riscv;
#[cfg(target_arch = "riscv32")]
pub use riscv::*;
