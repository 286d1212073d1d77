//! The independent digit classifier that judges generated digits ("the judge"): a small
//! convolutional network trained on the MNIST training set alone, with its own seed, so
//! that it shares nothing with any VAE it judges. `vae eval` reads label fidelity with
//! it, and the Fréchet distance on its penultimate-layer features.
//!
//! The network: 5x5 convolution to 32 channels, ReLU, 2x2 max-pool; 5x5 convolution to
//! 64 channels, ReLU, 2x2 max-pool; dense 1024 -> 128, ReLU (the features); dropout 0.5
//! in training; dense 128 -> 10. dfdx 0.13's `Conv2D` and `MaxPool2D` modules exist only
//! with its `nightly` feature (they need `generic_const_exprs`), so each convolution is a
//! `Linear` applied to every 5x5 patch, the patches gathered from the feature maps with
//! dfdx's `gather` (which back-propagates into the maps), and each max-pool is the
//! elementwise maximum of four gathers. Feature maps are kept channels-last, one image a
//! row: value `(y * width + x) * channels + c`. It runs on the CPU only.

use std::path::Path;

use anyhow::{Context, Result};
use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use mnist::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use vae_core::PIXELS;

use crate::foundation::io::{read_json, write_atomic_with, write_json};
use crate::foundation::progress;
use crate::foundation::tensor::{argmax, gather_rows};

/// The parameters: the two convolutions (a dense layer over each 25-pixel, then
/// 25x32-value, patch), then the two dense layers.
pub type Net = (
    Linear<25, 32>,
    Linear<800, 64>,
    Linear<1024, 128>,
    Linear<128, 10>,
);

type Built = <Net as BuildOnDevice<Cpu, f32>>::Built;

/// Width of the penultimate layer, whose values are the judge's features.
pub const FEATURES: usize = 128;

/// Side of an MNIST image, of the first and second convolutions' outputs, and of the
/// second pooled map.
const SIDE: usize = 28;
const CONV1: usize = SIDE - 4;
const POOL1: usize = CONV1 / 2;
const CONV2: usize = POOL1 - 4;
const POOL2: usize = CONV2 / 2;

/// Images a batch at inference (bounded memory; results do not depend on it).
const INFERENCE_BATCH: usize = 500;

/// Where each value of a gathered map comes from, one index per output value of an
/// image, shared by every image of a batch.
struct Gathers {
    /// Four maps, one per corner of the 2x2 pooling windows over the first
    /// convolution's output.
    pool1: [Vec<usize>; 4],
    /// The second convolution's 5x5x32 patches, patch after patch.
    conv2: Vec<usize>,
    /// The same four corners over the second convolution's output.
    pool2: [Vec<usize>; 4],
}

impl Gathers {
    fn new() -> Self {
        let pool = |side: usize, channels: usize, (a, b): (usize, usize)| {
            let half = side / 2;
            let mut idx = Vec::with_capacity(half * half * channels);
            for y in 0..half {
                for x in 0..half {
                    for c in 0..channels {
                        idx.push(((2 * y + a) * side + 2 * x + b) * channels + c);
                    }
                }
            }
            idx
        };
        let corners = [(0, 0), (0, 1), (1, 0), (1, 1)];
        let mut conv2 = Vec::with_capacity(CONV2 * CONV2 * 800);
        for y in 0..CONV2 {
            for x in 0..CONV2 {
                for dy in 0..5 {
                    for dx in 0..5 {
                        for c in 0..32 {
                            conv2.push(((y + dy) * POOL1 + x + dx) * 32 + c);
                        }
                    }
                }
            }
        }
        Gathers {
            pool1: corners.map(|corner| pool(CONV1, 32, corner)),
            conv2,
            pool2: corners.map(|corner| pool(CONV2, 64, corner)),
        }
    }
}

/// The first convolution's 5x5 patches of `images` (784 intensities each), built on the
/// host since the images need no gradient: (images x 576 patches, 25).
fn patches(dev: &Cpu, images: &[f32]) -> Tensor<(usize, Const<25>), f32, Cpu> {
    let n = images.len() / PIXELS;
    let mut out = Vec::with_capacity(n * CONV1 * CONV1 * 25);
    for image in images.chunks_exact(PIXELS) {
        for y in 0..CONV1 {
            for x in 0..CONV1 {
                for dy in 0..5 {
                    let row = (y + dy) * SIDE + x;
                    out.extend_from_slice(image.get(row..row + 5).unwrap_or(&[0.0; 5]));
                }
            }
        }
    }
    dev.tensor_from_vec(out, (n * CONV1 * CONV1, Const::<25>))
}

/// 2x2 max-pooling: the elementwise maximum of the four corners' gathers.
fn max_pool<T: Tape<f32, Cpu> + Merge<T>>(
    map: Tensor<(usize, usize), f32, Cpu, T>,
    corners: &[Vec<usize>; 4],
) -> Tensor<(usize, usize), f32, Cpu, T> {
    let (map, tape) = map.split_tape();
    let [a, b, c, d] = corners;
    let first = gather_rows(map.clone().put_tape(tape), a);
    let rest = [b, c, d].map(|idx| gather_rows(map.retaped::<T>(), idx));
    rest.into_iter().fold(first, |acc, x| acc.maximum(x))
}

/// The judge's forward pass up to its features: (images, 128), after the ReLU.
// The reshapes only relabel the rows of contiguous tensors; on the CPU, where this
// network runs, they copy nothing (clippy.toml forbids them for the trainer's CUDA path).
#[allow(clippy::disallowed_methods)]
fn features<T: Tape<f32, Cpu> + Merge<T>>(
    net: &Built,
    gathers: &Gathers,
    patches: Tensor<(usize, Const<25>), f32, Cpu, T>,
) -> Result<Tensor<(usize, Const<FEATURES>), f32, Cpu, T>> {
    let n = patches.shape().0 / (CONV1 * CONV1);
    let reshape_err = |e| anyhow::anyhow!("judge: feature map of unexpected size: {e:?}");
    let conv1 = net.0.forward(patches).relu();
    let conv1 = conv1
        .try_reshape_like(&(n, CONV1 * CONV1 * 32))
        .map_err(reshape_err)?;
    let pooled = max_pool(conv1, &gathers.pool1);
    let patches2 = gather_rows(pooled, &gathers.conv2)
        .try_reshape_like(&(n * CONV2 * CONV2, Const::<800>))
        .map_err(reshape_err)?;
    let conv2 = net.1.forward(patches2).relu();
    let conv2 = conv2
        .try_reshape_like(&(n, CONV2 * CONV2 * 64))
        .map_err(reshape_err)?;
    let pooled = max_pool(conv2, &gathers.pool2)
        .try_reshape_like(&(n, Const::<{ POOL2 * POOL2 * 64 }>))
        .map_err(reshape_err)?;
    Ok(net.2.forward(pooled).relu())
}

/// A trained classifier.
pub struct Classifier {
    net: Built,
    dev: Cpu,
    gathers: Gathers,
}

/// What `train` measured, saved as `classifier.json` next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierReport {
    /// Epochs trained.
    pub epochs: usize,
    /// Seed of initialization, shuffling and dropout.
    pub seed: u64,
    /// Share of the 10,000 test images classified correctly.
    pub test_accuracy: f32,
}

const WEIGHTS: &str = "classifier.safetensors";
const REPORT: &str = "classifier.json";

impl Classifier {
    /// Trains on `train` (batch 100, Adam from 1e-3, the rate times 0.8 each epoch),
    /// reports accuracy on `test`, and saves the weights and the report into `out`.
    pub fn train(
        train: &Dataset,
        test: &Dataset,
        epochs: usize,
        seed: u64,
        out: &Path,
        progress: bool,
    ) -> Result<(Self, ClassifierReport)> {
        let dev = Cpu::seed_from_u64(seed);
        let mut net = dev.build_module::<Net, f32>();
        let mut grads = net.alloc_grads();
        let mut opt = Adam::new(&net, AdamConfig::default());
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let gathers = Gathers::new();
        let mut order: Vec<usize> = (0..train.len()).collect();
        for epoch in 1..=epochs {
            opt.cfg.lr = 1e-3 * 0.8f64.powi(epoch as i32 - 1);
            order.shuffle(&mut rng);
            let label = format!("classifier epoch {epoch}/{epochs}");
            let bar = progress::bar(progress, order.len(), label);
            let mut total = 0.0f32;
            for (k, chunk) in order.chunks(100).enumerate() {
                let (x, y) = batch(&dev, train, chunk);
                let features = features(&net, &gathers, x.traced(grads))?;
                let logits = net.3.forward(features.dropout(0.5));
                let loss = cross_entropy_with_logits_loss(logits, y);
                total += loss.array();
                grads = loss.backward();
                opt.update(&mut net, &grads)
                    .map_err(|e| anyhow::anyhow!("optimizer: {e:?}"))?;
                net.zero_grads(&mut grads);
                bar.inc(chunk.len() as u64);
                bar.set_message(format!("loss {:.4}", total / (k + 1) as f32));
            }
            bar.finish_and_clear();
            let classifier = Classifier {
                net: net.clone(),
                dev: dev.clone(),
                gathers: Gathers::new(),
            };
            crate::say!(
                "classifier epoch {epoch:>2}/{epochs}  train loss {:.4}  test accuracy {:.2}%",
                total / order.len().div_ceil(100) as f32,
                100.0 * classifier.accuracy(test)?
            );
        }
        let classifier = Classifier { net, dev, gathers };
        let report = ClassifierReport {
            epochs,
            seed,
            test_accuracy: classifier.accuracy(test)?,
        };
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        write_atomic_with(&out.join(WEIGHTS), |tmp| {
            classifier
                .net
                .save_safetensors(tmp)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e:?}", tmp.display()))
        })?;
        write_json(&out.join(REPORT), &report)?;
        Ok((classifier, report))
    }

    /// Loads a classifier saved by [`Classifier::train`] from `dir`.
    pub fn load(dir: &Path) -> Result<(Self, ClassifierReport)> {
        let dev = Cpu::default();
        let mut net = dev.build_module::<Net, f32>();
        let path = dir.join(WEIGHTS);
        net.load_safetensors(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot load the classifier {} ({e:?}); train one with `vae train-classifier`",
                path.display()
            )
        })?;
        let report = read_json(&dir.join(REPORT))?;
        let gathers = Gathers::new();
        Ok((Classifier { net, dev, gathers }, report))
    }

    /// The judge's reading of each image (784 intensities in [0, 1] each): its
    /// penultimate-layer features (128 per image, image after image) and the digit.
    pub fn judge(&self, images: &[f32]) -> Result<(Vec<f32>, Vec<usize>)> {
        let mut features_out = Vec::with_capacity(images.len() / PIXELS * FEATURES);
        let mut digits = Vec::with_capacity(images.len() / PIXELS);
        for chunk in images.chunks(INFERENCE_BATCH * PIXELS) {
            let f = features(&self.net, &self.gathers, patches(&self.dev, chunk))?;
            let logits = self.net.3.forward(f.clone()).as_vec();
            features_out.extend(f.as_vec());
            digits.extend(logits.chunks_exact(10).map(argmax));
        }
        Ok((features_out, digits))
    }

    /// The digit each image shows, by this classifier (images as 784 values in [0, 1]).
    pub fn predict(&self, images: &[f32]) -> Result<Vec<usize>> {
        Ok(self.judge(images)?.1)
    }

    /// The digit each 8-bit image shows, by this classifier.
    pub fn read(&self, images: &[[u8; PIXELS]]) -> Result<Vec<usize>> {
        self.predict(&intensities(images))
    }

    /// Share of `data` classified correctly.
    pub fn accuracy(&self, data: &Dataset) -> Result<f32> {
        let correct = self
            .predict(&data.intensities(0..data.len()))?
            .iter()
            .zip(&data.labels)
            .filter(|(p, &l)| **p == usize::from(l))
            .count();
        Ok(correct as f32 / data.len().max(1) as f32)
    }
}

/// 8-bit images as the intensities the judge reads.
pub fn intensities(images: &[[u8; PIXELS]]) -> Vec<f32> {
    images
        .as_flattened()
        .iter()
        .map(|&p| vae_core::intensity(p))
        .collect()
}

type Labels = Tensor<(usize, Const<10>), f32, Cpu>;

fn batch(
    dev: &Cpu,
    data: &Dataset,
    indices: &[usize],
) -> (Tensor<(usize, Const<25>), f32, Cpu>, Labels) {
    let n = indices.len();
    let mut y = vec![0.0f32; n * 10];
    for (row, &i) in indices.iter().enumerate() {
        y[row * 10 + usize::from(data.labels[i])] = 1.0;
    }
    (
        patches(dev, &data.intensities(indices.iter().copied())),
        dev.tensor_from_vec(y, (n, Const::<10>)),
    )
}
