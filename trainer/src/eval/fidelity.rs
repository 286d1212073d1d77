//! Label fidelity: how often a conditional model's samples read as the digit they were
//! drawn for, by its own classifier head (reported while training) or by the independent
//! judge (`vae eval`).

use anyhow::Result;
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::eval::classifier::Classifier;
use crate::foundation::config::ModelConfig;
use crate::foundation::tensor::argmax;
use crate::nn::model::Vae;

/// Share of decoded samples that the model's own classifier head reads as the digit
/// they were drawn for: `per_digit` samples of each class with `z ~ N(0, temperature^2 I)`.
/// `None` for an unconditional model.
pub fn label_fidelity<D: Device<f32>>(
    vae: &Vae<D>,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Option<f32> {
    let classifier = vae.classifier.as_ref()?;
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let input = fidelity_inputs(&vae.config, per_digit, temperature, seed);
    let n = input.len() / (latent + classes).max(1);
    let images = vae.decode(vae.device().tensor_from_vec(input, (n, latent + classes)));
    let logits = classifier.forward(images, false).as_vec();
    let read = logits.chunks_exact(classes).map(argmax);
    Some(share_read_as_asked(read, per_digit))
}

/// Decoder inputs `[z, one-hot(k)]` for label fidelity: `per_digit` rows for each digit
/// k in turn, `z ~ N(0, temperature^2 I)` drawn from `seed`. For an unconditional model,
/// as many rows of `z` alone (ten times `per_digit`).
pub fn fidelity_inputs(
    model: &ModelConfig,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Vec<f32> {
    let (latent, classes) = (model.latent, model.classes);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = sample_count(model, per_digit);
    let mut input = Vec::with_capacity(n * (latent + classes));
    for k in 0..n {
        let digit = k / per_digit;
        input.extend(
            (0..latent)
                .map(|_| temperature * Distribution::<f32>::sample(&StandardNormal, &mut rng)),
        );
        input.extend((0..classes).map(|c| f32::from(u8::from(c == digit))));
    }
    input
}

/// The rows of [`fidelity_inputs`]: `per_digit` for each class (ten for an
/// unconditional model).
pub fn sample_count(model: &ModelConfig, per_digit: usize) -> usize {
    per_digit * if model.classes > 0 { model.classes } else { 10 }
}

/// Share of the digits `read`, one per row of [`fidelity_inputs`], that are the digit
/// the row asked for.
pub fn share_read_as_asked(read: impl IntoIterator<Item = usize>, per_digit: usize) -> f32 {
    let (mut rows, mut correct) = (0usize, 0usize);
    for (k, digit) in read.into_iter().enumerate() {
        rows += 1;
        correct += usize::from(digit == k / per_digit.max(1));
    }
    correct as f32 / rows.max(1) as f32
}

/// Share of `per_digit` samples per digit, `z ~ N(0, t^2 I)`, that `classifier` reads as
/// the digit asked for (images rounded to 8-bit pixels first, as a user sees them).
pub fn independent_fidelity<D: Device<f32>>(
    vae: &Vae<D>,
    classifier: &Classifier,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Result<Option<f32>> {
    if vae.config.classes == 0 {
        return Ok(None);
    }
    let input = fidelity_inputs(&vae.config, per_digit, temperature, seed);
    let read = classifier.read(&vae.decode_images(input))?;
    Ok(Some(share_read_as_asked(read, per_digit)))
}
