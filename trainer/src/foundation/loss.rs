//! The terms of the VAE's loss, and their running mean over an epoch or a data set; and
//! the arithmetic of importance weights, shared by training on the importance-weighted
//! bound and by `vae eval`'s estimate of it.

use serde::{Deserialize, Serialize};

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

    /// What training minimizes, with the KL term at full weight: the negative ELBO plus
    /// `class_weight` times the classifier's cross-entropy.
    pub fn objective(&self, class_weight: f32) -> f32 {
        self.neg_elbo() + class_weight * self.classifier
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
        self.sum.reconstruction += t.reconstruction * w;
        self.sum.kl += t.kl * w;
        self.sum.classifier += t.classifier * w;
    }

    /// Images added so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The mean terms per image (zero before anything was added).
    pub fn mean(&self) -> LossTerms {
        let n = self.images.max(1) as f32;
        LossTerms {
            reconstruction: self.sum.reconstruction / n,
            kl: self.sum.kl / n,
            classifier: self.sum.classifier / n,
        }
    }
}

/// `log((1/K) sum_k e^(v_k))` of the K log-weights `log_w`, computed around the largest
/// (no overflow): one image's importance-weighted bound on `log p(x)`.
pub fn log_mean_exp(log_w: &[f64]) -> f64 {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = log_w.iter().map(|v| (v - max).exp()).sum();
    max + (sum / log_w.len() as f64).ln()
}

/// The normalized weights `e^(v_k) / sum_j e^(v_j)` of the log-weights `log_w` (a
/// softmax, computed around the largest): how much each draw counts in the bound's
/// gradient.
pub fn normalized_weights(log_w: &[f64]) -> Vec<f64> {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = log_w.iter().map(|v| (v - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}
