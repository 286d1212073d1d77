//! A model's mean loss on a data set: what training reports after each epoch and `vae
//! eval` reports for each decoder precision.

use dfdx::prelude::*;
use mnist::Dataset;
use rand::SeedableRng;

use crate::data::batch::Batch;
use crate::foundation::config::DataOptions;
use crate::foundation::loss::{LossTerms, MeanLoss};
use crate::nn::model::Vae;

/// Mean loss terms of `vae` on `data` prepared as `options` say, one z sample per image,
/// noise drawn from `seed`.
pub fn mean_loss<D: Device<f32>>(
    vae: &Vae<D>,
    data: &Dataset,
    options: DataOptions,
    seed: u64,
) -> LossTerms {
    let dev = vae.device();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let order: Vec<usize> = (0..data.len()).collect();
    let mut sum = MeanLoss::default();
    for chunk in order.chunks(1000) {
        let batch = Batch::new(&dev, data, chunk, &vae.config, options, &mut rng);
        let (_, terms) = vae.loss(&batch, 0.0, 1.0, NoneTape);
        sum.add(&terms, chunk.len());
    }
    sum.mean()
}
