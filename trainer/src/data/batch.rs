//! A batch of MNIST images on the device, prepared as a run says: targets binarized or
//! not, noise on the encoder's input, one-hot labels, and the reparameterization's
//! standard-normal draws; and [`Images`], the dataset batches are drawn from, kept on the
//! device where it pays (a GPU) so that a batch is gathered there.

use dfdx::prelude::*;
use mnist::Dataset;
use rand_distr::{Distribution, StandardNormal};
use vae_core::PIXELS;

use crate::foundation::config::{Binarize, DataOptions, ModelConfig};
use crate::foundation::tensor::{padded_rows, Matrix};

/// One training or evaluation batch, already on the device.
pub struct Batch<D: Device<f32>> {
    /// Encoder input, (batch, 784).
    pub input: Matrix<D>,
    /// For a model whose encoder sees the label: `input` with `classes` zero columns
    /// after each row, where the class probabilities go
    /// ([`crate::foundation::tensor::place_columns`]).
    pub padded_input: Option<Matrix<D>>,
    /// Reconstruction target, (batch, 784), values in [0, 1].
    pub target: Matrix<D>,
    /// One-hot labels, (batch, classes); needed by conditional models.
    pub labels: Option<Matrix<D>>,
    /// Standard-normal noise for the reparameterization, (batch x samples, latent): the
    /// draws for image i in rows i x samples.. (i + 1) x samples.
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
        binarize(&mut pixels, options.binarize, rng);
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
        let padded_input =
            sees_label(model).then(|| padded_rows(dev, &pixels, PIXELS, model.classes));
        Batch {
            target,
            input,
            padded_input,
            labels: one_hot(dev, data, indices, model),
            noise: noise(dev, n * options.samples, model, rng),
        }
    }

    /// Draws of z per image: the noise's rows per image.
    pub fn samples(&self) -> usize {
        self.noise.shape().0 / self.len().max(1)
    }

    /// Every tensor's values on the host, named, in a fixed order (`None` where the
    /// batch has no such tensor): for comparing two batches.
    pub fn parts(&self) -> [(&'static str, Option<Vec<f32>>); 5] {
        [
            ("target", Some(self.target.as_vec())),
            ("input", Some(self.input.as_vec())),
            (
                "padded input",
                self.padded_input.as_ref().map(|t| t.as_vec()),
            ),
            ("labels", self.labels.as_ref().map(|t| t.as_vec())),
            ("noise", Some(self.noise.as_vec())),
        ]
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

/// A dataset that batches are drawn from: on the host and, where a device keeps it
/// there ([`Images::new`]), also on the device, as [`Batch::new`] would make each batch
/// of it (for a model whose encoder sees the label, padded as it pads them): a batch is
/// then a gather on the device. On a GPU, converting each batch on the host and copying
/// it over took longer than the step's own kernels at large batches.
pub struct Images<'a, D: Device<f32>> {
    /// The dataset, on the host.
    data: &'a Dataset,
    /// How each batch is treated.
    options: DataOptions,
    /// Its images on the device: plain, and padded for the encoder.
    on_device: Option<(Matrix<D>, Option<Matrix<D>>)>,
}

impl<'a, D: Device<f32>> Images<'a, D> {
    /// `data`, for batches shaped for `model` and treated as `options` say; uploaded to
    /// `dev` once if `keep`, unless `options` draw something afresh for every batch
    /// (dynamic binarization, input noise), which only the host does.
    pub fn new(
        dev: &D,
        data: &'a Dataset,
        model: &ModelConfig,
        options: DataOptions,
        keep: bool,
    ) -> Self {
        let on_device = (keep && options.binarize != Binarize::Dynamic && options.denoise == 0.0)
            .then(|| {
                let mut pixels = data.intensities(0..data.len());
                // Threshold binarization draws nothing: any generator will do.
                binarize(
                    &mut pixels,
                    options.binarize,
                    &mut rand::rngs::mock::StepRng::new(0, 0),
                );
                let padded =
                    sees_label(model).then(|| padded_rows(dev, &pixels, PIXELS, model.classes));
                (dev.tensor_from_vec(pixels, (data.len(), PIXELS)), padded)
            });
        Images {
            data,
            options,
            on_device,
        }
    }

    /// Images `indices` as a batch for `model` (the one given to [`Images::new`]),
    /// treated as its options say, with its draws from `rng`: the same batch, bit for
    /// bit, whether gathered on the device or made on the host.
    pub fn batch(
        &self,
        dev: &D,
        indices: &[usize],
        model: &ModelConfig,
        rng: &mut impl rand::Rng,
    ) -> Batch<D> {
        let Some((plain, padded)) = &self.on_device else {
            return Batch::new(dev, self.data, indices, model, self.options, rng);
        };
        let n = indices.len();
        let rows = dev.tensor_from_vec(indices.to_vec(), (n,));
        let target: Matrix<D> = plain.clone().gather(rows.clone());
        Batch {
            input: target.clone(),
            target,
            padded_input: padded.as_ref().map(|p| p.clone().gather(rows)),
            labels: one_hot(dev, self.data, indices, model),
            noise: noise(dev, n * self.options.samples, model, rng),
        }
    }
}

/// Whether a model's encoder takes the class probabilities beside the image.
fn sees_label(model: &ModelConfig) -> bool {
    model.classes > 0 && model.encoder_sees_label
}

/// Intensities treated as `how` says; dynamic binarization draws from `rng`.
fn binarize(pixels: &mut [f32], how: Binarize, rng: &mut impl rand::Rng) {
    match how {
        Binarize::None => {}
        Binarize::Threshold => pixels
            .iter_mut()
            .for_each(|p| *p = f32::from(u8::from(*p > 0.5))),
        Binarize::Dynamic => pixels
            .iter_mut()
            .for_each(|p| *p = f32::from(u8::from(rng.gen::<f32>() < *p))),
    }
}

/// One-hot labels of images `indices` of `data`, (batch, classes), for a conditional
/// model.
fn one_hot<D: Device<f32>>(
    dev: &D,
    data: &Dataset,
    indices: &[usize],
    model: &ModelConfig,
) -> Option<Matrix<D>> {
    (model.classes > 0).then(|| {
        let mut onehot = vec![0.0f32; indices.len() * model.classes];
        for (row, &i) in indices.iter().enumerate() {
            onehot[row * model.classes + usize::from(data.labels[i])] = 1.0;
        }
        dev.tensor_from_vec(onehot, (indices.len(), model.classes))
    })
}

/// The reparameterization's standard-normal draws, (rows, latent).
fn noise<D: Device<f32>>(
    dev: &D,
    rows: usize,
    model: &ModelConfig,
    rng: &mut impl rand::Rng,
) -> Matrix<D> {
    let noise: Vec<f32> = (0..rows * model.latent)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    dev.tensor_from_vec(noise, (rows, model.latent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::config::ModelConfig;
    use rand::{Rng, SeedableRng};

    /// Kept on the device or not, `Images` gives the same batches, bit for bit, and
    /// leaves the generator where it was: for every binarization and with input noise,
    /// for a model whose encoder sees the label and an unconditional one.
    #[test]
    fn kept_images_give_the_host_batches_bit_for_bit() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let data = Dataset {
            pixels: (0..50 * PIXELS).map(|_| rng.gen()).collect(),
            labels: (0..50).map(|_| rng.gen_range(0..10)).collect(),
        };
        let indices = [7, 3, 3, 49, 0, 12];
        let models = [
            ModelConfig::default(),
            ModelConfig::default().unconditional(),
        ];
        let binarizations = [Binarize::None, Binarize::Threshold, Binarize::Dynamic];
        for model in &models {
            for binarize in binarizations {
                for (denoise, samples) in [(0.0, 1), (0.3, 1), (0.0, 3)] {
                    let options = DataOptions {
                        binarize,
                        denoise,
                        samples,
                    };
                    let [host, kept] = [false, true].map(|keep| {
                        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
                        let images = Images::new(&dev, &data, model, options, keep);
                        let batch = images.batch(&dev, &indices, model, &mut rng);
                        let values = batch.parts().map(|(_, t)| {
                            t.map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                        });
                        (values, rng.gen::<u64>())
                    });
                    assert_eq!(host, kept, "{model:?} {options:?}");
                }
            }
        }
    }
}
