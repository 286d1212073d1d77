//! Importance-weighted training (Burda, Grosse & Salakhutdinov, "Importance Weighted
//! Autoencoders", 2016): the objective is the bound
//! `log p(x) >= log (1/K) sum_k w_k`, `w_k = p(x|z_k) p(z_k) / q(z_k|x)`, with K draws
//! `z_k ~ q(z|x)` per image. It is tighter than the ELBO (K = 1), and training on it moves
//! the decoder towards a higher likelihood, the figure `vae eval --iwae-k` measures.
//!
//! Its gradient is the ELBO's per draw, weighted by the draws' normalized weights
//! `w_k / sum_j w_j`: so this module runs the encoder once per image and the decoder
//! once per draw, weighs each draw's gradient on the host, and reuses [`crate::nn::grad`]'s
//! hand-derived backward passes (tested against dfdx's tape below, like them).

use dfdx::prelude::*;

use crate::data::batch::Batch;
use crate::foundation::loss::{log_mean_exp, normalized_weights, LossTerms};
#[cfg(test)]
use crate::foundation::tensor::scalar;
use crate::foundation::tensor::{Matrix, Vector};
use crate::nn::grad::{cross_entropy, encoder_backward, DenseGrad};
use crate::nn::model::Vae;

/// Loss terms of an unconditional `vae` on `batch`, whose noise holds
/// [`Batch::samples`] draws per image, and the gradient of the negative
/// importance-weighted bound with respect to every dense layer, in
/// [`Vae::dense_layers`] order. `kl_weight` scales the prior and posterior densities in
/// the weights (KL warm-up); the terms reported are those of the bound itself:
/// `reconstruction` is the draws' weighted mean of -log p(x|z), and `kl` the rest of the
/// bound, so that [`LossTerms::neg_elbo`] is -log (1/K) sum_k w_k.
///
/// Sums over the batch are divided by `images`, as in [`crate::nn::grad::loss_and_gradients`].
pub fn importance_weighted_gradients<D: Device<f32>>(
    vae: &Vae<D>,
    batch: &Batch<D>,
    images: usize,
    kl_weight: f32,
) -> (LossTerms, Vec<DenseGrad<D>>) {
    let inv_n = 1.0 / images.max(1) as f32;
    let (n, k) = (batch.len(), batch.samples());
    let dev = batch.input.device().clone();
    // Draw r belongs to image r / k: `of_image` repeats each image's rows k times, and
    // `sum_draws` (n, n k) adds the k rows of each image back up.
    let of_image: Tensor<(usize,), usize, D> =
        dev.tensor_from_vec((0..n * k).map(|r| r / k).collect(), (n * k,));
    let mut ones = vec![0.0f32; n * n * k];
    for r in 0..n * k {
        ones[(r / k) * n * k + r] = 1.0;
    }
    let sum_draws: Matrix<D> = dev.tensor_from_vec(ones, (n, n * k));

    // Forward: the encoder once per image, the decoder once per draw.
    let encoder = vae.encoder.trace(batch.input.clone(), true);
    let h = encoder.output();
    let mu = vae.mu.forward(h.clone());
    let logvar = vae.logvar.forward(h.clone());
    let std = (logvar.clone() * 0.5).exp();
    let eps = batch.noise.clone();
    let std_draws = std.gather(of_image.clone());
    let z = mu.gather(of_image.clone()) + std_draws.clone() * eps.clone();
    let target = batch.target.clone().gather(of_image);
    let decoder = vae.decoder.trace(z.clone(), false);
    let logits = decoder.output().clone();
    let probs = logits.clone().sigmoid();
    // -log p(x|z) per draw.
    let nll = cross_entropy(logits, &probs, target.clone())
        .sum::<(usize,), Axis<1>>()
        .as_vec();
    let z_sq = z.clone().square().sum::<(usize,), Axis<1>>().as_vec();
    let eps_sq = eps.clone().square().sum::<(usize,), Axis<1>>().as_vec();
    let logvar_sum = logvar.sum::<(usize,), Axis<1>>().as_vec();

    // The weights, on the host in f64: log w = log p(x|z) + log p(z) - log q(z|x), where
    // the 2 pi terms of the two Gaussians cancel.
    let log_w = |r: usize, beta: f64| {
        let prior_minus_posterior =
            0.5 * (f64::from(eps_sq[r]) + f64::from(logvar_sum[r / k]) - f64::from(z_sq[r]));
        -f64::from(nll[r]) + beta * prior_minus_posterior
    };
    let mut draw_scale = vec![0.0f32; n * k];
    let (mut bound, mut reconstruction) = (0.0f64, 0.0f64);
    for i in 0..n {
        let draws = i * k..(i + 1) * k;
        let full: Vec<f64> = draws.clone().map(|r| log_w(r, 1.0)).collect();
        let weights = normalized_weights(&full);
        bound += log_mean_exp(&full);
        reconstruction += draws
            .clone()
            .zip(&weights)
            .map(|(r, w)| w * f64::from(nll[r]))
            .sum::<f64>();
        // Under KL warm-up the gradient follows the weights of the scaled densities.
        let objective = if kl_weight == 1.0 {
            weights
        } else {
            let beta = f64::from(kl_weight);
            normalized_weights(&draws.clone().map(|r| log_w(r, beta)).collect::<Vec<_>>())
        };
        for (r, w) in draws.zip(objective) {
            draw_scale[r] = w as f32 * inv_n;
        }
    }
    let reconstruction = (reconstruction * f64::from(inv_n)) as f32;
    let terms = LossTerms {
        reconstruction,
        kl: (-bound * f64::from(inv_n)) as f32 - reconstruction,
        classifier: 0.0,
    };

    // Backward: each draw's ELBO gradient, scaled by its weight (over `images`).
    let scale: Vector<D> = dev.tensor_from_vec(draw_scale, (n * k,));
    let per_draw = |shape: &(usize, usize)| scale.clone().broadcast_like::<_, Axis<1>>(shape);
    let pixels = *probs.shape();
    let g_logits = (probs - target) * per_draw(&pixels);
    let mut decoder_grads = Vec::new();
    let g_z = vae
        .decoder
        .backward(&decoder, g_logits, false, Some(0), &mut decoder_grads)
        .unwrap_or_else(|| dev.zeros_like(z.shape()));
    let weight = per_draw(z.shape());
    let g_z = g_z + z * weight.clone() * kl_weight;
    let g_logvar_draws = g_z.clone() * eps * std_draws * 0.5 - weight * (0.5 * kl_weight);
    let g_mu = sum_draws.clone().matmul(g_z);
    let g_logvar = sum_draws.matmul(g_logvar_draws);
    let mut grads = Vec::new();
    encoder_backward(vae, &encoder, (g_mu, g_logvar), None, &mut grads);
    grads.extend(decoder_grads);
    (terms, grads)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    use super::*;
    use crate::foundation::config::ModelConfig;
    use vae_core::{Activation, PIXELS};

    type Taped = OwnedTape<f32, Cpu>;

    /// An unconditional batch of `n` random images with `k` draws of noise per image.
    fn batch(dev: &Cpu, latent: usize, n: usize, k: usize, rng: &mut impl Rng) -> Batch<Cpu> {
        let pixels: Vec<f32> = (0..n * PIXELS).map(|_| rng.gen()).collect();
        let noise: Vec<f32> = (0..n * k * latent)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let x: Matrix<Cpu> = dev.tensor_from_vec(pixels, (n, PIXELS));
        Batch {
            input: x.clone(),
            padded_input: None,
            target: x,
            labels: None,
            noise: dev.tensor_from_vec(noise, (n * k, latent)),
        }
    }

    /// -sum_i log sum_k w_ik / `images` (with the prior and posterior densities in w
    /// scaled by `kl_weight`), on dfdx's tape: the reference for the hand-derived
    /// gradients. The bound's value is this plus log K.
    fn tape_objective(
        vae: &Vae<Cpu>,
        batch: &Batch<Cpu>,
        images: usize,
        kl_weight: f32,
    ) -> Tensor<(), f32, Cpu, OwnedTape<f32, Cpu>> {
        let (n, k) = (batch.len(), batch.samples());
        let dev = Cpu::default();
        let of_image: Tensor<(usize,), usize, Cpu> =
            dev.tensor_from_vec((0..n * k).map(|r| r / k).collect(), (n * k,));
        let x = batch.input.clone().put_tape(OwnedTape::default());
        let (h, h_tape) = vae.encoder.forward(x, true).split_tape();
        let (mu, mu_tape) = vae.mu.forward(h.clone().put_tape(h_tape)).split_tape();
        let (logvar, lv_tape) = vae.logvar.forward(h.retaped::<Taped>()).split_tape();
        let std = (logvar.clone().put_tape(lv_tape) * 0.5).exp();
        let z = mu.put_tape(mu_tape).gather(of_image.clone())
            + std.gather(of_image.clone()) * batch.noise.clone();
        let (z, z_tape) = z.split_tape();
        let target = batch.target.clone().gather(of_image.clone());
        let nll = vae
            .decoder
            .forward(z.clone().put_tape(z_tape), false)
            .bce_with_logits(target)
            .sum::<(usize,), Axis<1>>();
        let eps_sq = batch.noise.clone().square().sum::<(usize,), Axis<1>>();
        let log_prior = z.retaped::<Taped>().square().sum::<(usize,), Axis<1>>() * -0.5;
        let log_posterior = (logvar.retaped::<Taped>().sum::<(usize,), Axis<1>>()).gather(of_image)
            * -0.5
            - eps_sq * 0.5;
        let log_w = nll.negate() + (log_prior - log_posterior) * kl_weight;
        #[allow(clippy::disallowed_methods)] // the reference, on the CPU
        let by_image = log_w.reshape_like(&(n, k));
        by_image.logsumexp::<(usize,), Axis<1>>().sum::<(), _>() * (-1.0 / images as f32)
    }

    /// The hand-derived gradients of the importance-weighted bound equal dfdx's tape on
    /// the same draws, with and without a KL weight below 1, for one and two hidden
    /// layers, ReLU and sigmoid; and the bound reported is the tape's.
    #[test]
    fn importance_weighted_gradients_match_the_tape() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let configs = [
            (vec![64], vec![48], Activation::Relu, 1.0),
            (vec![64, 32], vec![48, 40], Activation::Sigmoid, 0.7),
            (vec![32], vec![24, 16], Activation::Relu, 0.3),
        ];
        for (encoder_hidden, decoder_hidden, activation, kl_weight) in configs {
            let config = ModelConfig {
                latent: 5,
                encoder_hidden,
                decoder_hidden,
                activation,
                ..ModelConfig::default().unconditional()
            };
            let vae = Vae::new(&dev, &config, &mut rng);
            let (n, k, images) = (6, 4, 9);
            let batch = batch(&dev, config.latent, n, k, &mut rng);

            let (terms, grads) = importance_weighted_gradients(&vae, &batch, images, kl_weight);
            let tape = tape_objective(&vae, &batch, images, kl_weight).backward();
            let bound = scalar(&tape_objective(&vae, &batch, images, 1.0))
                + n as f32 * (k as f32).ln() / images as f32;
            // Sums of 6 x 4 x 784 terms, in f32 on the tape and f64 here: ~1e-5 relative.
            assert!(
                (terms.neg_elbo() - bound).abs() <= 1e-4 * bound.abs(),
                "{config:?}: {} vs {bound}",
                terms.neg_elbo()
            );
            let layers = vae.dense_layers();
            assert_eq!(grads.len(), layers.len());
            for ((name, layer), g) in layers.iter().zip(&grads) {
                // As in `gradients_match_the_tape`: sums in another order, a few ulps of
                // the largest entry apart.
                for (ours, theirs) in [
                    (g.weight.as_vec(), tape.get(&layer.weight).as_vec()),
                    (g.bias.as_vec(), tape.get(&layer.bias).as_vec()),
                ] {
                    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let diff = ours
                        .iter()
                        .zip(&theirs)
                        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        diff <= 1e-4 * scale,
                        "{config:?} {name}: {diff:e} of {scale:e}"
                    );
                }
            }
        }
    }
}
