#![doc = include_str!("../README.md")]
//!
//! ## What is where
//!
//! This crate is the one definition of
//! - the model file format ([`format`]): a versioned, checksummed postcard header followed
//!   by the weights as raw little-endian bytes, read in place from flash: f32, f16, or i8
//!   with an f32 scale per row ([`Precision`]), rounded by one definition
//!   ([`Precision::round_layer`]); the decoder's shape ([`Architecture`]), and that of
//!   its transposed convolutions ([`TransposedConvs`], [`TransposedConvShape`],
//!   [`same_padding`]), for the trainer as for the decoder;
//! - the decoder's three entry points on a parsed [`Model`]: [`Model::generate`] (draw a
//!   [`Sample`]: "draw a 7"), [`Model::decode`] (a latent code of your own, through
//!   [`Model::input`]) and [`Model::morph`], each in the caller's scratch memory
//!   ([`Model::scratch_len`]) and into a [`Canvas`] (grey levels or probabilities);
//! - the seeded sampler ([`Rng`]), which gives the same pixels on every platform;
//! - what the firmware draws at start ([`demo`]), so that the host can compare.
#![no_std]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

#[cfg(test)]
extern crate std;

// Sorted by name, as rustfmt keeps them. Their dependency order, in which each module
// uses only those before it: error, format, rng, fixed, scratch, kernels, pixel,
// forward (the decoder's layers, one file per kind), model, demo, reference
// (docs/contributing.md).
pub mod demo;
mod error;
mod fixed;
pub mod format;
mod forward;
mod kernels;
mod model;
mod pixel;
#[cfg(any(test, feature = "reference"))]
#[doc(hidden)]
pub mod reference;
mod rng;
mod scratch;

pub use error::Error;
#[doc(hidden)]
pub use format::*;
pub use model::{Model, Sample, STACK_SCRATCH};
pub use pixel::{intensity, to_pixel, Canvas};
pub use rng::Rng;

/// Writes a small conditional model with fixed, made-up weights into `out` (latent 2,
/// 10 classes, one hidden layer of 8). For examples and tests only: it draws no digits.
#[doc(hidden)]
pub fn example_model(precision: Precision, out: &mut [u8]) -> Result<&[u8], Error> {
    let mut hidden = heapless::Vec::new();
    hidden
        .push(8)
        .map_err(|_| Error::UnsupportedArchitecture("too many hidden layers"))?;
    let arch = Architecture::dense(2, 10, hidden, Activation::Relu);
    // A fixed pseudo-random pattern in (-0.5, 0.5].
    let mut rng = Rng::new(0x5eed);
    let values = (0..arch.parameter_count()).map(move |_| rng.uniform() - 0.5);
    let len = encode(&arch, precision, values, out)?;
    let available = out.len();
    out.get(..len).ok_or(Error::BufferTooSmall {
        needed: len,
        available,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The file the README's example embeds, `data/example-i8.vae`, is the example
    /// model's i8 file, byte for byte (rewrite it from `example_model` if this fails).
    #[test]
    fn the_readme_s_embedded_file_is_the_example_model() {
        let mut buf = std::vec![0u8; 1 << 16];
        let file = example_model(Precision::I8, &mut buf).unwrap();
        assert_eq!(include_bytes!("../data/example-i8.vae"), file);
    }

    /// The example model is what its documentation says: conditional, latent 2, one
    /// hidden layer of 8, and every weight and bias (read back from the f32 file) in
    /// (-0.5, 0.5] (`uniform() - 0.5`), of both signs.
    #[test]
    fn the_example_model_has_weights_in_half_a_unit_of_zero() {
        let mut buf = std::vec![0u8; 1 << 16];
        let file = example_model(Precision::F32, &mut buf).unwrap();
        let model = Model::parse(file).unwrap();
        let arch = model.architecture();
        assert_eq!(
            (arch.latent, arch.classes, &arch.hidden[..]),
            (2, 10, &[8][..])
        );
        let payload = &file[file.len() - arch.payload_len(Precision::F32)..];
        let values: std::vec::Vec<f32> = payload
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect();
        assert_eq!(values.len(), arch.parameter_count());
        assert!(values.iter().all(|v| v.abs() <= 0.5));
        assert!(values.iter().any(|&v| v < -0.4) && values.iter().any(|&v| v > 0.4));
    }
}
