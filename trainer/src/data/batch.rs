//! A batch of MNIST images on the device, prepared as a run says: targets binarized or
//! not, noise on the encoder's input, one-hot labels, and the reparameterization's
//! standard-normal draws; and [`Images`], the dataset batches are drawn from, kept on the
//! device where it pays (a GPU) so that a batch is gathered there.
//!
//! [`Images`]: crate::data::batch::Images

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
    /// z drawn from the prior, (batch, latent), one per image: the decoder's samples
    /// the critic judges ([`DataOptions::prior`]; `None`: not drawn).
    pub prior: Option<Matrix<D>>,
}

/// Images per batch where a whole data set is evaluated.
pub const EVALUATION_BATCH: usize = 1000;

/// One batch on the host, as drawn: what [`Batch::new`] uploads, and what the CPU's
/// training step ([`crate::nn::host`]) reads directly.
#[derive(Clone)]
pub struct HostBatch {
    /// Images.
    pub len: usize,
    /// Reconstruction targets, `len` rows of 784 values in [0, 1].
    pub target: Vec<f32>,
    /// The encoder's input, `target` with noise (`None`: `target` itself).
    pub noisy: Option<Vec<f32>>,
    /// Labels, one per image, for a conditional model (empty otherwise).
    pub labels: Vec<u8>,
    /// Standard-normal noise for the reparameterization, (len x samples, latent): the
    /// draws for image i in rows i x samples.. (i + 1) x samples.
    pub noise: Vec<f32>,
    /// z drawn from the prior, `len` rows of the latent size ([`DataOptions::prior`];
    /// empty: not drawn).
    pub prior: Vec<f32>,
}

impl HostBatch {
    /// Images `indices` of `data` as intensities in [0, 1], treated as `options` say,
    /// for a model of shape `model`; binarization and noise are drawn from `rng`.
    pub fn draw(
        data: &Dataset,
        indices: &[usize],
        model: &ModelConfig,
        options: DataOptions,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let mut target = data.intensities(indices.iter().copied());
        binarize(&mut target, options.binarize, rng);
        let noisy = (options.denoise > 0.0).then(|| {
            let mut pixels = target.clone();
            for p in &mut pixels {
                let noise: f32 = StandardNormal.sample(rng);
                *p = (*p + options.denoise * noise).clamp(0.0, 1.0);
            }
            pixels
        });
        let noise = noise(indices.len() * options.samples, model, rng);
        HostBatch {
            len: indices.len(),
            target,
            noisy,
            labels: labels(data, indices, model),
            noise,
            prior: prior(indices.len(), model, options, rng),
        }
    }

    /// The encoder's input, `len` rows of 784 values.
    pub fn input(&self) -> &[f32] {
        self.noisy.as_deref().unwrap_or(&self.target)
    }

    /// The images before `at` and those from `at` on, as two batches.
    pub fn split(self, at: usize) -> [HostBatch; 2] {
        let at = at.min(self.len);
        let noise_per_image = self.noise.len() / self.len.max(1);
        let halve = |mut v: Vec<f32>, per: usize| {
            let tail = v.split_off(at * per);
            [v, tail]
        };
        let [target, target_tail] = halve(self.target, PIXELS);
        let [noisy, noisy_tail] = match self.noisy {
            Some(v) => halve(v, PIXELS).map(Some),
            None => [None, None],
        };
        let [noise, noise_tail] = halve(self.noise, noise_per_image);
        let prior_per_image = self.prior.len() / self.len.max(1);
        let [prior, prior_tail] = halve(self.prior, prior_per_image);
        let mut labels = self.labels;
        let labels_tail = labels.split_off(at.min(labels.len()));
        [
            HostBatch {
                len: at,
                target,
                noisy,
                labels,
                noise,
                prior,
            },
            HostBatch {
                len: self.len - at,
                target: target_tail,
                noisy: noisy_tail,
                labels: labels_tail,
                noise: noise_tail,
                prior: prior_tail,
            },
        ]
    }
}

impl<D: Device<f32>> Batch<D> {
    /// Copies images `indices` of `data` to the device as intensities in [0, 1], treated
    /// as `options` say, for a model of shape `model`; binarization and noise are drawn
    /// from `rng` ([`HostBatch::draw`]).
    pub fn new(
        dev: &D,
        data: &Dataset,
        indices: &[usize],
        model: &ModelConfig,
        options: DataOptions,
        rng: &mut impl rand::Rng,
    ) -> Self {
        Batch::upload(
            dev,
            HostBatch::draw(data, indices, model, options, rng),
            model,
        )
    }

    /// `host` on the device, shaped for a model of shape `model`.
    pub fn upload(dev: &D, host: HostBatch, model: &ModelConfig) -> Self {
        let n = host.len;
        let padded_input =
            sees_label(model).then(|| padded_rows(dev, host.input(), PIXELS, model.classes));
        let labels = one_hot(dev, &host.labels, model);
        let target: Matrix<D> = dev.tensor_from_vec(host.target, (n, PIXELS));
        let input = match host.noisy {
            Some(noisy) => dev.tensor_from_vec(noisy, (n, PIXELS)),
            None => target.clone(),
        };
        let draws = host.noise.len() / model.latent.max(1);
        let prior = (!host.prior.is_empty()).then(|| {
            let rows = host.prior.len() / model.latent.max(1);
            dev.tensor_from_vec(host.prior, (rows, model.latent))
        });
        Batch {
            target,
            input,
            padded_input,
            labels,
            noise: dev.tensor_from_vec(host.noise, (draws, model.latent)),
            prior,
        }
    }

    /// Draws of z per image: the noise's rows per image.
    pub fn samples(&self) -> usize {
        self.noise.shape().0 / self.len().max(1)
    }

    /// Every tensor's values on the host, named, in a fixed order (`None` where the
    /// batch has no such tensor): for comparing two batches.
    pub fn parts(&self) -> [(&'static str, Option<Vec<f32>>); 6] {
        [
            ("target", Some(self.target.as_vec())),
            ("input", Some(self.input.as_vec())),
            (
                "padded input",
                self.padded_input.as_ref().map(|t| t.as_vec()),
            ),
            ("labels", self.labels.as_ref().map(|t| t.as_vec())),
            ("noise", Some(self.noise.as_vec())),
            ("prior", self.prior.as_ref().map(|t| t.as_vec())),
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
        let rows_of_noise = n * self.options.samples;
        let noise = dev.tensor_from_vec(
            noise(rows_of_noise, model, rng),
            (rows_of_noise, model.latent),
        );
        let prior = prior(n, model, self.options, rng);
        Batch {
            input: target.clone(),
            target,
            padded_input: padded.as_ref().map(|p| p.clone().gather(rows)),
            labels: one_hot(dev, &labels(self.data, indices, model), model),
            noise,
            prior: (!prior.is_empty()).then(|| dev.tensor_from_vec(prior, (n, model.latent))),
        }
    }

    /// The dataset on the host and how its batches are treated: batches as
    /// [`Images::batch`] makes them, drawn on the host ([`HostImages::batch`]).
    pub fn on_host(&self) -> HostImages<'a> {
        HostImages {
            data: self.data,
            options: self.options,
        }
    }
}

/// A dataset on the host and how its batches are treated ([`Images::on_host`]).
#[derive(Clone, Copy)]
pub struct HostImages<'a> {
    data: &'a Dataset,
    options: DataOptions,
}

impl HostImages<'_> {
    /// Images `indices` as a batch for `model`, with its draws from `rng`: as
    /// [`Images::batch`] would make it.
    pub fn batch(
        &self,
        indices: &[usize],
        model: &ModelConfig,
        rng: &mut impl rand::Rng,
    ) -> HostBatch {
        HostBatch::draw(self.data, indices, model, self.options, rng)
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

/// The labels of images `indices` of `data` for a conditional model (none for an
/// unconditional one).
fn labels(data: &Dataset, indices: &[usize], model: &ModelConfig) -> Vec<u8> {
    if model.classes == 0 {
        return Vec::new();
    }
    indices.iter().map(|&i| data.labels[i]).collect()
}

/// `labels` one-hot, (batch, classes), for a conditional model.
fn one_hot<D: Device<f32>>(dev: &D, labels: &[u8], model: &ModelConfig) -> Option<Matrix<D>> {
    (model.classes > 0).then(|| {
        let mut onehot = vec![0.0f32; labels.len() * model.classes];
        for (row, &label) in labels.iter().enumerate() {
            onehot[row * model.classes + usize::from(label)] = 1.0;
        }
        dev.tensor_from_vec(onehot, (labels.len(), model.classes))
    })
}

/// z from the prior for each of `images` images, where `options` ask for it
/// ([`DataOptions::prior`]; empty otherwise), drawn after the reparameterization's.
fn prior(
    images: usize,
    model: &ModelConfig,
    options: DataOptions,
    rng: &mut impl rand::Rng,
) -> Vec<f32> {
    if options.prior {
        noise(images, model, rng)
    } else {
        Vec::new()
    }
}

/// The reparameterization's standard-normal draws, `rows` x latent.
fn noise(rows: usize, model: &ModelConfig, rng: &mut impl rand::Rng) -> Vec<f32> {
    (0..rows * model.latent)
        .map(|_| StandardNormal.sample(rng))
        .collect()
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
                let kinds = [
                    (0.0, 1, false),
                    (0.3, 1, false),
                    (0.0, 3, false),
                    (0.0, 1, true),
                ];
                for (denoise, samples, prior) in kinds {
                    let options = DataOptions {
                        binarize,
                        denoise,
                        samples,
                        prior,
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
