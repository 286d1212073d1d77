//! The decoder's outputs: a logit per pixel, turned into a probability or a grey level,
//! and the images ([`Canvas`]) that take them.

use crate::{fixed, PIXELS};

/// The grey level of a pixel of probability `p` (0 = black, 255 = white), rounded to
/// nearest; NaN maps to 0. The inverse of [`intensity`] on grey levels.
///
/// ```
/// assert_eq!(vae_core::to_pixel(0.5), 128);
/// assert_eq!(vae_core::to_pixel(1.2), 255);
/// ```
pub fn to_pixel(p: f32) -> u8 {
    // `as` saturates: below 0 and NaN give 0, above 255 gives 255.
    (p * 255.0 + 0.5) as u8
}

/// The intensity in `[0, 1]` of an 8-bit grey level (0 = black, 255 = white): how images
/// (MNIST's and the decoder's) become model inputs and targets. [`to_pixel`] turns it
/// back into the same grey level.
///
/// ```
/// use vae_core::{intensity, to_pixel};
/// assert_eq!(intensity(0), 0.0);
/// assert_eq!(intensity(255), 1.0);
/// assert!((0..=255).all(|level| to_pixel(intensity(level)) == level));
/// ```
pub fn intensity(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}

/// Logistic function through `libm::expf` (within 1 ulp, pure software: the same bits on
/// every target).
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// Logits at least this far from 0 make a black (0) or white (255) pixel whatever the
/// exponential's last bits: `to_pixel(sigmoid(6.25))` is 255 with `sigmoid(6.25) =
/// 0.998073`, 3.4e-5 above the 254.5 / 255 that rounds to 255, and `sigmoid(-6.25) =
/// 0.001927` is as far below the 0.5 / 255 that still rounds to 0. The unit test
/// `saturated_logits_give_the_pixel_of_their_sigmoid` checks every f32 between 6.25
/// and 17 of either sign; beyond 17, `expf(-v)` is below half an ulp of 1, so the
/// sigmoid is exactly 1 (or below 5e-8), and the pixel 255 (or 0).
const SATURATED_LOGIT: f32 = 6.25;

/// The grey level of an output whose logit is `v`: exactly `to_pixel(sigmoid(v))`, with
/// the exponential (in software on chips without an FPU, tens of instructions per pixel)
/// left out where the pixel is black or white anyway, as most of a digit's background
/// is. NaN takes the long way and gives 0, as `to_pixel` does.
pub(crate) fn logit_to_pixel(v: f32) -> u8 {
    if v >= SATURATED_LOGIT {
        255
    } else if v <= -SATURATED_LOGIT {
        0
    } else {
        to_pixel(sigmoid(v))
    }
}

mod sealed {
    /// Keeps [`Canvas`](super::Canvas) to the images of this crate.
    pub trait Sealed {
        /// Sets pixel `index` from its logit.
        fn put(&mut self, index: usize, logit: Logit);
    }

    /// An output of the decoder before the sigmoid: f32 from f32 and f16 weights, Q16 from
    /// i8 weights.
    #[derive(Clone, Copy)]
    pub enum Logit {
        Float(f32),
        Fixed(i32),
    }

    impl Logit {
        /// The pixel's probability, `sigmoid(logit)` in f32.
        pub(crate) fn probability(self) -> f32 {
            match self {
                Logit::Float(v) => super::sigmoid(v),
                Logit::Fixed(v) => super::sigmoid(super::fixed::to_f32(v)),
            }
        }

        /// The pixel's grey level: [`logit_to_pixel`](super::logit_to_pixel) for a float logit, and for a Q16 one
        /// the grey level of its exact sigmoid ([`fixed::pixel`](super::fixed::pixel)).
        pub(crate) fn pixel(self) -> u8 {
            match self {
                Logit::Float(v) => super::logit_to_pixel(v),
                Logit::Fixed(v) => super::fixed::pixel(v),
            }
        }
    }
}

/// An image the decoder draws into: grey levels (`[u8; PIXELS]`, 0 = black, 255 =
/// white, [`to_pixel`] of each probability) or probabilities (`[f32; PIXELS]`, each
/// pixel's Bernoulli probability, in `[0, 1]`). Both come from the same logits: for f32
/// and f16 weights the grey levels are exactly `to_pixel` of the probabilities
/// (computed without the exponential where the pixel is black or white anyway); for i8
/// weights they come from the Q16 logit and may differ from it by one level.
///
/// ```
/// # let mut buf = vec![0u8; 1 << 16];
/// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
/// use vae_core::{to_pixel, Model, Sample, PIXELS, STACK_SCRATCH};
/// let model = Model::parse(&file)?;
/// let mut scratch = [0u32; STACK_SCRATCH];
/// let (mut levels, mut probabilities) = ([0u8; PIXELS], [0.0f32; PIXELS]);
/// model.generate(Sample::new(4, Some(2)), &mut scratch, &mut levels)?;
/// model.generate(Sample::new(4, Some(2)), &mut scratch, &mut probabilities)?;
/// assert!(levels.iter().zip(&probabilities).all(|(&l, &p)| l == to_pixel(p)));
/// # Ok::<(), vae_core::Error>(())
/// ```
pub trait Canvas: sealed::Sealed {}

impl sealed::Sealed for [u8; PIXELS] {
    #[inline(always)]
    fn put(&mut self, index: usize, logit: Logit) {
        if let Some(pixel) = self.get_mut(index) {
            *pixel = logit.pixel();
        }
    }
}

impl Canvas for [u8; PIXELS] {}

impl sealed::Sealed for [f32; PIXELS] {
    #[inline(always)]
    fn put(&mut self, index: usize, logit: Logit) {
        if let Some(slot) = self.get_mut(index) {
            *slot = logit.probability();
        }
    }
}

impl Canvas for [f32; PIXELS] {}

pub(crate) use sealed::Logit;

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut of [`logit_to_pixel`] changes no pixel: every f32 logit from
    /// [`SATURATED_LOGIT`] to 17, of either sign (25 million of them), gives the pixel its
    /// sigmoid gives; beyond 17 the sigmoid is exactly 1 or below 5e-8, checked at a few
    /// points out to infinity. With a threshold of 6.0 this fails (6.0 makes 254).
    #[test]
    fn saturated_logits_give_the_pixel_of_their_sigmoid() {
        let (from, to) = (SATURATED_LOGIT.to_bits(), 17.0f32.to_bits());
        let beyond = [17.5f32, 20.0, 88.0, 89.0, 1e30, f32::MAX, f32::INFINITY];
        let logits = (from..=to).map(f32::from_bits).chain(beyond);
        for v in logits {
            for v in [v, -v] {
                assert_eq!(logit_to_pixel(v), to_pixel(sigmoid(v)), "logit {v}");
            }
        }
        assert_eq!(logit_to_pixel(f32::NAN), to_pixel(sigmoid(f32::NAN)));
        // Just inside the threshold the pixels are not yet black or white everywhere:
        // the threshold is where the shortcut starts to pay, not an arbitrary margin.
        assert_eq!(to_pixel(sigmoid(6.0)), 254);
        assert_eq!(to_pixel(sigmoid(-6.0)), 1);
    }
}
