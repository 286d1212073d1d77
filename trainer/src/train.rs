//! The training loop: shuffled mini-batches, Adam, a test-set evaluation and a
//! checkpoint after every epoch.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::adam::Adam;
use crate::checkpoint::{self, RunDir};
use crate::data::Dataset;
use crate::exec::TrainDevice;
use crate::grad::{loss_and_gradients, DenseGrad};
use crate::io::{read_json, write_json};
use crate::model::{Batch, LossTerms, Matrix, ModelConfig, Vae, PIXELS};

/// Everything that decides a training run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Model shape.
    pub model: ModelConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Weight of the classifier cross-entropy in the loss (tutorial 1 uses 10).
    pub class_weight: f32,
    /// Seed for initialization, shuffling and noise.
    pub seed: u64,
    /// Train on the first N training images only (quick runs and tests).
    pub train_limit: Option<usize>,
    /// How pixel intensities become training targets.
    #[serde(default)]
    pub binarize: Binarize,
    /// Epochs over which the KL term's weight rises linearly from 0 to 1 (0: always 1).
    #[serde(default)]
    pub kl_warmup: usize,
    /// Denoising: the encoder sees `clip(x + denoise * N(0, 1), 0, 1)` and the decoder
    /// must reconstruct the clean `x` (0: off).
    #[serde(default)]
    pub denoise: f32,
    /// How the learning rate changes over the run.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
}

/// Learning rate over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Cosine annealing from the rate to 0 over all epochs (Loshchilov & Hutter).
    Cosine,
}

impl LrSchedule {
    /// The rate at step `step` (0-based) of `total`, for a base rate `base`.
    pub fn rate(self, base: f32, step: usize, total: usize) -> f32 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let t = step as f32 / total.max(1) as f32;
                base * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            }
        }
    }
}

/// How grey pixels are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// Intensities in [0, 1] as targets of the Bernoulli likelihood (PyTorch example).
    #[default]
    None,
    /// Each pixel drawn as Bernoulli(intensity), afresh every time an image is used
    /// (dynamic binarization, as in the IWAE paper).
    Dynamic,
    /// Pixels above 0.5 set to 1, others to 0, once (TensorFlow tutorial).
    Threshold,
}

/// Losses of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss terms over the epoch's batches, in nats per image.
    pub train: LossTerms,
    /// Loss terms on the 10,000 test images after the epoch (one z sample each).
    pub test: LossTerms,
    /// Training images per second during the epoch.
    pub images_per_second: f64,
    /// Share of 1,000 samples (z ~ N(0, I)) that the classifier head reads as the digit
    /// asked for; conditional models only.
    pub label_fidelity: Option<f32>,
}

/// Where a run's output goes and how chatty it is.
pub struct RunOptions<'a, D: Device<f32>> {
    /// The run folder (created if needed).
    pub out: &'a Path,
    /// Show progress bars (off for tests and non-interactive logs).
    pub progress: bool,
    /// Called after each epoch's checkpoint is written (pictures per epoch; tests use it
    /// to tamper with the model).
    pub after_epoch: Option<&'a EpochHook<'a, D>>,
}

/// Loss terms and gradients of one mini-batch (images `indices` of `data`), split into
/// [`TrainDevice::SHARDS`] near-equal parts that are drawn (binarization, noise) and
/// differentiated independently (in parallel on the CPU), each from its own generator
/// seeded from `rng`.
/// The terms are the mini-batch's; the gradients are one list per shard, to be summed
/// (by [`Adam::update`]). `weights` are the classifier and KL weights.
#[allow(clippy::too_many_arguments)]
pub fn sharded_gradients<D: TrainDevice>(
    dev: &D,
    vae: &Vae<D>,
    data: &Dataset,
    indices: &[usize],
    options: DataOptions,
    rng: &mut impl rand::Rng,
    weights: (f32, f32),
) -> (LossTerms, Vec<Vec<DenseGrad<D>>>) {
    let size = indices.len().div_ceil(D::SHARDS.max(1)).max(1);
    let jobs: Vec<ShardJob> = indices
        .chunks(size)
        .map(|part| ShardJob {
            data,
            indices: part,
            seed: rng.gen(),
            images: indices.len(),
            options,
            weights,
        })
        .collect();
    let (terms, grads): (Vec<LossTerms>, _) = D::run_shards(dev, vae, jobs).into_iter().unzip();
    (terms.into_iter().sum(), grads)
}

/// One shard of a mini-batch: see [`sharded_gradients`].
pub struct ShardJob<'a> {
    data: &'a Dataset,
    indices: &'a [usize],
    seed: u64,
    images: usize,
    options: DataOptions,
    weights: (f32, f32),
}

impl ShardJob<'_> {
    /// Draws the shard's batch and returns its loss terms and gradients.
    pub fn run<D: Device<f32>>(&self, dev: &D, vae: &Vae<D>) -> (LossTerms, Vec<DenseGrad<D>>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let batch = make_batch(
            dev,
            self.data,
            self.indices,
            &vae.config,
            self.options,
            &mut rng,
        );
        let (class_weight, kl_weight) = self.weights;
        loss_and_gradients(vae, &batch, self.images, class_weight, kl_weight)
    }
}

/// See [`RunOptions::after_epoch`].
pub type EpochHook<'a, D> = dyn Fn(usize, &mut Vae<D>) -> Result<()> + 'a;

/// Trains a model from scratch on `train`, evaluating on `test` after every epoch.
/// Returns the model and its per-epoch history, both also written to the run folder.
pub fn train<D: TrainDevice>(
    dev: &D,
    config: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    validate(config)?;
    std::fs::create_dir_all(opts.out)
        .with_context(|| format!("cannot create run folder {}", opts.out.display()))?;
    let run = RunDir(opts.out.to_path_buf());
    write_json(&run.config(), config)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let vae = Vae::new(dev, &config.model, &mut rng);
    let adam = Adam::new(&vae, config.learning_rate);
    run_epochs(dev, config, vae, adam, Vec::new(), train, test, opts)
}

/// Continues the run in `opts.out` where its last complete epoch left it, up to
/// `epochs` epochs in all (its saved count when `None`). Model, optimizer state and
/// step come from `resume.safetensors`; every epoch's randomness derives from the seed
/// and the epoch number alone, so the result equals an uninterrupted run.
pub fn resume<D: TrainDevice>(
    dev: &D,
    epochs: Option<usize>,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    let run = RunDir(opts.out.to_path_buf());
    let (mut config, vae, adam, done) = checkpoint::load_resume(dev, opts.out)?;
    if let Some(epochs) = epochs {
        config.epochs = epochs;
    }
    validate(&config)?;
    let mut history: Vec<EpochRecord> = read_json(&run.history())?;
    // The history is one epoch ahead if a stop fell between its write and the resume
    // state's (see `run_epochs`); that epoch is trained again.
    history.retain(|r| r.epoch <= done);
    if history.len() != done {
        bail!(
            "{} has {} epochs, the resume state {done}: the run folder is inconsistent",
            run.history().display(),
            history.len()
        );
    }
    if done >= config.epochs {
        bail!(
            "the run already has {done} of {} epochs; give --epochs to train further",
            config.epochs
        );
    }
    write_json(&run.config(), &config)?;
    println!("resuming {} after epoch {done}", opts.out.display());
    run_epochs(dev, &config, vae, adam, history, train, test, opts)
}

/// The random generator of epoch `epoch` (shuffling, noise): a function of the seed and
/// the epoch only, so that a resumed run draws what an uninterrupted one would.
fn epoch_rng(seed: u64, epoch: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[allow(clippy::too_many_arguments)]
fn run_epochs<D: TrainDevice>(
    dev: &D,
    config: &TrainConfig,
    mut vae: Vae<D>,
    mut adam: Adam<D>,
    mut history: Vec<EpochRecord>,
    train: &Dataset,
    test: &Dataset,
    opts: &RunOptions<D>,
) -> Result<(Vae<D>, Vec<EpochRecord>)> {
    let run = RunDir(opts.out.to_path_buf());
    let used = config
        .train_limit
        .map_or(train.len(), |n| n.min(train.len()));
    let steps_per_epoch = used.div_ceil(config.batch_size);
    let data = DataOptions::training(config);

    for epoch in history.len() + 1..=config.epochs {
        let mut rng = epoch_rng(config.seed, epoch);
        let mut order: Vec<usize> = (0..used).collect();
        order.shuffle(&mut rng);
        let bar = progress_bar(opts.progress, order.len(), epoch, config.epochs);
        let started = Instant::now();
        let mut sum = Totals::default();
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let global = (epoch - 1) * steps_per_epoch + step;
            let kl_weight = kl_weight(config.kl_warmup, steps_per_epoch, global);
            adam.lr = config.lr_schedule.rate(
                config.learning_rate,
                global,
                config.epochs * steps_per_epoch,
            );
            let (terms, grads) = sharded_gradients(
                dev,
                &vae,
                train,
                chunk,
                data,
                &mut rng,
                (config.class_weight, kl_weight),
            );
            let value = terms.neg_elbo() + config.class_weight * terms.classifier;
            if !value.is_finite() {
                bar.finish_and_clear();
                bail!(
                    "training diverged in epoch {epoch}: loss is {value}; try a lower \
                     --learning-rate ({})",
                    kept(epoch)
                );
            }
            adam.update(&mut vae, grads);
            sum.add(&terms, chunk.len());
            bar.inc(chunk.len() as u64);
            let mean = sum.mean();
            let class = if config.model.classes > 0 {
                format!(", class {:.3}", mean.classifier)
            } else {
                String::new()
            };
            bar.set_message(format!(
                "loss {:.2} (recon {:.2} + KL {:.2}{class})  {:.0} img/s",
                mean.neg_elbo(),
                mean.reconstruction,
                mean.kl,
                sum.images as f64 / started.elapsed().as_secs_f64()
            ));
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let test_terms = evaluate(dev, &vae, test, data.for_test(), config.seed ^ epoch as u64);
        let fidelity = label_fidelity(dev, &vae, 100, 1.0, config.seed);
        let record = EpochRecord {
            epoch,
            train: sum.mean(),
            test: test_terms,
            images_per_second: order.len() as f64 / seconds,
            label_fidelity: fidelity,
        };
        if !record.test.neg_elbo().is_finite() {
            bail!(
                "the test loss after epoch {epoch} is {} ({})",
                record.test.neg_elbo(),
                kept(epoch)
            );
        }
        let class = match record.label_fidelity {
            Some(f) => format!(
                "  class CE {:.3}  label fidelity {:.1}%",
                record.test.classifier,
                100.0 * f
            ),
            None => String::new(),
        };
        println!(
            "epoch {epoch:>3}/{}  train loss {:7.2}  test loss {:7.2} (recon {:6.2} + KL {:5.2}){class}  \
             {:>6.0} img/s",
            config.epochs,
            record.train.neg_elbo(),
            record.test.neg_elbo(),
            record.test.reconstruction,
            record.test.kl,
            record.images_per_second
        );
        history.push(record);
        // The history first, then the resume state, which alone says how far the run
        // got: a stop between the two leaves the history one epoch ahead, and `resume`
        // drops that record (the other order would lose a record it cannot rebuild).
        // Each file is written to a temporary name and renamed, so a stop leaves the
        // previous one whole.
        write_json(&run.history(), &history)?;
        checkpoint::save_resume(&vae, &adam, epoch, &run.resume())?;
        checkpoint::save(&vae, &run.checkpoint())?;
        if let Some(hook) = opts.after_epoch {
            hook(epoch, &mut vae)?;
        }
    }
    Ok((vae, history))
}

/// What is left when epoch `epoch` fails.
fn kept(epoch: usize) -> String {
    match epoch {
        1 => "no checkpoint was written".to_string(),
        _ => format!("the checkpoint of epoch {} is kept", epoch - 1),
    }
}

/// The KL term's weight at step `global` (0-based) with a warm-up of `warmup` epochs.
fn kl_weight(warmup: usize, steps_per_epoch: usize, global: usize) -> f32 {
    if warmup == 0 {
        return 1.0;
    }
    let total = (warmup * steps_per_epoch) as f32;
    ((global + 1) as f32 / total).min(1.0)
}

fn validate(config: &TrainConfig) -> Result<()> {
    let m = &config.model;
    if m.latent == 0 {
        bail!("latent size must be at least 1");
    }
    if config.batch_size == 0 {
        bail!("batch size must be at least 1");
    }
    if config.epochs == 0 {
        bail!("epochs must be at least 1");
    }
    if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        bail!("learning rate must be a positive number");
    }
    if !(config.denoise >= 0.0 && config.denoise.is_finite()) {
        bail!("--denoise must be 0 (off) or a positive noise level");
    }
    if m.classes == 1 || m.classes > 10 {
        bail!("classes must be 0 (unconditional) or 2 to 10");
    }
    let widths = m
        .encoder_hidden
        .iter()
        .chain(&m.decoder_hidden)
        .chain(&m.classifier_hidden);
    if widths.clone().any(|&w| w == 0) {
        bail!("hidden layer widths must be at least 1");
    }
    // The decoder must fit the model file and the microcontroller's fixed buffers.
    m.decoder_architecture()
        .context("the decoder does not fit the model file format")?;
    Ok(())
}

/// Mean loss terms of `vae` on `data` prepared as `options` say, one z sample per image,
/// noise drawn from `seed`.
pub fn evaluate<D: Device<f32>>(
    dev: &D,
    vae: &Vae<D>,
    data: &Dataset,
    options: DataOptions,
    seed: u64,
) -> LossTerms {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let order: Vec<usize> = (0..data.len()).collect();
    let mut sum = Totals::default();
    for chunk in order.chunks(1000) {
        let batch = make_batch(dev, data, chunk, &vae.config, options, &mut rng);
        let (_, terms) = vae.loss(&batch, 0.0, 1.0, NoneTape);
        sum.add(&terms, chunk.len());
    }
    sum.mean()
}

/// Share of decoded samples that the model's own classifier head reads as the digit
/// they were drawn for: `per_digit` samples of each class with `z ~ N(0, temperature^2 I)`.
/// `None` for an unconditional model.
pub fn label_fidelity<D: Device<f32>>(
    dev: &D,
    vae: &Vae<D>,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Option<f32> {
    let classifier = vae.classifier.as_ref()?;
    let (latent, classes) = (vae.config.latent, vae.config.classes);
    let input = fidelity_inputs(&vae.config, per_digit, temperature, seed);
    let n = per_digit * classes;
    let images = vae.decode(dev.tensor_from_vec(input, (n, latent + classes)));
    let logits = classifier.forward(images, false).as_vec();
    let correct = logits
        .chunks_exact(classes)
        .enumerate()
        .filter(|(k, row)| argmax(row) == k / per_digit)
        .count();
    Some(correct as f32 / n as f32)
}

/// Decoder inputs `[z, one-hot(k)]` for label fidelity: `per_digit` rows for each digit
/// k in turn, `z ~ N(0, temperature^2 I)` drawn from `seed`.
pub fn fidelity_inputs(
    model: &ModelConfig,
    per_digit: usize,
    temperature: f32,
    seed: u64,
) -> Vec<f32> {
    let (latent, classes) = (model.latent, model.classes);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = per_digit * classes;
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

/// How images become a batch: binarization of the targets, input noise.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DataOptions {
    /// Treatment of grey pixels (targets and encoder input alike).
    pub binarize: Binarize,
    /// Standard deviation of the Gaussian noise added to the encoder's input (clipped to
    /// [0, 1]); the target stays clean.
    pub denoise: f32,
}

impl DataOptions {
    /// As a run trains.
    pub fn training(config: &TrainConfig) -> Self {
        DataOptions {
            binarize: config.binarize,
            denoise: config.denoise,
        }
    }

    /// As a run is evaluated: the same pixels, no input noise.
    pub fn for_test(self) -> Self {
        DataOptions {
            denoise: 0.0,
            ..self
        }
    }
}

/// Copies images `indices` of `data` to the device as a batch scaled to [0, 1], treated
/// as `options` say; binarization and noise are drawn from `rng`.
pub fn make_batch<D: Device<f32>>(
    dev: &D,
    data: &Dataset,
    indices: &[usize],
    model: &ModelConfig,
    options: DataOptions,
    rng: &mut impl rand::Rng,
) -> Batch<D> {
    let n = indices.len();
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for &i in indices {
        let image = data.image(i).iter().map(|&p| f32::from(p) / 255.0);
        match options.binarize {
            Binarize::None => pixels.extend(image),
            Binarize::Threshold => pixels.extend(image.map(|p| f32::from(u8::from(p > 0.5)))),
            Binarize::Dynamic => {
                for p in image {
                    pixels.push(f32::from(u8::from(rng.gen::<f32>() < p)));
                }
            }
        }
    }
    let target: Matrix<D> = dev.tensor_from_vec(pixels.clone(), (n, PIXELS));
    let input = if options.denoise > 0.0 {
        for p in &mut pixels {
            let noise: f32 = StandardNormal.sample(rng);
            *p = (*p + options.denoise * noise).clamp(0.0, 1.0);
        }
        dev.tensor_from_vec(pixels, (n, PIXELS))
    } else {
        target.clone()
    };
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
        labels,
        noise: dev.tensor_from_vec(noise, (n, model.latent)),
    }
}

/// Running sums of loss terms, weighted by batch size.
#[derive(Default)]
struct Totals {
    images: usize,
    sum: LossTerms,
}

impl Totals {
    fn add(&mut self, t: &LossTerms, n: usize) {
        let w = n as f32;
        self.images += n;
        self.sum.reconstruction += t.reconstruction * w;
        self.sum.kl += t.kl * w;
        self.sum.classifier += t.classifier * w;
    }

    fn mean(&self) -> LossTerms {
        let n = self.images.max(1) as f32;
        LossTerms {
            reconstruction: self.sum.reconstruction / n,
            kl: self.sum.kl / n,
            classifier: self.sum.classifier / n,
        }
    }
}

fn progress_bar(show: bool, len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}
