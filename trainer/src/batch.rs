//! A batch of MNIST images on the device, prepared as a run says: targets binarized or
//! not, noise on the encoder's input, one-hot labels, and the reparameterization's
//! standard-normal draws.

use dfdx::prelude::*;
use mnist::Dataset;
use rand_distr::{Distribution, StandardNormal};
use vae_core::PIXELS;

use crate::config::{Binarize, DataOptions, ModelConfig};
use crate::tensor::{padded_rows, Matrix};

/// One training or evaluation batch, already on the device.
pub struct Batch<D: Device<f32>> {
    /// Encoder input, (batch, 784).
    pub input: Matrix<D>,
    /// For a model whose encoder sees the label: `input` with `classes` zero columns
    /// after each row, where the class probabilities go
    /// ([`crate::tensor::place_columns`]).
    pub padded_input: Option<Matrix<D>>,
    /// Reconstruction target, (batch, 784), values in [0, 1].
    pub target: Matrix<D>,
    /// One-hot labels, (batch, classes); needed by conditional models.
    pub labels: Option<Matrix<D>>,
    /// Standard-normal noise for the reparameterization, (batch, latent).
    pub noise: Matrix<D>,
}

impl<D: Device<f32>> Batch<D> {
    /// Copies images `indices` of `data` to the device as intensities in [0, 1], treated
    /// as `options` say, for a model of shape `model`; binarization and noise are drawn
    /// from `rng`.
    pub fn new(
        dev: &D,
        data: &Dataset,
        indices: &[usize],
        model: &ModelConfig,
        options: DataOptions,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let n = indices.len();
        let mut pixels = data.intensities(indices.iter().copied());
        match options.binarize {
            Binarize::None => {}
            Binarize::Threshold => pixels
                .iter_mut()
                .for_each(|p| *p = f32::from(u8::from(*p > 0.5))),
            Binarize::Dynamic => pixels
                .iter_mut()
                .for_each(|p| *p = f32::from(u8::from(rng.gen::<f32>() < *p))),
        }
        let target: Matrix<D> = dev.tensor_from_vec(pixels.clone(), (n, PIXELS));
        let input = if options.denoise > 0.0 {
            for p in &mut pixels {
                let noise: f32 = StandardNormal.sample(rng);
                *p = (*p + options.denoise * noise).clamp(0.0, 1.0);
            }
            dev.tensor_from_vec(pixels.clone(), (n, PIXELS))
        } else {
            target.clone()
        };
        let padded_input = (model.classes > 0 && model.encoder_sees_label)
            .then(|| padded_rows(dev, &pixels, PIXELS, model.classes));
        let labels = (model.classes > 0).then(|| {
            let mut onehot = vec![0.0f32; n * model.classes];
            for (row, &i) in indices.iter().enumerate() {
                onehot[row * model.classes + usize::from(data.labels[i])] = 1.0;
            }
            dev.tensor_from_vec(onehot, (n, model.classes))
        });
        let noise: Vec<f32> = (0..n * model.latent)
            .map(|_| StandardNormal.sample(rng))
            .collect();
        Batch {
            target,
            input,
            padded_input,
            labels,
            noise: dev.tensor_from_vec(noise, (n, model.latent)),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.input.shape().0
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
