//! The terms of the VAE's loss, and their running mean over an epoch or a data set.

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
