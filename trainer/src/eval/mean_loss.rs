//! A model's mean loss on a data set: what training reports after each epoch and `vae
//! eval` reports for each decoder precision.

use dfdx::prelude::*;
use mnist::Dataset;
use rand::SeedableRng;

use crate::data::batch::{Batch, EVALUATION_BATCH};
use crate::foundation::config::DataOptions;
use crate::nn::model::{LossTerms, LossWeights, MeanLoss, Vae};

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
    for chunk in order.chunks(EVALUATION_BATCH) {
        let batch = Batch::new(&dev, data, chunk, &vae.config, options, &mut rng);
        let (_, terms) = vae.loss(&batch, LossWeights::ELBO, NoneTape);
        sum.add(&terms, chunk.len());
    }
    sum.mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::config::Binarize;
    use crate::foundation::testing::{close, model_kinds, random_dataset};
    use crate::nn::host::HostModel;

    /// The host's mean loss over a data set (what training reports on the CPU) is
    /// [`mean_loss`]'s, through dfdx: the same batches and draws (1,001 images: a full
    /// batch and a batch of one, split into halves of one and none), for every kind of
    /// model and binarization. The KL and classifier terms, sums of a few thousand
    /// terms in another order, agree to 1e-5 relative. The reconstruction term to 1e-3:
    /// dfdx adds a batch's 784,000 pixel terms in one f32 accumulator, which here comes
    /// out about 3.5e-4 low (the host sums each image, then the images in f64, and
    /// agrees with an f64 evaluation to 1e-7).
    #[test]
    fn mean_loss_matches_the_dfdx_evaluation() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let data = random_dataset(1001, &mut rng);
        for config in model_kinds() {
            for binarize in [Binarize::None, Binarize::Dynamic] {
                let options = DataOptions {
                    binarize,
                    ..DataOptions::default()
                };
                let vae = Vae::new(&dev, &config, &mut rng);
                let theirs = mean_loss(&vae, &data, options, 11);
                let ours = HostModel::new(&vae, None).mean_loss(&data, options, 11);
                for (a, b, tolerance) in [
                    (ours.reconstruction, theirs.reconstruction, 1e-3),
                    (ours.kl, theirs.kl, 1e-5),
                    (ours.classifier, theirs.classifier, 1e-5),
                ] {
                    assert!(close(a, b, tolerance), "{config:?}: {a} vs {b}");
                }
            }
        }
    }
}
