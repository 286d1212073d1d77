//! The VAE: an encoder for `z`, an optional classifier head, and the decoder that goes to
//! the microcontroller, and the terms of its loss ([`crate::nn::model::LossTerms`]), all as
//! dense layers over run-time-shaped dfdx tensors ([`crate::foundation::tensor`]). The
//! forward pass and the tape-driven loss here are ordinary dfdx code and run on any dfdx
//! device: differentiated by dfdx's tape ([`crate::nn::tape`]),
//! they train the model on every device but the CPU, and they are the reference the
//! CPU's hand-derived gradients ([`crate::nn::host`]) are tested against.

use dfdx::prelude::*;
use rand::distributions::{Distribution, Uniform};
use serde::{Deserialize, Serialize};
use vae_core::{Activation, PIXELS};

use crate::data::batch::Batch;
use crate::foundation::config::{ModelConfig, TrainConfig};
use crate::foundation::importance_weights::{log_mean_exp, normalized_weights};
use crate::foundation::tensor::{
    join_columns, padded_rows, place_columns, relabel, scalar, Matrix, Vector,
};
use crate::nn::conv::Conv;
use crate::nn::spectral;

/// The terms of the loss, each averaged over the batch, in nats per image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTerms {
    /// -log p(x|z): Bernoulli cross-entropy summed over the 784 pixels.
    pub reconstruction: f32,
    /// KL(q(z|x) || N(0, I)).
    pub kl: f32,
    /// Cross-entropy of the classifier head against the true label (0 if none).
    pub classifier: f32,
    /// The critic's loss: its cross-entropy at telling the training images (as real)
    /// from the decoder's reconstructions and prior samples (as generated, half
    /// weight each); 0 without a critic ([`crate::foundation::config::ModelConfig::critic_hidden`]),
    /// and then not written.
    #[serde(default, skip_serializing_if = "crate::foundation::config::is_zero")]
    pub critic: f32,
    /// The adversarial term: the critic's cross-entropy at calling the reconstructions
    /// and prior samples real (half weight each), the non-saturating loss the decoder
    /// minimizes; 0 without a critic, and then not written.
    #[serde(default, skip_serializing_if = "crate::foundation::config::is_zero")]
    pub adversarial: f32,
    /// Feature matching: the squared distance between each reconstruction and its image
    /// in the critic's last hidden layer, summed over its features (Larsen et al. 2016's
    /// reconstruction in the discriminator's features); 0 without a critic, and then not
    /// written.
    #[serde(default, skip_serializing_if = "crate::foundation::config::is_zero")]
    pub features: f32,
}

impl std::iter::Sum for LossTerms {
    /// Term by term: the shards of a mini-batch, each already divided by the whole
    /// mini-batch's size, add up to its terms.
    fn sum<I: Iterator<Item = LossTerms>>(iter: I) -> Self {
        iter.fold(LossTerms::default(), |a, b| a.zip_with(&b, |a, b| a + b))
    }
}

impl LossTerms {
    /// The negative ELBO (reconstruction + KL), the figure users compare.
    pub fn neg_elbo(&self) -> f32 {
        self.reconstruction + self.kl
    }

    /// What training minimizes, with the KL term at full weight: the negative ELBO plus
    /// each other term times its weight in `weights`, and the critic's loss (which the
    /// critic minimizes, and only it: each side's gradient stops at the other's
    /// parameters, so that one step trains both, [`Vae::loss`]).
    pub fn objective(&self, weights: &LossWeights) -> f32 {
        self.neg_elbo()
            + weights.classifier * self.classifier
            + weights.adversarial * self.adversarial
            + weights.features * self.features
            + self.critic
    }

    /// `f` of every term.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> LossTerms {
        LossTerms {
            reconstruction: f(self.reconstruction),
            kl: f(self.kl),
            classifier: f(self.classifier),
            critic: f(self.critic),
            adversarial: f(self.adversarial),
            features: f(self.features),
        }
    }

    /// `f` of each term and the same term of `other`.
    pub fn zip_with(&self, other: &LossTerms, f: impl Fn(f32, f32) -> f32) -> LossTerms {
        LossTerms {
            reconstruction: f(self.reconstruction, other.reconstruction),
            kl: f(self.kl, other.kl),
            classifier: f(self.classifier, other.classifier),
            critic: f(self.critic, other.critic),
            adversarial: f(self.adversarial, other.adversarial),
            features: f(self.features, other.features),
        }
    }
}

/// Running mean of loss terms over batches of different sizes.
#[derive(Debug, Clone, Default)]
pub struct MeanLoss {
    images: usize,
    sum: LossTerms,
}

impl MeanLoss {
    /// Adds the terms `t` of a batch of `n` images.
    pub fn add(&mut self, t: &LossTerms, n: usize) {
        let w = n as f32;
        self.images += n;
        self.sum = self.sum.zip_with(t, |sum, t| sum + t * w);
    }

    /// Images added so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The mean terms per image (zero before anything was added).
    pub fn mean(&self) -> LossTerms {
        let n = self.images.max(1) as f32;
        self.sum.map(|sum| sum / n)
    }
}

/// The weights of the loss terms in what training minimizes; the reconstruction's is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// The KL term's: below 1 during the KL warm-up.
    pub kl: f32,
    /// The classifier head's cross-entropy's.
    pub classifier: f32,
    /// The adversarial term's ([`LossTerms::adversarial`]).
    pub adversarial: f32,
    /// Feature matching's ([`LossTerms::features`]).
    pub features: f32,
}

impl LossWeights {
    /// The weights of `config`'s run at its step `global` (0-based), with
    /// `steps_per_epoch` steps an epoch.
    pub fn at_step(config: &TrainConfig, steps_per_epoch: usize, global: usize) -> Self {
        LossWeights {
            kl: config.kl_weight(steps_per_epoch, global),
            ..LossWeights::of(config)
        }
    }

    /// The weights of `config`'s run after its KL warm-up.
    pub fn of(config: &TrainConfig) -> Self {
        LossWeights {
            kl: 1.0,
            classifier: config.class_weight,
            adversarial: config.adversarial_weight,
            features: config.feature_weight,
        }
    }

    /// The negative ELBO's alone: KL at 1, no classifier term.
    pub const ELBO: LossWeights = LossWeights {
        kl: 1.0,
        classifier: 0.0,
        adversarial: 0.0,
        features: 0.0,
    };
}

/// Applies a hidden-layer non-linearity to every entry.
pub(crate) fn activate<D: Device<f32>, T: Tape<f32, D>>(
    activation: Activation,
    x: Matrix<D, T>,
) -> Matrix<D, T> {
    match activation {
        Activation::Relu => x.relu(),
        Activation::Sigmoid => x.sigmoid(),
    }
}

/// `y = x W + b`, with `W` stored as (inputs, outputs); or, for a convolution, the same
/// applied to each window of a map ([`Conv`]), `W` then (window, out channels).
#[derive(Debug, Clone)]
pub struct Layer<D: Device<f32>> {
    /// Weights, shape (inputs, outputs).
    pub weight: Matrix<D>,
    /// Biases, shape (outputs,).
    pub bias: Vector<D>,
    /// The convolution this layer applies its weights in, if any.
    pub conv: Option<Conv>,
}

impl<D: Device<f32>> Layer<D> {
    /// Initialized like dfdx's and PyTorch's `Linear`: uniform in ±1/sqrt(inputs).
    fn new(dev: &D, inputs: usize, outputs: usize, rng: &mut impl rand::Rng) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        let dist = Uniform::new(-bound, bound);
        let weight: Vec<f32> = (0..inputs * outputs).map(|_| dist.sample(rng)).collect();
        let bias: Vec<f32> = (0..outputs).map(|_| dist.sample(rng)).collect();
        Layer {
            weight: dev.tensor_from_vec(weight, (inputs, outputs)),
            bias: dev.tensor_from_vec(bias, (outputs,)),
            conv: None,
        }
    }

    /// The convolution `conv`, initialized as a dense layer over one window.
    fn conv(dev: &D, conv: Conv, rng: &mut impl rand::Rng) -> Self {
        Layer {
            conv: Some(conv),
            ..Layer::new(dev, conv.window(), conv.output().1, rng)
        }
    }

    /// Values an image gives this layer: its inputs, or its input map's values.
    pub fn features_in(&self) -> usize {
        self.conv.map_or_else(|| self.inputs(), |c| c.inputs())
    }

    /// Values this layer gives per image: its outputs, or its output map's values.
    pub fn features_out(&self) -> usize {
        self.conv.map_or_else(|| self.outputs(), |c| c.outputs())
    }

    /// Rows of the weight matrix.
    pub fn inputs(&self) -> usize {
        self.weight.shape().0
    }

    /// Columns of the weight matrix.
    pub fn outputs(&self) -> usize {
        self.weight.shape().1
    }

    /// Forward pass on a batch `(batch, inputs)`.
    pub fn forward<T: Tape<f32, D> + Merge<NoneTape>>(&self, x: Matrix<D, T>) -> Matrix<D, T> {
        if let Some(conv) = &self.conv {
            return conv.forward(x, &self.weight, &self.bias);
        }
        let y = x.matmul(self.weight.clone());
        let shape = *y.shape();
        y + self.bias.clone().broadcast_like::<_, Axis<0>>(&shape)
    }
}

/// A stack of dense layers with a non-linearity between them (not after the last).
#[derive(Debug, Clone)]
pub struct Mlp<D: Device<f32>> {
    /// The layers, input side first.
    pub layers: Vec<Layer<D>>,
    /// Non-linearity after every layer but the last.
    pub activation: Activation,
}

impl<D: Device<f32>> Mlp<D> {
    fn new(dev: &D, widths: &[usize], activation: Activation, rng: &mut impl rand::Rng) -> Self {
        let layers = widths
            .windows(2)
            .map(|w| Layer::new(dev, w[0], w[1], rng))
            .collect();
        Mlp { layers, activation }
    }

    /// Each weight matrix divided by its largest singular value
    /// ([`crate::nn::spectral::normalize_spectrum`]), through the host.
    pub fn normalize_spectra(&mut self) {
        for layer in &mut self.layers {
            let shape = *layer.weight.shape();
            let mut weight = layer.weight.as_vec();
            spectral::normalize_spectrum(&mut weight, shape);
            layer.weight = layer.weight.device().tensor_from_vec(weight, shape);
        }
    }

    /// The same layers as new tensors, which a tape recording this stack's weights does
    /// not reach: a path through them carries gradients to its input alone.
    fn without_gradients(&self) -> Self {
        let copy = |l: &Layer<D>| Layer {
            weight: l.weight.clone() * 1.0,
            bias: l.bias.clone() * 1.0,
            conv: l.conv,
        };
        Mlp {
            layers: self.layers.iter().map(copy).collect(),
            activation: self.activation,
        }
    }

    /// Forward pass; with `activate_last` the non-linearity follows the last layer too.
    pub fn forward<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        x: Matrix<D, T>,
        activate_last: bool,
    ) -> Matrix<D, T> {
        self.forward_layers(0..self.layers.len(), x, activate_last)
    }

    /// The convolutions this stack begins with.
    fn convolutions(&self) -> usize {
        self.layers.iter().take_while(|l| l.conv.is_some()).count()
    }

    /// [`Self::forward`] through the layers `range` alone.
    fn forward_layers<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        range: std::ops::Range<usize>,
        mut x: Matrix<D, T>,
        activate_last: bool,
    ) -> Matrix<D, T> {
        let last = self.layers.len().saturating_sub(1);
        let (skip, take) = (range.start, range.len());
        for (i, layer) in self.layers.iter().enumerate().skip(skip).take(take) {
            x = layer.forward(x);
            if i < last || activate_last {
                x = activate(self.activation, x);
            }
        }
        x
    }
}

/// The whole VAE: encoder trunk and heads, optional classifier, decoder.
#[derive(Debug, Clone)]
pub struct Vae<D: Device<f32>> {
    /// Shape this model was built with.
    pub config: ModelConfig,
    /// Encoder trunk, 784 -> hidden..., activated.
    pub encoder: Mlp<D>,
    /// Mean of q(z|x).
    pub mu: Layer<D>,
    /// Log-variance of q(z|x).
    pub logvar: Layer<D>,
    /// Classifier 784 -> hidden... -> classes (empty for an unconditional model).
    pub classifier: Option<Mlp<D>>,
    /// Decoder [z, class probabilities] -> hidden... -> 784 logits.
    pub decoder: Mlp<D>,
    /// Critic 784 pixels -> hidden... -> 1 + classes: the logit that an image of digit
    /// y is a training image rather than the decoder's is its output 0 plus its output
    /// 1 + y (a projection critic, Miyato & Koyama 2018), or output 0 alone for an
    /// unconditional model. Training only; `None`: no critic.
    pub critic: Option<Mlp<D>>,
}

impl<D: Device<f32>> Vae<D> {
    /// A freshly initialized model, its weights drawn from `rng`.
    pub fn new(dev: &D, config: &ModelConfig, rng: &mut impl rand::Rng) -> Self {
        let encoder_input = PIXELS
            + if config.encoder_sees_label {
                config.classes
            } else {
                0
            };
        let convolutional = config.convolutional.as_ref();
        let mut encoder = Mlp::new(dev, &[], config.activation, rng);
        for conv in convolutional.map_or_else(Vec::new, Conv::encoder) {
            encoder.layers.push(Layer::conv(dev, conv, rng));
        }
        let label = encoder_input - PIXELS;
        let encoder_input = encoder
            .layers
            .last()
            .map_or(encoder_input, |l| l.features_out() + label);
        let encoder_widths: Vec<usize> = std::iter::once(encoder_input)
            .chain(config.encoder_hidden.iter().copied())
            .collect();
        let dense = Mlp::new(dev, &encoder_widths, config.activation, rng);
        encoder.layers.extend(dense.layers);
        let trunk_out = *encoder_widths.last().unwrap_or(&encoder_input);
        let mu = Layer::new(dev, trunk_out, config.latent, rng);
        let logvar = Layer::new(dev, trunk_out, config.latent, rng);
        let classifier = (config.classes > 0).then(|| {
            let widths: Vec<usize> = std::iter::once(PIXELS)
                .chain(config.classifier_hidden.iter().copied())
                .chain(std::iter::once(config.classes))
                .collect();
            Mlp::new(dev, &widths, config.activation, rng)
        });
        let decoder_output =
            convolutional.map_or(PIXELS, |c| c.map_side * c.map_side * c.map_channels);
        let decoder_widths: Vec<usize> = std::iter::once(config.decoder_input())
            .chain(config.decoder_hidden.iter().copied())
            .chain(std::iter::once(decoder_output))
            .collect();
        let mut decoder = Mlp::new(dev, &decoder_widths, config.activation, rng);
        for conv in convolutional.map_or_else(Vec::new, Conv::decoder) {
            decoder.layers.push(Layer::conv(dev, conv, rng));
        }
        Vae {
            config: config.clone(),
            encoder,
            mu,
            logvar,
            classifier,
            decoder,
            critic: Self::new_critic(dev, config, rng),
        }
    }

    /// A freshly initialized critic for a model of shape `config` (`None` if it has
    /// none), its weights drawn from `rng`: after every other part's, so that adding a
    /// critic leaves the rest of a model's initialization as it was. With spectral
    /// normalization its weights start normalized.
    pub fn new_critic(dev: &D, config: &ModelConfig, rng: &mut impl rand::Rng) -> Option<Mlp<D>> {
        (!config.critic_hidden.is_empty()).then(|| {
            let widths: Vec<usize> = std::iter::once(PIXELS)
                .chain(config.critic_hidden.iter().copied())
                .chain(std::iter::once(1 + config.classes))
                .collect();
            let mut critic = Mlp::new(dev, &widths, config.activation, rng);
            if config.critic_spectral_norm {
                critic.normalize_spectra();
            }
            critic
        })
    }

    /// A model of shape `config` with the weights and biases `layers` (each row major, as
    /// [`Layer`] holds them), in [`Self::layers`] order. Errors when their number or
    /// sizes are not the shape's.
    pub fn with_weights(
        dev: &D,
        config: &ModelConfig,
        layers: impl IntoIterator<Item = (Vec<f32>, Vec<f32>)>,
    ) -> anyhow::Result<Self> {
        let mut vae = Vae::new(dev, config, &mut rand::rngs::mock::StepRng::new(0, 0));
        let mut layers = layers.into_iter();
        for dense in vae.layers_mut() {
            let (inputs, outputs) = (dense.inputs(), dense.outputs());
            let (weight, bias) = layers
                .next()
                .ok_or_else(|| anyhow::anyhow!("fewer layers than the model has"))?;
            if weight.len() != inputs * outputs || bias.len() != outputs {
                anyhow::bail!(
                    "a layer of {} weights and {} biases where the model has {inputs} x {outputs}",
                    weight.len(),
                    bias.len()
                );
            }
            dense.weight = dev.tensor_from_vec(weight, (inputs, outputs));
            dense.bias = dev.tensor_from_vec(bias, (outputs,));
        }
        if layers.next().is_some() {
            anyhow::bail!("more layers than the model has");
        }
        Ok(vae)
    }

    /// Every dense layer with a stable name, in a fixed order (checkpoints, Adam).
    pub fn layers(&self) -> Vec<(String, &Layer<D>)> {
        let mut out = Vec::new();
        for (i, l) in self.encoder.layers.iter().enumerate() {
            out.push((format!("encoder.{i}"), l));
        }
        out.push(("mu".to_string(), &self.mu));
        out.push(("logvar".to_string(), &self.logvar));
        if let Some(c) = &self.classifier {
            for (i, l) in c.layers.iter().enumerate() {
                out.push((format!("classifier.{i}"), l));
            }
        }
        for (i, l) in self.decoder.layers.iter().enumerate() {
            out.push((format!("decoder.{i}"), l));
        }
        if let Some(c) = &self.critic {
            for (i, l) in c.layers.iter().enumerate() {
                out.push((format!("critic.{i}"), l));
            }
        }
        out
    }

    /// Mutable access to every dense layer, in the order of [`Self::layers`].
    pub fn layers_mut(&mut self) -> Vec<&mut Layer<D>> {
        let mut out: Vec<&mut Layer<D>> = Vec::new();
        out.extend(self.encoder.layers.iter_mut());
        out.push(&mut self.mu);
        out.push(&mut self.logvar);
        if let Some(c) = &mut self.classifier {
            out.extend(c.layers.iter_mut());
        }
        out.extend(self.decoder.layers.iter_mut());
        if let Some(c) = &mut self.critic {
            out.extend(c.layers.iter_mut());
        }
        out
    }

    /// The device the model lives on.
    pub fn device(&self) -> D {
        self.mu.weight.device().clone()
    }

    /// The same model with its weights copied onto `dev` (through the host).
    pub fn to_device<E: Device<f32>>(&self, dev: &E) -> Vae<E> {
        let dense = |l: &Layer<D>| Layer {
            weight: dev.tensor_from_vec(l.weight.as_vec(), *l.weight.shape()),
            bias: dev.tensor_from_vec(l.bias.as_vec(), *l.bias.shape()),
            conv: l.conv,
        };
        let mlp = |m: &Mlp<D>| Mlp {
            layers: m.layers.iter().map(dense).collect(),
            activation: m.activation,
        };
        Vae {
            config: self.config.clone(),
            encoder: mlp(&self.encoder),
            mu: dense(&self.mu),
            logvar: dense(&self.logvar),
            classifier: self.classifier.as_ref().map(mlp),
            decoder: mlp(&self.decoder),
            critic: self.critic.as_ref().map(mlp),
        }
    }

    /// Number of decoder parameters (what goes to the microcontroller).
    pub fn decoder_parameters(&self) -> usize {
        self.decoder
            .layers
            .iter()
            .map(|l| l.inputs() * l.outputs() + l.outputs())
            .sum()
    }
}

impl<D: Device<f32>> Vae<D> {
    /// Forward pass and loss: reconstruction + each other term times its weight in
    /// `weights` (the terms reported are unweighted). With `tape` an
    /// `OwnedTape` the result can be back-propagated.
    ///
    /// The decoder sees `[z, softmax(classifier logits)]`, as in the conditional-VAE
    /// tutorial; at generation time the one-hot of the wanted digit takes the place of
    /// the softmax.
    pub fn loss<T>(
        &self,
        batch: &Batch<D>,
        weights: LossWeights,
        tape: T,
    ) -> (Tensor<(), f32, D, T>, LossTerms)
    where
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape> + Default,
    {
        let n = batch.len() as f32;
        let x: Matrix<D, T> = batch.input.clone().put_tape(tape);
        let (x, x_tape) = x.split_tape();

        // Classifier head: its cross-entropy, and class probabilities for the decoder
        // (and, with `encoder_sees_label`, for the encoder).
        let class = match (&self.classifier, &batch.labels) {
            (Some(classifier), Some(labels)) => {
                let logits = classifier.forward(x.retaped::<T>(), false);
                let (logits, l_tape) = logits.split_tape();
                let log_probs = logits.clone().put_tape(l_tape).log_softmax::<Axis<1>>();
                let ce = (log_probs * labels.clone()).sum::<(), _>() * (-1.0 / n);
                let (probs, p_tape) = logits.retaped::<T>().softmax::<Axis<1>>().split_tape();
                Some((ce, probs, p_tape))
            }
            _ => None,
        };

        let label = match (&class, &batch.padded_input) {
            (Some((_, probs, _)), Some(padded)) => Some((probs.retaped::<T>(), padded)),
            _ => None,
        };
        let h = self.encoder_trunk(x.put_tape(x_tape), label);
        let (h, h_tape) = h.split_tape();
        let mu = self.mu.forward(h.clone().put_tape(h_tape));
        let logvar = self.logvar.forward(h.retaped::<T>());
        let (mu, mu_tape) = mu.split_tape();
        let (logvar, lv_tape) = logvar.split_tape();

        let std = (logvar.clone().put_tape(lv_tape) * 0.5).exp();
        let z = mu.clone().put_tape(mu_tape) + std * batch.noise.clone();
        let kl = (logvar.retaped::<T>().exp() + mu.retaped::<T>().square()
            - logvar.retaped::<T>()
            - 1.0)
            .sum::<(), _>()
            * (0.5 / n);

        let (decoder_input, class_loss) = match class {
            Some((ce, probs, p_tape)) => (join_columns(z, probs.put_tape(p_tape)), Some(ce)),
            None => (z, None),
        };
        let logits = self.decoder.forward(decoder_input, false);
        let (logits, logits_tape) = logits.split_tape();
        // One f32 accumulator over the whole batch: for `vae eval`'s batches of 1,000
        // images (784,000 terms) about 3.5e-4 low, which every committed figure shares
        // (the CPU's training step sums image by image, `nn::host`).
        let recon = logits.clone().put_tape(logits_tape);
        let recon = recon.bce_with_logits(batch.target.clone()).sum::<(), _>() * (1.0 / n);

        let mut terms = LossTerms {
            reconstruction: scalar(&recon),
            kl: scalar(&kl),
            ..LossTerms::default()
        };
        let mut total = recon + kl * weights.kl;
        if let Some(ce) = class_loss {
            terms.classifier = scalar(&ce);
            total = total + ce * weights.classifier;
        }
        if let (Some(critic), Some(prior)) = (&self.critic, &batch.prior) {
            let [critic_loss, adversarial, features] =
                self.critic_terms(critic, batch, prior, logits.retaped::<T>());
            terms.critic = scalar(&critic_loss);
            terms.adversarial = scalar(&adversarial);
            terms.features = scalar(&features);
            total = total
                + critic_loss
                + adversarial * weights.adversarial
                + features * weights.features;
        }
        (total, terms)
    }

    /// The critic's loss, the adversarial term and feature matching ([`LossTerms`]) on
    /// `batch`, whose reconstructions' logits are `logits`, with the decoder's samples
    /// from `prior` (each with its image's label), each averaged over the batch. The
    /// non-saturating losses of Goodfellow et al. (2014) as cross-entropies of the
    /// critic's logit. The critic's gradient stops at the decoder's samples (they enter
    /// it as constants); the decoder's terms go through a copy of the critic that the
    /// tape does not reach, so that one step trains each side on its own loss.
    fn critic_terms<T>(
        &self,
        critic: &Mlp<D>,
        batch: &Batch<D>,
        prior: &Matrix<D>,
        logits: Matrix<D, T>,
    ) -> [Tensor<(), f32, D, T>; 3]
    where
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape> + Default,
    {
        let n = batch.len() as f32;
        let half = 0.5 / n;
        let labels = batch.labels.as_ref();
        let prior_input = match labels {
            Some(l) => join_columns(prior.retaped::<T>(), l.retaped::<T>()),
            None => prior.retaped::<T>(),
        };
        let prior_logits = self.decoder.forward(prior_input, false);
        let fixed = critic.without_gradients();
        let hidden = 0..critic.layers.len() - 1;
        // Each row's output 0 and, conditional, its output 1 + label ([`Vae::critic`]).
        let dev = prior.device().clone();
        let ones: Matrix<D> = dev.ones_like(&(batch.len(), 1));
        let selected = match labels {
            Some(l) => join_columns(ones, l.clone()),
            None => ones,
        };
        // The critic's last hidden layer and its logit for each row of `pixels`.
        let judge = |critic: &Mlp<D>, pixels: Matrix<D, T>| {
            let features = critic.forward_layers(hidden.clone(), pixels, true);
            let (features, tape) = features.split_tape();
            let out = hidden.end..hidden.end + 1;
            let out = critic.forward_layers(out, features.clone().put_tape(tape), false);
            let logit = (out * selected.clone()).sum::<(usize,), Axis<1>>();
            (features, logit)
        };
        let cross_entropy = |logit: Tensor<(usize,), f32, D, T>, real: bool| {
            let dev = logit.device().clone();
            let target = match real {
                true => dev.ones_like(logit.shape()),
                false => dev.zeros_like(logit.shape()),
            };
            logit.bce_with_logits(target).sum::<(), _>()
        };
        // Each kind of the decoder's samples: the critic's term, the adversarial term,
        // and the features the decoder's copy of the critic sees.
        let fake = |logits: Matrix<D, T>| {
            let (logits, tape) = logits.split_tape();
            let seen = logits.clone().sigmoid().retaped::<T>();
            let (features, passed) = judge(&fixed, logits.put_tape(tape).sigmoid());
            let critic_term = cross_entropy(judge(critic, seen).1, false) * half;
            (critic_term, cross_entropy(passed, true) * half, features)
        };
        let real = cross_entropy(judge(critic, batch.target.retaped::<T>()).1, true) * (1.0 / n);
        let (critic_reconstructions, passed_reconstructions, features) = fake(logits);
        let (critic_prior, passed_prior, _) = fake(prior_logits);
        let (real_features, _) = judge(&fixed, batch.target.retaped::<T>());
        let matching = (features.retaped::<T>() - real_features).square();
        [
            real + critic_reconstructions + critic_prior,
            passed_reconstructions + passed_prior,
            matching.sum::<(), _>() * (1.0 / n),
        ]
    }

    /// The negative importance-weighted bound (Burda, Grosse & Salakhutdinov 2016) of an
    /// unconditional model on `batch`, whose noise holds [`Batch::samples`] = K draws per
    /// image, averaged over its images: `-(1/n) sum_i log (1/K) sum_k w_ik`, with
    /// `w = p(x|z) p(z) / q(z|x)` and `z_ik ~ q(z|x_i)`. `weights.kl` scales the prior
    /// and posterior densities in `w` (KL warm-up). The terms reported are the bound's own:
    /// `reconstruction` the draws' weighted mean of -log p(x|z), `kl` the rest, so that
    /// [`LossTerms::neg_elbo`] is the negative bound. With `tape` an `OwnedTape` the
    /// result can be back-propagated.
    pub fn importance_loss<T>(
        &self,
        batch: &Batch<D>,
        weights: LossWeights,
        tape: T,
    ) -> (Tensor<(), f32, D, T>, LossTerms)
    where
        T: Tape<f32, D> + Merge<T> + Merge<NoneTape> + Default,
    {
        let (n, k) = (batch.len(), batch.samples());
        let dev = self.device();
        // Draw r belongs to image r / k.
        let of_image: Tensor<(usize,), usize, D> =
            dev.tensor_from_vec((0..n * k).map(|r| r / k).collect(), (n * k,));
        let x: Matrix<D, T> = batch.input.clone().put_tape(tape);
        let (h, h_tape) = self.encoder.forward(x, true).split_tape();
        let (mu, mu_tape) = self.mu.forward(h.clone().put_tape(h_tape)).split_tape();
        let (logvar, lv_tape) = self.logvar.forward(h.retaped::<T>()).split_tape();
        let std = (logvar.clone().put_tape(lv_tape) * 0.5).exp();
        let z = mu.put_tape(mu_tape).gather(of_image.clone())
            + std.gather(of_image.clone()) * batch.noise.clone();
        let (z, z_tape) = z.split_tape();
        let target = batch.target.clone().gather(of_image.clone());
        let (nll, nll_tape) = self
            .decoder
            .forward(z.clone().put_tape(z_tape), false)
            .bce_with_logits(target)
            .sum::<(usize,), Axis<1>>()
            .split_tape();
        // log p(z) - log q(z|x): their 2 pi terms cancel.
        let eps_sq = batch.noise.clone().square().sum::<(usize,), Axis<1>>();
        let log_prior = z.retaped::<T>().square().sum::<(usize,), Axis<1>>() * -0.5;
        let log_posterior = logvar
            .retaped::<T>()
            .sum::<(usize,), Axis<1>>()
            .gather(of_image)
            * -0.5
            - eps_sq * 0.5;
        let (densities, d_tape) = (log_prior - log_posterior).split_tape();

        // The bound's terms, from the values: each image's draws weighed by w_k / sum_j w_j.
        let (nll_v, densities_v) = (nll.as_vec(), densities.as_vec());
        let (mut bound, mut reconstruction) = (0.0f64, 0.0f64);
        for i in 0..n {
            let draws = i * k..(i + 1) * k;
            let log_w: Vec<f64> = draws
                .clone()
                .map(|r| f64::from(densities_v[r]) - f64::from(nll_v[r]))
                .collect();
            bound += log_mean_exp(&log_w);
            let weights = normalized_weights(&log_w);
            reconstruction += draws
                .zip(weights)
                .map(|(r, w)| w * f64::from(nll_v[r]))
                .sum::<f64>();
        }
        let images = n.max(1) as f64;
        let reconstruction = (reconstruction / images) as f32;
        let terms = LossTerms {
            reconstruction,
            kl: (-bound / images) as f32 - reconstruction,
            ..LossTerms::default()
        };

        let log_w = nll.put_tape(nll_tape).negate() + densities.put_tape(d_tape) * weights.kl;
        let by_image = relabel(log_w, (n, k));
        let objective = by_image.logsumexp::<(usize,), Axis<1>>().sum::<(), _>()
            * (-1.0 / n.max(1) as f32)
            + (k as f32).ln();
        (objective, terms)
    }

    /// The encoder's trunk on the images `x`; for an encoder that sees the label, `label`
    /// holds the class probabilities and `x` with zero columns where they go, and the
    /// probabilities join the image (a dense encoder) or its convolutions' features.
    fn encoder_trunk<T: Tape<f32, D> + Merge<T> + Merge<NoneTape>>(
        &self,
        x: Matrix<D, T>,
        label: Option<(Matrix<D, T>, &Matrix<D>)>,
    ) -> Matrix<D, T> {
        let convs = self.encoder.convolutions();
        match label {
            Some((probs, _)) if convs > 0 => {
                let features = self.encoder.forward_layers(0..convs, x, true);
                let joined = join_columns(features, probs);
                let dense = convs..self.encoder.layers.len();
                self.encoder.forward_layers(dense, joined, true)
            }
            Some((probs, padded)) => {
                let (_, tape) = x.split_tape();
                let width = padded.shape().1;
                let joined = padded.clone().put_tape(tape) + place_columns(probs, PIXELS, width);
                self.encoder.forward(joined, true)
            }
            None => self.encoder.forward(x, true),
        }
    }

    /// The encoder on a batch of images (intensities in [0, 1], 784 a row): means and
    /// log-variances of q(z|x), each `(batch, latent)` row by row, and the classifier's
    /// class probabilities `(batch, classes)` for a conditional model.
    pub fn encode(&self, pixels: &[f32]) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
        let dev = self.device();
        let x = dev.tensor_from_vec(pixels.to_vec(), (pixels.len() / PIXELS, PIXELS));
        let probs = self
            .classifier
            .as_ref()
            .map(|c| c.forward(x.clone(), false).softmax::<Axis<1>>());
        let h = match &probs {
            Some(p) if self.config.encoder_sees_label => {
                let padded = padded_rows(&dev, pixels, PIXELS, p.shape().1);
                self.encoder_trunk(x, Some((p.clone(), &padded)))
            }
            _ => self.encoder_trunk(x, None),
        };
        let mu = self.mu.forward(h.clone()).as_vec();
        let logvar = self.logvar.forward(h).as_vec();
        (mu, logvar, probs.map(|p| p.as_vec()))
    }

    /// Decoder forward pass on a batch of decoder inputs `(batch, latent + classes)`,
    /// giving pixel probabilities. The reference the `vae-core` decoder is tested against.
    pub fn decode(&self, input: Matrix<D>) -> Matrix<D> {
        self.decoder.forward(input, false).sigmoid()
    }

    /// Decodes decoder inputs (`latent + classes` values a row, row after row) into
    /// 8-bit images, rounded as `vae-core` rounds them for a user to see.
    pub fn decode_images(&self, input: Vec<f32>) -> Vec<[u8; PIXELS]> {
        let width = self.config.decoder_input();
        let n = input.len() / width;
        let probs = self
            .decode(self.device().tensor_from_vec(input, (n, width)))
            .as_vec();
        probs
            .chunks_exact(PIXELS)
            .map(|p| {
                let mut image = [0u8; PIXELS];
                for (pixel, &v) in image.iter_mut().zip(p) {
                    *pixel = vae_core::to_pixel(v);
                }
                image
            })
            .collect()
    }
}
