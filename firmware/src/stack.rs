//! Memory use: flash and static RAM from the linker's symbols, peak stack by painting.
//!
//! At start, every word between the end of the statics and the stack pointer is filled
//! with a pattern; at the end, the lowest word no longer holding it marks the deepest
//! the stack went.

const PAINT: u32 = 0x5AA5_C33C;

extern "C" {
    static __flash_origin: u8;
    static __ram_origin: u8;
    static __sidata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sheap: u8;
    static _stack_start: u8;
}

fn addr(symbol: *const u8) -> usize {
    symbol as usize
}

/// Paints the free stack, in assembly so that painting uses no stack of its own.
pub fn paint() {
    crate::arch::paint_stack(addr(&raw const __sheap), PAINT);
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
        let flash_origin = addr(&raw const __flash_origin);
        let data_len = addr(&raw const __edata) - addr(&raw const __sdata);
        let flash = addr(&raw const __sidata) + data_len - flash_origin;
        let ram_origin = addr(&raw const __ram_origin);
        let bottom = addr(&raw const __sheap);
        let top = addr(&raw const _stack_start);
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
            flash,
            statics: bottom - ram_origin,
            stack_peak: top - lowest_used,
            stack_overflowed: lowest_used == bottom,
        }
    }
}
