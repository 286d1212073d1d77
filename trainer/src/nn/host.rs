//! The training step on the CPU, on plain host buffers: the objectives of
//! [`crate::nn::model`] (the ELBO and the importance-weighted bound), their gradients
//! derived by hand (the one closed form, tested against dfdx's tape,
//! [`crate::nn::tape`]), and Adam's update ([`crate::nn::adam::Hyper::step`]), without
//! dfdx's costs on the CPU.
//!
//! Through dfdx a step spent about half its time outside its matrix products: every
//! operation allocates its result, walks it with a strided kernel on one thread, and
//! runs libm one element at a time; and its matrix products (the `gemm` crate, 0.15)
//! reached about 55 % of the cores' peak on the step's shapes. Here the matrix products
//! go to the `matrixmultiply` crate (about 80 % on the same shapes, BENCHMARKS.md),
//! each elementwise chain is one loop over buffers a shard keeps from step to step, and
//! Adam's update is one pass per parameter that also sums the shards' gradients.
//!
//! The weights and Adam's state live in [`HostModel`] from a run's first step to its
//! last ([`crate::train::step::Training`]); what reads the model gets it as a [`Vae`]
//! ([`crate::nn::host::HostModel::model`]), its f32 values copied, not recomputed.
//!
//! [`HostModel`]: crate::nn::host::HostModel
//! [`Vae`]: crate::nn::model::Vae

use dfdx::prelude::*;
use mnist::Dataset;
use rand::SeedableRng;
use rayon::prelude::*;
use vae_core::{Activation, PIXELS};

use crate::data::batch::{HostBatch, HostImages, EVALUATION_BATCH};
use crate::foundation::config::{DataOptions, ModelConfig};
use crate::foundation::importance_weights::{log_mean_exp, normalized_weights};
use crate::foundation::matmul::{matmul, PackedLayer};
use crate::foundation::vector_math;
use crate::nn::adam::{AdamSettings, AdamState, Hyper};
use crate::nn::conv::{ConvScratch, HostConv};
use crate::nn::model::{LossTerms, LossWeights, MeanLoss, Vae};
use crate::nn::spectral;

/// One dense layer's parameters and Adam's moments, as in [`crate::nn::model::Layer`]:
/// weights (inputs, outputs) row major; for a convolution, its windows' dense layer.
struct HostLayer {
    inputs: usize,
    outputs: usize,
    conv: Option<HostConv>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// Adam's first and second moments of the weights, then of the biases.
    moments: [Vec<f32>; 4],
}

impl HostLayer {
    /// `y = x W + b` for the `rows` rows of `x` (or the convolution's output).
    fn forward(&self, x: &[f32], rows: usize, scratch: &mut ConvScratch, y: &mut Vec<f32>) {
        if let Some(conv) = &self.conv {
            return conv.forward((&self.weight, &self.bias), x, rows, scratch, y);
        }
        y.resize(rows * self.outputs, 0.0);
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        let shape = (rows, self.inputs, self.outputs);
        matmul(shape, (x, false), (&self.weight, false), y, true);
    }
}

/// A layer's gradients: d loss / d weight (inputs, outputs) and d loss / d bias.
#[derive(Default)]
struct LayerGrad {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LayerGrad {
    /// The gradients of `layer` from its input `x` and the gradient `g` at its output.
    fn compute(&mut self, layer: &HostLayer, x: &[f32], g: &[f32], rows: usize) {
        let (i, o) = (layer.inputs, layer.outputs);
        self.weight.resize(i * o, 0.0);
        matmul((i, rows, o), (x, true), (g, false), &mut self.weight, false);
        self.bias.clear();
        self.bias.resize(o, 0.0);
        for row in g.chunks_exact(o) {
            for (b, v) in self.bias.iter_mut().zip(row) {
                *b += v;
            }
        }
    }
}

/// Where each part of the model is in [`HostModel::layers`] ([`Vae::layers`]
/// order: encoder, mu, logvar, classifier, decoder, critic).
#[derive(Clone)]
struct Parts {
    /// The encoder's convolutions, then its dense layers.
    down: std::ops::Range<usize>,
    encoder: std::ops::Range<usize>,
    mu: usize,
    logvar: usize,
    classifier: std::ops::Range<usize>,
    decoder: std::ops::Range<usize>,
    critic: std::ops::Range<usize>,
}

/// What one shard keeps from step to step: the activations of each stack of layers, the
/// gradients, and the scratch the backward pass writes into.
#[derive(Default)]
struct Shard {
    classifier: Vec<Vec<f32>>,
    down: Vec<Vec<f32>>,
    encoder: Vec<Vec<f32>>,
    decoder: Vec<Vec<f32>>,
    /// The critic's activations on the training images, and on the decoder's samples.
    critic_real: Vec<Vec<f32>>,
    critic_fake: Vec<Vec<f32>>,
    mu: Vec<f32>,
    logvar: Vec<f32>,
    std: Vec<f32>,
    probs: Vec<f32>,
    /// Each pixel's cross-entropy.
    terms: Vec<f32>,
    grads: Vec<LayerGrad>,
    /// Gradients computed to be added to `grads` or dropped (the critic's).
    spare: Vec<LayerGrad>,
    g: Vec<f32>,
    g_next: Vec<f32>,
    g_mu: Vec<f32>,
    g_logvar: Vec<f32>,
    g_probs: Vec<f32>,
    /// The gradient at the critic's logits, then back through it.
    g_critic: Vec<f32>,
    /// Each convolution layer's buffers, by layer.
    conv: Vec<ConvScratch>,
}

/// A model that trains on the host: its layers and Adam's state, and each shard's
/// buffers. See the module's documentation.
pub struct HostModel {
    config: ModelConfig,
    activation: Activation,
    layers: Vec<HostLayer>,
    parts: Parts,
    adam: Option<AdamSettings>,
    shards: Vec<Shard>,
}

impl HostModel {
    /// `vae` and, to train it, Adam in `adam`; without an optimizer, a model that only
    /// evaluates ([`Self::mean_loss`]), whose [`Self::step`] computes the loss alone.
    pub fn new<D: Device<f32>>(vae: &Vae<D>, adam: Option<AdamState>) -> Self {
        let (settings, moments) = match adam {
            Some(state) => (Some(state.settings), state.moments),
            None => (None, Vec::new()),
        };
        let layers = vae
            .layers()
            .into_iter()
            .zip(
                moments
                    .into_iter()
                    .map(Some)
                    .chain(std::iter::repeat_with(|| None)),
            )
            .map(|((_, l), moments)| HostLayer {
                inputs: l.inputs(),
                outputs: l.outputs(),
                conv: l.conv.map(HostConv::new),
                weight: l.weight.as_vec(),
                bias: l.bias.as_vec(),
                moments: moments.unwrap_or_default(),
            })
            .collect();
        let e = vae.encoder.layers.len();
        let convs = vae
            .encoder
            .layers
            .iter()
            .take_while(|l| l.conv.is_some())
            .count();
        let c = vae.classifier.as_ref().map_or(0, |c| c.layers.len());
        let d = vae.decoder.layers.len();
        let k = vae.critic.as_ref().map_or(0, |c| c.layers.len());
        HostModel {
            config: vae.config.clone(),
            activation: vae.config.activation,
            layers,
            parts: Parts {
                down: 0..convs,
                encoder: convs..e,
                mu: e,
                logvar: e + 1,
                classifier: e + 2..e + 2 + c,
                decoder: e + 2 + c..e + 2 + c + d,
                critic: e + 2 + c + d..e + 2 + c + d + k,
            },
            adam: settings,
            shards: Vec::new(),
        }
    }

    /// The model as it stands, in dfdx tensors on `dev` (for evaluation, pictures,
    /// checkpoints and export).
    pub fn model<D: Device<f32>>(&self, dev: &D) -> anyhow::Result<Vae<D>> {
        let layers = self
            .layers
            .iter()
            .map(|l| (l.weight.clone(), l.bias.clone()));
        Vae::with_weights(dev, &self.config, layers)
    }

    /// Replaces the weights with `vae`'s, Adam's state kept. Errors when `vae` is not a
    /// model of this one's shape.
    pub fn set_weights<D: Device<f32>>(&mut self, vae: &Vae<D>) -> anyhow::Result<()> {
        let dense = vae.layers();
        let same =
            dense.len() == self.layers.len()
                && self.layers.iter().zip(&dense).all(|(layer, (_, d))| {
                    (d.inputs(), d.outputs()) == (layer.inputs, layer.outputs)
                });
        if !same || vae.config != self.config {
            anyhow::bail!("the weights given are not of the model's shape");
        }
        for (layer, (_, d)) in self.layers.iter_mut().zip(dense) {
            layer.weight = d.weight.as_vec();
            layer.bias = d.bias.as_vec();
        }
        Ok(())
    }

    /// Adam's state (empty moments for a model that only evaluates).
    pub fn adam_state(&self) -> Option<AdamState> {
        let settings = self.adam?;
        let moments = self.layers.iter().map(|l| l.moments.clone()).collect();
        Some(AdamState { settings, moments })
    }

    /// One optimization step on a mini-batch of `source`, in `parts`: each a shard's
    /// images and the seed of the generator its batch is drawn with. The shards are
    /// drawn and computed side by side; the step's learning rate is `lr`. Returns the
    /// mini-batch's loss terms; the model is left as it was when the objective is not
    /// finite.
    pub fn step(
        &mut self,
        source: HostImages,
        parts: &[(&[usize], u64)],
        weights: LossWeights,
        lr: f32,
    ) -> LossTerms {
        if parts.is_empty() {
            return LossTerms::default();
        }
        let images = parts.iter().map(|(indices, _)| indices.len()).sum();
        let mut shards = std::mem::take(&mut self.shards);
        shards.resize_with(parts.len(), Shard::default);
        let model = &*self;
        let terms: LossTerms = shards
            .par_iter_mut()
            .zip(parts)
            .map(|(shard, &(indices, seed))| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let batch = source.batch(indices, &model.config, &mut rng);
                model.gradients(shard, &batch, images, weights)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .sum();
        if let Some(settings) = &mut self.adam {
            if terms.objective(&weights).is_finite() {
                settings.lr = lr;
                let hp = settings.advance();
                update(&hp, &mut self.layers, &shards);
                if self.config.critic_spectral_norm {
                    for layer in &mut self.layers[self.parts.critic.clone()] {
                        let shape = (layer.inputs, layer.outputs);
                        spectral::normalize_spectrum(&mut layer.weight, shape);
                    }
                }
            }
        }
        self.shards = shards;
        terms
    }

    /// Mean loss terms on `data` prepared as `options` say, one z sample per image,
    /// noise drawn from `seed`: [`crate::eval::mean_loss::mean_loss`]'s batches and
    /// draws, each batch's halves computed side by side.
    pub fn mean_loss(&mut self, data: &Dataset, options: DataOptions, seed: u64) -> LossTerms {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let order: Vec<usize> = (0..data.len()).collect();
        let mut sum = MeanLoss::default();
        let mut shards = std::mem::take(&mut self.shards);
        shards.resize_with(2, Shard::default);
        for chunk in order.chunks(EVALUATION_BATCH) {
            let batch = HostBatch::draw(data, chunk, &self.config, options, &mut rng);
            let halves = batch.split(chunk.len().div_ceil(2));
            let model = &*self;
            let terms: LossTerms = shards
                .par_iter_mut()
                .zip(&halves)
                .map(|(shard, half)| model.forward(shard, half, chunk.len()))
                .collect::<Vec<_>>()
                .into_iter()
                .sum();
            sum.add(&terms, chunk.len());
        }
        self.shards = shards;
        sum.mean()
    }

    /// The decoder for evaluation ([`EvalDecoder`]): its dense layers packed once.
    pub fn eval_decoder(&self) -> EvalDecoder<'_> {
        let packed = self.layers[self.parts.decoder.clone()]
            .iter()
            .map(|l| {
                let dense = l.conv.is_none();
                dense.then(|| PackedLayer::new(&l.weight, &l.bias, l.inputs, l.outputs))
            })
            .collect();
        EvalDecoder {
            model: self,
            packed,
            pool: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The loss terms of `batch` (a shard of a mini-batch of `images`) and the gradients
    /// of every layer, into `shard`: the ELBO's, or the importance-weighted bound's
    /// when the batch holds several draws per image ([`crate::nn::tape::tape_gradients`]
    /// through dfdx's tape).
    fn gradients(
        &self,
        s: &mut Shard,
        batch: &HostBatch,
        images: usize,
        weights: LossWeights,
    ) -> LossTerms {
        if batch.noise.len() > batch.len * self.config.latent {
            return self.importance_gradients(s, batch, images, weights.kl);
        }
        let mut terms = self.forward(s, batch, images);
        if !batch.prior.is_empty() {
            [terms.critic, terms.adversarial, terms.features] =
                self.critic_gradients(s, batch, images, weights);
        }
        self.backward_all(s, batch, images, weights);
        terms
    }

    /// The critic's loss, the adversarial term and feature matching ([`LossTerms`]) of
    /// `batch` (a shard of a mini-batch of `images`), after [`Self::forward`] has run
    /// the decoder on its images and its prior draws: the critic's gradients (from its
    /// loss alone) into `s.grads`, and the decoder's terms' gradient at its logits, with
    /// their `weights`, added to `s.g` ([`Vae::loss`] on the tape).
    fn critic_gradients(
        &self,
        s: &mut Shard,
        batch: &HostBatch,
        images: usize,
        weights: LossWeights,
    ) -> [f32; 3] {
        let inv_n = 1.0 / images.max(1) as f32;
        let (rows, p) = (batch.len, &self.parts);
        let classes = if batch.labels.is_empty() {
            0
        } else {
            self.config.classes
        };
        s.grads.resize_with(self.layers.len(), LayerGrad::default);
        s.spare.resize_with(self.layers.len(), LayerGrad::default);

        // The critic's inputs: the images, and the decoder's samples as pixel
        // probabilities (the reconstructions, then the prior's draws, whose labels are
        // their images').
        let real = first(&mut s.critic_real);
        real.clear();
        real.extend_from_slice(&batch.target);
        let fake = first(&mut s.critic_fake);
        fake.clear();
        fake.extend(last(&s.decoder).iter().map(|&x| sigmoid(x)));
        let fakes = fake.len() / PIXELS;
        self.trace(
            p.critic.clone(),
            rows,
            false,
            &mut s.critic_real,
            &mut s.conv,
        );
        self.trace(
            p.critic.clone(),
            fakes,
            false,
            &mut s.critic_fake,
            &mut s.conv,
        );

        // The critic's cross-entropy (images real, samples generated at half weight)
        // and its gradient at its logits, back through the critic.
        let mut critic = 0.0f64;
        let mut g = std::mem::take(&mut s.g_critic);
        let mut scratch = std::mem::take(&mut s.g_next);
        // Each row's logit is its output 0 plus, for a conditional model, its output
        // 1 + label (the projection, [`Vae::critic`]); its gradient goes to those two.
        let outputs = 1 + classes;
        let logit_gradients = |out: &[f32], real: bool, scale: f32, g: &mut Vec<f32>| {
            g.clear();
            g.resize(out.len(), 0.0);
            let mut sum = 0.0f64;
            let each = out.chunks_exact(outputs).zip(g.chunks_exact_mut(outputs));
            for (r, (out, g)) in each.enumerate() {
                let label = (classes > 0).then(|| 1 + usize::from(batch.labels[r % rows]));
                let logit = out[0] + label.map_or(0.0, |l| out[l]);
                let (value, grad) = cross_entropy(logit, f32::from(u8::from(real)));
                sum += f64::from(value);
                g[0] = grad * scale * inv_n;
                if let Some(l) = label {
                    g[l] = g[0];
                }
            }
            sum * f64::from(inv_n)
        };
        critic += logit_gradients(last(&s.critic_real), true, 1.0, &mut g);
        let stack = p.critic.clone();
        let grads = (&mut s.grads[..], &mut s.conv[..]);
        let buffers = (&mut g, &mut scratch);
        self.backward(
            stack.clone(),
            &s.critic_real,
            rows,
            false,
            None,
            buffers,
            grads,
        );
        critic += 0.5 * logit_gradients(last(&s.critic_fake), false, 0.5, &mut g);
        let spare = (&mut s.spare[..], &mut s.conv[..]);
        let buffers = (&mut g, &mut scratch);
        self.backward(
            stack.clone(),
            &s.critic_fake,
            fakes,
            false,
            None,
            buffers,
            spare,
        );
        for l in stack.clone() {
            let (grad, spare) = (&mut s.grads[l], &s.spare[l]);
            for (a, b) in grad.weight.iter_mut().zip(&spare.weight) {
                *a += b;
            }
            for (a, b) in grad.bias.iter_mut().zip(&spare.bias) {
                *a += b;
            }
        }

        // The adversarial term, samples called real at half weight, and feature
        // matching, each reconstruction's last hidden features against its image's: their
        // gradients back through the critic (its weights' gradients dropped) to the
        // pixels, and through the sigmoid to the decoder's logits.
        let adversarial = 0.5 * logit_gradients(last(&s.critic_fake), true, 0.5, &mut g);
        g.iter_mut().for_each(|g| *g *= weights.adversarial);
        let out = stack.end - 1..stack.end;
        let features = out.start - stack.start;
        let spare = (&mut s.spare[..], &mut s.conv[..]);
        let buffers = (&mut g, &mut scratch);
        let through = &s.critic_fake[features..];
        self.backward(out, through, fakes, false, Some(0), buffers, spare);
        let (real, fake) = (&s.critic_real[features], &s.critic_fake[features]);
        let mut matching = 0.0f64;
        let scale = 2.0 * weights.features * inv_n;
        for ((g, &fake), &real) in g.iter_mut().zip(fake).zip(real) {
            let d = fake - real;
            matching += f64::from(d * d);
            *g += d * scale;
        }
        let matching = matching * f64::from(inv_n);
        if weights.adversarial != 0.0 || weights.features != 0.0 {
            let hidden = stack.start..stack.end - 1;
            let through = &s.critic_fake[..=features];
            let spare = (&mut s.spare[..], &mut s.conv[..]);
            let buffers = (&mut g, &mut scratch);
            self.backward(hidden, through, fakes, true, Some(0), buffers, spare);
            let pixels = s.g.iter_mut().zip(&s.critic_fake[0]).zip(&g);
            for ((g_logit, &prob), &g_prob) in pixels {
                *g_logit += g_prob * prob * (1.0 - prob);
            }
        }
        s.g_critic = g;
        s.g_next = scratch;
        [critic, adversarial, matching].map(|t| t as f32)
    }

    /// The importance-weighted bound's terms on `batch` (a shard of a mini-batch of
    /// `images`, unconditional, with K draws of noise per image) and the gradients of
    /// its negative into `s.grads`. `kl_weight` scales the prior and posterior densities
    /// in the weights (KL warm-up); the terms reported are the bound's own:
    /// `reconstruction` the draws' weighted mean of -log p(x|z) and `kl` the rest, so
    /// that [`LossTerms::neg_elbo`] is -log (1/K) sum_k w_k.
    ///
    /// The gradient is the ELBO's per draw, weighted by the draws' normalized weights
    /// `w_k / sum_j w_j`: the encoder runs once per image and the decoder once per draw.
    fn importance_gradients(
        &self,
        s: &mut Shard,
        batch: &HostBatch,
        images: usize,
        kl_weight: f32,
    ) -> LossTerms {
        let inv_n = 1.0 / images.max(1) as f32;
        let (rows, latent, p) = (batch.len, self.config.latent, &self.parts);
        let k = batch.noise.len() / (rows * latent).max(1);
        let draws = rows * k;
        s.grads.resize_with(self.layers.len(), LayerGrad::default);
        self.encode(s, batch, false);

        // Draw r belongs to image r / k: z = mu + std * noise.
        s.std.resize(rows * latent, 0.0);
        for (std, &logvar) in s.std.iter_mut().zip(&s.logvar) {
            *std = (logvar * 0.5).exp();
        }
        let z = first(&mut s.decoder);
        z.resize(draws * latent, 0.0);
        for (r, z) in z.chunks_exact_mut(latent).enumerate() {
            let image = (r / k) * latent..(r / k + 1) * latent;
            let noise = &batch.noise[r * latent..(r + 1) * latent];
            for (((z, &mu), &std), &e) in z
                .iter_mut()
                .zip(&s.mu[image.clone()])
                .zip(&s.std[image])
                .zip(noise)
            {
                *z = mu + std * e;
            }
        }
        self.trace(p.decoder.clone(), draws, false, &mut s.decoder, &mut s.conv);

        // Each pixel's cross-entropy and its gradient at the logit, per draw against
        // its image.
        let logits = s.decoder.last_mut().map(std::mem::take).unwrap_or_default();
        s.g.resize(logits.len(), 0.0);
        s.terms.resize(logits.len(), 0.0);
        let pixels =
            s.g.chunks_exact_mut(PIXELS)
                .zip(s.terms.chunks_exact_mut(PIXELS));
        for (r, ((g, terms), logits)) in pixels.zip(logits.chunks_exact(PIXELS)).enumerate() {
            let target = &batch.target[(r / k) * PIXELS..(r / k + 1) * PIXELS];
            vectorized!(cross_entropies((g, terms), logits, target, 1.0));
        }
        if let Some(slot) = s.decoder.last_mut() {
            *slot = logits;
        }

        // The weights, in f64: log w = log p(x|z) + log p(z) - log q(z|x), where the
        // 2 pi terms of the two Gaussians cancel.
        let z = &s.decoder[0];
        let square_sum = |v: &[f32]| v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
        let mut nll = Vec::with_capacity(draws);
        let mut prior_minus_posterior = Vec::with_capacity(draws);
        for r in 0..draws {
            let span = r * latent..(r + 1) * latent;
            let image = (r / k) * latent..(r / k + 1) * latent;
            let logvar: f64 = s.logvar[image].iter().map(|&v| f64::from(v)).sum();
            nll.push(f64::from(
                s.terms[r * PIXELS..(r + 1) * PIXELS].iter().sum::<f32>(),
            ));
            prior_minus_posterior.push(
                0.5 * (square_sum(&batch.noise[span.clone()]) + logvar - square_sum(&z[span])),
            );
        }
        let log_w = |r: usize, beta: f64| -nll[r] + beta * prior_minus_posterior[r];
        let mut draw_scale = vec![0.0f32; draws];
        let (mut bound, mut reconstruction) = (0.0f64, 0.0f64);
        for i in 0..rows {
            let image = i * k..(i + 1) * k;
            let full: Vec<f64> = image.clone().map(|r| log_w(r, 1.0)).collect();
            let weights = normalized_weights(&full);
            bound += log_mean_exp(&full);
            reconstruction += image
                .clone()
                .zip(&weights)
                .map(|(r, w)| w * nll[r])
                .sum::<f64>();
            // Under KL warm-up the gradient follows the weights of the scaled densities.
            let objective = if kl_weight == 1.0 {
                weights
            } else {
                let beta = f64::from(kl_weight);
                normalized_weights(&image.clone().map(|r| log_w(r, beta)).collect::<Vec<_>>())
            };
            for (r, w) in image.zip(objective) {
                draw_scale[r] = w as f32 * inv_n;
            }
        }
        let reconstruction = (reconstruction * f64::from(inv_n)) as f32;
        let terms = LossTerms {
            reconstruction,
            kl: (-bound * f64::from(inv_n)) as f32 - reconstruction,
            ..LossTerms::default()
        };

        // Backward: each draw's ELBO gradient, scaled by its weight (over `images`).
        let mut g = std::mem::take(&mut s.g);
        let mut scratch = std::mem::take(&mut s.g_next);
        for (g, &scale) in g.chunks_exact_mut(PIXELS).zip(&draw_scale) {
            g.iter_mut().for_each(|g| *g *= scale);
        }
        self.backward(
            p.decoder.clone(),
            &s.decoder,
            draws,
            false,
            Some(0),
            (&mut g, &mut scratch),
            (&mut s.grads, &mut s.conv),
        );
        // `g` now holds the gradient at z; each image's draws add up at its mean and
        // log-variance.
        s.g_mu.clear();
        s.g_mu.resize(rows * latent, 0.0);
        s.g_logvar.clear();
        s.g_logvar.resize(rows * latent, 0.0);
        let z = &s.decoder[0];
        for (r, &scale) in draw_scale.iter().enumerate() {
            let image = (r / k) * latent;
            for j in 0..latent {
                let (d, i) = (r * latent + j, image + j);
                let g_z = g[d] + z[d] * scale * kl_weight;
                s.g_mu[i] += g_z;
                s.g_logvar[i] += g_z * batch.noise[d] * s.std[i] * 0.5 - scale * (0.5 * kl_weight);
            }
        }
        self.encoder_backward(s, rows, false, (&mut g, &mut scratch));
        s.g = g;
        s.g_next = scratch;
        terms
    }

    /// The loss terms of `batch` (a shard of a mini-batch of `images`), keeping in `s`
    /// what the backward pass needs, the gradient at the logits included.
    fn forward(&self, s: &mut Shard, batch: &HostBatch, images: usize) -> LossTerms {
        let inv_n = 1.0 / images.max(1) as f32;
        let rows = batch.len;
        let latent = self.config.latent;
        let classes = self.config.classes;
        let p = &self.parts;
        let mut terms = LossTerms::default();

        // The classifier's class probabilities and cross-entropy.
        let conditional = classes > 0 && !batch.labels.is_empty();
        if conditional {
            let input = first(&mut s.classifier);
            input.clear();
            input.extend_from_slice(batch.input());
            self.trace(
                p.classifier.clone(),
                rows,
                false,
                &mut s.classifier,
                &mut s.conv,
            );
            let logits = last(&s.classifier);
            s.probs.resize(rows * classes, 0.0);
            let mut ce = 0.0f64;
            for ((row, out), &label) in logits
                .chunks_exact(classes)
                .zip(s.probs.chunks_exact_mut(classes))
                .zip(&batch.labels)
            {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                let lse = max + sum.ln();
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = (v - lse).exp();
                }
                ce -= f64::from(row[usize::from(label)] - lse);
            }
            terms.classifier = ce as f32 * inv_n;
        }

        let sees_label = conditional && self.config.encoder_sees_label;
        self.encode(s, batch, sees_label);

        // z = mu + std * noise, and the KL term; the decoder's input [z, probs].
        let width = latent + if conditional { classes } else { 0 };
        let decoder_input = first(&mut s.decoder);
        decoder_input.resize(rows * width, 0.0);
        s.std.resize(rows * latent, 0.0);
        let mut kl = 0.0f64;
        for r in 0..rows {
            let span = r * latent..(r + 1) * latent;
            let out = &mut decoder_input[r * width..(r + 1) * width];
            for (j, k) in span.enumerate() {
                let (mu, logvar) = (s.mu[k], s.logvar[k]);
                let std = (logvar * 0.5).exp();
                s.std[k] = std;
                out[j] = mu + std * batch.noise[k];
                kl += f64::from(std * std + mu * mu - logvar - 1.0);
            }
            if conditional {
                out[latent..].copy_from_slice(&s.probs[r * classes..(r + 1) * classes]);
            }
        }
        terms.kl = kl as f32 * (0.5 * inv_n);
        // The decoder's samples from the prior (for the critic), each with its image's
        // label, after the reconstructions.
        let samples = batch.prior.len() / latent.max(1);
        for (r, z) in batch.prior.chunks_exact(latent).enumerate() {
            decoder_input.extend_from_slice(z);
            if conditional {
                let at = decoder_input.len();
                decoder_input.resize(at + classes, 0.0);
                decoder_input[at + usize::from(batch.labels[r])] = 1.0;
            }
        }
        let decoded = rows + samples;
        self.trace(
            p.decoder.clone(),
            decoded,
            false,
            &mut s.decoder,
            &mut s.conv,
        );

        // The reconstruction term and its gradient at the logits, in one pass.
        let logits = s.decoder.last_mut().map(std::mem::take).unwrap_or_default();
        s.g.resize(logits.len(), 0.0);
        s.g[batch.target.len()..].fill(0.0);
        // Every pixel's term and gradient, then each image's 784 terms summed in f32 and
        // the images' sums in f64 (a batch summed in one f32 accumulator loses digits,
        // as dfdx's sum does).
        s.terms.resize(batch.target.len(), 0.0);
        vectorized!(cross_entropies(
            (&mut s.g, &mut s.terms),
            &logits,
            &batch.target,
            inv_n
        ));
        let recon: f64 = s
            .terms
            .chunks_exact(PIXELS)
            .map(|image| f64::from(image.iter().sum::<f32>()))
            .sum();
        terms.reconstruction = recon as f32 * inv_n;
        if let Some(slot) = s.decoder.last_mut() {
            *slot = logits;
        }
        terms
    }

    /// q(z|x)'s means and log-variances of `batch` into `s.mu` and `s.logvar`: the
    /// encoder's convolutions on the image, its dense layers on their output (or on the
    /// image), with the class probabilities `s.probs` beside it when it `sees_label`.
    fn encode(&self, s: &mut Shard, batch: &HostBatch, sees_label: bool) {
        let rows = batch.len;
        let classes = self.config.classes;
        let p = &self.parts;
        let seen = if p.down.is_empty() {
            batch.input()
        } else {
            let input = first(&mut s.down);
            input.clear();
            input.extend_from_slice(batch.input());
            self.trace(p.down.clone(), rows, true, &mut s.down, &mut s.conv);
            last(&s.down)
        };
        let input = first(&mut s.encoder);
        input.clear();
        if sees_label {
            for (features, probs) in seen
                .chunks_exact(self.features())
                .zip(s.probs.chunks_exact(classes))
            {
                input.extend_from_slice(features);
                input.extend_from_slice(probs);
            }
        } else {
            input.extend_from_slice(seen);
        }
        self.trace(p.encoder.clone(), rows, true, &mut s.encoder, &mut s.conv);
        let h = last(&s.encoder);
        let unused = &mut ConvScratch::default();
        self.layers[p.mu].forward(h, rows, unused, &mut s.mu);
        self.layers[p.logvar].forward(h, rows, unused, &mut s.logvar);
    }

    /// The gradients of every layer into `s.grads`, after [`Self::forward`] on the same
    /// shard, with the terms' weights `weights`.
    fn backward_all(&self, s: &mut Shard, batch: &HostBatch, images: usize, weights: LossWeights) {
        let LossWeights {
            kl: kl_weight,
            classifier: class_weight,
            ..
        } = weights;
        let inv_n = 1.0 / images.max(1) as f32;
        let rows = batch.len;
        let latent = self.config.latent;
        let classes = self.config.classes;
        let p = &self.parts;
        let conditional = classes > 0 && !batch.labels.is_empty();
        let sees_label = conditional && self.config.encoder_sees_label;
        let width = latent + if conditional { classes } else { 0 };
        s.grads.resize_with(self.layers.len(), LayerGrad::default);

        // Backward through the decoder (the reconstructions and any prior samples), to
        // its whole input.
        let decoded = rows + batch.prior.len() / latent.max(1);
        let mut g = std::mem::take(&mut s.g);
        let mut scratch = std::mem::take(&mut s.g_next);
        self.backward(
            p.decoder.clone(),
            &s.decoder,
            decoded,
            false,
            Some(0),
            (&mut g, &mut scratch),
            (&mut s.grads, &mut s.conv),
        );
        // `g` now holds the gradient at [z, probs].
        s.g_mu.resize(rows * latent, 0.0);
        s.g_logvar.resize(rows * latent, 0.0);
        if conditional {
            s.g_probs.resize(rows * classes, 0.0);
        }
        for r in 0..rows {
            let row = &g[r * width..(r + 1) * width];
            for (j, &g_z) in row[..latent].iter().enumerate() {
                let k = r * latent + j;
                let (mu, std) = (s.mu[k], s.std[k]);
                s.g_mu[k] = g_z + mu * (kl_weight * inv_n);
                s.g_logvar[k] = g_z * batch.noise[k] * std * 0.5
                    + (std * std - 1.0) * (0.5 * kl_weight * inv_n);
            }
            if conditional {
                s.g_probs[r * classes..(r + 1) * classes].copy_from_slice(&row[latent..]);
            }
        }

        self.encoder_backward(s, rows, sees_label, (&mut g, &mut scratch));

        // The classifier: through the softmax, plus its own cross-entropy's gradient.
        if conditional {
            if sees_label && p.down.is_empty() {
                for (a, b) in s.g_probs.iter_mut().zip(&g) {
                    *a += b;
                }
            }
            g.resize(rows * classes, 0.0);
            for r in 0..rows {
                let span = r * classes..(r + 1) * classes;
                let (probs, g_probs) = (&s.probs[span.clone()], &s.g_probs[span.clone()]);
                let dot: f32 = g_probs.iter().zip(probs).map(|(a, b)| a * b).sum();
                let label = usize::from(batch.labels[r]);
                for (j, out) in g[span].iter_mut().enumerate() {
                    let target = if j == label { 1.0 } else { 0.0 };
                    *out = (probs[j] - target) * (class_weight * inv_n)
                        + probs[j] * (g_probs[j] - dot);
                }
            }
            self.backward(
                p.classifier.clone(),
                &s.classifier,
                rows,
                false,
                None,
                (&mut g, &mut scratch),
                (&mut s.grads, &mut s.conv),
            );
        }
        s.g = g;
        s.g_next = scratch;
    }

    /// Back-propagates `s.g_mu` and `s.g_logvar`, the gradients at q(z|x)'s means and
    /// log-variances, through their layers, the encoder's dense layers and its
    /// convolutions, each layer's gradients into `s.grads`. When the encoder
    /// `sees_label`, the gradient at its class-probability columns is added to
    /// `s.g_probs` (with convolutions) or left in `g` (without).
    fn encoder_backward(
        &self,
        s: &mut Shard,
        rows: usize,
        sees_label: bool,
        (g, scratch): (&mut Vec<f32>, &mut Vec<f32>),
    ) {
        let latent = self.config.latent;
        let classes = self.config.classes;
        let p = &self.parts;
        // mu's and logvar's layers, then the encoder, to its class-probability columns.
        let h = last(&s.encoder);
        let (mu_layer, logvar_layer) = (&self.layers[p.mu], &self.layers[p.logvar]);
        s.grads[p.mu].compute(mu_layer, h, &s.g_mu, rows);
        s.grads[p.logvar].compute(logvar_layer, h, &s.g_logvar, rows);
        let trunk = mu_layer.inputs;
        g.resize(rows * trunk, 0.0);
        matmul(
            (rows, latent, trunk),
            (&s.g_mu, false),
            (&mu_layer.weight, true),
            g,
            false,
        );
        matmul(
            (rows, latent, trunk),
            (&s.g_logvar, false),
            (&logvar_layer.weight, true),
            g,
            true,
        );
        let features = self.features();
        let from = match (p.down.is_empty(), sees_label) {
            (true, true) => Some(features),
            (true, false) => None,
            (false, _) => Some(0),
        };
        self.backward(
            p.encoder.clone(),
            &s.encoder,
            rows,
            true,
            from,
            (g, scratch),
            (&mut s.grads, &mut s.conv),
        );
        if !p.down.is_empty() {
            // `g` is the gradient at [features, class probabilities]: the latter's part
            // joins the classifier's, the former's goes down the convolutions.
            if sees_label {
                let width = features + classes;
                for r in 0..rows {
                    let row = &g[r * width..(r + 1) * width];
                    for (a, b) in s.g_probs[r * classes..][..classes]
                        .iter_mut()
                        .zip(&row[features..])
                    {
                        *a += b;
                    }
                    g.copy_within(r * width..r * width + features, r * features);
                }
                g.truncate(rows * features);
            }
            self.backward(
                p.down.clone(),
                &s.down,
                rows,
                true,
                None,
                (g, scratch),
                (&mut s.grads, &mut s.conv),
            );
        }
    }

    /// Values per image the encoder's dense layers see besides the class probabilities:
    /// the image's, or its last convolution's output map's.
    fn features(&self) -> usize {
        let last = self.parts.down.clone().last();
        last.and_then(|l| self.layers[l].conv.as_ref())
            .map_or(PIXELS, |c| c.conv.outputs())
    }

    /// The forward pass of the layers `range` on `values[0]` (`rows` rows), each
    /// layer's output (after the non-linearity where there is one) kept in `values`.
    fn trace(
        &self,
        range: std::ops::Range<usize>,
        rows: usize,
        activate_last: bool,
        values: &mut Vec<Vec<f32>>,
        convs: &mut Vec<ConvScratch>,
    ) {
        let count = range.len();
        values.resize_with(count + 1, Vec::new);
        convs.resize_with(self.layers.len(), ConvScratch::default);
        for (i, l) in range.enumerate() {
            let (before, after) = values.split_at_mut(i + 1);
            let y = &mut after[0];
            self.layers[l].forward(&before[i], rows, &mut convs[l], y);
            if i + 1 < count || activate_last {
                activate(self.activation, y);
            }
        }
    }

    /// Back-propagates `g` (the gradient at the output of the layers `range`, whose
    /// forward pass is `values`) through them, each layer's gradients into `grads`.
    /// Leaves in `g` the gradient at the input columns `input_from..`, if asked for.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        range: std::ops::Range<usize>,
        values: &[Vec<f32>],
        rows: usize,
        activate_last: bool,
        input_from: Option<usize>,
        (g, scratch): (&mut Vec<f32>, &mut Vec<f32>),
        (grads, convs): (&mut [LayerGrad], &mut [ConvScratch]),
    ) {
        let count = range.len();
        for (i, l) in range.enumerate().rev() {
            let layer = &self.layers[l];
            if i + 1 < count || activate_last {
                activation_backward(self.activation, &values[i + 1], g);
            }
            if let Some(conv) = &layer.conv {
                // A convolution is never a stack's first layer with columns beside its
                // map (`TrainConfig::validate`): its input's gradient is all or none.
                let input = (i > 0 || input_from.is_some()).then_some(&mut *scratch);
                let done = input.is_none();
                let grad = &mut grads[l];
                let (weight, bias) = (&mut grad.weight, &mut grad.bias);
                conv.backward(
                    &layer.weight,
                    &values[i],
                    g,
                    rows,
                    &mut convs[l],
                    (weight, bias),
                    input,
                );
                if done {
                    break;
                }
                std::mem::swap(g, scratch);
                continue;
            }
            grads[l].compute(layer, &values[i], g, rows);
            let from = match (i, input_from) {
                (0, None) => break,
                (0, Some(from)) => from,
                _ => 0,
            };
            let (o, width) = (layer.outputs, layer.inputs - from);
            scratch.resize(rows * width, 0.0);
            let w = &layer.weight[from * o..];
            matmul((rows, o, width), (g, false), (w, true), scratch, false);
            std::mem::swap(g, scratch);
        }
    }
}

/// A [`HostModel`]'s decoder for evaluation, from [`HostModel::eval_decoder`]: its
/// dense layers packed once ([`PackedLayer`]), the model borrowed so that its weights
/// cannot change meanwhile, and the buffers its blocks of rows reuse.
pub struct EvalDecoder<'a> {
    model: &'a HostModel,
    /// The decoder's layers in order: a dense layer packed, `None` for a convolution.
    packed: Vec<Option<PackedLayer>>,
    /// Each free block's buffers.
    pool: std::sync::Mutex<Vec<BlockBuffers>>,
}

impl EvalDecoder<'_> {
    /// -log p(x|z) of every row of `inputs`, decoder inputs (z, then a conditional
    /// model's class probabilities) row after row, against `targets`, whose row
    /// `r / per_image` is input row r's image: the Bernoulli cross-entropy of the
    /// decoder's logits over each row's pixels (`image_cross_entropy`), on every core.
    pub fn reconstruction_losses(
        &self,
        inputs: &[f32],
        targets: &[f32],
        per_image: usize,
    ) -> Vec<f64> {
        let model = self.model;
        let width = model.config.decoder_input();
        let rows = inputs.len() / width.max(1);
        // Blocks of rows, taken by whichever core is free (the caller may keep one busy
        // for a while); a block's logits stay in the core's cache between the decoder's
        // last product and the cross-entropy.
        let blocks: Vec<std::ops::Range<usize>> = (0..rows)
            .step_by(ROWS_PER_BLOCK)
            .map(|start| start..(start + ROWS_PER_BLOCK).min(rows))
            .collect();
        let losses: Vec<Vec<f64>> = blocks
            .into_par_iter()
            .map(|block| {
                let taken = self.pool.lock().ok().and_then(|mut p| p.pop());
                let mut buffers = taken.unwrap_or_default();
                let input = first(&mut buffers.values);
                input.clear();
                input.extend_from_slice(&inputs[block.start * width..block.end * width]);
                self.decode(block.len(), &mut buffers);
                let logits = last(&buffers.values);
                let out = block
                    .zip(logits.chunks_exact(PIXELS))
                    .map(|(r, logits)| {
                        let image = r / per_image.max(1);
                        let target = &targets[image * PIXELS..(image + 1) * PIXELS];
                        f64::from(vectorized!(image_cross_entropy(logits, target)))
                    })
                    .collect();
                if let Ok(mut p) = self.pool.lock() {
                    p.push(buffers);
                }
                out
            })
            .collect();
        losses.concat()
    }

    /// The decoder's logits of the `rows` rows of `values[0]`, each layer's output kept
    /// in `values` (as [`HostModel::trace`], its dense layers packed).
    fn decode(&self, rows: usize, buffers: &mut BlockBuffers) {
        let model = self.model;
        let BlockBuffers {
            values,
            convs,
            tiles,
        } = buffers;
        let count = self.packed.len();
        values.resize_with(count + 1, Vec::new);
        convs.resize_with(count, ConvScratch::default);
        let layers = &model.layers[model.parts.decoder.clone()];
        for (i, (layer, packed)) in layers.iter().zip(&self.packed).enumerate() {
            let (before, after) = values.split_at_mut(i + 1);
            let (x, y) = (&before[i], &mut after[0]);
            let hidden = i + 1 < count;
            let relu = hidden && model.activation == Activation::Relu;
            match packed {
                Some(packed) => packed.forward(x, rows, relu, (y, tiles)),
                None => layer.forward(x, rows, &mut convs[i], y),
            }
            if hidden && !(relu && packed.is_some()) {
                activate(model.activation, y);
            }
        }
    }
}

/// What a block of [`EvalDecoder::reconstruction_losses`] keeps for the next: each
/// layer's output, the convolutions' buffers, and the packed products' tiles.
#[derive(Default)]
struct BlockBuffers {
    values: Vec<Vec<f32>>,
    convs: Vec<ConvScratch>,
    tiles: Vec<f32>,
}

/// Decoder rows per block in [`EvalDecoder::reconstruction_losses`]: a multiple of the
/// packed product's tile, whose logits (784 floats a row) stay in the core's cache.
const ROWS_PER_BLOCK: usize = 96;

/// The Bernoulli cross-entropy -log p(t | x) of a pixel with logit `x` and target `t`,
/// and its gradient sigmoid(x) - t ([`cross_entropy_parts`]).
#[inline(always)]
fn cross_entropy(x: f32, t: f32) -> (f32, f32) {
    let (linear, d, prob) = cross_entropy_parts(x, t);
    (linear + vector_math::ln(d), prob - t)
}

/// The pieces of the Bernoulli cross-entropy of a pixel with logit `x` and target `t`:
/// with e = exp(-|x|), the cross-entropy is max(x, 0) - x t + ln(1 + e) and
/// sigmoid(x) is 1 / (1 + e) or e / (1 + e). Returns (max(x, 0) - x t, 1 + e,
/// sigmoid(x)): one exp, and the ln left to the caller, both of which vectorize.
#[inline(always)]
fn cross_entropy_parts(x: f32, t: f32) -> (f32, f32, f32) {
    let e = vector_math::exp(-x.abs());
    let d = 1.0 + e;
    let prob = if x >= 0.0 { 1.0 } else { e } / d;
    (x.max(0.0) - x * t, d, prob)
}

/// The last of a stack's activations.
fn last(values: &[Vec<f32>]) -> &[f32] {
    values.last().map_or(&[], |v| &v[..])
}

/// The input slot of a stack's activations.
fn first(values: &mut Vec<Vec<f32>>) -> &mut Vec<f32> {
    if values.is_empty() {
        values.push(Vec::new());
    }
    &mut values[0]
}

/// Calls `name(args)` compiled for AVX2 where the processor has it, else `name` as
/// compiled for the build's target: the vector loops then run 8 lanes wide instead of 4
/// (x86-64's baseline, SSE2). The same operations in the same order (no fused
/// multiply-add), so the same bits either way.
macro_rules! vectorized {
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2 (checked just above).
                unsafe { avx2::$name($($arg),*) }
            } else {
                $name($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $name($($arg),*)
        }
    }};
}
use vectorized;

/// The loops of [`vectorized!`], compiled for AVX2: each calls its portable version,
/// which is inlined here.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Hyper;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn adam_one(
        hp: &Hyper,
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        g: &[f32],
    ) {
        super::adam_one(hp, p, m, v, g);
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn adam_two(
        hp: &Hyper,
        p: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        a: &[f32],
        b: &[f32],
    ) {
        super::adam_two(hp, p, m, v, a, b);
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn image_cross_entropy(logits: &[f32], target: &[f32]) -> f32 {
        super::image_cross_entropy(logits, target)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn cross_entropies(
        (g, terms): (&mut [f32], &mut [f32]),
        logits: &[f32],
        target: &[f32],
        inv_n: f32,
    ) {
        super::cross_entropies((g, terms), logits, target, inv_n);
    }
}

/// The cross-entropy of one image's pixels ([`cross_entropy_parts`], the gradient
/// unused), in eight lanes summed at the end. Each lane multiplies its pixels' 1 + e,
/// each in [1, 2], and takes one ln per [`PRODUCT_CHUNKS`] of them instead of one per
/// pixel: ln is most of a pixel's work, and the product of at most 2^64 stays far from
/// f32's overflow. Its rounding (one half-ulp per factor, about 4e-6 relative for 64)
/// is below that of summing the pixels' terms in f32.
#[inline(always)]
fn image_cross_entropy(logits: &[f32], target: &[f32]) -> f32 {
    const LANES: usize = 8;
    const PRODUCT_CHUNKS: usize = 64;
    let mut linear = [0.0f32; LANES];
    let mut logs = [0.0f32; LANES];
    let logits8 = logits.chunks_exact(LANES);
    let target8 = target.chunks_exact(LANES);
    let rest: f32 = logits8
        .remainder()
        .iter()
        .zip(target8.remainder())
        .map(|(&x, &t)| cross_entropy(x, t).0)
        .sum();
    let mut pairs = logits8.zip(target8).peekable();
    while pairs.peek().is_some() {
        let mut product = [1.0f32; LANES];
        for (x8, t8) in pairs.by_ref().take(PRODUCT_CHUNKS) {
            for j in 0..LANES {
                let (l, d, _) = cross_entropy_parts(x8[j], t8[j]);
                linear[j] += l;
                product[j] *= d;
            }
        }
        for (log, p) in logs.iter_mut().zip(product) {
            *log += vector_math::ln(p);
        }
    }
    linear.iter().zip(logs).map(|(l, g)| l + g).sum::<f32>() + rest
}

/// Adam's update of `p` with moments `m`, `v` and gradient `g`.
#[inline(always)]
fn adam_one(hp: &Hyper, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
        hp.update(p, g, m, v);
    }
}

/// Adam's update of `p` with moments `m`, `v` and gradient `a + b`.
#[inline(always)]
fn adam_two(hp: &Hyper, p: &mut [f32], m: &mut [f32], v: &mut [f32], a: &[f32], b: &[f32]) {
    for (((p, m), v), (&a, &b)) in p.iter_mut().zip(m).zip(v).zip(a.iter().zip(b)) {
        hp.update(p, a + b, m, v);
    }
}

/// Each pixel's cross-entropy into `terms` and its gradient, times `inv_n`, into `g`
/// ([`cross_entropy`]), in one pass without a running sum, so that it runs in vector
/// instructions.
#[inline(always)]
fn cross_entropies(
    (g, terms): (&mut [f32], &mut [f32]),
    logits: &[f32],
    target: &[f32],
    inv_n: f32,
) {
    let pixels = g.iter_mut().zip(terms.iter_mut()).zip(logits);
    for (((g, term), &x), &t) in pixels.zip(target) {
        let (value, grad) = cross_entropy(x, t);
        *term = value;
        *g = grad * inv_n;
    }
}

/// Parameters updated per task: enough for two cores to share a layer of 300,000.
const UPDATE_CHUNK: usize = 1 << 15;

/// The gradients `span` of layer `l`'s weights (`is_weight`) or biases in `shard`.
fn shard_grad(shard: &Shard, l: usize, is_weight: bool, span: std::ops::Range<usize>) -> &[f32] {
    let g = &shard.grads[l];
    let all = if is_weight { &g.weight } else { &g.bias };
    &all[span]
}

/// Adam's update of every parameter of `layers` from the sum of the `shards`'
/// gradients, in one pass per parameter, in parallel over chunks of every layer.
fn update(hp: &Hyper, layers: &mut [HostLayer], shards: &[Shard]) {
    let mut tasks = Vec::new();
    for (l, layer) in layers.iter_mut().enumerate() {
        let [wm, wv, bm, bv] = &mut layer.moments;
        let parts = [
            (&mut layer.weight, wm, wv, true),
            (&mut layer.bias, bm, bv, false),
        ];
        for (param, m, v, is_weight) in parts {
            let chunks = param
                .chunks_mut(UPDATE_CHUNK)
                .zip(m.chunks_mut(UPDATE_CHUNK))
                .zip(v.chunks_mut(UPDATE_CHUNK));
            for (k, ((p, m), v)) in chunks.enumerate() {
                tasks.push((l, is_weight, k * UPDATE_CHUNK, p, m, v));
            }
        }
    }
    tasks
        .into_par_iter()
        .for_each(|(l, is_weight, at, p, m, v)| {
            let span = at..at + p.len();
            let grad = |i: usize| shard_grad(&shards[i], l, is_weight, span.clone());
            match shards.len() {
                0 => {}
                1 => vectorized!(adam_one(hp, p, m, v, grad(0))),
                2 => vectorized!(adam_two(hp, p, m, v, grad(0), grad(1))),
                _ => {
                    for (j, ((p, m), v)) in p.iter_mut().zip(m).zip(v).enumerate() {
                        let g = (1..shards.len()).fold(grad(0)[j], |sum, i| sum + grad(i)[j]);
                        hp.update(p, g, m, v);
                    }
                }
            }
        });
}

/// The non-linearity `activation`, in place.
fn activate(activation: Activation, y: &mut [f32]) {
    match activation {
        Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Sigmoid => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
    }
}

/// 1 / (1 + exp(-v)).
#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + vector_math::exp(-v))
}

/// `g` times the derivative of `activation`, given its output `y`, in place.
fn activation_backward(activation: Activation, y: &[f32], g: &mut [f32]) {
    match activation {
        Activation::Relu => g
            .iter_mut()
            .zip(y)
            .for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 }),
        Activation::Sigmoid => g
            .iter_mut()
            .zip(y)
            .for_each(|(g, &y)| *g = *g * y * (1.0 - y)),
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::data::batch::Batch;
    use crate::foundation::config::Binarize;
    use crate::foundation::testing::{
        conv_model_kinds, model_kinds, random_dataset, relative_error,
    };
    use crate::nn::tape::tape_gradients;

    /// The host's loss terms and gradients on a batch of `indices` of `data`, drawn as
    /// `options` say, against dfdx's tape on the same batch ([`tape_gradients`]), for the
    /// terms' weights `weights`. Both are sums of thousands of f32 products
    /// in another order (the tape's convolutions sum by windows, the host's by maps), so
    /// they agree to a few ulps of the largest entry: 1e-4 relative allows about 800,
    /// and the terms to 1e-4 of their size (or of 1 near 0).
    fn check_against_the_tape(
        vae: &Vae<Cpu>,
        (data, indices): (&Dataset, &[usize]),
        options: DataOptions,
        weights: LossWeights,
        seed: u64,
    ) {
        let dev = Cpu::default();
        let config = &vae.config;
        let images = indices.len() + 3; // a shard of a larger mini-batch
        let draw = || rand::rngs::StdRng::seed_from_u64(seed);
        let reference = Batch::new(&dev, data, indices, config, options, &mut draw());
        let (terms, tape) = tape_gradients(vae, &reference, images, weights);
        let batch = HostBatch::draw(data, indices, config, options, &mut draw());
        let host = HostModel::new(vae, None);
        let mut shard = Shard::default();
        let ours = host.gradients(&mut shard, &batch, images, weights);
        for (a, b) in [
            (ours.reconstruction, terms.reconstruction),
            (ours.kl, terms.kl),
            (ours.classifier, terms.classifier),
            (ours.critic, terms.critic),
            (ours.adversarial, terms.adversarial),
            (ours.features, terms.features),
        ] {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{config:?} {options:?}: {a} vs {b}"
            );
        }
        let layers = vae.layers();
        assert_eq!(tape.len(), layers.len());
        for (((name, _), ours), t) in layers.iter().zip(&shard.grads).zip(&tape) {
            let w = relative_error(&ours.weight, &t.weight.as_vec());
            let b = relative_error(&ours.bias, &t.bias.as_vec());
            assert!(
                w < 1e-4 && b < 1e-4,
                "{config:?} {options:?} {name}: weight {w:e}, bias {b:e}"
            );
        }
    }

    /// The host's hand-derived ELBO gradients are dfdx's tape's, for every kind of
    /// model the trainer builds (unconditional, conditional with and without the label
    /// fed to the encoder, ReLU and sigmoid, one and two hidden layers, convolutional),
    /// with and without noise on the encoder's input.
    #[test]
    fn gradients_match_the_tape() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let data = random_dataset(40, &mut rng);
        let indices: Vec<usize> = (0..12).map(|_| rng.gen_range(0..40)).collect();
        for config in model_kinds().into_iter().chain(conv_model_kinds()) {
            for denoise in [0.0, 0.3] {
                let options = DataOptions {
                    binarize: Binarize::None,
                    denoise,
                    ..DataOptions::default()
                };
                let vae = Vae::new(&dev, &config, &mut rng);
                let seed = rng.gen();
                let weights = LossWeights {
                    kl: 0.7,
                    classifier: 3.0,
                    ..LossWeights::ELBO
                };
                check_against_the_tape(&vae, (&data, &indices), options, weights, seed);
            }
        }
    }

    /// The host's gradients of the importance-weighted bound are dfdx's tape's
    /// ([`Vae::importance_loss`]) on the same draws, with and without a KL weight below
    /// 1, for one and two hidden layers, ReLU and sigmoid, and a convolutional encoder
    /// and decoder; and the bound reported is the tape's.
    #[test]
    fn importance_weighted_gradients_match_the_tape() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let data = random_dataset(20, &mut rng);
        let indices: Vec<usize> = (0..6).map(|_| rng.gen_range(0..20)).collect();
        let dense = [
            (vec![64], vec![48], Activation::Relu, 1.0),
            (vec![64, 32], vec![48, 40], Activation::Sigmoid, 0.7),
            (vec![32], vec![24, 16], Activation::Relu, 0.3),
        ]
        .map(|(encoder_hidden, decoder_hidden, activation, kl_weight)| {
            let config = ModelConfig {
                latent: 5,
                encoder_hidden,
                decoder_hidden,
                activation,
                ..ModelConfig::default().unconditional()
            };
            (config, kl_weight)
        });
        let conv = conv_model_kinds()
            .into_iter()
            .map(|c| (c.unconditional(), 0.5));
        for (config, kl_weight) in dense.into_iter().chain(conv) {
            let options = DataOptions {
                samples: 4,
                ..DataOptions::default()
            };
            let vae = Vae::new(&dev, &config, &mut rng);
            let seed = rng.gen();
            let weights = LossWeights {
                kl: kl_weight,
                ..LossWeights::ELBO
            };
            check_against_the_tape(&vae, (&data, &indices), options, weights, seed);
        }
    }

    /// With a critic, the host's gradients are the tape's ([`Vae::loss`]'s critic
    /// terms): the critic's from its own loss alone, the rest from the ELBO, the
    /// classifier's, the adversarial term and feature matching, through the decoder's
    /// reconstructions and its samples from the prior; for a critic of one and two
    /// hidden layers, on dense and convolutional decoders, unconditional and
    /// conditional, with either term or both off (the critic still trains).
    #[test]
    fn critic_gradients_match_the_tape() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let data = random_dataset(30, &mut rng);
        let indices: Vec<usize> = (0..9).map(|_| rng.gen_range(0..30)).collect();
        let dense = model_kinds();
        let conv = conv_model_kinds();
        let kinds = [
            (&dense[0], vec![24], 2.0, 0.0),
            (&dense[2], vec![24, 16], 30.0, 0.5),
            (&dense[3], vec![20], 0.0, 3.0),
            (&dense[4], vec![20], 0.0, 0.0),
            (&conv[0], vec![16], 5.0, 2.0),
            (&conv[1], vec![16, 8], 1.0, 0.3),
        ];
        for (config, critic_hidden, adversarial, features) in kinds {
            let config = ModelConfig {
                critic_hidden,
                ..config.clone()
            };
            let options = DataOptions {
                prior: true,
                ..DataOptions::default()
            };
            let vae = Vae::new(&dev, &config, &mut rng);
            let seed = rng.gen();
            let weights = LossWeights {
                kl: 1.0,
                classifier: 2.0,
                adversarial,
                features,
            };
            check_against_the_tape(&vae, (&data, &indices), options, weights, seed);
        }
    }

    /// An image's cross-entropy, which takes one ln per lane's product of 1 + e rather
    /// than one per pixel, is the per-pixel sum in f64 (libm's exp and ln) to 2e-6
    /// relative: its f32 arithmetic over 784 pixels (each term within a few ulp, the
    /// products' and sums' roundings about 1e-7 relative a step, in eight lanes of 98)
    /// stays near 1e-6; dropping a pixel's term or a product's ln costs far more. Logits
    /// of every magnitude up to 40, where 1 + e rounds to 1, targets of both kinds.
    #[test]
    fn image_cross_entropy_is_the_sum_of_its_pixels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for scale in [0.01f32, 1.0, 5.0, 40.0] {
            for len in [PIXELS, 8 * 64 + 3, 5] {
                let logits: Vec<f32> = (0..len).map(|_| rng.gen_range(-scale..scale)).collect();
                let target: Vec<f32> = (0..len)
                    .map(|_| f32::from(u8::from(rng.gen::<bool>())))
                    .collect();
                let exact: f64 = logits
                    .iter()
                    .zip(&target)
                    .map(|(&x, &t)| {
                        let (x, t) = (f64::from(x), f64::from(t));
                        x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
                    })
                    .sum();
                let ours = f64::from(image_cross_entropy(&logits, &target));
                assert!(
                    (ours - exact).abs() <= 2e-6 * exact,
                    "scale {scale}, {len} pixels: {ours} against {exact}"
                );
            }
        }
    }

    /// The AVX2 builds of the vector loops give the portable builds' bits (no fused
    /// multiply-add, the same order of operations), on values of every magnitude.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_loops_give_the_same_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return; // nothing to compare with on this processor
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let n = 1003;
        let mut value = || (rng.gen::<f32>() - 0.5) * 10f32.powi(rng.gen_range(-6..3));
        let logits: Vec<f32> = (0..n).map(|_| value()).collect();
        let target: Vec<f32> = (0..n).map(|_| value().abs().min(1.0)).collect();
        let [mut g1, mut t1, mut g2, mut t2] = [(); 4].map(|_| vec![0.0f32; n]);
        cross_entropies((&mut g1, &mut t1), &logits, &target, 0.01);
        // SAFETY: the processor has AVX2 (checked above).
        unsafe { avx2::cross_entropies((&mut g2, &mut t2), &logits, &target, 0.01) };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&g1), bits(&t1)), (bits(&g2), bits(&t2)));

        let hp = AdamSettings::new(1e-3).advance();
        let (a, b): (Vec<f32>, Vec<f32>) = (0..n).map(|_| (value(), value())).unzip();
        let start: Vec<f32> = (0..3 * n).map(|_| value()).collect();
        let [mut x1, mut x2] = [(); 2].map(|_| start.clone());
        let update = |x: &mut [f32], avx: bool| {
            let (p, rest) = x.split_at_mut(n);
            let (m, v) = rest.split_at_mut(n);
            v.iter_mut().for_each(|v| *v = v.abs());
            if avx {
                // SAFETY: as above.
                unsafe { avx2::adam_two(&hp, p, m, v, &a, &b) };
            } else {
                adam_two(&hp, p, m, v, &a, &b);
            }
        };
        update(&mut x1, false);
        update(&mut x2, true);
        assert_eq!(bits(&x1), bits(&x2));
    }
}
