//! What training and evaluation measure a model by: its mean loss on a data set, and
//! how often its samples read as the digit they were drawn for.

use dfdx::prelude::*;
use mnist::Dataset;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::batch::Batch;
use crate::config::{DataOptions, ModelConfig};
use crate::loss::{LossTerms, MeanLoss};
use crate::model::Vae;

/// Mean loss terms of `vae` on `data` prepared as `options` say, one z sample per image,
/// noise drawn from `seed`.
pub fn mean_loss<D: Device<f32>>(
    vae: &Vae<D>,
    data: &Dataset,
    options: DataOptions,
    seed: u64,
) -> LossTerms {
    let dev = vae.device();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let order: Vec<usize> = (0..data.len()).collect();
    let mut sum = MeanLoss::default();
    for chunk in order.chunks(1000) {
        let batch = Batch::new(&dev, data, chunk, &vae.config, options, &mut rng);
        let (_, terms) = vae.loss(&batch, 0.0, 1.0, NoneTape);
        sum.add(&terms, chunk.len());
    }
    sum.mean()
}

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
    let n = per_digit * if classes > 0 { classes } else { 10 };
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

/// Index of the largest value (the first one on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
