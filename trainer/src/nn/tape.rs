//! The training step's gradients through dfdx's tape: the step every device but the
//! CPU trains with, and the reference the CPU's hand-derived gradients
//! ([`crate::nn::host`]) are tested against.
//!
//! The objectives are [`crate::nn::model::Vae::loss`] (the ELBO) and
//! [`crate::nn::model::Vae::importance_loss`] (the importance-weighted bound), ordinary
//! dfdx code. Every operation in them has a CUDA
//! kernel that dfdx ships compiled (`clippy.toml` forbids the others).

use dfdx::prelude::*;

use crate::data::batch::Batch;
use crate::foundation::tensor::{Matrix, Vector};
use crate::nn::model::{LossTerms, LossWeights, Vae};

/// Gradient of the loss with respect to one dense layer's parameters.
pub struct LayerGradient<D: Device<f32>> {
    /// d loss / d weight, shape (inputs, outputs).
    pub weight: Matrix<D>,
    /// d loss / d bias, shape (outputs,).
    pub bias: Vector<D>,
}

/// Loss terms of `vae` on `batch` and the gradient of the objective with respect to
/// every dense layer, in [`Vae::layers`] order: the ELBO's
/// reconstruction plus each other term times its weight in `weights` ([`Vae::loss`]), or,
/// when the batch holds several draws per image, the negative importance-weighted bound
/// ([`Vae::importance_loss`]).
///
/// Sums over the batch are divided by `images`, the size of the whole mini-batch, which
/// may be larger than `batch` when the mini-batch is split into shards: the shards'
/// terms and gradients then simply add up to the mini-batch's.
pub fn tape_gradients<D: Device<f32>>(
    vae: &Vae<D>,
    batch: &Batch<D>,
    images: usize,
    weights: LossWeights,
) -> (LossTerms, Vec<LayerGradient<D>>) {
    let share = batch.len() as f32 / images.max(1) as f32;
    let (loss, terms) = if batch.samples() > 1 {
        vae.importance_loss(batch, weights, OwnedTape::default())
    } else {
        vae.loss(batch, weights, OwnedTape::default())
    };
    let mut tape = (loss * share).backward();
    let grads = vae
        .layers()
        .into_iter()
        .map(|(_, layer)| {
            // A layer the loss does not reach gets zeros rather than a panic in `get`.
            let _ = tape.get_or_alloc_mut(&layer.weight);
            let _ = tape.get_or_alloc_mut(&layer.bias);
            LayerGradient {
                weight: tape.get(&layer.weight),
                bias: tape.get(&layer.bias),
            }
        })
        .collect();
    (terms.map(|t| t * share), grads)
}
