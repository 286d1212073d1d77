//! What the unit tests share: small models of every kind the trainer builds, a small
//! random data set, and the error measure their tolerances are stated in.

use mnist::Dataset;
use rand::Rng;
use vae_core::{Activation, PIXELS};

use crate::foundation::config::{ConvLayer, Convolutional, ModelConfig};

/// Every kind of model the trainer builds, small: unconditional, conditional with and
/// without the label fed to the encoder, ReLU and sigmoid, one and two hidden layers.
pub fn model_kinds() -> Vec<ModelConfig> {
    [
        (vec![64], vec![48], 0, false, Activation::Relu),
        (vec![64, 32], vec![48, 40], 0, false, Activation::Sigmoid),
        (vec![64], vec![48], 10, true, Activation::Relu),
        (vec![64], vec![48, 40], 10, false, Activation::Relu),
        (vec![32], vec![24], 4, true, Activation::Sigmoid),
    ]
    .into_iter()
    .map(
        |(encoder_hidden, decoder_hidden, classes, encoder_sees_label, activation)| ModelConfig {
            latent: 5,
            encoder_hidden,
            decoder_hidden,
            activation,
            classes,
            classifier_hidden: vec![16],
            encoder_sees_label,
            convolutional: None,
            critic_hidden: Vec::new(),
            critic_spectral_norm: false,
        },
    )
    .collect()
}

/// Small convolutional models: unconditional with ReLU and no dense hidden layer (the
/// tutorial's shape), and conditional with sigmoid and dense layers on both sides, its
/// encoder seeing the class probabilities beside its convolutions' output.
pub fn conv_model_kinds() -> Vec<ModelConfig> {
    let convolutional = |map_channels| Convolutional {
        encoder: vec![ConvLayer::new(4, 2), ConvLayer::new(6, 2)],
        map_side: 7,
        map_channels,
        decoder: vec![
            ConvLayer::new(5, 2),
            ConvLayer::new(3, 2),
            ConvLayer::new(1, 1),
        ],
    };
    vec![
        ModelConfig {
            latent: 3,
            encoder_hidden: vec![],
            decoder_hidden: vec![],
            convolutional: Some(convolutional(2)),
            ..ModelConfig::default().unconditional()
        },
        ModelConfig {
            latent: 3,
            encoder_hidden: vec![16],
            decoder_hidden: vec![12],
            activation: Activation::Sigmoid,
            classes: 4,
            classifier_hidden: vec![8],
            encoder_sees_label: true,
            convolutional: Some(convolutional(3)),
            critic_hidden: Vec::new(),
            critic_spectral_norm: false,
        },
    ]
}

/// `n` images of random pixels with random labels 0-3.
pub fn random_dataset(n: usize, rng: &mut impl Rng) -> Dataset {
    Dataset {
        pixels: (0..n * PIXELS).map(|_| rng.gen()).collect(),
        labels: (0..n).map(|_| rng.gen_range(0..4)).collect(),
    }
}

/// The largest difference between `ours` and `theirs`, relative to the largest
/// magnitude in `theirs`.
pub fn relative_error(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = ours
        .iter()
        .zip(theirs)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// Whether two loss values agree to `tolerance` relative (absolute below 1).
pub fn close(a: f32, b: f32, tolerance: f32) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}
