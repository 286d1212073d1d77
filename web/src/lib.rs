//! `vae-core`'s decoder in a web browser: the crate built for `wasm32-unknown-unknown`
//! (no std, no allocator, as on the chips) with the few exports the page
//! (`web/page/app.js`) calls. On any other target the crate is empty.
//!
//! The page and the module share the module's memory. The page writes a model file into
//! the buffer [`vae_file_buffer`] gives, [`vae_load`] parses it with `vae-core`'s parser
//! (every check of [`Model::parse`]: magic, version, shape, size, CRC-32), and each
//! drawing call writes 784 grey levels (0 black, 255 white) where [`vae_pixels`] points.
//! The drawing calls are `vae-core`'s: [`Model::generate_at_temperature`],
//! [`Model::morph`] and [`Model::decode_pixels`] of a latent code the page writes into
//! [`vae_latent_buffer`], so the browser draws the host's and the firmware's pixels.
//!
//! Drawing calls return the digit drawn (0 and above), [`NO_DIGIT`] where there is none
//! to name (an unconditional model, a morph, a latent code), or [`FAILED`], with the
//! reason as UTF-8 text at [`vae_text`] (length [`vae_text_len`]): the parser's error
//! for a corrupt or foreign file, or the decoder's for a request it refuses.
#![cfg(target_arch = "wasm32")]
#![no_std]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

use core::cell::UnsafeCell;
use core::fmt::{self, Write};

use vae_core::format::MAX_HEADER_LEN;
use vae_core::{Model, Sample, MAX_HIDDEN_LAYERS, MAX_WIDTH, PIXELS, STACK_SCRATCH};

/// A drawing call's result where there is no digit to name.
pub const NO_DIGIT: i32 = -1;

/// A call's result when it failed; [`vae_text`] says why.
pub const FAILED: i32 = -2;

/// The longest model file `vae-core` accepts: an f32 file with [`MAX_HIDDEN_LAYERS`]
/// hidden layers of [`MAX_WIDTH`] units fed by an input of `MAX_WIDTH` (5.8 MB). The
/// buffer is zeroed memory, which costs the `.wasm` file nothing.
pub const MAX_FILE_LEN: usize = MAX_HEADER_LEN
    + 4 * (MAX_HIDDEN_LAYERS * (MAX_WIDTH * MAX_WIDTH + MAX_WIDTH) + MAX_WIDTH * PIXELS + PIXELS);

/// Room for [`vae_text`]'s longest text (an error, or [`vae_describe`]'s JSON).
const TEXT_CAPACITY: usize = 512;

/// A static the exports share. The module runs on one thread (wasm32 without the
/// `atomics` feature has no other), and no export calls back into the page while it
/// holds the contents, so one `&mut` at a time is all there ever is.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: one thread (see `Shared`).
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    const fn new(value: T) -> Self {
        Shared(UnsafeCell::new(value))
    }
}

/// The model file's bytes, as the page wrote them. Borrowed by [`State::model`] once
/// parsed; [`vae_file_buffer`] ends that borrow before the page writes again.
static FILE: Shared<[u8; MAX_FILE_LEN]> = Shared::new([0; MAX_FILE_LEN]);

/// What the exports keep between calls.
struct State {
    model: Option<Model<'static>>,
    /// Length of the loaded file, as the page wrote it.
    file_len: usize,
    pixels: [u8; PIXELS],
    latent: [f32; MAX_WIDTH],
    text: heapless::String<TEXT_CAPACITY>,
}

static STATE: Shared<State> = Shared::new(State {
    model: None,
    file_len: 0,
    pixels: [0; PIXELS],
    latent: [0.0; MAX_WIDTH],
    text: heapless::String::new(),
});

/// Runs `f` on the shared state.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    // SAFETY: one thread, and no export is re-entered (see `Shared`).
    f(unsafe { &mut *STATE.0.get() })
}

impl State {
    /// Replaces the text with `message`, cut at the capacity; returns [`FAILED`].
    fn fail(&mut self, message: impl fmt::Display) -> i32 {
        self.text.clear();
        // A message longer than the capacity is cut short: still the start of the reason.
        let _ = write!(self.text, "{message}");
        FAILED
    }

    /// Runs a drawing call on the loaded model: its digit, [`NO_DIGIT`] or [`FAILED`].
    fn draw(
        &mut self,
        call: impl FnOnce(
            &Model<'static>,
            &mut [u32],
            &mut [u8; PIXELS],
            &[f32],
        ) -> Result<Option<u8>, vae_core::Error>,
    ) -> i32 {
        let Some(model) = &self.model else {
            return self.fail("no model is loaded");
        };
        // Every model the page loads is dense (the module leaves transposed convolutions
        // out), and every dense model decodes in this much.
        let mut scratch = [0u32; STACK_SCRATCH];
        match call(model, &mut scratch, &mut self.pixels, &self.latent) {
            Ok(Some(digit)) => i32::from(digit),
            Ok(None) => NO_DIGIT,
            Err(err) => self.fail(err),
        }
    }
}

/// The page's digit argument: below 0 for none.
fn digit(value: i32) -> Result<Option<u8>, DigitOutOfRange> {
    match value {
        v if v < 0 => Ok(None),
        v => u8::try_from(v).map(Some).map_err(|_| DigitOutOfRange(v)),
    }
}

/// A digit above 255, which `vae-core`'s digit type cannot hold.
struct DigitOutOfRange(i32);

impl fmt::Display for DigitOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "digit {} is out of range (0 to 255)", self.0)
    }
}

/// Where the page writes a model file of `len` bytes. Unloads the current model. Null
/// where `len` is over [`MAX_FILE_LEN`]: no model file is that long; [`vae_text`] says so.
#[no_mangle]
pub extern "C" fn vae_file_buffer(len: usize) -> *mut u8 {
    with_state(|state| {
        state.model = None;
        state.file_len = 0;
        if len > MAX_FILE_LEN {
            state.fail(format_args!(
                "a file of {len} bytes is not a model file: the largest one vae-core reads has {MAX_FILE_LEN} bytes"
            ));
            return core::ptr::null_mut();
        }
        FILE.0.get().cast::<u8>()
    })
}

/// Parses the `len` bytes the page wrote at [`vae_file_buffer`]: 0 when the model is
/// loaded, [`FAILED`] with the parser's error otherwise.
#[no_mangle]
pub extern "C" fn vae_load(len: usize) -> i32 {
    with_state(|state| {
        // SAFETY: nothing else borrows the file now: the model that did was dropped by
        // `vae_file_buffer`, and the page writes only between that call and this one.
        let file: &'static [u8; MAX_FILE_LEN] = unsafe { &*FILE.0.get() };
        let Some(bytes) = file.get(..len) else {
            return state.fail(format_args!(
                "{len} bytes were announced, {MAX_FILE_LEN} fit"
            ));
        };
        match Model::parse(bytes) {
            Ok(model) => {
                state.model = Some(model);
                state.file_len = len;
                0
            }
            Err(err) => state.fail(err),
        }
    })
}

/// Writes the loaded model's header as JSON at [`vae_text`]: format version,
/// precision, latent size, classes, hidden widths, activation, parameters,
/// multiply-accumulates per image and file size. 0, or [`FAILED`] with no model.
#[no_mangle]
pub extern "C" fn vae_describe() -> i32 {
    with_state(|state| {
        let Some(model) = &state.model else {
            return state.fail("no model is loaded");
        };
        let header = model.header();
        let arch = &header.arch;
        let mut json = heapless::String::<TEXT_CAPACITY>::new();
        let written = (|| -> fmt::Result {
            write!(
                json,
                "{{\"version\":{},\"precision\":\"{}\",\"latent\":{},\"classes\":{},\"hidden\":[",
                header.version, header.precision, arch.latent, arch.classes
            )?;
            for (k, width) in arch.hidden.iter().enumerate() {
                write!(json, "{}{width}", if k == 0 { "" } else { "," })?;
            }
            write!(
                json,
                "],\"activation\":\"{}\",\"parameters\":{},\"macs\":{},\"bytes\":{}}}",
                arch.activation,
                arch.parameter_count(),
                arch.multiply_accumulates(),
                state.file_len
            )
        })();
        match written {
            Ok(()) => {
                state.text = json;
                0
            }
            Err(_) => state.fail("the header does not fit the text buffer"),
        }
    })
}

/// Draws `digit` (below 0: a free sample) from `seed` at `temperature`
/// ([`Model::generate`] of that [`Sample`]).
#[no_mangle]
pub extern "C" fn vae_generate(seed: u64, digit_asked: i32, temperature: f32) -> i32 {
    with_state(|state| match digit(digit_asked) {
        Ok(d) => state.draw(|model, scratch, pixels, _| {
            let sample = Sample::new(seed, d).at_temperature(temperature);
            model.generate(sample, scratch, pixels)
        }),
        Err(refused) => state.fail(refused),
    })
}

/// Where the page writes a latent code for [`vae_decode`] (the model's latent size,
/// at most [`MAX_WIDTH`] values).
#[no_mangle]
pub extern "C" fn vae_latent_buffer() -> *mut f32 {
    with_state(|state| state.latent.as_mut_ptr())
}

/// Decodes the latent code at [`vae_latent_buffer`] with `digit` (below 0: none, for an
/// unconditional model) ([`Model::decode`] of `[z, one-hot]`).
#[no_mangle]
pub extern "C" fn vae_decode(digit_asked: i32) -> i32 {
    with_state(|state| match digit(digit_asked) {
        Ok(d) => state.draw(|model, scratch, pixels, latent| {
            let z = latent
                .get(..usize::from(model.architecture().latent))
                .unwrap_or(latent);
            let mut input = [0.0f32; MAX_WIDTH];
            let input = model.input(z, d, &mut input)?;
            model.decode(input, scratch, pixels).map(|()| None)
        }),
        Err(refused) => state.fail(refused),
    })
}

/// Step `step` of `steps` of the morph between two drawings ([`Model::morph`]).
#[no_mangle]
pub extern "C" fn vae_morph(
    from_seed: u64,
    from_digit: i32,
    to_seed: u64,
    to_digit: i32,
    step: u32,
    steps: u32,
) -> i32 {
    with_state(|state| match (digit(from_digit), digit(to_digit)) {
        (Ok(a), Ok(b)) => {
            let step = u16::try_from(step).unwrap_or(u16::MAX);
            let steps = u16::try_from(steps).unwrap_or(u16::MAX);
            state.draw(|model, scratch, pixels, _| {
                let (from, to) = (Sample::new(from_seed, a), Sample::new(to_seed, b));
                model
                    .morph(from, to, step, steps, scratch, pixels)
                    .map(|()| None)
            })
        }
        (Err(refused), _) | (_, Err(refused)) => state.fail(refused),
    })
}

/// The last drawing: 784 grey levels, row by row.
#[no_mangle]
pub extern "C" fn vae_pixels() -> *const u8 {
    with_state(|state| state.pixels.as_ptr())
}

/// The last error, or [`vae_describe`]'s JSON, as UTF-8 (length [`vae_text_len`]).
#[no_mangle]
pub extern "C" fn vae_text() -> *const u8 {
    with_state(|state| state.text.as_ptr())
}

/// The length in bytes of [`vae_text`].
#[no_mangle]
pub extern "C" fn vae_text_len() -> usize {
    with_state(|state| state.text.len())
}

/// A panic cannot happen in the code above (the lints refuse its sources); if one did,
/// the call traps and the page shows the trap.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
