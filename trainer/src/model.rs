//! The VAE as dfdx tensors whose sizes are chosen at run time.
//!
//! dfdx 0.13's `nn::Linear` fixes its sizes as const generics and its optimizers walk
//! modules through `TensorCollection`, which cannot describe run-time shapes. So the
//! layers here are plain structs of `(usize, usize)` tensors, and [`crate::adam::Adam`]
//! updates them directly. The forward pass is ordinary dfdx tensor code and runs on any
//! dfdx device.

use dfdx::prelude::*;
use rand::distributions::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

/// A 2-D tensor of run-time shape.
pub type Matrix<D, T = NoneTape> = Tensor<(usize, usize), f32, D, T>;
/// A 1-D tensor of run-time shape.
pub type Vector<D> = Tensor<(usize,), f32, D>;

/// Hidden-layer non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// max(x, 0)
    Relu,
    /// 1 / (1 + e^-x), as in the conditional-VAE tutorial
    Sigmoid,
}

impl Act {
    pub(crate) fn apply<D: Device<f32>, T: Tape<f32, D>>(self, x: Matrix<D, T>) -> Matrix<D, T> {
        match self {
            Act::Relu => x.relu(),
            Act::Sigmoid => x.sigmoid(),
        }
    }

    /// The same non-linearity as named in the model file format.
    pub fn to_core(self) -> vae_core::Activation {
        match self {
            Act::Relu => vae_core::Activation::Relu,
            Act::Sigmoid => vae_core::Activation::Sigmoid,
        }
    }
}

/// Shape of the whole VAE. Saved as JSON next to every checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Size of the latent code z.
    pub latent: usize,
    /// Encoder hidden widths (input side first).
    pub encoder_hidden: Vec<usize>,
    /// Decoder hidden widths (latent side first).
    pub decoder_hidden: Vec<usize>,
    /// Hidden non-linearity (encoder, classifier and decoder).
    pub activation: Act,
    /// Number of classes of the classifier head; 0 for a plain, unconditional VAE.
    pub classes: usize,
    /// Classifier hidden widths.
    pub classifier_hidden: Vec<usize>,
    /// Feed the classifier's class probabilities to the encoder as well, so that z need
    /// not carry the digit's identity (the decoder gets it from the label).
    #[serde(default)]
    pub encoder_sees_label: bool,
}

impl ModelConfig {
    /// Input width of the decoder: `[z, class probabilities]`.
    pub fn decoder_input(&self) -> usize {
        self.latent + self.classes
    }

    /// The decoder as the model file format describes it.
    pub fn decoder_architecture(&self) -> anyhow::Result<vae_core::Architecture> {
        let mut hidden = heapless::Vec::new();
        for &h in &self.decoder_hidden {
            hidden.push(u16::try_from(h)?).map_err(|_| {
                anyhow::anyhow!(
                    "at most {} decoder hidden layers fit the model file",
                    vae_core::MAX_HIDDEN_LAYERS
                )
            })?;
        }
        let arch = vae_core::Architecture {
            latent: u16::try_from(self.latent)?,
            classes: u16::try_from(self.classes)?,
            hidden,
            activation: self.activation.to_core(),
            output: vae_core::PIXELS as u16,
        };
        arch.validate()?;
        Ok(arch)
    }
}

/// `y = x W + b`, with `W` stored as (inputs, outputs).
#[derive(Debug, Clone)]
pub struct Dense<D: Device<f32>> {
    /// Weights, shape (inputs, outputs).
    pub weight: Matrix<D>,
    /// Biases, shape (outputs,).
    pub bias: Vector<D>,
}

impl<D: Device<f32>> Dense<D> {
    /// Initialized like dfdx's and PyTorch's `Linear`: uniform in ±1/sqrt(inputs).
    fn new(dev: &D, inputs: usize, outputs: usize, rng: &mut impl rand::Rng) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        let dist = Uniform::new(-bound, bound);
        let weight: Vec<f32> = (0..inputs * outputs).map(|_| dist.sample(rng)).collect();
        let bias: Vec<f32> = (0..outputs).map(|_| dist.sample(rng)).collect();
        Dense {
            weight: dev.tensor_from_vec(weight, (inputs, outputs)),
            bias: dev.tensor_from_vec(bias, (outputs,)),
        }
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.weight.shape().0
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.weight.shape().1
    }

    /// Forward pass on a batch `(batch, inputs)`.
    pub fn forward<T: Tape<f32, D> + Merge<NoneTape>>(&self, x: Matrix<D, T>) -> Matrix<D, T> {
        let y = x.matmul(self.weight.clone());
        let shape = *y.shape();
        y + self.bias.clone().broadcast_like::<_, Axis<0>>(&shape)
    }
}

/// A stack of dense layers with a non-linearity between them (not after the last).
#[derive(Debug, Clone)]
pub struct Mlp<D: Device<f32>> {
    /// The layers, input side first.
    pub layers: Vec<Dense<D>>,
    /// Non-linearity after every layer but the last.
    pub activation: Act,
}

impl<D: Device<f32>> Mlp<D> {
    fn new(dev: &D, widths: &[usize], activation: Act, rng: &mut impl rand::Rng) -> Self {
        let layers = widths
            .windows(2)
            .map(|w| Dense::new(dev, w[0], w[1], rng))
            .collect();
        Mlp { layers, activation }
    }

    /// Forward pass; with `activate_last` the non-linearity follows the last layer too.
    pub fn forward<T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        mut x: Matrix<D, T>,
        activate_last: bool,
    ) -> Matrix<D, T> {
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last || activate_last {
                x = self.activation.apply(x);
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
    pub mu: Dense<D>,
    /// Log-variance of q(z|x).
    pub logvar: Dense<D>,
    /// Classifier 784 -> hidden... -> classes (empty for an unconditional model).
    pub classifier: Option<Mlp<D>>,
    /// Decoder [z, class probabilities] -> hidden... -> 784 logits.
    pub decoder: Mlp<D>,
}

/// Pixels per image.
pub const PIXELS: usize = vae_core::PIXELS;

impl<D: Device<f32>> Vae<D> {
    /// A freshly initialized model, its weights drawn from `rng`.
    pub fn new(dev: &D, config: &ModelConfig, rng: &mut impl rand::Rng) -> Self {
        let encoder_input = PIXELS
            + if config.encoder_sees_label {
                config.classes
            } else {
                0
            };
        let encoder_widths: Vec<usize> = std::iter::once(encoder_input)
            .chain(config.encoder_hidden.iter().copied())
            .collect();
        let encoder = Mlp::new(dev, &encoder_widths, config.activation, rng);
        let trunk_out = *encoder_widths.last().unwrap_or(&encoder_input);
        let mu = Dense::new(dev, trunk_out, config.latent, rng);
        let logvar = Dense::new(dev, trunk_out, config.latent, rng);
        let classifier = (config.classes > 0).then(|| {
            let widths: Vec<usize> = std::iter::once(PIXELS)
                .chain(config.classifier_hidden.iter().copied())
                .chain(std::iter::once(config.classes))
                .collect();
            Mlp::new(dev, &widths, config.activation, rng)
        });
        let decoder_widths: Vec<usize> = std::iter::once(config.decoder_input())
            .chain(config.decoder_hidden.iter().copied())
            .chain(std::iter::once(PIXELS))
            .collect();
        let decoder = Mlp::new(dev, &decoder_widths, config.activation, rng);
        Vae {
            config: config.clone(),
            encoder,
            mu,
            logvar,
            classifier,
            decoder,
        }
    }

    /// Every dense layer with a stable name, in a fixed order (checkpoints, Adam).
    pub fn dense_layers(&self) -> Vec<(String, &Dense<D>)> {
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
        out
    }

    /// Mutable access to every dense layer, in the order of [`Self::dense_layers`].
    pub fn dense_layers_mut(&mut self) -> Vec<&mut Dense<D>> {
        let mut out: Vec<&mut Dense<D>> = Vec::new();
        out.extend(self.encoder.layers.iter_mut());
        out.push(&mut self.mu);
        out.push(&mut self.logvar);
        if let Some(c) = &mut self.classifier {
            out.extend(c.layers.iter_mut());
        }
        out.extend(self.decoder.layers.iter_mut());
        out
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

/// One training or evaluation batch, already on the device.
pub struct Batch<D: Device<f32>> {
    /// Encoder input, (batch, 784).
    pub input: Matrix<D>,
    /// Reconstruction target, (batch, 784), values in [0, 1].
    pub target: Matrix<D>,
    /// One-hot labels, (batch, classes); needed by conditional models.
    pub labels: Option<Matrix<D>>,
    /// Standard-normal noise for the reparameterization, (batch, latent).
    pub noise: Matrix<D>,
}

impl<D: Device<f32>> Batch<D> {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.input.shape().0
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The terms of the loss, each averaged over the batch, in nats per image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTerms {
    /// -log p(x|z): Bernoulli cross-entropy summed over the 784 pixels.
    pub reconstruction: f32,
    /// KL(q(z|x) || N(0, I)).
    pub kl: f32,
    /// Cross-entropy of the classifier head against the true label (0 if none).
    pub classifier: f32,
}

impl std::iter::Sum for LossTerms {
    /// Term by term: the shards of a mini-batch, each already divided by the whole
    /// mini-batch's size, add up to its terms.
    fn sum<I: Iterator<Item = LossTerms>>(iter: I) -> Self {
        iter.fold(LossTerms::default(), |a, b| LossTerms {
            reconstruction: a.reconstruction + b.reconstruction,
            kl: a.kl + b.kl,
            classifier: a.classifier + b.classifier,
        })
    }
}

impl LossTerms {
    /// The negative ELBO (reconstruction + KL), the figure users compare.
    pub fn neg_elbo(&self) -> f32 {
        self.reconstruction + self.kl
    }
}

impl<D: Device<f32>> Vae<D> {
    /// Forward pass and loss: reconstruction + `kl_weight` x KL + `class_weight` x
    /// classifier cross-entropy (the terms reported are unweighted). With `tape` an
    /// `OwnedTape` the result can be back-propagated.
    ///
    /// The decoder sees `[z, softmax(classifier logits)]`, as in the conditional-VAE
    /// tutorial; at generation time the one-hot of the wanted digit takes the place of
    /// the softmax.
    pub fn loss<T>(
        &self,
        batch: &Batch<D>,
        class_weight: f32,
        kl_weight: f32,
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

        let x = x.put_tape(x_tape);
        let h = match &class {
            Some((_, probs, _)) if self.config.encoder_sees_label => self
                .encoder
                .forward((x, probs.retaped::<T>()).concat_along(Axis::<1>), true),
            _ => self.encoder.forward(x, true),
        };
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
            Some((ce, probs, p_tape)) => (
                (z, probs.put_tape(p_tape)).concat_along(Axis::<1>),
                Some(ce),
            ),
            None => (z, None),
        };
        let logits = self.decoder.forward(decoder_input, false);
        let recon = logits.bce_with_logits(batch.target.clone()).sum::<(), _>() * (1.0 / n);

        let mut terms = LossTerms {
            reconstruction: scalar(&recon),
            kl: scalar(&kl),
            classifier: 0.0,
        };
        let mut total = recon + kl * kl_weight;
        if let Some(ce) = class_loss {
            terms.classifier = scalar(&ce);
            total = total + ce * class_weight;
        }
        (total, terms)
    }

    /// The encoder on a batch of images: means and log-variances of q(z|x), each
    /// `(batch, latent)` row by row, and the classifier's class probabilities
    /// `(batch, classes)` for a conditional model.
    pub fn encode(&self, x: Matrix<D>) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
        let probs = self
            .classifier
            .as_ref()
            .map(|c| c.forward(x.clone(), false).softmax::<Axis<1>>());
        let h = match &probs {
            Some(p) if self.config.encoder_sees_label => self
                .encoder
                .forward((x, p.clone()).concat_along(Axis::<1>), true),
            _ => self.encoder.forward(x, true),
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
}

/// The value of a 0-dimensional tensor.
pub fn scalar<D: Device<f32>, T>(t: &Tensor<(), f32, D, T>) -> f32 {
    t.as_vec().first().copied().unwrap_or(f32::NAN)
}
