//! An independent digit classifier, to judge generated digits by something other than
//! the VAE's own classifier head: an MLP 784-512-512-10 with dropout, trained on the
//! MNIST training set alone.

use std::path::Path;

use anyhow::{Context, Result};
use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use mnist::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use vae_core::PIXELS;

use crate::io::{read_json, write_atomic_with, write_json};
use crate::metrics::argmax;
use crate::progress;

/// The network: two hidden layers of 512 with ReLU and dropout 0.2.
pub type Net = (
    (Linear<784, 512>, ReLU, DropoutOneIn<5>),
    (Linear<512, 512>, ReLU, DropoutOneIn<5>),
    Linear<512, 10>,
);

type Built = <Net as BuildOnDevice<Cpu, f32>>::Built;

/// A trained classifier.
pub struct Classifier {
    net: Built,
    dev: Cpu,
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
    /// Trains on `train` (batch 100, Adam 1e-3), reports accuracy on `test`, and saves
    /// the weights and the report into `out`.
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
        let mut order: Vec<usize> = (0..train.len()).collect();
        for epoch in 1..=epochs {
            order.shuffle(&mut rng);
            let label = format!("classifier epoch {epoch}/{epochs}");
            let bar = progress::bar(progress, order.len(), label);
            let mut total = 0.0f32;
            for (k, chunk) in order.chunks(100).enumerate() {
                let (x, y) = batch(&dev, train, chunk);
                let logits = net.forward_mut(x.traced(grads));
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
            };
            println!(
                "classifier epoch {epoch:>2}/{epochs}  train loss {:.4}  test accuracy {:.2}%",
                total / order.len().div_ceil(100) as f32,
                100.0 * classifier.accuracy(test)
            );
        }
        let classifier = Classifier { net, dev };
        let report = ClassifierReport {
            epochs,
            seed,
            test_accuracy: classifier.accuracy(test),
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
        net.load_safetensors(&path)
            .map_err(|e| anyhow::anyhow!("cannot load classifier {}: {e:?}", path.display()))?;
        let report = read_json(&dir.join(REPORT))?;
        Ok((Classifier { net, dev }, report))
    }

    /// The digit each image shows, by this classifier (images as 784 values in [0, 1]).
    pub fn predict(&self, images: &[f32]) -> Vec<usize> {
        let mut out = Vec::with_capacity(images.len() / PIXELS);
        for chunk in images.chunks(1000 * PIXELS) {
            let n = chunk.len() / PIXELS;
            let x = self
                .dev
                .tensor_from_vec(chunk.to_vec(), (n, Const::<PIXELS>));
            let logits = self.net.forward(x).as_vec();
            out.extend(logits.chunks_exact(10).map(argmax));
        }
        out
    }

    /// The digit each 8-bit image shows, by this classifier.
    pub fn read(&self, images: &[[u8; PIXELS]]) -> Vec<usize> {
        let x: Vec<f32> = images
            .as_flattened()
            .iter()
            .map(|&p| vae_core::intensity(p))
            .collect();
        self.predict(&x)
    }

    /// Share of `data` classified correctly.
    pub fn accuracy(&self, data: &Dataset) -> f32 {
        let correct = self
            .predict(&data.intensities(0..data.len()))
            .iter()
            .zip(&data.labels)
            .filter(|(p, &l)| **p == usize::from(l))
            .count();
        correct as f32 / data.len().max(1) as f32
    }
}

type Images = Tensor<(usize, Const<PIXELS>), f32, Cpu>;
type Labels = Tensor<(usize, Const<10>), f32, Cpu>;

fn batch(dev: &Cpu, data: &Dataset, indices: &[usize]) -> (Images, Labels) {
    let n = indices.len();
    let mut y = vec![0.0f32; n * 10];
    let x = data.intensities(indices.iter().copied());
    for (row, &i) in indices.iter().enumerate() {
        y[row * 10 + usize::from(data.labels[i])] = 1.0;
    }
    (
        dev.tensor_from_vec(x, (n, Const::<PIXELS>)),
        dev.tensor_from_vec(y, (n, Const::<10>)),
    )
}
