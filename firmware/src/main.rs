//! Draws digits on a microcontroller with the decoder embedded in flash: Cortex-M4F,
//! Cortex-M0 and RV32IMAC under QEMU, and the boards of `board/`.
//!
//! At start the firmware checks the embedded model file with `vae-core`'s parser, then
//! draws the demo of [`vae_core::demo::plan`]: each digit 0-9 from one seed, a few free
//! samples and a morph. Each image is printed as ASCII art and as a `pixels` line of hex
//! (the host compares those with its own `vae-core`), followed by its cost. Then come the
//! memory figures and `done`.
//!
//! A bad embedded model, a panic or a CPU fault prints `error: ...` and ends the run
//! with a failure exit code (QEMU) or a halt (board).
//!
//! Everything here is shared by all targets. What differs lives behind two interfaces:
//! `arch` (runtime crate, entry point, fault handler, the few instructions written in
//! assembly) per instruction set, and `board` (console, clock, exit) per board.
#![no_std]
#![no_main]

mod arch;
mod board;
mod stack;

use vae_core::demo::{ascii_row, plan, Drawing};
use vae_core::{Model, IMAGE_SIDE, PIXELS};

/// Prints a line through the board's console (semihosting or RTT).
macro_rules! say {
    ($($arg:tt)*) => { $crate::board::write_line(format_args!($($arg)*)) };
}

/// A fixed-point number printed with two decimals (the firmware prints no floats: float
/// formatting would cost about 25 KB of flash).
pub(crate) struct Hundredths(pub u64);

impl core::fmt::Display for Hundredths {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// An image as `vae_core::demo::hex` writes it (two lowercase hex digits per pixel, row
/// by row), written straight into the line, so that no 1,568-byte copy of it sits on the
/// stack while the line is printed.
struct Hex<'a>(&'a [u8; PIXELS]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for row in self.0.chunks_exact(IMAGE_SIDE) {
            let mut text = [0u8; 2 * IMAGE_SIDE];
            for (pair, &p) in text.as_chunks_mut::<2>().0.iter_mut().zip(row) {
                let digit = |n: u8| DIGITS.get(usize::from(n & 15)).copied().unwrap_or(b'0');
                *pair = [digit(p >> 4), digit(p)];
            }
            f.write_str(core::str::from_utf8(&text).unwrap_or("?"))?;
        }
        Ok(())
    }
}

/// A word-aligned copy of the model file in flash, so the decoder may load its weights a
/// word at a time (the format pads the header so the payload starts on a word).
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.vae")));

// `SCRATCH_WORDS`: the words of the decoder's scratch memory, what the embedded model
// needs (`Model::scratch_len`), computed by `build.rs` from the same file; at most what
// the RAM leaves beside the stack (10 KiB of 16), so that a model needing more is
// refused at start with both figures.
include!(concat!(env!("OUT_DIR"), "/scratch.rs"));

/// The decoder's scratch memory, handed out once by [`scratch`].
struct Scratch(core::cell::UnsafeCell<[u32; SCRATCH_WORDS]>);

// SAFETY: the firmware runs on one core without interrupt handlers that touch it, and
// `scratch` hands out the one reference to it.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch(core::cell::UnsafeCell::new([0; SCRATCH_WORDS]));

/// The decoder's scratch memory. Called once, by [`run`], which never returns.
fn scratch() -> &'static mut [u32; SCRATCH_WORDS] {
    // SAFETY: called once (from `run`, which does not return), so this is the only
    // reference to the buffer ever made.
    unsafe { &mut *SCRATCH.0.get() }
}

/// The firmware, entered from the architecture's runtime (`arch`) once RAM is set up.
fn run() -> ! {
    stack::paint();
    let clock = board::Clock::start();
    say!("vae firmware on {}", board::NAME);
    say!(
        "model: {} ({} bytes)",
        env!("FIRMWARE_MODEL_NAME"),
        MODEL.0.len()
    );
    let model = match Model::parse(&MODEL.0) {
        Ok(model) => model,
        Err(err) => board::fail(format_args!("embedded model rejected: {err}")),
    };
    let shape = model.architecture();
    let macs = shape.multiply_accumulates();
    say!(
        "decoder: {} weights, {} parameters, {macs} multiply-accumulates per image",
        model.precision().name(),
        shape.parameter_count(),
    );
    say!("clock: {}", clock.describe());
    let scratch = scratch();
    let needed = model.scratch_len();
    if needed > SCRATCH_WORDS {
        board::fail(format_args!(
            "the model's maps do not fit: its decoder needs {} bytes of scratch, the firmware has {}",
            needed * 4,
            SCRATCH_WORDS * 4
        ));
    }
    if let Some(up) = &shape.transposed_convs {
        say!(
            "maps: streamed in {} bytes of scratch; whole maps would need {} bytes",
            needed * 4,
            up.whole_maps_len() * 4
        );
    }

    let mut pixels = [0u8; PIXELS];
    // (cost, images) of the digits asked for, and of the free samples.
    let (mut digits, mut samples) = ((0u64, 0u64), (0u64, 0u64));
    for (index, drawing) in plan(&model).enumerate() {
        let start = clock.now();
        let drawn = drawing.draw(&model, scratch, &mut pixels);
        let cost = clock.since(start);
        if let Err(err) = drawn {
            board::fail(format_args!("image {index} ({drawing}): {err}"));
        }
        say!("image {index}: {drawing}");
        for row in 0..IMAGE_SIDE {
            let art = ascii_row(&pixels, row);
            say!("  {}", core::str::from_utf8(&art).unwrap_or("?"));
        }
        say!("pixels {index} {}", Hex(&pixels));
        say!("cost {index} {cost} {}", board::Clock::UNIT);
        inject_fault();
        let sums = match drawing {
            Drawing::Digit { .. } => &mut digits,
            Drawing::Free { .. } => &mut samples,
            Drawing::Morph { .. } => continue,
        };
        sums.0 += cost;
        sums.1 += 1;
    }

    // A conditional model's cost is that of a digit asked for; an unconditional model
    // (no digits) is costed by its free samples.
    let (what, (sum, count)) = if digits.1 > 0 {
        ("digit", digits)
    } else {
        ("sample", samples)
    };
    if let Some(mean) = sum.checked_div(count) {
        say!(
            "cost per {what}: {mean} {} ({} per multiply-accumulate, everything included)",
            board::Clock::UNIT,
            Hundredths(mean * 100 / macs.max(1) as u64)
        );
    }
    let memory = stack::Usage::measure();
    say!(
        "flash: {} bytes used of {} KiB (model {} bytes)",
        memory.flash,
        env!("FIRMWARE_FLASH_KIB"),
        MODEL.0.len()
    );
    say!(
        "ram: {} bytes used of {} KiB (static {} + peak stack {}; the decoder's scratch {} of the static)",
        memory.statics + memory.stack_peak,
        env!("FIRMWARE_RAM_KIB"),
        memory.statics,
        memory.stack_peak,
        SCRATCH_WORDS * 4
    );
    if memory.stack_overflowed {
        board::fail(format_args!("the stack overflowed its painted area"));
    }
    say!("done");
    board::succeed()
}

/// Faults on purpose in test builds (features `inject-hardfault`, `inject-panic`).
fn inject_fault() {
    #[cfg(feature = "inject-hardfault")]
    arch::undefined_instruction();
    #[cfg(feature = "inject-panic")]
    {
        let nothing: Option<u8> = core::hint::black_box(None);
        let _ = nothing.expect("a panic injected by the test build");
    }
}

#[cfg(not(feature = "panic-never"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    board::fail(format_args!("panic: {info}"))
}

/// With `panic-never`, a panic handler that cannot link: any panic path left in the
/// optimized program references this undefined function and the link fails, naming it.
#[cfg(feature = "panic-never")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        fn error_a_panic_path_is_linked_into_the_firmware() -> !;
    }
    // SAFETY: never called in a build that links: the function does not exist.
    unsafe { error_a_panic_path_is_linked_into_the_firmware() }
}
