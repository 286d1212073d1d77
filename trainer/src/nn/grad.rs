//! The training step's gradients, derived by hand instead of by dfdx's tape.
//!
//! dfdx 0.13's tape differentiates every operand of every operation: a matmul's backward
//! always computes the gradient of its input too. For the first layer of the encoder and
//! of the classifier that input is the batch of images, so a tape-driven step spends one
//! of its largest matrix products (batch x 784 x hidden) on a gradient nobody reads, and
//! every elementwise step of the loss allocates and accumulates gradients of its own.
//! The VAE's gradients have a short closed form; this module computes exactly those,
//! with the same dfdx tensor operations (so it runs on any dfdx device), and keeps the
//! tape version ([`Vae::loss`]) as the reference it is tested against.

use dfdx::prelude::*;

use vae_core::{Activation, PIXELS};

use crate::data::batch::Batch;
use crate::foundation::loss::LossTerms;
use crate::foundation::tensor::{join_columns, place_columns, scalar, Matrix, Vector};
use crate::nn::model::{activate, Dense, Mlp, Vae};

/// Gradient of the loss with respect to one dense layer's parameters.
pub struct DenseGrad<D: Device<f32>> {
    /// d loss / d weight, shape (inputs, outputs).
    pub weight: Matrix<D>,
    /// d loss / d bias, shape (outputs,).
    pub bias: Vector<D>,
}

/// Activations of an [`Mlp`] on one batch: its input, then each layer's output (after
/// the non-linearity where there is one).
pub(crate) struct Trace<D: Device<f32>> {
    values: Vec<Matrix<D>>,
}

impl<D: Device<f32>> Trace<D> {
    pub(crate) fn output(&self) -> &Matrix<D> {
        // `values` always holds the input, so `last` exists.
        &self.values[self.values.len() - 1]
    }
}

/// 2^100, exactly representable in f32.
const TWO_POW_100: f32 = 1.267_650_6e30;

pub(crate) fn transpose<D: Device<f32>>(m: &Matrix<D>) -> Matrix<D> {
    m.clone().permute::<_, Axes2<1, 0>>()
}

impl<D: Device<f32>> Dense<D> {
    /// Gradients of this layer from its input `x` and the gradient `g` at its output.
    pub(crate) fn grad(&self, x: &Matrix<D>, g: &Matrix<D>) -> DenseGrad<D> {
        DenseGrad {
            weight: transpose(x).matmul(g.clone()),
            bias: g.clone().sum::<(usize,), Axis<0>>(),
        }
    }
}

/// `g` times the derivative of the non-linearity `activation`, given its output `y`.
fn activation_backward<D: Device<f32>>(
    activation: Activation,
    y: &Matrix<D>,
    g: Matrix<D>,
) -> Matrix<D> {
    match activation {
        // 1 where y > 0, else 0: y >= 0, and 2^200 lifts even the smallest subnormal
        // above 1. Three cheap passes instead of a comparison and a `choose`, which
        // dfdx runs through its slow strided kernel.
        Activation::Relu => (y.clone() * TWO_POW_100 * TWO_POW_100).clamp(0.0, 1.0) * g,
        Activation::Sigmoid => g * y.clone() * (y.clone().negate() + 1.0),
    }
}

impl<D: Device<f32>> Mlp<D> {
    pub(crate) fn trace(&self, x: Matrix<D>, activate_last: bool) -> Trace<D> {
        let last = self.layers.len().saturating_sub(1);
        let mut values = vec![x];
        for (i, layer) in self.layers.iter().enumerate() {
            let mut y = layer.forward(values[i].clone());
            if i < last || activate_last {
                y = activate(self.activation, y);
            }
            values.push(y);
        }
        Trace { values }
    }

    /// Back-propagates `g`, the gradient at the output, pushing each layer's gradients
    /// into `out` (input side first). Returns the gradient with respect to the input
    /// columns `input_from..` (`None` for `input_from: None`, which saves the largest
    /// product when the input is data).
    pub(crate) fn backward(
        &self,
        trace: &Trace<D>,
        mut g: Matrix<D>,
        activate_last: bool,
        input_from: Option<usize>,
        out: &mut Vec<DenseGrad<D>>,
    ) -> Option<Matrix<D>> {
        let last = self.layers.len().saturating_sub(1);
        let mut grads = Vec::with_capacity(self.layers.len());
        let mut input_grad = None;
        for (i, layer) in self.layers.iter().enumerate().rev() {
            if i < last || activate_last {
                g = activation_backward(self.activation, &trace.values[i + 1], g);
            }
            grads.push(layer.grad(&trace.values[i], &g));
            if i > 0 {
                g = g.matmul(transpose(&layer.weight));
            } else if let Some(from) = input_from {
                let rows = layer.inputs();
                let w = layer.weight.clone().slice((from..rows, ..));
                input_grad = Some(g.clone().matmul(transpose(&w)));
            }
        }
        out.extend(grads.into_iter().rev());
        input_grad
    }
}

/// Loss terms of `vae` on `batch` and the gradient of
/// `reconstruction + kl_weight * KL + class_weight * classifier` with respect to every
/// dense layer, in [`Vae::dense_layers`] order. The same quantity as
/// [`Vae::loss`] followed by `backward`, for one fewer large product and a fraction of
/// the elementwise passes. Convolutional models take the tape ([`tape_gradients`]): their
/// layers' closed-form backward passes exist on host buffers only ([`crate::nn::host`]),
/// which the CPU's steps use.
///
/// Sums over the batch are divided by `images`, the size of the whole mini-batch, which
/// may be larger than `batch` when the mini-batch is split into shards: the shards'
/// terms and gradients then simply add up to the mini-batch's.
pub fn loss_and_gradients<D: Device<f32>>(
    vae: &Vae<D>,
    batch: &Batch<D>,
    images: usize,
    class_weight: f32,
    kl_weight: f32,
) -> (LossTerms, Vec<DenseGrad<D>>) {
    if vae.config.convolutional.is_some() {
        return tape_gradients(vae, batch, images, class_weight, kl_weight);
    }
    let inv_n = 1.0 / images.max(1) as f32;
    let latent = vae.config.latent;
    let x = batch.input.clone();

    // Forward, keeping what the backward pass needs.
    let class = match (&vae.classifier, &batch.labels) {
        (Some(classifier), Some(labels)) => {
            let trace = classifier.trace(x.clone(), false);
            let log_probs = trace.output().clone().log_softmax::<Axis<1>>();
            let ce = (log_probs.clone() * labels.clone()).sum::<(), _>() * (-inv_n);
            Some((classifier, labels, trace, log_probs.exp(), ce))
        }
        _ => None,
    };
    let (encoder_input, sees_label) = match (&class, &batch.padded_input) {
        (Some((_, _, _, probs, _)), Some(padded)) => {
            let width = padded.shape().1;
            (
                padded.clone() + place_columns(probs.clone(), PIXELS, width),
                true,
            )
        }
        _ => (x, false),
    };
    let encoder = vae.encoder.trace(encoder_input, true);
    let h = encoder.output();
    let mu = vae.mu.forward(h.clone());
    let logvar = vae.logvar.forward(h.clone());
    let std = (logvar.clone() * 0.5).exp();
    let z = mu.clone() + std.clone() * batch.noise.clone();
    let var = std.clone().square();
    let kl = (var.clone() + mu.clone().square() - logvar - 1.0).sum::<(), _>() * (0.5 * inv_n);
    let decoder_input = match &class {
        Some((_, _, _, probs, _)) => join_columns(z, probs.clone()),
        None => z,
    };
    let decoder = vae.decoder.trace(decoder_input, false);
    let logits = decoder.output().clone();
    let probs_out = logits.clone().sigmoid();
    let recon = cross_entropy(logits, &probs_out, batch.target.clone()).sum::<(), _>() * inv_n;

    // Backward.
    let mut decoder_grads = Vec::new();
    let g_logits = (probs_out - batch.target.clone()) * inv_n;
    let g_decoder_input = vae
        .decoder
        .backward(&decoder, g_logits, false, Some(0), &mut decoder_grads)
        .unwrap_or_else(|| mu.device().zeros_like(mu.shape()));
    let rows = batch.len();
    let (g_z, g_probs) = match &class {
        Some(_) => {
            let width = g_decoder_input.shape().1;
            (
                g_decoder_input.clone().slice((.., 0..latent)),
                Some(g_decoder_input.slice((.., latent..width))),
            )
        }
        None => (g_decoder_input, None),
    };
    let g_mu = g_z.clone() + mu * (kl_weight * inv_n);
    let g_logvar = g_z * batch.noise.clone() * std * 0.5 + (var - 1.0) * (0.5 * kl_weight * inv_n);
    let mut grads = Vec::new();
    let label_from = sees_label.then_some(PIXELS);
    let g_probs_encoder = encoder_backward(vae, &encoder, (g_mu, g_logvar), label_from, &mut grads);

    let mut terms = LossTerms {
        reconstruction: scalar(&recon),
        kl: scalar(&kl),
        classifier: 0.0,
    };
    if let Some((classifier, labels, trace, probs, ce)) = class {
        let g_probs = match (g_probs, g_probs_encoder) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        // Through the softmax: p * (g - sum(g * p)), plus the cross-entropy's own term.
        let mut g_logits = (probs.clone() - labels.clone()) * (class_weight * inv_n);
        if let Some(g) = g_probs {
            let shape = (rows, probs.shape().1);
            let dot = (g.clone() * probs.clone())
                .sum::<(usize,), Axis<1>>()
                .broadcast_like::<_, Axis<1>>(&shape);
            g_logits = g_logits + probs * (g - dot);
        }
        classifier.backward(&trace, g_logits, false, None, &mut grads);
        terms.classifier = scalar(&ce);
    }
    grads.extend(decoder_grads);
    (terms, grads)
}

/// The Bernoulli cross-entropy -log p(target | logits) of every pixel, from the
/// probabilities `probs = sigmoid(logits)` the gradient needs anyway:
/// max(x, 0) - x t + ln(1 + e^-|x|), with ln(1 + e^-|x|) = -ln(max(p, 1 - p)), whose
/// argument is never below 1/2. One logarithm per pixel instead of an exp and a log.
pub(crate) fn cross_entropy<D: Device<f32>>(
    logits: Matrix<D>,
    probs: &Matrix<D>,
    target: Matrix<D>,
) -> Matrix<D> {
    logits.clone().relu()
        - logits * target
        - probs.clone().maximum(probs.clone().negate() + 1.0).ln()
}

/// Back-propagates the gradients at q(z|x)'s means and log-variances `(g_mu, g_logvar)`
/// through their layers and the encoder (whose forward pass is `encoder`), pushing the
/// encoder's, then `mu`'s and `logvar`'s gradients into `grads`, in
/// [`Vae::dense_layers`] order. Returns the gradient with respect to the encoder's input
/// columns `input_from..` (see [`Mlp::backward`]).
pub(crate) fn encoder_backward<D: Device<f32>>(
    vae: &Vae<D>,
    encoder: &Trace<D>,
    (g_mu, g_logvar): (Matrix<D>, Matrix<D>),
    input_from: Option<usize>,
    grads: &mut Vec<DenseGrad<D>>,
) -> Option<Matrix<D>> {
    let h = encoder.output();
    let mu_grad = vae.mu.grad(h, &g_mu);
    let logvar_grad = vae.logvar.grad(h, &g_logvar);
    let g_h =
        g_mu.matmul(transpose(&vae.mu.weight)) + g_logvar.matmul(transpose(&vae.logvar.weight));
    let g_input = vae.encoder.backward(encoder, g_h, true, input_from, grads);
    grads.push(mu_grad);
    grads.push(logvar_grad);
    g_input
}

/// [`loss_and_gradients`] through dfdx's tape: [`Vae::loss`], scaled from the batch's
/// mean to the share of `images` it is, then `backward`. Every operation in it has a
/// CUDA kernel that dfdx ships compiled.
pub fn tape_gradients<D: Device<f32>>(
    vae: &Vae<D>,
    batch: &Batch<D>,
    images: usize,
    class_weight: f32,
    kl_weight: f32,
) -> (LossTerms, Vec<DenseGrad<D>>) {
    let share = batch.len() as f32 / images.max(1) as f32;
    let (loss, terms) = vae.loss(batch, class_weight, kl_weight, OwnedTape::default());
    let mut tape = (loss * share).backward();
    let grads = vae
        .dense_layers()
        .into_iter()
        .map(|(_, layer)| {
            // A layer the loss does not reach gets zeros rather than a panic in `get`.
            let _ = tape.get_or_alloc_mut(&layer.weight);
            let _ = tape.get_or_alloc_mut(&layer.bias);
            DenseGrad {
                weight: tape.get(&layer.weight),
                bias: tape.get(&layer.bias),
            }
        })
        .collect();
    let terms = LossTerms {
        reconstruction: terms.reconstruction * share,
        kl: terms.kl * share,
        classifier: terms.classifier * share,
    };
    (terms, grads)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::foundation::config::ModelConfig;
    use crate::foundation::testing::{model_kinds, relative_error};

    /// A random batch: pixels uniform in [0, 1], one-hot labels, standard-normal noise.
    fn batch(dev: &Cpu, config: &ModelConfig, n: usize, rng: &mut impl Rng) -> Batch<Cpu> {
        let pixels: Vec<f32> = (0..n * PIXELS).map(|_| rng.gen()).collect();
        let mut onehot = vec![0.0; n * config.classes];
        for row in 0..n {
            if config.classes > 0 {
                onehot[row * config.classes + rng.gen_range(0..config.classes)] = 1.0;
            }
        }
        let noise: Vec<f32> = (0..n * config.latent)
            .map(|_| rng.gen::<f32>() * 2.0 - 1.0)
            .collect();
        let x: Matrix<Cpu> = dev.tensor_from_vec(pixels.clone(), (n, PIXELS));
        let sees_label = config.classes > 0 && config.encoder_sees_label;
        Batch {
            padded_input: sees_label.then(|| {
                crate::foundation::tensor::padded_rows(dev, &pixels, PIXELS, config.classes)
            }),
            input: x.clone(),
            target: x,
            labels: (config.classes > 0).then(|| dev.tensor_from_vec(onehot, (n, config.classes))),
            noise: dev.tensor_from_vec(noise, (n, config.latent)),
        }
    }

    /// The hand-derived gradients equal dfdx's tape on the same batch, for every kind of
    /// model the trainer builds: unconditional, conditional with and without the label
    /// fed to the encoder, ReLU and sigmoid, one and two hidden layers.
    #[test]
    fn gradients_match_the_tape() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for config in model_kinds() {
            let vae = Vae::new(&dev, &config, &mut rng);
            let batch = batch(&dev, &config, 12, &mut rng);
            let (class_weight, kl_weight) = (3.0, 0.7);

            let (tape_terms, tape_grads) =
                tape_gradients(&vae, &batch, 12, class_weight, kl_weight);
            let (terms, grads) = loss_and_gradients(&vae, &batch, 12, class_weight, kl_weight);

            // Sums of 12 x 784 terms in another order: agreement to ~1e-5 relative.
            for (ours, theirs) in [
                (terms.reconstruction, tape_terms.reconstruction),
                (terms.kl, tape_terms.kl),
                (terms.classifier, tape_terms.classifier),
            ] {
                assert!(
                    (ours - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                    "{config:?}: {ours} vs {theirs}"
                );
            }
            let layers = vae.dense_layers();
            assert_eq!(grads.len(), layers.len());
            assert_eq!(tape_grads.len(), layers.len());
            for (((name, _), g), t) in layers.iter().zip(&grads).zip(&tape_grads) {
                // Gradients are sums over the batch of products of rounded f32 values;
                // summed in a different order they agree to a few ulps of the largest
                // entry, far below 1e-4 relative.
                let w = relative_error(&g.weight.as_vec(), &t.weight.as_vec());
                let b = relative_error(&g.bias.as_vec(), &t.bias.as_vec());
                assert!(
                    w < 1e-4 && b < 1e-4,
                    "{config:?} {name}: weight {w:e}, bias {b:e}"
                );
            }
        }
    }
}
