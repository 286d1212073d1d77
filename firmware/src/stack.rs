//! Memory use: flash and static RAM from the linker's symbols, peak stack by painting.
//!
//! At start, every word between the bottom of the free stack and the stack pointer is
//! filled with a pattern; at the end, the lowest word no longer holding it marks the
//! deepest the stack went.

const PAINT: u32 = 0x5AA5_C33C;

/// Where the linker put things, in addresses (`flash` in bytes).
pub struct Layout {
    /// Flash bytes: code, read-only data (the model) and the initial values of `.data`.
    pub flash: usize,
    /// Start of RAM: statics are counted from here up to `statics_end`.
    pub ram_origin: usize,
    pub statics_end: usize,
    /// Lowest word painting may write (`statics_end` unless something lies in between).
    pub paint_bottom: usize,
    /// Top of the stack, where the stack pointer starts.
    pub stack_top: usize,
}

/// cortex-m-rt's and riscv-rt's symbols, and build.rs's `__flash_origin`, `__ram_origin`.
/// esp-hal's linker script names them differently: the ESP32-C3 board supplies its own.
#[cfg(not(feature = "esp32c3"))]
fn layout() -> Layout {
    extern "C" {
        static __flash_origin: u8;
        static __ram_origin: u8;
        static __sidata: u8;
        static __sdata: u8;
        static __edata: u8;
        static __sheap: u8;
        static _stack_start: u8;
    }
    let addr = |symbol: *const u8| symbol as usize;
    let data_len = addr(&raw const __edata) - addr(&raw const __sdata);
    let heap = addr(&raw const __sheap);
    Layout {
        flash: addr(&raw const __sidata) + data_len - addr(&raw const __flash_origin),
        ram_origin: addr(&raw const __ram_origin),
        statics_end: heap,
        paint_bottom: heap,
        stack_top: addr(&raw const _stack_start),
    }
}
#[cfg(feature = "esp32c3")]
use crate::board::layout;

/// Paints the free stack, in assembly so that painting uses no stack of its own.
pub fn paint() {
    crate::arch::paint_stack(layout().paint_bottom, PAINT);
}

pub struct Usage {
    /// Flash bytes: code, read-only data (the model) and the initial values of `.data`.
    pub flash: usize,
    /// RAM for `.data`, `.bss` and `.uninit`.
    pub statics: usize,
    /// Deepest the stack went, in bytes.
    pub stack_peak: usize,
    /// No painted word was left: the stack may have run into the statics.
    pub stack_overflowed: bool,
}

impl Usage {
    pub fn measure() -> Self {
        let layout = layout();
        let (bottom, top) = (layout.paint_bottom, layout.stack_top);
        let mut lowest_used = top;
        let mut p = bottom;
        while p < top {
            // SAFETY: an aligned word of RAM between the statics and the stack top.
            if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
                lowest_used = p;
                break;
            }
            p += 4;
        }
        Usage {
            flash: layout.flash,
            statics: layout.statics_end - layout.ram_origin,
            stack_peak: top - lowest_used,
            stack_overflowed: lowest_used == bottom,
        }
    }
}
