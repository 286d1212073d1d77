//! What the firmware draws when it starts, defined once here so that the host can
//! compute the same images and compare them byte for byte.

use core::fmt;

use crate::{Error, Model, IMAGE_SIDE, PIXELS};

/// Seed of the demo's first drawing; the others use the seeds after it.
pub const DEMO_SEED: u64 = 2026;

/// Unconditional samples in the demo.
pub const FREE_SAMPLES: u64 = 4;

/// Images in the demo's morph, both ends included.
pub const MORPH_STEPS: u16 = 6;

/// One image the demo draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawing {
    /// `digit` from `seed` ([`Model::generate`]).
    Digit {
        /// Seed of the latent code.
        seed: u64,
        /// Digit asked for.
        digit: u8,
    },
    /// A sample from `seed` with no digit asked for: a conditional model draws one chosen
    /// by the same generator.
    Free {
        /// Seed of the latent code (and of the digit).
        seed: u64,
    },
    /// Step `step` of `steps` from one drawing to another ([`Model::morph`]).
    Morph {
        /// Seed and digit of the first end.
        from: (u64, Option<u8>),
        /// Seed and digit of the last end.
        to: (u64, Option<u8>),
        /// Position on the line, `0..steps`.
        step: u16,
        /// Images on the line, both ends included.
        steps: u16,
    },
}

impl Drawing {
    /// Draws this image; returns the digit drawn where the model is conditional and the
    /// digit is known (not for a morph).
    pub fn draw(&self, model: &Model<'_>, pixels: &mut [u8; PIXELS]) -> Result<Option<u8>, Error> {
        match *self {
            Drawing::Digit { seed, digit } => model.generate(seed, Some(digit), pixels),
            Drawing::Free { seed } => model.generate(seed, None, pixels),
            Drawing::Morph {
                from,
                to,
                step,
                steps,
            } => model.morph(from, to, step, steps, pixels).map(|()| None),
        }
    }
}

impl fmt::Display for Drawing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |f: &mut fmt::Formatter<'_>, (seed, digit): (u64, Option<u8>)| match digit {
            Some(d) => write!(f, "{d} (seed {seed})"),
            None => write!(f, "seed {seed}"),
        };
        match *self {
            Drawing::Digit { seed, digit } => write!(f, "digit {digit}, seed {seed}"),
            Drawing::Free { seed } => write!(f, "free sample, seed {seed}"),
            Drawing::Morph {
                from,
                to,
                step,
                steps,
            } => {
                write!(f, "morph {}/{} from ", step + 1, steps)?;
                end(f, from)?;
                f.write_str(" to ")?;
                end(f, to)
            }
        }
    }
}

/// The demo for `model`: for a conditional model each digit (up to 10) from
/// [`DEMO_SEED`]; then [`FREE_SAMPLES`] free samples from the seeds after it (ten for an
/// unconditional model); then a [`MORPH_STEPS`]-image morph, from a 3 to an 8 where the
/// model knows those digits.
///
/// ```
/// # let mut buf = vec![0u8; 1 << 16];
/// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
/// let model = vae_core::Model::parse(&file)?;
/// let plan: Vec<_> = vae_core::demo::plan(&model).collect();
/// assert_eq!(plan.len(), 10 + 4 + 6);
/// assert_eq!(plan[7].to_string(), "digit 7, seed 2026");
/// # Ok::<(), vae_core::Error>(())
/// ```
pub fn plan(model: &Model<'_>) -> impl Iterator<Item = Drawing> {
    let classes = model.architecture().classes;
    let digits = u8::try_from(classes.min(10)).unwrap_or(10);
    let free = if classes == 0 { 10 } else { FREE_SAMPLES };
    let label = |d: u16| (classes > 0).then(|| u8::try_from(d % classes.max(1)).unwrap_or(0));
    let from = (DEMO_SEED, label(3));
    let to = (DEMO_SEED + 1, label(8));
    let conditional = (0..digits).map(|digit| Drawing::Digit {
        seed: DEMO_SEED,
        digit,
    });
    let free = (1..=free).map(|k| Drawing::Free {
        seed: DEMO_SEED + k,
    });
    let morph = (0..MORPH_STEPS).map(move |step| Drawing::Morph {
        from,
        to,
        step,
        steps: MORPH_STEPS,
    });
    conditional.chain(free).chain(morph)
}

/// Grey ramp for [`ascii_row`], dark to light.
pub const RAMP: &[u8; 10] = b" .:-=+*#%@";

/// Row `row` of an image as text, one character per pixel from [`RAMP`].
///
/// ```
/// let mut pixels = [0u8; vae_core::PIXELS];
/// pixels[28..56].fill(255);
/// assert_eq!(&vae_core::demo::ascii_row(&pixels, 1), &[b'@'; 28]);
/// assert_eq!(&vae_core::demo::ascii_row(&pixels, 0), &[b' '; 28]);
/// ```
pub fn ascii_row(pixels: &[u8; PIXELS], row: usize) -> [u8; IMAGE_SIDE] {
    let mut out = [b' '; IMAGE_SIDE];
    let start = row.saturating_mul(IMAGE_SIDE);
    let cells = pixels
        .get(start..start.saturating_add(IMAGE_SIDE))
        .unwrap_or(&[]);
    for (c, &p) in out.iter_mut().zip(cells) {
        let level = usize::from(p) * RAMP.len() / 256;
        *c = RAMP.get(level).copied().unwrap_or(b'@');
    }
    out
}

/// An image as 1,568 lowercase hex digits, two per pixel, row by row.
///
/// ```
/// let mut pixels = [0u8; vae_core::PIXELS];
/// pixels[0] = 0xa5;
/// assert!(vae_core::demo::hex(&pixels).starts_with(b"a500"));
/// ```
pub fn hex(pixels: &[u8; PIXELS]) -> [u8; 2 * PIXELS] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 2 * PIXELS];
    for (pair, &p) in out.as_chunks_mut::<2>().0.iter_mut().zip(pixels) {
        let digit = |n: u8| DIGITS.get(usize::from(n & 15)).copied().unwrap_or(b'0');
        *pair = [digit(p >> 4), digit(p)];
    }
    out
}
