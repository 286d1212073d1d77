//! What the firmware draws when it starts, defined once here so that the host can
//! compute the same images and compare them byte for byte.

use core::fmt;

use crate::{Error, Model, Sample, IMAGE_SIDE, PIXELS};

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
    /// Draws this image in `scratch`, of at least [`Model::scratch_len`] words (the
    /// firmware's static buffer); returns the digit drawn where the model is conditional
    /// and the digit is known (not for a morph).
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::I8, &mut buf).unwrap();
    /// use vae_core::{demo::Drawing, Model, Sample, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// let drawn = Drawing::Free { seed: 3 }.draw(&model, &mut scratch, &mut a)?;
    /// assert_eq!(drawn, model.generate(Sample::new(3, None), &mut scratch, &mut b)?);
    /// assert_eq!(a, b);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn draw(
        &self,
        model: &Model<'_>,
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<Option<u8>, Error> {
        match *self {
            Drawing::Digit { seed, digit } => {
                model.generate(Sample::new(seed, Some(digit)), scratch, pixels)
            }
            Drawing::Free { seed } => model.generate(Sample::new(seed, None), scratch, pixels),
            Drawing::Morph {
                from,
                to,
                step,
                steps,
            } => {
                let (from, to) = (Sample::new(from.0, from.1), Sample::new(to.0, to.1));
                model
                    .morph(from, to, step, steps, scratch, pixels)
                    .map(|()| None)
            }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::{encode, encoded_len, Activation, Architecture, Precision};

    /// A model file with `classes` classes (0: unconditional), latent 2, no hidden layer,
    /// made-up weights.
    fn model_file(classes: u16) -> Vec<u8> {
        let arch = Architecture::dense(2, classes, heapless::Vec::new(), Activation::Relu);
        let mut out = vec![0u8; encoded_len(&arch, Precision::F32).unwrap()];
        let values = (0..arch.parameter_count()).map(|i| (i % 7) as f32 * 0.1 - 0.3);
        encode(&arch, Precision::F32, values, &mut out).unwrap();
        out
    }

    fn morphs(from: (u64, Option<u8>), to: (u64, Option<u8>)) -> impl Iterator<Item = Drawing> {
        (0..6).map(move |step| Drawing::Morph {
            from,
            to,
            step,
            steps: 6,
        })
    }

    /// The plan `plan`'s documentation gives, written out for a digit model: each digit
    /// 0-9 from seed 2026, four free samples from seeds 2027-2030, then six steps from
    /// a 3 (seed 2026) to an 8 (seed 2027).
    #[test]
    fn the_plan_of_a_digit_model_is_the_documented_one() {
        let file = model_file(10);
        let model = Model::parse(&file).unwrap();
        let digits = (0..10).map(|digit| Drawing::Digit { seed: 2026, digit });
        let free = (2027..=2030).map(|seed| Drawing::Free { seed });
        let want: Vec<_> = digits
            .chain(free)
            .chain(morphs((2026, Some(3)), (2027, Some(8))))
            .collect();
        assert_eq!(plan(&model).collect::<Vec<_>>(), want);
    }

    /// An unconditional model: no digits, ten free samples (seeds 2027-2036), and a morph
    /// between the latents of seeds 2026 and 2027 with no label.
    #[test]
    fn the_plan_of_an_unconditional_model_has_ten_free_samples() {
        let file = model_file(0);
        let model = Model::parse(&file).unwrap();
        let free = (2027..=2036).map(|seed| Drawing::Free { seed });
        let want: Vec<_> = free.chain(morphs((2026, None), (2027, None))).collect();
        assert_eq!(plan(&model).collect::<Vec<_>>(), want);
    }

    /// A model of 3 classes draws each of its 3 classes, and its morph's ends, which
    /// it cannot draw as a 3 and an 8, wrap into its classes: 3 mod 3 = 0, 8 mod 3 = 2.
    /// A model of 12 classes shows ten digits, as many as the demo has room for. Every
    /// drawing of each plan can be drawn.
    #[test]
    fn the_plan_fits_the_model_s_classes() {
        let file = model_file(3);
        let model = Model::parse(&file).unwrap();
        let plan3: Vec<_> = plan(&model).collect();
        let digits = (0..3).map(|digit| Drawing::Digit { seed: 2026, digit });
        let free = (2027..=2030).map(|seed| Drawing::Free { seed });
        let want: Vec<_> = digits
            .chain(free)
            .chain(morphs((2026, Some(0)), (2027, Some(2))))
            .collect();
        assert_eq!(plan3, want);
        let file12 = model_file(12);
        let model12 = Model::parse(&file12).unwrap();
        assert_eq!(plan(&model12).count(), 10 + 4 + 6);
        let mut pixels = [0u8; PIXELS];
        let mut scratch = [0u32; crate::STACK_SCRATCH];
        for (model, file) in [(&model, "3 classes"), (&model12, "12 classes")] {
            for drawing in plan(model) {
                drawing
                    .draw(model, &mut scratch, &mut pixels)
                    .unwrap_or_else(|e| panic!("{file}: {drawing}: {e}"));
            }
        }
    }

    /// `draw` is the `Model` call each drawing names, with the same pixels, and returns
    /// the digit drawn: the one asked for, the generator's choice for a free sample (as
    /// `generate` returns it), none for a morph.
    #[test]
    fn drawings_draw_what_they_name() {
        let file = model_file(10);
        let model = Model::parse(&file).unwrap();
        let (mut got, mut want) = ([0u8; PIXELS], [0u8; PIXELS]);
        let s = &mut [0u32; crate::STACK_SCRATCH];
        let digit = Drawing::Digit { seed: 5, digit: 6 };
        assert_eq!(digit.draw(&model, s, &mut got), Ok(Some(6)));
        model
            .generate(Sample::new(5, Some(6)), s, &mut want)
            .unwrap();
        assert_eq!(got, want);
        let chosen = model.generate(Sample::new(9, None), s, &mut want).unwrap();
        assert!(chosen.is_some());
        assert_eq!(
            Drawing::Free { seed: 9 }.draw(&model, s, &mut got),
            Ok(chosen)
        );
        assert_eq!(got, want);
        let morph = Drawing::Morph {
            from: (1, Some(3)),
            to: (2, Some(8)),
            step: 2,
            steps: 5,
        };
        assert_eq!(morph.draw(&model, s, &mut got), Ok(None));
        let (three, eight) = (Sample::new(1, Some(3)), Sample::new(2, Some(8)));
        model.morph(three, eight, 2, 5, s, &mut want).unwrap();
        assert_eq!(got, want);
        assert_ne!(got, [0u8; PIXELS]);
    }

    /// The captions: a morph's steps counted from 1, as a reader counts images.
    #[test]
    fn drawings_have_captions() {
        let captions = [
            (Drawing::Digit { seed: 3, digit: 4 }, "digit 4, seed 3"),
            (Drawing::Free { seed: 11 }, "free sample, seed 11"),
            (
                Drawing::Morph {
                    from: (2026, Some(3)),
                    to: (2027, Some(8)),
                    step: 0,
                    steps: 6,
                },
                "morph 1/6 from 3 (seed 2026) to 8 (seed 2027)",
            ),
            (
                Drawing::Morph {
                    from: (1, None),
                    to: (2, None),
                    step: 4,
                    steps: 5,
                },
                "morph 5/5 from seed 1 to seed 2",
            ),
        ];
        for (drawing, caption) in captions {
            assert_eq!(drawing.to_string(), caption);
        }
    }

    /// The ramp's ten characters split the 256 grey levels into ten bands of 25.6:
    /// band `k` holds the levels `l` with `25.6 k <= l < 25.6 (k + 1)`, so 25 is the
    /// last blank, 26 the first '.', 230 the last '%' and 231 the first '@'. Each row is
    /// its own 28 pixels; a row past the image is blank.
    #[test]
    fn ascii_rows_band_the_grey_levels() {
        let mut pixels = [0u8; PIXELS];
        let levels = [0, 25, 26, 51, 52, 128, 230, 231, 255];
        pixels[27 * IMAGE_SIDE..][..levels.len()].copy_from_slice(&levels);
        let row = ascii_row(&pixels, 27);
        assert_eq!(&row[..levels.len()], b"  ..:+%@@");
        assert!(row[levels.len()..].iter().all(|&c| c == b' '));
        assert_eq!(ascii_row(&pixels, 26), [b' '; IMAGE_SIDE]);
        pixels.fill(255);
        assert_eq!(ascii_row(&pixels, 28), [b' '; IMAGE_SIDE]);
        assert_eq!(ascii_row(&pixels, usize::MAX), [b' '; IMAGE_SIDE]);
    }

    /// Two lowercase hex digits per pixel, high nibble first, in pixel order.
    #[test]
    fn hex_is_two_digits_per_pixel() {
        let mut pixels = [0u8; PIXELS];
        pixels[..4].copy_from_slice(&[0x0f, 0xf0, 0x5a, 0xc3]);
        pixels[PIXELS - 1] = 0x9e;
        let text = hex(&pixels);
        assert_eq!(&text[..8], b"0ff05ac3");
        assert_eq!(&text[2 * PIXELS - 2..], b"9e");
        assert!(text[8..2 * PIXELS - 2].iter().all(|&c| c == b'0'));
    }
}
